"""Bootstrap intervals and paired tests, against scipy, numpy loops and hand values."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.stats

import dotrec.stats
from dotrec.stats import bootstrap_ci, paired_ttest, wilcoxon_signed_rank

# --- bootstrap ------------------------------------------------------------------


def _loop_ci(values, n_resamples, confidence, seed):
    """The percentile interval, one resample at a time, drawing as documented."""
    rng = np.random.default_rng(seed)
    n = len(values)
    means = np.array([values[rng.integers(0, n, size=n)].mean(axis=0) for _ in range(n_resamples)])
    tail = (1 - confidence) / 2
    return np.quantile(means, [tail, 1 - tail], axis=0)


def test_bootstrap_matches_a_numpy_loop(rng):
    values = rng.random(57)
    got = bootstrap_ci(values, n_resamples=300, confidence=0.9, seed=7)
    assert got.shape == (2,)
    np.testing.assert_allclose(got, _loop_ci(values, 300, 0.9, 7), rtol=1e-12)


def test_bootstrap_columns_share_their_draws(rng):
    values = rng.random((40, 3))
    got = bootstrap_ci(values, n_resamples=200, seed=1)
    assert got.shape == (2, 3)
    np.testing.assert_allclose(got, _loop_ci(values, 200, 0.95, 1), rtol=1e-12)
    # the same users in every resample: a column shifted by 1 gets the interval shifted by 1
    shifted = bootstrap_ci(np.column_stack([values[:, 0], values[:, 0] + 1]), n_resamples=200)
    np.testing.assert_allclose(shifted[:, 1], shifted[:, 0] + 1)


def test_bootstrap_in_chunks_draws_the_same(rng, monkeypatch):
    values = rng.random(30)
    whole = bootstrap_ci(values, n_resamples=100, seed=3)
    monkeypatch.setattr(dotrec.stats, "_CHUNK_CELLS", 7 * 30)  # 7 resamples per chunk
    np.testing.assert_array_equal(bootstrap_ci(values, n_resamples=100, seed=3), whole)


def test_bootstrap_agrees_with_scipy(rng):
    # different random draws, so only close: Monte Carlo error of a 2.5% quantile of
    # 4000 means is well under 0.05 standard errors of the mean
    values = rng.exponential(size=400)
    ours = bootstrap_ci(values, n_resamples=4000, seed=0)
    theirs = scipy.stats.bootstrap(
        (values,), np.mean, n_resamples=4000, method="percentile", rng=np.random.default_rng(1)
    ).confidence_interval
    se = values.std(ddof=1) / math.sqrt(len(values))
    assert ours[0] == pytest.approx(theirs.low, abs=0.1 * se)
    assert ours[1] == pytest.approx(theirs.high, abs=0.1 * se)


def test_bootstrap_is_seeded(rng):
    values = rng.random(50)
    assert np.array_equal(bootstrap_ci(values, seed=5), bootstrap_ci(values, seed=5))
    assert not np.array_equal(bootstrap_ci(values, seed=5), bootstrap_ci(values, seed=6))


def test_bootstrap_edge_cases():
    assert np.isnan(bootstrap_ci(np.array([]))).all()
    # one user: every resample is that user
    assert bootstrap_ci(np.array([0.25])).tolist() == [0.25, 0.25]
    # constant values: a zero-width interval
    assert bootstrap_ci(np.full(9, 0.5)).tolist() == [0.5, 0.5]


@pytest.mark.parametrize(
    "kwargs, words",
    [
        ({"n_resamples": 0}, "n_resamples"),
        ({"n_resamples": 2.5}, "n_resamples"),
        ({"confidence": 95}, "confidence"),
    ],
)
def test_bootstrap_bad_arguments(kwargs, words):
    with pytest.raises(ValueError, match=words):
        bootstrap_ci(np.ones(3), **kwargs)


def test_bootstrap_refuses_nan():
    with pytest.raises(ValueError, match="1 NaN or infinite"):
        bootstrap_ci(np.array([0.1, np.nan, 0.3]))


# --- paired t-test ----------------------------------------------------------------


def test_ttest_by_hand():
    # d = [1, 1, 2]: mean 4/3, sd 1/sqrt(3), se 1/3, t = 4 on 2 degrees of freedom;
    # for 2 df, P(|T| > t) = 1 - t / sqrt(t^2 + 2) = 1 - 4/sqrt(18)
    p = paired_ttest(np.zeros(3), np.array([1.0, 1.0, 2.0]))
    assert p == pytest.approx(1 - 4 / math.sqrt(18), rel=1e-9)


def test_ttest_matches_scipy_and_the_formula(rng):
    a = rng.random(200)
    b = a + rng.normal(0.02, 0.1, size=200)
    d = b - a
    t = d.mean() / (d.std(ddof=1) / math.sqrt(len(d)))
    expected = 2 * scipy.stats.t.sf(abs(t), len(d) - 1)
    assert paired_ttest(a, b) == pytest.approx(expected, rel=1e-9)
    assert paired_ttest(a, b) == pytest.approx(scipy.stats.ttest_rel(b, a).pvalue, rel=1e-9)
    assert paired_ttest(b, a) == pytest.approx(paired_ttest(a, b))  # two-sided


def test_ttest_degenerate_differences():
    a = np.array([0.1, 0.5, 0.9])
    assert paired_ttest(a, a) == 1.0  # no difference at all
    assert paired_ttest(a, a + 0.2) == 0.0  # the same nonzero difference for every user
    assert math.isnan(paired_ttest(np.array([1.0]), np.array([2.0])))


def test_paired_tests_need_the_same_users():
    with pytest.raises(ValueError, match="same users"):
        paired_ttest(np.zeros(3), np.zeros(4))
    with pytest.raises(ValueError, match="same users"):
        wilcoxon_signed_rank(np.zeros((3, 2)), np.zeros((3, 2)))


# --- Wilcoxon signed-rank ---------------------------------------------------------------


def test_wilcoxon_by_hand():
    # d = [1, 2, -3, 4, 5]: ranks 1..5, W- = 3. Of the 2^5 = 32 equally likely sign
    # patterns, those with W- <= 3 are {}, {1}, {2}, {3}, {1, 2}: 5; two-sided p = 10/32.
    b = np.array([1.0, 2.0, -3.0, 4.0, 5.0])
    assert wilcoxon_signed_rank(np.zeros(5), b) == pytest.approx(10 / 32)


def test_wilcoxon_drops_zero_differences():
    # the same differences plus two users where both models agree: still 10/32
    a = np.array([0.5, 0.5, 0, 0, 0, 0, 0])
    b = np.array([0.5, 0.5, 1, 2, -3, 4, 5])
    assert wilcoxon_signed_rank(a, b) == pytest.approx(10 / 32)


def test_wilcoxon_matches_scipy_with_ties_and_zeros(rng):
    # per-user ranking metrics: many zeros and ties, so scipy's normal approximation
    a = rng.choice([0.0, 0.1, 0.2, 0.5], size=300)
    b = rng.choice([0.0, 0.1, 0.2, 0.5, 1.0], size=300)
    expected = scipy.stats.wilcoxon(b, a, zero_method="wilcox").pvalue
    assert wilcoxon_signed_rank(a, b) == pytest.approx(expected, rel=1e-9)


def test_wilcoxon_degenerate():
    a = np.array([0.1, 0.5, 0.9])
    assert wilcoxon_signed_rank(a, a) == 1.0
    assert math.isnan(wilcoxon_signed_rank(np.array([]), np.array([])))
