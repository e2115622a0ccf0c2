"""Exact top-K over a score matrix, with seen-item and candidate masks.

The one routine behind ``recommend``, evaluation and the service, so that what
is measured is what is served.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch

__all__ = ["TopK", "topk", "rows_mask", "stored_mask"]


class TopK:
    """Top-K result for a batch of rows.

    Attributes:
        indices: int64 tensor (B, K'); -1 past each row's count.
        scores: float32 tensor (B, K'); NaN past each row's count.
        counts: int64 tensor (B,): how many entries of each row are real.
            A row is shorter than K when fewer candidates remain; it is never
            padded with real-looking items.
    """

    def __init__(self, indices: torch.Tensor, scores: torch.Tensor, counts: torch.Tensor):
        self.indices, self.scores, self.counts = indices, scores, counts


def rows_mask(matrix: sp.csr_array, rows: np.ndarray, device: torch.device | str = "cpu"):
    """Dense boolean mask (len(rows), n_cols) of the stored entries of ``rows``."""
    sub = sp.csr_array(matrix)[rows].tocoo()
    mask = torch.zeros(len(rows), matrix.shape[1], dtype=torch.bool, device=device)
    mask[torch.from_numpy(sub.row.astype(np.int64)), torch.from_numpy(sub.col.astype(np.int64))] = (
        True
    )
    return mask


def stored_mask(matrix: sp.csr_array, columns: torch.Tensor, rows: torch.Tensor | None = None):
    """Bool tensor like ``columns`` (R, F): whether ``columns[r, f]`` is stored in a row.

    The row is ``rows[r]`` of ``matrix`` (default: row r). For masks over a
    few columns per row, where :func:`rows_mask` would be (R, n_cols).
    """
    n_cols = matrix.shape[1]
    stored_rows, stored_cols = sp.csr_array(matrix).nonzero()
    keys = np.sort(stored_rows.astype(np.int64) * n_cols + stored_cols.astype(np.int64))
    if len(keys) == 0:
        return torch.zeros(columns.shape, dtype=torch.bool, device=columns.device)
    keys = torch.from_numpy(keys).to(columns.device)
    if rows is None:
        rows = torch.arange(len(columns), device=columns.device)
    query = rows.unsqueeze(1) * n_cols + columns
    at = torch.searchsorted(keys, query).clamp(max=len(keys) - 1)
    return keys[at] == query


def topk(
    scores: torch.Tensor,
    k: int,
    exclude: torch.Tensor | None = None,
    candidates: torch.Tensor | None = None,
) -> TopK:
    """The ``k`` best columns of each row of ``scores``.

    Args:
        scores: float tensor (B, N).
        k: how many per row; 0 gives empty rows.
        exclude: optional bool tensor (B, N); True entries are never returned
            (a user's seen items).
        candidates: optional bool tensor (N,); only True columns may be
            returned.

    Returns:
        A :class:`TopK` with rows sorted best first (ties broken by lower index).

    Example:
        >>> s = torch.tensor([[0.1, 0.9, 0.5]])
        >>> out = topk(s, 5, exclude=torch.tensor([[False, True, False]]))
        >>> out.indices.tolist(), out.counts.tolist()
        ([[2, 0, -1]], [2])
    """
    if k < 0:
        raise ValueError(f"k must be non-negative, got {k}")
    batch, n_cols = scores.shape
    k = min(k, n_cols)  # any K, however large, asks for at most every column
    allowed = torch.ones(batch, n_cols, dtype=torch.bool, device=scores.device)
    if candidates is not None:
        allowed &= candidates.to(scores.device).unsqueeze(0)
    if exclude is not None:
        allowed &= ~exclude
    counts = allowed.sum(1).clamp(max=k)
    width = k
    masked = torch.where(allowed, scores, torch.full_like(scores, -torch.inf))
    values, indices = _sorted_topk(masked, width)
    real = torch.arange(width, device=scores.device).unsqueeze(0) < counts.unsqueeze(1)
    indices = torch.where(real, indices, torch.full_like(indices, -1))
    values = torch.where(real, values.float(), torch.full_like(values.float(), torch.nan))
    return TopK(indices, values, counts)


def _sorted_topk(scores: torch.Tensor, width: int) -> tuple[torch.Tensor, torch.Tensor]:
    # A stable full sort breaks ties by index, which torch.topk does not
    # promise; for wide catalogues take a margin with topk, then sort stably.
    if width == 0:
        empty = scores.new_zeros((scores.shape[0], 0))
        return empty, empty.long()
    if scores.shape[1] <= 4096:
        values, indices = torch.sort(scores, dim=1, descending=True, stable=True)
        return values[:, :width], indices[:, :width]
    values, indices = torch.topk(scores, min(width + 64, scores.shape[1]), dim=1)
    order = torch.argsort(indices, dim=1)
    values, indices = values.gather(1, order), indices.gather(1, order)
    resort = torch.sort(values, dim=1, descending=True, stable=True).indices[:, :width]
    return values.gather(1, resort), indices.gather(1, resort)
