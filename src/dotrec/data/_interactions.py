"""Interactions: the one container of observed user-item events."""

from __future__ import annotations

import hashlib
import logging
import typing
import warnings
from collections.abc import Sequence
from typing import Literal

import numpy as np
import pandas as pd
import scipy.sparse as sp

from dotrec.data._checks import (
    check_finite,
    check_labels,
    datetimes_as_seconds,
    describe_rows,
)
from dotrec.data._vocab import Vocabulary, ids_to_text
from dotrec.exceptions import DataError, DataWarning, EmptyDataError

__all__ = ["Interactions"]

_log = logging.getLogger(__name__)

Duplicates = Literal["last", "error"]


class Interactions:
    """Observed (user, item) events with their vocabularies.

    Every row is one distinct (user, item) pair. By default every row is a
    positive (implicit feedback); when ``label`` is given, rows labelled 0 are
    observed negatives. ``rating`` and ``timestamp`` are kept when known.

    Attributes:
        user_idx: int64 array, shape (n,), index into ``users``.
        item_idx: int64 array, shape (n,), index into ``items``.
        users: vocabulary of raw user IDs.
        items: vocabulary of raw item IDs.
        rating: float32 array of shape (n,), or None.
        timestamp: int64 array of shape (n,) (seconds), or None.
        label: int8 array of shape (n,) with 1 for positives and 0 for observed
            negatives, or None when every row is a positive.
        source: where the data came from, for messages.
        duplicates_merged: rows that repeated a (user, item) pair and were
            merged when this object was built from raw rows (0 for objects
            derived by ``subset``, ``compact`` or ``reindex``).

    Example:
        >>> data = Interactions.from_ids(["u1", "u1", "u2"], ["a", "b", "a"])
        >>> (len(data), data.n_users, data.n_items)
        (3, 2, 2)
    """

    def __init__(
        self,
        user_idx: np.ndarray,
        item_idx: np.ndarray,
        users: Vocabulary,
        items: Vocabulary,
        *,
        rating: np.ndarray | None = None,
        timestamp: np.ndarray | None = None,
        label: np.ndarray | None = None,
        source: str = "<memory>",
    ):
        self.user_idx = np.asarray(user_idx, dtype=np.int64)
        self.item_idx = np.asarray(item_idx, dtype=np.int64)
        self.users = users
        self.items = items
        self.rating = None if rating is None else np.asarray(rating, dtype=np.float32)
        self.timestamp = None if timestamp is None else np.asarray(timestamp, dtype=np.int64)
        self.label = None if label is None else np.asarray(label, dtype=np.int8)
        self.source = source
        self.duplicates_merged = 0

    @classmethod
    def from_ids(
        cls,
        user_ids: Sequence[object] | np.ndarray,
        item_ids: Sequence[object] | np.ndarray,
        *,
        rating: Sequence[float] | np.ndarray | None = None,
        timestamp: Sequence[int] | np.ndarray | None = None,
        label: Sequence[int] | np.ndarray | None = None,
        source: str = "<memory>",
        lines: np.ndarray | None = None,
        duplicates: Duplicates = "last",
        allow_empty: bool = False,
    ) -> Interactions:
        """Build interactions from raw IDs, validating every column.

        Args:
            user_ids: raw user IDs, text or integers (integers become text).
            item_ids: raw item IDs, same length.
            rating: optional ratings; each must be a finite number.
            timestamp: optional integer timestamps (e.g. Unix seconds); date-times
                (NumPy, pandas, or Python) become Unix seconds, naive ones as UTC.
            label: optional 0/1 labels; 0 marks an observed negative.
            source: file name or description used in messages.
            lines: the file line number of each row, for messages.
            duplicates: ``"last"`` merges repeated (user, item) rows into one,
                keeping the row with the latest timestamp (the last in the file
                when there are no timestamps), with a :class:`DataWarning`
                saying how many rows were merged; ``"error"`` refuses them.
            allow_empty: accept zero rows instead of raising.

        Raises:
            EmptyDataError: no rows and ``allow_empty`` is false.
            DataError: a non-finite rating, a bad label, or duplicates under
                ``duplicates="error"``.
            ValueError: ``duplicates`` is not one of its options, or a column's
                length differs from the IDs'.
        """
        if duplicates not in typing.get_args(Duplicates):
            raise ValueError(
                f"duplicates={duplicates!r} is not an option; choose 'last' (merge repeated "
                "(user, item) rows, keeping the latest) or 'error'"
            )
        user_text = ids_to_text(user_ids)
        item_text = ids_to_text(item_ids)
        if len(user_text) != len(item_text):
            raise ValueError(
                f"user_ids has {len(user_text)} values but item_ids has {len(item_text)}"
            )
        for name, column in (("rating", rating), ("timestamp", timestamp), ("label", label)):
            if column is not None and len(column) != len(user_text):
                raise ValueError(
                    f"{name} has {len(column)} value{'s' if len(column) != 1 else ''} but the "
                    f"IDs give {len(user_text)} rows; give one {name} per row"
                )
        if len(user_text) == 0 and not allow_empty:
            raise EmptyDataError(f"{source}: the input contains no interactions.")
        if lines is None:
            lines = np.arange(1, len(user_text) + 1)
            where = "row"
        else:
            where = "line"
        if rating is not None:
            rating = check_finite(rating, "rating", source, lines, where)
        if timestamp is not None:
            timestamp = datetimes_as_seconds(timestamp)
            timestamp = check_finite(timestamp, "timestamp", source, lines, where).astype(np.int64)
        if label is not None:
            label = check_labels(np.asarray(label), source, lines, where)

        users, user_idx = Vocabulary.from_values(user_text)
        items, item_idx = Vocabulary.from_values(item_text)
        keep = _deduplicate(user_idx, item_idx, timestamp, users, items, source, lines, duplicates)
        data = cls(
            user_idx[keep],
            item_idx[keep],
            users,
            items,
            rating=None if rating is None else rating[keep],
            timestamp=None if timestamp is None else timestamp[keep],
            label=None if label is None else label[keep],
            source=source,
        )
        data.duplicates_merged = len(user_idx) - len(keep)
        return data

    @classmethod
    def from_frame(
        cls,
        frame: pd.DataFrame,
        *,
        user_col: str = "user_id",
        item_col: str = "item_id",
        rating_col: str | None = None,
        timestamp_col: str | None = None,
        label_col: str | None = None,
        source: str = "<DataFrame>",
        duplicates: Duplicates = "last",
    ) -> Interactions:
        """Build interactions from a pandas DataFrame.

        ``rating``, ``timestamp`` and ``label`` columns are picked up by those
        names when their ``*_col`` argument is not given.

        Raises:
            DataError: a named column is missing (the message lists the columns
                that exist).
        """
        rating_col = rating_col or ("rating" if "rating" in frame.columns else None)
        timestamp_col = timestamp_col or ("timestamp" if "timestamp" in frame.columns else None)
        label_col = label_col or ("label" if "label" in frame.columns else None)
        for arg, col in [
            ("user_col", user_col),
            ("item_col", item_col),
            ("rating_col", rating_col),
            ("timestamp_col", timestamp_col),
            ("label_col", label_col),
        ]:
            if col is not None and col not in frame.columns:
                raise DataError(
                    f"{source}: no column {col!r} ({arg}); the columns are "
                    f"{list(map(str, frame.columns))}. Pass {arg}= with the right name."
                )
        return cls.from_ids(
            frame[user_col],
            frame[item_col],
            rating=None if rating_col is None else frame[rating_col].to_numpy(),
            timestamp=None if timestamp_col is None else frame[timestamp_col].to_numpy(),
            label=None if label_col is None else frame[label_col].to_numpy(),
            source=source,
            duplicates=duplicates,
        )

    @classmethod
    def from_sparse(
        cls,
        matrix: sp.spmatrix | sp.sparray,
        user_ids: Sequence[object] | None = None,
        item_ids: Sequence[object] | None = None,
        *,
        ratings: bool = False,
    ) -> Interactions:
        """Build interactions from a user-by-item sparse matrix.

        Every stored nonzero entry is an interaction; explicit zeros are dropped.
        Duplicate coordinates of a COO matrix are merged, never summed.

        Args:
            matrix: shape (n_users, n_items), one row per user.
            user_ids: raw IDs of the rows (default: the row numbers as text).
            item_ids: raw IDs of the columns (default: the column numbers).
            ratings: keep the stored values as ratings.
        """
        coo = sp.coo_matrix(matrix)
        n_users, n_items = coo.shape
        users = Vocabulary(np.arange(n_users) if user_ids is None else user_ids)
        items = Vocabulary(np.arange(n_items) if item_ids is None else item_ids)
        if len(users) != n_users or len(items) != n_items:
            raise ValueError(
                f"matrix has shape {coo.shape} but {len(users)} user IDs and {len(items)} item IDs"
            )
        values = np.asarray(coo.data, dtype=np.float64)
        check_finite(
            values, "matrix value", "<sparse matrix>", np.arange(1, len(values) + 1), "entry"
        )
        nonzero = values != 0
        data = cls(
            coo.row[nonzero],
            coo.col[nonzero],
            users,
            items,
            rating=values[nonzero] if ratings else None,
            source="<sparse matrix>",
        )
        keep = _deduplicate(
            data.user_idx, data.item_idx, None, users, items, data.source, None, "last"
        )
        return data.subset(keep)

    # --- shape -----------------------------------------------------------------

    def __len__(self) -> int:
        return len(self.user_idx)

    @property
    def n_users(self) -> int:
        """Number of users in the vocabulary."""
        return len(self.users)

    @property
    def n_items(self) -> int:
        """Number of items in the vocabulary."""
        return len(self.items)

    def __repr__(self) -> str:
        cols = [c for c in ("rating", "timestamp", "label") if getattr(self, c) is not None]
        return (
            f"Interactions({len(self)} rows, {self.n_users} users, {self.n_items} items"
            f"{', ' + ', '.join(cols) if cols else ''}; from {self.source})"
        )

    # --- views -----------------------------------------------------------------

    @property
    def positive(self) -> np.ndarray:
        """Boolean mask of the rows that are positives."""
        if self.label is None:
            return np.ones(len(self), dtype=bool)
        return self.label == 1

    def user_items(self, positives_only: bool = True) -> sp.csr_array:
        """The user-by-item matrix of interactions, one row per user.

        Returns:
            A CSR array of shape (n_users, n_items) holding 1.0 for each
            interaction, with sorted column indices.
        """
        mask = self.positive if positives_only else np.ones(len(self), dtype=bool)
        ones = np.ones(int(mask.sum()), dtype=np.float32)
        matrix = sp.csr_array(
            (ones, (self.user_idx[mask], self.item_idx[mask])), shape=(self.n_users, self.n_items)
        )
        matrix.sort_indices()
        return matrix

    def subset(self, rows: np.ndarray) -> Interactions:
        """The rows picked by a boolean mask or an index array, same vocabularies."""
        pick = lambda a: None if a is None else a[rows]  # noqa: E731
        return Interactions(
            self.user_idx[rows],
            self.item_idx[rows],
            self.users,
            self.items,
            rating=pick(self.rating),
            timestamp=pick(self.timestamp),
            label=pick(self.label),
            source=self.source,
        )

    def compact(self) -> Interactions:
        """A copy whose vocabularies hold only the users and items present."""
        user_keep = np.unique(self.user_idx)
        item_keep = np.unique(self.item_idx)
        user_map = np.full(self.n_users, -1, dtype=np.int64)
        user_map[user_keep] = np.arange(len(user_keep))
        item_map = np.full(self.n_items, -1, dtype=np.int64)
        item_map[item_keep] = np.arange(len(item_keep))
        return Interactions(
            user_map[self.user_idx],
            item_map[self.item_idx],
            Vocabulary(self.users.ids[user_keep]),
            Vocabulary(self.items.ids[item_keep]),
            rating=self.rating,
            timestamp=self.timestamp,
            label=self.label,
            source=self.source,
        )

    def reindex(self, users: Vocabulary, items: Vocabulary) -> tuple[Interactions, np.ndarray]:
        """Map the rows into other vocabularies (for example a model's).

        Returns:
            The rows whose user and item both exist there, re-indexed, and a
            boolean mask over this object's rows telling which were kept.
        """
        user_idx = users.lookup(self.users.ids)[self.user_idx]
        item_idx = items.lookup(self.items.ids)[self.item_idx]
        known = (user_idx >= 0) & (item_idx >= 0)
        kept = self.subset(known)
        kept.user_idx, kept.item_idx = user_idx[known], item_idx[known]
        kept.users, kept.items = users, items
        return kept, known

    def to_frame(self) -> pd.DataFrame:
        """The rows as a DataFrame with raw IDs (``user_id``, ``item_id``, ...)."""
        frame = pd.DataFrame(
            {"user_id": self.users.ids[self.user_idx], "item_id": self.items.ids[self.item_idx]}
        )
        for col in ("rating", "timestamp", "label"):
            if getattr(self, col) is not None:
                frame[col] = getattr(self, col)
        return frame

    def fingerprint(self) -> str:
        """A SHA-256 digest of the rows and their raw IDs (order-independent)."""
        frame = self.to_frame().sort_values(["user_id", "item_id"], kind="stable")
        digest = hashlib.sha256()
        for col in frame.columns:
            values = frame[col].to_numpy()
            digest.update(col.encode())
            digest.update(
                "\x1f".join(map(str, values)).encode()
                if values.dtype == object
                else np.ascontiguousarray(values).tobytes()
            )
        return digest.hexdigest()


def require_interactions(value: object, what: str) -> None:
    """Raise TypeError unless ``value`` is :class:`Interactions`; ``what`` names the argument."""
    if not isinstance(value, Interactions):
        raise TypeError(
            f"{what} takes an Interactions, got {type(value).__name__}; build one with "
            "dotrec.read_interactions(path), Interactions.from_frame(df) or "
            "Interactions.from_sparse(matrix)."
        )


def _deduplicate(
    user_idx: np.ndarray,
    item_idx: np.ndarray,
    timestamp: np.ndarray | None,
    users: Vocabulary,
    items: Vocabulary,
    source: str,
    lines: np.ndarray | None,
    policy: Duplicates,
) -> np.ndarray:
    """Row positions to keep so that each (user, item) pair appears once.

    The kept row is the one with the latest timestamp, ties (and data without
    timestamps) going to the row that comes last.
    """
    n = len(user_idx)
    if n == 0:
        return np.arange(0)
    key = user_idx * max(len(items), 1) + item_idx
    ts = np.zeros(n, dtype=np.int64) if timestamp is None else timestamp
    order = np.lexsort((np.arange(n), ts, key))  # by key, then time, then position
    sorted_key = key[order]
    last_of_group = np.ones(n, dtype=bool)
    last_of_group[:-1] = sorted_key[1:] != sorted_key[:-1]
    n_merged = n - int(last_of_group.sum())
    if n_merged == 0:
        return np.arange(n)

    dup_keys = np.unique(sorted_key[~last_of_group])
    example = dup_keys[0]
    pair = (users.ids[example // max(len(items), 1)], items.ids[example % max(len(items), 1)])
    if policy == "error":
        rows = describe_rows(np.flatnonzero(key == example), lines)
        raise DataError(
            f"{source}: {n_merged} rows repeat a (user, item) pair already seen, in "
            f"{len(dup_keys)} pairs; e.g. {pair} at {rows}. Remove the repeats or load with "
            "duplicates='last' to keep the latest row of each pair."
        )
    msg = (
        f"{source}: merged {n_merged} duplicate rows ({len(dup_keys)} repeated (user, item) "
        f"pairs, e.g. {pair}); kept the latest row of each pair"
        f"{' by timestamp' if timestamp is not None else ' in file order'}."
    )
    warnings.warn(msg, DataWarning, stacklevel=4)
    _log.info(msg)
    return np.sort(order[last_of_group])
