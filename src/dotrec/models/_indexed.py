"""Approximate nearest-neighbour search for models that score by a dot product.

:class:`IndexedSearch` is mixed into :class:`~dotrec.models.base.Recommender`:
it builds the indexes (:mod:`dotrec.ann`) and answers ``recommend`` and
``similar_items`` from them when the caller or the catalogue size asks for it.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import scipy.sparse as sp
import torch

from dotrec import ann
from dotrec.exceptions import DotrecError, DotrecWarning
from dotrec.topk import TopK

if TYPE_CHECKING:
    from dotrec.models.base import Recommender

__all__ = ["IndexedSearch"]


class IndexedSearch:
    """Index building and approximate top-K; the model supplies its vectors.

    Uses the model's ``_item_vectors_for_search``, ``_query_vectors``,
    ``_search_vectors_of``, ``_item_vectors``, ``recommend_indices`` and
    ``_similar_exact`` (the exact answer when an index cannot fill a row).
    """

    ann_indexes: dict[str, ann.ANNIndex]

    def _ann_indices(
        self,
        index: ann.ANNIndex,
        user_idx: np.ndarray,
        k: int,
        exclude_seen: bool,
        candidates: torch.Tensor | None,
    ) -> TopK:
        """:meth:`recommend_indices` through the approximate index."""
        user_idx = np.asarray(user_idx, dtype=np.int64)
        with torch.no_grad():
            queries = self._query_vectors(torch.from_numpy(user_idx))

        # The score of a pair is <query vector, search vector> (see the hooks).
        def rescore(rows: np.ndarray, items: np.ndarray) -> torch.Tensor:
            found = self._search_vectors_of(torch.from_numpy(items))
            return (queries[torch.from_numpy(rows).to(queries.device)] * found).sum(1)

        def exact(rows: np.ndarray) -> TopK:
            return self.recommend_indices(user_idx[rows], k, exclude_seen, candidates)

        with torch.no_grad():
            return ann.search_topk(
                index,
                queries,
                k,
                rescore=rescore,
                exact=exact,
                exclude=sp.csr_array(self.seen[user_idx]) if exclude_seen else None,
                candidates=candidates,
            )

    def _similar_ann(self, index: ann.ANNIndex, item_idx: np.ndarray, k: int) -> TopK:
        vectors = torch.nn.functional.normalize(self._item_vectors().float(), dim=1)
        queries = vectors[torch.from_numpy(item_idx).to(vectors.device)]
        n_rows = len(item_idx)
        itself = sp.csr_array(
            (np.ones(n_rows), item_idx, np.arange(n_rows + 1)), shape=(n_rows, len(self.items))
        )

        def rescore(rows: np.ndarray, items: np.ndarray) -> torch.Tensor:
            found = vectors[torch.from_numpy(items).to(vectors.device)]
            return (queries[torch.from_numpy(rows).to(vectors.device)] * found).sum(1)

        return ann.search_topk(
            index,
            queries,
            k,
            rescore=rescore,
            exact=lambda rows: self._similar_exact(item_idx[rows], k),
            exclude=itself,
        )

    def build_index(
        self,
        kind: Literal["hnsw", "ivf"] = "ivf",
        *,
        similar_items: bool = False,
        min_items: int = ann.DEFAULT_MIN_ITEMS,
        **settings: Any,
    ) -> Recommender:
        """Build approximate nearest-neighbour indexes over the item vectors; returns ``self``.

        The ``"recommend"`` index answers maximum inner product search over
        the vectors whose products with the users' query vectors are the
        scores (biases included), so it ranks as :meth:`recommend` does;
        with ``similar_items=True`` a ``"similar"`` index over the normalised
        item vectors answers :meth:`similar_items`. They replace any earlier
        indexes, are saved with the model and are used by ``recommend`` and
        ``similar_items`` as their ``exact`` argument says. Retraining drops
        them; other changes to the vectors make them refused as stale.

        Args:
            kind: ``"ivf"`` (k-means lists; fast to build) or ``"hnsw"`` (a
                graph; see :class:`dotrec.ann.ANNIndex`).
            similar_items: also build the cosine index for ``similar_items``.
            min_items: catalogue size from which ``exact=None`` uses the index.
            **settings: fields of :class:`dotrec.ann.HNSWSettings` or
                :class:`dotrec.ann.IVFSettings`.

        Raises:
            DotrecError: the model does not score by a dot product.
            MissingDependencyError: faiss is not installed
                (``pip install 'dotrec[ann]'``).
        """
        self._check_fitted()
        if not self.dot_product:
            raise self._no_vector_form()
        indexes = {}
        with torch.no_grad():
            indexes["recommend"] = ann.ANNIndex.build(
                self._item_vectors_for_search(), kind, min_items=min_items, **settings
            )
            if similar_items:
                indexes["similar"] = ann.ANNIndex.build(
                    self._item_vectors(), kind, "cosine", min_items=min_items, **settings
                )
        self.ann_indexes = indexes
        return self

    def _index_vectors(self, purpose: str) -> torch.Tensor:
        """The vectors the index for ``purpose`` is built over."""
        with torch.no_grad():
            if purpose == "recommend":
                return self._item_vectors_for_search()
            return self._item_vectors()

    def _usable_index(self, purpose: str, exact: bool | None) -> ann.ANNIndex | None:
        """The index to answer with, or None for exact scoring (see ``recommend``)."""
        if exact is not None and not isinstance(exact, bool):
            raise ValueError(f"exact must be True, False or None, got {exact!r}")
        index = None if exact else self.ann_indexes.get(purpose)
        if index is None:
            if exact is False:
                what, python, flag = ("recommend", "", "")
                if purpose == "similar":
                    what, python, flag = ("similar_items", "similar_items=True", " --similar-items")
                raise DotrecError(
                    f"exact=False asks for the approximate index, but this {self.name} model has "
                    f"no index for {what}. Build one with model.build_index({python}) (command "
                    f"line: dotrec index MODEL_DIR{flag})."
                )
            return None
        if exact is None:
            if len(self.items) < index.min_items:
                return None
            if not ann.faiss_available():
                warnings.warn(
                    "the model has an approximate index but faiss is not installed, so it "
                    "ranks exactly; pip install 'dotrec[ann]' to use the index",
                    DotrecWarning,
                    stacklevel=3,
                )
                return None
        ann.require_faiss()
        index.check(lambda: self._index_vectors(purpose), len(self.items))
        return index
