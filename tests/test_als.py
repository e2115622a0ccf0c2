"""ALS: the batched conjugate-gradient solve against a direct solve, the loss, threads."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from dotrec import ALS, Interactions
from dotrec.models.als import _blocks, _loss, _row_workers, _solve, row_penalties

CPU = torch.device("cpu")


def _random_matrix(rng, n_rows=30, n_cols=20, density=0.2) -> sp.csr_array:
    matrix = sp.random_array((n_rows, n_cols), density=density, rng=rng, format="csr")
    matrix.data = rng.integers(1, 4, size=matrix.nnz).astype(np.float32)
    keep = np.ones(n_rows)
    keep[0] = 0  # a row with no pairs
    matrix = sp.csr_array(sp.diags_array(keep) @ matrix)
    matrix.eliminate_zeros()
    return matrix


def _direct(matrix: sp.csr_array, fixed: np.ndarray, reg, alpha: float) -> np.ndarray:
    """Every row's normal equations (Y^T C_u Y + reg_u I) x_u = Y^T C_u p_u, solved directly.

    ``reg`` is one penalty for every row or one per row.
    """
    reg = np.broadcast_to(np.asarray(reg, dtype=np.float64), (matrix.shape[0],))
    dense = matrix.toarray()
    out = np.zeros((dense.shape[0], fixed.shape[1]))
    for u, row in enumerate(dense):
        confidence = 1.0 + alpha * row
        a = fixed.T @ (confidence[:, None] * fixed) + reg[u] * np.eye(fixed.shape[1])
        out[u] = np.linalg.solve(a, fixed.T @ (confidence * (row > 0)))
    return out


@pytest.mark.parametrize("threads", [1, 3])
def test_conjugate_gradient_reaches_the_direct_solution(rng, threads):
    matrix = _random_matrix(rng)
    fixed = torch.from_numpy(rng.normal(size=(20, 6)).astype(np.float32))
    x = torch.zeros(30, 6)
    with _row_workers(threads, CPU) as run:
        blocks = _blocks(matrix, 2.0, CPU, threads, factors=6)
        assert len(blocks) == threads
        _solve(run, blocks, fixed, x, reg=0.5, steps=6)  # d=6: exact after 6 steps
    expected = _direct(matrix, fixed.double().numpy(), reg=0.5, alpha=2.0)
    np.testing.assert_allclose(x.numpy(), expected, rtol=1e-3, atol=1e-4)
    assert np.all(x.numpy()[0] == expected[0])  # no pairs: x = 0 (G x = 0)


def test_loss_matches_the_sum_over_every_pair(rng):
    matrix = _random_matrix(rng)
    users = torch.from_numpy(rng.normal(size=(30, 4)).astype(np.float32))
    items = torch.from_numpy(rng.normal(size=(20, 4)).astype(np.float32))
    with _row_workers(2, CPU) as run:
        loss = _loss(run, _blocks(matrix, 3.0, CPU, 2, 4), users, items, reg=0.7)
    dense = matrix.toarray()
    predicted = users.double().numpy() @ items.double().numpy().T
    total = ((1 + 3.0 * dense) * ((dense > 0) - predicted) ** 2).sum()
    total += 0.7 * ((users.double() ** 2).sum() + (items.double() ** 2).sum()).item()
    assert loss == pytest.approx(total / matrix.nnz, rel=1e-4)


def _data(rng) -> Interactions:
    pairs = rng.choice(40 * 30, size=400, replace=False)  # distinct (user, item) pairs
    return Interactions.from_ids(pairs // 30, pairs % 30)


def test_threads_give_the_same_model_and_are_restored(rng):
    data = _data(rng)
    before = torch.get_num_threads()
    one = ALS(factors=8, iterations=4, device="cpu", num_threads=1).fit(data)
    two = ALS(factors=8, iterations=4, device="cpu", num_threads=2).fit(data)
    assert torch.get_num_threads() == before
    torch.testing.assert_close(one.user_factors, two.user_factors, rtol=1e-4, atol=1e-5)
    losses = one.fit_info["epoch_loss"]
    assert losses == sorted(losses, reverse=True)  # each alternating pass lowers the loss


def test_a_user_with_only_negatives_gets_a_vector_near_zero():
    data = Interactions.from_ids(
        ["a", "a", "b", "b", "z"], ["x", "y", "y", "z", "x"], label=[1, 1, 1, 1, 0]
    )
    model = ALS(factors=4, regularization=0.1, iterations=3, device="cpu", num_threads=2).fit(data)
    z = model.users.index(["z"])[0]
    assert model.user_factors[z].abs().max() < 1e-6  # G x = 0 has x = 0; CG heads there
    assert torch.isfinite(model.item_factors).all()


def test_auto_alpha_follows_the_density(rng):
    data = _data(rng)
    model = ALS(factors=4, iterations=1, device="cpu").fit(data)
    seen = model.seen
    density = seen.nnz / (seen.shape[0] * seen.shape[1])
    assert model.fit_info["alpha"] == pytest.approx(1.2 / density**0.5)
    fixed = ALS(factors=4, iterations=1, alpha=3, device="cpu").fit(data)
    assert fixed.fit_info["alpha"] == 3.0


@pytest.mark.parametrize("alpha", ["high", -1.0])
def test_alpha_must_be_auto_or_non_negative(alpha):
    with pytest.raises(ValueError, match="alpha must be 'auto' or a non-negative number"):
        ALS(alpha=alpha)


def test_row_penalties_by_hand():
    # counts 0, 1, 3 -> (n + 1)^1 = 1, 2, 4, mean 7/3; lambda 2 -> 2 * (1, 2, 4) * 3/7
    penalty, scale = row_penalties(np.array([0, 1, 3]), 2.0, 1.0)
    assert scale == pytest.approx(7 / 3)
    np.testing.assert_allclose(penalty.numpy(), [6 / 7, 12 / 7, 24 / 7], rtol=1e-6)
    # exponent 0: every row gets lambda itself
    flat, one = row_penalties(np.array([0, 5, 50]), 2.0, 0.0)
    assert one == 1.0
    np.testing.assert_allclose(flat.numpy(), [2.0, 2.0, 2.0])
    # a given scale (fold-in) is used as it is: (3 + 1)^0.5 / 4 * 10 = 5
    given, _ = row_penalties(np.array([3]), 10.0, 0.5, scale=4.0)
    assert given.item() == pytest.approx(5.0)


@pytest.mark.parametrize("threads", [1, 2])
def test_conjugate_gradient_with_row_penalties_reaches_the_direct_solution(rng, threads):
    matrix = _random_matrix(rng)
    fixed = torch.from_numpy(rng.normal(size=(20, 6)).astype(np.float32))
    penalty, _ = row_penalties(np.diff(matrix.indptr), 0.5, 1.0)
    x = torch.zeros(30, 6)
    with _row_workers(threads, CPU) as run:
        blocks = _blocks(matrix, 2.0, CPU, threads, factors=6, row_penalty=penalty)
        _solve(run, blocks, fixed, x, reg=0.5, steps=6)
    expected = _direct(matrix, fixed.double().numpy(), reg=penalty.double().numpy(), alpha=2.0)
    np.testing.assert_allclose(x.numpy(), expected, rtol=1e-3, atol=1e-4)
    # and it differs from the one-penalty solution: the scaling is applied
    plain = _direct(matrix, fixed.double().numpy(), reg=0.5, alpha=2.0)
    assert np.abs(expected - plain).max() > 1e-3


def test_loss_with_row_penalties_matches_the_sum_over_every_pair(rng):
    matrix = _random_matrix(rng)
    users = torch.from_numpy(rng.normal(size=(30, 4)).astype(np.float32))
    items = torch.from_numpy(rng.normal(size=(20, 4)).astype(np.float32))
    user_pen, _ = row_penalties(np.diff(matrix.indptr), 0.7, 0.5)
    item_pen, _ = row_penalties(np.diff(matrix.tocsc().indptr), 0.7, 0.5)
    with _row_workers(2, CPU) as run:
        user_blocks = _blocks(matrix, 3.0, CPU, 2, 4, row_penalty=user_pen)
        item_blocks = _blocks(matrix.T, 3.0, CPU, 2, 4, row_penalty=item_pen)
        loss = _loss(run, user_blocks, users, items, 0.7, item_blocks)
    dense = matrix.toarray()
    u, v = users.double().numpy(), items.double().numpy()
    total = ((1 + 3.0 * dense) * ((dense > 0) - u @ v.T) ** 2).sum()
    total += (user_pen.double().numpy() * (u**2).sum(1)).sum()
    total += (item_pen.double().numpy() * (v**2).sum(1)).sum()
    assert loss == pytest.approx(total / matrix.nnz, rel=1e-4)


@pytest.mark.parametrize("exponent", [-0.5, 5.0])
def test_regularization_exponent_is_checked(exponent):
    with pytest.raises(ValueError, match="regularization_exponent must be between 0 and 4"):
        ALS(regularization_exponent=exponent)
