"""Samplers: never a positive, the right distribution, reproducible; log q by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from dotrec.sampling import (
    HardNegativeSampler,
    InBatchSampler,
    PopularitySampler,
    UniformSampler,
)
from dotrec.sampling._batch import _top_indices
from dotrec.sampling._positives import Membership, _bit_array, _next_prime, csr_positives

METHODS = ["table", "search"]


def _sampler(matrix, method: str, rounds: int = 0) -> UniformSampler:
    """The sampler with its lookup table, or (table_bytes=0) its binary search."""
    sampler = UniformSampler(matrix, table_bytes=0 if method == "search" else 2**26, rounds=rounds)
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


@pytest.mark.parametrize("rounds", [0, 4])
@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("density", [0.02, 0.3, 0.9])
def test_never_samples_a_positive(rng, density, method, rounds):
    n_users, n_items = 60, 40
    dense = (rng.random((n_users, n_items)) < density).astype(np.float32)
    dense[0] = 1.0  # every item: nothing to draw
    dense[1] = 1.0
    dense[1, 17] = 0.0  # all items but one: always item 17
    dense[2] = 0.0  # no positives: anything goes
    sampler = _sampler(sp.csr_array(dense), method, rounds)
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
    for rounds in (0, 2):
        by_method = [
            _draw(_sampler(sp.csr_array(dense), m, rounds), users, 30, seed) for m in METHODS
        ]
        for samples in by_method:
            _check_never_positive(dense, samples, users)
        # both ways find the same r-th non-positive, so the draws are identical
        np.testing.assert_array_equal(*by_method)


@pytest.mark.parametrize("rounds", [0, 1, 4])
@pytest.mark.parametrize("method", METHODS)
def test_uniform_over_non_positives(method, rounds):
    # user 0 has positives {0, 3, 4, 9} of 12 items: 8 non-positives, each
    # should get 1/8 of the draws; user 1 (positives {1}) checks that another
    # user's positives do not shift the result
    dense = np.zeros((2, 12), dtype=np.float32)
    dense[0, [0, 3, 4, 9]] = 1.0
    dense[1, 1] = 1.0
    sampler = _sampler(sp.csr_array(dense), method, rounds)
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


def test_every_draw_made_exactly_gives_the_same_support():
    # rounds=0 skips the rejection rounds: every draw by rank, as in a user
    # whose draws are all rejected; both give only non-positives, all of them
    dense = np.zeros((2, 12), dtype=np.float32)
    dense[0, [0, 3, 4, 9]] = 1.0
    for rounds in (0, 1, 4):
        sampler = UniformSampler(sp.csr_array(dense), rounds=rounds)
        assert set(np.unique(_draw(sampler, [0] * 300, 8, seed=rounds))) == {
            1,
            2,
            5,
            6,
            7,
            8,
            10,
            11,
        }
    with pytest.raises(ValueError, match="rounds"):
        UniformSampler(sp.csr_array(dense), rounds=-1)


# --- membership ------------------------------------------------------------------


def test_bit_array_and_next_prime_by_hand():
    # bits 0, 9 and 15 of 16: byte 0 holds bit 0 (1), byte 1 bits 1 and 7 (2 + 128)
    assert _bit_array(np.array([9, 0, 15, 9]), 16).tolist() == [1, 130]
    assert _bit_array(np.array([3]), 20).tolist() == [8, 0, 0]  # 20 bits: 3 bytes
    assert [_next_prime(n) for n in (0, 2, 8, 24, 97, 1000)] == [2, 2, 11, 29, 97, 1009]


@pytest.mark.parametrize("density", [0.0, 0.01, 0.2, 0.9])
def test_membership_filter_is_exact(rng, density):
    # past table_bytes the answer comes from a hashed filter and a binary
    # search; it must agree, query by query, with the dense matrix
    dense = (rng.random((70, 90)) < density).astype(np.float32)
    matrix = csr_positives(sp.csr_array(dense))
    filtered = Membership(matrix, torch.device("cpu"), table_bytes=4096)
    searched = Membership(matrix, torch.device("cpu"), table_bytes=0)
    bitmap = Membership(matrix, torch.device("cpu"), table_bytes=70 * 90)
    assert bitmap.bitmap is not None and filtered.bitmap is None and searched.filter is None
    if matrix.nnz:  # 32 bits a positive, within the 4,096 bytes allowed
        assert filtered.modulus >= min(32 * matrix.nnz, 8 * 4096 - 64)
        assert len(filtered.filter) == (filtered.modulus + 7) // 8 <= 4096
    users = torch.arange(70).repeat_interleave(90)
    items = torch.arange(90).repeat(70)
    expected = torch.from_numpy(dense.reshape(-1) > 0)
    for membership in (filtered, searched, bitmap):
        assert torch.equal(membership(users, items), expected)
        # (B, M) queries keep their shape
        answer = membership(users[:180:2], items[:180].view(90, 2))
        assert torch.equal(answer, expected[:180].view(90, 2))


# --- popularity ------------------------------------------------------------------


def _popularity(dense: np.ndarray, counts, alpha: float, method: str, rounds: int = 4):
    table_bytes = 0 if method == "search" else 2**26
    return PopularitySampler(
        sp.csr_array(dense), counts, alpha, rounds=rounds, table_bytes=table_bytes
    )


@pytest.mark.parametrize("rounds", [0, 1, 4])
@pytest.mark.parametrize("method", METHODS)
def test_popularity_never_samples_a_positive(rng, method, rounds):
    n_users, n_items = 40, 30
    dense = (rng.random((n_users, n_items)) < 0.5).astype(np.float32)
    dense[0] = 1.0  # every item: -1
    dense[1] = 1.0
    dense[1, 29] = 0.0  # one item left, and the least popular: always 29
    counts = rng.integers(1, 50, n_items)
    counts[29] = 1
    sampler = _popularity(dense, counts, 1.0, method, rounds)
    users = np.repeat(np.arange(n_users), 10)
    samples = sampler.sample(torch.as_tensor(users), 40, torch.Generator().manual_seed(0))
    _check_never_positive(dense, samples.numpy(), users)
    assert (samples.numpy()[users == 1] == 29).all()
    assert sampler.users_without_negatives().tolist() == [0]


@pytest.mark.parametrize("rounds", [0, 4])
@pytest.mark.parametrize("method", METHODS)
def test_popularity_frequencies_follow_count_to_the_alpha(method, rounds):
    # user 0 has positives {1, 5} (popular ones) of 8 items with counts 1..8; with
    # alpha 0.5 the draws must follow sqrt(count) over {0, 2, 3, 4, 6, 7}
    counts = np.arange(1, 9)
    dense = np.zeros((2, 8), dtype=np.float32)
    dense[0, [1, 5]] = 1.0
    dense[1, [0, 7]] = 1.0
    sampler = _popularity(dense, counts, 0.5, method, rounds)
    draws = (
        sampler.sample(torch.zeros(5000, dtype=torch.long), 16, torch.Generator().manual_seed(3))
        .numpy()
        .ravel()
    )  # 80,000 draws
    observed = np.bincount(draws, minlength=8)
    assert observed[[1, 5]].sum() == 0
    allowed = [0, 2, 3, 4, 6, 7]
    expected = np.sqrt(counts[allowed]) / np.sqrt(counts[allowed]).sum() * len(draws)
    _, p_value = stats.chisquare(observed[allowed], expected)
    assert p_value > 1e-3, (observed, expected)
    # the same test rejects the distribution that forgets the exponent
    wrong = counts[allowed] / counts[allowed].sum() * len(draws)
    assert stats.chisquare(observed[allowed], wrong)[1] < 1e-3


def test_popularity_log_q_by_hand():
    # counts (4, 1, 3, 2), alpha 1. User 0 has item 0: Z = 1 + 3 + 2 = 6, so
    # q = (0, 1/6, 3/6, 2/6). User 1 has nothing: Z = 10, q = (4, 1, 3, 2) / 10.
    dense = np.array([[1, 0, 0, 0], [0, 0, 0, 0]], dtype=np.float32)
    sampler = PopularitySampler(sp.csr_array(dense), [4, 1, 3, 2], alpha=1.0)
    items = torch.arange(4).repeat(2, 1)
    log_q = sampler.log_prob(torch.tensor([0, 1]), items)
    assert log_q.dtype == torch.float64 and log_q[0, 0] == -math.inf
    expected = [
        [math.log(1 / 6), math.log(3 / 6), math.log(2 / 6)],
        [math.log(0.4), math.log(0.1), math.log(0.3), math.log(0.2)],
    ]
    np.testing.assert_allclose(log_q[0, 1:].numpy(), expected[0], rtol=1e-12)
    np.testing.assert_allclose(log_q[1].numpy(), expected[1], rtol=1e-12)
    # alpha 2: weights (16, 1, 9, 4); user 0: Z = 14; alpha 0 is uniform: Z = 3
    squared = PopularitySampler(sp.csr_array(dense), [4, 1, 3, 2], alpha=2.0)
    assert squared.log_prob(torch.tensor([0]), torch.tensor([2])).item() == pytest.approx(
        math.log(9 / 14), rel=1e-12
    )
    flat = PopularitySampler(sp.csr_array(dense), [4, 1, 3, 2], alpha=0.0)
    assert flat.log_prob(torch.tensor([0]), torch.tensor([3])).item() == pytest.approx(
        math.log(1 / 3), rel=1e-12
    )
    # an item never counted weighs as if counted once
    zero = PopularitySampler(sp.csr_array(dense), [0, 0, 3, 1], alpha=1.0)
    assert zero.log_prob(torch.tensor([1]), torch.tensor([0])).item() == pytest.approx(
        math.log(1 / 6), rel=1e-12
    )


def test_uniform_log_q_by_hand():
    dense = np.array([[1, 0, 0, 0], [0, 0, 0, 0]], dtype=np.float32)
    sampler = UniformSampler(sp.csr_array(dense))
    log_q = sampler.log_prob(torch.tensor([0, 1]), torch.tensor([[0, 3], [0, 3]]))
    assert log_q[0, 0] == -math.inf
    assert log_q[0, 1].item() == pytest.approx(math.log(1 / 3), rel=1e-12)
    assert log_q[1].tolist() == pytest.approx([math.log(1 / 4)] * 2, rel=1e-12)


def test_popularity_rejects_bad_settings():
    dense = sp.csr_array(np.eye(2, dtype=np.float32))
    with pytest.raises(ValueError, match="alpha"):
        PopularitySampler(dense, alpha=-1.0)
    with pytest.raises(ValueError, match="item_counts needs 2"):
        PopularitySampler(dense, item_counts=[1, 2, 3])


# --- in-batch --------------------------------------------------------------------


def _in_batch_case():
    # positives: user 0 {0, 1}, user 1 {2}, user 2 {0, 3}; the batch rows are
    # (u0, 0), (u1, 2), (u2, 3), (u0, 1)
    dense = np.zeros((3, 5), dtype=np.float32)
    dense[0, [0, 1]] = dense[1, 2] = dense[2, [0, 3]] = 1.0
    return (
        InBatchSampler(sp.csr_array(dense)),
        torch.tensor([0, 1, 2, 0]),
        torch.tensor([0, 2, 3, 1]),
    )


def test_in_batch_mask_by_hand():
    sampler, users, items = _in_batch_case()
    negatives = sampler.sample(users, 10, torch.Generator(), items)
    # row b takes rows b+1, b+2, b+3 (mod 4); a user's own positives become -1:
    # row 0 (u0): 2, 3, 1 -> 1 is u0's; row 2 (u2): 1, 0, 2 -> 0 is u2's; row 3
    # (u0): 0, 2, 3 -> 0 is u0's
    assert negatives.tolist() == [[2, 3, -1], [3, 1, 0], [1, -1, 2], [-1, 2, 3]]


def test_in_batch_sampled_rows_come_from_the_batch():
    sampler, users, items = _in_batch_case()
    negatives = sampler.sample(users, 2, torch.Generator().manual_seed(0), items).numpy()
    assert negatives.shape == (4, 2)
    allowed = {0: {2, 3}, 1: {3, 1, 0}, 2: {1, 2}, 3: {2, 3}}  # other rows, not positives
    for row in range(4):
        drawn = set(negatives[row][negatives[row] >= 0].tolist())
        assert drawn <= allowed[row], (row, drawn)
    one = sampler.sample(users[:1], 3, torch.Generator(), items[:1])
    assert one.tolist() == [[-1, -1, -1]]  # no other row


def test_in_batch_log_q_by_hand():
    # item counts over the positives: item 0 twice, items 1, 2, 3 once, item 4 never
    sampler, _, _ = _in_batch_case()
    log_q = sampler.log_prob(torch.tensor([1, 1, 0]), torch.tensor([0, 3, 0]))
    assert log_q[:2].tolist() == pytest.approx([math.log(2 / 5), math.log(1 / 5)], rel=1e-12)
    assert log_q[2] == -math.inf  # u0's own positive


# --- hard negatives --------------------------------------------------------------


def test_hard_negatives_are_the_top_scored_of_the_pool():
    # a hand-built model: the score of an item is fixed, whoever the user is
    item_scores = torch.tensor([0.1, 0.9, 0.5, 0.7, 0.3, 0.2])
    pools = []

    def score_fn(users, items):
        pools.append(items.clone())
        return item_scores[items]

    dense = np.zeros((3, 6), dtype=np.float32)
    dense[0, 1] = 1.0  # user 0 has the best item
    dense[2] = 1.0  # user 2 has every item
    sampler = HardNegativeSampler(sp.csr_array(dense), score_fn, pool_size=40)
    users = torch.tensor([0, 1, 2])
    hard = sampler.sample(users, 2, torch.Generator().manual_seed(0))
    pool = pools[-1]
    assert pool.shape == (3, 40)
    # 40 uniform draws among 5 (or 6) items hold every item here, so the top two are known
    assert hard[0].tolist() == [3, 2] and hard[1].tolist() == [1, 3]
    assert hard[2].tolist() == [-1, -1]
    # and in general: the n best-scored distinct items of the pool it was given
    for row in range(2):
        best = torch.topk(item_scores[torch.unique(pool[row])], 2).values
        torch.testing.assert_close(item_scores[hard[row]], best)
    assert sampler.log_prob(users, hard) is None


@pytest.mark.parametrize("method", METHODS)
def test_hard_negatives_count_a_repeated_item_once(method):
    # three items scored 3 > 2 > 1 for every user; a pool of 40 draws holds each
    # many times, so the 2 best distinct are always items 2 and 1 (never 2, 2)
    item_scores = torch.tensor([1.0, 2.0, 3.0])
    sampler = HardNegativeSampler(
        sp.csr_array((1, 3), dtype=np.float32),
        lambda u, i: item_scores[i],
        pool_size=40,
        table_bytes=0 if method == "search" else 2**26,
    )
    assert sampler.uniform.rounds == (4 if method == "search" else 0)
    hard = sampler.sample(torch.zeros(50, dtype=torch.long), 2, torch.Generator().manual_seed(4))
    assert hard.tolist() == [[2, 1]] * 50
    # fewer distinct items than n: a repeat fills the slot that is left
    hard = sampler.sample(torch.zeros(5, dtype=torch.long), 4, torch.Generator().manual_seed(4))
    assert (hard[:, :3] == torch.tensor([2, 1, 0])).all() and hard[:, 3].lt(3).all()


@pytest.mark.parametrize("n", [0, 1, 4, 9])
def test_top_indices_agree_with_topk(rng, n):
    scores = torch.from_numpy(rng.random((300, 32)))  # distinct values: no ties
    scores[7, 5:] = -math.inf  # a row with fewer finite values than n
    expected = torch.topk(scores, n, dim=1).indices
    got = _top_indices(scores, n)
    assert got.shape == (300, n)
    rows = torch.arange(300) != 7
    assert torch.equal(got[rows], expected[rows])
    torch.testing.assert_close(scores.gather(1, got), scores.gather(1, expected))


@pytest.mark.parametrize("method", METHODS)
def test_hard_negatives_never_positive_and_need_a_large_enough_pool(rng, method):
    dense = (rng.random((20, 15)) < 0.5).astype(np.float32)
    dense[3] = 1.0  # a user with every item: -1
    scores = torch.from_numpy(rng.random(15))
    table_bytes = 0 if method == "search" else 2**26
    sampler = HardNegativeSampler(
        sp.csr_array(dense), lambda u, i: scores[i], pool_size=6, table_bytes=table_bytes
    )
    users = np.repeat(np.arange(20), 5)
    drawn = sampler.sample(torch.as_tensor(users), 3, torch.Generator().manual_seed(1))
    _check_never_positive(dense, drawn.numpy(), users)
    with pytest.raises(ValueError, match="pool"):
        sampler.sample(torch.as_tensor(users), 7, torch.Generator())
