"""MovieLens 100K: dotrec's matrix factorization against implicit's ALS and popularity.

Every rating is a positive; ``dotrec.random_split(data, 0.2, seed=0)``. Each
model is fitted on the same training side and evaluated by the same code,
``dotrec.evaluate`` (full ranking over the catalogue, training items removed):
implicit's factors are wrapped in a small :class:`~dotrec.Recommender`, so no
metric is computed twice. Models:

- ``dotrec MF``: ``dotrec.MatrixFactorization()`` with its default settings;
- ``implicit ALS (tuned)``: 128 factors, regularization 50, confidence
  ``1 + 5 r`` (matrix values 6 for binary data), 15 iterations;
- ``implicit ALS (defaults)``: implicit's defaults on the binary matrix;
- ``popularity``: ``dotrec.Popularity()``, items ranked by training count.

Training time is the wall time of ``fit`` (dotrec's includes sampling): the
median over ``--repeats``, and the slowest fit, which is the first one in the
process (dotrec's first fit also pays about 2 s for Torch's one-time import of
its compiler stack when the first optimizer is made). The last line checks the
acceptance criteria: dotrec's NDCG@10 is at least 0.95 times tuned ALS's, and
every default dotrec fit takes at most 10 seconds. Needs
``pip install -e '.[bench]'``.

    DOTREC_DATA=../shared/data python benchmarks/ml100k.py --repeats 3
"""

# ruff: noqa: E402  (the environment is set before numpy is imported)
from __future__ import annotations

import os

# implicit parallelises ALS itself and recommends single-threaded BLAS (it warns
# otherwise); OpenBLAS reads this when it is loaded, so before numpy is imported.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse
import logging
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.sparse as sp
import torch

import dotrec
from dotrec.models.base import Recommender

_log = logging.getLogger("benchmarks.ml100k")

MIN_NDCG_RATIO = 0.95
"""dotrec's NDCG@10 must be at least this fraction of tuned ALS's."""
MAX_FIT_SECONDS = 10.0
"""dotrec's default training must take at most this long."""


@dataclass
class ALSConfig:
    """implicit's ALS settings; the matrix holds ``1 + confidence * r`` per positive."""

    factors: int = 100
    regularization: float = 0.01
    confidence: float = 0.0
    iterations: int = 15
    seed: int = 0


class ImplicitALS(Recommender):
    """implicit's CPU ALS behind dotrec's Recommender contract (benchmark only)."""

    name = "implicit-als"
    config_class = ALSConfig

    def _fit(self, data: dotrec.Interactions, show_progress: bool) -> None:
        from implicit.cpu.als import AlternatingLeastSquares

        cfg = self.config
        matrix = self.seen.astype(np.float32)
        matrix.data = 1.0 + cfg.confidence * matrix.data
        als = AlternatingLeastSquares(
            factors=cfg.factors,
            regularization=cfg.regularization,
            iterations=cfg.iterations,
            random_state=cfg.seed,
        )
        als.fit(sp.csr_matrix(matrix), show_progress=show_progress)  # implicit wants csr_matrix
        self._users = torch.from_numpy(np.ascontiguousarray(als.user_factors))
        self._items = torch.from_numpy(np.ascontiguousarray(als.item_factors))

    def _score_users(self, user_idx: torch.Tensor) -> torch.Tensor:
        return self._users[user_idx] @ self._items.T

    def _score_pairs(self, user_idx: torch.Tensor, item_idx: torch.Tensor) -> torch.Tensor:
        return (self._users[user_idx] * self._items[item_idx]).sum(-1)

    def _item_vectors(self) -> torch.Tensor:
        return self._items

    def _tensors(self) -> dict[str, torch.Tensor]:
        return {"users": self._users, "items": self._items}

    def _load_tensors(self, tensors: dict[str, torch.Tensor]) -> None:
        self._users, self._items = tensors["users"], tensors["items"]


MODELS = {
    "dotrec MF (defaults)": lambda: dotrec.MatrixFactorization(),
    "implicit ALS (tuned)": lambda: ImplicitALS(factors=128, regularization=50.0, confidence=5.0),
    "implicit ALS (defaults)": lambda: ImplicitALS(),
    "popularity": lambda: dotrec.Popularity(),
}
DOTREC, TUNED_ALS = "dotrec MF (defaults)", "implicit ALS (tuned)"


@dataclass
class Row:
    name: str
    ndcg: float
    recall: float
    seconds: float
    slowest: float


def run(train: dotrec.Interactions, test: dotrec.Interactions, repeats: int, k: int) -> list[Row]:
    """Fit every model ``repeats`` times (interleaved, dotrec first); medians, slowest fit."""
    times: dict[str, list[float]] = {name: [] for name in MODELS}
    ndcgs: dict[str, list[float]] = {name: [] for name in MODELS}
    recalls: dict[str, list[float]] = {name: [] for name in MODELS}
    for repeat in range(1, repeats + 1):
        for name, make in MODELS.items():
            model = make()
            start = time.perf_counter()
            model.fit(train)
            seconds = time.perf_counter() - start
            metrics = dotrec.evaluate(model, test, k=k).metrics
            times[name].append(seconds)
            ndcgs[name].append(metrics[f"ndcg@{k}"])
            recalls[name].append(metrics[f"recall@{k}"])
            _log.info(
                "repeat %d/%d %-24s fit %6.2f s  ndcg@%d %.4f",
                repeat,
                repeats,
                name,
                seconds,
                k,
                ndcgs[name][-1],
            )
    return [
        Row(
            name,
            statistics.median(ndcgs[name]),
            statistics.median(recalls[name]),
            statistics.median(times[name]),
            max(times[name]),
        )
        for name in MODELS
    ]


def table(rows: list[Row], k: int) -> str:
    by_name = {row.name: row for row in rows}
    base_time, base_ndcg = by_name[DOTREC].seconds, by_name[TUNED_ALS].ndcg
    header = (
        f"{'model':<25} {f'NDCG@{k}':>8} {f'Recall@{k}':>10} {'train s':>7} "
        f"{'slowest s':>9} {'time/dotrec':>11} {'NDCG/ALS tuned':>14}"
    )
    lines = [header, "-" * len(header)]
    for row in rows:
        lines.append(
            f"{row.name:<25} {row.ndcg:>8.4f} {row.recall:>10.4f} {row.seconds:>7.2f} "
            f"{row.slowest:>9.2f} {row.seconds / base_time:>11.2f} "
            f"{row.ndcg / base_ndcg:>14.3f}"
        )
    return "\n".join(lines)


def verdict(rows: list[Row], k: int) -> tuple[bool, str]:
    by_name = {row.name: row for row in rows}
    mf, als = by_name[DOTREC], by_name[TUNED_ALS]
    quality = mf.ndcg >= MIN_NDCG_RATIO * als.ndcg
    speed = mf.slowest <= MAX_FIT_SECONDS
    text = (
        f"NDCG@{k} {mf.ndcg:.4f} >= {MIN_NDCG_RATIO} x tuned ALS {als.ndcg:.4f} "
        f"= {MIN_NDCG_RATIO * als.ndcg:.4f}: {'PASS' if quality else 'FAIL'}; "
        f"slowest fit {mf.slowest:.2f} s (median {mf.seconds:.2f} s) <= {MAX_FIT_SECONDS:g} s: "
        f"{'PASS' if speed else 'FAIL'}"
    )
    return quality and speed, f"{'PASS' if quality and speed else 'FAIL'}: {text}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="fits per model (default 3)")
    parser.add_argument(
        "--data-dir", type=Path, default=None, help="folder holding ml-100k (default: $DOTREC_DATA)"
    )
    parser.add_argument("--k", type=int, default=10, help="metric cutoff (default 10)")
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    _log.setLevel(logging.INFO)

    data = dotrec.load_dataset("ml-100k", root=args.data_dir).interactions
    train, test = dotrec.random_split(data, 0.2, seed=0)
    _log.info(
        "ml-100k: %d training and %d test rows; torch %s with %d threads",
        len(train),
        len(test),
        torch.__version__,
        torch.get_num_threads(),
    )
    rows = run(train, test, args.repeats, args.k)
    print(f"MovieLens 100K, random_split(0.2, seed=0), median of {args.repeats} fit(s)")
    print(table(rows, args.k))
    ok, line = verdict(rows, args.k)
    print(line)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
