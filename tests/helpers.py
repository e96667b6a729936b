"""Small tables built by hand for the stage tests."""

from __future__ import annotations

import pandas as pd

from riskanalytics.schema import INCIDENT_COLUMNS, RISK_COLUMNS


def incidents(*rows: dict) -> pd.DataFrame:
    frame = pd.DataFrame(
        [{c: row.get(c) for c in INCIDENT_COLUMNS} | row for row in rows]
    )
    for column in ("started_at", "resolved_at"):
        frame[column] = pd.to_datetime(frame[column], utc=True)
    return frame


def risks(*rows: dict) -> pd.DataFrame:
    frame = pd.DataFrame([{c: row.get(c) for c in RISK_COLUMNS} | row for row in rows])
    for column in ("likelihood_level", "impact_level"):
        frame[column] = pd.array(frame[column], dtype="Int64")
    return frame


def matches(*rows: tuple) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "incident_id": iid,
                "risk_id": rid if decision == "matched" else None,
                "match_score": score,
                "decision": decision,
                "candidates": candidates,
                "evidence": {"shared_terms": ["certificate", "expired"]},
            }
            for iid, rid, score, decision, candidates in rows
        ]
    )
