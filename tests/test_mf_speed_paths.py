"""The fast paths of MF training: the fused PairLogits function and the sampler's table."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from dotrec.data import Interactions
from dotrec.models._mf_module import WeightedSquaredNorm
from dotrec.models.mf import MatrixFactorization, MFModule, PairLogits
from dotrec.sampling import UniformSampler


def _reference(user_weight, item_weight, user_bias, item_bias, user_idx, item_idx):
    """The plain autograd formula PairLogits replaces."""
    users = user_weight[user_idx]
    if item_idx.dim() == 2:
        users = users.unsqueeze(1)
    return (
        (users * item_weight[item_idx]).sum(-1)
        + user_bias[user_idx].squeeze(-1).view(-1, *([1] * (item_idx.dim() - 1)))
        + item_bias[item_idx].squeeze(-1)
    )


def _tables(n_users, n_items, dim, dtype, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [
        torch.randn(n, width, generator=g, dtype=dtype).requires_grad_()
        for n, width in ((n_users, dim), (n_items, dim), (n_users, 1), (n_items, 1))
    ]


@pytest.fixture(params=[True, False], ids=["sampled_addmm", "gathered"])
def dots_path(request, monkeypatch):
    """Run a test through each way of taking the dot products."""
    monkeypatch.setattr(PairLogits, "sampled_dots", request.param)
    return request.param


@pytest.mark.parametrize("shape", [(13,), (13, 1), (13, 5)])
def test_pair_logits_gradcheck(dots_path, shape):
    g = torch.Generator().manual_seed(1)
    tables = _tables(6, 8, 3, torch.float64)
    # few users and items: the batch repeats users, items and whole (user, item) pairs
    user_idx = torch.randint(0, 6, shape[:1], generator=g)
    item_idx = torch.randint(0, 8, shape, generator=g)
    assert torch.autograd.gradcheck(lambda *t: PairLogits.apply(*t, user_idx, item_idx), tables)


@pytest.mark.parametrize("shape", [(300,), (300, 5)])
def test_pair_logits_match_the_plain_formula(dots_path, shape):
    g = torch.Generator().manual_seed(2)
    user_idx = torch.randint(0, 40, shape[:1], generator=g)
    item_idx = torch.randint(0, 70, shape, generator=g)
    upstream = torch.randn(shape, generator=g)
    fast, plain = _tables(40, 70, 16, torch.float32), _tables(40, 70, 16, torch.float32)

    out = PairLogits.apply(*fast, user_idx, item_idx)
    expected = _reference(*plain, user_idx, item_idx)
    assert out.shape == expected.shape == shape
    torch.testing.assert_close(out, expected)
    out.backward(upstream)
    expected.backward(upstream)
    for a, b in zip(fast, plain, strict=True):
        torch.testing.assert_close(a.grad, b.grad)


def test_pair_logits_only_computes_the_gradients_asked_for():
    user_weight, item_weight, user_bias, item_bias = _tables(5, 7, 4, torch.float32)
    user_weight.requires_grad_(False)
    item_bias.requires_grad_(False)
    out = PairLogits.apply(
        user_weight,
        item_weight,
        user_bias,
        item_bias,
        torch.tensor([0, 4, 4]),
        torch.tensor([[1, 6], [0, 0], [6, 2]]),
    )
    out.sum().backward()
    assert user_weight.grad is None and item_bias.grad is None
    assert item_weight.grad is not None and user_bias.grad is not None


def test_pair_logits_on_an_empty_batch():
    tables = _tables(3, 4, 2, torch.float32)
    empty = torch.zeros(0, dtype=torch.long)
    assert PairLogits.apply(*tables, empty, empty).shape == (0,)
    out = PairLogits.apply(*tables, empty, torch.zeros(0, 3, dtype=torch.long))
    assert out.shape == (0, 3)
    out.sum().backward()
    assert torch.count_nonzero(tables[1].grad) == 0


def test_module_forward_keeps_its_shapes_and_values():
    module = MFModule(9, 11, 4)
    module.reset_parameters(0.5, torch.Generator().manual_seed(0))
    with torch.no_grad():
        module.user_bias.weight.normal_()
        module.item_bias.weight.normal_()
        users, items = torch.tensor([0, 3, 8]), torch.tensor([[1, 2], [10, 10], [0, 5]])
        weights = (
            module.user_embedding.weight,
            module.item_embedding.weight,
            module.user_bias.weight,
            module.item_bias.weight,
        )
        torch.testing.assert_close(module(users, items), _reference(*weights, users, items))
        torch.testing.assert_close(
            module(users, items[:, 0]), _reference(*weights, users, items[:, 0])
        )
        full = module.full_scores(users)
        torch.testing.assert_close(module(users, items), full.gather(1, items))


def test_weighted_squared_norm_by_hand():
    # rows (1, 2) and (3, 0) weighted 0.5 and 2: 0.5 * 5 + 2 * 9 = 20.5; the
    # gradient of each row is 2 * weight * row: (1, 2) and (12, 0)
    weight = torch.tensor([[1.0, 2.0], [3.0, 0.0]], requires_grad=True)
    value = WeightedSquaredNorm.apply(weight, torch.tensor([0.5, 2.0]))
    assert value.item() == pytest.approx(20.5)
    value.backward()
    assert weight.grad.tolist() == [[1.0, 2.0], [12.0, 0.0]]
    # and the formula it replaces, on random tables (the L2 penalty's counts)
    table = torch.randn(7, 3, dtype=torch.float64, requires_grad=True)
    share = torch.bincount(torch.tensor([0, 0, 4, 6]), minlength=7) / 4
    assert torch.autograd.gradcheck(lambda t: WeightedSquaredNorm.apply(t, share), (table,))
    torch.testing.assert_close(
        WeightedSquaredNorm.apply(table, share), share.double() @ table.square().sum(1)
    )


@pytest.mark.parametrize("density", [0.0, 0.1, 0.6, 0.97])
def test_sampler_table_and_search_draw_the_same_items(rng, density):
    dense = (rng.random((40, 23)) < density).astype(np.float32)
    dense[5] = 1.0  # saturated users, the last one too: the table's sentinel
    dense[-1] = 1.0
    table = UniformSampler(sp.csr_array(dense))
    search = UniformSampler(sp.csr_array(dense), table_bytes=0)
    assert (table.method, search.method) == ("table", "search")
    users = torch.arange(40).repeat(25)
    first = table.sample(users, 6, torch.Generator().manual_seed(3))
    second = search.sample(users, 6, torch.Generator().manual_seed(3))
    torch.testing.assert_close(first, second)
    drawn = first.numpy()
    rows = users.numpy()
    assert (drawn[rows == 5] == -1).all() and (drawn[rows == 39] == -1).all()
    ok = drawn >= 0
    assert not dense[np.broadcast_to(rows[:, None], drawn.shape)[ok], drawn[ok]].any()


def test_sampler_falls_back_to_search_over_its_memory_limit():
    positives = sp.csr_array(np.eye(4, 6, dtype=np.float32))
    assert UniformSampler(positives, table_bytes=1).method == "search"
    assert UniformSampler(positives).method == "table"


def _tiny_data() -> Interactions:
    users, items = np.nonzero(np.random.default_rng(0).random((30, 25)) < 0.4)
    return Interactions.from_ids(users, items)


def test_fit_is_deterministic_under_a_seed():
    data = _tiny_data()
    settings = dict(embedding_dim=8, epochs=3, batch_size=64, seed=5, device="cpu", num_threads=1)
    first = MatrixFactorization(**settings).fit(data)
    second = MatrixFactorization(**settings).fit(data)
    for name, tensor in first._tensors().items():
        torch.testing.assert_close(tensor, second._tensors()[name], rtol=0, atol=0)
    assert first.fit_info["epoch_loss"] == second.fit_info["epoch_loss"]
