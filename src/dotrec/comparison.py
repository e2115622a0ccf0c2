"""Several fitted models on one test set: metrics, intervals, paired tests.

:func:`compare_models` evaluates every model by full ranking
(:func:`dotrec.evaluate`), keeps the users that every model evaluates, and
for each metric gives the mean over those users, a bootstrap confidence
interval and two paired tests of each model against the first
(:mod:`dotrec.stats`). Beside the accuracy metrics it measures what the lists
look like (:mod:`dotrec.metrics`, beyond accuracy): catalogue coverage, the
Gini index of item exposure, novelty, average popularity and, when item
features are given, intra-list diversity.

Like :mod:`dotrec.evaluation`, it knows models only through the Recommender
contract.
"""

from __future__ import annotations

import logging
import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd
import torch

from dotrec.data import FeatureEncoder
from dotrec.evaluation import EvaluationResult, _cutoffs, evaluate
from dotrec.exceptions import DataError, DataWarning
from dotrec.metrics import (
    METRICS,
    average_popularity,
    coverage,
    gini_index,
    intra_list_diversity,
    novelty,
)
from dotrec.models.base import Recommender
from dotrec.stats import (
    bootstrap_ci,
    check_bootstrap_options,
    paired_ttest,
    wilcoxon_signed_rank,
)

__all__ = ["TABLE_HEADER", "Comparison", "check_catalogues", "compare_models"]

_log = logging.getLogger(__name__)

COLUMNS = [
    "model",
    "metric",
    "value",
    "ci_low",
    "ci_high",
    "diff",
    "p_ttest",
    "p_wilcoxon",
    "n_users",
]
"""Columns of :attr:`Comparison.rows`."""

TABLE_HEADER = ["metric", "model", "value", "95% CI", "diff", "p(t)", "p(W)"]
"""Column titles of :meth:`Comparison.cells`."""

_LIST_LEVEL = {"coverage": coverage, "gini": gini_index}
"""Measures of all lists together (no per-user value), by name."""


@dataclass
class Comparison:
    """Every model's metrics over the same users, with intervals and paired tests.

    Attributes:
        rows: one row per (metric, model), grouped by metric, models in the
            order given; columns :data:`COLUMNS`: ``value`` (the mean over
            users, or the list-level value of ``coverage`` and ``gini``),
            ``ci_low``/``ci_high`` (bootstrap interval), ``diff`` (value
            minus the first model's), ``p_ttest`` and ``p_wilcoxon`` (paired,
            against the first model; NaN for the first model and for
            list-level measures) and ``n_users`` (users behind the value).
        models: the model labels, the first being the reference.
        n_users: users every model evaluated (the paired sample).
        settings: cutoffs, resamples, confidence, seed, sampled negatives.
        notes: each model's evaluation notes (users left out and why).
        top_items: each model's ranked lists behind the values: int64
            (n_users, max K) item indices in that model's vocabulary, -1 past
            a short list, one row per compared user (sorted by user ID).
    """

    rows: pd.DataFrame
    models: list[str]
    n_users: int
    settings: dict[str, object] = field(default_factory=dict)
    notes: dict[str, dict[str, object]] = field(default_factory=dict)
    top_items: dict[str, np.ndarray] = field(default_factory=dict, repr=False)

    def cells(self) -> list[list[str]]:
        """The rows as text under :data:`TABLE_HEADER`, as ``dotrec compare`` prints them.

        The metric is named once per group; the reference's diff, and the
        interval and p-values where there are none, are blank.
        """
        reference = self.models[0]
        cells, previous = [], None
        for row in self.rows.itertuples():
            interval = (
                "" if math.isnan(row.ci_low) else f"[{_num(row.ci_low)}, {_num(row.ci_high)}]"
            )
            diff = "" if row.model == reference else _num(row.diff, "+", like=row.value)
            shown = row.metric if row.metric != previous else ""
            previous = row.metric
            tests = [_p(row.p_ttest), _p(row.p_wilcoxon)]
            cells.append([shown, row.model, _num(row.value), interval, diff, *tests])
        return cells

    def footer(self) -> list[str]:
        """Lines saying what each column and measure means."""
        s = self.settings
        lines = [
            f"{self.n_users} users evaluated by every model; value = mean over them. "
            f"{s['confidence']:.0%} CI: percentile bootstrap over users "
            f"({s['n_resamples']} resamples, seed {s['seed']}).",
            f"diff = model - {self.models[0]}. p(t): paired t-test; p(W): Wilcoxon "
            "signed-rank test (zero differences dropped); both two-sided, over the same "
            f"users, against {self.models[0]}, not adjusted for multiple comparisons.",
            "Full ranking: every catalogue item but the user's training items is a candidate.",
            "coverage: share of the catalogue in at least one list; gini: Gini index of how "
            "often each item is recommended (0 = evenly); novelty: mean -log2(share of "
            "training users who had the item), in bits; avg_popularity: mean number of "
            "training users who had a recommended item.",
        ]
        if s.get("diversity"):
            lines.append(
                f"diversity: mean pairwise {s['diversity']} distance of the listed items' "
                f"features ({', '.join(s['features'])})."
            )
        if s.get("sampled"):
            lines.append(
                f"sampled_*: each test item ranked among {s['sampled']} negatives drawn "
                "uniformly from items that are not the user's training or test positives "
                f"(seed {s['seed']}); sampled metrics can order models differently from full "
                "ranking (Krichene and Rendle 2020): trust the full-ranking rows."
            )
        return lines

    def to_dict(self) -> dict:
        """Plain values for JSON: rows as records, NaN as None."""
        records = self.rows.astype(object).where(self.rows.notna(), None).to_dict("records")
        return {
            "models": self.models,
            "n_users": self.n_users,
            "settings": self.settings,
            "rows": records,
            "notes": self.notes,
            "footer": self.footer(),
        }


def check_catalogues(models: Mapping[str, Recommender]) -> None:
    """Every model must know the same items, so that their lists compare.

    Raises:
        DataError: naming two models whose item catalogues differ, their
            sizes and an item only one of them knows.
    """
    labels = list(models)
    for label in labels[1:]:
        first, other = models[labels[0]].items.ids, models[label].items.ids
        only_first = np.setdiff1d(first, other)
        only_other = np.setdiff1d(other, first)
        if len(only_first) or len(only_other):
            example = (
                f"item {only_first[0]!r} is only in {labels[0]}"
                if len(only_first)
                else f"item {only_other[0]!r} is only in {label}"
            )
            raise DataError(
                f"{labels[0]} and {label} were trained on different item catalogues "
                f"({len(first)} and {len(other)} items; {example}). Models are compared on one "
                "catalogue: train them on the same training data."
            )


def compare_models(
    models: Mapping[str, Recommender],
    test,
    k: int | Sequence[int] = (5, 10, 20),
    metrics: Sequence[str] = ("precision", "recall", "ndcg"),
    *,
    item_features: pd.DataFrame | None = None,
    diversity: Literal["cosine", "jaccard"] = "cosine",
    n_resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
    sampled: int | None = None,
    on_overlap: Literal["drop", "raise"] = "drop",
    batch_size: int = 1024,
) -> Comparison:
    """Evaluate fitted models on one test set and compare each with the first.

    Args:
        models: fitted models by label; the first is the reference of the
            differences and tests. All must know the same items.
        test: held-out interactions (:class:`~dotrec.data.Interactions`).
        k: cutoffs.
        metrics: names from :data:`dotrec.metrics.METRICS`.
        item_features: item attributes indexed by raw item ID (e.g. the
            MovieLens ``genres`` column); adds ``diversity@K``. Items without
            a row have no feature.
        diversity: the distance of :func:`~dotrec.metrics.intra_list_diversity`.
        n_resamples: bootstrap resamples per interval.
        confidence: coverage of the intervals.
        seed: seed of the bootstrap and of sampled negatives.
        sampled: also rank each test item among this many sampled negatives
            (``sampled_recall@K``, ``sampled_ndcg@K``; see
            :func:`dotrec.evaluation.sampled_metrics`).
        on_overlap: test pairs that were training pairs, as in :func:`dotrec.evaluate`.
        batch_size: users ranked at once.

    Returns:
        A :class:`Comparison`.

    Raises:
        ValueError: no model, an unknown metric, a bad cutoff, number of
            resamples or confidence.
        DataError: the models' item catalogues differ, or no user is
            evaluated by every model.
    """
    if not models:
        raise ValueError("compare_models needs at least one model")
    unknown = [name for name in metrics if name not in METRICS]
    if unknown:
        raise ValueError(f"unknown metric {unknown[0]!r}; metrics: {', '.join(METRICS)}")
    ks = _cutoffs(k)
    check_bootstrap_options(n_resamples, confidence)
    check_catalogues(models)
    options = {"on_overlap": on_overlap, "batch_size": batch_size, "sampled": sampled, "seed": seed}
    results = {label: evaluate(model, test, ks, **options) for label, model in models.items()}
    users = _common_users(results)

    # Every model's values for the same users in the same order: the pairs of the tests.
    features = _encoder(item_features)
    per_user, lists = {}, {}
    for label, model in models.items():
        matrix = None
        if features is not None:
            matrix = features.transform(item_features.reindex(model.items.ids))
        per_user[label], top = _user_values(model, results[label], users, ks, matrix, diversity)
        lists[label] = (top, len(model.items))
        _log.info("%s: %d users evaluated", label, results[label].n_users)

    names = _metric_order(metrics, ks, sampled, features is not None)
    table = _rows(per_user, lists, names, n_resamples, confidence, seed)
    settings = {
        "k": ks,
        "metrics": list(metrics),
        "n_resamples": n_resamples,
        "confidence": confidence,
        "seed": seed,
        "sampled": sampled,
        "diversity": diversity if features is not None else None,
        "features": [] if item_features is None else [str(c) for c in item_features.columns],
    }
    notes = {label: result.notes for label, result in results.items()}
    top_items = {label: top.numpy() for label, (top, _) in lists.items()}
    return Comparison(table, list(models), len(users), settings, notes, top_items)


def _common_users(results: dict[str, EvaluationResult]) -> pd.Index:
    """Users every model evaluated, sorted; warns when some model evaluated others too."""
    sets = [pd.Index(result.per_user["user_id"]) for result in results.values()]
    common = sets[0]
    for other in sets[1:]:
        common = common.intersection(other)
    if len(common) == 0:
        raise DataError(
            "no test user is evaluated by every model, so nothing can be compared; check "
            "that the models were trained on the training side of this test set."
        )
    left_out = {label: len(s) - len(common) for label, s in zip(results, sets, strict=True)}
    if any(left_out.values()):
        shown = ", ".join(f"{n} of {label}" for label, n in left_out.items() if n)
        warnings.warn(
            f"the models evaluate different test users; the comparison uses the {len(common)} "
            f"users that every model evaluates (left out: {shown}).",
            DataWarning,
            stacklevel=3,
        )
    return common.sort_values()


def _user_values(model, result, users, ks, features, distance):
    """Per-user metrics and beyond-accuracy measures of ``users``, and their top-K lists."""
    at = pd.Index(result.per_user["user_id"]).get_indexer(users)
    top = result.top_items[torch.from_numpy(at.astype(np.int64))]
    frame = result.per_user.iloc[at].set_index("user_id")
    beyond = _beyond_per_user(model, top, ks, features, distance)
    return frame.join(beyond.set_axis(frame.index, axis=0)), top


def _encoder(item_features: pd.DataFrame | None) -> FeatureEncoder | None:
    if item_features is None or item_features.shape[1] == 0:
        return None
    return FeatureEncoder.fit(item_features)


def _beyond_per_user(model, top, ks, features, distance) -> pd.DataFrame:
    """Per-user novelty, average popularity and (with features) diversity at each cutoff."""
    counts = model.item_counts
    columns = {}
    for kk in ks:
        lists = top[:, :kk]
        columns[f"novelty@{kk}"] = novelty(lists, counts, len(model.users)).numpy()
        columns[f"avg_popularity@{kk}"] = average_popularity(lists, counts).numpy()
        if features is not None:
            columns[f"diversity@{kk}"] = intra_list_diversity(lists, features, distance).numpy()
    return pd.DataFrame(columns, index=range(len(top)))


def _metric_order(metrics, ks, sampled, with_features) -> list[str]:
    """Row order: each metric at each K, its sampled twin right after it, then the lists."""
    names = []
    for name in metrics:
        for kk in ks:
            names.append(f"{name}@{kk}")
            if sampled and name in ("recall", "ndcg"):
                names.append(f"sampled_{name}@{kk}")
    if sampled:
        for name in ("recall", "ndcg"):
            if name not in metrics:
                names += [f"sampled_{name}@{kk}" for kk in ks]
    beyond = [*_LIST_LEVEL, "novelty", "avg_popularity"] + (["diversity"] if with_features else [])
    return names + [f"{name}@{kk}" for name in beyond for kk in ks]


def _rows(per_user, lists, names, n_resamples, confidence, seed) -> pd.DataFrame:
    rows = []
    for name in names:
        if name.split("@")[0] in _LIST_LEVEL:
            rows += _list_rows(lists, name)
        else:
            values = [per_user[label][name] for label in per_user]
            rows += _user_rows(list(per_user), name, values, n_resamples, confidence, seed)
    return pd.DataFrame(rows, columns=COLUMNS)


def _list_rows(lists, name) -> list[dict]:
    """Rows of a measure of all lists together: a value, no interval or test."""
    kind, kk = name.split("@")
    values = {label: _LIST_LEVEL[kind](top[:, : int(kk)], n) for label, (top, n) in lists.items()}
    reference = next(iter(values.values()))
    n_users = len(next(iter(lists.values()))[0])
    return [_row(label, name, value, reference, n_users) for label, value in values.items()]


def _user_rows(labels, name, values, n_resamples, confidence, seed) -> list[dict]:
    """Rows of a per-user measure: mean, bootstrap interval, paired tests against the first."""
    matrix = np.column_stack([column.to_numpy(float) for column in values])
    matrix = matrix[np.isfinite(matrix).all(axis=1)]  # e.g. diversity of a one-item list
    means = matrix.mean(axis=0) if len(matrix) else np.full(len(labels), np.nan)
    low, high = bootstrap_ci(matrix, n_resamples=n_resamples, confidence=confidence, seed=seed)
    rows = []
    for j, label in enumerate(labels):
        row = _row(label, name, means[j], means[0], len(matrix), low[j], high[j])
        if j > 0:
            row["p_ttest"] = paired_ttest(matrix[:, 0], matrix[:, j])
            row["p_wilcoxon"] = wilcoxon_signed_rank(matrix[:, 0], matrix[:, j])
        rows.append(row)
    return rows


def _row(label, name, value, reference, n_users, low=np.nan, high=np.nan) -> dict:
    return {
        "model": label,
        "metric": name,
        "value": float(value),
        "ci_low": float(low),
        "ci_high": float(high),
        "diff": float(value - reference),
        "p_ttest": np.nan,
        "p_wilcoxon": np.nan,
        "n_users": int(n_users),
    }


def _num(value: float, sign: str = "", like: float = 0.0) -> str:
    """Four decimals for rates and bits, one for counts (as large as ``like`` or more)."""
    large = max(abs(value), abs(like)) >= 100
    return f"{value:{sign}.1f}" if large else f"{value:{sign}.4f}"


def _p(value: float) -> str:
    if pd.isna(value):
        return ""
    if value == 0:
        return "<1e-300"  # below what a float holds
    return f"{value:.4f}" if value >= 1e-4 else f"{value:.1e}"
