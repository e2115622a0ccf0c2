"""Approximate top-K over item vectors: faiss indexes for large catalogues.

An :class:`ANNIndex` answers "which items have the largest inner product
with this query vector" (``metric="inner_product"``, for ``recommend``) or the
largest cosine (``metric="cosine"``, for ``similar_items``) without scoring
every item. The vectors are a model's search vectors, whose inner products
with its query vectors are its scores, biases included (see
``Recommender._item_vectors_for_search``), so the index ranks as the model.

:func:`search_topk` turns an index's answer into a :class:`~dotrec.topk.TopK`
like the exact routine's: it over-fetches past the items a row excludes,
drops them and any non-candidate, rescores the rest with the model's own
scores, and answers the rows the index left short exactly.

faiss is optional (``pip install 'dotrec[ann]'``): without it, building or
forcing an index fails with a message that says so; exact top-K never needs it.
"""

from dotrec.ann._faiss import faiss_available, require_faiss
from dotrec.ann._folder import folder_files, index_file, read_indexes
from dotrec.ann._index import ANNIndex
from dotrec.ann._index import fingerprint as fingerprint
from dotrec.ann._search import search_topk
from dotrec.ann._settings import DEFAULT_MIN_ITEMS, KINDS, HNSWSettings, IVFSettings
from dotrec.ann._settings import Kind as Kind
from dotrec.ann._settings import Metric as Metric
from dotrec.artifact import ANN_FILE

__all__ = [
    "ANNIndex",
    "ANN_FILE",
    "DEFAULT_MIN_ITEMS",
    "HNSWSettings",
    "IVFSettings",
    "KINDS",
    "faiss_available",
    "folder_files",
    "index_file",
    "read_indexes",
    "require_faiss",
    "search_topk",
]
