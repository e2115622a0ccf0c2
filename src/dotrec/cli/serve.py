"""dotrec serve: the HTTP service for one model folder."""

from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path

from dotrec.cli._common import echo, thread_count, warn
from dotrec.exceptions import DotrecError

_SERVE_DEPS = {"fastapi", "uvicorn", "starlette", "pydantic", "anyio"}


def add_parser(commands) -> argparse.ArgumentParser:
    parser = commands.add_parser(
        "serve",
        help="serve a model over HTTP: top-K, fold-in, similar items (FastAPI + uvicorn)",
        description="Serve MODEL_DIR over HTTP until interrupted. SIGHUP or POST "
        "/admin/reload loads the folder again (or another one) without dropping "
        "requests; a folder that fails to load is refused and the old model keeps "
        "serving. Endpoints and their schema: /docs and /openapi.json.",
    )
    parser.add_argument("model", metavar="MODEL_DIR", type=Path)
    parser.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on (default: 127.0.0.1, this machine only)",
    )
    parser.add_argument(
        "--port", type=_port, default=8000, help="TCP port (default 8000; 0: any free port)"
    )
    parser.add_argument(
        "--items",
        type=Path,
        metavar="FILE",
        help="item titles and genres to show (u.item, movies.csv, movies.dat or a CSV); "
        "default: found in the model folder or beside its training data",
    )
    parser.add_argument(
        "--encoding",
        help="text encoding of the item file (default: utf-8; latin-1 for MovieLens u.item "
        "and movies.dat), e.g. --encoding latin-1",
    )
    parser.add_argument("--max-k", type=int, default=1000, help="largest K (default 1000)")
    parser.add_argument(
        "--max-batch", type=int, default=1000, help="most users per batch (default 1000)"
    )
    parser.add_argument(
        "--max-body-bytes",
        type=int,
        default=1 << 20,
        help="largest request body; larger ones get 413 (default 1 MiB)",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=1,
        help="model calls run at once, each on its own thread (default 1)",
    )
    parser.add_argument(
        "--threads", type=thread_count, help="Torch CPU threads (default: Torch's choice)"
    )
    parser.add_argument("--device", default="auto", help="auto (default), cpu or cuda")
    parser.add_argument(
        "--admin-token",
        help="require 'Authorization: Bearer TOKEN' on /admin/reload (default: "
        "$DOTREC_ADMIN_TOKEN; without one, admin calls are allowed only on loopback)",
    )
    parser.add_argument("--access-log", action="store_true", help="log every request")
    return parser


def _port(text: str) -> int:
    if not text.isdigit() or int(text) > 65535:
        raise argparse.ArgumentTypeError(f"a port is a number from 0 to 65535, got {text!r}")
    return int(text)


def run(args: argparse.Namespace) -> int:
    try:
        import torch

        from dotrec.serve import Limits, bind, create_app, is_loopback, run_server
    except ModuleNotFoundError as err:
        if (err.name or "").split(".")[0] not in _SERVE_DEPS:
            raise
        raise DotrecError(
            f"dotrec serve needs FastAPI and uvicorn ({err.name} is not installed). "
            "Install them with: pip install 'dotrec[serve]'"
        ) from err

    token = args.admin_token or os.environ.get("DOTREC_ADMIN_TOKEN") or None
    allow_admin = token is not None or is_loopback(args.host)
    if not allow_admin:
        warn(
            f"listening on {args.host} without an admin token: POST /admin/reload is off "
            "(reload with SIGHUP, or set --admin-token)"
        )
    if args.threads is not None:
        if args.threads < 1:
            raise ValueError(f"--threads must be a positive integer, got {args.threads}")
        torch.set_num_threads(args.threads)
    logging.getLogger("dotrec.serve").setLevel(logging.INFO)

    app = create_app(
        args.model,
        items_file=args.items,
        items_encoding=args.encoding,
        device=args.device,
        limits=Limits(args.max_k, args.max_batch, args.max_body_bytes),
        workers=args.workers,
        admin_token=token,
        allow_admin=allow_admin,
    )
    sock = bind(args.host, args.port)
    host, port = sock.getsockname()[:2]
    info = app.state.holder.current.info
    url = f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"
    echo(
        f"serving {info['model']} model {info['model_id']} ({info['n_users']} users, "
        f"{info['n_items']} items) on {url}; docs at {url}/docs"
    )
    run_server(app, sock, access_log=args.access_log)
    return 0
