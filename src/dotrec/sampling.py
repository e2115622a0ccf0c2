"""Negative samplers: tensor code that never draws a user's known positives."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch

__all__ = ["UniformSampler"]


class UniformSampler:
    """Draws items uniformly from each user's non-positives, exactly.

    Rejection sampling ("draw until the item is not a positive") slows down for
    heavy users and never ends for a user who has every item. Instead, the
    r-th non-positive item of a user is found directly: with the user's sorted
    positives ``p_0 < p_1 < ...`` and ``q_j = p_j - j`` (the number of
    non-positives before ``p_j``), the r-th non-positive (0-based) is
    ``r + #{j : q_j <= r}``, one binary search over a global sorted key. Each
    draw is uniform over exactly the items the user has not interacted with.

    Args:
        user_items: CSR matrix of shape (n_users, n_items) of known positives.
        device: where samples are made.

    Example:
        >>> import scipy.sparse as sp
        >>> positives = sp.csr_array(([1.0, 1.0], ([0, 0], [0, 2])), shape=(1, 4))
        >>> sampler = UniformSampler(positives)
        >>> g = torch.Generator().manual_seed(0)
        >>> sorted(set(sampler.sample(torch.zeros(200, dtype=torch.long), 1, g).flatten().tolist()))
        [1, 3]
    """

    def __init__(self, user_items: sp.csr_array | sp.csr_matrix, device: torch.device | str = "cpu"):
        matrix = sp.csr_array(user_items)
        matrix.sum_duplicates()
        matrix.sort_indices()
        n_users, n_items = matrix.shape
        indptr = matrix.indptr.astype(np.int64)
        degree = np.diff(indptr)
        rank = np.arange(len(matrix.indices)) - np.repeat(indptr[:-1], degree)
        row = np.repeat(np.arange(n_users, dtype=np.int64), degree)
        keys = row * (n_items + 1) + (matrix.indices.astype(np.int64) - rank)

        self.n_items = n_items
        self.device = torch.device(device)
        self._keys = torch.from_numpy(keys).to(self.device)
        self._start = torch.from_numpy(indptr[:-1].copy()).to(self.device)
        self.n_negatives_available = torch.from_numpy(n_items - degree).to(self.device)

    def users_without_negatives(self) -> np.ndarray:
        """Indices of users who have interacted with every item."""
        return np.flatnonzero(self.n_negatives_available.cpu().numpy() == 0)

    def sample(self, user_idx: torch.Tensor, n: int, generator: torch.Generator) -> torch.Tensor:
        """Draw ``n`` negatives for each user, with replacement.

        Args:
            user_idx: int64 tensor of shape (B,) on the sampler's device.
            n: negatives per user.
            generator: the source of randomness, on the same device.

        Returns:
            int64 tensor of shape (B, n); -1 for a user with no non-positive item.
        """
        available = self.n_negatives_available[user_idx].unsqueeze(1)
        u = torch.rand(len(user_idx), n, generator=generator, device=self.device, dtype=torch.float64)
        r = torch.minimum((u * available).long(), (available - 1).clamp(min=0))
        base = user_idx.unsqueeze(1) * (self.n_items + 1)
        below = torch.searchsorted(self._keys, base + r, right=True) - self._start[user_idx].unsqueeze(1)
        items = r + below
        return torch.where(available > 0, items, torch.full_like(items, -1))
