"""GF-CF: graph filters on the normalized interaction matrix, without training."""

from __future__ import annotations

import math
import time
import warnings
from dataclasses import dataclass
from typing import Literal

import numpy as np
import scipy.sparse as sp
import torch

from dotrec.artifact import register
from dotrec.data import Interactions
from dotrec.models._settings import SEED_MAX, check_range
from dotrec.models.base import ModelConfig, Recommender, _history_parts
from dotrec.models.lightgcn import _inverse_sqrt, _to_torch
from dotrec.topk import rows_mask
from dotrec.training import resolve_device, thread_count

__all__ = ["GFCF", "GFCFConfig"]

SHARPEN = 0.5
POPULARITY_EXPONENT = 0.075


@dataclass
class GFCFConfig(ModelConfig):
    """Settings of :class:`GFCF`; ``alpha`` is the paper's, ``n_components`` scales with the data.

    ``sharpen`` and ``popularity_exponent`` were chosen on a 20% validation
    split of Gowalla's training side (NDCG@20 of 6,000 users: 0.1367 without
    them, 0.1405 with 0.5 and 0.075, 0.1413 with 0.8 and 0.075) and held to
    what costs MovieLens little: with 0.5 and 0.075, NDCG@10 on ml-100k
    0.4130 against 0.4159 without, ml-latest-small 0.3082 against 0.3152
    (0.8 would cost 0.011 and 0.023 there).
    """

    n_components: int | Literal["auto"] = "auto"
    """Singular vectors kept by the ideal low-pass filter (the paper's k);
    capped at the smaller side of the matrix. ``"auto"``: 2.5 * sqrt(items),
    rounded: 103 on ml-100k, 247 on ml-latest-small, 506 on Gowalla. The best
    fixed values found were about 64, 128-200 and 448-640 (the paper's 256
    gives NDCG@10 0.369 on ml-100k against 0.418 with 103, and Gowalla
    NDCG@20 0.1533 against 0.157), so the rank has to grow with the catalogue."""
    alpha: float = 0.3
    """Weight of the ideal low-pass filter against the linear filter."""
    sharpen: float = SHARPEN
    """Weight of the low-pass signal passed once more through the linear
    filter, subtracted from the score: a sharpening step in the manner of
    BSPM (Choi et al. 2023), which takes back some of the smoothing so that
    what is specific to the user's items counts for more. 0 turns it off."""
    popularity_exponent: float = POPULARITY_EXPONENT
    """Scores are multiplied by (item training count) ** this. The symmetric
    normalization divides each item's linear-filter score by the square root
    of its count; a small positive exponent gives some of that back."""
    power_iterations: int = 6
    """Subspace iterations of the randomized SVD; more give more exact vectors."""
    oversample: int = 32
    """Extra random directions of the randomized SVD beyond ``n_components``."""
    seed: int = 0
    """Seed of the randomized SVD's starting directions."""
    device: str = "auto"
    """``"auto"`` (CUDA when available), ``"cpu"`` or ``"cuda"``."""
    num_threads: int | None = None
    """Torch CPU threads for the randomized SVD during fit; None keeps Torch's
    setting."""

    def __post_init__(self) -> None:
        if self.n_components != "auto" and (
            isinstance(self.n_components, str) or int(self.n_components) < 1
        ):
            raise ValueError(
                f"n_components must be 'auto' or at least 1, got {self.n_components!r}"
            )
        check_range(self, "power_iterations", low=1)
        check_range(self, "num_threads", low=1, or_none=True)
        check_range(self, "oversample", low=0)
        check_range(self, "alpha", "sharpen", low=0, high=100)  # more swamps the scores
        check_range(self, "popularity_exponent", low=-1, high=1)
        check_range(self, "seed", low=0, high=SEED_MAX)


@register
class GFCF(Recommender):
    """Linear and ideal low-pass graph filters over the user-item matrix.

    With R the binary (users x items) matrix and its symmetric normalization
    ``R~ = D_U^-1/2 R D_I^-1/2``, ``P = R~^T R~``, a user u with training row
    r_u scores

        l_u = r_u D_I^-1/2 V V^T D_I^1/2
        s_u = (r_u P  +  alpha * l_u  -  sharpen * l_u P) * D_I^popularity_exponent

    where V holds the top ``n_components`` right singular vectors of R~. The
    first term is the normalized item-item co-occurrence filter (what a
    one-layer linear graph convolution computes); l_u keeps only the
    smoothest graph signals; the third term sharpens them again (BSPM's
    sharpening step, applied to the low-pass part). Nothing is trained:
    fitting is one randomized SVD, and scoring multiplies sparse matrices, so
    no dense item-item matrix is ever formed and large catalogues fit in
    memory. ``sharpen=0, popularity_exponent=0`` is GF-CF as published.

    Shen, Wu, Zhang, Ma, Jiang, Cao and Letaief, "How Powerful is Graph
    Convolution for Recommendation?" (CIKM 2021); Choi, Hong, Park and Park,
    "Blurring-Sharpening Process Models for Collaborative Filtering" (SIGIR
    2023).

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
        wanted = cfg.n_components
        if wanted == "auto":
            wanted = auto_components(filters.normalized.shape[1])
        rank = min(int(wanted), *filters.normalized.shape)
        if rank < int(wanted) and cfg.n_components != "auto":  # "auto" caps itself quietly
            warnings.warn(
                f"n_components={wanted} exceeds the smaller side of the training matrix; "
                f"{rank} singular vectors are kept",
                stacklevel=3,
            )
        width = min(rank + cfg.oversample, *filters.normalized.shape)
        # svd_lowrank draws its random directions from the global generator.
        with torch.random.fork_rng(devices=[]), thread_count(cfg.num_threads) as threads:
            torch.manual_seed(cfg.seed)
            _, values, vectors = torch.svd_lowrank(
                filters.sparse.to_sparse_coo(), q=width, niter=cfg.power_iterations
            )
        self.components = vectors[:, :rank].contiguous()
        self.fit_info.update(
            seconds=time.perf_counter() - start,
            device=str(self.device),
            num_threads=threads,
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
        cfg = self.config
        filters = self._graph()
        scaled = rows * filters.item_scale
        low_pass = (scaled @ self.components) @ (self.components.T * filters.item_degree_sqrt)
        if cfg.sharpen:
            # One pass of P over both signals at once: r P + alpha l - sharpen l P.
            scores = filters.propagate(rows - cfg.sharpen * low_pass) + cfg.alpha * low_pass
        else:
            scores = filters.propagate(rows) + cfg.alpha * low_pass
        if cfg.popularity_exponent:
            scores *= filters.item_weight(cfg.popularity_exponent)
        return scores

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
        # score(u, i) is linear in r_u: the sum over the user's training items
        # j of what the row e_j alone scores for i.
        cfg = self.config
        filters = self._graph()
        history = self.seen.indices[self.seen.indptr[user_idx] : self.seen.indptr[user_idx + 1]]
        normalized_t = filters.normalized_t
        column = normalized_t @ normalized_t[[item_idx]].T  # P[:, i], sparse
        linear = column[history].toarray().ravel()
        vectors = self.components.double().cpu().numpy()
        scale = filters.item_scale.double().cpu().numpy()
        degree_sqrt = filters.item_degree_sqrt.double().cpu().numpy()
        # l_j = e_j D^-1/2 V V^T D^1/2, so l_j . c = scale_j V_j . (V^T (D^1/2 c))
        left = vectors[history] * scale[history, None]
        low = left @ (vectors[item_idx] * degree_sqrt[item_idx])
        sharp = left @ (vectors.T @ (degree_sqrt * column.toarray().ravel()))
        parts = linear + cfg.alpha * low - cfg.sharpen * sharp
        if cfg.popularity_exponent:
            parts = parts * float(filters.item_weight(cfg.popularity_exponent)[item_idx])
        return _history_parts(self.items.ids[history], parts)

    def _item_vectors(self) -> torch.Tensor:
        return self.components

    def _tensors(self) -> dict[str, torch.Tensor]:
        return {"components": self.components}

    def _load_tensors(self, tensors: dict[str, torch.Tensor]) -> None:
        self.components = tensors["components"].to(self.device)
        self._filters = None


def auto_components(n_items: int) -> int:
    """The rank ``n_components="auto"`` stands for: 2.5 * sqrt(n_items), rounded."""
    return max(1, round(2.5 * math.sqrt(n_items)))


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
        self._item_degree = item_degree
        self._weights: dict[float, torch.Tensor] = {}

    def propagate(self, rows: torch.Tensor) -> torch.Tensor:
        """``rows @ R~^T R~`` as two sparse-dense products, without the item-item matrix."""
        return (self.sparse_t @ (self.sparse @ rows.T)).T

    def item_weight(self, exponent: float) -> torch.Tensor:
        """(item training count) ** exponent; items never seen count as one."""
        if exponent not in self._weights:
            weight = np.maximum(self._item_degree, 1.0) ** exponent
            self._weights[exponent] = torch.from_numpy(weight.astype(np.float32)).to(
                self.item_degree_sqrt.device
            )
        return self._weights[exponent]
