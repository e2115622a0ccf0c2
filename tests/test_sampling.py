"""UniformSampler: never a positive, uniform over the rest, reproducible."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from dotrec.sampling import UniformSampler

METHODS = ["table", "search"]


def _sampler(matrix, method: str) -> UniformSampler:
    """The sampler with its lookup table, or (table_bytes=0) its binary search."""
    sampler = UniformSampler(matrix, table_bytes=0 if method == "search" else 2**26)
    assert sampler.method == method
    return sampler


def _draw(sampler: UniformSampler, users, n: int, seed: int = 0) -> np.ndarray:
    generator = torch.Generator().manual_seed(seed)
    return sampler.sample(torch.as_tensor(users, dtype=torch.long), n, generator).numpy()


def _check_never_positive(dense: np.ndarray, samples: np.ndarray, users: np.ndarray) -> None:
    n_items = dense.shape[1]
    has_negative = (dense == 0).any(axis=1)
    for row, user in enumerate(users):
        drawn = samples[row]
        if has_negative[user]:
            assert ((drawn >= 0) & (drawn < n_items)).all(), (user, drawn)
            assert not dense[user, drawn].any(), f"user {user} got a positive: {drawn}"
        else:
            assert (drawn == -1).all(), (user, drawn)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("density", [0.02, 0.3, 0.9])
def test_never_samples_a_positive(rng, density, method):
    n_users, n_items = 60, 40
    dense = (rng.random((n_users, n_items)) < density).astype(np.float32)
    dense[0] = 1.0  # every item: nothing to draw
    dense[1] = 1.0
    dense[1, 17] = 0.0  # all items but one: always item 17
    dense[2] = 0.0  # no positives: anything goes
    sampler = _sampler(sp.csr_array(dense), method)
    users = np.repeat(np.arange(n_users), 20)
    samples = _draw(sampler, users, 50)
    assert samples.shape == (len(users), 50)
    _check_never_positive(dense, samples, users)
    assert (samples[users == 1] == 17).all()
    assert (samples[users == 0] == -1).all()
    assert sampler.users_without_negatives().tolist() == [0] + [
        u for u in range(3, n_users) if dense[u].all()
    ]


@settings(max_examples=60, deadline=None)
@given(
    st.integers(1, 8).flatmap(
        lambda n_items: st.lists(
            st.lists(st.booleans(), min_size=n_items, max_size=n_items), min_size=1, max_size=8
        )
    ),
    st.integers(0, 2**31 - 1),
)
def test_never_samples_a_positive_property(rows, seed):
    dense = np.array(rows, dtype=np.float32)
    users = np.arange(len(dense))
    by_method = [_draw(_sampler(sp.csr_array(dense), m), users, 30, seed) for m in METHODS]
    for samples in by_method:
        _check_never_positive(dense, samples, users)
    # both ways find the same r-th non-positive, so the draws are identical
    np.testing.assert_array_equal(*by_method)


@pytest.mark.parametrize("method", METHODS)
def test_uniform_over_non_positives(method):
    # user 0 has positives {0, 3, 4, 9} of 12 items: 8 non-positives, each
    # should get 1/8 of the draws; user 1 (positives {1}) checks that another
    # user's positives do not shift the result
    dense = np.zeros((2, 12), dtype=np.float32)
    dense[0, [0, 3, 4, 9]] = 1.0
    dense[1, 1] = 1.0
    sampler = _sampler(sp.csr_array(dense), method)
    samples = _draw(sampler, [0] * 4000, 20, seed=123).ravel()  # 80,000 draws
    counts = np.bincount(samples, minlength=12)
    assert counts[[0, 3, 4, 9]].sum() == 0
    allowed = counts[[1, 2, 5, 6, 7, 8, 10, 11]]
    assert allowed.min() > 0
    _, p_value = stats.chisquare(allowed)  # expected: all equal
    assert p_value > 1e-3, allowed


def test_uniform_check_detects_a_biased_sampler(rng):
    # the check above has power: a classic biased sampler (draw any item, move
    # a positive to the next non-positive) fails it at the same sample size
    positives = {0, 3, 4, 9}
    draws = rng.integers(0, 12, 80_000)
    for _ in range(3):
        draws = np.where(np.isin(draws, list(positives)), (draws + 1) % 12, draws)
    counts = np.bincount(draws, minlength=12)[[1, 2, 5, 6, 7, 8, 10, 11]]
    assert stats.chisquare(counts)[1] < 1e-3


@pytest.mark.parametrize("method", METHODS)
def test_deterministic_under_a_seeded_generator(rng, method):
    dense = (rng.random((30, 25)) < 0.3).astype(np.float32)
    sampler = _sampler(sp.csr_array(dense), method)
    users = np.arange(30).repeat(4)
    first = _draw(sampler, users, 8, seed=7)
    again = _draw(sampler, users, 8, seed=7)
    other = _draw(sampler, users, 8, seed=8)
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)


@pytest.mark.parametrize("method", METHODS)
def test_accepts_duplicate_and_unsorted_entries(method):
    # a COO-built matrix with a repeated, unsorted entry must act like {2, 0}
    matrix = sp.csr_matrix((np.ones(3), ([0, 0, 0], [2, 0, 2])), shape=(1, 4))
    samples = _draw(_sampler(matrix, method), [0] * 500, 4)
    assert set(np.unique(samples)) == {1, 3}
