"""dotrec calibrate: fit a score-to-probability map on held-out data, store it in the model."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from dotrec.artifact import CALIBRATION_FILE, load_model, replace_files
from dotrec.calibration import CalibrationReport, calibrate
from dotrec.cli._common import add_data_options, echo, finite_float, load_data, warn


def add_parser(commands) -> argparse.ArgumentParser:
    parser = commands.add_parser(
        "calibrate",
        help="fit a calibrator on held-out data so the model gives probabilities",
        description="Fit a map from MODEL_DIR's scores to probabilities on the held-out "
        "side of its split and write it to MODEL_DIR/calibration.json (replacing any "
        "earlier one). DATA is that held-out side (test.csv of `dotrec split`), or the whole "
        "log, of which the pairs the model trained on are set aside. Positives are the "
        "held-out interactions; negatives are all other items the user had no training "
        "interaction with (or --negatives per positive, weighted back to the true rate). "
        "The probability is that of the item being among the user's held-out interactions; "
        "it holds only for data held out the same way. Fitted on 70% of the users; the "
        "ECE and log loss, before and after, are measured on the other 30%.",
    )
    parser.add_argument("model", metavar="MODEL_DIR", type=Path)
    parser.add_argument(
        "--data", required=True, metavar="DATA", help="held-out data: a file or a dataset name"
    )
    parser.add_argument("--method", choices=["platt", "isotonic"], default="platt")
    parser.add_argument(
        "--negatives",
        type=int,
        metavar="R",
        help="draw R negatives per positive instead of scoring every candidate item",
    )
    parser.add_argument(
        "--max-pairs",
        type=int,
        default=2_000_000,
        help="most (user, item) pairs scored; users are sampled to stay under it (default 2000000)",
    )
    parser.add_argument(
        "--report-fraction",
        type=finite_float,
        default=0.3,
        help="share of users kept out of the fit to measure on (default 0.3)",
    )
    parser.add_argument("--bins", type=int, default=15, help="ECE bins (default 15)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the samples (default 0)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")
    add_data_options(parser)
    return parser


def run(args: argparse.Namespace) -> int:
    model = load_model(args.model)
    heldout = load_data(args.data, args).interactions
    report = calibrate(
        model,
        heldout,
        args.method,
        negatives=args.negatives,
        max_pairs=args.max_pairs,
        report_fraction=args.report_fraction,
        n_bins=args.bins,
        seed=args.seed,
    )
    replace_files(args.model, {CALIBRATION_FILE: json.dumps(model.calibrator.to_dict())})
    if args.json:
        echo(json.dumps(report.to_dict() | {"written": str(args.model / CALIBRATION_FILE)}))
        return 0
    _notes(report)
    for line in _lines(report, model.name):
        echo(line)
    echo(f"wrote {args.model / CALIBRATION_FILE}")
    return 0


def _notes(report: CalibrationReport) -> None:
    notes = report.notes
    if notes["pairs_in_training_data"]:
        warn(
            f"{notes['pairs_in_training_data']} rows of DATA are pairs the model trained on; "
            "they were set aside (the rest is the held-out side)"
        )
    if notes["unknown_user_or_item"]:
        warn(
            f"{notes['unknown_user_or_item']} held-out rows have a user or item the model does "
            "not know; left out (the probability is over the model's catalogue)"
        )
    if notes["users_left_out_by_cap"]:
        warn(f"{notes['users_left_out_by_cap']} held-out users left out to stay under --max-pairs")
    if report.in_sample:
        warn("too few users to measure on users outside the fit: the numbers after are in-sample")


def _lines(report: CalibrationReport, model: str) -> list[str]:
    negatives = (
        "every non-training item a negative"
        if report.negatives is None
        else f"{report.negatives} drawn negatives per positive, weighted"
    )
    lines = [
        f"calibrated {model} with {report.method} on {report.fit_pairs} pairs of "
        f"{report.fit_users} users ({negatives})",
        f"measured on {report.report_pairs} pairs of {report.report_users} "
        f"{'of the same users (in-sample)' if report.in_sample else 'other users'}; "
        f"base rate {report.base_rate:.4%}",
        f"probability = {report.meaning}",
        report.before_note,
        "",
        f"{'':<32}{'before':>10}{'after':>10}",
    ]
    for binning, label in (("mass", "equal-mass"), ("width", "equal-width")):
        before = "-" if report.ece_before is None else f"{report.ece_before[binning]:.4f}"
        name = f"ECE ({report.n_bins} {label} bins)"
        lines.append(f"{name:<32}{before:>10}{report.ece_after[binning]:>10.4f}")
    before = "-" if report.log_loss_before is None else f"{report.log_loss_before:.4f}"
    lines.append(f"{'log loss':<32}{before:>10}{report.log_loss_after:>10.4f}")
    lines.append(
        f"{'log loss of the base rate alone':<32}{'':>10}{report.log_loss_base_rate:>10.4f}"
    )
    return lines
