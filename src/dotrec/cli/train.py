"""dotrec train: fit a model and write its folder."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

from dotrec.cli._common import add_data_options, echo, load_data
from dotrec.models import MODELS, MFConfig

# Flags for the common settings; any other setting goes through --set KEY=VALUE.
_FLAGS = [
    ("--epochs", "epochs", int, "passes over the data"),
    ("--embedding-dim", "embedding_dim", int, "length of each user and item vector"),
    ("--lr", "lr", float, "learning rate"),
    ("--l2", "l2", float, "L2 penalty on the embeddings in each batch"),
    ("--n-negatives", "n_negatives", int, "sampled negatives per positive"),
    ("--batch-size", "batch_size", int, "training rows per step"),
    ("--seed", "seed", int, "seed of initialisation, shuffling and sampling"),
]


def add_parser(commands) -> argparse.ArgumentParser:
    parser = commands.add_parser(
        "train",
        help="train a model and save it to a folder",
        description="Train a model on DATA and write it to a model folder (weights in "
        "safetensors, settings and ID vocabularies in JSON). Every row of DATA is a positive "
        "unless --min-rating or a label column says otherwise.",
    )
    parser.add_argument("data", metavar="DATA", help="a file, or a dataset name such as ml-100k")
    parser.add_argument("--out", required=True, type=Path, help="model folder to write")
    parser.add_argument("--model", choices=sorted(MODELS), default="mf", help="default: mf")
    hyper = parser.add_argument_group("model settings (defaults suit MovieLens-like data)")
    defaults = MFConfig()
    for flag, name, kind, text in _FLAGS:
        hyper.add_argument(
            flag, dest=name, type=kind, help=f"{text} (mf default: {getattr(defaults, name)})"
        )
    hyper.add_argument("--device", help="auto (CUDA when available; default), cpu or cuda")
    hyper.add_argument(
        "--threads",
        dest="num_threads",
        type=int,
        help="Torch CPU threads (default: Torch's). A seed reproduces a model exactly for one "
        "thread count; another count may change the last bits",
    )
    hyper.add_argument(
        "--set",
        dest="extra",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="any other setting of the model, e.g. --set init_std=0.05 (value read as JSON)",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    add_data_options(parser)
    return parser


def _settings(args: argparse.Namespace, config_class: type) -> dict:
    names = {f.name for f in dataclasses.fields(config_class)}
    given = {name: getattr(args, name, None) for _, name, _, _ in _FLAGS}
    given.update(device=args.device, num_threads=args.num_threads)
    for item in args.extra:
        key, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"--set takes KEY=VALUE, got {item!r}")
        try:
            given[key.strip()] = json.loads(value)
        except json.JSONDecodeError:
            given[key.strip()] = value
    given = {k: v for k, v in given.items() if v is not None}
    unknown = sorted(set(given) - names)
    if unknown:
        raise ValueError(
            f"the {args.model} model has no setting {', '.join(unknown)}; its settings are "
            f"{', '.join(sorted(names)) or 'none'}"
        )
    return given


def run(args: argparse.Namespace) -> int:
    cls = MODELS[args.model]
    model = cls(**_settings(args, cls.config_class))  # check settings before reading data
    data = load_data(args.data, args).interactions
    model.fit(data, show_progress=not args.quiet and sys.stderr.isatty())
    model.save(args.out)
    info = model.fit_info
    loss = f", final loss {info['epoch_loss'][-1]:.4f}" if info.get("epoch_loss") else ""
    echo(
        f"trained {args.model} on {len(data)} interactions ({len(model.users)} users, "
        f"{len(model.items)} items) in {info.get('seconds', 0):.1f} s{loss}"
    )
    echo(f"saved to {args.out}")
    return 0
