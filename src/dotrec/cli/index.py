"""dotrec index: build an approximate nearest-neighbour index and store it in the model."""

from __future__ import annotations

import argparse
from pathlib import Path

from dotrec.ann import DEFAULT_MIN_ITEMS, folder_files, index_file
from dotrec.artifact import load_model, replace_files
from dotrec.cli._common import echo

# Flag -> setting of dotrec.ann.HNSWSettings / IVFSettings, and the kind it belongs to.
_SETTINGS = {
    "m": "hnsw",
    "ef_construction": "hnsw",
    "ef_search": "hnsw",
    "nlist": "ivf",
    "nprobe": "ivf",
    "train_per_list": "ivf",
    "seed": "ivf",
}


def add_parser(commands) -> argparse.ArgumentParser:
    parser = commands.add_parser(
        "index",
        help="build an approximate nearest-neighbour index (faiss) into a model folder",
        description="Build a faiss index over MODEL_DIR's item vectors, by maximum inner "
        "product with the biases folded in, and store it in the folder (replacing any "
        "earlier one). `dotrec recommend` then uses it when the catalogue has at least "
        "--min-items items (--exact ranks every item). Needs pip install 'dotrec[ann]'. "
        "Only models that score by a dot product (mf, bpr, als, lightgcn, two-tower) "
        "have one.",
    )
    parser.add_argument("model", metavar="MODEL_DIR", type=Path)
    parser.add_argument(
        "--kind", choices=["ivf", "hnsw"], default="ivf", help="index kind (default ivf)"
    )
    parser.add_argument(
        "--similar-items",
        action="store_true",
        help="also build a cosine index for similar-item queries",
    )
    parser.add_argument(
        "--min-items",
        type=int,
        default=DEFAULT_MIN_ITEMS,
        help=f"use the index from this catalogue size on (default {DEFAULT_MIN_ITEMS})",
    )
    hnsw = parser.add_argument_group("hnsw settings")
    hnsw.add_argument("--m", type=int, help="links per item (default 32)")
    hnsw.add_argument("--ef-construction", type=int, help="build candidates (default 80)")
    hnsw.add_argument("--ef-search", type=int, help="search candidates (default 1024)")
    ivf = parser.add_argument_group("ivf settings")
    ivf.add_argument("--nlist", type=int, help="k-means lists (default 4 sqrt(items))")
    ivf.add_argument("--nprobe", type=int, help="lists searched per query (default 64)")
    ivf.add_argument("--train-per-list", type=int, help="training items per list (default 64)")
    ivf.add_argument("--seed", type=int, help="seed of the training sample (default 0)")
    parser.add_argument(
        "--remove", action="store_true", help="remove the folder's indexes instead of building"
    )
    return parser


def run(args: argparse.Namespace) -> int:
    model = load_model(args.model, device="cpu")
    if args.remove:
        model.ann_indexes = {}
    else:
        settings = _settings(args)
        model.build_index(
            args.kind, similar_items=args.similar_items, min_items=args.min_items, **settings
        )
    files, payloads = folder_files(model.ann_indexes, model._index_vectors, len(model.items))
    replace_files(args.model, files, payloads)
    if args.remove:
        echo(f"removed the approximate indexes of {args.model}")
        return 0
    for purpose, index in model.ann_indexes.items():
        name = index_file(purpose)
        size = len(payloads[name]) / 2**20
        echo(
            f"{purpose}: {index!r}, built in {index.build_seconds:.1f} s; "
            f"wrote {args.model / name} ({size:.1f} MB)"
        )
    return 0


def _settings(args: argparse.Namespace) -> dict[str, int]:
    settings = {}
    for name, kind in _SETTINGS.items():
        value = getattr(args, name)
        if value is None:
            continue
        if kind != args.kind:
            flag = "--" + name.replace("_", "-")
            raise ValueError(f"{flag} is a setting of --kind {kind}, not {args.kind}")
        settings[name] = value
    return settings
