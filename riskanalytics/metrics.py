"""How well the register predicts reality, over time.

All figures come from the reconciliation table (one row per incident, over the
whole incident history) and the register's risks:

- predicted share: incidents that realized a documented risk, out of incidents
  decided (realized or new); overall, by severity and per period;
- risks realized: distinct risks realized per period; a near miss matched to a
  risk counts as predicted but not as the risk happening, here and in
  calibration;
- mitigation success rate: ``worked / (worked + failed)`` among realized risks
  of incidents that happened; ``unknown`` verdicts are left out and counted;
  near misses whose mitigation worked are counted apart
  (``near_misses_mitigated``): a mitigation that caught a near miss worked, but
  nothing happened;
- unknown unknowns: new risks created from unpredicted incidents;
- calibration: each risk's stated likelihood, mapped to a yearly probability in
  config, against whether it was realized during the observed window. The
  Brier score is the mean of ``(p - outcome)^2`` over risks (0 is perfect, 0.25
  is what always saying 50% scores).
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

__all__ = [
    "Metrics",
    "calibration_table",
    "compute_metrics",
    "likelihood_probability",
    "period_metrics",
    "severity_band",
]

log = logging.getLogger(__name__)

_PERIOD_FREQ = {"week": "W", "month": "M"}


#: Severity bands, most severe first, and the labels sources use for each:
#: PagerDuty and Opsgenie priorities (P1-P5), SEV1-SEV5, Alertmanager and
#: Grafana ``severity`` labels, and the words people write in reports.
SEVERITY_BANDS = {
    "critical": (
        "p1",
        "sev1",
        "sev0",
        "p0",
        "critical",
        "crit",
        "blocker",
        "emergency",
    ),
    "high": ("p2", "sev2", "high", "major", "error", "severe", "urgent"),
    "medium": ("p3", "sev3", "medium", "moderate", "warning", "warn", "normal"),
    "low": ("p4", "p5", "sev4", "sev5", "low", "minor", "info", "informational"),
}


def _severity_index(extra: Mapping[str, Sequence[str]] | None) -> dict[str, str]:
    bands = {band: list(labels) for band, labels in SEVERITY_BANDS.items()}
    for band, labels in (extra or {}).items():
        bands.setdefault(str(band).lower(), []).extend(labels)
    return {
        _severity_key(label): band for band, labels in bands.items() for label in labels
    }


def _severity_key(label: object) -> str:
    return str(label).strip().lower().replace("-", "").replace(" ", "")


def severity_band(
    severity: object, extra: Mapping[str, Sequence[str]] | None = None
) -> str:
    """One band for the severities sources write in their own scales.

    Parameters
    ----------
    severity
        A severity as ingested (``P1``, ``SEV-2``, ``critical``, ``warning``,
        ``Major``, ...).
    extra
        More labels per band (``severity_bands`` in config), added to
        ``SEVERITY_BANDS``; a band not there is a new band.

    Returns
    -------
    str
        ``critical``, ``high``, ``medium``, ``low`` or a band of ``extra``;
        ``unknown`` when missing; any other text lower-cased, as given.
    """
    if severity is None or (not isinstance(severity, str) and pd.isna(severity)):
        return "unknown"
    text = str(severity).strip().lower()
    if not text:
        return "unknown"
    return _severity_index(extra).get(_severity_key(text), text)


def likelihood_probability(
    likelihood: object, level: object, mapping: dict[str, float]
) -> float | None:
    """A stated likelihood as a yearly probability (0 to 1).

    Words are looked up in ``mapping`` (case-insensitive); percentages are read
    as probabilities; a number 1 to 5, or the risk's ordinal ``level``, picks the
    mapping's words in order of probability. None when nothing applies.
    """
    words = {k.lower(): v for k, v in mapping.items()}
    if isinstance(likelihood, str):
        text = likelihood.strip().lower()
        if text in words:
            return words[text]
        percent = re.fullmatch(r"(\d+(?:\.\d+)?)\s*%", text)
        if percent:
            return min(1.0, float(percent.group(1)) / 100)
        if re.fullmatch(r"[1-5]", text):
            level = int(text)
    if level is not None and not pd.isna(level):
        ordered = sorted(words.values())
        index = min(max(int(level), 1), len(ordered)) - 1
        return ordered[index] if ordered else None
    return None


#: Below this many days of incident history, calibration gets a warning.
SHORT_WINDOW_DAYS = 180


def _happened(frame: pd.DataFrame) -> pd.Series:
    """Rows whose risk was realized by an incident that happened (no near miss)."""
    realized = frame["outcome"] == "realized"
    if "near_miss" in frame.columns:
        realized &= ~frame["near_miss"].eq(True)
    return realized


def _verdicts(frame: pd.DataFrame) -> tuple[int, int, int]:
    """Mitigations that worked and failed for incidents that happened, and the
    near misses whose mitigation worked."""
    happened = _happened(frame)
    verdicts = frame["mitigation_verdict"]
    caught = (frame["outcome"] == "realized") & ~happened & (verdicts == "worked")
    return (
        int((verdicts[happened] == "worked").sum()),
        int((verdicts[happened] == "failed").sum()),
        int(caught.sum()),
    )


def _decided(frame: pd.DataFrame) -> pd.Series:
    return frame["outcome"].isin(["realized", "new_risk"])


def _share(part: int, whole: int) -> float:
    return part / whole if whole else math.nan


def period_metrics(reconciliation: pd.DataFrame, period: str = "month") -> pd.DataFrame:
    """The metrics per period (week or month) of incident start.

    Returns
    -------
    pandas.DataFrame
        Indexed by period start: ``incidents, realized`` (incidents that
        realized a risk; near misses apart), ``near_misses, new_risks, needs_review,
        predicted_share, risks_realized, mitigations_worked, mitigations_failed,
        mitigation_success_rate, near_misses_mitigated``, plus cumulative
        ``predicted_share_to_date``.
    """
    frame = reconciliation.dropna(subset=["started_at"]).copy()
    columns = [
        "incidents",
        "realized",
        "near_misses",
        "new_risks",
        "needs_review",
        "predicted_share",
        "risks_realized",
        "mitigations_worked",
        "mitigations_failed",
        "mitigation_success_rate",
        "near_misses_mitigated",
        "predicted_share_to_date",
    ]
    if frame.empty:
        return pd.DataFrame(columns=columns)
    starts = pd.to_datetime(frame["started_at"], utc=True).dt.tz_convert(None)
    frame["period"] = starts.dt.to_period(_PERIOD_FREQ[period]).dt.start_time
    rows = {}
    for when, group in frame.groupby("period"):
        realized = group["outcome"] == "realized"  # near misses included
        worked, failed, near = _verdicts(group)
        rows[when] = {
            "incidents": len(group),
            "realized": int(_happened(group).sum()),
            "near_misses": int((realized & ~_happened(group)).sum()),
            "new_risks": int((group["outcome"] == "new_risk").sum()),
            "needs_review": int((group["outcome"] == "needs_review").sum()),
            "predicted_share": _share(int(realized.sum()), int(_decided(group).sum())),
            "risks_realized": group.loc[_happened(group), "risk_id"].nunique(),
            "mitigations_worked": worked,
            "mitigations_failed": failed,
            "mitigation_success_rate": _share(worked, worked + failed),
            "near_misses_mitigated": near,
        }
    table = pd.DataFrame.from_dict(rows, orient="index").sort_index()
    full = pd.period_range(
        table.index.min(), table.index.max(), freq=_PERIOD_FREQ[period]
    )
    table = table.reindex(full.start_time)
    counts = ["incidents", "realized", "near_misses", "new_risks", "needs_review"]
    counts += ["risks_realized"]
    counts += ["mitigations_worked", "mitigations_failed", "near_misses_mitigated"]
    table[counts] = table[counts].fillna(0).astype(int)
    predicted = (table["realized"] + table["near_misses"]).cumsum()
    decided = predicted + table["new_risks"].cumsum()
    table["predicted_share_to_date"] = predicted / decided.where(decided > 0)
    table.index.name = "period"
    return table[columns]


def calibration_table(
    reconciliation: pd.DataFrame,
    risks: pd.DataFrame,
    mapping: dict[str, float],
    *,
    start: pd.Timestamp,
    end: pd.Timestamp,
) -> pd.DataFrame:
    """Stated probability against what happened, per risk, over ``[start, end]``.

    The yearly probability ``p`` becomes the probability of at least one
    occurrence in the window, ``1 - (1 - p) ** years``; the outcome is 1 when the
    risk was realized by an incident that started in the window (a near miss is
    not an occurrence).

    Returns
    -------
    pandas.DataFrame
        ``risk_id, likelihood, p_year, p_window, realized, occurrences``; risks
        whose likelihood cannot be mapped are left out.
    """
    years = max((end - start).total_seconds() / (365.25 * 86400), 1 / 365.25)
    started = pd.to_datetime(reconciliation["started_at"], utc=True)
    inside = reconciliation[
        _happened(reconciliation) & (started >= start) & (started <= end)
    ]
    counts = inside["risk_id"].value_counts()
    rows = []
    for _, risk in risks.iterrows():
        p = likelihood_probability(
            risk.get("likelihood"), risk.get("likelihood_level"), mapping
        )
        if p is None:
            continue
        n = int(counts.get(risk["risk_id"], 0))
        rows.append(
            {
                "risk_id": risk["risk_id"],
                "likelihood": risk.get("likelihood"),
                "p_year": p,
                "p_window": 1 - (1 - p) ** years,
                "realized": int(n > 0),
                "occurrences": n,
            }
        )
    columns = ["risk_id", "likelihood", "p_year", "p_window", "realized", "occurrences"]
    return pd.DataFrame(rows, columns=columns)


def _brier(table: pd.DataFrame) -> float:
    if table.empty:
        return math.nan
    return float(np.mean((table["p_window"] - table["realized"]) ** 2))


def _reliability(table: pd.DataFrame) -> pd.DataFrame:
    if table.empty:
        return pd.DataFrame(columns=["likelihood", "risks", "predicted", "observed"])
    grouped = table.groupby("p_year")
    return pd.DataFrame(
        {
            "likelihood": grouped["likelihood"].agg(lambda s: s.mode().iat[0]),
            "risks": grouped.size(),
            "predicted": grouped["p_window"].mean(),
            "observed": grouped["realized"].mean(),
        }
    ).reset_index(drop=True)


@dataclass
class Metrics:
    """Every accuracy figure of a run, ready for the report."""

    headline: dict
    by_period: pd.DataFrame
    by_severity: pd.DataFrame
    calibration: pd.DataFrame
    reliability: pd.DataFrame
    brier_trend: pd.DataFrame
    brier: float
    period: str = "month"
    notes: list[str] = field(default_factory=list)


def compute_metrics(
    reconciliation: pd.DataFrame,
    risks: pd.DataFrame,
    *,
    likelihood_mapping: dict[str, float],
    period: str = "month",
    severity_bands: Mapping[str, Sequence[str]] | None = None,
) -> Metrics:
    """Compute the accuracy metrics over the incident history.

    Parameters
    ----------
    reconciliation
        One row per incident (the reconciliation table).
    risks
        The register's risks, for calibration (risks created in this run are
        absent: they were not predictions).
    likelihood_mapping
        Likelihood word to yearly probability (``likelihood_probability`` in
        config).
    period
        ``week`` or ``month`` for the trends.
    severity_bands
        More severity labels per band (see :func:`severity_band`).
    """
    recon = reconciliation
    decided = int(_decided(recon).sum())
    realized = recon["outcome"] == "realized"
    verdicts = recon.loc[_happened(recon), "mitigation_verdict"]
    worked, failed, near = _verdicts(recon)

    by_severity = (
        recon.assign(
            severity=recon["severity"].map(lambda v: severity_band(v, severity_bands))
        )
        .groupby("severity")
        .apply(
            lambda g: pd.Series(
                {
                    "incidents": len(g),
                    "realized": int(_happened(g).sum()),
                    "near_misses": int(
                        ((g["outcome"] == "realized") & ~_happened(g)).sum()
                    ),
                    "new_risks": int((g["outcome"] == "new_risk").sum()),
                    "predicted_share": _share(
                        int((g["outcome"] == "realized").sum()), int(_decided(g).sum())
                    ),
                }
            ),
            include_groups=False,
        )
        if len(recon)
        else pd.DataFrame(
            columns=[
                "incidents",
                "realized",
                "near_misses",
                "new_risks",
                "predicted_share",
            ]
        )
    )
    order = [*SEVERITY_BANDS, *(severity_bands or {}), "unknown"]
    rank = {band: i for i, band in enumerate(dict.fromkeys(order))}
    by_severity = by_severity.iloc[
        sorted(
            range(len(by_severity)),
            key=lambda i: (rank.get(by_severity.index[i], len(rank) - 1), i),
        )
    ]

    starts = pd.to_datetime(recon["started_at"], utc=True).dropna()
    notes = []
    if starts.empty:
        calibration = calibration_table(
            recon.iloc[0:0],
            risks,
            likelihood_mapping,
            start=pd.Timestamp(0, tz="UTC"),
            end=pd.Timestamp(0, tz="UTC"),
        )
        brier_trend = pd.DataFrame(columns=["brier"])
        notes.append("No incident has a start time: no trends or calibration.")
    else:
        start, end = starts.min(), starts.max()
        span = (end - start).days
        if span < SHORT_WINDOW_DAYS:
            notes.append(
                f"The incidents span {span} day(s): stated likelihoods are yearly, "
                "so over so short a window the Brier score and the calibration "
                "say little yet."
            )
        calibration = calibration_table(
            recon, risks, likelihood_mapping, start=start, end=end
        )
        ends = pd.period_range(
            start.tz_convert(None), end.tz_convert(None), freq=_PERIOD_FREQ[period]
        ).end_time
        trend = {}
        for period_end in ends:
            stop = min(pd.Timestamp(period_end).tz_localize("UTC"), end)
            table = calibration_table(
                recon, risks, likelihood_mapping, start=start, end=stop
            )
            trend[pd.Timestamp(period_end).normalize()] = _brier(table)
        brier_trend = pd.DataFrame({"brier": pd.Series(trend, dtype=float)})
        brier_trend.index.name = "period_end"

    headline = {
        "incidents": len(recon),
        "predicted": int(realized.sum()),
        "unpredicted": int((recon["outcome"] == "new_risk").sum()),
        "needs_review": int((recon["outcome"] == "needs_review").sum()),
        "predicted_share": _share(int(realized.sum()), decided),
        "risks_realized": int(recon.loc[_happened(recon), "risk_id"].nunique()),
        "risks_in_register": len(risks),
        "mitigations_worked": worked,
        "mitigations_failed": failed,
        "mitigations_unknown": int((verdicts == "unknown").sum()),
        "mitigation_success_rate": _share(worked, worked + failed),
        "near_misses_mitigated": near,
        "new_risks_created": int((recon["outcome"] == "new_risk").sum()),
        "brier_score": _brier(calibration),
    }
    log.info(
        "Metrics over %d incidents: predicted share %.2f, Brier %.3f",
        len(recon),
        headline["predicted_share"],
        headline["brier_score"],
    )
    return Metrics(
        headline=headline,
        by_period=period_metrics(recon, period),
        by_severity=by_severity,
        calibration=calibration,
        reliability=_reliability(calibration),
        brier_trend=brier_trend,
        brier=headline["brier_score"],
        period=period,
        notes=notes,
    )
