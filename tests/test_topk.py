"""Exact top-K with masks: order, ties, short rows, the wide-catalogue path."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from dotrec.topk import rows_mask, topk


def test_sorted_best_first():
    out = topk(torch.tensor([[0.1, 0.9, 0.5, 0.7]]), 3)
    assert out.indices.tolist() == [[1, 3, 2]]
    assert out.scores[0].tolist() == pytest.approx([0.9, 0.7, 0.5])
    assert out.counts.tolist() == [3]


def test_ties_go_to_lower_index():
    out = topk(torch.tensor([[1.0, 2.0, 2.0, 1.0, 2.0]]), 4)
    assert out.indices.tolist() == [[1, 2, 4, 0]]


def test_exclude_and_candidates():
    scores = torch.tensor([[5.0, 4.0, 3.0, 2.0, 1.0], [5.0, 4.0, 3.0, 2.0, 1.0]])
    exclude = torch.tensor([[True, False, False, False, False], [False, True, True, False, False]])
    candidates = torch.tensor([True, True, True, False, True])
    out = topk(scores, 2, exclude=exclude, candidates=candidates)
    # row 0: 0 excluded, 3 not a candidate -> 1, 2; row 1: 1, 2 excluded -> 0, 4
    assert out.indices.tolist() == [[1, 2], [0, 4]]


def test_short_rows_are_not_padded():
    # 2 of 4 columns allowed, k = 3: one empty slot, -1 and NaN
    exclude = torch.tensor([[True, False, True, False]])
    out = topk(torch.tensor([[0.4, 0.3, 0.2, 0.1]]), 3, exclude=exclude)
    assert out.indices.tolist() == [[1, 3, -1]]
    assert out.counts.tolist() == [2]
    assert np.isnan(out.scores[0, 2].item())


def test_k_larger_than_catalogue_and_zero():
    scores = torch.tensor([[0.2, 0.1]])
    assert topk(scores, 10).indices.tolist() == [[0, 1]]
    empty = topk(scores, 0)
    assert empty.indices.shape == (1, 0)
    assert empty.counts.tolist() == [0]
    with pytest.raises(ValueError, match="non-negative"):
        topk(scores, -1)


def test_wide_catalogue_matches_full_sort():
    # above 4096 columns a topk-then-sort path is used; it must give the same
    # answer as a stable full sort, including ties
    gen = torch.Generator().manual_seed(0)
    scores = torch.randint(0, 50, (4, 6000), generator=gen).float()
    exclude = torch.rand(4, 6000, generator=gen) < 0.3
    out = topk(scores, 20, exclude=exclude)
    masked = torch.where(exclude, torch.full_like(scores, -torch.inf), scores)
    expected = torch.sort(masked, dim=1, descending=True, stable=True).indices[:, :20]
    assert torch.equal(out.indices, expected)


def test_rows_mask():
    matrix = sp.csr_array(np.array([[1, 0, 1], [0, 0, 0], [0, 1, 0]], dtype=np.float32))
    mask = rows_mask(matrix, np.array([2, 0]))
    assert mask.tolist() == [[False, True, False], [True, False, True]]
