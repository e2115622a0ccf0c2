"""dotrec split: write train.csv and test.csv and report cold users and items."""

from __future__ import annotations

import argparse
from pathlib import Path

from dotrec.cli._common import add_data_options, echo, finite_float, interactions_to_csv, load_data
from dotrec.cli._outputs import check_output_dir, check_output_file
from dotrec.data import Interactions
from dotrec.split import (
    cutoff_seconds,
    leave_last_split,
    random_split,
    split_report,
    temporal_split,
)


def add_parser(commands) -> argparse.ArgumentParser:
    parser = commands.add_parser(
        "split",
        help="split interactions into train and test files",
        description="Split DATA into OUT_DIR/train.csv and OUT_DIR/test.csv. 'random' and "
        "'leave-last' work per user, so one user's test rows may be older than another's "
        "training rows; 'temporal' cuts all users at one time and leaks nothing from the future.",
    )
    parser.add_argument("data", metavar="DATA", help="a file, or a dataset name such as ml-100k")
    add_split_options(parser)
    parser.add_argument("--out-dir", required=True, type=Path, help="folder for the two files")
    add_data_options(parser)
    return parser


def add_split_options(
    parser: argparse.ArgumentParser, seed_help: str = "random: the seed (default 0)"
) -> None:
    """Options that choose the split (shared with ``dotrec compare``)."""
    parser.add_argument("--method", choices=["random", "leave-last", "temporal"], default="random")
    parser.add_argument(
        "--test-fraction",
        type=finite_float,
        default=None,
        help="random: share of each user's rows (default 0.2); temporal: share "
        "of rows at or after the cutoff",
    )
    parser.add_argument("--n", type=int, default=1, help="leave-last: rows per user (default 1)")
    parser.add_argument(
        "--cutoff",
        type=_cutoff,
        help="temporal: test is at or after this time: a timestamp in the data's unit, or an "
        "ISO 8601 date such as 1998-01-01 (UTC unless it says otherwise)",
    )
    parser.add_argument("--seed", type=int, default=0, help=seed_help)


def _cutoff(text: str) -> int | float:
    try:
        return cutoff_seconds(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from err


def split_data(data: Interactions, args: argparse.Namespace) -> tuple[Interactions, Interactions]:
    """Train and test sides of ``data`` as the split options say."""
    _refuse_other_methods_options(args)
    if args.method == "random":
        fraction = 0.2 if args.test_fraction is None else args.test_fraction
        return random_split(data, fraction, seed=args.seed)
    if args.method == "leave-last":
        return leave_last_split(data, args.n)
    fraction = None if args.cutoff is not None else args.test_fraction
    fraction = 0.2 if fraction is None and args.cutoff is None else fraction
    return temporal_split(data, cutoff=args.cutoff, test_fraction=fraction)


_USED_BY = {
    "--cutoff": ("temporal",),
    "--n": ("leave-last",),
    "--test-fraction": ("random", "temporal"),
}
"""The methods each split option applies to."""


def _refuse_other_methods_options(args: argparse.Namespace) -> None:
    """A split option given with a method that ignores it is an error, not a silent no-op."""
    given = {
        "--cutoff": args.cutoff is not None,
        "--n": args.n != 1,
        "--test-fraction": args.test_fraction is not None,
    }
    for option, methods in _USED_BY.items():
        if given[option] and args.method not in methods:
            raise ValueError(
                f"{option} applies to --method {' or '.join(methods)}, not to --method "
                f"{args.method}: leave it out, or choose --method {methods[0]}"
            )


def run(args: argparse.Namespace) -> int:
    data = load_data(args.data, args).interactions
    check_output_dir(args.out_dir, "--out-dir")
    for name in ("train.csv", "test.csv"):
        check_output_file(args.out_dir / name, "--out-dir", name)
    train, test = split_data(data, args)
    interactions_to_csv(train, args.out_dir / "train.csv")
    interactions_to_csv(test, args.out_dir / "test.csv")
    report = split_report(train, test)
    echo(
        f"wrote {args.out_dir / 'train.csv'} ({report['train_rows']} rows) and "
        f"{args.out_dir / 'test.csv'} ({report['test_rows']} rows, {report['test_users']} users)"
    )
    echo(
        f"test users not in train: {report['test_only_users']}; test items not in train: "
        f"{report['test_only_items']}; test rows a model trained on train cannot rank: "
        f"{report['test_rows_with_unseen_user_or_item']}"
    )
    return 0
