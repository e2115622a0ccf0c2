"""Matrix factorization trained with binary cross-entropy against sampled negatives."""

from __future__ import annotations

import logging
import time
import warnings
from dataclasses import dataclass, fields

import numpy as np
import torch
from torch import nn

from dotrec.artifact import register
from dotrec.data import Interactions
from dotrec.exceptions import DataWarning
from dotrec.models.base import Recommender
from dotrec.sampling import UniformSampler
from dotrec.training import (
    FitLog,
    check_finite_parameters,
    epoch_loop,
    resolve_device,
    seeded_generators,
    thread_count,
)

__all__ = ["MFConfig", "MFModule", "MatrixFactorization"]

_log = logging.getLogger(__name__)


@dataclass
class MFConfig:
    """Settings of :class:`MatrixFactorization`; the defaults suit MovieLens-like data."""

    embedding_dim: int = 64
    """Length of each user and item vector."""
    epochs: int = 30
    """Passes over the training rows."""
    lr: float = 0.01
    """AdamW learning rate."""
    l2: float = 0.01
    """L2 penalty on the embeddings used in each batch (so frequent users and
    items are regularised in proportion to how often they appear)."""
    weight_decay: float = 0.0
    """AdamW's decoupled weight decay, applied to every parameter each step."""
    n_negatives: int = 4
    """Sampled negatives per training row, drawn uniformly from the items the
    user has not interacted with."""
    batch_size: int = 8192
    """Training rows per step (each with its ``n_negatives``)."""
    init_std: float = 0.1
    """Standard deviation of the normal initialisation of the embeddings."""
    seed: int = 0
    """Seed of initialisation, shuffling and sampling."""
    device: str = "auto"
    """``"auto"`` (CUDA when available), ``"cpu"`` or ``"cuda"``."""
    num_threads: int | None = None
    """Torch CPU threads during fit; None keeps Torch's setting. A seed gives
    identical models for the same thread count; another count may change the
    last bits of the sums."""

    def to_dict(self) -> dict:
        """The settings as a plain dict."""
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_dict(cls, values: dict) -> MFConfig:
        """Settings from a plain dict; unknown keys are an error."""
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - names)
        if unknown:
            raise ValueError(f"unknown MF settings {unknown}; known: {sorted(names)}")
        return cls(**values)

    def __post_init__(self) -> None:
        for name in ("embedding_dim", "epochs", "batch_size"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)!r}")
        if self.n_negatives < 0:
            raise ValueError(f"n_negatives must be non-negative, got {self.n_negatives!r}")
        if not self.lr > 0:
            raise ValueError(f"lr must be positive, got {self.lr!r}")


class MFModule(nn.Module):
    """score(u, i) = <p_u, q_i> + b_u + b_i, for any batch shape of pairs."""

    def __init__(self, n_users: int, n_items: int, embedding_dim: int):
        super().__init__()
        self.user_embedding = nn.Embedding(n_users, embedding_dim)
        self.item_embedding = nn.Embedding(n_items, embedding_dim)
        self.user_bias = nn.Embedding(n_users, 1)
        self.item_bias = nn.Embedding(n_items, 1)

    def reset_parameters(self, std: float, generator: torch.Generator) -> None:
        with torch.no_grad():
            for table in (self.user_embedding, self.item_embedding):
                table.weight.normal_(0.0, std, generator=generator)
            self.user_bias.weight.zero_()
            self.item_bias.weight.zero_()

    def forward(self, user_idx: torch.Tensor, item_idx: torch.Tensor) -> torch.Tensor:
        """Logits for users (B,) against items (B,) or (B, M); returns (B,) or (B, M)."""
        # index_select has the cheapest backward of the gathers on the CPU.
        flat = item_idx.reshape(-1)
        users = self.user_embedding.weight.index_select(0, user_idx)
        items = self.item_embedding.weight.index_select(0, flat).view(*item_idx.shape, -1)
        item_bias = self.item_bias.weight.index_select(0, flat).view(item_idx.shape)
        user_bias = self.user_bias.weight.index_select(0, user_idx)
        if item_idx.dim() == 2:
            users = users.unsqueeze(1)
        else:
            user_bias = user_bias.squeeze(1)
        return (users * items).sum(-1) + user_bias + item_bias

    def full_scores(self, user_idx: torch.Tensor) -> torch.Tensor:
        """Logits (B, n_items) of every item for users (B,)."""
        users = self.user_embedding.weight[user_idx]
        return (users @ self.item_embedding.weight.T + self.user_bias.weight[user_idx]
                + self.item_bias.weight.T)


@register
class MatrixFactorization(Recommender):
    """Biased matrix factorization for implicit feedback, trained with BCE.

    The score of a (user, item) pair is ``<p_u, q_i> + b_u + b_i``. Training
    minimises ``torch.nn.BCEWithLogitsLoss`` with AdamW over mini-batches: each
    observed positive has label 1; each row labelled 0 in the data is an
    observed negative; and ``n_negatives`` items per row are drawn uniformly
    from the items that user has not interacted with, with label 0.

    What a score is: a logit of "observed" against that uniform sampling
    distribution of negatives. It ranks items well, but ``sigmoid(score)`` is
    not the probability that the user interacts with the item: it depends on
    ``n_negatives`` and on how negatives were drawn. Calibrate on held-out data
    when a probability is needed.

    Model after Koren, Bell and Volinsky, "Matrix Factorization Techniques for
    Recommender Systems" (IEEE Computer, 2009), with the pointwise
    negative-sampling objective of Mikolov et al. (2013) and He et al.,
    "Neural Collaborative Filtering" (WWW 2017).

    Example:
        >>> from dotrec.data import Interactions
        >>> data = Interactions.from_ids(["a", "a", "b", "b", "c"], ["x", "y", "y", "z", "x"])
        >>> model = MatrixFactorization(embedding_dim=4, epochs=2).fit(data)
        >>> model.recommend("a", k=5).to_list()[0][0][0]
        'z'
    """

    name = "mf"
    config_class = MFConfig
    score_kind = "logit against uniformly sampled negatives (not a probability)"

    def __init__(self, **config):
        super().__init__(**config)
        self.module: MFModule | None = None

    @property
    def device(self) -> torch.device:
        return resolve_device(self.config.device)

    def _fit(self, data: Interactions, show_progress: bool) -> None:
        cfg = self.config
        device = self.device
        _, generator = seeded_generators(cfg.seed, device)
        cpu_generator = torch.Generator().manual_seed(cfg.seed)
        self.module = MFModule(data.n_users, data.n_items, cfg.embedding_dim).to(device)
        self.module.reset_parameters(cfg.init_std, cpu_generator)

        sampler = UniformSampler(self.seen, device)
        _warn_saturated_users(sampler, data)
        user_idx = torch.from_numpy(data.user_idx).to(device)
        item_idx = torch.from_numpy(data.item_idx).to(device)
        label = torch.from_numpy(data.positive.astype(np.float32)).to(device)
        optimizer = torch.optim.AdamW(self.module.parameters(), lr=cfg.lr,
                                      weight_decay=cfg.weight_decay)
        loss_fn = nn.BCEWithLogitsLoss()

        def run_epoch(epoch: int) -> float:
            order = torch.randperm(len(user_idx), generator=generator, device=device)
            total = 0.0
            for start in range(0, len(order), cfg.batch_size):
                batch = order[start : start + cfg.batch_size]
                loss = self._step(user_idx[batch], item_idx[batch], label[batch], sampler,
                                  generator, optimizer, loss_fn)
                total += loss * len(batch)
            check_finite_parameters(dict(self.module.named_parameters()), epoch, cfg.lr)
            return total / len(order)

        start = time.perf_counter()
        with thread_count(cfg.num_threads) as threads:
            losses = epoch_loop(run_epoch, cfg.epochs, lr=cfg.lr, show_progress=show_progress,
                                desc="mf")
        log = FitLog(losses, time.perf_counter() - start, threads, str(device), cfg.seed)
        self.fit_info.update(log.to_dict())

    def _step(self, users, items, labels, sampler, generator, optimizer, loss_fn) -> float:
        cfg = self.config
        negatives = sampler.sample(users, cfg.n_negatives, generator)
        valid = torch.cat([torch.ones_like(items, dtype=torch.bool).unsqueeze(1), negatives >= 0], 1)
        candidates = torch.cat([items.unsqueeze(1), negatives.clamp(min=0)], 1)  # (B, 1 + n)
        targets = torch.cat([labels.unsqueeze(1), torch.zeros_like(negatives, dtype=labels.dtype)], 1)

        logits = self.module(users, candidates)
        if valid.all():
            loss = loss_fn(logits, targets)
        else:  # users who saw every item have no negatives to contribute
            loss = loss_fn(logits[valid], targets[valid])
        loss_total = loss + cfg.l2 * self._l2_penalty(users, candidates[valid])
        optimizer.zero_grad(set_to_none=True)
        loss_total.backward()
        optimizer.step()
        return loss.item()

    def _l2_penalty(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """Mean squared norm of the batch's user and item vectors.

        Computed from how often each row occurs in the batch, over the tables
        (n_users + n_items) rather than over the gathered batch (B x (1 + n)),
        which gives the same value for less work.
        """
        module = self.module
        user_count = torch.bincount(users, minlength=module.user_embedding.num_embeddings)
        item_count = torch.bincount(items.reshape(-1), minlength=module.item_embedding.num_embeddings)
        user_sq = module.user_embedding.weight.square().sum(1)
        item_sq = module.item_embedding.weight.square().sum(1)
        return (user_count.to(user_sq.dtype) @ user_sq) / max(len(users), 1) + (
            item_count.to(item_sq.dtype) @ item_sq
        ) / max(items.numel(), 1)

    def _score_users(self, user_idx: torch.Tensor) -> torch.Tensor:
        return self.module.full_scores(user_idx.to(self.device))

    def _score_pairs(self, user_idx: torch.Tensor, item_idx: torch.Tensor) -> torch.Tensor:
        return self.module(user_idx.to(self.device), item_idx.to(self.device))

    def _item_vectors(self) -> torch.Tensor:
        return self.module.item_embedding.weight

    def _tensors(self) -> dict[str, torch.Tensor]:
        return dict(self.module.state_dict())

    def _load_tensors(self, tensors: dict[str, torch.Tensor]) -> None:
        n_users, dim = tensors["user_embedding.weight"].shape
        n_items = tensors["item_embedding.weight"].shape[0]
        self.module = MFModule(n_users, n_items, dim)
        self.module.load_state_dict(tensors)
        self.module.to(self.device)


def _warn_saturated_users(sampler: UniformSampler, data: Interactions) -> None:
    saturated = sampler.users_without_negatives()
    if len(saturated):
        names = ", ".join(repr(u) for u in data.users.ids[saturated[:10]])
        warnings.warn(
            f"{len(saturated)} user(s) interacted with every item ({names}); no negatives can "
            "be drawn for them, so only their positives are used in training.",
            DataWarning,
            stacklevel=4,
        )
