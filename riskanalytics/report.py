"""Tables and headline sentences for the notebooks and their HTML reports.

Presentation only: every figure comes from the stage results; nothing here
changes a file.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pandas as pd

from riskanalytics.match import readable_terms

__all__ = [
    "CHART_TITLES",
    "calibration_table",
    "chart_markdown",
    "cross_reference_table",
    "evidence_table",
    "metrics_headline",
    "needs_review_table",
    "period_table",
    "reconciliation_headline",
    "review_status_table",
    "review_texts",
    "reviews_headline",
    "severity_table",
    "skipped_table",
    "update_headline",
    "update_table",
]

log = logging.getLogger(__name__)


def _present(table: pd.DataFrame, empty: str = "None."):
    """A table as leadership reads it: no index, readable times, blanks for NA."""
    from IPython.display import Markdown

    if table.empty:
        return Markdown(f"*{empty}*")
    shown = table.copy()
    for column in shown.columns:
        if isinstance(shown[column].dtype, pd.DatetimeTZDtype):
            shown[column] = shown[column].dt.strftime("%Y-%m-%d %H:%M")
    shown = shown.astype(object).where(shown.notna(), "")
    shown.columns = [str(c).replace("_", " ") for c in shown.columns]
    # incident text comes from outside (webhooks, reports): shown, never run
    return shown.style.hide(axis="index").format(_cell, escape="html")


def _cell(value: object) -> object:
    """A float with at most two decimals and no trailing zeros; else as is."""
    if isinstance(value, float):
        return f"{value:.2f}".rstrip("0").rstrip(".")
    return value


def _pct(value: float) -> str:
    return "n/a" if value is None or value != value else f"{value:.0%}"


def reconciliation_headline(recon: pd.DataFrame) -> str:
    """One paragraph: how many incidents, realized, new, to review."""
    counts = recon["outcome"].value_counts()
    matched = int(counts.get("realized", 0))
    near = 0
    if "near_miss" in recon:
        near = int(
            (recon["near_miss"].eq(True) & (recon["outcome"] == "realized")).sum()
        )
    new = int(counts.get("new_risk", 0))
    review = int(counts.get("needs_review", 0))
    decided = matched + new
    share = _pct(matched / decided) if decided else "n/a"
    near_text = f", **{near}** came near one (near miss)" if near else ""
    return (
        f"**{len(recon)} incidents**: **{matched - near}** realized a documented "
        f"risk{near_text}, **{new}** were not predicted by any risk, **{review}** "
        "need an analyst's decision. The register predicted "
        f"**{share}** of the decided incidents."
    )


def cross_reference_table(recon: pd.DataFrame) -> pd.DataFrame:
    """Incident, outcome, risk, score, candidates and mitigation verdict."""
    columns = [
        "incident_id",
        "title",
        "started_at",
        "severity",
        "outcome",
        "risk_id",
        "owner",
        "match_score",
        "candidates",
        "mitigation_verdict",
    ]
    table = recon[columns].copy()
    table["match_score"] = table["match_score"].round(1)
    table["outcome"] = [_outcome_words(row) for _, row in recon.iterrows()]
    return _present(table.sort_values("started_at", na_position="first"))


_OUTCOME_WORDS = {
    "realized": "realized",
    "new_risk": "new risk",
    "needs_review": "needs review",
}


def _outcome_words(row: pd.Series) -> str:
    """An outcome as the reader says it; a near miss did not realize its risk."""
    outcome = str(row["outcome"])
    near = row.get("near_miss")
    if outcome == "realized" and near is not None and not pd.isna(near) and near:
        return "near miss"
    return _OUTCOME_WORDS.get(outcome, outcome)


def needs_review_table(recon: pd.DataFrame) -> pd.DataFrame:
    """Incidents awaiting an analyst, with their top candidates."""
    table = recon.loc[recon["outcome"] == "needs_review"]
    columns = ["incident_id", "title", "root_cause", "match_score", "candidates"]
    return _present(table[columns], "No incident waits for an analyst.")


def _item(value: object) -> str:
    """One evidence list item; a scored risk reads as in candidates, ``R-007:61.2``."""
    if isinstance(value, dict):
        if {"risk_id", "score"} <= value.keys() and isinstance(value["score"], float):
            return f"{value['risk_id']}:{value['score']:.1f}"
        return json.dumps(value)
    return str(value)


def _flatten(evidence: object) -> dict:
    if not isinstance(evidence, dict):
        return {}
    flat = {}
    for key, value in evidence.items():
        if isinstance(value, list | tuple):
            flat[key] = ", ".join(_item(v) for v in value[:10])
        elif isinstance(value, dict):
            flat[key] = ", ".join(
                f"{k}={v:.1f}" if isinstance(v, float) else f"{k}={v}"
                for k, v in value.items()
            )
        else:
            flat[key] = value
    return flat


def evidence_table(recon: pd.DataFrame) -> pd.DataFrame:
    """The evidence of every match, one row per incident."""
    rows = [
        {"incident_id": row["incident_id"], "decision": row["decision"]}
        | _flatten(_readable(row))
        for _, row in recon.iterrows()
    ]
    return _present(pd.DataFrame(rows))


def _readable(row: pd.Series) -> object:
    """The row's evidence with shared stems shown as the incident's words."""
    evidence = row["evidence"]
    if not isinstance(evidence, dict):
        return evidence
    texts = [row.get(key) for key in ("root_cause", "title", "impact")]
    return (
        evidence
        | {
            key: readable_terms(evidence.get(key) or [], *texts)
            for key in ("shared_terms", "shared_phrases")
        }
        | {
            "failure_modes": [
                str(mode).replace("_", " ")
                for mode in evidence.get("failure_modes") or []
            ]
        }
    )


def skipped_table(skipped: list) -> pd.DataFrame:
    """Records skipped during ingestion: file, record, reason."""
    rows = [{"file": s.file, "record": s.record, "reason": s.reason} for s in skipped]
    table = pd.DataFrame(rows, columns=["file", "record", "reason"])
    return _present(table, "No record was skipped.")


def update_headline(update, *, dry_run: bool) -> str:
    """What the register update did (or would do, in a dry run)."""
    verb = "would record" if dry_run else "recorded"
    if not update.changed:
        return "The register already records everything this run found: no change."
    events = [r.event for r in update.realized]
    counts = [
        (events.count("realized"), "realization(s)"),
        (events.count("near-miss"), "near miss(es)"),
        (events.count("withdrawn"), "withdrawn realization(s)"),
        (events.count("reviewed"), "reviewers' verdict(s)"),
    ]
    told = (
        ", ".join(f"**{n}** {what}" for n, what in counts if n) or "**0** realizations"
    )
    return (
        f"This run {verb} {told} and "
        f"**{len(update.created)}** new risk(s); "
        f"**{len(update.already_recorded)}** incident(s) were already recorded."
    )


def update_table(update) -> pd.DataFrame:
    """Realized and created risks of the update, one row each."""
    rows = [
        {
            "event": r.event,
            "risk_id": r.risk_id,
            "incident_id": r.incident_id,
            "match_score": None if r.match_score is None else round(r.match_score, 1),
            "mitigations": r.mitigation_verdict,
        }
        for r in update.realized
    ]
    rows += [
        {"event": "created", "risk_id": risk_id, "incident_id": incident_id}
        for incident_id, risk_id in update.created.items()
    ]
    columns = ["event", "risk_id", "incident_id", "match_score", "mitigations"]
    return _present(pd.DataFrame(rows, columns=columns), "No change.")


def reviews_headline(written: pd.DataFrame, status: pd.DataFrame) -> str:
    """Reviews written, open and overdue."""
    open_ = int((status["status"] != "done").sum()) if len(status) else 0
    overdue = int(status["overdue"].sum()) if len(status) else 0
    return (
        f"**{int(written['written'].sum())}** review(s) written in this run; "
        f"**{open_}** open, **{overdue}** overdue."
    )


def review_status_table(status: pd.DataFrame) -> pd.DataFrame:
    """Open reviews, overdue first."""
    table = status.loc[status["status"] != "done"] if len(status) else status
    columns = ["incident_id", "risk_id", "owner", "status", "review_deadline"]
    table = table.sort_values(["overdue", "days_overdue"], ascending=False)
    table = table[[*columns, "days_overdue"]].copy()
    deadlines = pd.to_datetime(table["review_deadline"], utc=True)
    table["review_deadline"] = deadlines.dt.strftime("%Y-%m-%d")
    return _present(table, "No open review.")


def review_texts(written: pd.DataFrame, *, limit: int = 20) -> list[str]:
    """The Markdown of the reviews written in this run (at most ``limit``)."""
    paths = written.loc[written["written"], "review_path"].head(limit)
    texts = []
    for path in paths:
        text = Path(path).read_text(encoding="utf-8")
        body = text.split("\n---\n", 1)[-1]  # the front matter is for machines
        texts.append(body.replace("<", "&lt;"))  # incident text is shown, not run
    return texts


#: Alt text of each chart, for readers of the HTML report who cannot see it.
CHART_TITLES = {
    "predicted_share": "Share of incidents the register predicted, per period",
    "outcomes": "Incidents per period by outcome",
    "mitigations": "Mitigation verdicts of realized risks per period",
    "reliability": "Calibration: stated likelihood against observed frequency",
    "calibration_trend": "Brier score of stated likelihoods to date",
}


def chart_markdown(path: str | Path, alt: str) -> str:
    """A PNG chart as Markdown with alt text, embedded so the HTML stands alone."""
    import base64

    data = base64.b64encode(Path(path).read_bytes()).decode("ascii")
    return f"![{alt}](data:image/png;base64,{data})"


def metrics_headline(metrics) -> str:
    """The headline figures, as a Markdown list."""
    h = metrics.headline
    lines = [
        f"- **{_pct(h['predicted_share'])}** of decided incidents were predicted by "
        f"the register ({h['predicted']} of {h['predicted'] + h['unpredicted']}; "
        f"{h['needs_review']} await review).",
        f"- **{h['risks_realized']}** of the {h['risks_in_register']} risks written "
        f"ahead of incidents were realized (risks made from incidents left out).",
        f"- Mitigations worked in **{_pct(h['mitigation_success_rate'])}** of the "
        f"realized risks with a verdict ({h['mitigations_worked']} worked, "
        f"{h['mitigations_failed']} failed, {h['mitigations_unknown']} unknown)"
        + (
            f"; they caught {h['near_misses_mitigated']} near miss(es)."
            if h.get("near_misses_mitigated")
            else "."
        ),
        f"- **{h['new_risks_created']}** unknown unknowns: incidents no risk "
        "predicted.",
        f"- Brier score of stated likelihoods: **{h['brier_score']:.3f}** "
        f"(0 is perfect, 0.25 is a coin toss).",
    ]
    return "\n".join(lines + [f"- {note}" for note in metrics.notes])


def period_table(metrics) -> pd.DataFrame:
    """The per-period metrics with shares as percentages."""
    table = metrics.by_period.copy()
    if table.empty:
        return _present(table, "No incident has a start time yet.")
    shares = ("predicted_share", "predicted_share_to_date", "mitigation_success_rate")
    for column in shares:
        table[column] = table[column].map(_pct)
    fmt = "%Y-%m" if metrics.period == "month" else "%Y-%m-%d"
    table.insert(0, metrics.period, table.index.strftime(fmt))
    return _present(table)


def severity_table(metrics) -> pd.DataFrame:
    """Predicted share by stated severity."""
    table = metrics.by_severity.copy()
    for column in ("incidents", "realized", "new_risks"):
        table[column] = table[column].astype(int)
    table["predicted_share"] = table["predicted_share"].map(_pct)
    table.insert(0, "severity", table.index)
    return _present(table)


def calibration_table(metrics) -> pd.DataFrame:
    """Per-risk calibration, risks realized first."""
    table = metrics.calibration.sort_values(
        ["realized", "p_year"], ascending=[False, False]
    )
    return _present(table.round({"p_year": 2, "p_window": 2}))
