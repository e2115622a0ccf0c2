"""Training losses: plain functions on score tensors.

Each takes the scores of positives, shape (B,), and of their negatives,
shape (B, N), with an optional bool ``mask`` (B, N) marking which negatives
are real (False for padding, e.g. for a user with no item left to sample).
Each returns the mean loss over the batch as a 0-d tensor.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["bce", "bpr", "mse", "sampled_softmax"]


def _masked_mean(values: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    if mask is None:
        return values.mean()
    return (values * mask).sum() / mask.sum().clamp(min=1)


def bce(
    positive: torch.Tensor,
    negative: torch.Tensor,
    mask: torch.Tensor | None = None,
    label: torch.Tensor | None = None,
) -> torch.Tensor:
    """Pointwise binary cross-entropy: positives labelled 1, negatives 0.

    The mean of ``BCEWithLogitsLoss`` over every positive and real negative.
    ``label`` (B,), when given, is the target of each row's first score
    instead of 1: 0 for a row that is an observed negative.

    Example:
        >>> round(bce(torch.tensor([0.0]), torch.tensor([[0.0]])).item(), 6)  # log 2
        0.693147
    """
    target = torch.ones_like(positive) if label is None else label.to(positive.dtype)
    pos = F.binary_cross_entropy_with_logits(positive, target, reduction="none")
    neg = F.binary_cross_entropy_with_logits(negative, torch.zeros_like(negative), reduction="none")
    if mask is None:
        return (pos.sum() + neg.sum()) / max(positive.numel() + negative.numel(), 1)
    return (pos.sum() + (neg * mask).sum()) / (positive.numel() + mask.sum()).clamp(min=1)


def bpr(
    positive: torch.Tensor, negative: torch.Tensor, mask: torch.Tensor | None = None
) -> torch.Tensor:
    """Bayesian personalised ranking: -log sigmoid(s_pos - s_neg), averaged over pairs.

    Rendle, Freudenthaler, Gantner and Schmidt-Thieme, "BPR: Bayesian
    Personalized Ranking from Implicit Feedback" (UAI 2009).

    Example:
        >>> round(bpr(torch.tensor([2.0]), torch.tensor([[0.0]])).item(), 6)  # log(1 + e^-2)
        0.126928
    """
    return _masked_mean(-F.logsigmoid(positive.unsqueeze(1) - negative), mask)


def sampled_softmax(
    positive: torch.Tensor,
    negative: torch.Tensor,
    mask: torch.Tensor | None = None,
    log_q_positive: torch.Tensor | None = None,
    log_q_negative: torch.Tensor | None = None,
) -> torch.Tensor:
    """Softmax cross-entropy of each positive against its sampled negatives.

    With ``log_q_*``, the log-probabilities with which the sampler proposes
    each item, every logit is corrected to ``s - log q`` so that the loss
    estimates the full softmax over the catalogue without favouring the
    items the sampler draws often (the log-Q correction of Bengio and
    Senecal, 2008, as used by Yi et al., "Sampling-Bias-Corrected Neural
    Modeling for Large Corpus Item Recommendations", RecSys 2019).

    Example:
        >>> # -log(e / (e + 2)) = log(1 + 2 / e)
        >>> round(sampled_softmax(torch.tensor([1.0]), torch.tensor([[0.0, 0.0]])).item(), 6)
        0.551445
    """
    if log_q_positive is not None:
        positive = positive - log_q_positive
    if log_q_negative is not None:
        negative = negative - log_q_negative
    if mask is not None:
        negative = negative.masked_fill(~mask, float("-inf"))
    logits = torch.cat([positive.unsqueeze(1), negative], dim=1)
    return (torch.logsumexp(logits, dim=1) - positive).mean()


def mse(predicted: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean squared error, for explicit ratings.

    Example:
        >>> mse(torch.tensor([3.0, 5.0]), torch.tensor([4.0, 5.0])).item()
        0.5
    """
    return F.mse_loss(predicted, target)
