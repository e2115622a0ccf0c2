"""search_topk: an index's answer as the exact top-K routine would give it."""

from __future__ import annotations

import logging
from collections.abc import Callable

import numpy as np
import scipy.sparse as sp
import torch

from dotrec.ann._index import ANNIndex
from dotrec.topk import TopK, stored_mask
from dotrec.training import thread_count

_log = logging.getLogger(__name__)


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
