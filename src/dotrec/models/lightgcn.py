"""LightGCN: embeddings smoothed over the user-item graph, trained with BPR."""

from __future__ import annotations

import logging
import time
import warnings
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import torch

from dotrec.artifact import register
from dotrec.data import Interactions
from dotrec.losses import bpr
from dotrec.models._foldin import mean_item_vectors, propagated_user_vectors
from dotrec.models._mf_module import PairLogits
from dotrec.models._settings import SEED_MAX, check_range
from dotrec.models.base import ModelConfig, Recommender
from dotrec.sampling import UniformSampler, warn_users_without_negatives
from dotrec.training import (
    FitLog,
    check_finite_parameters,
    epoch_loop,
    resolve_device,
    seeded_generators,
    step_batch_size,
    thread_count,
)

__all__ = ["LightGCN", "LightGCNConfig", "normalized_adjacency", "propagate"]

_log = logging.getLogger(__name__)


@dataclass
class LightGCNConfig(ModelConfig):
    """Settings of :class:`LightGCN`; the defaults suit MovieLens-like data.

    Chosen by a grid on MovieLens 100K (every rating a positive,
    ``random_split(0.2, seed=0)``): NDCG@10 0.440 (mean of three seeds; MF
    0.436, EASE 0.439 there) in about 13 s of training on one CPU thread.
    Against the paper's settings (d = 64, one negative, lr 0.001, batches of
    2048, ~1000 epochs), larger batches with a larger rate and 16 negatives
    per positive reach the same quality in 50 epochs: each step propagates
    over the whole graph, so the number of steps is what costs.
    """

    embedding_dim: int = 128
    """Length of each user and item vector (the paper's d)."""
    n_layers: int = 3
    """Propagation layers K; the final vector is the mean of layers 0..K."""
    epochs: int = 50
    """Passes over the training positives."""
    lr: float = 0.05
    """Adam learning rate."""
    l2: float = 1e-3
    """L2 penalty on the layer-0 (ego) vectors of the batch's users, positive
    and negative items: ``l2 * (|e_u|^2 + |e_i|^2 + mean_j |e_j|^2) / 2``,
    averaged over the batch (the paper's lambda, there 1e-4 with batches of
    2048 and 1000 epochs)."""
    n_negatives: int = 16
    """Negatives per positive, drawn uniformly from the items the user has not
    interacted with; the BPR loss is averaged over them."""
    batch_size: int = 16384
    """Positives per step. Each step propagates over the whole graph, so
    larger batches mean fewer, cheaper-per-row steps.
    On data of fewer than 4 batches it shrinks so that an epoch takes 4 steps."""
    init_std: float = 0.1
    """Standard deviation of the normal initialisation of the ego vectors."""
    seed: int = 0
    """Seed of initialisation, shuffling and sampling."""
    device: str = "auto"
    """``"auto"`` (CUDA when available), ``"cpu"`` or ``"cuda"``."""
    num_threads: int | None = None
    """Torch CPU threads during fit; None keeps Torch's setting. A seed gives
    identical models for the same thread count."""

    def __post_init__(self) -> None:
        check_range(self, "embedding_dim", "epochs", "batch_size", "n_negatives", low=1)
        check_range(self, "num_threads", low=1, or_none=True)
        check_range(self, "n_layers", "l2", low=0)
        check_range(self, "lr", "init_std", low=0, low_open=True)
        check_range(self, "seed", low=0, high=SEED_MAX)


def normalized_adjacency(user_items: sp.csr_array | sp.csr_matrix) -> sp.csr_array:
    """The symmetric-normalised adjacency of the user-item bipartite graph.

    With R the (n_users, n_items) 0/1 interaction matrix and
    A = [[0, R], [R^T, 0]] over users then items, returns
    ``D^-1/2 A D^-1/2`` (D the diagonal of node degrees): the entry of an
    observed pair (u, i) is ``1 / sqrt(|N_u| |N_i|)``. Nodes without edges
    have empty rows.

    Returns:
        A float32 CSR array of shape (n_users + n_items, n_users + n_items),
        symmetric, with sorted indices.

    Example:
        >>> R = sp.csr_array(np.array([[1.0, 1.0], [0.0, 1.0]]))
        >>> row = normalized_adjacency(R).toarray()[0, 2:]  # 1/sqrt(2*1), 1/sqrt(2*2)
        >>> [round(float(v), 4) for v in row]
        [0.7071, 0.5]
    """
    binary = sp.csr_array(user_items, dtype=np.float64)
    binary.sum_duplicates()
    binary.data[:] = 1.0
    user_degree = np.asarray(binary.sum(axis=1)).ravel()
    item_degree = np.asarray(binary.sum(axis=0)).ravel()
    user_scale = sp.diags_array(_inverse_sqrt(user_degree))
    item_scale = sp.diags_array(_inverse_sqrt(item_degree))
    normed = user_scale @ binary @ item_scale
    adjacency = sp.block_array([[None, normed], [normed.T, None]], format="csr")
    adjacency.sort_indices()
    return sp.csr_array(adjacency, dtype=np.float32)


def _inverse_sqrt(degree: np.ndarray) -> np.ndarray:
    out = np.zeros_like(degree, dtype=np.float64)
    np.divide(1.0, np.sqrt(degree), out=out, where=degree > 0)
    return out


def _to_torch(matrix: sp.csr_array, device: torch.device) -> torch.Tensor:
    """A scipy CSR array as a torch sparse CSR tensor on ``device``."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Sparse CSR tensor support is in beta", UserWarning)
        return torch.sparse_csr_tensor(
            torch.from_numpy(matrix.indptr.astype(np.int64)),
            torch.from_numpy(matrix.indices.astype(np.int64)),
            torch.from_numpy(matrix.data.astype(np.float32)),
            matrix.shape,
            check_invariants=False,
        ).to(device)


class _SymmetricProduct(torch.autograd.Function):
    """``A @ X`` for a symmetric sparse A, whose gradient is ``A @ grad``.

    Torch's own backward of a sparse product would transpose A (a CSR to CSC
    conversion each step); since A = A^T here, the gradient is one more
    product with the same matrix.
    """

    @staticmethod
    def forward(ctx, adjacency: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        ctx.adjacency = adjacency
        return torch.sparse.mm(adjacency, x)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad: torch.Tensor):
        return None, torch.sparse.mm(ctx.adjacency, grad.contiguous())


def propagate(adjacency: torch.Tensor, ego: torch.Tensor, n_layers: int) -> torch.Tensor:
    """The LightGCN final embeddings ``(E0 + A E0 + ... + A^K E0) / (K + 1)``.

    Args:
        adjacency: symmetric sparse tensor (N, N), e.g. from
            :func:`normalized_adjacency`.
        ego: the layer-0 embeddings (N, d).
        n_layers: K.

    Returns:
        Tensor (N, d); differentiable with respect to ``ego``.
    """
    layer, total = ego, ego
    for _ in range(n_layers):
        layer = _SymmetricProduct.apply(adjacency, layer)
        total = total + layer
    return total / (n_layers + 1)


@register
class LightGCN(Recommender):
    """Light graph convolution over the user-item graph, trained with BPR.

    Every user and item has a layer-0 ("ego") vector e^(0). Layer k + 1
    averages the neighbours' layer-k vectors with the symmetric
    normalisation, e^(k+1) = D^-1/2 A D^-1/2 e^(k), without feature
    transforms or non-linearities; the final vector is the mean of layers
    0..K and the score of a pair is the dot product of the final vectors.
    Training minimises BPR (``dotrec.losses.bpr``) of each observed positive
    against ``n_negatives`` items drawn uniformly from the user's
    non-positives, plus an L2 penalty on the batch's ego vectors, with Adam
    over mini-batches; each step propagates over the whole graph with sparse
    matrix products. After ``fit`` the final vectors are cached (and saved)
    for scoring.

    He, Deng, Wang, Li, Zhang and Wang, "LightGCN: Simplifying and Powering
    Graph Convolution Network for Recommendation" (SIGIR 2020).

    Example:
        >>> from dotrec.data import Interactions
        >>> data = Interactions.from_ids(["a", "a", "b", "b", "c"], ["x", "y", "y", "z", "x"])
        >>> model = LightGCN(embedding_dim=4, epochs=2, device="cpu").fit(data)
        >>> len(model.recommend("a", k=5).to_list()[0])
        1
    """

    name = "lightgcn"
    config_class = LightGCNConfig
    score_kind = "dot product of propagated vectors, trained with BPR (not a probability)"
    dot_product = True

    def __init__(self, **config):
        super().__init__(**config)
        self.user_ego: torch.Tensor | None = None
        self.item_ego: torch.Tensor | None = None
        self.user_vectors: torch.Tensor | None = None
        self.item_vectors: torch.Tensor | None = None
        self._item_layers: list[torch.Tensor] | None = None

    @property
    def device(self) -> torch.device:
        return resolve_device(self.config.device)

    def _fit(self, data: Interactions, show_progress: bool) -> None:
        cfg, device = self.config, self.device
        _, generator = seeded_generators(cfg.seed, device)
        init = torch.Generator().manual_seed(cfg.seed)
        n_users, n_items = data.n_users, data.n_items
        ego = torch.randn(n_users + n_items, cfg.embedding_dim, generator=init) * cfg.init_std
        ego = ego.to(device).requires_grad_()
        adjacency = _to_torch(normalized_adjacency(self.seen), device)

        # Training rows: the positives, i.e. the graph's edges.
        seen = self.seen.tocoo()
        user_idx = torch.from_numpy(seen.row.astype(np.int64)).to(device)
        item_idx = torch.from_numpy(seen.col.astype(np.int64)).to(device)
        sampler = UniformSampler(self.seen, device)
        saturated = warn_users_without_negatives(sampler, self.users.ids, pointwise=False)
        optimizer = torch.optim.Adam([ego], lr=cfg.lr)

        batch_size = step_batch_size(cfg.batch_size, len(user_idx))

        def run_epoch(epoch: int) -> float:
            order = torch.randperm(len(user_idx), generator=generator, device=device)
            total = torch.zeros((), dtype=torch.float64, device=device)
            for start in range(0, len(order), batch_size):
                batch = order[start : start + batch_size]
                users, items = user_idx[batch], item_idx[batch]
                negatives = sampler.sample(users, cfg.n_negatives, generator)
                loss = self._step(
                    ego, adjacency, users, items, negatives, optimizer, n_users, saturated
                )
                total += loss * len(batch)
            check_finite_parameters({"ego": ego}, epoch, cfg.lr)
            return total.item() / max(len(order), 1)

        start = time.perf_counter()
        with thread_count(cfg.num_threads) as threads:
            losses = epoch_loop(
                run_epoch, cfg.epochs, lr=cfg.lr, show_progress=show_progress, desc="lightgcn"
            )
            with torch.no_grad():
                final = propagate(adjacency, ego.detach(), cfg.n_layers)
        ego = ego.detach()
        self.user_ego, self.item_ego = ego[:n_users], ego[n_users:]
        self.user_vectors, self.item_vectors = final[:n_users], final[n_users:]
        self._item_layers = None
        log = FitLog(losses, time.perf_counter() - start, threads, str(device), cfg.seed)
        self.fit_info.update(log.to_dict())

    def _step(
        self, ego, adjacency, users, items, negatives, optimizer, n_users, saturated: bool
    ) -> torch.Tensor:
        """One BPR step on a batch; returns the batch's BPR loss (without the penalty)."""
        cfg = self.config
        final = propagate(adjacency, ego, cfg.n_layers)
        mask = negatives >= 0 if saturated else None  # -1: the user has every item
        negatives = negatives.clamp(min=0)
        candidates = torch.cat([items.unsqueeze(1), negatives], 1)  # (B, 1 + n)
        user_final, item_final = final[:n_users], final[n_users:]
        no_bias = [final.new_zeros(n, 1) for n in (len(user_final), len(item_final))]
        logits = PairLogits.apply(user_final, item_final, *no_bias, users, candidates)
        loss = bpr(logits[:, 0], logits[:, 1:], mask)

        # L2 on the ego vectors of the batch, as in the paper's code, from how
        # often each row occurs in the batch (cheaper than gathering the rows).
        n_nodes = len(ego)
        occurs = torch.bincount(users, minlength=n_nodes) + torch.bincount(
            items + n_users, minlength=n_nodes
        )
        negative_occurs = torch.bincount(negatives.reshape(-1) + n_users, minlength=n_nodes)
        weight = occurs.to(ego.dtype) + negative_occurs.to(ego.dtype) / negatives.shape[1]
        penalty = (weight @ ego.square().sum(1)) / (2 * len(users))
        optimizer.zero_grad(set_to_none=True)
        (loss + cfg.l2 * penalty).backward()
        optimizer.step()
        return loss.detach()

    def _score_users(self, user_idx: torch.Tensor) -> torch.Tensor:
        return self.user_vectors[user_idx.to(self.device)] @ self.item_vectors.T

    def _score_pairs(self, user_idx: torch.Tensor, item_idx: torch.Tensor) -> torch.Tensor:
        users = self.user_vectors[user_idx.to(self.device)]
        return (users * self.item_vectors[item_idx.to(self.device)]).sum(-1)

    def _score_parts(self, user_idx: int, item_idx: int) -> dict[str, float]:
        user, item = self.user_vectors[user_idx].double(), self.item_vectors[item_idx].double()
        return {"dot product of propagated vectors": float(user @ item)}  # no biases

    def _item_vectors(self) -> torch.Tensor:
        return self.item_vectors

    def _query_vectors(self, user_idx: torch.Tensor) -> torch.Tensor:
        return self.user_vectors[user_idx.to(self.device)]

    def _item_vectors_for_search(self) -> torch.Tensor:
        return self.item_vectors

    @torch.no_grad()
    def _fold_in(self, history: sp.csr_array) -> torch.Tensor:
        """A new user's final vector, propagated from its items as the graph does.

        Layer k + 1 of the user is the normalised sum of its items' layer-k
        vectors (:func:`~dotrec.models._foldin.propagated_user_vectors`);
        its layer-0 vector, which only training gives, is replaced by the
        mean of its other layers. The items' vectors stay as trained (adding
        the user's edges would move them only slightly). With no
        propagation layers, the mean of the history's item vectors.
        """
        if self.config.n_layers == 0:
            return mean_item_vectors(history, self.item_vectors)
        return propagated_user_vectors(history, self._layers(), self.item_counts)

    def _layers(self) -> list[torch.Tensor]:
        """The items' vectors of layers 0..K, propagated once from the ego vectors."""
        if self._item_layers is None:
            adjacency = _to_torch(normalized_adjacency(self.seen), self.device)
            layer = torch.cat([self.user_ego, self.item_ego])
            layers = [layer]
            for _ in range(self.config.n_layers):
                layer = torch.sparse.mm(adjacency, layer)
                layers.append(layer)
            self._item_layers = [layer[len(self.user_ego) :] for layer in layers]
        return self._item_layers

    def _tensors(self) -> dict[str, torch.Tensor]:
        # The propagated vectors are stored too, so that a loaded model scores
        # exactly as the fitted one (recomputing could differ in the last bits
        # on another device or thread count).
        return {
            "user_ego": self.user_ego,
            "item_ego": self.item_ego,
            "user_vectors": self.user_vectors,
            "item_vectors": self.item_vectors,
        }

    def _load_tensors(self, tensors: dict[str, torch.Tensor]) -> None:
        for name in ("user_ego", "item_ego", "user_vectors", "item_vectors"):
            setattr(self, name, tensors[name].to(self.device))
        self._item_layers = None
