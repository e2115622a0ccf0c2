"""dotrec train: fit a model and write its folder."""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

from dotrec.artifact import save_model
from dotrec.cli._common import (
    add_data_options,
    data_config,
    echo,
    finite_float,
    parse_settings,
    refuse_unused_flags,
    thread_count,
    warn,
)
from dotrec.cli._outputs import check_model_dir
from dotrec.config import DataConfig, ModelConfig, RunConfig
from dotrec.models import MODELS, MFConfig

# Flags for the common settings; any other setting goes through --set KEY=VALUE.
_FLAGS = [
    ("--epochs", "epochs", int, "passes over the data"),
    ("--embedding-dim", "embedding_dim", int, "length of each user and item vector"),
    ("--lr", "lr", finite_float, "learning rate"),
    ("--l2", "l2", finite_float, "L2 penalty on the embeddings in each batch"),
    ("--n-negatives", "n_negatives", int, "sampled negatives per positive"),
    ("--batch-size", "batch_size", int, "training rows per step"),
    ("--seed", "seed", int, "seed of initialisation, shuffling and sampling"),
]


def add_parser(commands) -> argparse.ArgumentParser:
    parser = commands.add_parser(
        "train",
        help="train a model and save it to a folder",
        description="Train a model on DATA and write it to a model folder (weights in "
        "safetensors, settings and ID vocabularies in JSON, and the run as run.toml, which "
        "`dotrec train --config` re-runs). Every row of DATA is a positive unless "
        "--min-rating or a label column says otherwise.",
    )
    parser.add_argument(
        "data",
        metavar="DATA",
        nargs="?",
        help="a file, or a dataset name such as ml-100k (default: the config's [data])",
    )
    parser.add_argument("--out", required=True, type=Path, help="model folder to write")
    parser.add_argument(
        "--config",
        type=Path,
        metavar="RUN_TOML",
        help="a run config (TOML: [data], [model], [model.settings]), such as the run.toml "
        "every model folder records or the file `dotrec tune` writes; DATA and flags given "
        "here override it",
    )
    parser.add_argument(
        "--model", choices=sorted(MODELS), help="default: the config's model, else mf"
    )
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
        type=thread_count,
        help="Torch CPU threads during fit (mf, bpr and two-tower default: 1; als, ease, "
        "gf-cf and lightgcn: Torch's; itemknn and popularity have none). A seed reproduces "
        "a model exactly for one thread count; another count may change the last bits",
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


def _settings(args: argparse.Namespace, model: str, config_class: type) -> dict:
    """The model settings given as flags and with --set."""
    names = {f.name for f in dataclasses.fields(config_class)}
    flags = {name: flag for flag, name, _, _ in _FLAGS}
    flags.update(device="--device", num_threads="--threads")
    given = {name: getattr(args, name) for name in flags if getattr(args, name) is not None}
    refuse_unused_flags(model, config_class, {name: flags[name] for name in given})
    given.update(parse_settings(args.extra))
    unknown = sorted(set(given) - names)
    if unknown:
        raise ValueError(
            f"the {model} model has no setting {', '.join(unknown)}; its settings are "
            f"{', '.join(sorted(names)) or 'none'}"
        )
    return given


def run_config(args: argparse.Namespace) -> RunConfig:
    """The run to do: the --config file (if any) with DATA and the flags put over it."""
    base = RunConfig.read(args.config) if args.config else RunConfig()
    if args.data is not None:
        # DATA replaces the file or dataset; the config's reading options still apply.
        spec = DataConfig.from_spec(args.data)
        base_data = base.data or DataConfig()
        data = dataclasses.replace(base_data, path=spec.path, dataset=spec.dataset)
    elif base.data is not None:
        data = base.data
    else:
        raise ValueError("no data to train on: give DATA, or a --config file with a [data] section")
    data = data_config(args, data)
    name = args.model or base.model.name
    settings = dict(base.model.settings) if name == base.model.name else {}
    if base.model.settings and name != base.model.name:
        warn(
            f"--model {name} replaces the config's {base.model.name} model; its settings "
            f"({', '.join(sorted(base.model.settings))}) are not used"
        )
    settings.update(_settings(args, name, MODELS[name].config_class))
    return RunConfig(data, ModelConfig(name, settings), base.validation)


def run(args: argparse.Namespace) -> int:
    plan = run_config(args)
    model = plan.model.build()  # check settings before reading data
    dataset = plan.data.load()
    check_model_dir(args.out, "--out")
    data = dataset.interactions
    # a model that takes side features (two-tower) finds the dataset's own
    features = model.dataset_features(dataset) if hasattr(model, "dataset_features") else {}
    model.fit(data, show_progress=not args.quiet and sys.stderr.isatty(), **features)
    done = RunConfig(
        plan.data.resolved(Path.cwd()),
        ModelConfig(plan.model.name, _plain_settings(model)),
        plan.validation,
    )
    save_model(model, args.out, extra_files={"run.toml": done.to_toml_file()})
    info = model.fit_info
    loss = f", final loss {info['epoch_loss'][-1]:.4f}" if info.get("epoch_loss") else ""
    echo(
        f"trained {plan.model.name} on {len(data)} interactions ({len(model.users)} users, "
        f"{len(model.items)} items) in {info.get('seconds', 0):.1f} s{loss}"
    )
    echo(f"saved to {args.out} (the run is recorded in {args.out / 'run.toml'})")
    return 0


def _plain_settings(model) -> dict:
    """Every setting of the fitted model, unset (None) ones left out."""
    return {k: v for k, v in dataclasses.asdict(model.config).items() if v is not None}
