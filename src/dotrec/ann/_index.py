"""ANNIndex: a faiss index over a model's item vectors, with what it was built from."""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import math
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from dotrec.ann._faiss import _faiss, _new_faiss_index, _parallel_search
from dotrec.ann._settings import (
    _SETTINGS,
    DEFAULT_MIN_ITEMS,
    KINDS,
    HNSWSettings,
    IVFSettings,
    Kind,
    Metric,
)
from dotrec.exceptions import StaleIndexError

if TYPE_CHECKING:
    from dotrec.ann._folder import _LazyFile

_log = logging.getLogger(__name__)


def fingerprint(vectors: torch.Tensor) -> str:
    """A digest of the vectors' shape and float32 values: an index is built for these."""
    array = np.ascontiguousarray(vectors.detach().float().cpu().numpy())
    digest = hashlib.blake2b(str(array.shape).encode(), digest_size=16)
    digest.update(memoryview(array).cast("B"))
    return digest.hexdigest()


class ANNIndex:
    """A faiss index over a model's item vectors, with what it was built from.

    Attributes:
        kind: ``"hnsw"`` or ``"ivf"``.
        metric: ``"inner_product"`` (the index answers maximum inner product
            search, as ``recommend`` ranks) or ``"cosine"`` (as ``similar_items``).
        settings: :class:`HNSWSettings` or :class:`IVFSettings`; the query-time
            ones (``ef_search``, ``nprobe``) may be changed after building.
        n_items, dim: shape of the vectors it was built from.
        fingerprint: digest of those vectors (:func:`fingerprint`); an index
            whose model's vectors no longer match is refused.
        min_items: catalogue size from which ``recommend(exact=None)`` uses it.
        build_seconds: time the build took.
    """

    def __init__(
        self,
        kind: Kind,
        metric: Metric,
        settings: HNSWSettings | IVFSettings,
        n_items: int,
        dim: int,
        fingerprint: str,
        min_items: int = DEFAULT_MIN_ITEMS,
        build_seconds: float = 0.0,
        max_norm: float = 0.0,
    ):
        self.kind, self.metric, self.settings = kind, metric, settings
        self.n_items, self.dim, self.fingerprint = n_items, dim, fingerprint
        self.min_items, self.build_seconds, self.max_norm = min_items, build_seconds, max_norm
        self._index: Any = None
        self._payload: _LazyFile | None = None
        self._checked = False  # fingerprint compared with the model's vectors

    def __repr__(self) -> str:
        fields_ = ", ".join(f"{k}={v!r}" for k, v in dataclasses.asdict(self.settings).items())
        return f"ANNIndex({self.kind}, {self.metric}, {self.n_items} items, {fields_})"

    @classmethod
    def build(
        cls,
        vectors: torch.Tensor,
        kind: Kind = "ivf",
        metric: Metric = "inner_product",
        *,
        min_items: int = DEFAULT_MIN_ITEMS,
        **settings: Any,
    ) -> ANNIndex:
        """Index ``vectors`` (n_items, D).

        For ``"inner_product"`` the vectors are moved onto a sphere by the
        standard reduction of maximum inner product search to nearest
        neighbours (Bachrach et al., RecSys 2014): each gets the extra
        coordinate ``sqrt(M^2 - |x|^2)``, M the largest norm, and each query
        a 0, so that ``|q - x|^2 = |q|^2 + M^2 - 2 <q, x>`` orders items
        exactly as the inner product does. We measured both ways on
        clustered items with popularity-skewed norms and biases (the data of
        ``benchmarks/ann.py``): HNSW built with faiss's inner-product metric
        stops improving however many candidates it searches (recall@10 0.95
        at 200,000 items, 0.87 at a million), since inner product is no metric
        and the graph leaves low-norm regions hard to reach, while with the
        reduction recall keeps rising with ``ef_search`` (0.99 at 200,000);
        IVF with inner-product lists needed about four times the lists
        searched for the recall of the reduction (0.97 with 32 lists against
        8). So both kinds index the reduced vectors.
        For ``"cosine"`` the vectors are normalised, where L2 and cosine agree.

        Args:
            vectors: the item vectors, on any device.
            kind: ``"ivf"`` (k-means lists: a fast build, compact, and on
                the benchmark the best recall per query time) or ``"hnsw"``
                (a graph: no training, but a slower build, more memory, and
                with skewed norms a large ``ef_search`` for high recall).
            metric: what the index ranks by.
            min_items: see :attr:`min_items`.
            **settings: fields of :class:`HNSWSettings` or :class:`IVFSettings`.

        Raises:
            MissingDependencyError: faiss is not installed.
            ValueError: an unknown kind, metric or setting.
        """
        if kind not in _SETTINGS:
            raise ValueError(f"kind must be one of {', '.join(KINDS)}; got {kind!r}")
        if metric not in ("inner_product", "cosine"):
            raise ValueError(f"metric must be 'inner_product' or 'cosine', got {metric!r}")
        names = {f.name for f in dataclasses.fields(_SETTINGS[kind])}
        unknown = sorted(set(settings) - names)
        if unknown:
            raise ValueError(f"unknown {kind} settings {unknown}; known: {sorted(names)}")
        config = _SETTINGS[kind](**settings)
        if kind == "ivf":  # record the number of lists chosen
            config = dataclasses.replace(config, nlist=config.lists_for(len(vectors)))
        faiss = _faiss()

        start = time.perf_counter()
        data = vectors.detach().float().cpu().numpy()
        index = cls(kind, metric, config, data.shape[0], data.shape[1], fingerprint(vectors))
        index.min_items = int(min_items)
        index.max_norm = float(np.sqrt((data.astype(np.float64) ** 2).sum(1).max(initial=0.0)))
        points = index._to_points(data)
        index._index = _new_faiss_index(faiss, kind, config, points)
        index.build_seconds = time.perf_counter() - start
        index._checked = True
        _log.info("built %r in %.1f s", index, index.build_seconds)
        return index

    def _to_points(self, data: np.ndarray) -> np.ndarray:
        """Item vectors as the faiss index stores them (see :meth:`build`)."""
        data = data.astype(np.float64)
        if self.metric == "cosine":
            norms = np.linalg.norm(data, axis=1, keepdims=True)
            return np.ascontiguousarray(data / np.maximum(norms, 1e-12), dtype=np.float32)
        extra = np.sqrt(np.maximum(self.max_norm**2 - (data**2).sum(1), 0.0))
        return np.ascontiguousarray(np.hstack([data, extra[:, None]]), dtype=np.float32)

    def _to_queries(self, queries: np.ndarray) -> np.ndarray:
        queries = queries.astype(np.float32)
        if self.metric == "cosine":
            norms = np.linalg.norm(queries, axis=1, keepdims=True)
            return np.ascontiguousarray(queries / np.maximum(norms, 1e-12))
        return np.ascontiguousarray(np.hstack([queries, np.zeros((len(queries), 1), np.float32)]))

    def check(self, vectors: Callable[[], torch.Tensor], n_items: int) -> None:
        """Refuse the index when the model's vectors are not those it was built from.

        The item count is compared on every call; the fingerprint of
        ``vectors()`` the first time after loading (building sets it).

        Raises:
            StaleIndexError: the vectors changed since the index was built.
        """
        if n_items != self.n_items or not self._checked:
            found = vectors()
            if n_items != self.n_items or fingerprint(found) != self.fingerprint:
                raise StaleIndexError(
                    f"the {self.kind} index was built for other item vectors ({self.n_items} "
                    f"items, fingerprint {self.fingerprint[:12]}; the model now has {n_items} "
                    f"items, fingerprint {fingerprint(found)[:12]}). The model changed after "
                    "the index was built: rebuild it with model.build_index() (command line: "
                    "dotrec index MODEL_DIR), or use exact=True."
                )
            self._checked = True

    def search(
        self,
        queries: np.ndarray,
        k: int,
        allowed: np.ndarray | None = None,
        effort: float = 1.0,
        threads: int | None = None,
    ) -> np.ndarray:
        """Indices (B, k) of the approximately best items for ``queries`` (B, D).

        With ``allowed``, the search effort (``ef_search`` or ``nprobe``) grows
        by the inverse of the share of items allowed, so that about as many
        allowed items are looked at as an unrestricted search looks at items.

        Args:
            queries: float array of query vectors.
            k: items to fetch per query.
            allowed: optional bool array (n_items,): only these items are returned.
            effort: multiplies ``ef_search`` or ``nprobe``.
            threads: search threads (default: Torch's thread count).

        Returns:
            int64 array; -1 where the index found fewer than ``k`` items.
        """
        faiss = _faiss()
        index = self._faiss_index()
        bits = None
        scale = effort if allowed is None else effort * self.n_items / max(int(allowed.sum()), 1)
        if self.kind == "hnsw":
            params = faiss.SearchParametersHNSW()
            params.efSearch = min(math.ceil(max(self.settings.ef_search, k) * scale), self.n_items)
            params.efSearch = max(params.efSearch, k)
        else:
            params = faiss.SearchParametersIVF()
            params.nprobe = min(math.ceil(self.settings.nprobe * scale), index.nlist)
        if allowed is not None:
            bits = np.packbits(allowed.astype(np.uint8), bitorder="little")
            params.sel = faiss.IDSelectorBitmap(len(allowed), faiss.swig_ptr(bits))
        threads = torch.get_num_threads() if threads is None else threads
        labels = _parallel_search(faiss, index, self._to_queries(queries), k, params, threads)
        del bits  # the selector points into it until here
        return labels

    def _faiss_index(self) -> Any:
        if self._index is None:
            faiss = _faiss()
            data = self._payload.read()
            self._index = faiss.deserialize_index(np.frombuffer(data, dtype=np.uint8))
            self._payload = None
        return self._index

    def to_bytes(self) -> bytes:
        """The faiss index, serialized by faiss (``serialize_index``)."""
        if self._index is None and self._payload is not None:
            return self._payload.read(keep=True)
        return _faiss().serialize_index(self._index).tobytes()

    def to_dict(self) -> dict[str, Any]:
        """Everything but the faiss index itself, as plain JSON values."""
        return {
            "kind": self.kind,
            "metric": self.metric,
            "settings": dataclasses.asdict(self.settings),
            "n_items": self.n_items,
            "dim": self.dim,
            "fingerprint": self.fingerprint,
            "min_items": self.min_items,
            "build_seconds": self.build_seconds,
            "max_norm": self.max_norm,
        }

    @classmethod
    def from_dict(cls, record: dict[str, Any]) -> ANNIndex:
        """An index description from :meth:`to_dict`, without its faiss index."""
        kind = record["kind"]
        if kind not in _SETTINGS or record["metric"] not in ("inner_product", "cosine"):
            raise ValueError(f"unknown index kind or metric: {kind!r}, {record['metric']!r}")
        return cls(
            kind,
            record["metric"],
            _SETTINGS[kind](**record["settings"]),
            int(record["n_items"]),
            int(record["dim"]),
            str(record["fingerprint"]),
            int(record["min_items"]),
            float(record["build_seconds"]),
            float(record["max_norm"]),
        )
