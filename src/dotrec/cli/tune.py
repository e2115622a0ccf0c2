"""dotrec tune: search a model's settings with Optuna and write the best run config."""

from __future__ import annotations

import argparse
from pathlib import Path

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
from dotrec.cli._outputs import check_output_file
from dotrec.config import DataConfig
from dotrec.models import MODELS
from dotrec.tuning import SEARCH_SPACES, tune


def add_parser(commands) -> argparse.ArgumentParser:
    parser = commands.add_parser(
        "tune",
        help="search a model's settings with Optuna; write the best as a run config",
        description="Hold out a validation split from DATA (per user, a random --validation-"
        "fraction of each user's rows, seeded by --seed), fit the model once per trial with "
        "settings drawn by Optuna's TPE sampler, score each fit by full ranking on the "
        "validation side, print the trials and write the best run config (TOML) for "
        "`dotrec train --config`. Keep your final test set out of DATA. Searched settings: "
        + "; ".join(f"{name}: {', '.join(space)}" for name, space in SEARCH_SPACES.items()),
    )
    parser.add_argument("data", metavar="DATA", help="a file, or a dataset name such as ml-100k")
    parser.add_argument("--model", choices=sorted(MODELS), default="mf", help="default: mf")
    parser.add_argument("--trials", type=int, default=20, help="fits to try (default 20)")
    parser.add_argument(
        "--metric", default="ndcg@10", help="what to maximise, NAME@K (default ndcg@10)"
    )
    parser.add_argument(
        "--timeout", type=finite_float, metavar="S", help="start no trial after S seconds"
    )
    parser.add_argument(
        "--seed", type=int, default=0, help="seed of the split, sampler and model (default 0)"
    )
    parser.add_argument(
        "--validation-fraction",
        type=finite_float,
        default=0.2,
        help="share of each user's rows held out for validation (default 0.2)",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=Path("best.toml"),
        help="run config file to write (default best.toml)",
    )
    parser.add_argument(
        "--set",
        dest="extra",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a setting kept fixed in every trial, e.g. --set epochs=20 (value read as JSON)",
    )
    parser.add_argument("--device", help="auto (CUDA when available; default), cpu or cuda")
    parser.add_argument(
        "--threads", dest="num_threads", type=thread_count, help="Torch CPU threads"
    )
    parser.add_argument("--quiet", action="store_true", help="no line per finished trial")
    add_data_options(parser)
    return parser


def _fixed(args: argparse.Namespace) -> dict:
    fixed = {"device": args.device, "num_threads": args.num_threads}
    fixed = {k: v for k, v in fixed.items() if v is not None}
    flags = {"device": "--device", "num_threads": "--threads"}
    refuse_unused_flags(args.model, MODELS[args.model].config_class, {k: flags[k] for k in fixed})
    return {**fixed, **parse_settings(args.extra)}


def run(args: argparse.Namespace) -> int:
    fixed = _fixed(args)  # settings checked before reading data
    data_spec = data_config(args, DataConfig.from_spec(args.data))
    data = data_spec.load().interactions
    check_output_file(args.out, "--out", "best.toml")
    echo(
        f"tuning {args.model} on {len(data)} interactions: {args.trials} trials, "
        f"{args.metric} on a per-user random {args.validation_fraction:g} validation split "
        f"(seed {args.seed})"
    )

    def progress(row: dict) -> None:
        if not args.quiet:
            value = row[args.metric]
            shown = f"{value:.4f}" if row["state"] == "COMPLETE" else row["state"].lower()
            warn(f"trial {row['trial']}: {args.metric} {shown} ({row['seconds']:.1f} s)")

    result = tune(
        data,
        args.model,
        n_trials=args.trials,
        metric=args.metric,
        timeout=args.timeout,
        seed=args.seed,
        validation_fraction=args.validation_fraction,
        fixed=fixed,
        callback=progress,
    )
    echo(result.table())
    best = ", ".join(f"{k}={v!r}" for k, v in result.best_settings.items())
    echo(f"best: {args.metric} {result.best_value:.4f} with {best}")
    result.run_config(data_spec.resolved(Path.cwd())).write(args.out)
    echo(f"wrote {args.out}; train with: dotrec train --config {args.out} --out MODEL_DIR")
    return 0
