"""Statistics for comparing models over the same users: intervals and paired tests.

Each function takes per-user values, one per evaluated user, such as the
``per_user`` columns of :func:`dotrec.evaluate`. A comparison of two models
is paired: row u of both arrays belongs to the same user, so the tests look
at the per-user differences, which removes the spread between easy and hard
users that an unpaired test would count as noise.

- :func:`bootstrap_ci`: percentile bootstrap interval of the mean over users.
- :func:`paired_ttest`: two-sided paired t-test of the mean difference.
- :func:`wilcoxon_signed_rank`: two-sided Wilcoxon signed-rank test of the
  differences, which does not assume they are normal (per-user ranking
  metrics are mostly zeros and rarely are).

P-values are not adjusted for multiple comparisons; with many metrics and
models, expect some small p-values by chance.
"""

from __future__ import annotations

import warnings

import numpy as np

__all__ = ["bootstrap_ci", "check_bootstrap_options", "paired_ttest", "wilcoxon_signed_rank"]

_CHUNK_CELLS = 2**22
"""Resample-by-user cells drawn at once (memory of one chunk, in int64s)."""


def bootstrap_ci(
    values: np.ndarray,
    *,
    n_resamples: int = 1000,
    confidence: float = 0.95,
    seed: int | np.random.Generator = 0,
) -> np.ndarray:
    """Percentile bootstrap confidence interval of the mean over users.

    Each resample draws ``n`` users with replacement from the ``n`` rows of
    ``values`` and takes the mean; the interval runs from the
    ``(1 - confidence) / 2`` to the ``(1 + confidence) / 2`` quantile of the
    ``n_resamples`` means. Resample ``b`` draws its users as
    ``rng.integers(0, n, size=n)``, the ``b``-th such draw of
    ``rng = numpy.random.default_rng(seed)``, so a seed gives the same
    interval every time. With several columns, every column is resampled
    with the same users (the intervals of models evaluated on the same users
    share their draws).

    Args:
        values: float (n,) one value per user, or (n, c) one column per model.
        n_resamples: bootstrap resamples.
        confidence: coverage of the interval, between 0 and 1.
        seed: seed (or NumPy generator) of the draws.

    Returns:
        float64 array (2,) ``[low, high]``, or (2, c) with several columns;
        NaN for no user.

    Raises:
        ValueError: ``n_resamples`` or ``confidence`` out of range, or values
            that are not finite numbers in one or two dimensions.

    Example:
        >>> low, high = bootstrap_ci(np.array([0.0, 1.0, 0.0, 1.0]), n_resamples=200)
        >>> bool(0.0 <= low < 0.5 < high <= 1.0)
        True
    """
    check_bootstrap_options(n_resamples, confidence)
    data = _as_values(values, "values")
    n = len(data)
    if n == 0:
        return np.full((2,) + data.shape[1:], np.nan)
    table = data.reshape(n, -1)

    rng = np.random.default_rng(seed)
    means = np.empty((n_resamples, table.shape[1]))
    step = max(1, _CHUNK_CELLS // n)
    for start in range(0, n_resamples, step):
        size = min(step, n_resamples - start)
        draws = rng.integers(0, n, size=(size, n))
        # How often each user is drawn in each resample, then one matrix product.
        rows = np.repeat(np.arange(size), n) * n
        counts = np.bincount(rows + draws.ravel(), minlength=size * n).reshape(size, n)
        means[start : start + size] = counts @ table / n

    tail = (1.0 - confidence) / 2
    interval = np.quantile(means, [tail, 1.0 - tail], axis=0)
    return interval.reshape((2,) + data.shape[1:])


def check_bootstrap_options(n_resamples: int, confidence: float) -> None:
    """Raise ValueError unless ``n_resamples`` >= 1 and 0 < ``confidence`` < 1.

    Callers that do slow work before :func:`bootstrap_ci` check first.
    """
    if (
        isinstance(n_resamples, bool)
        or not isinstance(n_resamples, (int, np.integer))
        or n_resamples < 1
    ):
        raise ValueError(
            f"n_resamples (--resamples) must be a positive integer, got {n_resamples!r}"
        )
    if not 0.0 < confidence < 1.0:
        raise ValueError(
            f"confidence (--confidence) must be between 0 and 1, e.g. 0.95; got {confidence!r}"
        )


def paired_ttest(a: np.ndarray, b: np.ndarray) -> float:
    """Two-sided p-value of the paired t-test that ``mean(b - a)`` is 0.

    With ``d = b - a``, ``t = mean(d) / (sd(d) / sqrt(n))`` (``sd`` with
    ``n - 1``) on ``n - 1`` degrees of freedom, as
    :func:`scipy.stats.ttest_rel`. When every difference is 0 there is no
    evidence of a difference and the p-value is 1; when all differences are
    equal (to 12 significant digits) but not 0 it is 0.

    Args:
        a: float (n,) per-user values of the reference model.
        b: float (n,) the other model's values for the same users.

    Returns:
        The p-value; NaN for fewer than two users.

    Example:
        >>> # d = [1, 1, 2]: mean 4/3, sd 1/sqrt(3), t = 4 on 2 degrees of freedom
        >>> round(paired_ttest(np.array([0.0, 0.0, 0.0]), np.array([1.0, 1.0, 2.0])), 4)
        0.0572
    """
    diff = _differences(a, b)
    if len(diff) < 2:
        return float("nan")
    largest = float(np.abs(diff).max())
    if np.ptp(diff) <= 1e-12 * largest:  # the same difference for all, up to rounding
        return 1.0 if largest == 0 else 0.0
    import scipy.stats  # ~1 s to import: only when a test runs

    return float(scipy.stats.ttest_rel(b, a).pvalue)


def wilcoxon_signed_rank(a: np.ndarray, b: np.ndarray) -> float:
    """Two-sided p-value of the Wilcoxon signed-rank test of ``b - a``.

    Zero differences (users both models score the same, often 0 for both)
    are dropped, as in Wilcoxon's original test (scipy's
    ``zero_method="wilcox"``); the remaining differences are ranked by size,
    ties sharing their mean rank. The p-value is exact for up to 50 nonzero
    differences without ties and from the normal approximation otherwise
    (:func:`scipy.stats.wilcoxon`, ``method="auto"``).

    Args:
        a: float (n,) per-user values of the reference model.
        b: float (n,) the other model's values for the same users.

    Returns:
        The p-value; 1 when every difference is 0; NaN for no user.

    Example:
        >>> # d = [1, 2, -3, 4, 5]: W- = 3; 5 of the 32 sign patterns have W- <= 3
        >>> wilcoxon_signed_rank(np.zeros(5), np.array([1.0, 2.0, -3.0, 4.0, 5.0]))
        0.3125
    """
    diff = _differences(a, b)
    if len(diff) == 0:
        return float("nan")
    if not np.any(diff):
        return 1.0
    with warnings.catch_warnings():
        # scipy warns that exact p-values are unavailable with ties; it then approximates.
        warnings.simplefilter("ignore", UserWarning)
        import scipy.stats

        return float(scipy.stats.wilcoxon(diff, zero_method="wilcox").pvalue)


def _differences(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    first, second = _as_values(a, "a"), _as_values(b, "b")
    if first.ndim != 1 or first.shape != second.shape:
        raise ValueError(
            f"a and b must be 1-D arrays of one value per user, the same users in the same "
            f"order; got shapes {first.shape} and {second.shape}"
        )
    return second - first


def _as_values(values: np.ndarray, name: str) -> np.ndarray:
    data = np.asarray(values, dtype=np.float64)
    if data.ndim not in (1, 2):
        raise ValueError(
            f"{name} must hold one value per user (1-D or 2-D), got shape {data.shape}"
        )
    if not np.isfinite(data).all():
        raise ValueError(
            f"{name} holds {int((~np.isfinite(data)).sum())} NaN or infinite values; "
            "leave out the users without a value before computing statistics"
        )
    return data
