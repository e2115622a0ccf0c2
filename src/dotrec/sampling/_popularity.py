"""Sampling in proportion to item popularity to a power, positives excluded."""

from __future__ import annotations

import math

import numpy as np
import scipy.sparse as sp
import torch

from dotrec.sampling._positives import TABLE_BYTES
from dotrec.sampling._uniform import UniformSampler

__all__ = ["PopularitySampler"]


def _alias_table(weight: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Walker's alias table (Vose's construction) for ``weight / weight.sum()``.

    Drawing a column j uniformly, then keeping j with probability ``keep[j]``
    and taking ``alias[j]`` otherwise, gives item i with probability
    ``weight[i] / weight.sum()``: O(1) per draw.
    """
    n = len(weight)
    scaled = (weight * (n / weight.sum())).tolist()
    keep, alias = [1.0] * n, list(range(n))
    small = [i for i, v in enumerate(scaled) if v < 1.0]
    large = [i for i, v in enumerate(scaled) if v >= 1.0]
    while small and large:
        low, high = small.pop(), large.pop()
        keep[low], alias[low] = scaled[low], high
        scaled[high] -= 1.0 - scaled[low]
        (small if scaled[high] < 1.0 else large).append(high)
    return np.array(keep), np.array(alias, dtype=np.int64)


class PopularitySampler:
    """Draws items with probability proportional to ``count ** alpha``, positives excluded.

    For user u with positives P(u), an item i outside P(u) is drawn with
    probability ``q_u(i) = w_i / Z_u``, ``w_i = max(count_i, 1) ** alpha`` and
    ``Z_u`` the sum of ``w`` over the items outside P(u). ``alpha = 1`` follows
    popularity, ``alpha = 0`` is uniform, ``0.75`` is word2vec's choice
    (Mikolov et al., 2013). An item never counted weighs as if counted once,
    so that it can still be drawn.

    Drawing is exact and never loops without end:

    1. up to ``rounds`` rounds of rejection: draw from the catalogue-wide
       distribution ``w / sum(w)`` (Walker's alias table: O(1) per draw) and
       keep the draws that are not the user's positives; accepted draws follow
       ``q_u`` exactly;
    2. the draws still rejected (users whose positives hold most of the
       weight) are made exactly, by a vectorised bisection over the rank r of
       the user's non-positives for the first r whose cumulative weight
       exceeds ``U * Z_u``; the r-th non-positive is found as in
       :class:`UniformSampler`, so the result is never a positive.

    Args:
        user_items: CSR matrix (n_users, n_items) of known positives.
        item_counts: the count of each item (default: its positives in
            ``user_items``).
        alpha: the exponent, at least 0.
        device: where samples are made.
        rounds: rejection rounds before the exact draw (0: every draw exact).
        table_bytes: passed to the inner :class:`UniformSampler`.

    Example:
        >>> import scipy.sparse as sp
        >>> positives = sp.csr_array(([1.0], ([0], [0])), shape=(2, 3))
        >>> sampler = PopularitySampler(positives, item_counts=[4, 1, 3], alpha=1.0)
        >>> # user 0 has item 0: q = (0, 1/4, 3/4); user 1: (4/8, 1/8, 3/8)
        >>> log_q = sampler.log_prob(torch.tensor([0, 1]), torch.tensor([2, 2]))
        >>> log_q.exp().round(decimals=9).tolist()
        [0.75, 0.375]
    """

    def __init__(
        self,
        user_items: sp.csr_array | sp.csr_matrix,
        item_counts: np.ndarray | list[int] | None = None,
        alpha: float = 0.75,
        device: torch.device | str = "cpu",
        rounds: int = 4,
        table_bytes: int = TABLE_BYTES,
    ):
        if not (math.isfinite(alpha) and alpha >= 0):
            raise ValueError(f"alpha must be a finite number >= 0, got {alpha!r}")
        if rounds < 0:
            raise ValueError(f"rounds must be at least 0, got {rounds!r}")
        self.uniform = UniformSampler(user_items, device, table_bytes)
        matrix = self.uniform.positives
        n_items = matrix.shape[1]
        if item_counts is None:
            item_counts = np.bincount(matrix.indices, minlength=n_items)
        counts = np.asarray(item_counts, dtype=np.float64)
        if counts.shape != (n_items,):
            raise ValueError(f"item_counts needs {n_items} values, got shape {counts.shape}")
        weight = np.maximum(counts, 1.0) ** alpha

        self.n_items, self.device = n_items, self.uniform.device
        self.alpha, self.rounds = alpha, rounds
        self._weight = torch.from_numpy(weight).to(self.device)
        self._cdf = torch.from_numpy(np.cumsum(weight)).to(self.device)  # inclusive
        keep, alias = _alias_table(weight)
        self._keep = torch.from_numpy(keep).to(self.device)
        self._alias = torch.from_numpy(alias).to(self.device)
        # Cumulative weight of the positives in key order, to subtract a user's
        # positives below an item from the catalogue's cumulative weight.
        positive_cum = np.concatenate([[0.0], np.cumsum(weight[matrix.indices])])
        self._positive_cum = torch.from_numpy(positive_cum).to(self.device)
        self._start = torch.from_numpy(matrix.indptr[:-1].astype(np.int64)).to(self.device)
        positive_mass = positive_cum[matrix.indptr[1:]] - positive_cum[matrix.indptr[:-1]]
        norm = np.where(
            self.uniform.n_negatives_available.cpu().numpy() > 0, weight.sum() - positive_mass, 0.0
        )
        self._norm = torch.from_numpy(norm).to(self.device)  # Z_u
        self._is_positive = self.uniform.membership
        self._keys = self._is_positive.keys

    @property
    def fills_every_slot(self) -> bool:
        """True when every slot holds a negative (no user has every item)."""
        return self.uniform.fills_every_slot

    def users_without_negatives(self) -> np.ndarray:
        """Indices of users who have interacted with every item."""
        return self.uniform.users_without_negatives()

    def sample(
        self,
        user_idx: torch.Tensor,
        n: int,
        generator: torch.Generator,
        item_idx: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Draw ``n`` negatives per user (B,), with replacement; -1 when none exist.

        Returns:
            int64 tensor (B, n).
        """
        users = user_idx.unsqueeze(1).expand(len(user_idx), n).reshape(-1)
        items = torch.full_like(users, -1)
        rejected = torch.ones_like(users, dtype=torch.bool)
        if self.rounds > 0:
            u = torch.rand(len(users), generator=generator, device=self.device, dtype=torch.float64)
            items = self._draw_catalogue(u)
            rejected = self._is_positive(users, items)
        # Later rounds redraw only the rejected draws (a user with every item
        # rejects every draw and ends with -1).
        for _ in range(self.rounds - 1):
            pending = torch.nonzero(rejected).squeeze(1)
            if len(pending) == 0:
                break
            u = torch.rand(
                len(pending), generator=generator, device=self.device, dtype=torch.float64
            )
            items[pending] = drawn = self._draw_catalogue(u)
            rejected[pending] = self._is_positive(users[pending], drawn)
        pending = torch.nonzero(rejected).squeeze(1)
        if len(pending):
            items[pending] = -1
            pending = pending[self._norm[users[pending]] > 0]
            items[pending] = self._exact(users[pending], generator)
        return items.view(len(user_idx), n)

    def _draw_catalogue(self, u: torch.Tensor) -> torch.Tensor:
        """Items drawn from ``w / sum(w)`` by the alias table, for uniforms ``u`` in [0, 1)."""
        scaled = u * self.n_items
        column = scaled.long().clamp(max=self.n_items - 1)
        keep = (scaled - column) < self._keep[column]
        return torch.where(keep, column, self._alias[column])

    def _exact(self, users: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """One exact draw from q_u for each entry of ``users`` (N,), by bisection."""
        available = self.uniform.n_negatives_available[users]
        u = torch.rand(len(users), generator=generator, device=self.device, dtype=torch.float64)
        target = u * self._norm[users]
        lo, hi = torch.zeros_like(available), available - 1
        for _ in range(max(int(self.n_items).bit_length(), 1)):
            # smallest rank r in [lo, hi] whose cumulative weight exceeds target
            mid = (lo + hi) // 2
            above = self._cumulative(users, mid) > target
            hi = torch.where(above, mid, hi)
            lo = torch.where(above, lo, torch.minimum(mid + 1, hi))
        return self.uniform.nth_non_positive(users, lo)

    def _cumulative(self, users: torch.Tensor, rank: torch.Tensor) -> torch.Tensor:
        """Weight of each user's non-positives up to and including the one of ``rank``."""
        item = self.uniform.nth_non_positive(users, rank)
        below = torch.searchsorted(self._keys, users * self.n_items + item)
        positive_below = self._positive_cum[below] - self._positive_cum[self._start[users]]
        return self._cdf[item] - positive_below

    def log_prob(self, user_idx: torch.Tensor, item_idx: torch.Tensor) -> torch.Tensor:
        """``log q_u(i)`` for users (B,) and items (B,) or (B, M); ``-inf`` for positives.

        float64, shaped like ``item_idx``.
        """
        norm = self._norm[user_idx].view(-1, *([1] * (item_idx.dim() - 1)))
        value = self._weight[item_idx].log() - norm.log()
        return value.masked_fill(self._is_positive(user_idx, item_idx), -math.inf)
