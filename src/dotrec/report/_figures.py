"""The report's figures, drawn with matplotlib's Agg canvas and returned as PNG bytes.

No pyplot: each figure is a :class:`matplotlib.figure.Figure` on its own Agg
canvas, so drawing leaves the global backend and open figures of the caller
alone, and works without a display.
"""

from __future__ import annotations

import io
import math
from collections import Counter

import numpy as np
import pandas as pd

from dotrec.exceptions import DotrecError
from dotrec.report._measures import Exposure, ItemMap, Reliability, TrainingCurve

DPI = 110
PANEL = (4.4, 3.5)
"""Inches of one panel (width, height)."""
GENRE_COLOURS = ["C0", "C1", "C2", "C3", "C4", "C5", "C6", "C8", "C9"]
"""Colours of the most common genres on the item map (tab10 without its grey);
the other genres share a grey."""


def check_matplotlib() -> None:
    """Raise :class:`DotrecError` saying how to install matplotlib when it is missing."""
    try:
        import matplotlib  # noqa: F401
    except ImportError as err:
        raise DotrecError(
            "the report draws its plots with matplotlib, which is not installed: "
            "pip install 'dotrec[report]'"
        ) from err


def _figure(n_panels: int, columns: int = 3, extra_width: float = 0.0, **subplots):
    """A figure with ``n_panels`` axes in a grid, on an Agg canvas."""
    check_matplotlib()
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    columns = max(1, min(columns, n_panels))
    rows = math.ceil(n_panels / columns)
    size = (PANEL[0] * columns + extra_width, PANEL[1] * rows)
    figure = Figure(figsize=size, dpi=DPI, layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.subplots(rows, columns, squeeze=False, **subplots).ravel()
    for ax in axes[n_panels:]:
        ax.set_visible(False)
    return figure, axes[:n_panels]


def _png(figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI, metadata={"Software": None})
    return buffer.getvalue()


def training_figure(curves: list[TrainingCurve]) -> bytes:
    """One panel per model: mean training loss per epoch, the validation metric beside it."""
    figure, axes = _figure(len(curves))
    for ax, curve in zip(axes, curves, strict=True):
        epochs = np.arange(1, len(curve.loss) + 1)
        lines = ax.plot(epochs, curve.loss, color="C0", marker=".", label="training loss")
        ax.set_xlabel("epoch")
        ax.set_ylabel("mean training loss", color="C0")
        ax.set_title(curve.label)
        if curve.metric is not None:
            right = ax.twinx()
            label = f"validation {curve.metric}"
            lines += right.plot(curve.epochs, curve.values, color="C1", marker="o", label=label)
            right.set_ylabel(label, color="C1")
            if curve.best_epoch is not None:
                best = f"kept: epoch {curve.best_epoch}"
                lines.append(ax.axvline(curve.best_epoch, color="0.4", ls=":", label=best))
        else:
            ax.text(
                0.98,
                0.98,
                f"no validation metric:\n{curve.note}",
                transform=ax.transAxes,
                ha="right",
                va="top",
                fontsize=8,
                color="0.3",
            )
        ax.legend(
            lines,
            [line.get_label() for line in lines],
            fontsize=8,
            loc="upper center",
            bbox_to_anchor=(0.5, -0.2),
            ncol=3,
            frameon=False,
        )
    return _png(figure)


def metric_curves_figure(rows: pd.DataFrame, metrics: list[str], ks: list[int]) -> bytes:
    """One panel per metric: each model's value at every K, with its interval as a band."""
    figure, axes = _figure(len(metrics))
    models = list(dict.fromkeys(rows["model"]))
    for ax, metric in zip(axes, metrics, strict=True):
        for n, model in enumerate(models):
            names = [f"{metric}@{k}" for k in ks]
            part = rows[rows["model"] == model].set_index("metric").reindex(names)
            color = f"C{n % 10}"
            ax.plot(ks, part["value"], marker="o", color=color, label=model)
            ax.fill_between(ks, part["ci_low"], part["ci_high"], color=color, alpha=0.2, lw=0)
        ax.set_xscale("log")
        ax.set_xticks(ks, [str(k) for k in ks])
        ax.minorticks_off()
        ax.set_xlabel("K (list length)")
        ax.set_ylabel(f"{metric}@K")
        ax.set_title(f"{metric}@K")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    return _png(figure)


def exposure_figure(exposures: list[Exposure]) -> bytes:
    """One log-log panel per model: training popularity against times recommended."""
    figure, axes = _figure(len(exposures), sharex=True, sharey=True)
    top = max(max(int(e.recommended.max()), 1) for e in exposures)
    for ax, e in zip(axes, exposures, strict=True):
        shown = (e.recommended > 0) & (e.train_counts > 0)
        never = (e.recommended == 0) & (e.train_counts > 0)
        ax.scatter(
            e.train_counts[shown],
            e.recommended[shown],
            s=10,
            alpha=0.5,
            color="C0",
            lw=0,
            label=f"recommended ({int(shown.sum())} items)",
        )
        ax.scatter(
            e.train_counts[never],
            np.full(int(never.sum()), 0.6),
            s=14,
            marker="|",
            color="0.55",
            alpha=0.5,
            label=f"never recommended ({int(never.sum())}), drawn at 0.6",
        )
        _log_axes(ax)
        ax.set_ylim(0.4, top * 2)
        ax.set_xlabel("training users who had the item")
        ax.set_ylabel(f"test users with it in their top {e.k}")
        ax.set_title(e.label)
        ax.grid(alpha=0.3, which="major")
        ax.legend(fontsize=7, loc="upper left")
    return _png(figure)


def _log_axes(ax) -> None:
    """Both axes on log scales, ticks labelled as plain numbers (20, not 2 x 10^1)."""
    from matplotlib.ticker import FuncFormatter, LogFormatter

    for axis, scale in ((ax.xaxis, ax.set_xscale), (ax.yaxis, ax.set_yscale)):
        scale("log")
        axis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
        axis.set_minor_formatter(LogFormatter(labelOnlyBase=False, minor_thresholds=(1, 0.4)))


def reliability_figure(reliabilities: list[Reliability]) -> bytes:
    """One log-log panel per model: binned mean predicted probability against observed."""
    figure, axes = _figure(len(reliabilities))
    points = [
        v
        for r in reliabilities
        for c in r.curves
        for v in np.concatenate([c.predicted, c.observed])
        if v > 0
    ]
    low = min(points, default=1e-4) / 2
    high = min(1.0, max(points, default=1.0) * 2)
    for ax, r in zip(axes, reliabilities, strict=True):
        ax.plot([low, high], [low, high], color="0.5", ls="--", lw=1, label="perfectly calibrated")
        for n, curve in enumerate(r.curves):
            keep = (curve.predicted > 0) & (curve.observed > 0)  # a log axis has no zero
            after = n == len(r.curves) - 1  # the calibrated curve is green in every panel
            label = f"{curve.name}: ECE {curve.ece:.4f}"
            x, y = curve.predicted[keep], curve.observed[keep]
            ax.plot(x, y, marker="o", ms=4, color="C2" if after else "C1", label=label)
        if not r.curves:
            ax.text(0.5, 0.5, "no held-out pairs", transform=ax.transAxes, ha="center")
        _log_axes(ax)
        ax.set_xlim(low, high)
        ax.set_ylim(low, high)
        ax.set_xlabel("mean predicted probability in the bin")
        ax.set_ylabel("observed share of held-out positives")
        ax.set_title(r.label)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="upper left")
    return _png(figure)


def item_map_figure(maps: list[ItemMap]) -> bytes:
    """One panel per model: the 2-D item map, coloured by first genre when known."""
    genres = Counter(g for m in maps[:1] for g in m.genre if g)
    named = [g for g, _ in genres.most_common(len(GENRE_COLOURS))]
    figure, axes = _figure(len(maps), columns=2, extra_width=1.8 if named else 0.0)
    for ax, m in zip(axes, maps, strict=True):
        size = 3 + 30 * np.log1p(m.counts) / max(np.log1p(m.counts.max()), 1e-9)
        groups = _genre_groups(m.genre, named)
        for (name, color, z), rows in groups:
            x, y = m.coords[rows, 0], m.coords[rows, 1]
            ax.scatter(x, y, s=size[rows], color=color, alpha=0.6, lw=0, label=name, zorder=z)
        ax.set_xlabel(m.axes[0])
        ax.set_ylabel(m.axes[1])
        ax.set_title(m.label)
        ax.grid(alpha=0.2)
    if named:
        handles, labels = axes[0].get_legend_handles_labels()
        for handle in handles:
            handle.set_sizes([30])
        figure.legend(handles, labels, loc="outside right upper", title="first genre", fontsize=8)
    return _png(figure)


def _genre_groups(genre: np.ndarray, named: list[str]):
    """((legend name, colour, zorder), item rows) per named genre, then the rest.

    Items of other genres, or of none, are drawn beneath the named genres.
    """
    groups = []
    for name, colour in zip(named, GENRE_COLOURS, strict=False):
        groups.append(((f"{name} ({int((genre == name).sum())})", colour, 2), genre == name))
    other = (genre != "") & ~np.isin(genre, named)
    if named and other.any():
        groups.append(((f"other genres ({int(other.sum())})", "0.45", 1), other))
    none = genre == ""
    if none.any():
        label = f"no genre known ({int(none.sum())})" if named else "items"
        groups.append(((label, "0.75" if named else "C0", 1), none))
    return [(key, np.flatnonzero(rows)) for key, rows in groups if rows.any()]
