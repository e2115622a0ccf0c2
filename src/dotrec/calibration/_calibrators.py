"""The calibrators: Platt's sigmoid and the isotonic step function, and their JSON."""

from __future__ import annotations

import math
from typing import Any

import numpy as np


class PlattCalibrator:
    """``p = sigmoid(a * score + b)``.

    Attributes:
        a: slope on the score.
        b: intercept.
        info: how and on what the calibrator was fitted (plain JSON values).
    """

    method = "platt"

    def __init__(self, a: float, b: float, info: dict[str, Any] | None = None):
        self.a, self.b = float(a), float(b)
        self.info = dict(info or {})

    def __repr__(self) -> str:
        return f"PlattCalibrator(a={self.a:.6g}, b={self.b:.6g})"

    def logit(self, scores: np.ndarray) -> np.ndarray:
        """Calibrated log-odds ``a * score + b``, float64 of the scores' shape."""
        return self.a * np.asarray(scores, dtype=np.float64) + self.b

    def transform(self, scores: np.ndarray) -> np.ndarray:
        """Calibrated probabilities, float64 of the scores' shape."""
        return _sigmoid(self.logit(scores))

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON values; :func:`calibrator_from_dict` reads them back."""
        return {"method": self.method, "a": self.a, "b": self.b, "info": self.info}


class IsotonicCalibrator:
    """A non-decreasing step function of the score.

    A score gets the value of the step with the largest ``threshold`` not
    above it; a score below the first threshold gets the first value.

    Attributes:
        thresholds: float64 (S,), increasing: the lowest fitted score of each step.
        values: float64 (S,), non-decreasing probabilities.
        info: how and on what the calibrator was fitted.
    """

    method = "isotonic"

    def __init__(
        self, thresholds: np.ndarray, values: np.ndarray, info: dict[str, Any] | None = None
    ):
        self.thresholds = np.asarray(thresholds, dtype=np.float64)
        self.values = np.asarray(values, dtype=np.float64)
        if len(self.thresholds) == 0 or self.thresholds.shape != self.values.shape:
            raise ValueError("an isotonic calibrator needs as many thresholds as values, >= 1")
        if np.any(np.diff(self.thresholds) <= 0) or np.any(np.diff(self.values) < 0):
            raise ValueError("isotonic thresholds must increase and values must not decrease")
        self.info = dict(info or {})

    def __repr__(self) -> str:
        return f"IsotonicCalibrator({len(self.values)} steps)"

    def transform(self, scores: np.ndarray) -> np.ndarray:
        """Calibrated probabilities, float64 of the scores' shape."""
        s = np.asarray(scores, dtype=np.float64)
        step = np.searchsorted(self.thresholds, s, side="right") - 1
        return self.values[np.clip(step, 0, len(self.values) - 1)]

    def logit(self, scores: np.ndarray) -> np.ndarray:
        """Log-odds of :meth:`transform`; infinite where it gives 0 or 1."""
        p = self.transform(scores)
        with np.errstate(divide="ignore"):
            return np.log(p) - np.log1p(-p)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON values; :func:`calibrator_from_dict` reads them back."""
        return {
            "method": self.method,
            "thresholds": self.thresholds.tolist(),
            "values": self.values.tolist(),
            "info": self.info,
        }


Calibrator = PlattCalibrator | IsotonicCalibrator


def calibrator_from_dict(payload: dict[str, Any]) -> Calibrator:
    """The calibrator written by ``to_dict``.

    Raises:
        ValueError: an unknown method, or missing or malformed fields.
    """
    if not isinstance(payload, dict):
        raise ValueError(f"a calibrator is a JSON object, got {type(payload).__name__}")
    method = payload.get("method")
    try:
        if method == "platt":
            a, b = float(payload["a"]), float(payload["b"])
            if not (math.isfinite(a) and math.isfinite(b)):
                raise ValueError(f"Platt parameters must be finite, got a={a}, b={b}")
            return PlattCalibrator(a, b, payload.get("info"))
        if method == "isotonic":
            return IsotonicCalibrator(payload["thresholds"], payload["values"], payload.get("info"))
    except (KeyError, TypeError) as err:
        raise ValueError(f"the {method} calibrator lacks a field or has a bad one ({err})") from err
    raise ValueError(f"unknown calibration method {method!r}; known: platt, isotonic")


def _sigmoid(z: np.ndarray) -> np.ndarray:
    z = np.asarray(z, dtype=np.float64)
    return np.exp(-np.logaddexp(0.0, -z))
