"""Train/test splits: per-user random, leave-last-n per user, global temporal.

Every split puts each row in exactly one side, so no (user, item) pair is in
both. Both sides keep the full vocabularies; a model fitted on the train side
learns only the users and items that occur there, and evaluation reports
the test rows it cannot rank (see :func:`split_report`).

Per-user splits (``random_split``, ``leave_last_split``) hold out part of
each user's history, but they do not keep all training data before all test
data: one user's test rows can be older than another user's training rows, so
a model may learn from events that happen after the ones it is tested on. For
evaluation free of that leakage, use :func:`temporal_split`, which cuts every
user's history at one global time.
"""

from __future__ import annotations

import datetime
import logging
import warnings

import numpy as np
import pandas as pd

from dotrec.data import Interactions
from dotrec.data._checks import epoch_seconds
from dotrec.data._interactions import require_interactions
from dotrec.exceptions import DataWarning

__all__ = ["cutoff_seconds", "leave_last_split", "random_split", "split_report", "temporal_split"]

Cutoff = int | float | str | datetime.date | np.datetime64
"""A point in time: a timestamp in the data's unit, or a date (ISO 8601 text or a date-time)."""

_log = logging.getLogger(__name__)


def random_split(
    interactions: Interactions, test_fraction: float = 0.2, seed: int = 0
) -> tuple[Interactions, Interactions]:
    """Hold out a random ``test_fraction`` of each user's rows.

    A user with n rows gives ``floor(test_fraction * n)`` rows to test, and the
    remainders are apportioned so that the test side holds
    ``round(test_fraction * N)`` rows in all (ties broken at random). Every
    user keeps at least one training row.

    This is a per-user split: it does not keep all training data before all
    test data, so a model may learn from events after another user's test
    rows. Use :func:`temporal_split` for evaluation free of that leakage.

    Example:
        >>> data = Interactions.from_ids(["u"] * 5 + ["v"] * 5, list("abcdeabcde"))
        >>> train, test = random_split(data, 0.2, seed=0)
        >>> len(train), len(test)
        (8, 2)
    """
    require_interactions(interactions, "random_split()")
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must be between 0 and 1, got {test_fraction!r}")
    rng = np.random.default_rng(seed)
    n = len(interactions)
    users = interactions.user_idx
    counts = np.bincount(users, minlength=interactions.n_users)

    quota_exact = test_fraction * counts
    quota = np.floor(quota_exact).astype(np.int64)
    extra = int(round(test_fraction * n)) - int(quota.sum())
    remainder = quota_exact - quota
    tiebreak = rng.random(len(counts))
    for user in np.lexsort((tiebreak, -remainder))[: max(extra, 0)]:
        quota[user] += 1
    quota = np.minimum(quota, np.maximum(counts - 1, 0))

    # Random order within each user, then the first quota[u] rows go to test.
    order = np.lexsort((rng.random(n), users))
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    position = np.empty(n, dtype=np.int64)
    position[order] = np.arange(n) - np.repeat(starts, counts)
    test = position < quota[users]
    return _sides(interactions, test)


def leave_last_split(interactions: Interactions, n: int = 1) -> tuple[Interactions, Interactions]:
    """Hold out each user's ``n`` latest rows by timestamp.

    Timestamps are compared as numbers; among equal timestamps the row later in
    the file counts as later. Every user keeps at least one training row.

    This is a per-user split: it does not keep all training data before all
    test data (one user's training rows may be newer than another user's test
    rows), so a model may learn from the future it is tested on. Use
    :func:`temporal_split` for evaluation free of that leakage.

    Raises:
        ValueError: the data has no timestamps.
    """
    require_interactions(interactions, "leave_last_split()")
    if interactions.timestamp is None:
        raise ValueError(
            f"{interactions.source}: the leave-last split needs timestamps, and this data has "
            "none. Name the timestamp column when loading (timestamp_col=, command line "
            "--timestamp-col), or use the random split."
        )
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    users = interactions.user_idx
    counts = np.bincount(users, minlength=interactions.n_users)
    rows = np.arange(len(interactions))
    order = np.lexsort((-rows, -interactions.timestamp, users))  # newest first per user
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    recency = np.empty(len(order), dtype=np.int64)
    recency[order] = rows - np.repeat(starts, counts)
    test = recency < np.minimum(n, counts - 1)[users]
    return _sides(interactions, test)


def temporal_split(
    interactions: Interactions, cutoff: Cutoff | None = None, test_fraction: float | None = None
) -> tuple[Interactions, Interactions]:
    """Cut at one global time: train strictly before ``cutoff``, test at or after.

    Give either ``cutoff`` or ``test_fraction`` (the cutoff is then the
    timestamp below which ``1 - test_fraction`` of the rows fall). A cutoff
    is a timestamp in the unit of the data's timestamps, or a date: ISO 8601
    text such as ``"1998-01-01"`` or ``"1998-01-01T12:00:00+02:00"``, or a
    ``datetime``, which become Unix seconds (UTC unless they say otherwise),
    as dates in a timestamp column do when read (see :func:`cutoff_seconds`).
    """
    require_interactions(interactions, "temporal_split()")
    if interactions.timestamp is None:
        raise ValueError(
            f"{interactions.source}: the temporal split needs timestamps, and this data has "
            "none. Name the timestamp column when loading (timestamp_col=, command line "
            "--timestamp-col), or use the random split."
        )
    if (cutoff is None) == (test_fraction is None):
        raise ValueError("give exactly one of cutoff and test_fraction")
    if cutoff is not None:
        cutoff = cutoff_seconds(cutoff)
    stamps = interactions.timestamp
    if cutoff is None:
        if not 0.0 < test_fraction < 1.0:
            raise ValueError(f"test_fraction must be between 0 and 1, got {test_fraction!r}")
        cutoff = int(np.sort(stamps)[int(round((1 - test_fraction) * (len(stamps) - 1)))])
    return _sides(interactions, stamps >= cutoff)


def cutoff_seconds(cutoff: Cutoff) -> int | float:
    """A cutoff as a number: numbers (and number text) as they are, dates as Unix seconds.

    Example:
        >>> cutoff_seconds("1998-01-01"), cutoff_seconds("881250949"), cutoff_seconds(1.5)
        (883612800, 881250949, 1.5)

    Raises:
        ValueError: not a finite number nor an ISO 8601 date, naming the value.
    """
    value = cutoff.strip() if isinstance(cutoff, str) else cutoff
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            return _date_seconds(value, cutoff)
        value = int(value) if value.is_integer() else value
    elif isinstance(value, (datetime.date, np.datetime64)):
        return _date_seconds(value, cutoff)
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float, np.integer, np.floating))
        or not np.isfinite(value)
    ):
        raise ValueError(
            f"cutoff must be a timestamp (a finite number, in the unit of the data's "
            f"timestamps) or an ISO 8601 date such as '1998-01-01', got {cutoff!r}"
        )
    return value


def _date_seconds(value: str | datetime.date | np.datetime64, given: object) -> int | float:
    """Unix seconds of a date, date-time or ISO 8601 text (UTC unless it says otherwise)."""
    try:
        if isinstance(value, str) and value.lower() in ("now", "today"):
            raise ValueError(value)  # words pandas reads as the current time
        stamp = pd.to_datetime(value, format="ISO8601" if isinstance(value, str) else None)
        if pd.isna(stamp):
            raise ValueError(value)
    except (ValueError, TypeError, OverflowError) as err:
        raise ValueError(
            f"cutoff {given!r} is neither a number nor an ISO 8601 date; write a timestamp in "
            "the unit of the data's timestamps, or a date such as 1998-01-01 or "
            "1998-01-01T12:00:00+02:00"
        ) from err
    seconds = epoch_seconds(stamp)
    return int(seconds) if float(seconds).is_integer() else float(seconds)


def split_report(train: Interactions, test: Interactions) -> dict[str, int]:
    """Counts a user should see before trusting a split.

    Returns:
        ``train_rows``, ``test_rows``, ``test_users``, and the test users,
        items and rows whose user or item never occurs in train (a model
        fitted on train cannot rank those).
    """
    train_users = np.zeros(train.n_users, dtype=bool)
    train_users[train.user_idx] = True
    train_items = np.zeros(train.n_items, dtype=bool)
    train_items[train.item_idx] = True
    test_users = np.unique(test.user_idx)
    test_items = np.unique(test.item_idx)
    cold_rows = ~train_users[test.user_idx] | ~train_items[test.item_idx]
    return {
        "train_rows": len(train),
        "test_rows": len(test),
        "test_users": len(test_users),
        "test_only_users": int((~train_users[test_users]).sum()),
        "test_only_items": int((~train_items[test_items]).sum()),
        "test_rows_with_unseen_user_or_item": int(cold_rows.sum()),
    }


def _sides(interactions: Interactions, test: np.ndarray) -> tuple[Interactions, Interactions]:
    train_side, test_side = interactions.subset(~test), interactions.subset(test)
    for side, name in ((train_side, "train"), (test_side, "test")):
        if len(side) == 0:
            warnings.warn(
                f"{interactions.source}: the split leaves the {name} side empty",
                DataWarning,
                stacklevel=3,
            )
    report = split_report(train_side, test_side)
    _log.info("split %s: %s", interactions.source, report)
    return train_side, test_side
