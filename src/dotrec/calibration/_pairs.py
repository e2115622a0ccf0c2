"""The held-out (user, item) pairs a calibrator is fitted and measured on."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import torch

from dotrec.data import Interactions
from dotrec.data._interactions import require_interactions
from dotrec.ranking import overlap_mask
from dotrec.topk import rows_mask

if TYPE_CHECKING:
    from dotrec.models.base import Recommender

_log = logging.getLogger(__name__)


@dataclass
class CalibrationPairs:
    """Scored (user, item) pairs of held-out users, with labels and weights.

    Attributes:
        user_idx: int64 (n,), the model's user index of each pair.
        scores: float64 (n,), the model's raw scores.
        labels: float64 (n,): 1 for a held-out interaction, else 0.
        weights: float64 (n,): 1, or for drawn negatives the user's candidate
            negatives per drawn one.
        notes: counts of held-out rows left out, and why.
    """

    user_idx: np.ndarray
    scores: np.ndarray
    labels: np.ndarray
    weights: np.ndarray
    notes: dict[str, int] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.scores)

    def take(self, mask: np.ndarray) -> CalibrationPairs:
        """The pairs picked by a boolean mask."""
        pick = (self.user_idx, self.scores, self.labels, self.weights)
        return CalibrationPairs(*(a[mask] for a in pick), dict(self.notes))


def calibration_pairs(
    model: Recommender,
    heldout: Interactions,
    *,
    negatives: int | None = None,
    max_pairs: int = 2_000_000,
    seed: int = 0,
) -> CalibrationPairs:
    """Score the held-out users' candidate items (:mod:`dotrec.calibration` says what they mean).

    Args:
        model: a fitted model.
        heldout: interactions held out from the model's training data; its
            positive rows are the positives. Rows whose user or item the model
            does not know, and pairs the model trained on, are left out.
        negatives: None scores every non-training item of each user; an
            integer ``r`` draws ``r`` negatives per positive, uniformly from
            the user's non-training, non-held-out items, weighted up.
        max_pairs: most pairs; users are sampled (seeded) to stay under it.
        seed: seed of the user sample and of the drawn negatives.

    Raises:
        ValueError: no held-out positive is left to calibrate on, or
            ``negatives`` or ``max_pairs`` is not a positive integer.
    """
    model._check_fitted()
    require_interactions(heldout, "calibration")
    if negatives is not None and negatives < 1:
        raise ValueError(f"negatives must be at least 1 or None (all items), got {negatives!r}")
    if isinstance(max_pairs, bool) or not isinstance(max_pairs, (int, np.integer)) or max_pairs < 1:
        raise ValueError(f"max_pairs (--max-pairs) must be a positive integer, got {max_pairs!r}")
    positive = heldout.subset(heldout.positive)
    known, kept = positive.reindex(model.users, model.items)
    in_train = overlap_mask(model.seen, known.user_idx, known.item_idx)
    notes = {
        "heldout_positive_rows": len(positive),
        "unknown_user_or_item": int((~kept).sum()),
        "pairs_in_training_data": int(in_train.sum()),
    }
    user_idx, item_idx = known.user_idx[~in_train], known.item_idx[~in_train]
    if len(user_idx) == 0:
        raise ValueError(
            f"{heldout.source}: none of its {len(positive)} positive rows can calibrate the "
            f"model ({notes['unknown_user_or_item']} have a user or item the model does not "
            f"know, {notes['pairs_in_training_data']} are pairs it trained on). Give the "
            "held-out side of the split the model was trained on (e.g. test.csv of "
            "`dotrec split`)."
        )
    held = _csr(user_idx, item_idx, model.seen.shape)
    users = _sample_users(model, held, negatives, max_pairs, np.random.default_rng(seed))
    notes["users"] = len(users)
    notes["users_left_out_by_cap"] = len(np.unique(user_idx)) - len(users)
    rng = np.random.default_rng([seed, 1])
    parts = [_score_batch(model, held, batch, negatives, rng) for batch in _batches(model, users)]
    pairs = CalibrationPairs(*(np.concatenate(a) for a in zip(*parts, strict=True)), notes)
    _log.info("calibration pairs: %d for %d users (%s)", len(pairs), len(users), notes)
    return pairs


def _csr(user_idx: np.ndarray, item_idx: np.ndarray, shape: tuple[int, int]):
    import scipy.sparse as sp

    ones = np.ones(len(user_idx), dtype=np.float32)
    matrix = sp.csr_array((ones, (user_idx, item_idx)), shape=shape)
    matrix.sum_duplicates()
    return matrix


def _sample_users(model, held, negatives: int | None, max_pairs: int, rng) -> np.ndarray:
    """Held-out users in a seeded random order, as many as fit in ``max_pairs``."""
    n_positive = np.diff(held.indptr)
    users = np.flatnonzero(n_positive)
    if negatives is None:
        per_user = model.seen.shape[1] - np.diff(model.seen.indptr)[users]
    else:
        per_user = n_positive[users] * (1 + negatives)
    order = rng.permutation(len(users))
    fits = np.cumsum(per_user[order]) <= max_pairs
    fits[0] = True  # at least one user, whatever the cap
    return np.sort(users[order][fits])


def _batches(model, users: np.ndarray):
    size = max(1, 2**22 // max(model.seen.shape[1], 1))
    for start in range(0, len(users), size):
        yield users[start : start + size]


def _score_batch(model, held, users: np.ndarray, negatives: int | None, rng):
    """(user_idx, scores, labels, weights) of one batch of users."""
    with torch.no_grad():
        scores = model._score_users(torch.from_numpy(users)).double().cpu().numpy()
    candidate = ~rows_mask(model.seen, users).numpy()
    label = rows_mask(held, users).numpy()
    weight = candidate.astype(np.float64)
    if negatives is not None:  # keep r drawn negatives per positive, weighted up
        for row in range(len(users)):
            pool = np.flatnonzero(candidate[row] & ~label[row])
            n_draw = min(len(pool), negatives * int(label[row].sum()))
            drawn = rng.choice(pool, size=n_draw, replace=False)
            candidate[row, pool] = False
            candidate[row, drawn] = True
            weight[row, drawn] = len(pool) / max(n_draw, 1)
    rows, cols = np.nonzero(candidate)
    return users[rows], scores[rows, cols], label[rows, cols].astype(np.float64), weight[rows, cols]
