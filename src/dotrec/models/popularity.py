"""The popularity baseline: every user gets the most interacted-with items."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from dotrec.artifact import register
from dotrec.data import Interactions
from dotrec.models.base import ModelConfig, Recommender

__all__ = ["Popularity", "PopularityConfig"]


@dataclass
class PopularityConfig(ModelConfig):
    """Popularity has nothing to tune."""


@register
class Popularity(Recommender):
    """Scores each item by the number of users who interacted with it in training.

    The same list for everyone (minus each user's seen items): the baseline a
    personalised model has to beat.

    Example:
        >>> from dotrec.data import Interactions
        >>> data = Interactions.from_ids(["a", "b", "b", "c"], ["x", "x", "y", "z"])
        >>> Popularity().fit(data).recommend("c", k=2).to_list()[0]
        [('x', 2.0), ('y', 1.0)]
    """

    name = "popularity"
    config_class = PopularityConfig
    score_kind = "number of training users who interacted with the item"

    def _fit(self, data: Interactions, show_progress: bool) -> None:
        self._counts = torch.from_numpy(self.item_counts.astype(np.float32))

    def _score_users(self, user_idx: torch.Tensor) -> torch.Tensor:
        return self._counts.unsqueeze(0).expand(len(user_idx), -1)

    def _score_pairs(self, user_idx: torch.Tensor, item_idx: torch.Tensor) -> torch.Tensor:
        return self._counts[item_idx]

    def _fold_in(self, history) -> int:
        """Popularity ignores who asks: a history is only a count of rows."""
        return history.shape[0]

    def _score_folded(self, query: int) -> torch.Tensor:
        return self._counts.unsqueeze(0).expand(query, -1)

    item_similarity = False

    def _item_vectors(self) -> torch.Tensor:
        return self._counts.unsqueeze(1)

    def _similarities(self, item_idx: torch.Tensor) -> torch.Tensor:
        """The most popular other items (popularity knows no similarity): counts, not cosines."""
        return self._counts.unsqueeze(0).expand(len(item_idx), -1)

    def _tensors(self) -> dict[str, torch.Tensor]:
        return {"counts": self._counts}

    def _load_tensors(self, tensors: dict[str, torch.Tensor]) -> None:
        self._counts = tensors["counts"].float()
