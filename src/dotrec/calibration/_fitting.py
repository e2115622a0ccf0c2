"""Fitting calibrators: Platt scaling by Newton's method, isotonic regression by PAV."""

from __future__ import annotations

import logging
import math
import warnings

import numpy as np

from dotrec.calibration._calibrators import IsotonicCalibrator, PlattCalibrator, _sigmoid
from dotrec.calibration._measures import _check_pairs

_log = logging.getLogger(__name__)


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


def _mean_std(x: np.ndarray, w: np.ndarray) -> tuple[float, float]:
    mean = float(np.sum(w * x) / w.sum())
    std = float(np.sqrt(np.sum(w * (x - mean) ** 2) / w.sum()))
    return mean, std if std > 0 else 1.0
