"""Report helpers: the tables and figures the notebooks show."""

from __future__ import annotations

from riskanalytics import report
from riskanalytics.register.update import Realization, RegisterUpdate


def _update(*realized: Realization) -> RegisterUpdate:
    return RegisterUpdate(
        old_text="",
        new_text="x",
        diff="",
        realized=list(realized),
        created={"MAN-1/review-1": "R-033"},
        already_recorded=[],
        changed=True,
    )


def test_update_table_shows_a_reviewed_entry_without_a_match_score():
    reviewed = Realization(
        risk_id="R-004",
        incident_id="MAN-1",
        date=None,
        source="review",
        match_score=None,
        mitigation_verdict="failed",
        event="reviewed",
    )
    matched = Realization(
        risk_id="R-009",
        incident_id="MAN-2",
        date=None,
        source="csv",
        match_score=76.34,
        mitigation_verdict="unknown",
    )
    table = report.update_table(_update(reviewed, matched)).data
    assert list(table["event"]) == ["reviewed", "realized", "created"]
    assert list(table["match score"])[:2] == ["", 76.3]
