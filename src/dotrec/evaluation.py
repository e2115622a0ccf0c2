"""Full-ranking evaluation of any Recommender, and of ready-made lists.

For each user with at least one positive test item, every item in the
model's catalogue is ranked, the user's training items are removed from the
candidates, and the top K are compared with the test items. Test pairs that
were also training pairs are reported and removed (or refused). Test rows
whose user the model never saw are reported and not ranked; test items the
model never saw stay relevant, so they count as misses: a model cannot get
credit for items it cannot recommend.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd
import torch

from dotrec.data import Interactions, Vocabulary, ids_to_text
from dotrec.exceptions import DataError, DataWarning, EmptyDataError
from dotrec.metrics import METRICS, coverage, hits_from_keys
from dotrec.models.base import Recommender

__all__ = ["EvaluationResult", "evaluate", "evaluate_lists"]

_log = logging.getLogger(__name__)


@dataclass
class EvaluationResult:
    """Metrics averaged over evaluated users, with what was left out and why.

    Attributes:
        metrics: ``{"ndcg@10": 0.41, ...}``, each the mean over ``n_users``
            (every user weighs the same), plus ``coverage@K``.
        n_users: users evaluated (those with a positive test item the model
            can rank).
        per_user: one row per evaluated user (``user_id`` and each metric).
        notes: counts of what was left out (unknown users, unknown items,
            pairs also in training).
        recommendations: the top-K lists used, when asked for.
    """

    metrics: dict[str, float]
    n_users: int
    per_user: pd.DataFrame
    notes: dict[str, object] = field(default_factory=dict)
    recommendations: pd.DataFrame | None = None

    def table(self) -> str:
        """The metrics as an aligned text table, one row per K."""
        if self.n_users == 0:
            return "no users to evaluate: every metric is not available (n/a)"
        by_k: dict[int, dict[str, float]] = {}
        for key, value in self.metrics.items():
            name, k = key.split("@")
            by_k.setdefault(int(k), {})[name] = value
        names = list(next(iter(by_k.values())))
        lines = ["   K  " + "  ".join(f"{n:>9}" for n in names)]
        for k, row in sorted(by_k.items()):
            lines.append(f"{k:>4}  " + "  ".join(f"{row[n]:>9.4f}" for n in names))
        return "\n".join(lines)

    def to_dict(self) -> dict:
        return {"metrics": self.metrics, "n_users": self.n_users, "notes": self.notes}


def evaluate(
    model: Recommender,
    test: Interactions,
    k: int | Sequence[int] = 10,
    *,
    on_overlap: Literal["drop", "raise"] = "drop",
    batch_size: int = 1024,
    return_recommendations: bool = False,
) -> EvaluationResult:
    """Rank the whole catalogue for every test user and score the top ``k``.

    Args:
        model: a fitted model.
        test: held-out interactions; only positive rows are relevant.
        k: one cutoff or several.
        on_overlap: test pairs that were training pairs are removed with a
            warning (``"drop"``) or make evaluation fail (``"raise"``).
        batch_size: users ranked at once.
        return_recommendations: keep the top-max(k) lists in the result.

    Raises:
        ValueError: a cutoff is not a positive integer.
        EmptyDataError: the test set has no positive interactions.
        DataError: overlap with ``on_overlap="raise"``.
    """
    ks = _cutoffs(k)
    positives = test.subset(test.positive)
    if len(positives) == 0:
        raise EmptyDataError(f"{test.source}: the test set has no interactions to evaluate.")

    user_idx, item_idx, notes = _to_model_space(model, positives)
    user_idx, item_idx = _drop_overlap(model, user_idx, item_idx, notes, on_overlap, test.source)
    users = np.unique(user_idx)
    n_relevant = np.bincount(user_idx, minlength=len(model.users))[users]
    known = item_idx >= 0
    keys = torch.from_numpy(np.unique(user_idx[known] * len(model.items) + item_idx[known]))

    per_user: dict[str, list[torch.Tensor]] = {}
    tops = []
    for start in range(0, len(users), batch_size):
        rows = users[start : start + batch_size]
        top = model.recommend_indices(rows, max(ks))
        hits = hits_from_keys(top.indices, torch.from_numpy(rows), keys, len(model.items))
        rel = torch.from_numpy(n_relevant[start : start + batch_size])
        for kk in ks:
            for name, fn in METRICS.items():
                per_user.setdefault(f"{name}@{kk}", []).append(fn(hits, rel, kk))
        tops.append(top.indices)
    return _result(model, users, per_user, tops, ks, notes, return_recommendations)


def _cutoffs(k: int | Sequence[int]) -> list[int]:
    """The sorted distinct cutoffs; each must be a positive integer."""
    values = [k] if isinstance(k, (int, np.integer)) else list(k)
    if not values or any(
        isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1 for v in values
    ):
        raise ValueError(f"k must be a positive integer (or several), got {k!r}")
    return sorted({int(v) for v in values})


def _to_model_space(model: Recommender, test: Interactions):
    """Test rows as model indices; unknown items become -1, unknown users are dropped."""
    user_idx = model.users.lookup(test.users.ids)[test.user_idx]
    item_idx = model.items.lookup(test.items.ids)[test.item_idx]
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


def _drop_overlap(model, user_idx, item_idx, notes, on_overlap, source):
    known = item_idx >= 0
    seen = np.zeros(len(user_idx), dtype=bool)
    if known.any():
        seen[known] = np.asarray(model.seen[user_idx[known], item_idx[known]]).ravel() > 0
    notes["overlap_with_train"] = int(seen.sum())
    if not seen.any():
        return user_idx, item_idx
    first = (model.users.ids[user_idx[seen][0]], model.items.ids[item_idx[seen][0]])
    msg = (
        f"{source}: {int(seen.sum())} test (user, item) pairs also occur in the training data, "
        f"e.g. {first}"
    )
    if on_overlap == "raise":
        raise DataError(
            msg + ". Remove them from the test set, or evaluate with on_overlap='drop' "
            "(command line: --on-overlap drop)."
        )
    warnings.warn(
        msg + "; they were removed from the test set before evaluation.", DataWarning, stacklevel=3
    )
    return user_idx[~seen], item_idx[~seen]


def _result(model, users, per_user, tops, ks, notes, keep_lists) -> EvaluationResult:
    columns = {name: torch.cat(parts).numpy() for name, parts in per_user.items()}
    frame = pd.DataFrame({"user_id": model.users.ids[users], **columns})
    metrics = {name: float(values.mean()) for name, values in columns.items()} if len(users) else {}
    recommendations = None
    if tops:
        top = torch.cat(tops)
        for kk in ks:
            metrics[f"coverage@{kk}"] = coverage(top[:, :kk], len(model.items))
        if keep_lists:
            rows, cols = np.nonzero(top.numpy() >= 0)
            recommendations = pd.DataFrame(
                {
                    "user_id": model.users.ids[users[rows]],
                    "item_id": model.items.ids[top.numpy()[rows, cols]],
                    "rank": cols + 1,
                }
            )
    notes["users_evaluated"] = len(users)
    return EvaluationResult(metrics, len(users), frame, notes, recommendations)


def evaluate_lists(
    recommendations: pd.DataFrame, test: Interactions, k: int | Sequence[int] = 10
) -> EvaluationResult:
    """Score ready-made top-K lists against test interactions.

    Args:
        recommendations: columns ``user_id``, ``item_id``, ``rank`` (1 = best).
        test: relevant items per user; every test user is evaluated, including
            users with no list (all metrics 0 for them).
        k: one cutoff or several.

    Raises:
        ValueError: a cutoff is not a positive integer.
        DataError: a column is missing.
        EmptyDataError: the test set has no positive interactions.
    """
    ks = _cutoffs(k)
    for col in ("user_id", "item_id", "rank"):
        if col not in recommendations.columns:
            raise DataError(f"recommendations need a {col!r} column; got {list(recommendations)}")
    positives = test.subset(test.positive)
    if len(positives) == 0:
        raise EmptyDataError(f"{test.source}: the test set has no interactions to evaluate.")
    users = Vocabulary(np.unique(positives.users.ids[positives.user_idx]))
    items = Vocabulary(
        np.unique(
            np.concatenate(
                [positives.items.ids[positives.item_idx], ids_to_text(recommendations["item_id"])]
            )
        )
    )
    test_u = users.index(positives.users.ids[positives.user_idx])
    test_i = items.index(positives.items.ids[positives.item_idx])
    keys = torch.from_numpy(np.unique(test_u * len(items) + test_i))

    recs = recommendations.assign(user_id=ids_to_text(recommendations["user_id"]))
    recs = recs[users.lookup(recs["user_id"]) >= 0].sort_values(["user_id", "rank"])
    width = max(ks)
    top = np.full((len(users), width), -1, dtype=np.int64)
    rec_u = users.index(recs["user_id"])
    position = recs.groupby("user_id").cumcount().to_numpy()
    keep = position < width
    top[rec_u[keep], position[keep]] = items.index(ids_to_text(recs["item_id"]))[keep]

    longest = int(position.max()) + 1 if len(position) else 0
    if longest < width:
        warnings.warn(
            f"the longest list holds {longest} items but K={width}: precision@{width} still "
            f"divides by {width}, so lists written with a smaller K score lower than they would.",
            DataWarning,
            stacklevel=2,
        )
    rows = torch.arange(len(users))
    hits = hits_from_keys(torch.from_numpy(top), rows, keys, len(items))
    rel = torch.from_numpy(np.bincount(test_u, minlength=len(users)))
    columns = {
        f"{name}@{kk}": fn(hits, rel, kk).numpy() for kk in ks for name, fn in METRICS.items()
    }
    frame = pd.DataFrame({"user_id": users.ids, **columns})
    metrics = {name: float(values.mean()) for name, values in columns.items()}
    return EvaluationResult(metrics, len(users), frame, {"test_rows": len(positives)})
