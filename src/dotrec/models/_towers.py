"""The towers of the two-tower model: an MLP over an ID embedding and side features."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
import torch
from torch import nn

__all__ = ["Tower"]


class Tower(nn.Module):
    """An MLP over [ID embedding, side features]: (B,) ids and (B, F) features -> (B, D + 2).

    The MLP's last layer gives D vector entries and a bias b; the output
    ``[vector, 1, b]`` (user side) or ``[vector, b, 1]`` (item side) makes the
    dot product of a user's and an item's outputs ``<u, v> + b_u + b_i``, the
    score of biased matrix factorization, while staying one dot product.

    The embedding table has one row more than there are IDs: the last row,
    index ``n_ids``, stands for "no ID" and is what new entities get.
    """

    def __init__(
        self,
        n_ids: int,
        n_features: int,
        id_dim: int,
        hidden: Sequence[int],
        out_dim: int,
        side: Literal["user", "item"],
    ):
        super().__init__()
        self.n_ids, self.n_features, self.side = n_ids, n_features, side
        self.embedding = nn.Embedding(n_ids + 1, id_dim)
        widths = [id_dim + n_features, *hidden, out_dim + 1]
        layers: list[nn.Module] = []
        for fan_in, fan_out in zip(widths[:-1], widths[1:], strict=True):
            layers += [nn.Linear(fan_in, fan_out), nn.ReLU()]
        self.mlp = nn.Sequential(*layers[:-1])

    def forward(self, idx: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
        vector, bias = self.parts(idx, features)
        one = torch.ones_like(bias)
        return torch.cat([vector, one, bias] if self.side == "user" else [vector, bias, one], 1)

    def parts(self, idx: torch.Tensor, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The vectors (B, D) and biases (B, 1) that :meth:`forward` lays out."""
        out = self.mlp(torch.cat([self.embedding(idx), features], dim=1))
        return out[:, :-1], out[:, -1:]


def _reset(tower: Tower, std: float, generator: torch.Generator) -> None:
    """Seeded initialisation: normal ID embeddings, PyTorch's usual linear layers."""
    with torch.no_grad():
        tower.embedding.weight.normal_(0.0, std, generator=generator)
        for layer in tower.mlp:
            if isinstance(layer, nn.Linear):
                bound = 1.0 / np.sqrt(layer.in_features)
                layer.weight.uniform_(-bound, bound, generator=generator)
                layer.bias.uniform_(-bound, bound, generator=generator)
