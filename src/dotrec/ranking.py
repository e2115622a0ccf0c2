"""Full ranking of the catalogue for known users, scored against held-out items.

The one path that measures a model by ranking: :func:`dotrec.evaluate` uses it
for reports, and models use it for validation during training (early
stopping), so that what is monitored is what is reported. It sits below the
models: it needs only the Recommender contract (``users``, ``items``,
``seen`` and ``recommend_indices``), never a concrete model class.

Relevant items the model never saw stay relevant and count as misses, and
each user's training items are left out of the candidates, as in
``recommend``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import scipy.sparse as sp
import torch

from dotrec.data import Interactions, Vocabulary
from dotrec.metrics import METRICS, hits_from_keys

if TYPE_CHECKING:
    from dotrec.models.base import Recommender

__all__ = ["RankedUsers", "overlap_mask", "rank_users", "to_model_space"]

_log = logging.getLogger(__name__)

Metric = Callable[[torch.Tensor, torch.Tensor, int], torch.Tensor]


@dataclass
class RankedUsers:
    """Per-user metrics of a full ranking.

    Attributes:
        users: int64 array (U,), the evaluated users' indices, ascending.
        per_user: ``{"ndcg@10": tensor (U,), ...}``, float64 on the CPU.
        top: int64 tensor (U, max K) of the ranked items, -1 past a short list.
    """

    users: np.ndarray
    per_user: dict[str, torch.Tensor]
    top: torch.Tensor

    def mean(self, name: str) -> float:
        """The mean over users of one metric, e.g. ``"ndcg@10"``; NaN for no user."""
        values = self.per_user[name]
        return float(values.mean()) if len(values) else float("nan")


def to_model_space(
    users: Vocabulary, items: Vocabulary, test: Interactions
) -> tuple[np.ndarray, np.ndarray, dict[str, object]]:
    """Test rows as a model's indices; unknown items become -1, unknown users are dropped.

    Returns:
        ``user_idx`` and ``item_idx`` (int64, one per kept row) and notes
        counting what was left out.
    """
    user_idx = users.lookup(test.users.ids)[test.user_idx]
    item_idx = items.lookup(test.items.ids)[test.item_idx]
    unknown_user = user_idx < 0
    notes: dict[str, object] = {
        "test_rows": len(test),
        "rows_with_unknown_user": int(unknown_user.sum()),
        "unknown_users": int(len(np.unique(test.user_idx[unknown_user]))),
        "rows_with_unknown_item": int((item_idx[~unknown_user] < 0).sum()),
    }
    if unknown_user.any():
        _log.info(
            "%s: %d test users are unknown to the model and are not evaluated",
            test.source,
            notes["unknown_users"],
        )
    return user_idx[~unknown_user], item_idx[~unknown_user], notes


def overlap_mask(seen: sp.csr_array, user_idx: np.ndarray, item_idx: np.ndarray) -> np.ndarray:
    """Bool array: which (user, item) rows are training positives (``seen``); -1 items never."""
    known = item_idx >= 0
    seen_rows = np.zeros(len(user_idx), dtype=bool)
    if known.any():
        seen_rows[known] = np.asarray(seen[user_idx[known], item_idx[known]]).ravel() > 0
    return seen_rows


def rank_users(
    model: Recommender,
    user_idx: np.ndarray,
    item_idx: np.ndarray,
    k: Sequence[int],
    metrics: dict[str, Metric] | None = None,
    batch_size: int = 1024,
) -> RankedUsers:
    """Rank the catalogue for each user of the relevant pairs and score the top ``k``.

    Args:
        model: a fitted model (during ``fit``: one whose vocabularies, ``seen``
            and parameters are set).
        user_idx: int64 (N,) the user of each relevant pair, in model indices.
        item_idx: int64 (N,) its item, -1 for an item the model never saw
            (relevant, so a miss).
        k: the sorted distinct cutoffs.
        metrics: per-user metric functions by name (default: all of
            :data:`dotrec.metrics.METRICS`).
        batch_size: users ranked at once.

    Returns:
        :class:`RankedUsers` for every distinct user of ``user_idx``.
    """
    metrics = METRICS if metrics is None else metrics
    n_items = len(model.items)
    users = np.unique(user_idx)
    n_relevant = np.bincount(user_idx, minlength=len(model.users))[users]
    known = item_idx >= 0
    keys = torch.from_numpy(np.unique(user_idx[known] * n_items + item_idx[known]))

    per_user: dict[str, list[torch.Tensor]] = {f"{n}@{kk}": [] for kk in k for n in metrics}
    tops = []
    for start in range(0, len(users), batch_size):
        rows = users[start : start + batch_size]
        top = model.recommend_indices(rows, max(k))
        hits = hits_from_keys(top.indices, torch.from_numpy(rows), keys, n_items)
        rel = torch.from_numpy(n_relevant[start : start + batch_size])
        for kk in k:
            for name, fn in metrics.items():
                per_user[f"{name}@{kk}"].append(fn(hits, rel, kk))
        tops.append(top.indices)
    columns = {
        name: torch.cat(parts) if parts else torch.zeros(0, dtype=torch.float64)
        for name, parts in per_user.items()
    }
    top = torch.cat(tops) if tops else torch.zeros((0, min(max(k), n_items)), dtype=torch.long)
    return RankedUsers(users, columns, top)
