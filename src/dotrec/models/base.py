"""The Recommender contract that every dotrec model fulfils."""

from __future__ import annotations

import dataclasses
import inspect
import logging
from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import numpy as np
import scipy.sparse as sp
import torch

from dotrec import ann, artifact
from dotrec.data import Interactions, Vocabulary, ids_to_text
from dotrec.data._interactions import require_interactions
from dotrec.exceptions import DotrecError, EmptyDataError, UnknownIDError
from dotrec.models._foldin import history_matrix
from dotrec.models._indexed import IndexedSearch
from dotrec.models._recommendations import Recommendations
from dotrec.models._settings import ModelConfig as ModelConfig
from dotrec.models._settings import _checked_settings
from dotrec.topk import TopK, rows_mask, topk

if TYPE_CHECKING:
    from dotrec.calibration import Calibrator

__all__ = ["Recommender", "Recommendations"]

_log = logging.getLogger(__name__)


class Recommender(IndexedSearch, ABC):
    """Base of every model: fit on :class:`Interactions`, then recommend.

    Subclasses set ``name`` and ``config_class`` (a dataclass of
    hyperparameters), and implement :meth:`_fit`, :meth:`_score_users`,
    :meth:`_item_vectors`, :meth:`_tensors` and :meth:`_load_tensors`
    (and :meth:`_score_pairs` when pairs can be scored more cheaply).
    Everything users touch is here, once.

    Fold-in (:meth:`recommend_from_history`) goes through :meth:`_fold_in`,
    which turns histories into the model's query representation, and
    :meth:`_score_folded`, which scores the catalogue for it. Models whose
    score is a dot product set ``dot_product = True`` and implement
    :meth:`_query_vectors` and :meth:`_item_vectors_for_search`.

    After ``fit`` a model knows its vocabularies (only the users and items
    seen in training), each user's training positives (excluded from
    recommendations by default) and item popularity (for the opt-in
    fallback). ``calibrator`` is None until :func:`dotrec.calibration.calibrate`
    fits one on held-out data; only then can :meth:`score` give probabilities.
    """

    name: ClassVar[str]
    config_class: ClassVar[type]
    score_kind: ClassVar[str] = "score"
    """What a score means, in words; shown in output and docs."""
    predicts_ratings: ClassVar[bool] = False
    """True when scores are predicted ratings, so RMSE and MAE apply."""
    dot_product: ClassVar[bool] = False
    """True when every score is ``<query vector, item vector>`` (biases folded
    in)."""
    item_similarity: ClassVar[bool] = True
    """False when the model has no notion of items being alike (popularity):
    ``explain`` then lists no "closest" training items."""

    def __init__(self, **config: Any):
        """Settings as keywords of ``config_class``; unset ones take their defaults.

        Raises:
            ValueError: a setting of the wrong type (the message names it and
                the type expected) or out of its range.
            TypeError: an unknown setting.
        """
        self.config = self.config_class(**_checked_settings(self.config_class, config))
        self.users: Vocabulary | None = None
        self.items: Vocabulary | None = None
        self.seen: sp.csr_array | None = None
        self.item_counts: np.ndarray | None = None
        self.fit_info: dict[str, Any] = {}
        self.calibrator: Calibrator | None = None
        self.ann_indexes: dict[str, ann.ANNIndex] = {}

    def __repr__(self) -> str:
        fields = ", ".join(f"{k}={v!r}" for k, v in dataclasses.asdict(self.config).items())
        return f"{type(self).__name__}({fields})"

    # --- fitting ----------------------------------------------------------------

    @property
    def uses_validation(self) -> bool:
        """True when ``fit(train, validation)`` uses the validation data (models
        trained in epochs rank it for early stopping); the others ignore it."""
        return "validation" in inspect.signature(self._fit).parameters

    def fit(
        self,
        interactions: Interactions,
        validation: Interactions | None = None,
        *,
        show_progress: bool = False,
    ) -> Recommender:
        """Train on ``interactions``; returns ``self``.

        Only the users and items present in ``interactions`` enter the model's
        vocabularies.

        ``validation``, held-out interactions, is used by models trained in
        epochs (see their ``early_stopping_metric``) to keep the weights of
        the epoch that ranks it best; other models accept it and ignore it.

        When training fails (for example with
        :class:`~dotrec.exceptions.TrainingDivergedError`), the model is left
        unfitted, so it can neither recommend nor be saved.

        Raises:
            EmptyDataError: no positive interaction to learn from.
            TrainingDivergedError: the loss or the parameters became non-finite.
        """
        require_interactions(interactions, "fit()")
        if len(interactions) == 0 or not interactions.positive.any():
            raise EmptyDataError(
                f"{interactions.source}: the input contains no positive interactions."
            )
        if validation is not None and not isinstance(validation, Interactions):
            raise TypeError(
                f"validation must be an Interactions or None, got {type(validation).__name__}"
            )
        data = interactions.compact()
        self.calibrator = None  # fitted to the old scores
        self.ann_indexes = {}  # built over the old vectors
        self.users, self.items = data.users, data.items
        self.seen = data.user_items()
        self.item_counts = np.asarray(self.seen.sum(axis=0)).ravel().astype(np.int64)
        self.fit_info = {
            "fingerprint": data.fingerprint(),
            "n_rows": len(data),
            "source": data.source,
        }
        try:
            if self.uses_validation:
                self._fit(data, show_progress=show_progress, validation=validation)
            else:
                if validation is not None:
                    _log.info("%s trains without validation; ignoring it", self.name)
                self._fit(data, show_progress=show_progress)
        except BaseException:
            # Never leave half-trained (possibly NaN) parameters looking fitted.
            self.users = self.items = self.seen = self.item_counts = None
            self.fit_info = {}
            raise
        _log.info(
            "fitted %s on %d rows, %d users, %d items",
            self.name,
            len(data),
            data.n_users,
            data.n_items,
        )
        return self

    @abstractmethod
    def _fit(
        self, data: Interactions, show_progress: bool, validation: Interactions | None = None
    ) -> None:
        """Learn the parameters from compacted interactions.

        Models that use validation data declare the ``validation`` parameter;
        :meth:`fit` passes it only to those.
        """

    @abstractmethod
    def _score_users(self, user_idx: torch.Tensor) -> torch.Tensor:
        """Scores (B, n_items) of every item for users ``user_idx`` (B,)."""

    def _score_pairs(self, user_idx: torch.Tensor, item_idx: torch.Tensor) -> torch.Tensor:
        """Scores (B,) of the pairs (user_idx[b], item_idx[b]).

        This default picks them out of :meth:`_score_users`; models that can
        score a pair directly override it.
        """
        scores = self._score_users(user_idx)
        return scores.gather(1, item_idx.to(scores.device).unsqueeze(1)).squeeze(1)

    def _score_parts(self, user_idx: int, item_idx: int) -> dict[str, float] | None:
        """The score of one pair as named terms that sum to it, or None.

        Models whose score is a sum of meaningful terms override this (biases
        and a dot product; one term per training item of the user); the
        others keep this default, which says there is no such split.
        """
        return None

    @abstractmethod
    def _item_vectors(self) -> torch.Tensor:
        """Item representation (n_items, d) for :meth:`similar_items`."""

    def _fold_in(self, history: sp.csr_array) -> Any:
        """The query representation of histories, for :meth:`_score_folded`.

        Args:
            history: 0/1 CSR matrix (B, n_items) of each history's items; no
                row is empty.

        Returns:
            Whatever :meth:`_score_folded` takes; for dot-product models the
            query vectors (B, D) in the space of :meth:`_item_vectors_for_search`.
        """
        raise DotrecError(f"{type(self).__name__} cannot fold in a history of items")

    def _score_folded(self, query: Any) -> torch.Tensor:
        """Scores (B, n_items) of every item for folded-in queries."""
        return query @ self._item_vectors_for_search().T

    def _query_vectors(self, user_idx: torch.Tensor) -> torch.Tensor:
        """Query vectors (B, D) of known users: score = query @ search vectors."""
        raise self._no_vector_form()

    def _item_vectors_for_search(self) -> torch.Tensor:
        """Item vectors (n_items, D) whose inner products with queries are the scores."""
        raise self._no_vector_form()

    def _search_vectors_of(self, item_idx: torch.Tensor) -> torch.Tensor:
        """Rows ``item_idx`` of :meth:`_item_vectors_for_search`, shape (n, D).

        Models that assemble the search vectors (rather than store them)
        override this to assemble only these rows.
        """
        vectors = self._item_vectors_for_search()
        return vectors[item_idx.to(vectors.device)]

    def _no_vector_form(self) -> DotrecError:
        return DotrecError(
            f"{type(self).__name__} does not score by a dot product of user and item vectors, "
            "so it has no approximate index; its exact top-K is the way to recommend"
        )

    @abstractmethod
    def _tensors(self) -> dict[str, torch.Tensor]:
        """The learned tensors to save."""

    @abstractmethod
    def _load_tensors(self, tensors: dict[str, torch.Tensor]) -> None:
        """Restore the learned tensors (on the CPU)."""

    def _check_fitted(self) -> None:
        if self.users is None:
            raise DotrecError(f"this {type(self).__name__} is not fitted yet; call fit() first")

    # --- queries ----------------------------------------------------------------

    def score(
        self,
        user_ids: Sequence[object] | object,
        item_ids: Sequence[object] | object,
        *,
        kind: Literal["score", "logit", "probability"] = "score",
    ):
        """Scores of (user, item) pairs, element by element.

        Args:
            user_ids: raw user IDs (or one ID).
            item_ids: raw item IDs, same length (or one ID).
            kind: ``"score"``: the raw score (see ``score_kind``), which
                orders items but is no probability; ``"probability"``: the
                calibrated probability (see :mod:`dotrec.calibration` for what
                it means); ``"logit"``: its log-odds. The last two need a
                calibrator (``model.calibrator``).

        Returns:
            float32 array of shape (n,) for raw scores, float64 for the
            calibrated kinds; a float for one pair.

        Raises:
            UnknownIDError: naming the users or items not seen in training.
            DotrecError: a calibrated kind asked of a model without a calibrator.
            ValueError: an unknown ``kind``.
        """
        self._check_fitted()
        if kind not in ("score", "logit", "probability"):
            raise ValueError(f"kind must be 'score', 'logit' or 'probability', got {kind!r}")
        if kind != "score" and self.calibrator is None:
            raise DotrecError(
                f"kind={kind!r} needs a calibrated model, and this {self.name} model has no "
                f"calibrator (its score is: {self.score_kind}). Fit one on held-out data "
                "with dotrec.calibration.calibrate(model, heldout) (command line: dotrec "
                "calibrate MODEL_DIR --data HELD_OUT), or use kind='score'."
            )
        scalar = _is_scalar(user_ids) and _is_scalar(item_ids)
        users = self.users.index(_as_list(user_ids), "user")
        items = self.items.index(_as_list(item_ids), "item")
        if len(users) != len(items) and 1 not in (len(users), len(items)):
            raise ValueError(
                f"score() got {len(users)} user IDs and {len(items)} item IDs; give one of each "
                "per pair, or one ID on either side to pair it with every ID on the other"
            )
        users, items = np.broadcast_arrays(users, items)
        with torch.no_grad():
            values = self._score_pairs(
                torch.from_numpy(users.copy()), torch.from_numpy(items.copy())
            )
        out = values.float().cpu().numpy()
        if kind == "probability":
            out = self.calibrator.transform(out)
        elif kind == "logit":
            out = self.calibrator.logit(out)
        return float(out[0]) if scalar else out

    def recommend(
        self,
        user_ids: Sequence[object] | object,
        k: int = 10,
        *,
        exclude_seen: bool = True,
        items: Sequence[object] | None = None,
        fallback: Literal["popular"] | None = None,
        batch_size: int = 1024,
        exact: bool | None = None,
    ) -> Recommendations:
        """Top-``k`` items for each user, best first.

        Args:
            user_ids: raw user IDs, or one ID (the result then has one row).
            k: list length; rows are shorter when fewer candidates remain.
            exclude_seen: leave out the items each user had in training.
            items: restrict the candidates to these raw item IDs.
            fallback: ``"popular"`` answers unknown users with the most popular
                items, marked in ``Recommendations.fallback``; by default an
                unknown user is an error.
            batch_size: users scored at once.
            exact: ``True`` scores every item; ``False`` asks the approximate
                index (:meth:`build_index`); ``None`` (default) uses the index
                when the model has one and the catalogue has at least its
                ``min_items`` items. Either way seen items and non-candidates
                never come back, and scores are the model's exact scores of
                the returned items; the index may miss some of the true top-k.

        Raises:
            ValueError: ``k`` is not a non-negative integer, or ``fallback`` is
                not an option.
            UnknownIDError: an unknown user (without fallback) or candidate item.
            DotrecError: ``exact=False`` for a model without an index.
            MissingDependencyError: ``exact=False`` without faiss installed.
            StaleIndexError: the index was built for other item vectors.
        """
        self._check_fitted()
        _check_k(k)
        if fallback not in (None, "popular"):
            raise ValueError(f"fallback must be None or 'popular', got {fallback!r}")
        index = self._usable_index("recommend", exact)
        query = ids_to_text(_as_list(user_ids))
        user_idx = self.users.lookup(query)
        unknown = user_idx < 0
        if unknown.any() and fallback != "popular":
            raise UnknownIDError(
                "user",
                list(dict.fromkeys(query[unknown])),
                hint="Pass fallback='popular' (command line: --fallback popular) to get the "
                "most popular items for unknown users.",
            )
        candidates = self._candidates(items)

        item_idx, scores, counts = _empty_lists(len(query), min(k, len(self.items)))
        known_rows = np.flatnonzero(~unknown)
        for start in range(0, len(known_rows), batch_size):
            rows = known_rows[start : start + batch_size]
            if index is None:
                result = self.recommend_indices(user_idx[rows], k, exclude_seen, candidates)
            else:
                result = self._ann_indices(index, user_idx[rows], k, exclude_seen, candidates)
            item_idx[rows], scores[rows] = result.indices.numpy(), result.scores.numpy()
            counts[rows] = result.counts.numpy()
        if unknown.any():
            popular = self._popular(k, candidates)
            item_idx[unknown], scores[unknown] = popular.indices.numpy(), popular.scores.numpy()
            counts[unknown] = popular.counts.numpy()
        return self._package(query, item_idx, scores, counts, unknown)

    def recommend_from_history(
        self,
        histories: Sequence[Sequence[object]],
        k: int = 10,
        *,
        exclude_seen: bool = True,
        items: Sequence[object] | None = None,
        unknown_items: Literal["error", "ignore"] = "error",
    ) -> Recommendations:
        """Top-``k`` items for people known only by the items they interacted with.

        Each history is folded in: the model computes the query
        representation a user with exactly those items would have, keeping
        what it learned fixed, and ranks the catalogue for it with the same
        top-K routine as :meth:`recommend`. What fold-in means depends on the
        model (see each model's ``_fold_in``): a least-squares or loss-fitted
        user vector for factorization models, the history row itself for
        item-item models, the popular items for popularity.

        Args:
            histories: one sequence of raw item IDs per person (order and
                repeats do not matter). A string is not a history; one
                history is ``[["i1", "i2"]]``.
            k: list length; rows are shorter when fewer candidates remain.
            exclude_seen: leave out each history's own items.
            items: restrict the candidates to these raw item IDs.
            unknown_items: ``"error"`` raises for item IDs the model does not
                know; ``"ignore"`` drops them.

        Returns:
            :class:`Recommendations` with one row per history, in order;
            ``query_ids`` are ``"history 0"``, ``"history 1"``, ... A history
            that is empty (or holds only ignored unknown items) gets the most
            popular items, with ``fallback`` True.

        Raises:
            ValueError: ``k`` is negative or ``unknown_items`` is not an option.
            TypeError: ``histories`` is not a sequence of sequences.
            UnknownIDError: naming the unknown item IDs (``unknown_items="error"``).
            DotrecError: the model cannot fold in (the message says why).
        """
        self._check_fitted()
        _check_k(k)
        history = history_matrix(histories, self.items, unknown_items)
        candidates = self._candidates(items)
        query = np.array([f"history {row}" for row in range(history.shape[0])], dtype=object)
        empty = np.diff(history.indptr) == 0

        item_idx, scores, counts = _empty_lists(len(query), min(k, len(self.items)))
        rows = np.flatnonzero(~empty)
        for start in range(0, len(rows), 1024):
            part = rows[start : start + 1024]
            sub = sp.csr_array(history[part])
            folded = self._fold_in(sub)
            with torch.no_grad():
                result = self._exact_folded(folded, k, sub if exclude_seen else None, candidates)
            item_idx[part], scores[part] = result.indices.numpy(), result.scores.numpy()
            counts[part] = result.counts.numpy()
        if empty.any():
            popular = self._popular(k, candidates)
            item_idx[empty], scores[empty] = popular.indices.numpy(), popular.scores.numpy()
            counts[empty] = popular.counts.numpy()
        return self._package(query, item_idx, scores, counts, empty)

    def _exact_folded(self, folded, k, exclude: sp.csr_array | None, candidates) -> TopK:
        scores = self._score_folded(folded)
        mask = None
        if exclude is not None:
            mask = rows_mask(exclude, np.arange(exclude.shape[0]), scores.device)
        result = topk(scores, k, mask, candidates)
        return TopK(result.indices.cpu(), result.scores.cpu(), result.counts.cpu())

    def recommend_indices(
        self,
        user_idx: np.ndarray,
        k: int,
        exclude_seen: bool = True,
        candidates: torch.Tensor | None = None,
    ) -> TopK:
        """Top-``k`` in index space for known users; the path evaluation uses.

        Returns:
            A :class:`~dotrec.topk.TopK` on the CPU.
        """
        with torch.no_grad():
            scores = self._score_users(torch.from_numpy(np.asarray(user_idx, dtype=np.int64)))
            exclude = rows_mask(self.seen, user_idx, scores.device) if exclude_seen else None
            result = topk(scores, k, exclude, candidates)
        return TopK(result.indices.cpu(), result.scores.cpu(), result.counts.cpu())

    def similar_items(
        self, item_ids: Sequence[object] | object, k: int = 10, *, exact: bool | None = None
    ) -> Recommendations:
        """The ``k`` items closest to each query item by cosine similarity.

        The query item itself is left out. Scores are cosine similarities in
        [-1, 1] of the model's item vectors (see :meth:`_similarities`).

        Args:
            item_ids: raw item IDs, or one ID.
            k: list length.
            exact: as in :meth:`recommend`, for the cosine index that
                ``build_index(similar_items=True)`` builds.

        Raises:
            ValueError: ``k`` is not a non-negative integer.
            UnknownIDError: naming the query items not seen in training.
        """
        self._check_fitted()
        _check_k(k)
        query = ids_to_text(_as_list(item_ids))
        item_idx = self.items.index(query, "item")
        index = self._usable_index("similar", exact)
        with torch.no_grad():
            if index is None:
                result = self._similar_exact(item_idx, k)
            else:
                result = self._similar_ann(index, item_idx, k)
        return self._package(
            query,
            result.indices.cpu().numpy(),
            result.scores.cpu().numpy(),
            result.counts.cpu().numpy(),
            np.zeros(len(query), dtype=bool),
        )

    def _similar_exact(self, item_idx: np.ndarray, k: int) -> TopK:
        item_idx = torch.from_numpy(item_idx)
        sims = self._similarities(item_idx)
        itself = torch.zeros_like(sims, dtype=torch.bool)
        itself[torch.arange(len(item_idx)), item_idx.to(sims.device)] = True
        result = topk(sims, k, exclude=itself)
        return TopK(result.indices.cpu(), result.scores.cpu(), result.counts.cpu())

    def _similarities(self, item_idx: torch.Tensor) -> torch.Tensor:
        """(Q, n_items) scores of every item for each query item: cosine of item vectors."""
        vectors = torch.nn.functional.normalize(self._item_vectors().float(), dim=1)
        return vectors[item_idx.to(vectors.device)] @ vectors.T

    def _candidates(self, items: Sequence[object] | None) -> torch.Tensor | None:
        if items is None:
            return None
        candidates = torch.zeros(len(self.items), dtype=torch.bool)
        candidates[torch.from_numpy(self.items.index(_as_list(items), "item"))] = True
        return candidates

    def _popular(self, k: int, candidates: torch.Tensor | None) -> TopK:
        counts = torch.from_numpy(self.item_counts.astype(np.float32)).unsqueeze(0)
        return topk(counts, k, candidates=candidates)

    def _package(self, query, item_idx, scores, counts, fallback) -> Recommendations:
        ids = np.empty(item_idx.shape, dtype=object)
        real = item_idx >= 0
        ids[real] = self.items.ids[item_idx[real]]
        return Recommendations(np.asarray(query, dtype=object), ids, scores, counts, fallback)

    # --- persistence --------------------------------------------------------------

    def save(self, path: str | Path) -> Path:
        """Write the model folder atomically (safetensors + JSON); returns its path."""
        self._check_fitted()
        return artifact.save_model(self, path)

    @classmethod
    def load(cls, path: str | Path, device: str = "auto") -> Recommender:
        """Load a model folder written by :meth:`save`, without pickle."""
        model = artifact.load_model(path, device=device)
        if not isinstance(model, cls):
            raise artifact.ModelFileError(
                f"{path} holds a {type(model).__name__}, not a {cls.__name__}; load it with "
                "dotrec.load_model()"
            )
        return model


def _history_parts(item_ids: np.ndarray, values: np.ndarray) -> dict[str, float]:
    """Score parts of item-item models: one per training item, zeros left out."""
    return {
        f"history item {item_id}": float(value)
        for item_id, value in zip(item_ids, values, strict=True)
        if value != 0
    }


def _check_k(k: object) -> None:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 0:
        raise ValueError(f"k must be a non-negative integer, got {k!r}")


def _empty_lists(n_rows: int, width: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Item indices (-1), scores (NaN) and counts (0) to fill in, row by row."""
    return (
        np.full((n_rows, width), -1, dtype=np.int64),
        np.full((n_rows, width), np.nan, dtype=np.float32),
        np.zeros(n_rows, dtype=np.int64),
    )


def _is_scalar(value: object) -> bool:
    return isinstance(value, (str, bytes, int, np.integer)) or np.ndim(value) == 0


def _as_list(value: object) -> list[object]:
    return [value] if _is_scalar(value) else list(value)
