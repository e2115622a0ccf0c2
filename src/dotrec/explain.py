"""Explain one score: its parts, the user's history items near the item, the item's rank.

Knows a model only through the Recommender contract (``models/base.py``): the
parts come from the model's ``_score_parts``, which models whose score is a
sum of meaningful terms provide (matrix factorization and two-tower: user
bias, item bias and a dot product; ALS and LightGCN: the dot product alone;
EASE and ItemKNN: one term per training item of the user).
"""

from __future__ import annotations

import logging
import math
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

if TYPE_CHECKING:
    from dotrec.models.base import Recommender

__all__ = ["Explanation", "explain"]

_log = logging.getLogger(__name__)


@dataclass
class Explanation:
    """Why a model gives a (user, item) pair its score."""

    model: str
    user_id: str
    item_id: str
    score: float
    """The raw score, as ``model.score`` gives it."""
    score_kind: str
    """What the score means (the model's ``score_kind``)."""
    parts: dict[str, float] | None
    """Named terms that sum to ``score`` (up to float32 rounding), or None when
    the model's score does not split into parts."""
    parts_sum: float | None
    """The exact sum of ``parts``, to compare with ``score``."""
    parts_note: str
    """What the parts are, or why there are none, in words."""
    nearest_history: list[tuple[str, float]]
    """The user's training items closest to the item, closest first:
    (item_id, cosine similarity of the model's item vectors, as
    ``similar_items`` measures it); the item itself is left out. Empty for a
    model without item similarity (popularity)."""
    in_history: bool
    """True when the item is one of the user's training items, which
    ``recommend`` leaves out by default."""
    rank: int | None
    """1-based position of the item in the user's full ranking as
    ``recommend`` orders it (training items left out, ties to the lower
    index); None when the item is a training item of the user."""
    candidates: int
    """Items the user's ranking holds (the catalogue minus the training items)."""
    probability: float | None
    """Calibrated probability (``score(..., kind="probability")``), or None
    when the model has no calibrator."""

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON values."""
        out = asdict(self)
        out["nearest_history"] = [
            {"item_id": item, "cosine": cos} for item, cos in self.nearest_history
        ]
        return out


def explain(
    model: Recommender, user_id: object, item_id: object, n_nearest: int = 5
) -> Explanation:
    """Explain the score of one (user, item) pair.

    Args:
        model: a fitted model; the user's training items come from the model
            itself (``model.seen``, stored in the model folder).
        user_id: raw user ID.
        item_id: raw item ID.
        n_nearest: how many of the user's training items to list by closeness.

    Raises:
        UnknownIDError: the user or the item was not in the training data.

    Example:
        >>> from dotrec.data import Interactions
        >>> from dotrec.models import MatrixFactorization
        >>> data = Interactions.from_ids(["a", "a", "b", "b"], ["x", "y", "y", "z"])
        >>> model = MatrixFactorization(embedding_dim=4, epochs=2).fit(data)
        >>> why = explain(model, "a", "z")
        >>> abs(why.parts_sum - why.score) < 1e-5, why.rank, why.candidates
        (True, 1, 1)
    """
    model._check_fitted()
    user_idx = int(model.users.index([user_id], "user")[0])
    item_idx = int(model.items.index([item_id], "item")[0])
    score = float(model.score(model.users.ids[user_idx], model.items.ids[item_idx]))
    history = model.seen.indices[model.seen.indptr[user_idx] : model.seen.indptr[user_idx + 1]]
    parts = model._score_parts(user_idx, item_idx)
    parts_sum = None if parts is None else math.fsum(parts.values())
    rank, candidates = _rank(model, user_idx, item_idx, history)
    calibrated = model.calibrator is not None
    return Explanation(
        model=model.name,
        user_id=str(model.users.ids[user_idx]),
        item_id=str(model.items.ids[item_idx]),
        score=score,
        score_kind=model.score_kind,
        parts=parts,
        parts_sum=parts_sum,
        parts_note=_parts_note(model, parts, parts_sum, score),
        nearest_history=_nearest(model, item_idx, history, n_nearest),
        in_history=bool(np.isin(item_idx, history)),
        rank=rank,
        candidates=candidates,
        probability=float(model.calibrator.transform(np.array([score]))[0]) if calibrated else None,
    )


def _rank(model: Recommender, user_idx: int, item_idx: int, history: np.ndarray):
    """(rank as recommend orders it, or None for a training item; candidate count)."""
    with torch.no_grad():
        scores = model._score_users(torch.tensor([user_idx]))[0].float().cpu().numpy()
    candidate = np.ones(len(scores), dtype=bool)
    candidate[history] = False
    if not candidate[item_idx]:
        return None, int(candidate.sum())
    own = scores[item_idx]
    ahead = (scores > own) | ((scores == own) & (np.arange(len(scores)) < item_idx))
    return int((candidate & ahead).sum()) + 1, int(candidate.sum())


def _nearest(model: Recommender, item_idx: int, history: np.ndarray, n: int):
    others = history[history != item_idx]
    if n < 1 or len(others) == 0 or not model.item_similarity:
        return []
    with torch.no_grad():
        vectors = torch.nn.functional.normalize(model._item_vectors().float(), dim=1)
        index = torch.from_numpy(others).to(vectors.device)
        cosine = (vectors[index] @ vectors[item_idx]).cpu().numpy()
    order = np.lexsort((others, -cosine))[:n]  # closest first, ties to the lower index
    return [(str(model.items.ids[others[o]]), float(cosine[o])) for o in order]


def _parts_note(model: Recommender, parts, parts_sum, score: float) -> str:
    if parts is None:
        return (
            f"not available: the {model.name} score ({model.score_kind}) does not split into parts"
        )
    tolerance = 1e-4 * (1 + math.fsum(abs(v) for v in parts.values()))
    if abs(parts_sum - score) > tolerance:
        _log.warning("%s: parts sum to %r but the score is %r", model.name, parts_sum, score)
        return f"the parts sum to {parts_sum:.6g}, not to the score {score:.6g}: a dotrec bug"
    if len(parts) == 1:
        return f"the score is a single term, {next(iter(parts))}; the model has no biases"
    if all(name.startswith("history item ") for name in parts):
        return (
            "one term per training item of the user: that item's weight towards this one "
            "(items with weight 0 left out)"
        )
    return "the terms sum to the score"
