"""dotrec train: fit a model and write its folder."""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from dotrec.cli._common import add_data_options, echo, load_data
from dotrec.models import MODELS


def add_parser(commands) -> argparse.ArgumentParser:
    parser = commands.add_parser("train", help="train a model and save it to a folder")
    parser.add_argument("data", metavar="DATA", help="a file, or a dataset name such as ml-100k")
    parser.add_argument("--out", required=True, type=Path, help="model folder to write")
    parser.add_argument("--model", choices=sorted(MODELS), default="mf")
    hyper = parser.add_argument_group("model settings (defaults suit MovieLens-like data)")
    hyper.add_argument("--epochs", type=int)
    hyper.add_argument("--embedding-dim", type=int)
    hyper.add_argument("--lr", type=float)
    hyper.add_argument("--l2", type=float)
    hyper.add_argument("--n-negatives", type=int)
    hyper.add_argument("--batch-size", type=int)
    hyper.add_argument("--seed", type=int)
    hyper.add_argument("--device", help="auto (default), cpu or cuda")
    hyper.add_argument("--threads", dest="num_threads", type=int,
                       help="Torch CPU threads; a seed reproduces a model for one thread count")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    add_data_options(parser)
    return parser


def run(args: argparse.Namespace) -> int:
    cls = MODELS[args.model]
    names = {f.name for f in dataclasses.fields(cls.config_class)}
    settings = {k: v for k, v in vars(args).items() if k in names and v is not None}
    data = load_data(args.data, args).interactions
    model = cls(**settings).fit(data, show_progress=not args.quiet)
    model.save(args.out)
    info = model.fit_info
    loss = f", final loss {info['epoch_loss'][-1]:.4f}" if info.get("epoch_loss") else ""
    echo(f"trained {args.model} on {len(data)} interactions ({len(model.users)} users, "
         f"{len(model.items)} items) in {info.get('seconds', 0):.1f} s{loss}")
    echo(f"saved to {args.out}")
    return 0
