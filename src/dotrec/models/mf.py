"""Matrix factorization trained by mini-batches: BCE, BPR, sampled softmax or MSE."""

from __future__ import annotations

import logging
import math
import time
import warnings
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch

from dotrec import losses
from dotrec.artifact import register
from dotrec.data import Interactions
from dotrec.exceptions import DataWarning, DotrecError
from dotrec.metrics import METRICS
from dotrec.models._foldin import solve_user_vectors
from dotrec.models._mf_module import MFModule, PairLogits, WeightedSquaredNorm
from dotrec.models._settings import SEED_MAX, check_range
from dotrec.models.base import ModelConfig, Recommender
from dotrec.ranking import overlap_mask, rank_users, to_model_space
from dotrec.sampling import (
    SAMPLERS,
    HardNegativeSampler,
    InBatchSampler,
    NegativeSampler,
    PopularitySampler,
    UniformSampler,
    warn_users_without_negatives,
)
from dotrec.training import (
    EarlyStopping,
    FitLog,
    check_finite_parameters,
    epoch_loop,
    parse_metric,
    resolve_device,
    seeded_generators,
    step_batch_size,
    thread_count,
)

__all__ = ["BPR", "BPRConfig", "MFConfig", "MFModule", "MatrixFactorization", "PairLogits"]

_log = logging.getLogger(__name__)

_N_NEGATIVES_WHERE = (
    "command line: --n-negatives of dotrec train, --set n_negatives=N of dotrec tune; "
    "in a run config, n_negatives in [model.settings]"
)

Loss = Literal["bce", "bpr", "softmax", "mse"]
Sampler = Literal["uniform", "popularity", "in-batch", "hard"]
LOSSES = ("bce", "bpr", "softmax", "mse")


@dataclass
class MFConfig(ModelConfig):
    """Settings of :class:`MatrixFactorization`; the defaults suit MovieLens-like data.

    The defaults were chosen by a grid on MovieLens 100K (every rating a
    positive, ``random_split(0.2, seed=0)``): NDCG@10 0.436 (mean of four
    seeds) in about 2 s of training on two CPU cores (``benchmarks/ml100k.py``).
    """

    embedding_dim: int = 64
    """Length of each user and item vector."""
    epochs: int = 30
    """Passes over the training rows (fewer when early stopping ends training)."""
    lr: float = 0.02
    """AdamW learning rate (tuned together with ``batch_size``: a larger batch
    takes a larger rate)."""
    l2: float = 0.01
    """L2 penalty on the embeddings used in each batch (so frequent users and
    items are regularised in proportion to how often they appear). Ranking
    quality is sensitive to it: on MovieLens 100K, 0.008 and 0.015 both lose
    about 0.01 NDCG@10."""
    weight_decay: float = 0.0
    """AdamW's decoupled weight decay, applied to every parameter each step."""
    n_negatives: int = 4
    """Sampled negatives per training row, drawn by ``sampler`` from the items
    the user has not interacted with (not used by ``loss="mse"``)."""
    batch_size: int = 16384
    """Training rows per step (each with its ``n_negatives``). Larger batches
    mean fewer, cheaper-per-row steps on the CPU.
    On data of fewer than 4 batches it shrinks so that an epoch takes 4 steps."""
    init_std: float = 0.1
    """Standard deviation of the normal initialisation of the embeddings."""
    seed: int = 0
    """Seed of initialisation, shuffling and sampling."""
    device: str = "auto"
    """``"auto"`` (CUDA when available), ``"cpu"`` or ``"cuda"``."""
    num_threads: int | None = 1
    """Torch CPU threads during fit; None keeps Torch's setting. One by default:
    each step's tensors are small, so on MovieLens-sized data a second thread
    saves little, and when other processes compete for the cores, threads
    waiting on each other make a fit many times slower. A seed gives identical
    models for the same thread count; another count may change the last bits
    of the sums."""
    loss: Loss = "bce"
    """``"bce"``: binary cross-entropy, positives 1 and negatives 0 (rows
    labelled 0 are observed negatives); ``"bpr"``: pairwise, each positive
    above each of its negatives; ``"softmax"``: each positive against its
    negatives in a softmax, with the log-Q correction; ``"mse"``: explicit
    ratings, squared error to the ``rating`` column, no negatives. The other
    defaults suit ``"bce"``; MSE wants a larger ``l2``: on MovieLens 100K,
    test RMSE 0.90 with ``l2=0.1`` against 1.11 with the default."""
    sampler: Sampler = "uniform"
    """How negatives are drawn (see :mod:`dotrec.sampling`): ``"uniform"``
    over the user's non-positives, ``"popularity"`` in proportion to
    ``count ** popularity_alpha``, ``"in-batch"`` from other rows of the
    batch, ``"hard"`` the top-scored of a uniform pool."""
    popularity_alpha: float = 0.75
    """Exponent of the item counts for ``sampler="popularity"``."""
    hard_pool: int = 32
    """Uniform candidates per row scored for ``sampler="hard"`` (at least
    ``n_negatives``)."""
    logq_correction: bool = True
    """For ``loss="softmax"``: subtract ``log(n_negatives * q)`` from each
    negative's logit, q the sampler's probability of the draw, so the loss
    estimates a softmax over the whole catalogue (no correction for the hard
    sampler, whose q is unknown)."""
    early_stopping_metric: str = "ndcg@10"
    """Ranking metric (``NAME@K``, NAME from :data:`dotrec.metrics.METRICS`)
    computed on the ``validation`` data given to ``fit``; the weights of the
    epoch with its highest value are kept."""
    patience: int | None = 5
    """Evaluations without improvement before training stops; None trains
    every epoch (and still keeps the best one)."""
    eval_every: int = 2
    """Epochs between evaluations on the validation data."""

    def __post_init__(self) -> None:
        check_range(self, "embedding_dim", "epochs", "batch_size", "hard_pool", "eval_every", low=1)
        check_range(self, "patience", "num_threads", low=1, or_none=True)
        check_range(self, "n_negatives", low=0)
        check_range(self, "lr", "init_std", low=0, low_open=True)
        check_range(self, "l2", "weight_decay", "popularity_alpha", low=0)
        check_range(self, "seed", low=0, high=SEED_MAX)
        if self.loss not in LOSSES:
            raise ValueError(f"loss must be one of {', '.join(LOSSES)}; got {self.loss!r}")
        if self.sampler not in SAMPLERS:
            raise ValueError(f"sampler must be one of {', '.join(SAMPLERS)}; got {self.sampler!r}")
        if self.loss in ("bpr", "softmax") and self.n_negatives < 1:
            raise ValueError(
                f"loss={self.loss!r} ranks each positive above sampled negatives, so it needs "
                f"n_negatives >= 1, got {self.n_negatives!r} (command line: --n-negatives)."
            )
        if self.sampler == "hard" and self.hard_pool < self.n_negatives:
            raise ValueError(
                f"hard_pool ({self.hard_pool}) must be at least n_negatives ({self.n_negatives})"
            )
        parse_metric(self.early_stopping_metric)


_DRAWN = {
    "uniform": "uniformly sampled",
    "popularity": "popularity-sampled",
    "in-batch": "in-batch",
    "hard": "hard (top-scored) sampled",
}


@register
class MatrixFactorization(Recommender):
    """Biased matrix factorization, trained with BCE, BPR, sampled softmax or MSE.

    The score of a (user, item) pair is ``<p_u, q_i> + b_u + b_i``, trained
    with AdamW over mini-batches of training rows. ``loss`` picks the
    objective (:mod:`dotrec.losses`) and ``sampler`` how the negatives of each
    row are drawn (:mod:`dotrec.sampling`), never among the user's positives:

    - ``"bce"`` (default): ``torch.nn.BCEWithLogitsLoss`` with label 1 for
      each positive, 0 for each row labelled 0 in the data (an observed
      negative) and for ``n_negatives`` sampled items per row. A score is a
      logit of "observed" against that sampling distribution: it ranks well,
      but ``sigmoid(score)`` is not the probability that the user interacts
      with the item. Calibrate on held-out data when a probability is needed.
    - ``"bpr"``: each positive row against its sampled negatives, pairwise
      (Rendle et al., UAI 2009). Scores only order a user's items.
    - ``"softmax"``: each positive against its negatives in a softmax, the
      negatives' logits corrected by ``log(n * q)`` (Yi et al., RecSys 2019),
      so scores approximate logits of a softmax over the catalogue.
    - ``"mse"``: explicit ratings; the squared error of the score to the
      ``rating`` of every row, no negatives. Scores are predicted ratings.

    With ``validation`` data, ``fit`` ranks it every ``eval_every`` epochs,
    stops after ``patience`` evaluations without improvement of
    ``early_stopping_metric`` and keeps the best epoch's weights; the record
    is in ``fit_info["validation"]``.

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
    dot_product = True

    FOLD_IN_NEGATIVES = 32
    """Negatives drawn per history item when folding in (weighted to stand for
    the model's ``n_negatives``): more than training's, as each is drawn once."""
    FOLD_IN_STEPS = 60
    """Adam steps of a fold-in (learning rate 0.05, cosine-decayed)."""

    def __init__(self, **config):
        super().__init__(**config)
        self.module: MFModule | None = None
        self._fold_in_draws: torch.Tensor | None = None

    @property
    def score_kind(self) -> str:  # type: ignore[override]  # depends on the loss
        """What a score means under this model's loss and sampler."""
        loss = self.config.loss
        if loss == "mse":
            return "predicted rating"
        if loss == "bpr":
            return "BPR preference score (only the order within a user's list means anything)"
        if loss == "softmax":
            return "logit of a softmax over the catalogue (not a probability)"
        return f"logit against {_DRAWN[self.config.sampler]} negatives (not a probability)"

    @property
    def predicts_ratings(self) -> bool:  # type: ignore[override]  # depends on the loss
        """True for ``loss="mse"``: scores are predicted ratings."""
        return self.config.loss == "mse"

    @property
    def device(self) -> torch.device:
        return resolve_device(self.config.device)

    def _fit(
        self, data: Interactions, show_progress: bool, validation: Interactions | None = None
    ) -> None:
        cfg = self.config
        device = self.device
        _, generator = seeded_generators(cfg.seed, device)
        cpu_generator = torch.Generator().manual_seed(cfg.seed)
        self.module = MFModule(data.n_users, data.n_items, cfg.embedding_dim).to(device)
        self.module.reset_parameters(cfg.init_std, cpu_generator)
        user_idx, item_idx, target = self._training_rows(data, device)
        if cfg.loss == "mse":  # item biases start at the mean: factors learn the deviations
            with torch.no_grad():
                self.module.item_bias.weight.fill_(target.double().mean().item())

        sampler = None if cfg.loss == "mse" else self._sampler(device)
        masked = sampler is not None and not sampler.fills_every_slot
        if sampler is not None:
            warn_users_without_negatives(sampler, data.users.ids, pointwise=cfg.loss == "bce")
        stopping = None if validation is None else self._early_stopping(validation)
        # The fused kernel updates each parameter in one pass (CPU and CUDA).
        optimizer = torch.optim.AdamW(
            self.module.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay, fused=True
        )

        batch_size = step_batch_size(cfg.batch_size, len(user_idx))

        def run_epoch(epoch: int) -> float:
            order = torch.randperm(len(user_idx), generator=generator, device=device)
            total = torch.zeros((), dtype=torch.float64, device=device)
            for start in range(0, len(order), batch_size):
                batch = order[start : start + batch_size]
                users, items = user_idx.index_select(0, batch), item_idx.index_select(0, batch)
                loss, penalty = self._step(
                    users, items, target.index_select(0, batch), sampler, generator, masked
                )
                optimizer.zero_grad(set_to_none=True)
                (loss + cfg.l2 * penalty).backward()
                optimizer.step()
                total += loss.detach() * len(batch)  # summed on the device: no sync per step
            check_finite_parameters(dict(self.module.named_parameters()), epoch, cfg.lr)
            return total.item() / len(order)

        start = time.perf_counter()
        with thread_count(cfg.num_threads) as threads:
            losses_ = epoch_loop(
                run_epoch,
                cfg.epochs,
                lr=cfg.lr,
                show_progress=show_progress,
                desc=self.name,
                after_epoch=stopping,
            )
            if stopping is not None:
                stopping.restore()
        log = FitLog(losses_, time.perf_counter() - start, threads, str(device), cfg.seed)
        self.fit_info.update(log.to_dict())
        if stopping is not None:
            self.fit_info["validation"] = stopping.to_dict()

    def _training_rows(self, data: Interactions, device: torch.device):
        """The (user, item, target) rows the loss trains on, as tensors on ``device``.

        BCE uses every row with its label; BPR and softmax the positive rows
        (rows labelled 0 can still be drawn as negatives); MSE every row with
        its rating.
        """
        cfg = self.config
        if cfg.loss == "mse":
            if data.rating is None:
                raise ValueError(
                    f"{data.source}: loss='mse' learns explicit ratings, but the data has no "
                    "rating column. Read a file with ratings (--rating-col), or use another loss."
                )
            target = data.rating.astype(np.float32)
            rows = np.ones(len(data), dtype=bool)
        elif cfg.loss == "bce":
            if cfg.n_negatives == 0 and data.positive.all():
                raise ValueError(
                    "n_negatives=0 and the data has no observed negatives (rows labelled 0): "
                    "there is nothing to contrast the positives with. Use n_negatives >= 1 "
                    f"({_N_NEGATIVES_WHERE})."
                )
            target = data.positive.astype(np.float32)
            rows = np.ones(len(data), dtype=bool)
        else:  # BPR and softmax: the config ensures n_negatives >= 1
            rows = data.positive
            target = np.ones(int(rows.sum()), dtype=np.float32)
        return (
            torch.from_numpy(data.user_idx[rows]).to(device),
            torch.from_numpy(data.item_idx[rows]).to(device),
            torch.from_numpy(np.ascontiguousarray(target)).to(device),
        )

    def _sampler(self, device: torch.device) -> NegativeSampler:
        cfg = self.config
        if cfg.sampler == "popularity":
            return PopularitySampler(self.seen, self.item_counts, cfg.popularity_alpha, device)
        if cfg.sampler == "in-batch":
            return InBatchSampler(self.seen, self.item_counts, device)
        if cfg.sampler == "hard":
            return HardNegativeSampler(self.seen, self._pool_scores, cfg.hard_pool, device)
        return UniformSampler(self.seen, device)

    def _step(
        self, users, items, target, sampler, generator, masked: bool
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The loss of one batch and its L2 penalty (the caller steps the optimizer)."""
        cfg = self.config
        if sampler is None:  # MSE: the rows themselves, no negatives
            loss = losses.mse(self.module(users, items), target)
            return loss, self._l2_penalty(users, items)

        negatives = sampler.sample(users, cfg.n_negatives, generator, items)
        candidates = torch.cat([items.unsqueeze(1), negatives], 1)  # (B, 1 + n)
        mask = penalty_items = None
        if masked:  # slots without a negative (-1) take no part in the loss
            mask = negatives >= 0
            candidates = candidates.clamp(min=0)
            penalty_items = torch.cat([items, negatives[mask]])
        logits = self.module(users, candidates)
        positive, negative = logits[:, 0], logits[:, 1:]
        if cfg.loss == "bce":
            loss = losses.bce(positive, negative, mask, label=target)
        elif cfg.loss == "bpr":
            loss = losses.bpr(positive, negative, mask)
        else:
            log_q = self._log_q(sampler, users, negatives, mask) if cfg.logq_correction else None
            loss = losses.sampled_softmax(positive, negative, mask, log_q_negative=log_q)
        penalty_items = candidates if penalty_items is None else penalty_items
        return loss, self._l2_penalty(users, penalty_items)

    def _pool_scores(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """Scores (B, P) of the hard sampler's pools, without gradients.

        From the full score rows of the batch's distinct users (one matrix
        product, then a gather) when those hold at most 4 times as many
        values as the pools, and at most 2**24; else pair by pair. A matrix
        product computes each score several times faster than a gathered
        dot product (on MovieLens 100K, 943 x 1,682 full scores take less
        time than 16,384 x 32 pairs; on MovieLens latest-small, 610 x 9,724
        take four times as long).
        """
        n_users = self.module.user_embedding.num_embeddings
        n_items = self.module.item_embedding.num_embeddings
        most = min(2**24, 4 * items.numel())
        if min(len(users), n_users) * n_items > most:  # too many, whatever the batch
            return self.module(users, items)
        distinct, row = torch.unique(users, return_inverse=True)
        if len(distinct) * n_items > most:
            return self.module(users, items)
        at = row.unsqueeze(1) * n_items + items  # flat positions in the score rows
        scores = self.module.full_scores(distinct).view(-1)
        return scores.index_select(0, at.view(-1)).view(items.shape)

    @staticmethod
    def _log_q(sampler, users, negatives, mask) -> torch.Tensor | None:
        """``log(n * q)`` of each drawn negative (B, n), or None when q is unknown."""
        log_q = sampler.log_prob(users, negatives.clamp(min=0))
        if log_q is None:
            return None
        log_q = (log_q + math.log(negatives.shape[1])).float()
        return log_q if mask is None else log_q.masked_fill(~mask, 0.0)

    def _early_stopping(self, validation: Interactions) -> EarlyStopping:
        """Rank ``validation``'s positives by the current weights, through dotrec.ranking."""
        cfg = self.config
        metric, k = parse_metric(cfg.early_stopping_metric)
        positives = validation.subset(validation.positive)
        user_idx, item_idx, _ = to_model_space(self.users, self.items, positives)
        overlap = overlap_mask(self.seen, user_idx, item_idx)
        if overlap.any():
            warnings.warn(
                f"{validation.source}: {int(overlap.sum())} validation (user, item) pairs also "
                "occur in the training data; they were left out of validation.",
                DataWarning,
                stacklevel=4,
            )
        user_idx, item_idx = user_idx[~overlap], item_idx[~overlap]
        if len(user_idx) == 0:
            raise ValueError(
                f"{validation.source}: no validation interaction can be ranked (its users are "
                "not in the training data, or all its pairs are); split the validation data "
                "from the training data per user, e.g. dotrec.random_split."
            )
        name = f"{metric}@{k}"

        def evaluate() -> float:
            ranked = rank_users(self, user_idx, item_idx, [k], {metric: METRICS[metric]})
            return ranked.mean(name)

        return EarlyStopping(
            evaluate,
            self.module,
            metric=name,
            epochs=cfg.epochs,
            eval_every=cfg.eval_every,
            patience=cfg.patience,
        )

    def _l2_penalty(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """Mean squared norm of the batch's user and item vectors.

        Computed from how often each row occurs in the batch, over the tables
        (n_users + n_items) rather than over the gathered batch (B x (1 + n)),
        which gives the same value for less work.
        """
        module = self.module
        n_users = module.user_embedding.num_embeddings
        n_items = module.item_embedding.num_embeddings
        user_share = torch.bincount(users, minlength=n_users) / max(len(users), 1)
        item_share = torch.bincount(items.reshape(-1), minlength=n_items) / max(items.numel(), 1)
        penalty = WeightedSquaredNorm.apply(module.user_embedding.weight, user_share)
        return penalty + WeightedSquaredNorm.apply(module.item_embedding.weight, item_share)

    def _score_users(self, user_idx: torch.Tensor) -> torch.Tensor:
        return self.module.full_scores(user_idx.to(self.device))

    def _score_pairs(self, user_idx: torch.Tensor, item_idx: torch.Tensor) -> torch.Tensor:
        return self.module(user_idx.to(self.device), item_idx.to(self.device))

    def _score_parts(self, user_idx: int, item_idx: int) -> dict[str, float]:
        module = self.module
        with torch.no_grad():
            user = module.user_embedding.weight[user_idx].double()
            item = module.item_embedding.weight[item_idx].double()
            return {
                "user bias b_u": float(module.user_bias.weight[user_idx, 0]),
                "item bias b_i": float(module.item_bias.weight[item_idx, 0]),
                "dot product <p_u, q_i>": float(user @ item),
            }

    def _item_vectors(self) -> torch.Tensor:
        return self.module.item_embedding.weight

    def _query_vectors(self, user_idx: torch.Tensor) -> torch.Tensor:
        user_idx = user_idx.to(self.device)
        vectors = self.module.user_embedding.weight[user_idx]
        bias = self.module.user_bias.weight[user_idx]
        return torch.cat([vectors, torch.ones_like(bias), bias], 1)  # [p_u, 1, b_u]

    def _item_vectors_for_search(self) -> torch.Tensor:
        bias = self.module.item_bias.weight
        return torch.cat([self.module.item_embedding.weight, bias, torch.ones_like(bias)], 1)

    def _search_vectors_of(self, item_idx: torch.Tensor) -> torch.Tensor:
        item_idx = item_idx.to(self.device)
        vectors = self.module.item_embedding.weight[item_idx]
        bias = self.module.item_bias.weight[item_idx]
        return torch.cat([vectors, bias, torch.ones_like(bias)], 1)

    def _fold_in(self, history) -> torch.Tensor:
        """A new user's vector and bias, fitted to the history under the model's own loss.

        With the item vectors and biases fixed, the user's part of the
        training objective is convex in its vector (and bias): BCE, BPR or
        sampled softmax over the history's items against negatives drawn
        from the model's negative distribution (uniform for the uniform and
        hard samplers, ``count ** alpha`` for popularity, counts for
        in-batch), plus the per-row L2 penalty ``l2``. It is minimised by
        :func:`~dotrec.models._foldin.solve_user_vectors`; the negatives are
        fixed per item by the model's seed, so the same history always gets
        the same vector. BPR and softmax ignore a user bias (it is 0, as in
        training); BCE fits it.

        Raises:
            DotrecError: for ``loss="mse"``: a list of items carries no
                ratings to fit.
        """
        cfg = self.config
        if cfg.loss == "mse":
            raise DotrecError(
                "this matrix factorization predicts ratings (loss='mse'); a history of item IDs "
                "has no ratings to fold in. Fold in with a model trained on implicit feedback "
                "(loss='bce' or 'bpr')."
            )
        items = self.module.item_embedding.weight.detach()
        bias = self.module.item_bias.weight.detach().view(-1)
        with torch.enable_grad(), thread_count(cfg.num_threads):
            vectors, user_bias = solve_user_vectors(
                history,
                items,
                bias,
                loss=cfg.loss,
                l2=cfg.l2,
                n_negatives=max(cfg.n_negatives, 1),
                draws=self._draws(),
                negative_cdf=self._negative_cdf(),
                logq_correction=cfg.logq_correction,
                steps=self.FOLD_IN_STEPS,
            )
        user_bias = user_bias.unsqueeze(1)
        return torch.cat([vectors, torch.ones_like(user_bias), user_bias], 1)

    def _draws(self) -> torch.Tensor:
        """Uniform numbers (n_items, FOLD_IN_NEGATIVES) from the seed: each item's negatives."""
        n_items = self.module.item_embedding.num_embeddings
        if self._fold_in_draws is None or len(self._fold_in_draws) != n_items:
            generator = torch.Generator().manual_seed(self.config.seed)
            draws = torch.rand(n_items, self.FOLD_IN_NEGATIVES, generator=generator)
            self._fold_in_draws = draws.to(self.device)
        return self._fold_in_draws

    def _negative_cdf(self) -> torch.Tensor:
        """Cumulative distribution (n_items,) of the negatives, as the sampler draws them."""
        cfg = self.config
        counts = torch.from_numpy(self.item_counts.astype(np.float64))
        if cfg.sampler == "popularity":
            weights = counts.clamp(min=1) ** cfg.popularity_alpha
        elif cfg.sampler == "in-batch":
            weights = counts.clamp(min=1)
        else:
            weights = torch.ones_like(counts)
        cdf = torch.cumsum(weights, 0) / weights.sum()
        return cdf.float().to(self.device)

    def _tensors(self) -> dict[str, torch.Tensor]:
        return dict(self.module.state_dict())

    def _load_tensors(self, tensors: dict[str, torch.Tensor]) -> None:
        n_users, dim = tensors["user_embedding.weight"].shape
        n_items = tensors["item_embedding.weight"].shape[0]
        self.module = MFModule(n_users, n_items, dim)
        self.module.load_state_dict(tensors)
        self.module.to(self.device)


@dataclass
class BPRConfig(MFConfig):
    """Settings of :class:`BPR`: those of :class:`MFConfig`, with BPR's defaults.

    Each positive is paired with the 4 highest-scored of 32 uniformly drawn
    non-positives of its user (``sampler="hard"``), the BPR loss averaged
    over the 4 pairs. On Gowalla (the published NGCF/LightGCN split, full
    ranking, training items removed) this gives Recall@20 0.1671 and NDCG@20
    0.1400 in about 90 to 110 s of training on two busy CPU cores (implicit's
    BPR: about 22 s), where uniform negatives (8 per positive, L2 0.015) give
    0.139 and 0.120, and implicit's BPR (128 factors, learning rate 0.01,
    regularization 0.001, 50 iterations) 0.067 Recall@20; Rendle et al.
    (2022) report 0.1627 and 0.1378 for a carefully tuned MF-BPR. On
    MovieLens 100K (every rating a positive, ``random_split(0.2, seed=0)``):
    NDCG@10 0.402 in about 3 s, against 0.428 with uniform negatives and 0.34
    for implicit's BPR. An epoch with hard negatives takes about 2.2 times as
    long as one with 8 uniform negatives on MovieLens 100K, 1.15 times on
    Gowalla.
    """

    embedding_dim: int = 128
    """Length of each user and item vector."""
    epochs: int = 25
    """Passes over the training rows (fewer when early stopping ends training).
    Fewer than MF's 30: with hard negatives, Recall@20 on a 10% validation
    split of Gowalla's training side stops rising after about 20 epochs
    (0.1865 at 20, 0.1861 at 30); NDCG@10 (mean of four seeds) is 0.4007 at
    25 and 0.3992 at 30 on MovieLens 100K, 0.3363 and 0.3380 on MovieLens
    latest-small (0.3334 at 20)."""
    lr: float = 0.01
    """AdamW learning rate. Twice the rate loses about 0.01 Recall@20 on the
    Gowalla validation split; twice the rate with twice the batch, about
    0.005 there and 0.007 NDCG@10 on MovieLens 100K (both at 30 epochs)."""
    l2: float = 0.02
    """L2 penalty on the embeddings used in each batch. With hard negatives
    it matters more on dense data: on MovieLens 100K, 0.015 loses about 0.03
    NDCG@10; on a 10% validation split of Gowalla's training side, 0.03 loses
    about 0.013 Recall@20."""
    n_negatives: int = 4
    """Negatives per positive, each one BPR pair: the highest-scored of
    ``hard_pool`` uniform draws of the user's non-positives."""
    sampler: Sampler = "hard"
    """Hard negatives (see :class:`MFConfig`); ``"uniform"`` for plain BPR."""
    hard_pool: int = 32
    """Uniform candidates per positive, scored by the model, of which the
    ``n_negatives`` best are kept."""
    loss: Loss = "bpr"
    """The pairwise BPR loss (another loss makes this a plain MF)."""


@register
class BPR(MatrixFactorization):
    """Matrix factorization trained with Bayesian personalised ranking.

    :class:`MatrixFactorization` with ``loss="bpr"`` and defaults chosen for
    it: each positive is ranked above its user's hardest sampled
    non-positives (the best-scored of a uniform pool), ``-log sigmoid(s_pos -
    s_neg)`` averaged over the pairs. Rendle, Freudenthaler, Gantner and
    Schmidt-Thieme, "BPR: Bayesian Personalized Ranking from Implicit
    Feedback" (UAI 2009).

    Example:
        >>> from dotrec.data import Interactions
        >>> data = Interactions.from_ids(["a", "a", "b", "b", "c"], ["x", "y", "y", "z", "x"])
        >>> BPR(embedding_dim=4, epochs=2).fit(data).recommend("a", k=5).counts.tolist()
        [1]
    """

    name = "bpr"
    config_class = BPRConfig
