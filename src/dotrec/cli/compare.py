"""dotrec compare: several models on one split, with intervals and paired tests."""

from __future__ import annotations

import argparse
import json
import sys
import textwrap
import time
from pathlib import Path

from dotrec.artifact import load_model
from dotrec.cli._common import add_data_options, data_config, echo, finite_float, load_data, warn
from dotrec.cli._outputs import check_output_file
from dotrec.cli.split import add_split_options, split_data
from dotrec.comparison import TABLE_HEADER, Comparison, check_catalogues, compare_models
from dotrec.config import DataConfig, RunConfig
from dotrec.data import Dataset
from dotrec.evaluation import _cutoffs
from dotrec.metrics import METRICS
from dotrec.models import MODELS, Recommender, TwoTower
from dotrec.stats import check_bootstrap_options

_FORMATS = ("table", "csv", "json", "markdown")


def add_parser(commands) -> argparse.ArgumentParser:
    parser = commands.add_parser(
        "compare",
        help="compare models on one split: metrics at several K, intervals, paired tests",
        description="Split DATA once (per-user random 20% by default, as `dotrec split`), "
        "train each MODEL given by name or run config on the training side (a model folder "
        "is loaded as it is), rank the whole catalogue for every test user and print each "
        "metric at each K for every model, with a bootstrap confidence interval over users, "
        "its difference from the first model and paired t-test and Wilcoxon signed-rank "
        "p-values against it, over the same users. Beyond accuracy: catalogue coverage, "
        "Gini index of exposure, novelty, average popularity, and intra-list diversity of "
        "item genres when the dataset has them.",
    )
    add_run_options(parser, ks=[5, 10, 20])
    parser.add_argument(
        "--sampled",
        type=int,
        metavar="N",
        help="also rank each test item among N sampled negatives, beside the full ranking "
        "(can order models differently from full ranking)",
    )
    parser.add_argument(
        "--diversity",
        choices=["cosine", "jaccard"],
        default="cosine",
        help="distance of item features for intra-list diversity (default cosine)",
    )
    parser.add_argument("--format", choices=_FORMATS, default="table", help="default: table")
    parser.add_argument("--output", type=Path, metavar="FILE", help="write there, not to stdout")
    return parser


def add_run_options(
    parser: argparse.ArgumentParser,
    ks: list[int],
    seed_help: str = "seed of the random split, the bootstrap and sampled negatives (default 0)",
) -> None:
    """The options `compare` and `report` share: models, data, split, cutoffs, bootstrap."""
    parser.add_argument(
        "models",
        metavar="MODEL",
        nargs="+",
        help=f"a model folder (from `dotrec train`), a run config TOML (as `dotrec train "
        f"--config` reads), or a model name trained with its defaults "
        f"({', '.join(sorted(MODELS))}); the first is the reference",
    )
    parser.add_argument(
        "--data",
        required=True,
        help="a file, or a dataset name such as ml-100k; split into train and test "
        "unless --test is given",
    )
    parser.add_argument(
        "--test",
        metavar="TEST_DATA",
        help="held-out file (e.g. from `dotrec split`): DATA is then the training side "
        "and the split options are not used",
    )
    parser.add_argument(
        "--k", type=int, nargs="+", default=ks, help=f"cutoffs (default {' '.join(map(str, ks))})"
    )
    parser.add_argument(
        "--metrics",
        nargs="+",
        choices=list(METRICS),
        default=["precision", "recall", "ndcg"],
        help="per-user metrics (default precision recall ndcg)",
    )
    parser.add_argument(
        "--resamples", type=int, default=1000, help="bootstrap resamples (default 1000)"
    )
    parser.add_argument(
        "--confidence", type=finite_float, default=0.95, help="interval coverage (default 0.95)"
    )
    parser.add_argument(
        "--on-overlap",
        choices=["drop", "raise"],
        default="drop",
        help="test pairs also in training: remove with a warning, or fail",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    split = parser.add_argument_group("the split (without --test)")
    add_split_options(split, seed_help=seed_help)
    add_data_options(parser)


def run(args: argparse.Namespace) -> int:
    # Fail on a bad option or name before reading data and training.
    check_bootstrap_options(args.resamples, args.confidence)
    if args.sampled is not None and args.sampled < 1:
        raise ValueError(f"--sampled must be a positive number of negatives, got {args.sampled}")
    specs = resolve_models(args)

    dataset, train, test = _split(args)
    _check_run_configs(args, specs)
    if args.output is not None:
        check_output_file(args.output, "--output", "comparison.txt")
    models, _ = fit_models(args, specs, dataset, train)

    if args.sampled is not None:
        warn(
            f"warning: sampled metrics (each test item among {args.sampled} sampled negatives) "
            "can rank models differently from full ranking (Krichene and Rendle 2020); the "
            "full-ranking rows are printed beside them."
        )
    genres = TwoTower.dataset_features(dataset).get("item_features")
    comparison = compare_models(
        models,
        test,
        args.k,
        args.metrics,
        item_features=genres,
        diversity=args.diversity,
        n_resamples=args.resamples,
        confidence=args.confidence,
        seed=args.seed,
        sampled=args.sampled,
        on_overlap=args.on_overlap,
    )
    text = render(comparison, args.format)
    if args.output is None:
        echo(text.rstrip("\n"))
    else:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(text, encoding="utf-8")
        echo(f"wrote {args.output}")
    return 0


def _resolve(spec: str) -> tuple[str, Recommender]:
    """A label and a model: loaded from a folder, or unfitted from a config or a name."""
    path = Path(spec)
    if path.is_dir():
        return path.resolve().name, load_model(path)
    if path.is_file():
        return path.stem, RunConfig.read(path).model.build()
    if spec in MODELS:
        return spec, MODELS[spec]()
    raise FileNotFoundError(
        f"{spec}: no such model folder or run config file, and not a model name "
        f"({', '.join(sorted(MODELS))})"
    )


def _labels(names: list[str]) -> list[str]:
    """The names, with a repeated one numbered (mf, mf#2) so that rows stay apart."""
    seen: dict[str, int] = {}
    out = []
    for name in names:
        seen[name] = seen.get(name, 0) + 1
        out.append(name if seen[name] == 1 else f"{name}#{seen[name]}")
    return out


def _is_fitted(model: Recommender) -> bool:
    return model.users is not None


def _split(args: argparse.Namespace):
    """The dataset and its train and test sides: DATA split, or DATA and --test as given."""
    dataset = data_config(args, DataConfig.from_spec(args.data)).load()
    if args.test is not None:
        return dataset, dataset.interactions, load_data(args.test, args).interactions
    train, test = split_data(dataset.interactions, args)
    return dataset, train, test


def _check_run_configs(args: argparse.Namespace, specs) -> None:
    """A run config's [data] is not used: say so when it names other data."""
    wanted = data_config(args, DataConfig.from_spec(args.data)).resolved(Path.cwd())
    for spec in args.models:
        path = Path(spec)
        if not path.is_file():
            continue
        data = RunConfig.read(path).data
        if data is not None and data != wanted:
            warn(
                f"warning: {spec} names its own [data]; compare trains every model on the "
                f"training side of --data {args.data} instead, so that all share one split"
            )


def _check_trained_on(label: str, model: Recommender, train, quiet: bool) -> None:
    if model.fit_info.get("fingerprint") != train.compact().fingerprint():
        warn(
            f"warning: {label} was trained on other rows than the training side of this split "
            "(its data fingerprint differs); test pairs it saw in training are left out of its "
            "evaluation, and the comparison is fair only if no model saw the test rows. Give "
            "--data the file it was trained on and --test the held-out file."
        )
    elif not quiet:
        warn(f"loaded {label} ({model.name}), trained on this split's training side")


def resolve_models(args: argparse.Namespace) -> dict[str, tuple[str, Recommender]]:
    """Each MODEL argument by its unique label: (spec, model), fitted when it is a folder.

    Folders given together must share one catalogue; checked before any data is read.
    """
    _cutoffs(args.k)  # a bad --k fails before anything trains
    specs = [_resolve(spec) for spec in args.models]
    labels = _labels([label for label, _ in specs])
    resolved = dict(zip(labels, specs, strict=True))
    check_catalogues({label: m for label, (_, m) in resolved.items() if _is_fitted(m)})
    return resolved


def fit_models(
    args: argparse.Namespace,
    specs: dict[str, tuple[str, Recommender]],
    dataset: Dataset,
    train,
    fit_side=None,
    validation=None,
) -> tuple[dict[str, Recommender], dict[str, float]]:
    """Fit the models not loaded from folders; returns the models and fit seconds.

    Loaded models are checked against ``train``; the others fit on ``fit_side``
    (default ``train``), with ``validation`` for those that use it.
    """
    models, seconds = {}, {}
    for label, (_, model) in specs.items():
        if _is_fitted(model):
            _check_trained_on(label, model, train, args.quiet)
        else:
            started = time.perf_counter()
            side = train if fit_side is None else fit_side
            _fit(label, model, dataset, side, args.quiet, validation)
            seconds[label] = time.perf_counter() - started
        models[label] = model
    return models, seconds


def _fit(
    label: str, model: Recommender, dataset: Dataset, train, quiet: bool, validation=None
) -> None:
    # a model that takes side features (two-tower) finds the dataset's own, as in train
    features = model.dataset_features(dataset) if hasattr(model, "dataset_features") else {}
    started = time.perf_counter()
    model.fit(train, validation, show_progress=not quiet and sys.stderr.isatty(), **features)
    if not quiet:
        name = label if label == model.name else f"{label} ({model.name})"
        warn(f"trained {name} in {time.perf_counter() - started:.1f} s")


# --- output ----------------------------------------------------------------------


def render(comparison: Comparison, fmt: str) -> str:
    """The comparison as text in one of the formats: table, csv, json, markdown."""
    if fmt == "csv":
        return comparison.rows.to_csv(index=False)
    if fmt == "json":
        return json.dumps(comparison.to_dict(), indent=2) + "\n"
    cells = comparison.cells()
    if fmt == "markdown":
        lines = ["| " + " | ".join(TABLE_HEADER) + " |", "|" + "---|" * len(TABLE_HEADER)]
        lines += ["| " + " | ".join(row) + " |" for row in cells]
        return "\n".join(lines) + "\n\n" + "\n\n".join(comparison.footer()) + "\n"
    widths = [max(len(h), *(len(row[j]) for row in cells)) for j, h in enumerate(TABLE_HEADER)]
    align = lambda row: "  ".join(  # noqa: E731
        cell.ljust(w) if j < 2 else cell.rjust(w)
        for j, (cell, w) in enumerate(zip(row, widths, strict=True))
    ).rstrip()
    lines = [align(TABLE_HEADER), align(["-" * w for w in widths])]
    for n, row in enumerate(cells):
        if n and row[0]:  # a blank line before each metric's group
            lines.append("")
        lines.append(align(row))
    footer = [textwrap.fill(line, 88, subsequent_indent="  ") for line in comparison.footer()]
    return "\n".join(lines + [""] + footer) + "\n"
