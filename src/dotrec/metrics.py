"""Ranking metrics on top-K lists, batched over users.

Every function takes ``hits``, a bool tensor (B, K) whose entry (u, i) tells
whether the item at rank i + 1 of user u's list is relevant (False past the
end of a short list), and returns one value per user, shape (B,). Lists
shorter than K are not stretched: precision always divides by K.

Definitions (binary relevance, ``R`` = the user's relevant test items):

- precision@K = hits in the top K / K
- recall@K = hits in the top K / |R|
- NDCG@K = DCG / IDCG with DCG = sum over hit ranks i of 1 / log2(i + 1), and
  IDCG the DCG of min(K, |R|) hits at the top
- hit rate@K = 1 if any hit in the top K
- MRR@K = 1 / rank of the first hit, 0 if none in the top K
- AP@K = sum over hit ranks i of precision@i, divided by min(K, |R|); MAP is
  its mean over users
"""

from __future__ import annotations

import numpy as np
import torch

__all__ = [
    "METRICS",
    "average_precision",
    "coverage",
    "hit_rate",
    "hits_from_keys",
    "mrr",
    "ndcg",
    "precision",
    "recall",
]


def _discounts(k: int, device: torch.device) -> torch.Tensor:
    return 1.0 / torch.log2(torch.arange(2, k + 2, device=device, dtype=torch.float64))


def precision(hits: torch.Tensor, n_relevant: torch.Tensor, k: int) -> torch.Tensor:
    """Hits in the top ``k`` divided by ``k``.

    Example:
        >>> precision(torch.tensor([[True, False, True]]), torch.tensor([4]), 3).tolist()
        [0.6666666666666666]
    """
    return hits[:, :k].sum(1, dtype=torch.float64) / k


def recall(hits: torch.Tensor, n_relevant: torch.Tensor, k: int) -> torch.Tensor:
    """Hits in the top ``k`` divided by the number of relevant items."""
    return hits[:, :k].sum(1, dtype=torch.float64) / n_relevant.clamp(min=1)


def ndcg(hits: torch.Tensor, n_relevant: torch.Tensor, k: int) -> torch.Tensor:
    """Normalised discounted cumulative gain, ideal DCG over min(k, |R|) hits.

    Example:
        >>> # relevant at ranks 2 and 3, four relevant items in all
        >>> round(ndcg(torch.tensor([[False, True, True]]), torch.tensor([4]), 3).item(), 6)
        0.530721
    """
    disc = _discounts(k, hits.device)
    dcg = (hits[:, :k].double() * disc[: hits[:, :k].shape[1]]).sum(1)
    ideal = torch.cumsum(disc, 0)[(n_relevant.clamp(min=1, max=k) - 1).long()]
    return dcg / ideal


def hit_rate(hits: torch.Tensor, n_relevant: torch.Tensor, k: int) -> torch.Tensor:
    """1.0 when the top ``k`` holds at least one relevant item."""
    return hits[:, :k].any(1).double()


def mrr(hits: torch.Tensor, n_relevant: torch.Tensor, k: int) -> torch.Tensor:
    """Reciprocal rank of the first hit in the top ``k``, 0 when none."""
    top = hits[:, :k]
    ranks = torch.arange(1, top.shape[1] + 1, device=hits.device, dtype=torch.float64)
    reciprocal = torch.where(top, 1.0 / ranks, torch.zeros_like(ranks))
    return reciprocal.max(1).values if top.shape[1] else torch.zeros(len(hits), dtype=torch.float64)


def average_precision(hits: torch.Tensor, n_relevant: torch.Tensor, k: int) -> torch.Tensor:
    """Average precision at ``k``, normalised by min(k, |R|)."""
    top = hits[:, :k].double()
    ranks = torch.arange(1, top.shape[1] + 1, device=hits.device, dtype=torch.float64)
    precision_at = torch.cumsum(top, 1) / ranks
    return (precision_at * top).sum(1) / n_relevant.clamp(min=1, max=k)


METRICS = {
    "precision": precision,
    "recall": recall,
    "ndcg": ndcg,
    "hit_rate": hit_rate,
    "map": average_precision,
    "mrr": mrr,
}
"""The per-user ranking metrics by name, as used by evaluation."""


def hits_from_keys(
    top_items: torch.Tensor, user_rows: torch.Tensor, relevant_keys: torch.Tensor, n_items: int
) -> torch.Tensor:
    """Which recommended items are relevant, by a binary search over keys.

    Args:
        top_items: int64 (B, K) item indices, -1 for empty slots.
        user_rows: int64 (B,) user index of each row.
        relevant_keys: sorted int64 keys ``user * n_items + item`` of the
            relevant pairs.
        n_items: size of the item index space.

    Returns:
        bool tensor (B, K).
    """
    keys = user_rows.unsqueeze(1) * n_items + top_items.clamp(min=0)
    pos = torch.searchsorted(relevant_keys, keys).clamp(max=max(len(relevant_keys) - 1, 0))
    if len(relevant_keys) == 0:
        return torch.zeros_like(top_items, dtype=torch.bool)
    return (relevant_keys[pos] == keys) & (top_items >= 0)


def coverage(top_items: torch.Tensor | np.ndarray, n_items: int) -> float:
    """Share of the catalogue that appears in at least one list."""
    items = torch.as_tensor(top_items)
    return torch.unique(items[items >= 0]).numel() / max(n_items, 1)
