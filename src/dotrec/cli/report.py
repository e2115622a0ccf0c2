"""dotrec report: compare models and write one HTML page of plots about them."""

from __future__ import annotations

import argparse
from pathlib import Path

from dotrec.cli._common import echo, finite_float, warn
from dotrec.cli._outputs import check_output_file
from dotrec.cli.compare import (
    _check_run_configs,
    _is_fitted,
    _split,
    add_run_options,
    fit_models,
    resolve_models,
)
from dotrec.comparison import compare_models
from dotrec.data import read_items
from dotrec.models import TwoTower
from dotrec.report import check_matplotlib, check_tsne, make_report, uses_validation
from dotrec.split import random_split
from dotrec.stats import check_bootstrap_options


def add_parser(commands) -> argparse.ArgumentParser:
    parser = commands.add_parser(
        "report",
        help="write an HTML report: comparison table and plots (needs dotrec[report])",
        description="Split DATA once and train each MODEL as `dotrec compare` does, then "
        "write one self-contained HTML file (plots as embedded PNGs, no network needed): "
        "the comparison table with intervals, training loss and validation metric per "
        "epoch, each metric against K, item popularity against how often each item is "
        "recommended, a reliability diagram, and a 2-D map of the item embeddings coloured "
        "by genre. When a model trained here uses validation data (mf, bpr), a share of "
        "each user's training rows is held out as validation and every model trained here "
        "fits on the rest, so that all share one training set. Needs matplotlib: "
        "pip install 'dotrec[report]'.",
    )
    add_run_options(
        parser,
        ks=[1, 5, 10, 20, 50],
        seed_help="seed of the split, the bootstrap and the samples (default 0)",
    )
    parser.add_argument(
        "--out", required=True, type=Path, metavar="FILE", help="the HTML file to write"
    )
    parser.add_argument(
        "--validation-fraction",
        type=finite_float,
        metavar="F",
        help="share of each user's training rows held out as validation for models trained "
        "in epochs (default 0.1 when such a model is trained here, else 0; 0 turns it off)",
    )
    parser.add_argument(
        "--embedding",
        choices=["pca", "tsne"],
        default="pca",
        help="how the item map is drawn (default pca; tsne needs scikit-learn)",
    )
    parser.add_argument(
        "--items",
        metavar="FILE",
        help="item metadata with genres (u.item, movies.csv) when DATA is a file; read with "
        "--encoding when given",
    )
    parser.add_argument("--bins", type=int, default=15, help="reliability bins (default 15)")
    parser.add_argument(
        "--max-pairs",
        type=int,
        metavar="N",
        default=1_000_000,
        help="most (user, item) pairs scored per model for the reliability diagram "
        "(default 1000000)",
    )
    parser.add_argument("--title", help="page title (default: dotrec report: DATA)")
    return parser


def run(args: argparse.Namespace) -> int:
    # Fail on a missing plotting library, a bad option or name before reading data.
    check_matplotlib()
    if args.embedding == "tsne":
        check_tsne()
    check_bootstrap_options(args.resamples, args.confidence)
    if args.bins < 1 or args.max_pairs < 1:
        raise ValueError(
            f"--bins and --max-pairs must be positive, got {args.bins}, {args.max_pairs}"
        )
    specs = resolve_models(args)
    fraction = _validation_fraction(args, specs)
    genres = _genres(args)

    dataset, train, test = _split(args)
    _check_run_configs(args, specs)
    check_output_file(args.out, "--out", "report.html")
    fit_side, validation = train, None
    if fraction > 0:
        fit_side, validation = random_split(train, fraction, seed=args.seed)
    models, seconds = fit_models(args, specs, dataset, train, fit_side, validation)

    features = TwoTower.dataset_features(dataset).get("item_features")
    if genres is not None:
        features = genres.to_frame()
    elif features is not None:
        genres = features["genres"]
    comparison = compare_models(
        models,
        test,
        args.k,
        args.metrics,
        item_features=features,
        n_resamples=args.resamples,
        confidence=args.confidence,
        seed=args.seed,
        on_overlap=args.on_overlap,
    )
    if not args.quiet:
        warn("drawing the plots")
    summary = _summary(args, dataset.name, train, fit_side, validation, test, models, seconds)
    report = make_report(
        models,
        test,
        comparison,
        item_genres=genres,
        projection=args.embedding,
        n_bins=args.bins,
        max_pairs=args.max_pairs,
        seed=args.seed,
        title=args.title or f"dotrec report: {args.data}",
        summary=summary,
    )
    echo(f"wrote {report.write(args.out)}")
    return 0


def _validation_fraction(args, specs) -> float:
    """The share held out as validation: 0.1 when a model trained here uses it, by default."""
    loaded = [label for label, (_, model) in specs.items() if _is_fitted(model)]
    trained_here = [model for _, model in specs.values() if not _is_fitted(model)]
    wanted = any(uses_validation(model) for model in trained_here)
    if args.validation_fraction is None:
        return 0.1 if wanted and not loaded else 0.0
    if not 0.0 <= args.validation_fraction < 1.0:
        raise ValueError(f"--validation-fraction must be in [0, 1), got {args.validation_fraction}")
    if args.validation_fraction > 0 and loaded and trained_here:
        raise ValueError(
            f"--validation-fraction {args.validation_fraction} would train "
            "the named models on part of the training side, while the model folders "
            f"({', '.join(loaded)}) were trained on all of it; use --validation-fraction 0"
        )
    return args.validation_fraction


def _genres(args):
    """Genres by item ID from --items, or None."""
    if args.items is None:
        return None
    items = read_items(args.items, encoding=args.encoding)
    if "genres" not in items or not (items["genres"] != "").any():
        raise ValueError(f"{args.items}: no genres column with values; give a file with genres")
    return items["genres"]


def _summary(args, name, train, fit_side, validation, test, models, seconds) -> list[str]:
    """Lines on the data, the split and the models, for the top of the page."""
    if args.test is not None:
        split = f"training side {args.data}, test side {args.test}"
    else:
        split = f"{name}, {args.method} split (seed {args.seed})"
    lines = [
        f"Data: {split}: {len(train)} training rows, {len(test)} test rows of {test.n_users} users."
    ]
    if validation is not None:
        lines.append(
            f"Validation: {len(validation)} of the training rows (a per-user random share) "
            f"held out; every model trained here fit on the other {len(fit_side)}, and the "
            "models trained in epochs ranked the validation rows to choose their epoch. "
            "With --validation-fraction 0 the numbers are those of dotrec compare."
        )
    for label, model in models.items():
        how = f"trained in {seconds[label]:.1f} s" if label in seconds else "loaded"
        lines.append(f"{label}: {type(model).__name__}, {how}; score: {model.score_kind}.")
    return lines
