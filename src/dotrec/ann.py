"""Approximate top-K over item vectors: faiss indexes for large catalogues.

An :class:`ANNIndex` answers "which items have the largest inner product
with this query vector" (``metric="inner_product"``, for ``recommend``) or the
largest cosine (``metric="cosine"``, for ``similar_items``) without scoring
every item. The vectors are a model's search vectors, whose inner products
with its query vectors are its scores, biases included (see
``Recommender._item_vectors_for_search``), so the index ranks as the model.

:func:`search_topk` turns an index's answer into a :class:`~dotrec.topk.TopK`
like the exact routine's: it over-fetches past the items a row excludes,
drops them and any non-candidate, rescores the rest with the model's own
scores, and answers the rows the index left short exactly.

faiss is optional (``pip install 'dotrec[ann]'``): without it, building or
forcing an index fails with a message that says so; exact top-K never needs it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import math
import time
import weakref
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import scipy.sparse as sp
import torch

from dotrec.artifact import ANN_FILE
from dotrec.exceptions import MissingDependencyError, ModelFileError, StaleIndexError
from dotrec.topk import TopK, stored_mask
from dotrec.training import thread_count

__all__ = [
    "ANNIndex",
    "ANN_FILE",
    "DEFAULT_MIN_ITEMS",
    "HNSWSettings",
    "IVFSettings",
    "KINDS",
    "faiss_available",
    "folder_files",
    "index_file",
    "read_indexes",
    "require_faiss",
    "search_topk",
]

_log = logging.getLogger(__name__)

Kind = Literal["hnsw", "ivf"]
Metric = Literal["inner_product", "cosine"]
KINDS = ("hnsw", "ivf")
DEFAULT_MIN_ITEMS = 100_000
"""Catalogue size from which ``recommend`` uses an index unless told otherwise:
below it exact scoring takes a few milliseconds per user anyway."""
_FORMAT = 1


@dataclass
class HNSWSettings:
    """Settings of a hierarchical navigable small world graph (Malkov and Yashunin, 2018)."""

    m: int = 32
    """Links per item in the graph: more links, better recall, more memory."""
    ef_construction: int = 80
    """Candidates kept while linking each item: build time against graph quality."""
    ef_search: int = 1024
    """Candidates kept while searching (at least the number fetched): query
    time against recall; may be changed on a built index. On the million
    items of ``benchmarks/ann.py`` 256 finds 0.85 of the exact top-10, 1024
    finds 0.97."""

    def __post_init__(self) -> None:
        _check_positive(self, ("m", "ef_construction", "ef_search"))


@dataclass
class IVFSettings:
    """Settings of an inverted file: k-means lists, a few searched per query."""

    nlist: int | None = None
    """Number of k-means lists; None: 4 sqrt(n_items), at most n_items / 39 (so
    that every centroid is trained on at least 39 items)."""
    nprobe: int = 64
    """Lists searched per query: query time against recall; may be changed
    on a built index. On the million items of ``benchmarks/ann.py`` (4,000
    lists) 32 finds 0.97 of the exact top-10, 64 finds 0.99."""
    train_per_list: int = 64
    """Items per list sampled to train the k-means centroids."""
    seed: int = 0
    """Seed of the training sample and of k-means."""

    def __post_init__(self) -> None:
        _check_positive(self, ("nprobe", "train_per_list"))
        if self.nlist is not None:
            _check_positive(self, ("nlist",))

    def lists_for(self, n_items: int) -> int:
        """The number of lists used for ``n_items`` items."""
        if self.nlist is not None:
            if self.nlist > n_items:
                raise ValueError(f"nlist ({self.nlist}) exceeds the number of items ({n_items})")
            return self.nlist
        return max(1, min(round(4 * math.sqrt(n_items)), n_items // 39))


_SETTINGS = {"hnsw": HNSWSettings, "ivf": IVFSettings}


def _check_positive(settings: object, names: tuple[str, ...]) -> None:
    for name in names:
        value = getattr(settings, name)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")


def faiss_available() -> bool:
    """Whether faiss can be imported (the ``ann`` extra)."""
    try:
        _faiss()
    except MissingDependencyError:
        return False
    return True


def require_faiss():
    """The faiss module.

    Raises:
        MissingDependencyError: faiss is not installed; the message names
            ``pip install 'dotrec[ann]'``.
    """
    return _faiss()


def _faiss():
    try:
        import faiss
    except ImportError as err:
        raise MissingDependencyError(
            "approximate nearest-neighbour indexes need faiss, which is not installed: "
            "pip install 'dotrec[ann]' (or faiss-cpu). Exact top-K works without it "
            "(recommend(..., exact=True))."
        ) from err
    return faiss


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


def _parallel_search(faiss, index, queries: np.ndarray, k: int, params, threads: int):
    """``index.search`` in chunks of queries on Python threads, each with one OpenMP thread.

    faiss and Torch bring their own OpenMP runtimes, whose idle threads spin
    for a while after each parallel region; when faiss's team starts while
    Torch's threads still spin (and the other way round), both slow down:
    on two cores a 1M-item HNSW search took 1.5 ms per query within
    ``recommend`` against 0.3 ms with one OpenMP thread. faiss releases the
    GIL while it searches, so plain threads give the parallelism back, and
    the OpenMP thread count is per thread, so no one else's setting changes.
    """
    workers = min(threads, max(1, len(queries) // _CHUNK))

    def run(chunk: np.ndarray) -> np.ndarray:
        before = faiss.omp_get_max_threads()
        faiss.omp_set_num_threads(1)
        try:
            return index.search(chunk, k, params=params)[1]
        finally:
            faiss.omp_set_num_threads(before)

    if workers == 1:
        return run(queries).astype(np.int64, copy=False)
    chunks = np.array_split(queries, workers)
    with ThreadPoolExecutor(workers, thread_name_prefix="dotrec-ann") as pool:
        parts = list(pool.map(run, chunks))
    return np.concatenate(parts).astype(np.int64, copy=False)


_CHUNK = 16
"""Fewest queries per search thread."""


def _new_faiss_index(faiss, kind: str, config, points: np.ndarray):
    n, dim = points.shape
    if kind == "hnsw":
        index = faiss.IndexHNSWFlat(dim, config.m)
        index.hnsw.efConstruction = config.ef_construction
        index.add(points)
        return index

    # IVF: k-means on a seeded sample, then every item into its nearest list.
    nlist = config.lists_for(n)
    index = faiss.IndexIVFFlat(faiss.IndexFlatL2(dim), dim, nlist)
    index.cp.seed = config.seed
    rng = np.random.default_rng(config.seed)
    size = min(n, config.train_per_list * nlist)
    sample = points if size == n else points[np.sort(rng.choice(n, size, replace=False))]
    index.train(sample)
    index.add(points)
    return index


def search_topk(
    index: ANNIndex,
    queries: torch.Tensor,
    k: int,
    *,
    rescore: Callable[[np.ndarray, np.ndarray], torch.Tensor],
    exact: Callable[[np.ndarray], TopK],
    exclude: sp.csr_array | None = None,
    candidates: torch.Tensor | None = None,
) -> TopK:
    """Top-``k`` of each query by the index, as the exact routine would give it.

    Each row fetches ``k`` plus (a power of two at least) the number of
    items it excludes, so that excluded items cannot crowd out the list;
    candidates are restricted inside the search (a faiss ID selector). The
    fetched items that remain are rescored with ``rescore`` and the best
    ``k`` kept, best first, ties by lower index: scores are the model's own.
    A row the index leaves with fewer than ``min(k, candidates left)`` items
    (an IVF search whose lists run out, a graph search that cannot reach
    enough allowed items) is searched again with twice the effort, up to
    eight times the settings, then answered by ``exact``, so a row is short
    only when the catalogue has fewer candidates.

    Args:
        index: the index, built over the vectors the queries score against.
        queries: (B, D) query vectors.
        k: list length.
        rescore: ``rescore(rows, item_idx)`` -> scores (n,) of query
            ``rows[j]`` with item ``item_idx[j]``.
        exact: ``exact(rows)`` -> exact :class:`TopK` of those query rows.
        exclude: optional CSR (B, n_items) of items each row must not return.
        candidates: optional bool tensor (n_items,) of the items allowed.

    Returns:
        A :class:`TopK` on the CPU.
    """
    n_rows, width = len(queries), min(k, index.n_items)
    allowed = None if candidates is None else candidates.cpu().numpy().astype(bool)
    n_allowed = index.n_items if allowed is None else int(allowed.sum())
    excluded = _excluded_counts(exclude, allowed, n_rows)
    wanted = torch.from_numpy(np.minimum(k, n_allowed - excluded))
    fetch = np.minimum(k + _next_power_of_two(excluded), max(n_allowed, 1))
    array = queries.detach().float().cpu().numpy()

    indices = torch.full((n_rows, width), -1, dtype=torch.long)
    scores = torch.full((n_rows, width), torch.nan)
    counts = torch.zeros(n_rows, dtype=torch.long)
    short = []
    # The tensors below are small: on one Torch thread they never wait for a
    # second one to be scheduled, which on a busy machine cost milliseconds
    # per operation; faiss gets the threads instead (see _parallel_search).
    threads = torch.get_num_threads()
    with thread_count(1):
        for size in np.unique(fetch) if width else []:
            rows = np.flatnonzero(fetch == size)
            # Rows the search leaves short (its lists or graph walk ran out of
            # allowed items) search again with twice the effort, a few times.
            for attempt in range(_ATTEMPTS):
                labels = index.search(array[rows], int(size), allowed, 2.0**attempt, threads)
                top, top_scores, found = _rescored(
                    torch.from_numpy(labels), rows, exclude, rescore, width
                )
                indices[rows], scores[rows] = top, top_scores
                counts[rows] = torch.minimum(found, wanted[rows])
                rows = rows[(found < wanted[rows]).numpy()]
                if not len(rows):
                    break
            short.append(rows)

    # Rows the index still could not fill: exactly, so that none is short by accident.
    short = np.concatenate(short) if short else np.zeros(0, dtype=np.int64)
    if len(short):
        _log.debug("%d of %d rows answered exactly: the index returned too few", len(short), n_rows)
        fixed = exact(short)
        indices[short], scores[short], counts[short] = fixed.indices, fixed.scores, fixed.counts
    real = torch.arange(width).unsqueeze(0) < counts.unsqueeze(1)
    indices = torch.where(real, indices, torch.full_like(indices, -1))
    scores = torch.where(real, scores, torch.full_like(scores, torch.nan))
    return TopK(indices, scores, counts)


_ATTEMPTS = 4
"""Searches of a row before it is answered exactly (effort 1, 2, 4, 8)."""


def _rescored(labels, rows, exclude, rescore, width: int):
    """The best ``width`` of each row's fetched items by their true scores.

    Returns (indices, scores, found): found counts the usable items per row.
    """
    if labels.shape[1] < width:  # fewer allowed items than k
        padding = torch.full((len(labels), width - labels.shape[1]), -1, dtype=labels.dtype)
        labels = torch.cat([labels, padding], 1)
    valid = labels >= 0
    if exclude is not None:
        columns = labels.clamp(min=0)
        valid &= ~stored_mask(exclude, columns, torch.from_numpy(rows))
    at_row, at_col = torch.nonzero(valid, as_tuple=True)
    true = torch.full(labels.shape, -torch.inf)
    if len(at_row):
        values = rescore(rows[at_row.numpy()], labels[at_row, at_col].numpy())
        true[at_row, at_col] = values.detach().float().cpu()

    # Best first, ties by lower index, as the exact routine orders them.
    keys = torch.where(valid, labels, torch.full_like(labels, torch.iinfo(torch.long).max))
    order = torch.sort(keys, dim=1, stable=True).indices
    labels, true = labels.gather(1, order), true.gather(1, order)
    order = torch.sort(true, dim=1, descending=True, stable=True).indices[:, :width]
    found = valid.sum(1)
    return labels.gather(1, order), true.gather(1, order), found


def _excluded_counts(exclude: sp.csr_array | None, allowed: np.ndarray | None, n_rows: int):
    """Per row, how many of its excluded items could otherwise be returned."""
    if exclude is None:
        return np.zeros(n_rows, dtype=np.int64)
    exclude = sp.csr_array(exclude)
    if allowed is None:
        return np.diff(exclude.indptr).astype(np.int64)
    owner = np.repeat(np.arange(n_rows), np.diff(exclude.indptr))
    return np.bincount(owner, weights=allowed[exclude.indices], minlength=n_rows).astype(np.int64)


def _next_power_of_two(values: np.ndarray) -> np.ndarray:
    """The smallest power of two >= each value (0 stays 0): few distinct fetch sizes."""
    out = np.zeros_like(values)
    positive = values > 0
    out[positive] = 2 ** np.ceil(np.log2(values[positive])).astype(np.int64)
    return out


# --- the model folder -------------------------------------------------------------


@dataclass
class _LazyFile:
    """An index file opened at load time and read on first use.

    Holding the file open keeps the version that was loaded readable even if
    the folder is replaced meanwhile (``dotrec index`` rebuilding it).
    """

    path: Path
    sha256: str
    handle: Any = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self.handle = open(self.path, "rb")  # noqa: SIM115 - closed by read() or at collection
        weakref.finalize(self, self.handle.close)

    def read(self, keep: bool = False) -> bytes:
        self.handle.seek(0)
        data = self.handle.read()
        if hashlib.sha256(data).hexdigest() != self.sha256:
            raise ModelFileError(
                f"{self.path} does not match the checksum in {ANN_FILE}: the index file is "
                "truncated or was changed after saving. Rebuild it: dotrec index MODEL_DIR."
            )
        if not keep:
            self.handle.close()
        return data


def folder_files(
    indexes: dict[str, ANNIndex], vectors: Callable[[str], torch.Tensor], n_items: int
) -> tuple[dict[str, str | None], dict[str, bytes | None]]:
    """The text and binary files that store ``indexes`` in a model folder.

    Returns ``({ANN_FILE: json}, {file name: serialized index})``; with no
    index, the same names mapped to None (to remove them).

    Raises:
        StaleIndexError: an index no longer matches the model's vectors.
    """
    payloads: dict[str, bytes | None] = {index_file(p): None for p in ("recommend", "similar")}
    if not indexes:
        return {ANN_FILE: None}, payloads
    records = {}
    for purpose, index in indexes.items():
        index._checked = False  # compare the fingerprint in full before writing
        index.check(lambda purpose=purpose: vectors(purpose), n_items)
        data = index.to_bytes()
        name = index_file(purpose)
        payloads[name] = data
        records[purpose] = index.to_dict() | {
            "file": name,
            "sha256": hashlib.sha256(data).hexdigest(),
            "bytes": len(data),
        }
    meta = {"format": _FORMAT, "faiss_version": _faiss().__version__, "indexes": records}
    return {ANN_FILE: json.dumps(meta, indent=1)}, payloads


def index_file(purpose: str) -> str:
    """The file name of the index for ``purpose`` (``"recommend"`` or ``"similar"``)."""
    return f"ann-{purpose}.faiss"


def read_indexes(folder: Path) -> dict[str, ANNIndex]:
    """The indexes described by ``folder/ann.json``, their files read on first use.

    Raises:
        ModelFileError: the description is unreadable or a file is missing.
    """
    path = folder / ANN_FILE
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
        if meta.get("format") != _FORMAT:
            raise ValueError(f"format {meta.get('format')!r}, expected {_FORMAT}")
        indexes = {}
        for purpose, record in meta["indexes"].items():
            if purpose not in ("recommend", "similar") or record["file"] != index_file(purpose):
                raise ValueError(f"unexpected index {purpose!r} in file {record.get('file')!r}")
            index = ANNIndex.from_dict(record)
            index._payload = _LazyFile(folder / record["file"], str(record["sha256"]))
            indexes[purpose] = index
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as err:
        raise ModelFileError(
            f"{path}: cannot read the approximate index ({type(err).__name__}: {err}). "
            "Rebuild it with `dotrec index MODEL_DIR`, or remove it with `dotrec index "
            "MODEL_DIR --remove`."
        ) from err
    return indexes
