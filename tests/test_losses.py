"""Losses against values worked out by hand."""

from __future__ import annotations

import math

import pytest
import torch

from dotrec.losses import bce, bpr, mse, sampled_softmax


def test_bpr_by_hand():
    # pairs (2 - 0) and (2 - 1), (0 - 3): -log sigmoid(d) = log(1 + e^-d)
    pos = torch.tensor([2.0, 0.0])
    neg = torch.tensor([[0.0, 1.0], [3.0, 3.0]])
    expected = math.log1p(math.exp(-2)) + math.log1p(math.exp(-1)) + 2 * math.log1p(math.exp(3))
    assert bpr(pos, neg).item() == pytest.approx(expected / 4, rel=1e-6)


def test_bpr_mask_leaves_out_padding():
    pos = torch.tensor([2.0, 0.0])
    neg = torch.tensor([[0.0, 1.0], [3.0, 3.0]])
    mask = torch.tensor([[True, False], [True, False]])
    expected = (math.log1p(math.exp(-2)) + math.log1p(math.exp(3))) / 2
    assert bpr(pos, neg, mask).item() == pytest.approx(expected, rel=1e-6)


def test_bce_by_hand():
    # positive logit 1: log(1 + e^-1); negatives 0 and 2: log 2 and log(1 + e^2)
    value = bce(torch.tensor([1.0]), torch.tensor([[0.0, 2.0]])).item()
    expected = (math.log1p(math.exp(-1)) + math.log(2) + math.log1p(math.exp(2))) / 3
    assert value == pytest.approx(expected, rel=1e-6)
    masked = bce(torch.tensor([1.0]), torch.tensor([[0.0, 2.0]]), torch.tensor([[True, False]]))
    assert masked.item() == pytest.approx((math.log1p(math.exp(-1)) + math.log(2)) / 2, rel=1e-6)


def test_bce_matches_torch_module():
    pos, neg = torch.randn(5), torch.randn(5, 3)
    logits = torch.cat([pos.unsqueeze(1), neg], 1)
    targets = torch.zeros_like(logits)
    targets[:, 0] = 1
    reference = torch.nn.BCEWithLogitsLoss()(logits, targets)
    assert bce(pos, neg).item() == pytest.approx(reference.item(), rel=1e-6)


def test_sampled_softmax_with_log_q_by_hand():
    # q_pos = 0.5, q_neg = 0.25: corrected logits 1 + log 2 and 0 + log 4 (twice);
    # loss = log(1 + 2 e^(log 4 - 1 - log 2)) = log(1 + 4 / e)
    loss = sampled_softmax(
        torch.tensor([1.0]),
        torch.tensor([[0.0, 0.0]]),
        log_q_positive=torch.log(torch.tensor([0.5])),
        log_q_negative=torch.log(torch.tensor([[0.25, 0.25]])),
    )
    assert loss.item() == pytest.approx(math.log1p(4 / math.e), rel=1e-6)


def test_sampled_softmax_mask_drops_negatives():
    full = sampled_softmax(
        torch.tensor([1.0]), torch.tensor([[0.0, 5.0]]), torch.tensor([[True, False]])
    )
    assert full.item() == pytest.approx(math.log1p(math.exp(-1)), rel=1e-6)


def test_mse_by_hand():
    assert mse(
        torch.tensor([1.0, 2.0, 4.0]), torch.tensor([1.0, 4.0, 3.0])
    ).item() == pytest.approx(5 / 3)


def test_gradients_flow():
    pos = torch.zeros(3, requires_grad=True)
    neg = torch.zeros(3, 2, requires_grad=True)
    for loss in (bce, bpr, sampled_softmax):
        pos.grad = neg.grad = None
        loss(pos, neg).backward()
        assert (pos.grad < 0).all() and (neg.grad > 0).all()
