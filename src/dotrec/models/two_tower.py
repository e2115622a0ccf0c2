"""A two-tower model: user and item vectors from IDs and side features."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch

from dotrec.artifact import register
from dotrec.data import Dataset, FeatureEncoder, Interactions, Vocabulary, ids_to_text
from dotrec.models._foldin import mean_item_vectors
from dotrec.models._settings import SEED_MAX, check_range
from dotrec.models._towers import Tower, _reset
from dotrec.models._two_tower_training import _pair_logits as _pair_logits
from dotrec.models._two_tower_training import _Step
from dotrec.models.base import ModelConfig, Recommendations, Recommender
from dotrec.topk import topk
from dotrec.training import (
    FitLog,
    epoch_loop,
    resolve_device,
    seeded_generators,
    thread_count,
)

__all__ = ["Tower", "TwoTower", "TwoTowerConfig"]

_log = logging.getLogger(__name__)


@dataclass
class TwoTowerConfig(ModelConfig):
    """Settings of :class:`TwoTower`; the defaults suit MovieLens-like data.

    Chosen on MovieLens 100K (every rating a positive, ``random_split(0.2,
    seed=0)``, with genres, age, gender and occupation): linear towers with
    BCE against 8 uniform negatives reach NDCG@10 0.422 in about 4-5 s of
    training on two busy CPU cores, under four times matrix factorization
    (``benchmarks/peers.py``). A hidden layer of 128 loses about 0.03 there;
    the in-batch softmax loses about 0.2 and, as each row's negatives are the
    batch's distinct items, takes about 15 times as long. ``batch_size=16384``
    with ``lr=0.03`` and 40 epochs reaches 0.431 in about 3 s, but a hidden
    layer then loses 0.26 and the softmax takes three times as long again, so
    the defaults stay at the settings that hold for every tower shape.
    Deeper towers pay off with richer features.
    """

    embedding_dim: int = 64
    """Length of the user and item vectors whose dot product is the score."""
    id_dim: int = 64
    """Length of the ID embedding that enters each tower beside the features."""
    hidden: tuple[int, ...] = ()
    """Widths of each tower's hidden layers (ReLU); empty: one linear map."""
    loss: Literal["softmax", "bce"] = "bce"
    """``"softmax"``: softmax cross-entropy of each positive against the other
    items of its batch, with the log-Q correction for how often each item is
    a positive (``dotrec.losses.sampled_softmax``); ``"bce"``: binary
    cross-entropy against ``n_negatives`` uniform negatives per positive."""
    temperature: float = 0.1
    """Softmax only: logits are dot products divided by this."""
    n_negatives: int = 8
    """BCE only: negatives per positive, drawn uniformly from the items the
    user has not interacted with."""
    epochs: int = 30
    """Passes over the training positives."""
    lr: float = 0.01
    """AdamW learning rate (tuned together with ``batch_size``: a larger batch
    takes a larger rate; deeper towers want a smaller one)."""
    weight_decay: float = 0.0
    """AdamW's decoupled weight decay on every parameter."""
    l2: float = 0.005
    """L2 penalty on the output vectors of the batch's users and items (mean
    squared norm of each side)."""
    batch_size: int = 4096
    """Positives per step; with the softmax loss, also the negatives of each row,
    so the softmax's time and memory grow with it times the batch's distinct
    items. A step runs each tower over every user and item (or the batch's
    own, when there are more), so a large batch means fewer steps at about
    the same cost each. On data of fewer than 4 batches it shrinks so that an
    epoch takes 4 steps."""
    id_dropout: float = 0.1
    """On a side with features, the chance that a training row's ID embedding
    is replaced by the "no ID" embedding that new users and items get, so the
    tower learns to place them from their features alone."""
    init_std: float = 0.1
    """Standard deviation of the normal initialisation of the ID embeddings."""
    max_categories: int = 1000
    """Per categorical feature column, the most frequent values kept."""
    seed: int = 0
    """Seed of initialisation, shuffling, dropout and sampling."""
    device: str = "auto"
    """``"auto"`` (CUDA when available), ``"cpu"`` or ``"cuda"``."""
    num_threads: int | None = 1
    """Torch CPU threads during fit; None keeps Torch's setting. One by default,
    as for matrix factorization: each step's tensors are small, and when other
    processes compete for the cores, threads waiting on each other make a fit
    many times slower (on MovieLens 100K, with other jobs on both of two
    cores, two threads took 53 s against 3.6 s with one). A seed gives
    identical models for the same thread count."""

    def __post_init__(self) -> None:
        self.hidden = tuple(int(width) for width in self.hidden)  # JSON gives a list
        names = ("embedding_dim", "id_dim", "epochs", "batch_size", "n_negatives", "max_categories")
        check_range(self, *names, low=1)
        check_range(self, "num_threads", low=1, or_none=True)
        if any(width < 1 for width in self.hidden):
            raise ValueError(f"hidden widths must be at least 1, got {self.hidden!r}")
        if self.loss not in ("softmax", "bce"):
            raise ValueError(f"loss must be 'softmax' or 'bce', got {self.loss!r}")
        check_range(self, "lr", "temperature", "init_std", low=0, low_open=True)
        check_range(self, "l2", "weight_decay", low=0)
        check_range(self, "id_dropout", low=0, high=1, high_open=True)
        check_range(self, "seed", low=0, high=SEED_MAX)


@register
class TwoTower(Recommender):
    """Two towers, one for users and one for items, whose output dot product is the score.

    Each tower is an MLP over the concatenation of an ID embedding and the
    entity's encoded side features (a :class:`~dotrec.data.FeatureEncoder`:
    one-hot categories, multi-hot genres, standardised numbers), so a user or
    item seen in training is described by both, and a new one by its features
    alone (:meth:`recommend_for_features`, :meth:`add_items`). Without
    features the towers take IDs only.

    Training uses the observed positives (rows labelled 0 are not used). The
    default loss is BCE against uniform negatives drawn from the items the
    user has not interacted with; ``loss="softmax"`` uses the other items of
    the batch as negatives, with the log-Q correction, and masks out those
    that are known positives of the row's user (see ``TwoTowerConfig``).

    Yi et al., "Sampling-Bias-Corrected Neural Modeling for Large Corpus Item
    Recommendations" (RecSys 2019); the towers follow Covington, Adams and
    Sargin, "Deep Neural Networks for YouTube Recommendations" (RecSys 2016),
    and the ID dropout for new entities Volkovs, Yu and Poutanen, "DropoutNet"
    (NeurIPS 2017).

    Example:
        >>> import pandas as pd
        >>> from dotrec.data import Interactions
        >>> data = Interactions.from_ids(["a", "a", "b", "b", "c"], ["x", "y", "y", "z", "x"])
        >>> genres = pd.DataFrame({"genres": ["Drama", "Drama|War", "War"]}, index=["x", "y", "z"])
        >>> model = TwoTower(epochs=2, device="cpu").fit(data, item_features=genres)
        >>> model.add_items(pd.DataFrame({"genres": ["War"]}, index=["new"])).n_items
        4
    """

    name = "two-tower"
    config_class = TwoTowerConfig
    score_kind = "dot product of the tower outputs (not a probability)"
    dot_product = True

    def __init__(self, **config):
        super().__init__(**config)
        self.user_tower: Tower | None = None
        self.item_tower: Tower | None = None
        self.user_vectors: torch.Tensor | None = None
        self.item_vectors: torch.Tensor | None = None
        self.user_encoder: FeatureEncoder | None = None
        self.item_encoder: FeatureEncoder | None = None
        self._features: tuple[pd.DataFrame | None, pd.DataFrame | None] = (None, None)

    @property
    def device(self) -> torch.device:
        return resolve_device(self.config.device)

    @property
    def n_items(self) -> int:
        """Items in the catalogue, those added with :meth:`add_items` included."""
        self._check_fitted()
        return len(self.items)

    # --- fitting ----------------------------------------------------------------

    def fit(
        self,
        interactions: Interactions,
        validation: Interactions | None = None,
        *,
        user_features: pd.DataFrame | None = None,
        item_features: pd.DataFrame | None = None,
        show_progress: bool = False,
    ) -> TwoTower:
        """Train on ``interactions`` and, when given, side features; returns ``self``.

        Args:
            interactions: the training interactions.
            validation: accepted for the common contract; not used.
            user_features: a DataFrame indexed by raw user ID, one column per
                feature (numbers, categories, or ``|``-joined multi-hot text
                such as genres). Users missing from it get zeros.
            item_features: the same for items, indexed by raw item ID.
            show_progress: show a progress bar with the loss.

        Raises:
            TypeError: features that are not DataFrames.
            ValueError: features with repeated IDs in the index.
        """
        for name, frame in (("user_features", user_features), ("item_features", item_features)):
            if frame is not None and not isinstance(frame, pd.DataFrame):
                raise TypeError(
                    f"{name} must be a pandas DataFrame indexed by raw ID, got "
                    f"{type(frame).__name__}"
                )
        self._features = (user_features, item_features)
        try:
            return super().fit(interactions, validation, show_progress=show_progress)
        finally:
            self._features = (None, None)

    @staticmethod
    def dataset_features(dataset: Dataset) -> dict[str, pd.DataFrame]:
        """The side features of a named dataset, as keywords for :meth:`fit`.

        MovieLens: each item's genres; for ml-100k also each user's age,
        gender and occupation (not the zip code). Empty for other data.
        """
        features = {}
        if dataset.items is not None and "genres" in dataset.items:
            if (dataset.items["genres"].astype(str) != "").any():
                features["item_features"] = dataset.items[["genres"]]
        if dataset.users is not None:
            columns = [c for c in ("age", "gender", "occupation") if c in dataset.users]
            if columns:
                features["user_features"] = dataset.users[columns]
        return features

    def _fit(self, data: Interactions, show_progress: bool) -> None:
        cfg, device = self.config, self.device
        _, generator = seeded_generators(cfg.seed, device)
        init = torch.Generator().manual_seed(cfg.seed)
        user_frame, item_frame = self._features
        self.user_encoder, user_x = _encode(user_frame, data.users, cfg.max_categories, "user")
        self.item_encoder, item_x = _encode(item_frame, data.items, cfg.max_categories, "item")
        self.fit_info["feature_encoders"] = {
            "user": self.user_encoder and self.user_encoder.to_dict(),
            "item": self.item_encoder and self.item_encoder.to_dict(),
        }
        self.user_tower, self.item_tower = self._towers(
            data.n_users, user_x.shape[1], data.n_items, item_x.shape[1]
        )
        for tower in (self.user_tower, self.item_tower):
            _reset(tower, cfg.init_std, init)
            tower.to(device)
        user_x, item_x = torch.from_numpy(user_x).to(device), torch.from_numpy(item_x).to(device)

        seen = self.seen.tocoo()
        user_idx = torch.from_numpy(seen.row.astype(np.int64)).to(device)
        item_idx = torch.from_numpy(seen.col.astype(np.int64)).to(device)
        step = _Step(self, user_x, item_x, generator)
        start = time.perf_counter()
        with thread_count(cfg.num_threads) as threads:
            losses_ = epoch_loop(
                lambda epoch: step.epoch(epoch, user_idx, item_idx),
                cfg.epochs,
                lr=cfg.lr,
                show_progress=show_progress,
                desc="two-tower",
            )
            self._cache_vectors(user_x, item_x)
        log = FitLog(losses_, time.perf_counter() - start, threads, str(device), cfg.seed)
        self.fit_info.update(log.to_dict())

    def _towers(self, n_users: int, user_width: int, n_items: int, item_width: int):
        cfg = self.config
        return (
            Tower(n_users, user_width, cfg.id_dim, cfg.hidden, cfg.embedding_dim, "user"),
            Tower(n_items, item_width, cfg.id_dim, cfg.hidden, cfg.embedding_dim, "item"),
        )

    @torch.no_grad()
    def _cache_vectors(self, user_x: torch.Tensor, item_x: torch.Tensor) -> None:
        """The output vectors of every known user and item, for scoring."""
        self.user_tower.eval()
        self.item_tower.eval()
        device = user_x.device
        self.user_vectors = self.user_tower(torch.arange(len(user_x), device=device), user_x)
        self.item_vectors = self.item_tower(torch.arange(len(item_x), device=device), item_x)

    # --- new users and items ------------------------------------------------------

    @torch.no_grad()
    def recommend_for_features(
        self,
        user_features: pd.DataFrame,
        k: int = 10,
        *,
        items: Sequence[object] | None = None,
    ) -> Recommendations:
        """Top-``k`` items for users described only by their features.

        For users who were not in training (a known user is treated as new
        too: its ID embedding and history are not used).

        Args:
            user_features: one row per user, the columns the model was
                trained with, indexed by the (raw) IDs to report.
            k: list length.
            items: restrict the candidates to these raw item IDs.

        Returns:
            :class:`~dotrec.models.base.Recommendations`, one row per user, in
            the order of ``user_features``.

        Raises:
            ValueError: the model was trained without user features, or a
                feature column is missing.
        """
        self._check_fitted()
        if self.user_encoder is None:
            raise ValueError(
                "this two-tower model was trained without user features, so it cannot place a "
                "user by features; fit it with user_features=..."
            )
        query = ids_to_text(user_features.index)
        vectors = self._cold_vectors(self.user_tower, self.user_encoder, user_features)
        candidates = None
        if items is not None:
            candidates = torch.zeros(len(self.items), dtype=torch.bool, device=self.device)
            candidates[torch.from_numpy(self.items.index(list(items), "item"))] = True
        result = topk(vectors @ self.item_vectors.T, k, candidates=candidates)
        return self._package(
            query,
            result.indices.cpu().numpy(),
            result.scores.cpu().numpy(),
            result.counts.cpu().numpy(),
            np.zeros(len(query), dtype=bool),
        )

    @torch.no_grad()
    def add_items(self, item_features: pd.DataFrame) -> TwoTower:
        """Add new items, placed by their features alone, to the catalogue; returns ``self``.

        The new items can then be recommended, scored and queried with
        :meth:`similar_items` like the others (they have no interactions, so
        their popularity is 0), and are saved with the model.

        Raises:
            ValueError: the model was trained without item features, or an ID
                is already in the catalogue (or repeated).
        """
        self._check_fitted()
        if self.item_encoder is None:
            raise ValueError(
                "this two-tower model was trained without item features, so new items cannot "
                "be placed; fit it with item_features=..."
            )
        new_ids = ids_to_text(item_features.index)
        known = [item_id for item_id in new_ids if item_id in self.items]
        if known or len(set(new_ids)) < len(new_ids):
            raise ValueError(
                f"add_items takes new, distinct item IDs; already known or repeated: "
                f"{(known or list(pd.Index(new_ids)[pd.Index(new_ids).duplicated()]))[:10]}"
            )
        vectors = self._cold_vectors(self.item_tower, self.item_encoder, item_features)
        self.item_vectors = torch.cat([self.item_vectors, vectors])
        self.items = Vocabulary(np.concatenate([self.items.ids, new_ids]))
        seen = self.seen
        self.seen = sp.csr_array(
            (seen.data, seen.indices, seen.indptr), shape=(seen.shape[0], len(self.items))
        )
        self.item_counts = np.concatenate([self.item_counts, np.zeros(len(new_ids), np.int64)])
        _log.info("added %d items to the two-tower catalogue", len(new_ids))
        return self

    def _cold_vectors(
        self, tower: Tower, encoder: FeatureEncoder, frame: pd.DataFrame
    ) -> torch.Tensor:
        if not isinstance(frame, pd.DataFrame):
            raise TypeError(f"features must be a pandas DataFrame, got {type(frame).__name__}")
        tower.eval()
        x = torch.from_numpy(encoder.transform(frame)).to(self.device)
        no_id = torch.full((len(frame),), tower.n_ids, dtype=torch.long, device=self.device)
        return tower(no_id, x)

    # --- scoring and persistence ---------------------------------------------------

    def _score_users(self, user_idx: torch.Tensor) -> torch.Tensor:
        return self.user_vectors[user_idx.to(self.device)] @ self.item_vectors.T

    def _score_pairs(self, user_idx: torch.Tensor, item_idx: torch.Tensor) -> torch.Tensor:
        users = self.user_vectors[user_idx.to(self.device)]
        return (users * self.item_vectors[item_idx.to(self.device)]).sum(-1)

    def _score_parts(self, user_idx: int, item_idx: int) -> dict[str, float]:
        # user output [v_u, 1, b_u], item output [v_i, b_i, 1] (see Tower.forward)
        user, item = self.user_vectors[user_idx].double(), self.item_vectors[item_idx].double()
        return {
            "user bias b_u": float(user[-1] * item[-1]),
            "item bias b_i": float(user[-2] * item[-2]),
            "dot product <v_u, v_i>": float(user[:-2] @ item[:-2]),
        }

    def _item_vectors(self) -> torch.Tensor:
        return self.item_vectors[:, :-2]  # without the bias and the constant

    def _query_vectors(self, user_idx: torch.Tensor) -> torch.Tensor:
        return self.user_vectors[user_idx.to(self.device)]  # [u, 1, b_u]

    def _item_vectors_for_search(self) -> torch.Tensor:
        return self.item_vectors  # [v, b_i, 1]

    @torch.no_grad()
    def _fold_in(self, history: sp.csr_array) -> torch.Tensor:
        """The mean of the history's item vectors as the user's vector, ``[mean v, 1, 0]``.

        The user tower places a user from its ID and features, and a history
        gives neither (a model with user features places feature-only users
        with :meth:`recommend_for_features`). So the query is the average of
        the history items' tower outputs: the score of an item is its mean dot
        product with them plus its bias.
        """
        mean = mean_item_vectors(history, self.item_vectors[:, :-2])
        one, zero = torch.ones_like(mean[:, :1]), torch.zeros_like(mean[:, :1])
        return torch.cat([mean, one, zero], 1)

    def _tensors(self) -> dict[str, torch.Tensor]:
        tensors = {"user_vectors": self.user_vectors, "item_vectors": self.item_vectors}
        for side, tower in (("user_tower", self.user_tower), ("item_tower", self.item_tower)):
            tensors.update({f"{side}.{k}": v for k, v in tower.state_dict().items()})
        return tensors

    def _load_tensors(self, tensors: dict[str, torch.Tensor]) -> None:
        # The encoders are plain JSON in the training record (model.json), which
        # the loader restores before the tensors.
        encoders = self.fit_info.get("feature_encoders") or {}
        self.user_encoder = encoders.get("user") and FeatureEncoder.from_dict(encoders["user"])
        self.item_encoder = encoders.get("item") and FeatureEncoder.from_dict(encoders["item"])
        width = {"user": 0, "item": 0}
        for side, encoder in (("user", self.user_encoder), ("item", self.item_encoder)):
            width[side] = encoder.width if encoder else 0
        n_users = tensors["user_tower.embedding.weight"].shape[0] - 1
        n_items = tensors["item_tower.embedding.weight"].shape[0] - 1
        self.user_tower, self.item_tower = self._towers(
            n_users, width["user"], n_items, width["item"]
        )
        for side, tower in (("user_tower", self.user_tower), ("item_tower", self.item_tower)):
            state = {
                k.removeprefix(side + "."): v
                for k, v in tensors.items()
                if k.startswith(side + ".")
            }
            tower.load_state_dict(state)
            tower.to(self.device).eval()
        self.user_vectors = tensors["user_vectors"].to(self.device)
        self.item_vectors = tensors["item_vectors"].to(self.device)


def _encode(
    frame: pd.DataFrame | None, vocab: Vocabulary, max_categories: int, kind: str
) -> tuple[FeatureEncoder | None, np.ndarray]:
    """The encoder fitted on ``frame`` and the features of ``vocab``'s IDs, in order."""
    if frame is None or frame.shape[1] == 0:
        return None, np.zeros((len(vocab), 0), dtype=np.float32)
    index = pd.Index(ids_to_text(frame.index))
    if not index.is_unique:
        raise ValueError(
            f"{kind}_features repeats the {kind} IDs {list(index[index.duplicated()][:5])}; "
            f"give one row per {kind}"
        )
    encoder = FeatureEncoder.fit(frame, max_categories=max_categories)
    aligned = frame.set_axis(index).reindex(vocab.ids)
    _log.info("%s features: %r", kind, encoder)
    return encoder, encoder.transform(aligned)
