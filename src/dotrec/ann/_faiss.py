"""faiss, the optional dependency: importing it, building its indexes, searching on threads."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np

from dotrec.exceptions import MissingDependencyError


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
