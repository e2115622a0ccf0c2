"""dotrec inspect: what the data holds and what will hurt training or evaluation."""

from __future__ import annotations

import argparse
import json

from dotrec.cli._common import add_data_options, echo, load_data
from dotrec.data import DataReport, inspect_data


def add_parser(commands) -> argparse.ArgumentParser:
    parser = commands.add_parser(
        "inspect",
        help="describe interaction data and warn about what will hurt a model",
        description="Count the users, items and interactions of DATA, their sparsity, "
        "popularity skew, timestamps and ratings, and list what will hurt training or "
        "evaluation. With --test, also compare a test file with DATA as its training data.",
    )
    parser.add_argument("data", metavar="DATA", help="a file, or a dataset name such as ml-100k")
    parser.add_argument("--test", metavar="TEST_DATA", help="a test file to compare with DATA")
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")
    add_data_options(parser)
    return parser


def run(args: argparse.Namespace) -> int:
    data = load_data(args.data, args).interactions
    test = None if args.test is None else load_data(args.test, args).interactions
    report = inspect_data(data, test)
    if args.json:
        echo(json.dumps(report.to_dict(), indent=2))
    else:
        for line in _lines(report, args.test):
            echo(line)
    return 0


def _lines(report: DataReport, test_name: str | None) -> list[str]:
    lines = [
        f"data: {report.source}",
        f"rows: {report.rows} ({report.negative_rows} labelled negative)"
        if report.negative_rows
        else f"rows: {report.rows}",
        f"users: {report.users}   items: {report.items}   density: {report.density:.4%}",
        f"repeated (user, item) rows merged on loading: {report.duplicates_merged}",
    ]
    for name, counts in (("user", report.user_counts), ("item", report.item_counts)):
        few = ", ".join(f"<= {t}: {n}" for t, n in counts.at_most.items())
        lines.append(
            f"interactions per {name}: min {counts.min}, median {counts.median:g}, "
            f"mean {counts.mean:.1f}, max {counts.max}; {name}s with {few}"
        )
    shares = ", ".join(f"top {f:.0%} {s:.1%}" for f, s in report.top_item_share.items())
    lines.append(
        f"popularity: share of interactions on the {shares} of items; "
        f"Gini of item counts {report.item_gini:.3f}"
    )
    lines.extend(_time_lines(report))
    if report.rating_histogram is not None:
        total = sum(n for _, n in report.rating_histogram) or 1
        bars = ", ".join(f"{v}: {n} ({n / total:.1%})" for v, n in report.rating_histogram)
        lines.append(f"ratings: {bars}")
    if report.test is not None:
        t = report.test
        lines.append(
            f"test {test_name}: {t.rows} rows, {t.users} users; users not in DATA "
            f"{t.users_not_in_train}, items not in DATA {t.items_not_in_train}, rows with "
            f"either {t.rows_with_unseen_user_or_item}, pairs also in DATA {t.pairs_in_train}"
        )
    lines.append("warnings:" if report.warnings else "warnings: none")
    lines.extend(f"  - {text}" for text in report.warnings)
    return lines


def _time_lines(report: DataReport) -> list[str]:
    time = report.time
    if time is None:
        return ["timestamps: none"]
    span = f"{time.first} to {time.last} UTC " if time.first else ""
    return [
        f"timestamps: {span}({time.min} to {time.max}), {time.distinct} distinct; at most "
        f"{time.largest_tie} rows share one; {time.users_with_tied_last} users have a tie at "
        "their latest"
    ]
