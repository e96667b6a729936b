"""Charts of the register's predictive accuracy, saved as PNG.

Figures are built with :class:`matplotlib.figure.Figure` directly, so no GUI
backend or global pyplot state is involved; each function returns the figure
and, given a path, saves it.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from riskanalytics.metrics import Metrics

__all__ = [
    "plot_calibration_trend",
    "plot_mitigations",
    "plot_outcomes",
    "plot_predicted_share",
    "plot_reliability",
    "save_all",
]

log = logging.getLogger(__name__)

_COLOURS = {
    "realized": "#2b8cbe",
    "near_misses": "#a6bddb",
    "new_risks": "#e34a33",
    "needs_review": "#fdbb84",
}


def _figure(title: str) -> tuple[Figure, object]:
    fig = Figure(figsize=(8, 4), dpi=110, layout="constrained")
    ax = fig.add_subplot()
    ax.set_title(title, loc="left", fontsize=12)
    ax.spines[["top", "right"]].set_visible(False)
    return fig, ax


def _labels(index: pd.Index, period: str) -> list[str]:
    fmt = "%Y-%m" if period == "month" else "%Y-%m-%d"
    return [pd.Timestamp(i).strftime(fmt) for i in index]


def _save(fig: Figure, path: Path | None) -> Figure:
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path)
        log.debug("Saved chart %s", path)
    return fig


def plot_predicted_share(metrics: Metrics, path: Path | None = None) -> Figure:
    """Share of incidents the register predicted, per period and to date."""
    fig, ax = _figure(f"Incidents the register predicted, per {metrics.period}")
    table = metrics.by_period
    x = range(len(table))
    ax.bar(
        x, table["predicted_share"].astype(float), color="#9ecae1", label="in period"
    )
    ax.plot(
        x,
        table["predicted_share_to_date"].astype(float),
        "o-",
        color="#08519c",
        label="to date",
    )
    ax.set_xticks(
        list(x), _labels(table.index, metrics.period), rotation=45, ha="right"
    )
    ax.set_ylim(0, 1.05)
    ax.yaxis.set_major_formatter("{x:.0%}")
    ax.set_ylabel("predicted share")
    ax.legend(frameon=False)
    return _save(fig, path)


def plot_outcomes(metrics: Metrics, path: Path | None = None) -> Figure:
    """Incidents per period: realized risks, near misses, new risks, to review."""
    fig, ax = _figure(f"Incidents per {metrics.period} by outcome")
    table = metrics.by_period
    x = list(range(len(table)))
    bottom = [0] * len(table)
    near = table["near_misses"].astype(int)
    bars = {
        "realized a risk": (table["realized"].astype(int), _COLOURS["realized"]),
        "near miss of a risk": (near, _COLOURS["near_misses"]),
        "new risk": (table["new_risks"].astype(int), _COLOURS["new_risks"]),
        "needs review": (table["needs_review"].astype(int), _COLOURS["needs_review"]),
    }
    for label, (series, colour) in bars.items():
        values = series.tolist()
        if label.startswith("near") and not any(values):
            continue
        ax.bar(x, values, bottom=bottom, color=colour, label=label)
        bottom = [b + v for b, v in zip(bottom, values, strict=True)]
    ax.set_xticks(x, _labels(table.index, metrics.period), rotation=45, ha="right")
    ax.set_ylabel("incidents")
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.legend(frameon=False, loc="upper left", bbox_to_anchor=(1, 1))
    return _save(fig, path)


def plot_mitigations(metrics: Metrics, path: Path | None = None) -> Figure:
    """Mitigation verdicts of realized risks per period, near misses apart."""
    fig, ax = _figure(
        f"Mitigations of realized risks and near misses, per {metrics.period}"
    )
    table = metrics.by_period
    x = list(range(len(table)))
    worked = table["mitigations_worked"].astype(int).tolist()
    failed = table["mitigations_failed"].astype(int).tolist()
    near = table["near_misses_mitigated"].astype(int).tolist()
    ax.bar(x, worked, color="#31a354", label="worked")
    ax.bar(x, failed, bottom=worked, color="#de2d26", label="failed")
    if any(near):
        ax.bar(
            x,
            near,
            bottom=[w + f for w, f in zip(worked, failed, strict=True)],
            color="white",
            edgecolor="#31a354",
            hatch="//",
            label="caught a near miss",
        )
    ax.set_xticks(x, _labels(table.index, metrics.period), rotation=45, ha="right")
    ax.set_ylabel("incidents with a verdict")
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.legend(frameon=False, loc="upper left", bbox_to_anchor=(1, 1))
    return _save(fig, path)


def plot_reliability(metrics: Metrics, path: Path | None = None) -> Figure:
    """Reliability diagram: stated probability against observed frequency."""
    fig, ax = _figure(f"Calibration of stated likelihood (Brier {metrics.brier:.3f})")
    table = metrics.reliability
    ax.plot([0, 1], [0, 1], "--", color="grey", label="perfectly calibrated")
    if not table.empty:
        sizes = 30 + 15 * table["risks"].astype(float)
        ax.scatter(table["predicted"], table["observed"], s=sizes, color="#08519c")
        for _, row in table.iterrows():
            ax.annotate(
                f"{row['likelihood']} ({int(row['risks'])})",
                (row["predicted"], row["observed"]),
                textcoords="offset points",
                xytext=(6, 4),
                fontsize=8,
            )
    ax.set_xlim(0, 1)
    ax.set_ylim(-0.02, 1.05)
    ax.set_xlabel("stated probability of occurring in the observed window")
    ax.set_ylabel("share of risks realized")
    ax.legend(frameon=False, loc="upper left")
    return _save(fig, path)


def plot_calibration_trend(metrics: Metrics, path: Path | None = None) -> Figure:
    """Brier score of the register over the growing observed window."""
    fig, ax = _figure("Brier score to date (lower is better)")
    table = metrics.brier_trend
    x = list(range(len(table)))
    ax.plot(x, table["brier"].astype(float), "o-", color="#756bb1")
    ax.axhline(0.25, color="grey", linestyle="--", label="always 50%")
    ax.set_xticks(x, _labels(table.index, metrics.period), rotation=45, ha="right")
    ax.set_ylim(0, max(0.3, float(table["brier"].max()) * 1.1 if len(table) else 0.3))
    ax.legend(frameon=False)
    return _save(fig, path)


def save_all(metrics: Metrics, folder: Path) -> dict[str, Path]:
    """Draw every chart into ``folder``; returns chart name to PNG path."""
    folder = Path(folder)
    charts = {
        "predicted_share": plot_predicted_share,
        "outcomes": plot_outcomes,
        "mitigations": plot_mitigations,
        "reliability": plot_reliability,
        "calibration_trend": plot_calibration_trend,
    }
    paths = {}
    for name, draw in charts.items():
        paths[name] = folder / f"{name}.png"
        draw(metrics, paths[name])
    log.info("Saved %d charts to %s", len(paths), folder)
    return paths
