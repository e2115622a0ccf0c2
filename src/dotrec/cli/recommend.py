"""dotrec recommend: top-K items for users, as CSV."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from dotrec.artifact import load_model


def add_parser(commands) -> argparse.ArgumentParser:
    parser = commands.add_parser(
        "recommend", help="write top-K recommendations as CSV (user_id,item_id,rank,score)"
    )
    parser.add_argument("model", metavar="MODEL_DIR", type=Path)
    who = parser.add_mutually_exclusive_group(required=True)
    who.add_argument("--user", nargs="+", metavar="ID", help="raw user IDs")
    who.add_argument("--all-users", action="store_true", help="every user of the model")
    parser.add_argument("--k", type=int, default=10)
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
    model = load_model(args.model)
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
    if not frame["fallback"].any():
        frame = frame.drop(columns="fallback")
    if args.out is None:
        frame.to_csv(sys.stdout, index=False)
    else:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        frame.to_csv(args.out, index=False)
    return 0
