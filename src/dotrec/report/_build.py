"""make_report: the sections of the report from fitted models and their comparison."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence

import pandas as pd

from dotrec.comparison import TABLE_HEADER, Comparison
from dotrec.data import Interactions
from dotrec.models.base import Recommender
from dotrec.report import _figures as figures
from dotrec.report._measures import (
    Projection,
    check_tsne,
    exposure,
    item_map,
    reliability,
    training_curves,
)
from dotrec.report._page import Report, Section

_log = logging.getLogger(__name__)


def make_report(
    models: Mapping[str, Recommender],
    test: Interactions,
    comparison: Comparison,
    *,
    item_genres: pd.Series | None = None,
    projection: Projection = "pca",
    n_bins: int = 15,
    max_pairs: int = 1_000_000,
    seed: int = 0,
    title: str = "dotrec report",
    summary: Sequence[str] = (),
) -> Report:
    """A report on fitted models: their comparison, and plots of how they train and behave.

    Sections: the comparison table with intervals; training loss and
    validation metric per epoch; each metric against K; item popularity
    against how often each item is recommended; a reliability diagram; a 2-D
    map of the item embeddings.

    Args:
        models: fitted models by label, as given to
            :func:`~dotrec.comparison.compare_models`.
        test: the held-out interactions they were compared on; the
            reliability diagram scores its pairs too.
        comparison: ``compare_models(models, test, ...)``.
        item_genres: ``|``-separated genres by raw item ID (the MovieLens
            ``genres`` column); the item map is coloured by the first one.
        projection: ``"pca"`` or ``"tsne"`` (needs scikit-learn) for the item map.
        n_bins: equal-weight bins of the reliability diagram and its ECE.
        max_pairs: most (user, item) pairs scored per model for the
            reliability diagram; users are sampled to stay under it.
        seed: seed of the pair sample and of the calibration users' split.
        title: the page title.
        summary: lines on the data and the run, shown under the title.

    Returns:
        A :class:`Report`; ``report.write(path)`` writes the HTML page.

    Raises:
        DotrecError: matplotlib (or, for t-SNE, scikit-learn) is not installed.
        ValueError: the comparison is not of these models, or an unknown projection.
    """
    figures.check_matplotlib()
    if projection not in ("pca", "tsne"):
        raise ValueError(f"projection must be 'pca' or 'tsne', got {projection!r}")
    if projection == "tsne":
        check_tsne()
    if list(models) != comparison.models or set(comparison.top_items) != set(models):
        raise ValueError(
            f"the comparison is of {comparison.models}, the models are {list(models)}: "
            "give make_report the comparison compare_models made of these models"
        )
    models = dict(models)
    sections = [
        _table_section(comparison),
        _timed(_training_section, models),
        _timed(_metric_section, comparison),
        _timed(_exposure_section, models, comparison),
        _timed(_reliability_section, models, test, n_bins, max_pairs, seed),
        _timed(_map_section, models, projection, item_genres, seed),
    ]
    return Report(title, list(summary), sections)


def _timed(build, *args) -> Section:
    start = time.perf_counter()
    section = build(*args)
    _log.info("report section %s in %.1f s", section.id, time.perf_counter() - start)
    return section


def _table_section(comparison: Comparison) -> Section:
    return Section(
        "comparison",
        "Comparison",
        [
            "Each metric at each K for every model, over the test users that every model "
            "evaluates, with a bootstrap interval, the difference from the first model and "
            "paired tests against it (as dotrec compare prints them)."
        ],
        table=(TABLE_HEADER, comparison.cells()),
        notes=comparison.footer(),
    )


def _training_section(models: dict[str, Recommender]) -> Section:
    curves, without = training_curves(models)
    without += [f"{c.label}: no validation metric; {c.note}." for c in curves if not c.metric]
    return Section(
        "training",
        "Training loss and validation metric per epoch",
        [] if curves else ["No model here is trained in epochs."],
        image=figures.training_figure(curves) if curves else None,
        caption="Blue, left axis: mean training loss of each epoch (the model's own loss, "
        "so scales differ between models). Orange, right axis: the validation metric, "
        "ranked on the validation side every few epochs; the dotted line marks the epoch "
        "whose weights were kept (early stopping).",
        notes=without,
    )


def _metric_section(comparison: Comparison) -> Section:
    ks, metrics = comparison.settings["k"], comparison.settings["metrics"]
    confidence = comparison.settings["confidence"]
    return Section(
        "metric-at-k",
        "Metrics at K",
        image=figures.metric_curves_figure(comparison.rows, list(metrics), list(ks)),
        caption=f"Each metric against the list length K (log scale) for every model, with "
        f"its {confidence:.0%} bootstrap interval over users as a band; the values of the "
        "table above.",
    )


def _exposure_section(models: dict[str, Recommender], comparison: Comparison) -> Section:
    ks = comparison.settings["k"]
    k = 10 if 10 in ks else max(ks)
    exposures = [
        exposure(label, model, comparison.top_items[label], k) for label, model in models.items()
    ]
    return Section(
        "popularity",
        "Item popularity against how often it is recommended",
        image=figures.exposure_figure(exposures),
        caption=f"One point per item: how many training users had it (x) against how many of "
        f"the {comparison.n_users} test users find it in their top {k} (y), both on log "
        "scales. Items never recommended are drawn in grey at y = 0.6. A model that "
        "recommends by popularity alone puts a few of the most popular items in every "
        "list; points spread to the left mean less popular items get recommended.",
    )


def _reliability_section(
    models: dict[str, Recommender], test: Interactions, n_bins: int, max_pairs: int, seed: int
) -> Section:
    found = [
        reliability(label, model, test, n_bins=n_bins, max_pairs=max_pairs, seed=seed)
        for label, model in models.items()
    ]
    notes = [f"{r.label}: {r.note}." for r in found]
    notes += [
        f"{r.label}: {r.n_pairs} pairs of {r.n_users} users; base rate {r.base_rate:.3%}."
        for r in found
        if r.curves
    ]
    return Section(
        "reliability",
        "Reliability diagram",
        [
            "Uncalibrated scores are not probabilities: a score orders items, and "
            "sigmoid(score) of a model trained with binary cross-entropy against sampled "
            "negatives reflects those negatives, not how often users interact. Calibration "
            "fits a map from scores to probabilities on held-out pairs. Here a pair is a test "
            "user and an item outside their training items; it is positive when the item is "
            "among the user's test interactions."
        ],
        image=figures.reliability_figure(found),
        caption=f"Pairs sorted by predicted probability into {n_bins} bins of equal weight; "
        "each point is a bin's mean predicted probability (x) against the observed share of "
        "positives in it (y), both on log scales. The dashed diagonal is perfect "
        f"calibration. ECE (expected calibration error, {n_bins} equal-weight bins) is the "
        "weighted mean distance from it. Bins with no positive are not drawn.",
        notes=notes,
    )


def _map_section(
    models: dict[str, Recommender], projection: Projection, genres, seed: int
) -> Section:
    maps, without = [], []
    for label, model in models.items():
        found = item_map(label, model, projection, genres, seed)
        (without if isinstance(found, str) else maps).append(found)
    how = "the first two principal components (PCA)" if projection == "pca" else "t-SNE"
    coloured = (
        "coloured by each item's first genre"
        if genres is not None
        else "not coloured: no item genres are known for this data"
    )
    return Section(
        "embeddings",
        "Item embeddings",
        [] if maps else ["No model here has item embeddings."],
        image=figures.item_map_figure(maps) if maps else None,
        caption=f"Each model's item vectors mapped to two dimensions by {how}, {coloured}; "
        "a point's size grows with how many training users had the item.",
        notes=without,
    )
