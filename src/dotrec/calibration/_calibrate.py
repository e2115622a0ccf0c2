"""The calibrate entry point: fit on some held-out users, measure on the others, attach."""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from dotrec.calibration._calibrators import Calibrator, _sigmoid
from dotrec.calibration._fitting import fit_isotonic, fit_platt
from dotrec.calibration._measures import expected_calibration_error, log_loss
from dotrec.calibration._pairs import CalibrationPairs, calibration_pairs
from dotrec.data import Interactions

if TYPE_CHECKING:
    from dotrec.models.base import Recommender

_log = logging.getLogger(__name__)

Method = Literal["platt", "isotonic"]

MEANING = (
    "probability that the item is among the user's held-out interactions (within what "
    "the held-out data covers), given the score, for an item not among the user's "
    "training items and a user with held-out interactions"
)
"""What a calibrated probability estimates, in words (stored with the calibrator)."""


@dataclass
class CalibrationReport:
    """What :func:`calibrate` fitted and how well it does on users kept out of the fit.

    ``ece_*`` map a binning (``"mass"``, ``"width"``) to the ECE with
    ``n_bins`` bins. The ``*_before`` values use ``before`` as the
    uncalibrated probability, and are None when the model has none.
    """

    method: str
    calibrator: Calibrator
    before: str | None
    """How the uncalibrated probability was formed, e.g. ``"sigmoid(score)"``."""
    before_note: str
    negatives: int | None
    n_bins: int
    fit_users: int
    fit_pairs: int
    report_users: int
    report_pairs: int
    in_sample: bool
    """True when too few users were left to measure on users outside the fit."""
    base_rate: float
    """Weighted share of positives among the measured pairs."""
    ece_before: dict[str, float] | None
    ece_after: dict[str, float]
    log_loss_before: float | None
    log_loss_after: float
    log_loss_base_rate: float
    """Log loss of predicting the base rate for every pair: the bar to beat."""
    notes: dict[str, int]
    meaning: str = MEANING

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON values (the calibrator as its ``to_dict``)."""
        out = asdict(self) | {"calibrator": self.calibrator.to_dict()}
        out["calibrator"].pop("info", None)
        return out


def calibrate(
    model: Recommender,
    heldout: Interactions,
    method: Method = "platt",
    *,
    negatives: int | None = None,
    max_pairs: int = 2_000_000,
    report_fraction: float = 0.3,
    n_bins: int = 15,
    seed: int = 0,
) -> CalibrationReport:
    """Fit a calibrator on held-out data, measure it, and attach it to ``model``.

    The users of the calibration pairs (:func:`calibration_pairs`) are split
    at random: the calibrator is fitted on ``1 - report_fraction`` of them,
    and the ECE and log loss, before and after, are measured on the others.
    The calibrator measured is the one attached, as ``model.calibrator``,
    after which ``model.score(..., kind="probability")`` works and
    ``model.save`` keeps it. Refitting the model drops it.

    "Before" needs a probability from the raw score: for a model trained with
    binary cross-entropy (``loss="bce"``) it is ``sigmoid(score)``, which its
    training suggests and which the ECE shows is not a probability of the
    held-out interactions (it reflects the sampled negatives); other models'
    scores are no probabilities at all, and have no "before".

    Args:
        model: a fitted model.
        heldout: interactions held out from the model's training data; use
            data not needed for the final test, since fitting uses it.
        method: ``"platt"`` or ``"isotonic"``.
        negatives: see :func:`calibration_pairs`.
        max_pairs: see :func:`calibration_pairs`.
        report_fraction: share of the users kept out of the fit for measuring.
        n_bins: bins of the ECE.
        seed: seed of the user sample, the negatives and the user split.

    Raises:
        ValueError: an unknown method, a bad fraction, or no usable held-out data.
    """
    if method not in ("platt", "isotonic"):
        raise ValueError(f"method must be 'platt' or 'isotonic', got {method!r}")
    if not 0.0 <= report_fraction < 1.0:
        raise ValueError(f"report_fraction must be in [0, 1), got {report_fraction!r}")
    pairs = calibration_pairs(model, heldout, negatives=negatives, max_pairs=max_pairs, seed=seed)
    fit, measure, in_sample = _split_users(pairs, report_fraction, seed)
    fitter = fit_platt if method == "platt" else fit_isotonic
    calibrator = fitter(fit.scores, fit.labels, fit.weights)

    before, note = _uncalibrated(model)
    naive = None if before is None else _sigmoid(measure.scores)
    after = calibrator.transform(measure.scores)
    args = (measure.labels, n_bins)
    base_rate = float(np.sum(measure.weights * measure.labels) / measure.weights.sum())
    report = CalibrationReport(
        method=method,
        calibrator=calibrator,
        before=before,
        before_note=note,
        negatives=negatives,
        n_bins=n_bins,
        fit_users=len(np.unique(fit.user_idx)),
        fit_pairs=len(fit),
        report_users=len(np.unique(measure.user_idx)),
        report_pairs=len(measure),
        in_sample=in_sample,
        base_rate=base_rate,
        ece_before=None if naive is None else _eces(naive, *args, measure.weights),
        ece_after=_eces(after, *args, measure.weights),
        log_loss_before=None if naive is None else log_loss(naive, measure.labels, measure.weights),
        log_loss_after=log_loss(after, measure.labels, measure.weights),
        log_loss_base_rate=log_loss(
            np.full(len(measure), base_rate), measure.labels, measure.weights
        ),
        notes=pairs.notes,
    )
    calibrator.info = _info(report, heldout)
    model.calibrator = calibrator
    _log.info("calibrated %s with %s on %d pairs", model.name, method, len(fit))
    return report


def _split_users(pairs: CalibrationPairs, fraction: float, seed: int):
    """(fit pairs, measured pairs, in_sample) by a seeded split of the users."""
    users = np.unique(pairs.user_idx)
    n_report = int(round(fraction * len(users)))
    if fraction == 0 or n_report == 0 or n_report == len(users):
        return pairs, pairs, True
    chosen = np.random.default_rng([seed, 2]).permutation(users)[:n_report]
    measured = np.isin(pairs.user_idx, chosen)
    return pairs.take(~measured), pairs.take(measured), False


def _uncalibrated(model: Recommender) -> tuple[str | None, str]:
    if getattr(model.config, "loss", None) == "bce":
        return "sigmoid(score)", (
            "before: sigmoid of the raw score, the logit the model was trained with binary "
            "cross-entropy against sampled negatives"
        )
    return None, (
        f"no 'before': {model.name} scores ({model.score_kind}) have no probability reading"
    )


def _eces(p, labels, n_bins, weights) -> dict[str, float]:
    return {
        binning: expected_calibration_error(p, labels, n_bins, binning, weights)
        for binning in ("mass", "width")
    }


def _info(report: CalibrationReport, heldout: Interactions) -> dict[str, Any]:
    """What is stored with the calibrator: its meaning, data and measurements."""
    out = report.to_dict()
    out.pop("calibrator")
    return out | {"heldout_source": heldout.source, "heldout_fingerprint": heldout.fingerprint()}
