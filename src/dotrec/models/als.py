"""Implicit-feedback alternating least squares with a conjugate-gradient solver."""

from __future__ import annotations

import contextlib
import logging
import math
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import scipy.sparse as sp
import torch

from dotrec.artifact import register
from dotrec.data import Interactions
from dotrec.models._foldin import als_user_factors
from dotrec.models._settings import SEED_MAX, check_range
from dotrec.models.base import ModelConfig, Recommender
from dotrec.training import check_finite_parameters, epoch_loop, resolve_device, thread_count

__all__ = ["ALS", "ALSConfig"]

_log = logging.getLogger(__name__)


@dataclass
class ALSConfig(ModelConfig):
    """Settings of :class:`ALS`; the defaults suit MovieLens-like data."""

    factors: int = 128
    """Length of each user and item vector."""
    regularization: float = 50.0
    """L2 penalty lambda on every vector (scaled by activity only when
    ``regularization_exponent`` is set)."""
    regularization_exponent: float = 0.0
    """Frequency-scaled penalty: a user or item with n stored pairs gets
    lambda * (n + 1)^e / mean((n + 1)^e), the mean over its side, so that the
    average penalty stays lambda. 0: one penalty for every vector (Hu et al.);
    1: proportional to activity (ALS-WR, Zhou et al. 2008); Rendle et al.
    (2022) found such scaling worth tuning. On a validation split of Gowalla's
    training side 0.75 lifted Recall@20 from 0.182 to 0.186; on validation
    splits of ml-100k and ml-latest-small none of 0.25-1 scored higher (0.25
    tied on ml-latest-small, the rest lower by 0.005-0.019 NDCG@10), hence
    the default 0."""
    alpha: float | Literal["auto"] = "auto"
    """Confidence of an observed pair: c = 1 + alpha * value (value 1 for implicit data).
    ``"auto"``: 1.2 / sqrt(density), density = pairs / (users x items), so that the
    few positives of sparse data weigh more against its many unobserved pairs:
    5.3 on ml-100k, 9.9 on ml-latest-small, 47 on Gowalla (best fixed values
    found there: 5, 5-10 and 50; the factor 1.2 was fitted on these three)."""
    iterations: int = 15
    """Alternating passes (users, then items)."""
    cg_steps: int = 3
    """Conjugate-gradient steps per solve, warm-started from the previous vectors."""
    init_std: float = 0.01
    """Standard deviation of the normal initialisation."""
    seed: int = 0
    """Seed of the initialisation."""
    device: str = "auto"
    """``"auto"`` (CUDA when available), ``"cpu"`` or ``"cuda"``."""
    num_threads: int | None = None
    """CPU threads during fit (each solves its own blocks of rows); None uses
    Torch's setting (``torch.get_num_threads()``)."""

    def __post_init__(self) -> None:
        check_range(self, "factors", "iterations", "cg_steps", low=1)
        check_range(self, "num_threads", low=1, or_none=True)
        check_range(self, "regularization", low=0)
        check_range(self, "regularization_exponent", low=0, high=4)
        check_range(self, "init_std", low=0, low_open=True)
        check_range(self, "seed", low=0, high=SEED_MAX)
        if self.alpha != "auto" and not (
            isinstance(self.alpha, (int, float)) and 0 <= self.alpha < math.inf
        ):
            raise ValueError(f"alpha must be 'auto' or a non-negative number, got {self.alpha!r}")


class _Block:
    """A block of rows to solve, with their stored pairs.

    The pairs are a CSR pattern (``crow``, ``col``) of shape (rows, n_cols).
    Both sparse products of a solve run over it without gathering (nnz, d)
    tensors: the dot products <v_row, y_col> of the stored pairs are one
    sampled matrix product (SDDMM), and the weighted sums sum_col w y_col of
    each row are one ``embedding_bag``, about twice as fast on the CPU as a
    CSR matrix product.
    """

    def __init__(
        self,
        crow: torch.Tensor,
        col: torch.Tensor,
        confidence: torch.Tensor,
        start: int,
        stop: int,
        n_cols: int,
        row_penalty: torch.Tensor | None = None,
    ):
        lo, hi = int(crow[start]), int(crow[stop])
        self.rows = slice(start, stop)
        self.penalty = None if row_penalty is None else row_penalty[start:stop].unsqueeze(1)
        """Each row's own L2 penalty, (rows, 1); None when one penalty serves all."""
        self.crow = crow[start : stop + 1] - lo
        self.col = col[lo:hi]
        self.confidence = confidence[lo:hi]
        self.extra = self.confidence - 1.0
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", "Sparse CSR tensor support is in beta", UserWarning)
            self.pattern = torch.sparse_csr_tensor(
                self.crow,
                self.col,
                torch.zeros_like(self.confidence),
                (stop - start, n_cols),
                check_invariants=False,
            )

    def dots(self, rows: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
        """<rows[r], cols[c]> for every stored pair (r, c), in CSR order: shape (nnz,)."""
        return torch.sparse.sampled_addmm(self.pattern, rows, cols.T, beta=0.0).values()

    def times(self, values: torch.Tensor, dense: torch.Tensor) -> torch.Tensor:
        """(sparse block with ``values`` at the stored pairs) @ ``dense``: (rows, d)."""
        return torch.nn.functional.embedding_bag(
            self.col,
            dense,
            self.crow,
            mode="sum",
            per_sample_weights=values,
            include_last_offset=True,
        )


def _blocks(
    matrix: sp.csr_array,
    alpha: float,
    device: torch.device,
    n_blocks: int,
    factors: int,
    row_penalty: torch.Tensor | None = None,
) -> list[_Block]:
    """The rows of ``matrix`` cut into ``n_blocks`` blocks of about equal work.

    A row costs about (its pairs + factors) x factors: the sparse products
    and its share of the (rows, d) x (d, d) product. ``row_penalty`` gives
    each row its own L2 penalty (see :func:`row_penalties`).
    """
    matrix = sp.csr_array(matrix)
    matrix.sort_indices()
    crow = torch.from_numpy(matrix.indptr.astype(np.int64))
    work = crow + torch.arange(matrix.shape[0] + 1) * factors
    targets = torch.linspace(0, int(work[-1]), n_blocks + 1, dtype=torch.float64)[1:-1]
    cuts = torch.searchsorted(work, targets.to(torch.int64)).tolist()
    bounds = sorted({0, matrix.shape[0], *cuts})
    col = torch.from_numpy(matrix.indices.astype(np.int64)).to(device)
    confidence = torch.from_numpy(1.0 + alpha * matrix.data.astype(np.float32)).to(device)
    crow = crow.to(device)
    if row_penalty is not None:
        row_penalty = row_penalty.to(device)
    return [
        _Block(crow, col, confidence, start, stop, matrix.shape[1], row_penalty)
        for start, stop in zip(bounds[:-1], bounds[1:], strict=False)
    ]


@register
class ALS(Recommender):
    """Weighted matrix factorization for implicit feedback, solved by alternating least squares.

    Minimises sum over all (u, i) of c_ui (p_ui - <x_u, y_i>)^2 + lambda (|x|^2 + |y|^2)
    with p_ui = 1 for observed pairs and 0 otherwise, and confidence
    c_ui = 1 + alpha * value for observed pairs, 1 for the rest. Each half-step
    solves every user's (then every item's) normal equations with a few
    conjugate-gradient steps, batched over blocks of rows in tensor code, using
    Y^T C_u Y = Y^T Y + Y^T (C_u - I) Y so that only observed pairs cost work.

    On the CPU each of ``num_threads`` threads solves its own blocks of rows
    with single-threaded Torch operations, as implicit does per user: the
    threads meet once per half-step, not at every operation, so that training
    stays fast when other processes compete for the cores.

    Hu, Koren and Volinsky, "Collaborative Filtering for Implicit Feedback
    Datasets" (ICDM 2008); the conjugate-gradient variant follows Takacs,
    Pilaszy and Tikk, "Applications of the Conjugate Gradient Method for
    Implicit Feedback Collaborative Filtering" (RecSys 2011).

    Example:
        >>> from dotrec.data import Interactions
        >>> data = Interactions.from_ids(["a", "a", "b", "b", "c"], ["x", "y", "y", "z", "x"])
        >>> model = ALS(factors=4, regularization=0.1, iterations=5).fit(data)
        >>> len(model.recommend("a", k=5).to_list()[0])
        1
    """

    name = "als"
    config_class = ALSConfig
    score_kind = "ALS preference estimate <x_u, y_i> (near 1 = preferred; not a probability)"
    dot_product = True

    def __init__(self, **config):
        super().__init__(**config)
        self.user_factors: torch.Tensor | None = None
        self.item_factors: torch.Tensor | None = None

    @property
    def device(self) -> torch.device:
        return resolve_device(self.config.device)

    def _fit(self, data: Interactions, show_progress: bool) -> None:
        cfg, device = self.config, self.device
        generator = torch.Generator().manual_seed(cfg.seed)
        users = torch.randn(data.n_users, cfg.factors, generator=generator) * cfg.init_std
        items = torch.randn(data.n_items, cfg.factors, generator=generator) * cfg.init_std
        users, items = users.to(device), items.to(device)

        alpha = _auto_alpha(self.seen) if cfg.alpha == "auto" else float(cfg.alpha)

        start = time.perf_counter()
        with thread_count(cfg.num_threads) as threads, _row_workers(threads, device) as run:
            n_blocks = 1 if device.type != "cpu" else threads
            exponent = cfg.regularization_exponent
            penalties, scales = [None, None], [1.0, 1.0]
            if exponent:
                user_counts = np.diff(self.seen.indptr)
                item_counts = np.bincount(self.seen.indices, minlength=self.seen.shape[1])
                for side, counts in enumerate((user_counts, item_counts)):
                    penalties[side], scales[side] = row_penalties(
                        counts, cfg.regularization, exponent
                    )
            user_blocks = _blocks(self.seen, alpha, device, n_blocks, cfg.factors, penalties[0])
            item_blocks = _blocks(self.seen.T, alpha, device, n_blocks, cfg.factors, penalties[1])

            def run_epoch(epoch: int) -> float:
                _solve(run, user_blocks, items, users, cfg.regularization, cfg.cg_steps)
                _solve(run, item_blocks, users, items, cfg.regularization, cfg.cg_steps)
                check_finite_parameters({"user_factors": users, "item_factors": items}, epoch, None)
                return _loss(run, user_blocks, users, items, cfg.regularization, item_blocks)

            with torch.no_grad():
                losses = epoch_loop(
                    run_epoch, cfg.iterations, lr=None, show_progress=show_progress, desc="als"
                )
        self.user_factors, self.item_factors = users, items
        self.fit_info.update(
            alpha=alpha,
            user_penalty_scale=scales[0],
            epoch_loss=losses,
            seconds=time.perf_counter() - start,
            num_threads=threads,
            device=str(device),
            seed=cfg.seed,
        )

    def _score_users(self, user_idx: torch.Tensor) -> torch.Tensor:
        return self.user_factors[user_idx.to(self.device)] @ self.item_factors.T

    def _score_pairs(self, user_idx: torch.Tensor, item_idx: torch.Tensor) -> torch.Tensor:
        users = self.user_factors[user_idx.to(self.device)]
        return (users * self.item_factors[item_idx.to(self.device)]).sum(-1)

    def _score_parts(self, user_idx: int, item_idx: int) -> dict[str, float]:
        user, item = self.user_factors[user_idx].double(), self.item_factors[item_idx].double()
        return {"dot product <x_u, y_i>": float(user @ item)}  # ALS has no biases

    def _item_vectors(self) -> torch.Tensor:
        return self.item_factors

    def _query_vectors(self, user_idx: torch.Tensor) -> torch.Tensor:
        return self.user_factors[user_idx.to(self.device)]

    def _item_vectors_for_search(self) -> torch.Tensor:
        return self.item_factors

    def _fold_in(self, history: sp.csr_array) -> torch.Tensor:
        """The exact user half-step for each history against the trained item factors.

        Hu, Koren and Volinsky's fold-in: the same weighted, regularised
        normal equations as training's user step, with the model's confidence
        ``1 + alpha`` on the history's items, solved exactly (see
        :func:`~dotrec.models._foldin.als_user_factors`). For a training
        user's own history this is the user's trained vector at the fixed
        point, up to the conjugate-gradient steps training took.
        """
        alpha = self.fit_info.get("alpha")
        if alpha is None:
            alpha = _auto_alpha(self.seen) if self.config.alpha == "auto" else self.config.alpha
        reg: float | torch.Tensor = self.config.regularization
        if self.config.regularization_exponent:
            # each history is penalised as a training user with its count would be
            reg, _ = row_penalties(
                np.diff(history.indptr),
                self.config.regularization,
                self.config.regularization_exponent,
                scale=self.fit_info.get("user_penalty_scale"),
            )
        return als_user_factors(history, self.item_factors, reg, float(alpha))

    def _tensors(self) -> dict[str, torch.Tensor]:
        return {"user_factors": self.user_factors, "item_factors": self.item_factors}

    def _load_tensors(self, tensors: dict[str, torch.Tensor]) -> None:
        self.user_factors = tensors["user_factors"].to(self.device)
        self.item_factors = tensors["item_factors"].to(self.device)


def row_penalties(
    counts: np.ndarray, regularization: float, exponent: float, scale: float | None = None
) -> tuple[torch.Tensor, float]:
    """Frequency-scaled L2 penalties: ``regularization * (counts + 1)^exponent / scale``.

    ``scale`` defaults to the mean of ``(counts + 1)^exponent``, so that the
    average penalty is ``regularization``; it is returned for fold-in, which
    scales new users as training scaled its users.
    """
    grown = (np.asarray(counts, dtype=np.float64) + 1.0) ** exponent
    if scale is None:
        scale = float(grown.mean()) if len(grown) else 1.0
    return torch.from_numpy(regularization * grown / scale).float(), scale


def _auto_alpha(seen: sp.csr_array) -> float:
    """1.2 / sqrt(density): the confidence weight ``alpha="auto"`` stands for."""
    density = max(seen.nnz, 1) / (seen.shape[0] * seen.shape[1])
    return 1.2 / density**0.5


def _penalty(blocks: list[_Block], vectors: torch.Tensor, reg: float) -> torch.Tensor:
    """sum_rows reg_row |v_row|^2 over one side (``reg`` where blocks have no row penalties)."""
    if not blocks or blocks[0].penalty is None:
        return reg * vectors.square().sum()
    return sum((b.penalty * vectors[b.rows].square()).sum() for b in blocks)


_Run = Callable[[Callable[[Any], Any], Sequence[Any]], list]
"""``run(fn, parts)``: ``[fn(part) for part in parts]``, possibly on several threads."""


@contextlib.contextmanager
def _row_workers(threads: int, device: torch.device) -> Iterator[_Run]:
    """A :data:`_Run` on ``threads`` CPU threads.

    On the CPU, Torch runs single-threaded meanwhile, so that the threads do
    not split every small operation again; on CUDA the parts run in turn.
    """
    if device.type != "cpu" or threads == 1:
        yield lambda fn, parts: [fn(part) for part in parts]
        return
    with thread_count(1), ThreadPoolExecutor(threads, thread_name_prefix="dotrec-als") as pool:
        yield lambda fn, parts: list(pool.map(fn, parts))


def _solve(
    run: _Run, blocks: list[_Block], fixed: torch.Tensor, x: torch.Tensor, reg: float, steps: int
) -> None:
    """A few conjugate-gradient steps on every row's normal equations, in place.

    For row u: (Y^T Y + reg_u I + Y^T (C_u - I) Y) x_u = Y^T C_u p_u, warm-started
    from ``x``; reg_u is ``reg``, or the block's own row penalty when it has
    them. Each step costs one SDDMM, one weighted row sum and one (rows, d) x
    (d, d) product per block.
    """
    parts = torch.tensor_split(fixed, len(blocks))
    gram = torch.stack(run(lambda part: part.T @ part, parts)).sum(0)
    if blocks[0].penalty is None:
        gram.diagonal().add_(reg)
    run(lambda block: _cg_block(block, fixed, x[block.rows], gram, steps), blocks)


def _cg_block(
    block: _Block, fixed: torch.Tensor, x: torch.Tensor, gram: torch.Tensor, steps: int
) -> None:
    """Conjugate gradient on the rows of one block; ``x`` is their slice of the factors."""

    def apply(v: torch.Tensor) -> torch.Tensor:
        weights = block.dots(v, fixed).mul_(block.extra)
        out = block.times(weights, fixed).addmm_(v, gram)
        return out if block.penalty is None else out.addcmul_(block.penalty, v)

    r = block.times(block.confidence, fixed).sub_(apply(x))
    p = r.clone()
    rs = _squared_norms(r)
    for _ in range(steps):
        ap = apply(p)
        step = (rs / torch.linalg.vecdot(p, ap).clamp_min(1e-20)).unsqueeze(1)
        x.addcmul_(step, p)
        r.addcmul_(step, ap, value=-1.0)
        rs_next = _squared_norms(r)
        torch.addcmul(r, (rs_next / rs.clamp_min(1e-20)).unsqueeze(1), p, out=p)
        rs = rs_next


def _squared_norms(rows: torch.Tensor) -> torch.Tensor:
    """|row|^2 of every row; one pass, where ``vecdot(r, r)`` makes a product first."""
    return torch.linalg.vector_norm(rows, dim=1).square_()


def _loss(
    run: _Run,
    blocks: list[_Block],
    users: torch.Tensor,
    items: torch.Tensor,
    reg: float,
    item_blocks: list[_Block] | None = None,
) -> float:
    """The weighted squared loss per observed pair, with the penalty.

    The sum over unobserved pairs (target 0, weight 1) is sum(U Y^T)^2 minus
    the observed part, computed from the Gram matrices.
    """

    def observed(block: _Block) -> torch.Tensor:
        predicted = block.dots(users[block.rows], items)
        return (block.confidence * (1 - predicted) ** 2).sum() - (predicted**2).sum()

    total = torch.stack(run(observed, blocks)).sum()
    everything = ((users.T @ users) * (items.T @ items)).sum()
    penalty = _penalty(blocks, users, reg) + _penalty(item_blocks or [], items, reg)
    n_pairs = sum(len(block.col) for block in blocks)
    return float((total + everything + penalty) / max(n_pairs, 1))
