"""The known positives of each user, for samplers: CSR clean-up, keys, membership."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch

__all__ = ["TABLE_BYTES", "Membership", "csr_positives", "positive_keys"]

TABLE_BYTES = 64 * 2**20
"""Default memory limit of the lookup table of non-positives (see UniformSampler)."""


def csr_positives(user_items: sp.csr_array | sp.csr_matrix) -> sp.csr_array:
    """The matrix as a CSR array with sorted, distinct column indices."""
    matrix = sp.csr_array(user_items, copy=True)
    matrix.sum_duplicates()
    matrix.sort_indices()
    return matrix


def positive_keys(matrix: sp.csr_array, device: torch.device) -> torch.Tensor:
    """Sorted keys ``user * n_items + item`` of the known positives (int64)."""
    rows = np.repeat(np.arange(matrix.shape[0], dtype=np.int64), np.diff(matrix.indptr))
    keys = rows * matrix.shape[1] + matrix.indices.astype(np.int64)
    return torch.from_numpy(keys).to(device)


class Membership:
    """Which (user, item) pairs are known positives.

    A bitmap of every (user, item) cell when it fits in ``table_bytes`` (one
    gather per query), else a binary search over the sorted keys.
    """

    def __init__(self, matrix: sp.csr_array, device: torch.device, table_bytes: int):
        n_users, self.n_items = matrix.shape
        self.keys = positive_keys(matrix, device)
        self.bitmap = None
        if n_users * self.n_items <= table_bytes:
            self.bitmap = torch.zeros(n_users * self.n_items, dtype=torch.bool, device=device)
            self.bitmap[self.keys] = True

    def __call__(self, user_idx: torch.Tensor, item_idx: torch.Tensor) -> torch.Tensor:
        """Bool tensor shaped like ``item_idx`` (B,) or (B, M): is each pair a positive?"""
        users = user_idx.view(-1, *([1] * (item_idx.dim() - 1)))
        query = users * self.n_items + item_idx
        if self.bitmap is not None:
            return self.bitmap[query]
        if len(self.keys) == 0:
            return torch.zeros_like(item_idx, dtype=torch.bool)
        at = torch.searchsorted(self.keys, query).clamp(max=len(self.keys) - 1)
        return self.keys[at] == query
