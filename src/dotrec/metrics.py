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

Beyond-accuracy measures look at the lists alone, not at the test items. They
take ``top_items``, an int64 tensor (B, K) of item indices with -1 past the
end of a short list; see :func:`novelty`, :func:`average_popularity`,
:func:`gini_index`, :func:`intra_list_diversity` and :func:`coverage`.
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
import torch

__all__ = [
    "METRICS",
    "average_popularity",
    "average_precision",
    "coverage",
    "gini_index",
    "hit_rate",
    "hits_from_keys",
    "intra_list_diversity",
    "mrr",
    "ndcg",
    "novelty",
    "precision",
    "recall",
]


_INT64_MAX = torch.iinfo(torch.int64).max


def _discounts(k: int, device: torch.device) -> torch.Tensor:
    return 1.0 / torch.log2(torch.arange(2, k + 2, device=device, dtype=torch.float64))


def precision(hits: torch.Tensor, n_relevant: torch.Tensor, k: int) -> torch.Tensor:
    """Hits in the top ``k`` divided by ``k``.

    Example:
        >>> precision(torch.tensor([[True, False, True]]), torch.tensor([4]), 3).tolist()
        [0.6666666666666666]
    """
    return hits[:, :k].sum(1, dtype=torch.float64) / float(k)


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
    # Discounts only as far as the lists or the ideal DCG reach, not to K.
    most_relevant = int(n_relevant.max()) if len(n_relevant) else 1
    disc = _discounts(min(k, max(hits.shape[1], most_relevant, 1)), hits.device)
    dcg = (hits[:, :k].double() * disc[: hits[:, :k].shape[1]]).sum(1)
    ideal = torch.cumsum(disc, 0)[(n_relevant.clamp(min=1, max=len(disc)) - 1).long()]
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
    return (precision_at * top).sum(1) / n_relevant.clamp(min=1, max=min(k, _INT64_MAX))


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


# --- beyond accuracy ------------------------------------------------------------


def _list_mean(values: torch.Tensor, top_items: torch.Tensor) -> torch.Tensor:
    """Mean over each row's real entries of ``values`` (B, K); NaN for an empty row."""
    real = top_items >= 0
    total = torch.where(real, values, torch.zeros_like(values)).sum(1)
    return total / real.sum(1)


def novelty(
    top_items: torch.Tensor, item_counts: torch.Tensor | np.ndarray, n_users: int
) -> torch.Tensor:
    """Mean self-information of each list's items, in bits (Zhou et al. 2010).

    An item's popularity share is ``p_i = c_i / n_users``, with ``c_i`` the
    number of training users who interacted with it. Its self-information is
    ``-log2(p_i)``: 0 for an item every user had, ``log2(n_users)`` for an item
    only one user had. A list's novelty is the mean self-information of its
    real entries; an item nobody had in training counts as had by one user, so
    the value stays finite.

    Args:
        top_items: int64 (B, K) item indices, -1 past a short list.
        item_counts: (n_items,) training users per item.
        n_users: training users.

    Returns:
        float64 (B,); NaN for an empty list.

    Example:
        >>> # 8 users; item 0 had by 8 (0 bits), item 1 by 2 (2 bits), item 2 by 1 (3 bits)
        >>> novelty(torch.tensor([[0, 1], [2, -1]]), np.array([8, 2, 1]), 8).tolist()
        [1.0, 3.0]
    """
    counts = torch.as_tensor(np.asarray(item_counts), dtype=torch.float64).clamp(min=1)
    bits = math.log2(max(n_users, 1)) - torch.log2(counts)
    return _list_mean(bits[top_items.clamp(min=0)], top_items)


def average_popularity(
    top_items: torch.Tensor, item_counts: torch.Tensor | np.ndarray
) -> torch.Tensor:
    """Mean training popularity ``c_i`` of each list's items (ARP, Abdollahpouri et al. 2019).

    Args:
        top_items: int64 (B, K) item indices, -1 past a short list.
        item_counts: (n_items,) training users per item.

    Returns:
        float64 (B,), in users per item; NaN for an empty list.

    Example:
        >>> average_popularity(torch.tensor([[0, 1], [2, -1]]), np.array([8, 2, 1])).tolist()
        [5.0, 1.0]
    """
    counts = torch.as_tensor(np.asarray(item_counts), dtype=torch.float64)
    return _list_mean(counts[top_items.clamp(min=0)], top_items)


def gini_index(top_items: torch.Tensor | np.ndarray, n_items: int) -> float:
    """Gini index of how often each catalogue item is recommended, over all lists.

    With ``x_1 <= ... <= x_n`` the recommendation counts of the ``n`` catalogue
    items (never-recommended items count 0),
    ``G = sum_i (2i - n - 1) x_i / (n sum_i x_i)``: 0 when every item is
    recommended equally often, close to 1 when a few items fill every list.

    Example:
        >>> # counts [0, 0, 1, 3]: (-3*0 - 1*0 + 1*1 + 3*3) / (4 * 4) = 10/16
        >>> gini_index(torch.tensor([[3, 2], [3, -1], [3, -1]]), 4)
        0.625
    """
    items = torch.as_tensor(top_items)
    counts = torch.bincount(items[items >= 0], minlength=n_items).double().sort().values
    n, total = len(counts), float(counts.sum())
    if n == 0 or total == 0:
        return 0.0
    weights = 2 * torch.arange(1, n + 1, dtype=torch.float64) - n - 1
    return float((weights * counts).sum() / (n * total))


def intra_list_diversity(
    top_items: torch.Tensor,
    item_features: torch.Tensor | np.ndarray,
    distance: Literal["cosine", "jaccard"] = "cosine",
    batch_size: int = 4096,
) -> torch.Tensor:
    """Mean pairwise distance of the items in each list (ILD, Ziegler et al. 2005).

    For each list of ``m`` real entries, the mean over its ``m (m - 1) / 2``
    pairs of ``1 - cos(f_i, f_j)`` (``"cosine"``) or of the Jaccard distance
    ``1 - |f_i & f_j| / |f_i | f_j|`` of nonzero features (``"jaccard"``).
    An item with no feature (a zero row) is at distance 1 from every item.

    Memory stays bounded for any K: the cosine sum over pairs comes from each
    list's vector sum (sum_{i<j} <f_i, f_j> = (|sum f|^2 - sum |f|^2) / 2),
    in O(K d) per list, and the Jaccard pairs are taken a block of rows at a
    time.

    Args:
        top_items: int64 (B, K) item indices, -1 past a short list.
        item_features: (n_items, d) one row per item, e.g. multi-hot genres.
        distance: which distance.
        batch_size: most lists handled at once (fewer when K or d is large).

    Returns:
        float64 (B,); NaN for a list of fewer than two items.

    Example:
        >>> genres = torch.tensor([[1.0, 0.0], [1.0, 1.0], [0.0, 1.0]])
        >>> # pairs (0, 2): distance 1; (0, 1), (1, 2): 1 - 1/sqrt(2) each
        >>> [round(v, 4) for v in intra_list_diversity(torch.tensor([[0, 2, 1]]), genres).tolist()]
        [0.5286]
        >>> intra_list_diversity(torch.tensor([[0, 2, 1]]), genres, "jaccard").tolist()
        [0.6666666666666666]
    """
    if distance not in ("cosine", "jaccard"):
        raise ValueError(f"distance must be 'cosine' or 'jaccard', got {distance!r}")
    features = torch.as_tensor(np.asarray(item_features), dtype=torch.float64)
    if distance == "cosine":
        features = torch.nn.functional.normalize(features, dim=1)
    else:
        features = (features != 0).double()
    k, d = top_items.shape[1], features.shape[1]
    # (b, K, d) vectors per chunk; the Jaccard pairs bound their own (b, rows, K) blocks
    lists = max(1, min(batch_size, _ILD_BUDGET // max(k * d, 1)))
    pair_sums = _cosine_pair_sums if distance == "cosine" else _jaccard_pair_sums
    out = []
    for start in range(0, len(top_items), lists):
        chunk = top_items[start : start + lists]
        real = chunk >= 0
        vectors = features[chunk.clamp(min=0)] * real.unsqueeze(2)  # (b, K, d)
        m = real.sum(1).double()
        n_pairs = m * (m - 1) / 2
        total = n_pairs - pair_sums(vectors, real)  # distance = 1 - similarity
        out.append(torch.where(n_pairs > 0, total / n_pairs.clamp(min=1), torch.nan))
    return torch.cat(out) if out else torch.zeros(0, dtype=torch.float64)


_ILD_BUDGET = 1 << 22
"""Most float64 values (32 MB) of one intermediate of :func:`intra_list_diversity`."""


def _cosine_pair_sums(vectors: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    """sum over pairs i < j of <f_i, f_j> per list, from unit (or zero) rows."""
    squared_sum = vectors.sum(1).square().sum(1)
    return (squared_sum - vectors.square().sum((1, 2))) / 2


def _jaccard_pair_sums(vectors: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    """sum over pairs i < j of |f_i & f_j| / |f_i | f_j| per list, a block of rows at a time."""
    b, k, _ = vectors.shape
    sizes = vectors.sum(2)
    columns = torch.arange(k)
    total = torch.zeros(b, dtype=torch.float64)
    rows_at_once = max(1, _ILD_BUDGET // max(b * k, 1))
    for lo in range(0, k, rows_at_once):
        hi = min(k, lo + rows_at_once)
        overlap = vectors[:, lo:hi] @ vectors.transpose(1, 2)  # (b, rows, K)
        union = sizes[:, lo:hi, None] + sizes[:, None, :] - overlap
        similar = torch.where(union > 0, overlap / union.clamp(min=1), 0.0)
        # each unordered pair of real entries once: column after row
        pairs = real[:, lo:hi, None] & real[:, None, :]
        pairs &= columns[None, :] > torch.arange(lo, hi)[:, None]
        total += torch.where(pairs, similar, 0.0).sum((1, 2))
    return total
