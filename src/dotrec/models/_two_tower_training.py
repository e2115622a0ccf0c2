"""Training the two-tower model: the epoch's steps, their losses and the update."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch

from dotrec import losses
from dotrec.models._mf_module import PairLogits
from dotrec.models._towers import Tower
from dotrec.sampling import UniformSampler, warn_users_without_negatives
from dotrec.training import check_finite_parameters, step_batch_size

if TYPE_CHECKING:
    from dotrec.models.two_tower import TwoTower


class _Step:
    """One epoch of two-tower training: shuffling, ID dropout, the loss, the update.

    The features of every user and item are encoded once, before training
    (``user_x``, ``item_x``). A step runs each tower once per distinct input
    rather than once per training row: over every item (or the batch's
    distinct items, when the catalogue is larger than the batch), and over
    every user with and without its ID (or the batch's rows, when there are
    more users than rows). The training rows then index these outputs, and
    the BCE logits come from the fused pair kernel of matrix factorization
    (``PairLogits``), without building a (B, 1 + n, D) tensor.
    """

    def __init__(
        self,
        model: TwoTower,
        user_x: torch.Tensor,
        item_x: torch.Tensor,
        generator: torch.Generator,
    ):
        cfg = model.config
        self.model, self.cfg, self.generator = model, cfg, generator
        self.user_x, self.item_x = user_x, item_x
        device = user_x.device
        params = [*model.user_tower.parameters(), *model.item_tower.parameters()]
        self.params = params
        # The fused kernel updates each parameter in one pass (CPU and CUDA).
        self.optimizer = torch.optim.AdamW(
            params, lr=cfg.lr, weight_decay=cfg.weight_decay, fused=True
        )
        seen = model.seen
        self.indptr = torch.from_numpy(seen.indptr.astype(np.int64)).to(device)
        self.indices = torch.from_numpy(seen.indices.astype(np.int64)).to(device)
        self.slot = torch.full((seen.shape[1],), -1, dtype=torch.long, device=device)
        counts = torch.from_numpy(model.item_counts.astype(np.float64))
        self.log_q = torch.log(counts / counts.sum()).float().to(device)  # softmax only
        self.rows = torch.arange(cfg.batch_size, device=device)
        self.all_items = torch.arange(len(item_x), device=device)
        # every user's input with its ID and, when IDs are dropped, without
        tower, n_users = model.user_tower, len(user_x)
        self.user_drop = bool(tower.n_features) and cfg.id_dropout > 0
        self.all_users = torch.arange(n_users, device=device)
        self.all_user_x = user_x
        if self.user_drop:
            no_id = torch.full((n_users,), tower.n_ids, dtype=torch.long, device=device)
            self.all_users = torch.cat([self.all_users, no_id])
            self.all_user_x = torch.cat([user_x, user_x])
        self.sampler = UniformSampler(seen, device) if cfg.loss == "bce" else None
        # with in-batch softmax, a user who has every item has no negative in any batch
        warn_users_without_negatives(
            seen if self.sampler is None else self.sampler,
            model.users.ids,
            stacklevel=6,
            pointwise=self.sampler is not None,
        )

    def epoch(self, epoch: int, user_idx: torch.Tensor, item_idx: torch.Tensor) -> float:
        model, cfg = self.model, self.cfg
        model.user_tower.train()
        model.item_tower.train()
        order = torch.randperm(len(user_idx), generator=self.generator, device=user_idx.device)
        total = torch.zeros((), dtype=torch.float64, device=user_idx.device)
        batch_size = step_batch_size(cfg.batch_size, len(order))
        for start in range(0, len(order), batch_size):
            batch = order[start : start + batch_size]
            loss = self.step(user_idx.index_select(0, batch), item_idx.index_select(0, batch))
            total += loss * len(batch)  # summed on the device: no sync per step
        check_finite_parameters({f"tower.{i}": p for i, p in enumerate(self.params)}, epoch, cfg.lr)
        return total.item() / max(len(order), 1)

    def step(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """One update on the batch's positive pairs; returns the loss (0-d, on the device)."""
        loss, penalty = self.batch_loss(users, items)
        self.optimizer.zero_grad(set_to_none=True)
        (loss + self.cfg.l2 * penalty).backward()
        self.optimizer.step()
        return loss.detach()

    def batch_loss(
        self, users: torch.Tensor, items: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The loss of the pairs ``(users[b], items[b])`` and the L2 penalty of their outputs."""
        (user_vec, user_bias), row = self._user_outputs(users)
        if self.cfg.loss == "softmax":
            loss, item_norms = self._softmax(
                users, items, user_vec.index_select(0, row), user_bias.index_select(0, row)
            )
        else:
            loss, item_norms = self._bce(users, items, user_vec, user_bias, row)
        # L2 on the output vectors the batch used, as matrix factorization does on
        # its embeddings (a penalty on the ID embeddings alone is undone by the
        # layers that follow them).
        penalty = user_vec.square().sum(-1)[row].mean() + item_norms.mean()
        return loss, penalty

    def _bce(
        self, users, items, user_vec, user_bias, user_row
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """BCE against uniform negatives, and the squared norms (B, 1 + n) of the
        item vectors each row used; row b's user output is ``user_row[b]``."""
        negatives = self.sampler.sample(users, self.cfg.n_negatives, self.generator)
        candidates = torch.cat([items.unsqueeze(1), negatives.clamp(min=0)], 1)  # (B, 1 + n)
        (item_vec, item_bias), item_row = self._item_outputs(candidates)
        logits = _pair_logits(
            (user_vec, user_bias), (item_vec, item_bias), user_row, item_row
        )  # (B, 1 + n)
        mask = None if self.sampler.fills_every_slot else negatives >= 0
        loss = losses.bce(logits[:, 0], logits[:, 1:], mask)
        return loss, item_vec.square().sum(-1)[item_row]

    def _user_outputs(self, users: torch.Tensor):
        """The user tower's (vectors, biases), and the row of each batch row among them.

        Each batch row's ID is dropped with probability ``id_dropout``. When
        there are fewer users (times two, with and without ID) than batch rows,
        the tower runs over every user with and without its ID, and a row picks
        the output it needs; otherwise it runs over the batch's rows.
        """
        tower = self.model.user_tower
        if len(self.all_users) > len(users):
            return self._tower_parts(tower, users, self.user_x), self.rows[: len(users)]
        row = users
        if self.user_drop:
            drop = torch.rand(len(users), generator=self.generator, device=users.device)
            row = torch.where(drop < self.cfg.id_dropout, users + len(self.user_x), users)
        return tower.parts(self.all_users, self.all_user_x), row

    def _item_outputs(self, candidates: torch.Tensor):
        """The item tower's (vectors, biases) for the items of ``candidates``, and
        the row of each candidate among them.

        When the catalogue has no more items than the batch has candidates, the
        tower runs over all of them (no search for the distinct ones, no wait
        for its size on a GPU); otherwise over the distinct candidates.
        """
        if len(self.item_x) <= candidates.numel():
            idx, row = self.all_items, candidates
        else:
            idx, row = torch.unique(candidates, return_inverse=True)
        return self._tower_parts(self.model.item_tower, idx, self.item_x), row

    def _softmax(self, users, items, user_vec, user_bias) -> tuple[torch.Tensor, torch.Tensor]:
        """Softmax over the batch's distinct items, with log-Q, and the squared
        norms (B,) of the positives' vectors.

        Each row's negatives are the distinct items of the batch other than
        the user's known positives (its own positive included), so an item
        repeated in the batch counts once. q is each item's share of the
        training positives, the rate at which batches hold it.
        """
        unique, column = torch.unique(items, return_inverse=True)
        item_vec, item_bias = self._tower_parts(self.model.item_tower, unique, self.item_x)
        # (<u, v> + b_u + b_i) / temperature - log q, corrected in one pass over (B, U)
        scale = 1.0 / self.cfg.temperature
        offset = user_bias * scale + (item_bias.T * scale - self.log_q[unique])
        logits = torch.addmm(offset, user_vec, item_vec.T, alpha=scale)
        positive = logits.gather(1, column.unsqueeze(1)).squeeze(1)
        negative = logits.masked_fill(self._known_pairs(users, unique), float("-inf"))
        loss = losses.sampled_softmax(positive, negative)
        return loss, item_vec.square().sum(-1)[column]

    def _known_pairs(self, users: torch.Tensor, unique: torch.Tensor) -> torch.Tensor:
        """Bool (B, U): True where ``unique[c]`` is a training positive of ``users[b]``.

        Walks the batch users' positives (B times the mean degree) instead of
        looking up all B x U pairs: each positive that is among the batch's
        items marks its column.
        """
        self.slot[unique] = torch.arange(len(unique), device=unique.device)
        start, end = self.indptr[users], self.indptr[users + 1]
        degree = end - start
        row = torch.repeat_interleave(torch.arange(len(users), device=users.device), degree)
        first = torch.cumsum(degree, 0) - degree
        at = torch.arange(len(row), device=users.device) - first[row] + start[row]
        slot = self.slot[self.indices[at]]
        self.slot[unique] = -1
        hit = torch.zeros(len(users), len(unique), dtype=torch.bool, device=users.device)
        hit[row[slot >= 0], slot[slot >= 0]] = True
        return hit

    def _tower_parts(self, tower: Tower, idx: torch.Tensor, features: torch.Tensor):
        """The tower's (vectors, biases) for ``idx``, each ID dropped with
        probability ``id_dropout`` on a side with features."""
        x = features.index_select(0, idx)
        if tower.n_features and self.cfg.id_dropout > 0:
            drop = torch.rand(len(idx), generator=self.generator, device=idx.device)
            idx = idx.masked_fill(drop < self.cfg.id_dropout, tower.n_ids)
        return tower.parts(idx, x)


def _pair_logits(
    users: tuple[torch.Tensor, torch.Tensor],
    items: tuple[torch.Tensor, torch.Tensor],
    user_row: torch.Tensor,
    item_row: torch.Tensor,
    fused: bool | None = None,
) -> torch.Tensor:
    """``<u, v> + b_u + b_i`` of rows (B,) of ``users`` against rows (B, M) of ``items``.

    ``users`` and ``items`` are tower outputs as (vectors, biases). ``fused``:
    matrix factorization's pair kernel, which never builds the (B, M, D)
    gathered rows (by default on the CPU only: it waits for the number of
    distinct pairs, a sync on a GPU); otherwise the gathered rows' dot products.
    """
    (user_vec, user_bias), (item_vec, item_bias) = users, items
    if fused is None:
        fused = user_vec.device.type == "cpu"
    if fused:
        return PairLogits.apply(user_vec, item_vec, user_bias, item_bias, user_row, item_row)
    user = user_vec.index_select(0, user_row).unsqueeze(1)  # (B, 1, D)
    item = item_vec.index_select(0, item_row.reshape(-1)).view(*item_row.shape, -1)
    bias = user_bias.index_select(0, user_row) + item_bias.view(-1)[item_row]
    return torch.linalg.vecdot(user, item) + bias
