"""GF-CF: graph filters on the normalized interaction matrix, without training."""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import torch

from dotrec.artifact import register
from dotrec.data import Interactions
from dotrec.models.base import ModelConfig, Recommender, _history_parts
from dotrec.models.lightgcn import _inverse_sqrt, _to_torch
from dotrec.topk import rows_mask
from dotrec.training import resolve_device

__all__ = ["GFCF", "GFCFConfig"]


@dataclass
class GFCFConfig(ModelConfig):
    """Settings of :class:`GFCF`; the defaults are the paper's."""

    n_components: int = 256
    """Singular vectors kept by the ideal low-pass filter (the paper's k);
    capped at the smaller side of the matrix."""
    alpha: float = 0.3
    """Weight of the ideal low-pass filter against the linear filter."""
    power_iterations: int = 6
    """Subspace iterations of the randomized SVD; more give more exact vectors."""
    oversample: int = 32
    """Extra random directions of the randomized SVD beyond ``n_components``."""
    seed: int = 0
    """Seed of the randomized SVD's starting directions."""
    device: str = "auto"
    """``"auto"`` (CUDA when available), ``"cpu"`` or ``"cuda"``."""

    def __post_init__(self) -> None:
        for name in ("n_components", "power_iterations"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)!r}")
        if self.oversample < 0:
            raise ValueError(f"oversample must be non-negative, got {self.oversample!r}")
        if self.alpha < 0:
            raise ValueError(f"alpha must be non-negative, got {self.alpha!r}")


@register
class GFCF(Recommender):
    """Linear and ideal low-pass graph filters over the user-item matrix.

    With R the binary (users x items) matrix and its symmetric normalization
    ``R~ = D_U^-1/2 R D_I^-1/2``, a user u with training row r_u scores

        s_u = r_u R~^T R~  +  alpha * r_u D_I^-1/2 V V^T D_I^1/2

    where V holds the top ``n_components`` right singular vectors of R~. The
    first term is the normalized item-item co-occurrence filter (what a
    one-layer linear graph convolution computes); the second keeps only the
    smoothest graph signals. Nothing is trained: fitting is one randomized
    SVD, and scoring multiplies sparse matrices, so no dense item-item matrix
    is ever formed and large catalogues fit in memory.

    Shen, Wu, Zhang, Ma, Jiang, Cao and Letaief, "How Powerful is Graph
    Convolution for Recommendation?" (CIKM 2021).

    Example:
        >>> from dotrec.data import Interactions
        >>> data = Interactions.from_ids(["a", "a", "b", "b", "c"], ["x", "y", "y", "z", "x"])
        >>> GFCF(n_components=2).fit(data).recommend("a", k=5).to_list()[0][0][0]
        'z'
    """

    name = "gf-cf"
    config_class = GFCFConfig
    score_kind = "graph-filtered co-occurrence of the user's items (not a probability)"

    def __init__(self, **config):
        super().__init__(**config)
        self.components: torch.Tensor | None = None
        self._filters: _Filters | None = None

    @property
    def device(self) -> torch.device:
        return resolve_device(self.config.device)

    def _fit(self, data: Interactions, show_progress: bool) -> None:
        cfg = self.config
        start = time.perf_counter()
        self._filters = None
        filters = self._graph()
        rank = min(cfg.n_components, *filters.normalized.shape)
        width = min(rank + cfg.oversample, *filters.normalized.shape)
        # svd_lowrank draws its random directions from the global generator.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(cfg.seed)
            _, values, vectors = torch.svd_lowrank(
                filters.sparse.to_sparse_coo(), q=width, niter=cfg.power_iterations
            )
        self.components = vectors[:, :rank].contiguous()
        self.fit_info.update(
            seconds=time.perf_counter() - start,
            device=str(self.device),
            n_components=rank,
            smallest_singular_value=float(values[rank - 1]),
        )

    def _graph(self) -> _Filters:
        """The normalized matrix and degree scales, derived from the training pairs."""
        if self._filters is None:
            self._filters = _Filters(self.seen, self.device)
        return self._filters

    def _score_rows(self, rows: torch.Tensor) -> torch.Tensor:
        """Scores (B, n_items) of binary item rows (B, n_items)."""
        filters = self._graph()
        # (R~^T (R~ r^T))^T: two sparse-dense products, no item-item matrix.
        linear = (filters.sparse_t @ (filters.sparse @ rows.T)).T
        scaled = rows * filters.item_scale
        low_pass = (scaled @ self.components) @ (self.components.T * filters.item_degree_sqrt)
        return linear + self.config.alpha * low_pass

    def _score_users(self, user_idx: torch.Tensor) -> torch.Tensor:
        rows = rows_mask(self.seen, user_idx.cpu().numpy(), self.device).float()
        return self._score_rows(rows)

    def _fold_in(self, history: sp.csr_array) -> torch.Tensor:
        """The history rows themselves (dense 0/1): they are scored as users' rows, exactly."""
        return torch.from_numpy(history.toarray()).to(self.device, torch.float32)

    def _score_folded(self, query: torch.Tensor) -> torch.Tensor:
        return self._score_rows(query)

    def _score_parts(self, user_idx: int, item_idx: int) -> dict[str, float]:
        # score(u, i) = sum over the user's training items j of the two filters' (j, i) entries
        filters = self._graph()
        history = self.seen.indices[self.seen.indptr[user_idx] : self.seen.indptr[user_idx + 1]]
        normalized_t = filters.normalized_t
        linear = (normalized_t[history] @ normalized_t[[item_idx]].T).toarray().ravel()
        vectors = self.components.double().cpu()
        scale = filters.item_scale.double().cpu()
        low = (vectors[history] * scale[history, None]) @ vectors[item_idx]
        low = low.numpy() * float(filters.item_degree_sqrt[item_idx])
        return _history_parts(self.items.ids[history], linear + self.config.alpha * low)

    def _item_vectors(self) -> torch.Tensor:
        return self.components

    def _tensors(self) -> dict[str, torch.Tensor]:
        return {"components": self.components}

    def _load_tensors(self, tensors: dict[str, torch.Tensor]) -> None:
        self.components = tensors["components"].to(self.device)
        self._filters = None


class _Filters:
    """``R~`` (and its transpose) as Torch sparse tensors, with the item degree scales."""

    def __init__(self, seen: sp.csr_array, device: torch.device):
        binary = sp.csr_array(seen, dtype=np.float64)
        binary.data[:] = 1.0
        user_degree = np.asarray(binary.sum(axis=1)).ravel()
        item_degree = np.asarray(binary.sum(axis=0)).ravel()
        user_scale, item_scale = _inverse_sqrt(user_degree), _inverse_sqrt(item_degree)
        normalized = sp.diags_array(user_scale) @ binary @ sp.diags_array(item_scale)
        self.normalized = sp.csr_array(normalized, dtype=np.float32)
        self.normalized_t = sp.csr_array(self.normalized.T)
        self.sparse = _to_torch(self.normalized, device)
        self.sparse_t = _to_torch(self.normalized_t, device)
        self.item_scale = torch.from_numpy(item_scale.astype(np.float32)).to(device)
        self.item_degree_sqrt = torch.from_numpy(np.sqrt(item_degree).astype(np.float32)).to(device)
