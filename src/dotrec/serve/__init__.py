"""The HTTP service: top-K, fold-in and similar items over FastAPI and uvicorn.

Needs the ``serve`` extra (``pip install 'dotrec[serve]'``). Build the
application with :func:`create_app`, or run ``dotrec serve MODEL_DIR``.
"""

from dotrec.serve._app import Limits, create_app
from dotrec.serve._holder import ModelHolder, ServedModel, load_served, settle_heap
from dotrec.serve._metadata import ItemInfo, find_item_file, read_item_info
from dotrec.serve._server import bind, is_loopback, run_server

__all__ = [
    "ItemInfo",
    "Limits",
    "ModelHolder",
    "ServedModel",
    "bind",
    "create_app",
    "find_item_file",
    "is_loopback",
    "load_served",
    "read_item_info",
    "run_server",
    "settle_heap",
]
