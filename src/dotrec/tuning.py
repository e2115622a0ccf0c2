"""Hyperparameter search with Optuna on a validation split.

:func:`tune` holds out a per-user random share of the interactions (seeded),
fits the model once per trial with settings drawn from its search space, and
scores each fit with :func:`dotrec.evaluate` on the held-out side. Optuna is
an optional dependency: ``pip install 'dotrec[tune]'``.

Search spaces are plain data in :data:`SEARCH_SPACES`, by model name; a model
without one (a new family, say) gets a clear error until one is added there
or passed as ``space=``.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from dotrec.config import DataConfig, ModelConfig, RunConfig, ValidationConfig, _metric_name_and_k
from dotrec.data import Interactions
from dotrec.data._interactions import require_interactions
from dotrec.evaluation import evaluate
from dotrec.exceptions import DotrecError, TrainingDivergedError
from dotrec.models import MODELS
from dotrec.split import random_split

__all__ = ["Choice", "FloatRange", "IntRange", "SEARCH_SPACES", "TuningResult", "tune"]

_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class IntRange:
    """Integers from ``low`` to ``high`` inclusive, log-uniform when ``log``."""

    low: int
    high: int
    log: bool = False

    def suggest(self, trial: Any, name: str) -> int:
        return trial.suggest_int(name, self.low, self.high, log=self.log)


@dataclass(frozen=True)
class FloatRange:
    """Reals from ``low`` to ``high``, log-uniform when ``log``."""

    low: float
    high: float
    log: bool = False

    def suggest(self, trial: Any, name: str) -> float:
        return trial.suggest_float(name, self.low, self.high, log=self.log)


@dataclass(frozen=True)
class Choice:
    """One of a few values."""

    values: tuple

    def suggest(self, trial: Any, name: str) -> Any:
        return trial.suggest_categorical(name, list(self.values))


Distribution = IntRange | FloatRange | Choice

SEARCH_SPACES: dict[str, dict[str, Distribution]] = {
    "mf": {
        "embedding_dim": Choice((32, 64, 128)),
        "epochs": IntRange(10, 60),
        "lr": FloatRange(0.003, 0.1, log=True),
        "l2": FloatRange(0.001, 0.05, log=True),
        "n_negatives": IntRange(1, 16, log=True),
    },
    "als": {
        "factors": Choice((32, 64, 128, 256)),
        "regularization": FloatRange(1.0, 500.0, log=True),
        "alpha": FloatRange(0.5, 50.0, log=True),
        "regularization_exponent": FloatRange(0.0, 1.0),
        "iterations": IntRange(5, 30),
    },
    "ease": {"regularization": FloatRange(10.0, 5000.0, log=True)},
    "gf-cf": {
        "n_components": IntRange(16, 1024, log=True),
        "alpha": FloatRange(0.0, 1.0),
        "sharpen": FloatRange(0.0, 1.0),
        "popularity_exponent": FloatRange(-0.1, 0.3),
    },
    "itemknn": {
        "neighbors": IntRange(10, 500, log=True),
        "shrinkage": FloatRange(0.0, 100.0),
    },
}
"""Settings searched for each model name, with their ranges."""


@dataclass
class TuningResult:
    """What a search found.

    Attributes:
        model: the model name.
        metric: the metric maximised, ``name@K``.
        best_value: its value for the best trial on the validation side.
        best_settings: every setting of the best trial's model (searched,
            fixed and defaults), as its config dict without unset values.
        trials: one row per trial: ``trial``, each searched setting, the
            metric (NaN for a failed trial), ``seconds`` (fit and evaluate)
            and ``state``.
        validation: the split the trials were scored on.
        study: the ``optuna.Study``, for anything else.
    """

    model: str
    metric: str
    best_value: float
    best_settings: dict[str, Any]
    trials: pd.DataFrame
    validation: ValidationConfig
    study: Any = field(default=None, repr=False)

    def table(self) -> str:
        """The trials as an aligned text table; the best one marked with ``*``."""
        best = int(self.trials.loc[self.trials[self.metric].idxmax(), "trial"])
        rows = [
            {
                "": "*" if row["trial"] == best else "",
                **{k: _fmt(v) for k, v in row.items() if k != "state"},
                **({} if row["state"] == "COMPLETE" else {self.metric: row["state"].lower()}),
            }
            for row in self.trials.to_dict("records")
        ]
        columns = list(rows[0])
        widths = {c: max(len(c), *(len(r[c]) for r in rows)) for c in columns}
        lines = ["  ".join(c.rjust(widths[c]) for c in columns)]
        lines += ["  ".join(r[c].rjust(widths[c]) for c in columns) for r in rows]
        return "\n".join(lines)

    def run_config(self, data: DataConfig | None = None) -> RunConfig:
        """The best settings as a run config, for ``dotrec train --config``."""
        return RunConfig(data, ModelConfig(self.model, dict(self.best_settings)), self.validation)


def tune(
    interactions: Interactions,
    model: str = "mf",
    *,
    n_trials: int | None = 20,
    metric: str = "ndcg@10",
    timeout: float | None = None,
    seed: int = 0,
    validation_fraction: float = 0.2,
    fixed: dict[str, Any] | None = None,
    space: dict[str, Distribution] | None = None,
    callback: Callable[[dict[str, Any]], None] | None = None,
) -> TuningResult:
    """Search a model's settings with Optuna's TPE sampler on a validation split.

    The validation side is a per-user random ``validation_fraction`` of each
    user's rows (:func:`dotrec.random_split` with ``seed``); every trial fits
    on the rest and is scored by full ranking on it. Optuna's own logging is
    set to WARNING.

    Args:
        interactions: the data to tune on (keep the final test set out of it).
        model: a model name, one of ``dotrec.MODELS``.
        n_trials: fits to try; None runs until ``timeout``.
        metric: what to maximise, ``name@K`` (``ndcg@10``, ``recall@20``, ...).
        timeout: seconds after which no new trial starts (the running one
            finishes).
        seed: seed of the split, the sampler and the model (when it has one).
        validation_fraction: share of each user's rows held out.
        fixed: settings that stay put in every trial (e.g. ``{"device": "cpu"}``);
            a fixed setting is taken out of the search space.
        space: search space to use instead of ``SEARCH_SPACES[model]``.
        callback: called with each finished trial's row (as in ``trials``).

    Returns:
        A :class:`TuningResult`; ``result.run_config(...)`` writes the best.

    Raises:
        ValueError: an unknown model, setting or metric, a model with
            nothing to search, ``n_trials`` that is not a positive integer, or
            neither ``n_trials`` nor ``timeout``.
        ImportError: Optuna is not installed.
        DotrecError: every trial failed, or none finished before ``timeout``.
    """
    require_interactions(interactions, "tune()")
    if n_trials is None and timeout is None:
        raise ValueError("give n_trials or timeout (or both): with neither, tuning never ends")
    if n_trials is not None and (
        isinstance(n_trials, bool) or not isinstance(n_trials, (int, np.integer)) or n_trials < 1
    ):
        raise ValueError(f"n_trials (--trials) must be a positive integer, got {n_trials!r}")
    if timeout is not None and not timeout >= 0:
        raise ValueError(f"timeout (--timeout) must be a number of seconds >= 0, got {timeout!r}")
    cls = _model_class(model)
    space = _search_space(model, cls, space)
    fixed = dict(fixed or {})
    names = {f.name for f in dataclasses.fields(cls.config_class)}
    for where, keys in (("space", space), ("fixed", fixed)):
        unknown = sorted(set(keys) - names)
        if unknown:
            raise ValueError(
                f"{where}: the {model} model has no setting {', '.join(unknown)}; its settings "
                f"are {', '.join(sorted(names))}"
            )
    space = {name: dist for name, dist in space.items() if name not in fixed}
    if not space:
        raise ValueError(f"nothing left to search: every searched {model} setting is fixed")
    if "seed" in names and "seed" not in space:
        fixed.setdefault("seed", seed)
    metric_name, k = _metric_name_and_k(metric, "metric")
    optuna = _import_optuna()

    validation = ValidationConfig("random", validation_fraction, seed, metric)
    train, valid = random_split(interactions, validation_fraction, seed=seed)
    rows: list[dict[str, Any]] = []

    def objective(trial) -> float:
        settings = {name: dist.suggest(trial, name) for name, dist in space.items()}
        started = time.perf_counter()
        row = {"trial": trial.number, **settings, metric: math.nan, "seconds": math.nan}
        try:
            fitted = cls(**{**settings, **fixed}).fit(train)
            row[metric] = evaluate(fitted, valid, k).metrics[f"{metric_name}@{k}"]
            row["state"] = "COMPLETE"
        except TrainingDivergedError:
            row["state"] = "FAIL"
            raise
        finally:
            row["seconds"] = time.perf_counter() - started
            row.setdefault("state", "FAIL")
            rows.append(row)
            _log.info("trial %d: %s", trial.number, row)
            if callback is not None:
                callback(dict(row))
        return row[metric]

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=seed))
    study.optimize(objective, n_trials=n_trials, timeout=timeout, catch=(TrainingDivergedError,))
    return _result(study, model, cls, metric, fixed, rows, validation)


def _model_class(model: str) -> type:
    if model not in MODELS:
        raise ValueError(f"unknown model {model!r}; models: {', '.join(sorted(MODELS))}")
    return MODELS[model]


def _search_space(model: str, cls: type, space: dict | None) -> dict[str, Distribution]:
    if space is not None:
        return dict(space)
    if not dataclasses.fields(cls.config_class):
        raise ValueError(
            f"the {model} model has no settings to tune; train and evaluate it as it is"
        )
    if model not in SEARCH_SPACES:
        raise ValueError(
            f"no search space for {model}: pass space={{...}} to dotrec.tune(), or add one to "
            f"dotrec.tuning.SEARCH_SPACES (models with one: {', '.join(sorted(SEARCH_SPACES))})"
        )
    return dict(SEARCH_SPACES[model])


def _import_optuna():
    try:
        import optuna
    except ImportError as err:
        raise ImportError(
            "tuning needs Optuna, which is not installed: pip install 'dotrec[tune]'"
        ) from err
    return optuna


def _result(study, model, cls, metric, fixed, rows, validation) -> TuningResult:
    if not rows:
        raise DotrecError(
            "no trial finished before the timeout, so there is no best setting; raise the "
            "timeout (--timeout)"
        )
    trials = pd.DataFrame(rows).sort_values("trial", ignore_index=True)
    if not (trials["state"] == "COMPLETE").any():
        raise DotrecError(
            f"every one of the {len(trials)} trials failed (the loss diverged); narrow the "
            "search space or fix a lower learning rate"
        )
    config = cls.config_class(**{**study.best_trial.params, **fixed})
    settings = {k: v for k, v in dataclasses.asdict(config).items() if v is not None}
    return TuningResult(model, metric, study.best_value, settings, trials, validation, study)


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return "n/a" if math.isnan(value) else f"{value:.4g}"
    return str(value)
