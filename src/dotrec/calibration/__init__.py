"""Calibration: turning a model's scores into probabilities, fitted on held-out data.

A score only orders items (see each model's ``score_kind``); it is not a
probability. :func:`calibrate` fits a non-decreasing map from scores to
probabilities on held-out interactions and attaches it to the model, after
which ``model.score(users, items, kind="probability")`` gives probabilities:

- Platt scaling: ``p = sigmoid(a * score + b)``, with ``a`` and ``b``
  minimising the log loss (Platt, "Probabilistic Outputs for Support Vector
  Machines", 1999), found by Newton's method.
- Isotonic regression: the non-decreasing step function of the score closest
  to the labels in squared error, by pool-adjacent-violators (Ayer et al.,
  1955; Zadrozny and Elkan, KDD 2002).

**What the probability means.** The calibration pairs are (user, item) pairs
of users with held-out interactions. A pair is positive when the item is
among the user's held-out interactions, and negative when it is any other
item of the model's catalogue that the user has no training interaction
with. A calibrated probability of (u, i) therefore estimates

    P(i is among u's held-out interactions | the score of (u, i),
      i not among u's training items, u has a held-out interaction)

where "held-out" is whatever the held-out data covers: with a temporal split,
the time from the cutoff to the end of the log (the evaluation horizon); with
a per-user random split, a random share of each user's interactions, which is
no horizon at all. A calibrator holds only for data held out the same way,
and only for users active in the held-out data (users without held-out
interactions are not in the calibration pairs). Held-out items the model does
not know are left out: the probability is over the model's catalogue.

**Negatives and the base rate.** By default (``negatives=None``) every
non-training item of each calibration user is scored, so the share of
positives among the pairs is the true base rate: held-out interactions per
candidate pair (about 1% on MovieLens 100K with a 20% random split). With
``negatives=r``, only ``r`` uniformly drawn negatives per positive are scored,
so the sample's base rate is about ``1 / (1 + r)``; fitted on that sample as
it is, every probability would be too high, its odds inflated by the ratio of
the user's negatives to those drawn. dotrec gives each drawn negative of user
u the weight (u's candidate negatives) / (u's drawn negatives), which restores
the true base rate in expectation; the weights enter the fit, the ECE and the
log loss. The cap on pairs (``max_pairs``) is met by sampling users, never
items, so it leaves the base rate alone.
"""

from dotrec.calibration._calibrate import MEANING, CalibrationReport, calibrate
from dotrec.calibration._calibrate import Method as Method
from dotrec.calibration._calibrate import _split_users as _split_users
from dotrec.calibration._calibrate import _uncalibrated as _uncalibrated
from dotrec.calibration._calibrators import Calibrator as Calibrator
from dotrec.calibration._calibrators import (
    IsotonicCalibrator,
    PlattCalibrator,
    calibrator_from_dict,
)
from dotrec.calibration._calibrators import _sigmoid as _sigmoid
from dotrec.calibration._fitting import fit_isotonic, fit_platt, pav
from dotrec.calibration._measures import Binning as Binning
from dotrec.calibration._measures import expected_calibration_error, log_loss, reliability_curve
from dotrec.calibration._pairs import CalibrationPairs, calibration_pairs

__all__ = [
    "CalibrationPairs",
    "CalibrationReport",
    "IsotonicCalibrator",
    "MEANING",
    "PlattCalibrator",
    "calibrate",
    "calibration_pairs",
    "calibrator_from_dict",
    "expected_calibration_error",
    "fit_isotonic",
    "fit_platt",
    "log_loss",
    "pav",
    "reliability_curve",
]
