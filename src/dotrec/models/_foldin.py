"""Fold-in: a query representation for a person known only by a list of items.

The helpers here turn histories of raw item IDs into a sparse matrix and
solve, per model family, for the vector a new user would have had against
the trained (fixed) item side. Each works on a whole batch of histories at
once; nothing loops over single items in Python.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F

from dotrec.data import Vocabulary, ids_to_text
from dotrec.exceptions import UnknownIDError
from dotrec.topk import stored_mask

__all__ = [
    "als_user_factors",
    "history_matrix",
    "mean_item_vectors",
    "propagated_user_vectors",
    "solve_user_vectors",
]


def history_matrix(
    histories: Sequence[Sequence[object]],
    items: Vocabulary,
    unknown_items: Literal["error", "ignore"] = "error",
) -> sp.csr_array:
    """The histories as a 0/1 matrix (n_histories, n_items) over the model's items.

    Repeated items of a history count once.

    Raises:
        TypeError: ``histories`` is a string, or one history is.
        ValueError: ``unknown_items`` is neither ``"error"`` nor ``"ignore"``.
        UnknownIDError: naming the item IDs the model does not know, unless
            ``unknown_items="ignore"`` (they are then dropped).
    """
    if unknown_items not in ("error", "ignore"):
        raise ValueError(f"unknown_items must be 'error' or 'ignore', got {unknown_items!r}")
    if isinstance(histories, (str, bytes)) or any(isinstance(h, (str, bytes)) for h in histories):
        raise TypeError(
            "histories is a list of histories, each a list of item IDs; wrap one history "
            "in a list: [['i1', 'i2']]"
        )
    lengths = np.array([len(h) for h in histories], dtype=np.int64)
    flat = [item_id for history in histories for item_id in history]
    text = ids_to_text(flat) if flat else np.empty(0, dtype=object)
    item_idx = items.lookup(text) if flat else np.empty(0, dtype=np.int64)
    unknown = item_idx < 0
    if unknown.any() and unknown_items == "error":
        raise UnknownIDError(
            "item",
            list(dict.fromkeys(text[unknown])),
            hint="Pass unknown_items='ignore' to leave such items out of the histories.",
        )
    rows = np.repeat(np.arange(len(histories)), lengths)[~unknown]
    matrix = sp.csr_array(
        (np.ones(len(rows), dtype=np.float32), (rows, item_idx[~unknown])),
        shape=(len(histories), len(items)),
    )
    matrix.sum_duplicates()
    matrix.data[:] = 1.0
    matrix.sort_indices()
    return matrix


def _coo(history: sp.csr_array, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    coo = history.tocoo()
    return (
        torch.from_numpy(coo.row.astype(np.int64)).to(device),
        torch.from_numpy(coo.col.astype(np.int64)).to(device),
    )


def mean_item_vectors(history: sp.csr_array, vectors: torch.Tensor) -> torch.Tensor:
    """The mean of each history's item vectors: (n_histories, d); no empty rows."""
    rows, cols = _coo(history, vectors.device)
    sums = vectors.new_zeros(history.shape[0], vectors.shape[1]).index_add_(0, rows, vectors[cols])
    lengths = torch.bincount(rows, minlength=history.shape[0]).clamp(min=1)
    return sums / lengths.to(sums).unsqueeze(1)


def als_user_factors(
    history: sp.csr_array,
    item_factors: torch.Tensor,
    regularization: float | torch.Tensor,
    alpha: float,
) -> torch.Tensor:
    """The exact ALS user vectors of the histories against fixed item factors Y.

    For each history u, the minimiser of sum_i c_ui (p_ui - <x, y_i>)^2 +
    lambda |x|^2 over the whole catalogue, the user half-step of Hu, Koren
    and Volinsky (2008) solved exactly instead of by conjugate gradient:
    (Y^T Y + lambda I + alpha Y_u^T Y_u) x = (1 + alpha) Y_u^T 1, where Y_u
    holds the vectors of the history's items (c = 1 + alpha on them, 1
    elsewhere). Solved exactly in float64. ``regularization`` is one
    lambda for all, or one per history (shape (n_histories,)).

    Returns:
        Tensor (n_histories, factors), float32, on the item factors' device.
    """
    y = item_factors.double()
    gram = y.T @ y
    per_row = isinstance(regularization, torch.Tensor)
    if not per_row:
        gram.diagonal().add_(regularization)
    rows, cols = _coo(history, y.device)
    n, d = history.shape[0], y.shape[1]
    rhs = torch.zeros(n, d, dtype=y.dtype, device=y.device).index_add_(0, rows, y[cols])
    rhs *= 1.0 + alpha
    # sum over each history's items of y_i y_i^T: rows sorted by length and
    # padded in chunks, so that padding costs little
    lengths = np.diff(history.indptr)
    system = gram.expand(n, d, d).clone()
    if per_row:
        system.diagonal(dim1=1, dim2=2).add_(regularization.to(system).unsqueeze(1))
    order = np.argsort(lengths, kind="stable")
    for start in range(0, n, 64):
        chunk = order[start : start + 64]
        width = int(lengths[chunk].max(initial=0))
        if width == 0:
            continue
        sub = history[chunk]
        sub_rows, sub_cols = _coo(sp.csr_array(sub), y.device)
        slot = torch.arange(len(sub_rows), device=y.device)
        slot -= torch.from_numpy(sub.indptr[:-1].astype(np.int64)).to(y.device)[sub_rows]
        padded = y.new_zeros(len(chunk), width, d)
        padded[sub_rows, slot] = y[sub_cols]
        outer = padded.transpose(1, 2) @ padded
        system[torch.from_numpy(chunk).to(y.device)] += alpha * outer
    return torch.linalg.solve(system, rhs).float()


def propagated_user_vectors(
    history: sp.csr_array, item_layers: list[torch.Tensor], item_degree: np.ndarray
) -> torch.Tensor:
    """LightGCN final vectors of new users, by one propagation step from the items.

    A user's layer k + 1 is sum over its items i of e_i^(k) / sqrt(|N_u| |N_i|)
    (the symmetric normalisation of the graph with the user's edges added,
    item degrees as in training). The user's layer-0 vector, which only
    training could give, is taken as the mean of its layers 1..K, so the final
    vector is the mean of layers 1..K.

    Args:
        history: 0/1 matrix (n_histories, n_items), no empty rows.
        item_layers: the trained items' vectors of layers 0..K (K >= 1), each
            (n_items, d).
        item_degree: training users per item (n_items,).
    """
    device = item_layers[0].device
    rows, cols = _coo(history, device)
    user_degree = torch.bincount(rows, minlength=history.shape[0]).double()
    degree = torch.from_numpy(item_degree.astype(np.float64)).to(device)
    weight = (1.0 / torch.sqrt(user_degree[rows] * degree[cols].clamp(min=1))).float()
    total = None
    for layer in item_layers[:-1]:
        out = torch.zeros(history.shape[0], layer.shape[1], device=device)
        out.index_add_(0, rows, layer[cols] * weight.unsqueeze(1))
        total = out if total is None else total + out
    return total / (len(item_layers) - 1)


def solve_user_vectors(
    history: sp.csr_array,
    item_vectors: torch.Tensor,
    item_bias: torch.Tensor,
    *,
    loss: Literal["bce", "bpr", "softmax"],
    l2: float,
    n_negatives: int,
    draws: torch.Tensor,
    negative_cdf: torch.Tensor,
    logq_correction: bool = True,
    steps: int = 100,
    lr: float = 0.05,
) -> tuple[torch.Tensor, torch.Tensor]:
    """User vectors and biases that fit the histories under matrix factorization's loss.

    The item vectors and biases stay fixed; each history's vector p (and,
    for BCE, its bias b; BPR and softmax are blind to a user bias) minimises
    the model's training objective restricted to that user: over its items
    i, loss(<p, q_i> + b + b_i against the negatives' scores) + l2 |p|^2
    per item, as each training row of the user contributes.

    Negatives are drawn once per (item, slot) from ``draws`` (uniform
    numbers in [0, 1), shape (n_items, m)) through the inverse of
    ``negative_cdf``, the model's negative distribution, and those in the
    history are masked out. They depend on the item and the model's seed
    only, so a history gets the same vector whatever else is in the batch.
    ``m`` may exceed the model's ``n_negatives``; the loss weighs the
    negatives so that it estimates the training objective.

    Adam (``steps`` full-batch steps, learning rate ``lr`` decayed by a
    cosine schedule, from zero) minimises the sum over histories; Adam's
    updates are per coordinate, so each history's solution does not depend
    on the others.

    Returns:
        The vectors (n_histories, d) and biases (n_histories,), without gradients.
    """
    device = item_vectors.device
    rows, cols = _coo(history, device)
    n, m = history.shape[0], draws.shape[1]
    negatives = torch.searchsorted(negative_cdf, draws[cols].contiguous(), right=True)
    negatives = negatives.clamp(max=len(negative_cdf) - 1)
    mask = ~stored_mask(history, negatives, rows)
    # Scores of the drawn pairs: from full score rows when those are cheaper
    # than gathering each pair's item vector (many rows per history).
    dense = n * item_vectors.shape[0] <= len(rows) * (m + 1)
    if not dense:
        q_pos, b_pos = item_vectors[cols], item_bias[cols]
        q_neg, b_neg = item_vectors[negatives], item_bias[negatives]

    vectors = torch.zeros(n, item_vectors.shape[1], device=device, requires_grad=True)
    bias = torch.zeros(n, device=device, requires_grad=(loss == "bce"))
    params = [vectors, bias] if loss == "bce" else [vectors]
    optimizer = torch.optim.Adam(params, lr=lr)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, steps)
    per_history = torch.bincount(rows, minlength=n).to(vectors.dtype)  # L2 once per row
    n_candidates = max(item_vectors.shape[0] - 1, 1)
    offset = -math.log(m / n_candidates) if logq_correction else math.log(n_negatives / m)
    for _ in range(steps):
        if dense:
            full = vectors @ item_vectors.T + item_bias + bias.unsqueeze(1)
            positive, negative = full[rows, cols], full[rows.unsqueeze(1), negatives]
        else:
            p, b = vectors[rows], bias[rows]
            positive = (p * q_pos).sum(-1) + b + b_pos
            negative = torch.einsum("rd,rmd->rm", p, q_neg) + b.unsqueeze(1) + b_neg
        per_row = _row_loss(loss, positive, negative, mask, n_negatives, offset)
        objective = per_row.sum() + l2 * (vectors.square().sum(1) @ per_history)
        optimizer.zero_grad(set_to_none=True)
        objective.backward()
        optimizer.step()
        schedule.step()
    return vectors.detach(), bias.detach()


def _row_loss(loss, positive, negative, mask, n_negatives: int, offset: float) -> torch.Tensor:
    """Each history row's loss, weighted to estimate the training rows' loss."""
    weight = mask.to(negative.dtype)
    real = weight.sum(1).clamp(min=1)
    if loss == "bce":
        # BCE averages over the row's 1 + n scores; m drawn negatives stand for n
        neg = F.binary_cross_entropy_with_logits(
            negative, torch.zeros_like(negative), reduction="none"
        )
        pos = F.binary_cross_entropy_with_logits(
            positive, torch.ones_like(positive), reduction="none"
        )
        return (pos + n_negatives * (neg * weight).sum(1) / real) / (1 + n_negatives)
    if loss == "bpr":
        pairs = -F.logsigmoid(positive.unsqueeze(1) - negative)
        return (pairs * weight).sum(1) / real
    negative = (negative + offset).masked_fill(~mask, -torch.inf)
    logits = torch.cat([positive.unsqueeze(1), negative], 1)
    return torch.logsumexp(logits, 1) - positive
