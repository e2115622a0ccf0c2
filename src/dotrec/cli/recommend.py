"""dotrec recommend: top-K items for users, as CSV."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from dotrec.artifact import load_model
from dotrec.cli._common import warn
from dotrec.cli._outputs import check_output_file


def add_parser(commands) -> argparse.ArgumentParser:
    parser = commands.add_parser(
        "recommend", help="write top-K recommendations as CSV (user_id,item_id,rank,score)"
    )
    parser.add_argument("model", metavar="MODEL_DIR", type=Path)
    who = parser.add_mutually_exclusive_group(required=True)
    who.add_argument("--user", nargs="+", metavar="ID", help="raw user IDs")
    who.add_argument("--all-users", action="store_true", help="every user of the model")
    parser.add_argument("--k", type=int, default=10, help="list length (default 10)")
    parser.add_argument("--items", nargs="+", metavar="ID", help="only rank these items")
    parser.add_argument(
        "--include-seen",
        action="store_true",
        help="allow items the user had in training (excluded by default)",
    )
    parser.add_argument(
        "--fallback",
        choices=["popular"],
        help="answer unknown users with popular items (marked in a column)",
    )
    parser.add_argument(
        "--exact",
        action="store_true",
        help="rank every item, even when the model has an approximate index (dotrec index)",
    )
    parser.add_argument("--out", type=Path, help="CSV file to write (default: standard output)")
    return parser


def run(args: argparse.Namespace) -> int:
    if args.k < 1:
        raise ValueError(f"--k must be at least 1, got {args.k}")
    model = load_model(args.model)
    if args.out is not None:
        check_output_file(args.out, "--out", "recs.csv")
    users = model.users.ids if args.all_users else args.user
    recs = model.recommend(
        users,
        k=args.k,
        exclude_seen=not args.include_seen,
        items=args.items,
        fallback=args.fallback,
        exact=True if args.exact else None,
    )
    frame = recs.to_frame()
    _warn_short_lists(recs, args)
    if not frame["fallback"].any():
        frame = frame.drop(columns="fallback")
    if args.out is None:
        frame.to_csv(sys.stdout, index=False)
    else:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        frame.to_csv(args.out, index=False)
    return 0


def _warn_short_lists(recs, args: argparse.Namespace) -> None:
    """Say on standard error which users got fewer than ``--k`` items, and why."""
    seen = "" if args.include_seen else " after their training items are removed"
    fix = "; --include-seen ranks those too" if not args.include_seen else ""
    notes = (
        (recs.counts == 0, f"no items: no candidate item is left{seen}{fix}"),
        (
            (recs.counts > 0) & (recs.counts < args.k),
            f"fewer than {args.k} items: only that many candidates are left{seen}",
        ),
    )
    for mask, why in notes:
        users = [str(user) for user in recs.query_ids[mask]]
        if users:
            more = f" and {len(users) - 5} more" if len(users) > 5 else ""
            warn(f"{len(users)} user(s) got {why} ({', '.join(users[:5])}{more})")
