"""Calibration: turning a model's scores into probabilities, fitted on held-out data.

A score only orders items (see each model's ``score_kind``); it is not a
probability. :func:`calibrate` fits a non-decreasing map from scores to
probabilities on held-out interactions and attaches it to the model, after
which ``model.score(users, items, kind="probability")`` gives probabilities:

- Platt scaling: ``p = sigmoid(a * score + b)``, with ``a`` and ``b``
  minimising the log loss (Platt, "Probabilistic Outputs for Support Vector
  Machines", 1999), found by Newton's method.
- Isotonic regression: the non-decreasing step function of the score closest
  to the labels in squared error, by pool-adjacent-violators (Ayer et al.,
  1955; Zadrozny and Elkan, KDD 2002).

**What the probability means.** The calibration pairs are (user, item) pairs
of users with held-out interactions. A pair is positive when the item is
among the user's held-out interactions, and negative when it is any other
item of the model's catalogue that the user has no training interaction
with. A calibrated probability of (u, i) therefore estimates

    P(i is among u's held-out interactions | the score of (u, i),
      i not among u's training items, u has a held-out interaction)

where "held-out" is whatever the held-out data covers: with a temporal split,
the time from the cutoff to the end of the log (the evaluation horizon); with
a per-user random split, a random share of each user's interactions, which is
no horizon at all. A calibrator holds only for data held out the same way,
and only for users active in the held-out data (users without held-out
interactions are not in the calibration pairs). Held-out items the model does
not know are left out: the probability is over the model's catalogue.

**Negatives and the base rate.** By default (``negatives=None``) every
non-training item of each calibration user is scored, so the share of
positives among the pairs is the true base rate: held-out interactions per
candidate pair (about 1% on MovieLens 100K with a 20% random split). With
``negatives=r``, only ``r`` uniformly drawn negatives per positive are scored,
so the sample's base rate is about ``1 / (1 + r)``; fitted on that sample as
it is, every probability would be too high, its odds inflated by the ratio of
the user's negatives to those drawn. dotrec gives each drawn negative of user
u the weight (u's candidate negatives) / (u's drawn negatives), which restores
the true base rate in expectation; the weights enter the fit, the ECE and the
log loss. The cap on pairs (``max_pairs``) is met by sampling users, never
items, so it leaves the base rate alone.
"""

from __future__ import annotations

import logging
import math
import warnings
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import torch

from dotrec.data import Interactions
from dotrec.data._interactions import require_interactions
from dotrec.exceptions import DotrecError
from dotrec.ranking import overlap_mask
from dotrec.topk import rows_mask

if TYPE_CHECKING:
    from dotrec.models.base import Recommender

__all__ = [
    "CalibrationPairs",
    "CalibrationReport",
    "IsotonicCalibrator",
    "MEANING",
    "PlattCalibrator",
    "calibrate",
    "calibration_pairs",
    "calibrator_from_dict",
    "expected_calibration_error",
    "fit_isotonic",
    "fit_platt",
    "log_loss",
    "pav",
    "reliability_curve",
]

_log = logging.getLogger(__name__)

Method = Literal["platt", "isotonic"]
Binning = Literal["mass", "width"]

MEANING = (
    "probability that the item is among the user's held-out interactions (within what "
    "the held-out data covers), given the score, for an item not among the user's "
    "training items and a user with held-out interactions"
)
"""What a calibrated probability estimates, in words (stored with the calibrator)."""


# --- the calibrators ------------------------------------------------------------------


class PlattCalibrator:
    """``p = sigmoid(a * score + b)``.

    Attributes:
        a: slope on the score.
        b: intercept.
        info: how and on what the calibrator was fitted (plain JSON values).
    """

    method = "platt"

    def __init__(self, a: float, b: float, info: dict[str, Any] | None = None):
        self.a, self.b = float(a), float(b)
        self.info = dict(info or {})

    def __repr__(self) -> str:
        return f"PlattCalibrator(a={self.a:.6g}, b={self.b:.6g})"

    def logit(self, scores: np.ndarray) -> np.ndarray:
        """Calibrated log-odds ``a * score + b``, float64 of the scores' shape."""
        return self.a * np.asarray(scores, dtype=np.float64) + self.b

    def transform(self, scores: np.ndarray) -> np.ndarray:
        """Calibrated probabilities, float64 of the scores' shape."""
        return _sigmoid(self.logit(scores))

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON values; :func:`calibrator_from_dict` reads them back."""
        return {"method": self.method, "a": self.a, "b": self.b, "info": self.info}


class IsotonicCalibrator:
    """A non-decreasing step function of the score.

    A score gets the value of the step with the largest ``threshold`` not
    above it; a score below the first threshold gets the first value.

    Attributes:
        thresholds: float64 (S,), increasing: the lowest fitted score of each step.
        values: float64 (S,), non-decreasing probabilities.
        info: how and on what the calibrator was fitted.
    """

    method = "isotonic"

    def __init__(
        self, thresholds: np.ndarray, values: np.ndarray, info: dict[str, Any] | None = None
    ):
        self.thresholds = np.asarray(thresholds, dtype=np.float64)
        self.values = np.asarray(values, dtype=np.float64)
        if len(self.thresholds) == 0 or self.thresholds.shape != self.values.shape:
            raise ValueError("an isotonic calibrator needs as many thresholds as values, >= 1")
        if np.any(np.diff(self.thresholds) <= 0) or np.any(np.diff(self.values) < 0):
            raise ValueError("isotonic thresholds must increase and values must not decrease")
        self.info = dict(info or {})

    def __repr__(self) -> str:
        return f"IsotonicCalibrator({len(self.values)} steps)"

    def transform(self, scores: np.ndarray) -> np.ndarray:
        """Calibrated probabilities, float64 of the scores' shape."""
        s = np.asarray(scores, dtype=np.float64)
        step = np.searchsorted(self.thresholds, s, side="right") - 1
        return self.values[np.clip(step, 0, len(self.values) - 1)]

    def logit(self, scores: np.ndarray) -> np.ndarray:
        """Log-odds of :meth:`transform`; infinite where it gives 0 or 1."""
        p = self.transform(scores)
        with np.errstate(divide="ignore"):
            return np.log(p) - np.log1p(-p)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON values; :func:`calibrator_from_dict` reads them back."""
        return {
            "method": self.method,
            "thresholds": self.thresholds.tolist(),
            "values": self.values.tolist(),
            "info": self.info,
        }


Calibrator = PlattCalibrator | IsotonicCalibrator


def calibrator_from_dict(payload: dict[str, Any]) -> Calibrator:
    """The calibrator written by ``to_dict``.

    Raises:
        ValueError: an unknown method, or missing or malformed fields.
    """
    if not isinstance(payload, dict):
        raise ValueError(f"a calibrator is a JSON object, got {type(payload).__name__}")
    method = payload.get("method")
    try:
        if method == "platt":
            a, b = float(payload["a"]), float(payload["b"])
            if not (math.isfinite(a) and math.isfinite(b)):
                raise ValueError(f"Platt parameters must be finite, got a={a}, b={b}")
            return PlattCalibrator(a, b, payload.get("info"))
        if method == "isotonic":
            return IsotonicCalibrator(payload["thresholds"], payload["values"], payload.get("info"))
    except (KeyError, TypeError) as err:
        raise ValueError(f"the {method} calibrator lacks a field or has a bad one ({err})") from err
    raise ValueError(f"unknown calibration method {method!r}; known: platt, isotonic")


# --- fitting ----------------------------------------------------------------------------


def fit_platt(
    scores: np.ndarray,
    labels: np.ndarray,
    weights: np.ndarray | None = None,
    *,
    smoothing: bool = True,
    max_iter: int = 100,
    tol: float = 1e-14,
) -> PlattCalibrator:
    """Platt scaling: ``a``, ``b`` minimising the (weighted) log loss of ``sigmoid(a s + b)``.

    Newton's method on the standardised scores, halving steps that do not
    lower the loss.

    Args:
        scores: raw scores (n,).
        labels: 0/1 (n,).
        weights: non-negative weights (n,), or None for ones.
        smoothing: use Platt's targets ``(N+ + 1) / (N+ + 2)`` for positives
            and ``1 / (N- + 2)`` for negatives (N the weight of each class)
            instead of 1 and 0, which keeps the fit finite when the scores
            separate the classes and changes nothing noticeable on large data.
        max_iter: most Newton steps.
        tol: stop when the Newton decrement per unit of weight (about twice
            the distance of the mean loss from its minimum) is below this.

    Example:
        >>> cal = fit_platt(np.array([-2.0, -1, 0, 1, 2]), np.array([0, 0, 1, 0, 1]))
        >>> bool(cal.a > 0), bool(cal.transform(np.array([2.0]))[0] > 0.5)
        (True, True)
    """
    s, y, w = _check_pairs(scores, labels, weights)
    pos, neg = w[y == 1].sum(), w[y == 0].sum()
    target = np.where(y == 1, (pos + 1) / (pos + 2), 1 / (neg + 2)) if smoothing else y
    mean, std = _mean_std(s, w)
    x = (s - mean) / std
    total = w.sum()

    def loss(theta: np.ndarray) -> float:
        z = theta[0] * x + theta[1]
        return float(np.sum(w * (np.logaddexp(0.0, z) - target * z)))

    base = np.clip(np.sum(w * target) / total, 1e-12, 1 - 1e-12)
    theta = np.array([0.0, math.log(base / (1 - base))])
    current = loss(theta)
    for step in range(max_iter):  # noqa: B007 - step is logged after the loop
        p = _sigmoid(theta[0] * x + theta[1])
        residual, curvature = w * (p - target), w * p * (1 - p)
        grad = np.array([residual @ x, residual.sum()])
        hess = np.array(
            [[curvature @ (x * x), curvature @ x], [curvature @ x, curvature.sum()]]
        ) + 1e-12 * total * np.eye(2)
        direction = -np.linalg.solve(hess, grad)
        if -grad @ direction / total < tol:  # Newton decrement: about twice the loss gap
            break
        scale = 1.0
        while scale > 1e-10 and loss(theta + scale * direction) > current:
            scale /= 2
        theta = theta + scale * direction
        current = loss(theta)
    else:
        warnings.warn(
            f"Platt scaling did not converge in {max_iter} Newton steps (the scores may "
            "separate the labels perfectly); use smoothing=True or more data.",
            RuntimeWarning,
            stacklevel=2,
        )
    _log.debug("Platt scaling: %d Newton steps, loss %.6g", step, current / total)
    return PlattCalibrator(theta[0] / std, theta[1] - theta[0] * mean / std)


def pav(values: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
    """Pool adjacent violators: the non-decreasing fit closest in weighted squared error.

    Pooling any adjacent violators, in any order, reaches the same unique
    solution, and pooling equal neighbours changes nothing. So each round
    pools every run of adjacent blocks whose means do not increase, all at
    once with array operations; after a few rounds (:data:`_VECTOR_ROUNDS`),
    which leave few blocks, a stack finishes the job in one pass, so that no
    input takes more than linear time per round.

    Args:
        values: the sequence to fit (n,), in the order that must not decrease.
        weights: positive weights (n,), or None for ones.

    Returns:
        float64 (n,): the fitted non-decreasing values.

    Example:
        >>> pav(np.array([1.0, 3.0, 2.0, 4.0])).tolist()
        [1.0, 2.5, 2.5, 4.0]
    """
    y = np.asarray(values, dtype=np.float64)
    w = np.ones_like(y) if weights is None else np.asarray(weights, dtype=np.float64)
    if len(y) == 0:
        return y.copy()
    means, sizes, starts = y.copy(), w.copy(), np.arange(len(y))
    for _ in range(_VECTOR_ROUNDS):
        pool = means[:-1] >= means[1:]  # block j joins block j + 1
        if not pool.any():
            break
        first = np.flatnonzero(np.concatenate([[True], ~pool]))
        total = np.add.reduceat(sizes, first)
        means = np.add.reduceat(means * sizes, first) / total
        sizes, starts = total, starts[first]
    else:
        means, sizes, starts = _pav_stack(means, sizes, starts)
    return np.repeat(means, np.diff(np.append(starts, len(y))))


_VECTOR_ROUNDS = 50
"""Rounds of vectorised pooling before :func:`pav` finishes with a stack."""


def _pav_stack(means: np.ndarray, sizes: np.ndarray, starts: np.ndarray):
    """Classic one-pass PAV over blocks: each block pools back while it violates."""
    out_mean, out_size, out_start = [], [], []
    for mean, size, start in zip(means.tolist(), sizes.tolist(), starts.tolist(), strict=True):
        while out_mean and out_mean[-1] >= mean:
            total = out_size[-1] + size
            mean = (out_mean.pop() * out_size.pop() + mean * size) / total
            size, start = total, out_start.pop()
        out_mean.append(mean)
        out_size.append(size)
        out_start.append(start)
    return np.array(out_mean), np.array(out_size), np.array(out_start)


def fit_isotonic(
    scores: np.ndarray, labels: np.ndarray, weights: np.ndarray | None = None
) -> IsotonicCalibrator:
    """Isotonic regression of the labels on the scores, as a step function.

    Pairs with equal scores are pooled first (their order is arbitrary), then
    :func:`pav` fits the label means in score order.

    Example:
        >>> cal = fit_isotonic(np.array([0.0, 1, 2, 3]), np.array([0, 1, 0, 1]))
        >>> cal.transform(np.array([-5.0, 1.5, 3.0])).tolist()
        [0.0, 0.5, 1.0]
    """
    s, y, w = _check_pairs(scores, labels, weights)
    order = np.argsort(s, kind="stable")
    s, y, w = s[order], y[order], w[order]
    first = np.flatnonzero(np.concatenate([[True], s[1:] != s[:-1]]))
    weight = np.add.reduceat(w, first)
    fitted = pav(np.add.reduceat(w * y, first) / weight, weight)

    # One step per run of equal fitted values, starting at its lowest score.
    step = np.concatenate([[True], fitted[1:] != fitted[:-1]])
    return IsotonicCalibrator(s[first][step], fitted[step])


# --- measuring ----------------------------------------------------------------------------


def expected_calibration_error(
    probabilities: np.ndarray,
    labels: np.ndarray,
    n_bins: int = 15,
    binning: Binning = "mass",
    weights: np.ndarray | None = None,
) -> float:
    """ECE: ``sum_b (W_b / W) |mean label_b - mean probability_b|``, W the weights.

    Args:
        probabilities: predicted probabilities in [0, 1], shape (n,).
        labels: 0/1 outcomes (n,).
        n_bins: number of bins.
        binning: ``"mass"``: bins of equal weight over the sorted
            probabilities, each run of equal probabilities kept in one bin
            (so a bin may hold more or less than ``W / n_bins``);
            ``"width"``: bins ``[k / n_bins, (k + 1) / n_bins)``, the last one
            closed. With a base rate of a few percent nearly every pair falls
            in the first equal-width bin, where the ECE says little; equal-mass
            bins spread the pairs.
        weights: non-negative weights (n,), or None for ones.

    Example:
        >>> p, y = np.array([0.1, 0.3, 0.6, 0.8]), np.array([0, 1, 1, 1])
        >>> round(expected_calibration_error(p, y, n_bins=2, binning="width"), 6)
        0.3
    """
    p, y, w = _check_pairs(probabilities, labels, weights)
    bins = _bin_index(p, w, n_bins, binning)
    gap = np.bincount(bins, w * y, n_bins) - np.bincount(bins, w * p, n_bins)
    return float(np.abs(gap).sum() / w.sum())


def reliability_curve(
    probabilities: np.ndarray,
    labels: np.ndarray,
    n_bins: int = 15,
    binning: Binning = "mass",
    weights: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The points of a reliability diagram, binned as :func:`expected_calibration_error`.

    Returns:
        ``(predicted, observed, weight)``, float64 arrays with one entry per
        non-empty bin in increasing order: the bin's weighted mean
        probability, its weighted share of positives, and its share of the
        total weight. The ECE is ``sum(weight * |observed - predicted|)``.

    Example:
        >>> p, y = np.array([0.1, 0.3, 0.6, 0.8]), np.array([0, 1, 1, 1])
        >>> [a.tolist() for a in reliability_curve(p, y, n_bins=2, binning="width")]
        [[0.2, 0.7], [0.5, 1.0], [0.5, 0.5]]
    """
    p, y, w = _check_pairs(probabilities, labels, weights)
    bins = _bin_index(p, w, n_bins, binning)
    total = np.bincount(bins, w, n_bins)
    full = total > 0
    predicted = np.bincount(bins, w * p, n_bins)[full] / total[full]
    observed = np.bincount(bins, w * y, n_bins)[full] / total[full]
    return predicted, observed, total[full] / w.sum()


def _bin_index(p: np.ndarray, w: np.ndarray, n_bins: int, binning: str) -> np.ndarray:
    """The bin (0 .. n_bins - 1) of each probability; see :func:`expected_calibration_error`."""
    if n_bins < 1:
        raise ValueError(f"n_bins must be at least 1, got {n_bins}")
    if binning == "width":
        return np.clip(np.floor(p * n_bins), 0, n_bins - 1).astype(np.int64)
    if binning != "mass":
        raise ValueError(f"binning must be 'mass' or 'width', got {binning!r}")
    order = np.argsort(p, kind="stable")
    before = np.cumsum(w[order]) - w[order]  # weight below each sorted pair
    run = np.concatenate([[0], np.cumsum(p[order][1:] != p[order][:-1])])
    run_start = np.flatnonzero(np.concatenate([[True], np.diff(run) > 0]))
    start_weight = before[run_start][run]  # ties share the bin of their first
    bins = np.empty(len(p), dtype=np.int64)
    bins[order] = np.minimum((start_weight / w.sum() * n_bins).astype(np.int64), n_bins - 1)
    return bins


def log_loss(
    probabilities: np.ndarray, labels: np.ndarray, weights: np.ndarray | None = None
) -> float:
    """Mean (weighted) negative log-likelihood, probabilities clipped to [1e-15, 1 - 1e-15].

    Example:
        >>> round(log_loss(np.array([0.5, 0.5]), np.array([0, 1])), 6)
        0.693147
    """
    p, y, w = _check_pairs(probabilities, labels, weights)
    p = np.clip(p, 1e-15, 1 - 1e-15)
    return float(-np.sum(w * (y * np.log(p) + (1 - y) * np.log1p(-p))) / w.sum())


# --- the held-out pairs ---------------------------------------------------------------------


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
    """Score the held-out users' candidate items (see the module docs for what they mean).

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


# --- calibrate ----------------------------------------------------------------------------


@dataclass
class CalibrationReport:
    """What :func:`calibrate` fitted and how well it does on users kept out of the fit.

    ``ece_*`` map a binning (``"mass"``, ``"width"``) to the ECE with
    ``n_bins`` bins. The ``*_before`` values use ``before`` as the
    uncalibrated probability, and are None when the model has none.
    """

    method: str
    calibrator: Calibrator
    before: str | None
    """How the uncalibrated probability was formed, e.g. ``"sigmoid(score)"``."""
    before_note: str
    negatives: int | None
    n_bins: int
    fit_users: int
    fit_pairs: int
    report_users: int
    report_pairs: int
    in_sample: bool
    """True when too few users were left to measure on users outside the fit."""
    base_rate: float
    """Weighted share of positives among the measured pairs."""
    ece_before: dict[str, float] | None
    ece_after: dict[str, float]
    log_loss_before: float | None
    log_loss_after: float
    log_loss_base_rate: float
    """Log loss of predicting the base rate for every pair: the bar to beat."""
    notes: dict[str, int]
    meaning: str = MEANING

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON values (the calibrator as its ``to_dict``)."""
        out = asdict(self) | {"calibrator": self.calibrator.to_dict()}
        out["calibrator"].pop("info", None)
        return out


def calibrate(
    model: Recommender,
    heldout: Interactions,
    method: Method = "platt",
    *,
    negatives: int | None = None,
    max_pairs: int = 2_000_000,
    report_fraction: float = 0.3,
    n_bins: int = 15,
    seed: int = 0,
) -> CalibrationReport:
    """Fit a calibrator on held-out data, measure it, and attach it to ``model``.

    The users of the calibration pairs (:func:`calibration_pairs`) are split
    at random: the calibrator is fitted on ``1 - report_fraction`` of them,
    and the ECE and log loss, before and after, are measured on the others.
    The calibrator measured is the one attached, as ``model.calibrator``,
    after which ``model.score(..., kind="probability")`` works and
    ``model.save`` keeps it. Refitting the model drops it.

    "Before" needs a probability from the raw score: for a model trained with
    binary cross-entropy (``loss="bce"``) it is ``sigmoid(score)``, which its
    training suggests and which the ECE shows is not a probability of the
    held-out interactions (it reflects the sampled negatives); other models'
    scores are no probabilities at all, and have no "before".

    Args:
        model: a fitted model.
        heldout: interactions held out from the model's training data; use
            data not needed for the final test, since fitting uses it.
        method: ``"platt"`` or ``"isotonic"``.
        negatives: see :func:`calibration_pairs`.
        max_pairs: see :func:`calibration_pairs`.
        report_fraction: share of the users kept out of the fit for measuring.
        n_bins: bins of the ECE.
        seed: seed of the user sample, the negatives and the user split.

    Raises:
        ValueError: an unknown method, a bad fraction, or no usable held-out data.
    """
    if method not in ("platt", "isotonic"):
        raise ValueError(f"method must be 'platt' or 'isotonic', got {method!r}")
    if not 0.0 <= report_fraction < 1.0:
        raise ValueError(f"report_fraction must be in [0, 1), got {report_fraction!r}")
    pairs = calibration_pairs(model, heldout, negatives=negatives, max_pairs=max_pairs, seed=seed)
    fit, measure, in_sample = _split_users(pairs, report_fraction, seed)
    fitter = fit_platt if method == "platt" else fit_isotonic
    calibrator = fitter(fit.scores, fit.labels, fit.weights)

    before, note = _uncalibrated(model)
    naive = None if before is None else _sigmoid(measure.scores)
    after = calibrator.transform(measure.scores)
    args = (measure.labels, n_bins)
    base_rate = float(np.sum(measure.weights * measure.labels) / measure.weights.sum())
    report = CalibrationReport(
        method=method,
        calibrator=calibrator,
        before=before,
        before_note=note,
        negatives=negatives,
        n_bins=n_bins,
        fit_users=len(np.unique(fit.user_idx)),
        fit_pairs=len(fit),
        report_users=len(np.unique(measure.user_idx)),
        report_pairs=len(measure),
        in_sample=in_sample,
        base_rate=base_rate,
        ece_before=None if naive is None else _eces(naive, *args, measure.weights),
        ece_after=_eces(after, *args, measure.weights),
        log_loss_before=None if naive is None else log_loss(naive, measure.labels, measure.weights),
        log_loss_after=log_loss(after, measure.labels, measure.weights),
        log_loss_base_rate=log_loss(
            np.full(len(measure), base_rate), measure.labels, measure.weights
        ),
        notes=pairs.notes,
    )
    calibrator.info = _info(report, heldout)
    model.calibrator = calibrator
    _log.info("calibrated %s with %s on %d pairs", model.name, method, len(fit))
    return report


def _split_users(pairs: CalibrationPairs, fraction: float, seed: int):
    """(fit pairs, measured pairs, in_sample) by a seeded split of the users."""
    users = np.unique(pairs.user_idx)
    n_report = int(round(fraction * len(users)))
    if fraction == 0 or n_report == 0 or n_report == len(users):
        return pairs, pairs, True
    chosen = np.random.default_rng([seed, 2]).permutation(users)[:n_report]
    measured = np.isin(pairs.user_idx, chosen)
    return pairs.take(~measured), pairs.take(measured), False


def _uncalibrated(model: Recommender) -> tuple[str | None, str]:
    if getattr(model.config, "loss", None) == "bce":
        return "sigmoid(score)", (
            "before: sigmoid of the raw score, the logit the model was trained with binary "
            "cross-entropy against sampled negatives"
        )
    return None, (
        f"no 'before': {model.name} scores ({model.score_kind}) have no probability reading"
    )


def _eces(p, labels, n_bins, weights) -> dict[str, float]:
    return {
        binning: expected_calibration_error(p, labels, n_bins, binning, weights)
        for binning in ("mass", "width")
    }


def _info(report: CalibrationReport, heldout: Interactions) -> dict[str, Any]:
    """What is stored with the calibrator: its meaning, data and measurements."""
    out = report.to_dict()
    out.pop("calibrator")
    return out | {"heldout_source": heldout.source, "heldout_fingerprint": heldout.fingerprint()}


# --- helpers -------------------------------------------------------------------------------


def _sigmoid(z: np.ndarray) -> np.ndarray:
    z = np.asarray(z, dtype=np.float64)
    return np.exp(-np.logaddexp(0.0, -z))


def _mean_std(x: np.ndarray, w: np.ndarray) -> tuple[float, float]:
    mean = float(np.sum(w * x) / w.sum())
    std = float(np.sqrt(np.sum(w * (x - mean) ** 2) / w.sum()))
    return mean, std if std > 0 else 1.0


def _check_pairs(values, labels, weights):
    """float64 values, labels and weights of one length; labels 0/1, weights >= 0."""
    x = np.asarray(values, dtype=np.float64).ravel()
    y = np.asarray(labels, dtype=np.float64).ravel()
    w = np.ones_like(x) if weights is None else np.asarray(weights, dtype=np.float64).ravel()
    if not len(x) == len(y) == len(w):
        raise ValueError(
            f"values, labels and weights differ in length ({len(x)}, {len(y)}, {len(w)})"
        )
    if len(x) == 0:
        raise ValueError("no pairs to fit or measure")
    if not np.all(np.isfinite(x)):
        raise DotrecError("scores hold NaN or infinite values; the model cannot be calibrated")
    if np.any((y != 0) & (y != 1)):
        raise ValueError("labels must be 0 or 1")
    if np.any(w < 0) or not w.sum() > 0:
        raise ValueError("weights must be non-negative with a positive sum")
    return x, y, w
