"""Negative samplers: tensor code that never returns a user's known positives.

Every sampler draws for a batch of users at once, on the training device, and
returns an int64 tensor (B, n) of item indices with -1 where a slot holds no
negative (a user who has every item; an in-batch item that is one of the
user's positives). Each also says, through :meth:`log_prob`, how likely one
draw is to give an item, for the log-Q correction of a sampled softmax.

- :class:`UniformSampler`: uniform over the user's non-positives, exactly.
- :class:`PopularitySampler`: proportional to ``count ** alpha`` over the
  user's non-positives, exactly.
- :class:`InBatchSampler`: the items of the other rows of the batch, with the
  user's positives masked out.
- :class:`HardNegativeSampler`: the top-scored items of a uniform pool of
  non-positives, scored by the model being trained.
"""

import warnings
from typing import Protocol

import numpy as np
import scipy.sparse as sp
import torch

from dotrec.sampling._batch import HardNegativeSampler, InBatchSampler
from dotrec.sampling._popularity import PopularitySampler
from dotrec.sampling._positives import TABLE_BYTES
from dotrec.sampling._uniform import UniformSampler

__all__ = [
    "SAMPLERS",
    "TABLE_BYTES",
    "HardNegativeSampler",
    "InBatchSampler",
    "NegativeSampler",
    "PopularitySampler",
    "UniformSampler",
    "warn_users_without_negatives",
]

SAMPLERS = ("uniform", "popularity", "in-batch", "hard")
"""The sampler names :class:`~dotrec.models.MatrixFactorization` accepts."""


class NegativeSampler(Protocol):
    """What a model needs of a sampler; every sampler here has it."""

    @property
    def fills_every_slot(self) -> bool:
        """False when some slots may come back as -1 (nothing to draw)."""
        ...

    def users_without_negatives(self) -> np.ndarray:
        """Indices of users who have interacted with every item."""
        ...

    def sample(
        self,
        user_idx: torch.Tensor,
        n: int,
        generator: torch.Generator,
        item_idx: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Negatives (B, n) for users (B,) (``item_idx``: the batch's items); -1 for none."""
        ...

    def log_prob(self, user_idx: torch.Tensor, item_idx: torch.Tensor) -> torch.Tensor | None:
        """Log-probability of one draw giving each item, or None when unknown."""
        ...


def warn_users_without_negatives(
    sampler: NegativeSampler | sp.sparray,
    user_ids: np.ndarray,
    stacklevel: int = 4,
    pointwise: bool = True,
) -> bool:
    """Warn, naming them, about users who interacted with every item; True when there are any.

    No negative can be drawn for such a user: a pointwise loss (BCE) trains
    on their positives alone, and a loss that compares each positive with
    negatives (BPR, sampled softmax) learns nothing from them. The warning
    says which, rather than leaving it silent.

    Args:
        sampler: the sampler training will draw from, or the (users, items)
            matrix of known positives where negatives come from elsewhere
            (in-batch softmax).
        user_ids: raw user IDs by index (``Interactions.users.ids``).
        stacklevel: as for :func:`warnings.warn`; the default points at the
            caller of ``fit`` when a model's ``_fit`` calls this.
    """
    from dotrec.exceptions import DataWarning

    if sp.issparse(sampler):
        counts = np.diff(sp.csr_array(sampler).indptr)
        saturated = np.flatnonzero(counts >= sampler.shape[1])
    else:
        saturated = sampler.users_without_negatives()
    if len(saturated):
        names = ", ".join(repr(u) for u in user_ids[saturated[:10]])
        more = f" and {len(saturated) - 10} more" if len(saturated) > 10 else ""
        effect = (
            "so only their positives are used in training"
            if pointwise
            else "and this loss compares each positive with negatives, so they add nothing "
            "to training"
        )
        warnings.warn(
            f"{len(saturated)} user(s) interacted with every item ({names}{more}); no "
            f"negatives can be drawn for them, {effect}.",
            DataWarning,
            stacklevel=stacklevel,
        )
    return bool(len(saturated))
