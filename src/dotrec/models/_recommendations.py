"""Recommendations: the top-K lists that recommend and similar_items return."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from dotrec.data import ids_to_text


@dataclass
class Recommendations:
    """Top-K lists for a batch of users (or query items), best first.

    Attributes:
        query_ids: raw IDs the lists are for, shape (B,), in request order.
        item_ids: object array (B, K) of raw item IDs; ``None`` past a row's count.
        scores: float32 array (B, K); NaN past a row's count. What a score
            means depends on the model (see its ``score_kind``).
        counts: int array (B,): real entries per row. A row is short when fewer
            than K candidates remain; it is never padded with real items.
        fallback: bool array (B,): True where the row is the popularity
            fallback for an unknown user (or an empty history) rather than a
            personal list.
    """

    query_ids: np.ndarray
    item_ids: np.ndarray
    scores: np.ndarray
    counts: np.ndarray
    fallback: np.ndarray

    def __len__(self) -> int:
        return len(self.query_ids)

    def to_list(self) -> list[list[tuple[str, float]]]:
        """One list of (item_id, score) per row, only real entries."""
        rows = []
        for r, c in enumerate(self.counts):
            items, scores = self.item_ids[r, :c].tolist(), self.scores[r, :c].astype(float)
            rows.append(list(zip(items, scores.tolist(), strict=True)))
        return rows

    def for_user(self, user_id: object) -> list[tuple[str, float]]:
        """The (item_id, score) list of one queried ID."""
        rows = np.flatnonzero(self.query_ids == ids_to_text([user_id])[0])
        if len(rows) == 0:
            raise KeyError(f"{user_id!r} is not among the queried IDs")
        return self.to_list()[rows[0]]

    def to_frame(self, query_col: str = "user_id") -> pd.DataFrame:
        """Long format: ``user_id, item_id, rank, score, fallback``; real entries only."""
        real = np.arange(self.item_ids.shape[1])[None, :] < self.counts[:, None]
        rows, cols = np.nonzero(real)
        return pd.DataFrame(
            {
                query_col: self.query_ids[rows],
                "item_id": self.item_ids[rows, cols],
                "rank": cols + 1,
                "score": self.scores[rows, cols],
                "fallback": self.fallback[rows],
            }
        )
