"""dotrec quickstart: the main job end to end on MovieLens 100K."""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

from dotrec.cli._common import echo, warn
from dotrec.cli._outputs import check_model_dir
from dotrec.data import Dataset, data_dir, load_dataset, synthetic
from dotrec.evaluation import evaluate
from dotrec.exceptions import DataError
from dotrec.models import MatrixFactorization
from dotrec.split import random_split, split_report


def add_parser(commands) -> argparse.ArgumentParser:
    parser = commands.add_parser(
        "quickstart",
        help="split MovieLens 100K, train, evaluate and show recommendations",
        description="Loads ml-100k from the data directory ($DOTREC_DATA, default "
        "~/.cache/dotrec), downloading it there when missing. When the data cannot be had "
        "(no network, or $DOTREC_DATA names a folder that does not exist, which is never "
        "created) it says why and uses a built-in synthetic dataset.",
    )
    parser.add_argument(
        "--dataset",
        help="dataset name (default ml-100k, falling back to synthetic data when unavailable; "
        "a dataset named here must be available)",
    )
    parser.add_argument("--user", help="user to show (default: the first test user)")
    parser.add_argument("--epochs", type=int, help="training epochs (default: the model's)")
    parser.add_argument("--out", type=Path, help="also save the model to this folder")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser


def run(args: argparse.Namespace) -> int:
    if args.out:
        check_model_dir(args.out, "--out")
    dataset = _load(args.dataset) if args.dataset else _load_or_synthetic("ml-100k")
    data = dataset.interactions
    echo(f"{dataset.name}: {len(data)} interactions, {data.n_users} users, {data.n_items} items")

    train, test = random_split(data, test_fraction=0.2, seed=0)
    user = args.user or test.users.ids[test.user_idx[0]]
    if user not in set(train.users.ids[train.user_idx]):
        raise ValueError(f"user {user!r} has no training interactions in {dataset.name}")
    report = split_report(train, test)
    echo(
        f"split per user at random, 20% to test (seed 0): {report['train_rows']} train rows, "
        f"{report['test_rows']} test rows; {report['test_only_items']} test items never in "
        "train (they count as misses)"
    )

    settings = {} if args.epochs is None else {"epochs": args.epochs}
    model = MatrixFactorization(**settings)
    started = time.perf_counter()
    model.fit(train, show_progress=not args.quiet and sys.stderr.isatty())
    echo(
        f"trained matrix factorization ({model.config.embedding_dim} dims, "
        f"{model.config.epochs} epochs, BCE with {model.config.n_negatives} sampled negatives "
        f"per positive) in {time.perf_counter() - started:.1f} s"
    )
    if args.out:
        model.save(args.out)
        echo(f"saved the model to {args.out}")

    result = evaluate(model, test, k=[5, 10, 20])
    echo(
        f"\nfull-ranking evaluation over {result.n_users} test users "
        "(training items removed from the candidates):"
    )
    echo(result.table())
    _show_user(model, dataset, train, test, user)
    return 0


def _load(name: str) -> Dataset:
    return load_dataset(name)


def _load_or_synthetic(name: str) -> Dataset:
    """The named dataset, or the synthetic one with a notice saying why.

    Nothing here may stop the run for want of data or network: a missing or
    damaged copy, a failed download or a data directory that does not exist
    all lead to the synthetic dataset.
    """
    root = data_dir()
    problem = _missing_data_dir(root, name)
    if problem is None:
        try:
            return load_dataset(name)
        except (DataError, OSError) as err:  # OSError covers DatasetNotFoundError
            problem = str(err)
    warn(problem)
    warn(
        f"{name} is not available (data directory: {root}); continuing with the "
        "built-in synthetic dataset, which has taste clusters and popularity skew like real "
        "logs. Numbers below are for that dataset, not MovieLens."
    )
    return synthetic()


def _missing_data_dir(root: Path, name: str) -> str | None:
    """Why ``$DOTREC_DATA`` cannot be used, or None.

    A folder named by the variable that does not exist is more likely a
    mistake (a relative path from another folder) than a place to create;
    quickstart neither creates it nor downloads into it.
    """
    if not os.environ.get("DOTREC_DATA") or root.is_dir():
        return None
    what = "is a file, not a folder" if root.exists() else "does not exist"
    return (
        f"the data directory {root} (from DOTREC_DATA) {what}; quickstart neither creates it "
        f"nor downloads into it. Point DOTREC_DATA at the folder that holds {name}/, or at an "
        "existing folder to download it into."
    )


def _show_user(model, dataset: Dataset, train, test, user: str) -> None:
    titles = {} if dataset.items is None else dataset.items["title"].to_dict()
    name = lambda item: titles.get(item, item)  # noqa: E731
    frame = train.to_frame()
    history = frame[frame["user_id"] == user]
    if "rating" in history:
        history = history.sort_values("rating", ascending=False, kind="stable")
    echo(f"\nuser {user}: {len(history)} training interactions, for example:")
    for row in history.head(5).itertuples():
        rating = f"  rated {row.rating:g}" if "rating" in history else ""
        echo(f"  {name(row.item_id)}{rating}")

    held_out = set(test.items.ids[test.item_idx[test.users.ids[test.user_idx] == user]])
    recs = model.recommend(user, k=10)
    echo(f"top 10 for user {user} (score = {model.score_kind}; * = in the user's test set):")
    for rank, (item, score) in enumerate(recs.to_list()[0], start=1):
        mark = "*" if item in held_out else " "
        echo(f"  {rank:>2}. {mark} {name(item):<60} {score:7.3f}")
    hits = int(np.sum([item in held_out for item, _ in recs.to_list()[0]]))
    echo(f"{hits} of the 10 are items the user went on to rate in the test set.")
