"""Measuring calibration: expected calibration error, reliability curve, log loss."""

from __future__ import annotations

from typing import Literal

import numpy as np

from dotrec.exceptions import DotrecError

Binning = Literal["mass", "width"]


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
