"""Item-based nearest neighbours with cosine similarity and shrinkage."""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import torch

from dotrec.artifact import register
from dotrec.data import Interactions
from dotrec.models._settings import check_range
from dotrec.models.base import ModelConfig, Recommender, _history_parts

__all__ = ["ItemKNN", "ItemKNNConfig"]


@dataclass
class ItemKNNConfig(ModelConfig):
    """Settings of :class:`ItemKNN`."""

    neighbors: int = 100
    """Most similar items kept for each item."""
    shrinkage: float = 10.0
    """Added to the cosine denominator, damping similarities built on few users."""
    block_size: int = 2048
    """Items whose similarities are computed at once (memory: n_items x block)."""

    def __post_init__(self) -> None:
        check_range(self, "neighbors", "block_size", low=1)
        check_range(self, "shrinkage", low=0)


@register
class ItemKNN(Recommender):
    """Scores an item by its summed similarity to the items the user has.

    sim(i, j) = |U_i & U_j| / (|U_i|^0.5 |U_j|^0.5 + shrinkage), the cosine of
    the two items' user sets damped for rare items; each item keeps its
    ``neighbors`` most similar items. score(u, j) = sum over the user's items i
    of sim(i, j).

    Sarwar, Karypis, Konstan and Riedl, "Item-Based Collaborative Filtering
    Recommendation Algorithms" (WWW 2001); shrinkage as in Koren, "Factor in
    the Neighbors" (TKDD 2010).

    Example:
        >>> from dotrec.data import Interactions
        >>> data = Interactions.from_ids(["a", "a", "b", "b", "c"], ["x", "y", "y", "z", "x"])
        >>> ItemKNN(shrinkage=0.0).fit(data).recommend("a", k=5).to_list()[0][0][0]
        'z'
    """

    name = "itemknn"
    config_class = ItemKNNConfig
    score_kind = "sum of item-item cosine similarities to the user's items"

    def __init__(self, **config):
        super().__init__(**config)
        self.similarity: sp.csr_array | None = None

    def _fit(self, data: Interactions, show_progress: bool) -> None:
        start = time.perf_counter()
        x = sp.csc_array(self.seen, dtype=np.float32)
        norms = np.sqrt(np.asarray(x.sum(axis=0)).ravel())
        n = x.shape[1]
        keep = min(self.config.neighbors, max(n - 1, 1))
        rows, cols, vals = [], [], []
        for lo in range(0, n, self.config.block_size):
            hi = min(lo + self.config.block_size, n)
            overlap = (x.T @ x[:, lo:hi]).toarray()  # (n, block): column j = item lo + j
            sims = overlap / (norms[:, None] * norms[None, lo:hi] + self.config.shrinkage + 1e-12)
            sims[np.arange(lo, hi), np.arange(hi - lo)] = 0.0
            top = np.argpartition(-sims, keep - 1, axis=0)[:keep]
            values = np.take_along_axis(sims, top, axis=0)
            nonzero = values > 0
            rows.append(top[nonzero])
            cols.append(np.nonzero(nonzero)[1] + lo)
            vals.append(values[nonzero])
        self.similarity = sp.csr_array(
            (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(n, n)
        )
        self.fit_info.update(seconds=time.perf_counter() - start)

    def _score_users(self, user_idx: torch.Tensor) -> torch.Tensor:
        rows = self.seen[user_idx.cpu().numpy()]
        return torch.from_numpy(np.asarray((rows @ self.similarity).todense(), dtype=np.float32))

    def _score_parts(self, user_idx: int, item_idx: int) -> dict[str, float]:
        # score(u, i) = sum over the user's training items j of sim(j, i)
        history = self.seen.indices[self.seen.indptr[user_idx] : self.seen.indptr[user_idx + 1]]
        column = self.similarity[:, [item_idx]].toarray().ravel()
        return _history_parts(self.items.ids[history], column[history].astype(np.float64))

    def _fold_in(self, history: sp.csr_array) -> sp.csr_array:
        """The history rows themselves: a history is scored as a user's row, exactly."""
        return history

    def _score_folded(self, query: sp.csr_array) -> torch.Tensor:
        return torch.from_numpy(np.asarray((query @ self.similarity).todense(), dtype=np.float32))

    def _item_vectors(self) -> torch.Tensor:
        return torch.from_numpy(self.similarity.toarray())

    def _tensors(self) -> dict[str, torch.Tensor]:
        s = self.similarity
        return {
            "indptr": torch.from_numpy(s.indptr.astype(np.int64)),
            "indices": torch.from_numpy(s.indices.astype(np.int64)),
            "data": torch.from_numpy(s.data.astype(np.float32)),
            "shape": torch.tensor(s.shape, dtype=torch.int64),
        }

    def _load_tensors(self, tensors: dict[str, torch.Tensor]) -> None:
        shape = tuple(tensors["shape"].tolist())
        self.similarity = sp.csr_array(
            (tensors["data"].numpy(), tensors["indices"].numpy(), tensors["indptr"].numpy()),
            shape=shape,
        )
