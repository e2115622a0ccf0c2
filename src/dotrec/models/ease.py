"""EASE: a closed-form linear item-item model."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

import torch

from dotrec.artifact import register
from dotrec.data import Interactions
from dotrec.exceptions import DotrecError
from dotrec.models._settings import check_range
from dotrec.models.base import ModelConfig, Recommender, _history_parts
from dotrec.topk import rows_mask
from dotrec.training import resolve_device, thread_count

__all__ = ["EASE", "EASEConfig"]


@dataclass
class EASEConfig(ModelConfig):
    """Settings of :class:`EASE`."""

    regularization: float = 250.0
    """L2 penalty lambda on the item-item weights."""
    max_memory_gb: float | None = None
    """Memory EASE may use for its dense item-item matrices; None reads the
    memory available now."""
    device: str = "auto"
    """``"auto"`` (CUDA when available), ``"cpu"`` or ``"cuda"``."""
    num_threads: int | None = None
    """Torch CPU threads for the Gram matrix and its inverse during fit; None
    keeps Torch's setting."""

    def __post_init__(self) -> None:
        check_range(self, "regularization", low=0, low_open=True)
        check_range(self, "max_memory_gb", low=0, low_open=True, or_none=True)
        check_range(self, "num_threads", low=1, or_none=True)


def available_memory_gb() -> float:
    """Memory available to new allocations, from /proc/meminfo (or all physical memory)."""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) / 2**20
    except OSError:
        pass
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30


@register
class EASE(Recommender):
    """Embarrassingly shallow autoencoder: scores = X B with a zero-diagonal B.

    B minimises |X - X B|^2 + lambda |B|^2 subject to diag(B) = 0, whose
    closed form is B = I - P diag(1 / diag(P)) with P = (X^T X + lambda I)^-1.
    It needs two dense n_items x n_items matrices, so it suits catalogues up to
    a few tens of thousands of items; a larger one is refused with an error
    that says how much memory it would take.

    Steck, "Embarrassingly Shallow Autoencoders for Sparse Data" (WWW 2019).

    Example:
        >>> from dotrec.data import Interactions
        >>> data = Interactions.from_ids(["a", "a", "b", "b", "c"], ["x", "y", "y", "z", "x"])
        >>> EASE(regularization=1.0).fit(data).recommend("a", k=5).to_list()[0][0][0]
        'z'
    """

    name = "ease"
    config_class = EASEConfig
    score_kind = "EASE reconstruction of the user's row (not a probability)"

    def __init__(self, **config):
        super().__init__(**config)
        self.weights: torch.Tensor | None = None

    @property
    def device(self) -> torch.device:
        return resolve_device(self.config.device)

    def _fit(self, data: Interactions, show_progress: bool) -> None:
        n = data.n_items
        needed = 3 * n * n * 8 / 2**30
        budget = self.config.max_memory_gb or available_memory_gb()
        if needed > budget:
            raise DotrecError(
                f"EASE needs dense {n} x {n} item-item matrices, about {needed:.1f} GB, but "
                f"only {budget:.1f} GB is available. Use ItemKNN or ALS for this catalogue, "
                "drop rare items first, or raise max_memory_gb if more memory is free."
            )
        start = time.perf_counter()
        with thread_count(self.config.num_threads) as threads:
            x = torch.from_numpy(self.seen.toarray()).to(self.device, torch.float64)
            gram = x.T @ x
            gram.diagonal().add_(self.config.regularization)
            precision = torch.linalg.inv(gram)
            weights = precision / (-precision.diagonal()).unsqueeze(0)
            weights.diagonal().zero_()
        self.weights = weights.float()
        self.fit_info.update(
            seconds=time.perf_counter() - start, device=str(self.device), num_threads=threads
        )

    def _score_users(self, user_idx: torch.Tensor) -> torch.Tensor:
        rows = rows_mask(self.seen, user_idx.cpu().numpy(), self.device)
        return rows.float() @ self.weights

    def _score_parts(self, user_idx: int, item_idx: int) -> dict[str, float]:
        # score(u, i) = sum over the user's training items j of B[j, i]
        history = self.seen.indices[self.seen.indptr[user_idx] : self.seen.indptr[user_idx + 1]]
        weights = self.weights[torch.from_numpy(history).to(self.device), item_idx]
        return _history_parts(self.items.ids[history], weights.double().cpu().numpy())

    def _fold_in(self, history) -> torch.Tensor:
        """The history rows themselves (dense 0/1): EASE scores a row as X B, exactly."""
        return torch.from_numpy(history.toarray()).to(self.device)

    def _score_folded(self, query: torch.Tensor) -> torch.Tensor:
        return query @ self.weights

    def _item_vectors(self) -> torch.Tensor:
        return self.weights

    def _tensors(self) -> dict[str, torch.Tensor]:
        return {"weights": self.weights}

    def _load_tensors(self, tensors: dict[str, torch.Tensor]) -> None:
        self.weights = tensors["weights"].to(self.device)
