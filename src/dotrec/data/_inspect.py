"""A report on interaction data: size, sparsity, skew, time and what will hurt training."""

from __future__ import annotations

import dataclasses
import logging
import math
import warnings
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import numpy as np
import pandas as pd

from dotrec.data._interactions import Interactions
from dotrec.exceptions import DataWarning

__all__ = ["CountSummary", "DataReport", "TrainTestReport", "TimeReport", "inspect_data"]

_log = logging.getLogger(__name__)

SPARSE_SHARE = 0.2
"""Warn when more than this share of users (or items) have at most the largest threshold."""
HEAD_SHARE = 0.5
"""Warn when the top 10% of items hold more than this share of the interactions."""
TIE_SHARE = 0.01
"""Warn when one timestamp is shared by more than this share of the rows."""
_RATING_VALUES = 20
"""Ratings with at most this many distinct values get one histogram bar each."""


@dataclass
class CountSummary:
    """How many positive interactions each user (or item) has."""

    min: int
    median: float
    mean: float
    max: int
    at_most: dict[int, int]
    """Threshold t -> how many users (items) have at most t interactions."""


@dataclass
class TimeReport:
    """The timestamps, and the ties that make time-based splits ambiguous."""

    min: int
    max: int
    first: str | None
    """``min`` as a UTC date when it looks like Unix seconds, else None."""
    last: str | None
    distinct: int
    """Distinct timestamps."""
    largest_tie: int
    """Most rows sharing one timestamp: a temporal split cannot cut inside them."""
    users_with_tied_last: int
    """Users whose latest timestamp is shared by two or more of their rows, so
    which row is "last" (leave-last split) falls to file order."""


@dataclass
class TrainTestReport:
    """A test file compared with the data, by raw ID."""

    rows: int
    users: int
    users_not_in_train: int
    """Test users with no row in the data: a model fitted on it cannot rank for them."""
    items_not_in_train: int
    """Test items with no row in the data: they can only count as misses."""
    rows_with_unseen_user_or_item: int
    pairs_in_train: int
    """Test (user, item) pairs also in the data: evaluation removes them."""


@dataclass
class DataReport:
    """What :func:`inspect_data` found; :meth:`to_dict` gives plain JSON values.

    User and item counts are of positive rows (every row, unless the data has
    a label column whose 0s mark observed negatives).
    """

    source: str
    rows: int
    users: int
    items: int
    density: float
    """Positive rows / (users x items)."""
    negative_rows: int
    """Rows labelled 0 (observed negatives)."""
    duplicates_merged: int
    """Raw rows that repeated a (user, item) pair and were merged on loading."""
    user_counts: CountSummary
    item_counts: CountSummary
    top_item_share: dict[float, float]
    """Share of the top fraction of items (by count; at least one item) ->
    share of the positive rows they hold."""
    item_gini: float
    """Gini coefficient of the item counts: 0 when every item is equally
    popular, near 1 when a few items have nearly everything."""
    time: TimeReport | None
    rating_histogram: list[tuple[str, int]] | None
    """(rating or range, rows); None without ratings."""
    test: TrainTestReport | None
    warnings: list[str] = field(default_factory=list)
    """Problems that will hurt training or evaluation, in words."""

    def to_dict(self) -> dict[str, Any]:
        """The report as JSON-ready plain values (threshold keys become text)."""
        out = dataclasses.asdict(self)
        for key in ("user_counts", "item_counts"):
            out[key]["at_most"] = {str(k): v for k, v in out[key]["at_most"].items()}
        out["top_item_share"] = {f"{k:g}": v for k, v in self.top_item_share.items()}
        if self.rating_histogram is not None:
            out["rating_histogram"] = dict(self.rating_histogram)
        return out


def inspect_data(
    interactions: Interactions | pd.DataFrame,
    test: Interactions | pd.DataFrame | None = None,
    *,
    at_most: tuple[int, ...] = (1, 5),
    top: tuple[float, ...] = (0.01, 0.1),
) -> DataReport:
    """Describe interaction data and warn about what will hurt a model.

    Args:
        interactions: the data, or a DataFrame with ``user_id`` and
            ``item_id`` columns (and optionally ``rating``, ``timestamp``,
            ``label``); repeated pairs in a DataFrame are counted, then merged.
        test: optional test data, compared with ``interactions`` by raw ID.
        at_most: thresholds for counting users and items with few interactions.
        top: fractions of the most popular items whose share is reported.

    Returns:
        A :class:`DataReport`.

    Example:
        >>> data = Interactions.from_ids(["a", "a", "b"], ["x", "y", "x"])
        >>> report = inspect_data(data)
        >>> report.users, report.items, report.user_counts.at_most[1]
        (2, 2, 1)
    """
    data = _as_interactions(interactions)
    test = None if test is None else _as_interactions(test)
    positive = data.subset(data.positive).compact()
    user_counts = np.bincount(positive.user_idx, minlength=positive.n_users)
    item_counts = np.bincount(positive.item_idx, minlength=positive.n_items)
    n_cells = max(positive.n_users * positive.n_items, 1)
    report = DataReport(
        source=data.source,
        rows=len(data),
        users=positive.n_users,
        items=positive.n_items,
        density=len(positive) / n_cells,
        negative_rows=int((~data.positive).sum()),
        duplicates_merged=int(data.duplicates_merged),
        user_counts=_summary(user_counts, at_most),
        item_counts=_summary(item_counts, at_most),
        top_item_share={f: _top_share(item_counts, f) for f in top},
        item_gini=gini(item_counts),
        time=None if data.timestamp is None else _time_report(data),
        rating_histogram=None if data.rating is None else _rating_histogram(data.rating),
        test=None if test is None else _test_report(data, test),
    )
    report.warnings = _warnings(report, max(at_most))
    _log.info("inspected %s: %d rows, %d warnings", data.source, len(data), len(report.warnings))
    return report


def gini(counts: np.ndarray) -> float:
    """Gini coefficient of non-negative counts (0: all equal; 0 for all zeros).

    ``sum_i (2i - n - 1) x_(i) / (n sum x)`` over the counts sorted ascending,
    i = 1..n: half the mean absolute difference between two counts, relative
    to the mean.

    Example:
        >>> gini(np.array([1, 1, 1, 1])), gini(np.array([0, 0, 0, 4]))
        (0.0, 0.75)
    """
    x = np.sort(np.asarray(counts, dtype=np.float64))
    n, total = len(x), x.sum()
    if n == 0 or total == 0:
        return 0.0
    rank = np.arange(1, n + 1)
    return float(np.sum((2 * rank - n - 1) * x) / (n * total))


def _as_interactions(value: Interactions | pd.DataFrame) -> Interactions:
    if isinstance(value, Interactions):
        return value
    if isinstance(value, pd.DataFrame):
        with warnings.catch_warnings():  # the report counts merged duplicates itself
            warnings.simplefilter("ignore", DataWarning)
            return Interactions.from_frame(value)
    raise TypeError(
        f"inspect_data takes Interactions or a pandas DataFrame, got {type(value).__name__}"
    )


def _summary(counts: np.ndarray, at_most: tuple[int, ...]) -> CountSummary:
    if len(counts) == 0:
        return CountSummary(0, 0.0, 0.0, 0, {t: 0 for t in at_most})
    return CountSummary(
        min=int(counts.min()),
        median=float(np.median(counts)),
        mean=float(counts.mean()),
        max=int(counts.max()),
        at_most={t: int((counts <= t).sum()) for t in sorted(at_most)},
    )


def _top_share(counts: np.ndarray, fraction: float) -> float:
    """Share of all counts held by the ``ceil(fraction * n)`` largest."""
    if counts.sum() == 0:
        return 0.0
    n_top = max(1, math.ceil(fraction * len(counts)))
    return float(np.sort(counts)[::-1][:n_top].sum() / counts.sum())


def _time_report(data: Interactions) -> TimeReport:
    stamps = data.timestamp
    _, tie_sizes = np.unique(stamps, return_counts=True)

    # Rows at each user's latest timestamp: two or more make leave-last ambiguous.
    frame = pd.DataFrame({"user": data.user_idx, "ts": stamps})
    latest = frame.groupby("user")["ts"].transform("max")
    at_latest = frame[frame["ts"] == latest].groupby("user").size()
    return TimeReport(
        min=int(stamps.min()),
        max=int(stamps.max()),
        first=_as_date(int(stamps.min())),
        last=_as_date(int(stamps.max())),
        distinct=len(tie_sizes),
        largest_tie=int(tie_sizes.max()),
        users_with_tied_last=int((at_latest > 1).sum()),
    )


def _as_date(stamp: int) -> str | None:
    """A UTC date for values that look like Unix seconds (1973 to 2286), else None."""
    if not 1e8 <= stamp < 1e10:
        return None
    return datetime.fromtimestamp(stamp, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


def _rating_histogram(rating: np.ndarray) -> list[tuple[str, int]]:
    values, counts = np.unique(rating, return_counts=True)
    if len(values) <= _RATING_VALUES:
        return [(f"{v:g}", int(c)) for v, c in zip(values, counts, strict=True)]
    edges = np.linspace(rating.min(), rating.max(), 11)
    counts, _ = np.histogram(rating, bins=edges)
    return [
        (f"[{lo:.4g}, {hi:.4g}{']' if i == 9 else ')'}", int(c))
        for i, (lo, hi, c) in enumerate(zip(edges[:-1], edges[1:], counts, strict=True))
    ]


def _test_report(train: Interactions, test: Interactions) -> TrainTestReport:
    user_idx = train.users.lookup(test.users.ids)[test.user_idx]
    item_idx = train.items.lookup(test.items.ids)[test.item_idx]
    train_users = np.zeros(train.n_users + 1, dtype=bool)  # last slot: unknown (-1)
    train_users[train.user_idx] = True
    train_items = np.zeros(train.n_items + 1, dtype=bool)
    train_items[train.item_idx] = True
    user_known, item_known = train_users[user_idx], train_items[item_idx]

    # Pairs as one integer key in the training vocabularies.
    both = user_known & item_known
    train_keys = train.user_idx * train.n_items + train.item_idx
    test_keys = user_idx[both] * train.n_items + item_idx[both]
    return TrainTestReport(
        rows=len(test),
        users=len(np.unique(test.user_idx)),
        users_not_in_train=len(np.unique(test.user_idx[~user_known])),
        items_not_in_train=len(np.unique(test.item_idx[~item_known])),
        rows_with_unseen_user_or_item=int((~both).sum()),
        pairs_in_train=int(np.isin(test_keys, train_keys).sum()),
    )


def _warnings(report: DataReport, sparse_at: int) -> list[str]:
    """Plain-words warnings about what will hurt training or evaluation."""
    out = []
    if report.duplicates_merged:
        out.append(
            f"{report.duplicates_merged} rows repeated a (user, item) pair and were merged "
            "into one (the latest is kept); dotrec learns each pair once, so repeat counts "
            "are lost. Aggregate them into a rating or weight column if they matter."
        )
    single = report.user_counts.at_most.get(1, 0)
    if single:
        out.append(
            f"{single} users have a single interaction: a per-user split keeps it in train, "
            "so they are never tested, and a temporal split may leave them cold."
        )
    sparse = report.user_counts.at_most.get(sparse_at, 0)
    if report.users and sparse / report.users > SPARSE_SHARE:
        out.append(
            f"{sparse} users ({sparse / report.users:.0%}) have at most {sparse_at} "
            "interactions: too few to learn much from, and a per-user split leaves them one "
            "test row or none, so their metrics are noisy."
        )
    rare = report.item_counts.at_most.get(sparse_at, 0)
    if report.items and rare / report.items > SPARSE_SHARE:
        out.append(
            f"{rare} items ({rare / report.items:.0%}) have at most {sparse_at} "
            "interactions: their vectors are barely trained and they are rarely recommended; "
            "consider dropping them or judging them separately."
        )
    head = report.top_item_share.get(0.1)
    if head is not None and head > HEAD_SHARE:
        out.append(
            f"the top 10% of items hold {head:.0%} of the interactions: a popularity "
            "baseline (--model popularity) will be hard to beat; compare against it."
        )
    out.extend(_time_warnings(report))
    if report.test is not None:
        out.extend(_test_warnings(report.test))
    return out


def _time_warnings(report: DataReport) -> list[str]:
    time = report.time
    if time is None:
        return [
            "no timestamps: only the random split applies; the leave-last and temporal "
            "splits need a timestamp column (--timestamp-col)."
        ]
    out = []
    if time.largest_tie > max(1, TIE_SHARE * report.rows):
        out.append(
            f"{time.largest_tie} rows share one timestamp: a temporal split cannot cut "
            "inside them, so the test share may differ from the one asked for."
        )
    if time.users_with_tied_last:
        out.append(
            f"{time.users_with_tied_last} users have two or more rows at their latest "
            "timestamp: which one a leave-last split holds out falls to file order."
        )
    return out


def _test_warnings(test: TrainTestReport) -> list[str]:
    out = []
    if test.users_not_in_train:
        out.append(
            f"{test.users_not_in_train} of {test.users} test users have no training row: "
            "a model cannot rank for them (they are skipped, or need --fallback popular)."
        )
    if test.items_not_in_train:
        out.append(
            f"{test.items_not_in_train} test items occur only in the test data: no model "
            "trained on this data can recommend them, so they count as misses."
        )
    if test.pairs_in_train:
        out.append(
            f"{test.pairs_in_train} test (user, item) pairs also occur in the training data: "
            "evaluation removes them; split so that each pair is on one side."
        )
    return out
