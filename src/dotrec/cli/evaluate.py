"""dotrec evaluate: full-ranking metrics of a model (or of written lists) on test data."""

from __future__ import annotations

import argparse
import json
import warnings
from pathlib import Path

from dotrec.artifact import load_model
from dotrec.cli._common import add_data_options, echo, load_data, warn
from dotrec.cli._outputs import check_output_file
from dotrec.evaluation import (
    EvaluationResult,
    RatingResult,
    evaluate,
    evaluate_lists,
    evaluate_ratings,
    read_lists,
)
from dotrec.exceptions import DataWarning


def add_parser(commands) -> argparse.ArgumentParser:
    parser = commands.add_parser(
        "evaluate",
        help="rank the whole catalogue for test users and print metrics",
        description="Evaluate MODEL (a model folder, or a CSV of lists with columns "
        "user_id,item_id,rank) on TEST_DATA. Each user's training items are removed from "
        "the candidates; test pairs also in training are reported and removed.",
    )
    parser.add_argument("model", metavar="MODEL", type=Path)
    parser.add_argument("test", metavar="TEST_DATA")
    parser.add_argument("--k", type=int, nargs="+", default=[10], help="cutoffs (default 10)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument(
        "--on-overlap",
        choices=["drop", "raise"],
        default="drop",
        help="test pairs also in training: remove with a warning, or fail",
    )
    parser.add_argument("--lists-out", type=Path, help="write the top-K lists used to this CSV")
    add_data_options(parser)
    return parser


def run(args: argparse.Namespace) -> int:
    test = load_data(args.test, args).interactions
    if args.lists_out is not None:
        check_output_file(args.lists_out, "--lists-out", "lists.csv")
    ratings = None
    if args.model.is_file():
        lists = read_lists(args.model, encoding=args.encoding or "utf-8")
        result = evaluate_lists(lists, test, args.k)
    else:
        model = load_model(args.model)
        result = evaluate(
            model,
            test,
            args.k,
            on_overlap=args.on_overlap,
            return_recommendations=args.lists_out is not None,
        )
        if args.lists_out is not None:
            args.lists_out.parent.mkdir(parents=True, exist_ok=True)
            result.recommendations.to_csv(args.lists_out, index=False)
        if model.predicts_ratings and test.rating is not None:
            with warnings.catch_warnings():  # the ranking evaluation already warned
                warnings.simplefilter("ignore", DataWarning)
                ratings = evaluate_ratings(model, test, on_overlap=args.on_overlap)
    _print(result, args.json, ratings)
    if result.n_users == 0:
        warn("error: no test user could be evaluated (see above); no metric is available.")
        return 1
    return 0


def _print(result: EvaluationResult, as_json: bool, ratings: RatingResult | None) -> None:
    if as_json:
        payload = result.to_dict()
        if ratings is not None:
            payload["ratings"] = ratings.to_dict()
        echo(json.dumps(payload, indent=2))
        return
    notes = result.notes
    echo(f"users evaluated: {result.n_users}")
    skipped = [
        f"{notes[key]} {label}"
        for key, label in [
            ("unknown_users", "test users unknown to the model (not evaluated)"),
            (
                "rows_with_unknown_item",
                "test rows with items unknown to the model (counted as misses)",
            ),
        ]
        if notes.get(key)
    ]
    for line in skipped:
        warn(line)
    echo(result.table())
    if ratings is not None:  # a rating model: its errors on the test ratings too
        echo(f"ratings evaluated: {ratings.n_rows}")
        echo(ratings.table())
