"""What the report's plots show, computed from fitted models; no drawing here."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd

from dotrec.calibration import (
    _sigmoid,
    _split_users,
    _uncalibrated,
    calibration_pairs,
    expected_calibration_error,
    fit_platt,
    reliability_curve,
)
from dotrec.data import Interactions
from dotrec.exceptions import DotrecError
from dotrec.models.base import Recommender

_log = logging.getLogger(__name__)

Projection = Literal["pca", "tsne"]


def uses_validation(model: Recommender) -> bool:
    """True when ``model.fit(train, validation)`` uses the validation data.

    Models trained in epochs (matrix factorization, BPR) rank it for early
    stopping; the others accept it and ignore it.
    """
    return model.uses_validation


# --- training curves ---------------------------------------------------------------


@dataclass
class TrainingCurve:
    """A model's record of training, epoch by epoch.

    Attributes:
        label: the model's label in the report.
        loss: mean training loss of each epoch, epochs 1, 2, ...
        metric: the validation metric's name (e.g. ``ndcg@10``), or None.
        epochs: the epochs at which the validation data was ranked.
        values: the metric at those epochs.
        best_epoch: the epoch whose weights were kept, or None.
        note: why there is no validation metric, when there is none.
    """

    label: str
    loss: list[float]
    metric: str | None = None
    epochs: list[int] = field(default_factory=list)
    values: list[float] = field(default_factory=list)
    best_epoch: int | None = None
    note: str = ""


def training_curves(models: dict[str, Recommender]) -> tuple[list[TrainingCurve], list[str]]:
    """The curves of models with a per-epoch record, and a line for each model without one."""
    curves, without = [], []
    for label, model in models.items():
        info = model.fit_info
        loss = [float(x) for x in info.get("epoch_loss") or []]
        if not loss:
            without.append(
                f"{label}: no training curve; {model.name} is not trained in epochs "
                "(it is fitted in one pass)."
            )
            continue
        record = info.get("validation")
        if record:
            curves.append(
                TrainingCurve(
                    label,
                    loss,
                    record["metric"],
                    list(record["epochs"]),
                    list(record["values"]),
                    record.get("best_epoch"),
                )
            )
        elif uses_validation(model):
            curves.append(TrainingCurve(label, loss, note="trained without validation data"))
        else:
            curves.append(
                TrainingCurve(label, loss, note=f"{model.name} does not use validation data")
            )
    return curves, without


# --- exposure ------------------------------------------------------------------------


@dataclass
class Exposure:
    """How popular each item was in training, and how often a model recommends it.

    Attributes:
        label: the model's label.
        train_counts: int64 (n_items,): training users who had each item.
        recommended: int64 (n_items,): evaluated users whose top-``k`` list
            holds each item.
        k: the list length counted.
        n_users: the users whose lists are counted.
    """

    label: str
    train_counts: np.ndarray
    recommended: np.ndarray
    k: int
    n_users: int


def exposure(label: str, model: Recommender, top_items: np.ndarray, k: int) -> Exposure:
    """Counts of each item in the top-``k`` of ``top_items`` (item indices, -1 for none)."""
    top = np.asarray(top_items)[:, :k]
    listed = top[top >= 0]
    counts = np.bincount(listed, minlength=len(model.items)).astype(np.int64)
    return Exposure(label, model.item_counts.astype(np.int64), counts, k, len(top))


# --- reliability ---------------------------------------------------------------------


@dataclass
class ReliabilityCurve:
    """Binned mean predicted probability against the observed share of positives."""

    name: str
    """What was taken as the probability, e.g. ``"sigmoid(score)"``."""
    predicted: np.ndarray
    observed: np.ndarray
    weight: np.ndarray
    """Share of the measured pairs' weight in each bin."""
    ece: float


@dataclass
class Reliability:
    """One model's reliability curves (before and after calibration) and what they rest on."""

    label: str
    curves: list[ReliabilityCurve]
    note: str
    n_pairs: int = 0
    n_users: int = 0
    base_rate: float = float("nan")


def reliability(
    label: str,
    model: Recommender,
    heldout: Interactions,
    *,
    n_bins: int = 15,
    max_pairs: int = 1_000_000,
    seed: int = 0,
) -> Reliability:
    """A model's reliability curves on held-out pairs (as calibration_pairs scores them).

    "After" uses the model's own calibrator when it has one, measured on
    every pair; otherwise Platt scaling fitted on 70% of the held-out users
    and measured on the other 30% (as :func:`dotrec.calibration.calibrate`
    does, without attaching it to the model). "Before" is ``sigmoid(score)``
    for models trained with binary cross-entropy, and absent for the others,
    whose scores have no probability reading. Bins hold equal weight.
    """
    try:
        pairs = calibration_pairs(model, heldout, max_pairs=max_pairs, seed=seed)
    except ValueError as err:  # no held-out positive the model can score
        return Reliability(label, [], f"no reliability diagram: {err}")
    if model.calibrator is not None:
        measured, calibrator = pairs, model.calibrator
        after = f"its {calibrator.method} calibrator"
        source = calibrator.info.get("heldout_source", "data not recorded")
        note = f"after: the model's own calibrator (fitted on {source}), on every held-out user"
    else:
        fit, measured, in_sample = _split_users(pairs, 0.3, seed)
        calibrator = fit_platt(fit.scores, fit.labels, fit.weights)
        after = "Platt scaling"
        note = (
            "after: Platt scaling fitted and measured on the same pairs (too few users to "
            "hold some out)"
            if in_sample
            else "after: Platt scaling fitted on 70% of the held-out users, measured on the others"
        )
    before, before_note = _uncalibrated(model)
    curves = []
    if before is not None:
        curves.append(_curve(before, _sigmoid(measured.scores), measured, n_bins))
    curves.append(_curve(after, calibrator.transform(measured.scores), measured, n_bins))
    base_rate = float(np.sum(measured.weights * measured.labels) / measured.weights.sum())
    users = len(np.unique(measured.user_idx))
    return Reliability(label, curves, f"{before_note}; {note}", len(measured), users, base_rate)


def _curve(name: str, probabilities: np.ndarray, pairs, n_bins: int) -> ReliabilityCurve:
    args = (probabilities, pairs.labels, n_bins, "mass", pairs.weights)
    predicted, observed, weight = reliability_curve(*args)
    return ReliabilityCurve(name, predicted, observed, weight, expected_calibration_error(*args))


# --- the item map --------------------------------------------------------------------


@dataclass
class ItemMap:
    """Items placed in two dimensions from a model's item vectors.

    Attributes:
        label: the model's label.
        coords: float64 (n_items, 2), in the model's item order.
        axes: the two axis titles (for PCA, with the share of variance).
        counts: training users who had each item (for the point sizes).
        genre: each item's first genre, "" where none is known.
    """

    label: str
    coords: np.ndarray
    axes: tuple[str, str]
    counts: np.ndarray
    genre: np.ndarray


def item_map(
    label: str,
    model: Recommender,
    projection: Projection = "pca",
    item_genres: pd.Series | None = None,
    seed: int = 0,
) -> ItemMap | str:
    """The item map of an embedding model, or a line saying why it has none."""
    if not model.dot_product:
        return f"{label}: no item map; {model.name} has no item embeddings ({model.score_kind})."
    vectors = model._item_vectors().detach().double().cpu().numpy()
    if vectors.shape[1] < 2 or len(vectors) < 3:
        return f"{label}: no item map; {vectors.shape} item vectors are too few or too short."
    coords, axes = (_pca if projection == "pca" else _tsne)(vectors, seed)
    return ItemMap(label, coords, axes, model.item_counts, first_genres(model, item_genres))


def first_genres(model: Recommender, item_genres: pd.Series | None) -> np.ndarray:
    """Each item's first genre (``|``-separated text), "" where none is known."""
    if item_genres is None:
        return np.full(len(model.items), "", dtype=object)
    text = item_genres.reindex(model.items.ids).fillna("").astype(str)
    return text.str.split("|").str[0].str.strip().to_numpy(dtype=object)


def _pca(vectors: np.ndarray, seed: int) -> tuple[np.ndarray, tuple[str, str]]:
    """The first two principal components; each axis's share of the variance in its title."""
    centred = vectors - vectors.mean(axis=0)
    u, s, vt = np.linalg.svd(centred, full_matrices=False)
    signs = np.sign(vt[:2, np.argmax(np.abs(vt[:2]), axis=1)].diagonal())  # fix each sign
    coords = u[:, :2] * s[:2] * np.where(signs == 0, 1, signs)
    share = s**2 / max(float(np.sum(s**2)), 1e-300)
    return coords, (f"PC1 ({share[0]:.0%} of variance)", f"PC2 ({share[1]:.0%} of variance)")


def _tsne(vectors: np.ndarray, seed: int) -> tuple[np.ndarray, tuple[str, str]]:
    tsne = check_tsne()
    perplexity = float(min(30.0, max(1.0, (len(vectors) - 1) / 3)))
    coords = tsne(2, init="pca", perplexity=perplexity, random_state=seed).fit_transform(vectors)
    return np.asarray(coords, dtype=np.float64), ("t-SNE 1", "t-SNE 2")


def check_tsne():
    """scikit-learn's ``TSNE`` class.

    Raises:
        DotrecError: scikit-learn is not installed, saying how to install it.
    """
    try:
        from sklearn.manifold import TSNE
    except ImportError as err:
        raise DotrecError(
            "the t-SNE item map needs scikit-learn, which is not installed: pip install "
            "scikit-learn, or draw the map by PCA (projection 'pca', --embedding pca)."
        ) from err
    return TSNE
