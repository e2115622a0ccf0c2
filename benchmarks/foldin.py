"""Fold-in on MovieLens 100K: recommending from a history against the trained user.

Every rating is a positive; ``dotrec.random_split(data, 0.2, seed=0)``. Each
model is fitted on the training side with its default settings. For every
test user it recommends twice, ten items each, training items left out:

- ``recommend(user)``: from the user's trained representation;
- ``recommend_from_history(that user's training items)``: the user folded in
  as if new, the model's item side fixed.

The table shows, per model, the mean overlap@10 of the two lists (shared
items / 10), NDCG@10 of each on the test side (``dotrec.evaluate_lists``, the
same code for both), and the time of the fold-in for all test users.

    DOTREC_DATA=../shared/data python benchmarks/foldin.py [--models mf als ease itemknn]
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

import dotrec
from dotrec.models import MODELS

DEFAULT_MODELS = ["mf", "bpr", "als", "ease", "itemknn", "lightgcn", "two-tower", "popularity"]


def overlap(first: np.ndarray, second: np.ndarray, k: int) -> float:
    """Mean over rows of |first_row & second_row| / k (object arrays, None padding)."""
    shared = [len(set(a) & set(b) - {None}) for a, b in zip(first, second, strict=True)]
    return float(np.mean(shared)) / k


def measure(name: str, train: dotrec.Interactions, test: dotrec.Interactions, k: int) -> dict:
    start = time.perf_counter()
    model = MODELS[name](device="cpu") if name not in ("itemknn", "popularity") else MODELS[name]()
    model.fit(train)
    fit_seconds = time.perf_counter() - start

    test_users = [u for u in np.unique(test.users.ids[test.user_idx]) if u in model.users]
    trained = model.recommend(test_users, k=k)
    seen = model.seen[model.users.index(test_users, "user")]
    bounds = zip(seen.indptr[:-1], seen.indptr[1:], strict=True)
    histories = [model.items.ids[seen.indices[a:b]] for a, b in bounds]
    start = time.perf_counter()
    folded = model.recommend_from_history(histories, k=k)
    fold_seconds = time.perf_counter() - start

    frame = folded.to_frame()
    frame["user_id"] = np.asarray(test_users, dtype=object)[frame["user_id"].str[8:].astype(int)]
    ndcg = f"ndcg@{k}"
    return {
        "model": name,
        "users": len(test_users),
        "overlap": overlap(trained.item_ids, folded.item_ids, k),
        "trained": dotrec.evaluate_lists(trained.to_frame(), test, k).metrics[ndcg],
        "folded": dotrec.evaluate_lists(frame, test, k).metrics[ndcg],
        "fit_s": fit_seconds,
        "fold_s": fold_seconds,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=DEFAULT_MODELS, choices=sorted(MODELS))
    parser.add_argument("--k", type=int, default=10)
    args = parser.parse_args(argv)

    data = dotrec.load_dataset("ml-100k").interactions
    train, test = dotrec.random_split(data, 0.2, seed=0)
    k = args.k
    print(
        f"{'model':<11} {'users':>5} {'overlap@' + str(k):>10} {'NDCG trained':>12} "
        f"{'NDCG folded':>11} {'fit s':>6} {'fold-in s':>9}"
    )
    for name in args.models:
        row = measure(name, train, test, k)
        print(
            f"{row['model']:<11} {row['users']:>5} {row['overlap']:>10.3f} "
            f"{row['trained']:>12.4f} {row['folded']:>11.4f} {row['fit_s']:>6.1f} "
            f"{row['fold_s']:>9.2f}",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
