"""The report's tables and headlines, as the notebooks show them."""

from __future__ import annotations

import pandas as pd

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


def test_tables_show_short_numbers_and_escape_incident_text():
    table = pd.DataFrame(
        {
            "title": ["<img src=x onerror=alert(1)> disk full"],
            "match_score": [74.1],
            "p_year": [0.65],
            "rating": [100.0],
        }
    )
    html = report._present(table).to_html()
    assert "<img" not in html
    assert "&lt;img src=x onerror=alert(1)&gt; disk full" in html
    assert ">74.1<" in html and ">0.65<" in html and ">100<" in html
    assert "74.100000" not in html


def test_evidence_runner_ups_read_like_candidates():
    recon = pd.DataFrame(
        [
            {
                "incident_id": "MAN-1",
                "decision": "matched",
                "evidence": {
                    "runner_ups": [
                        {"risk_id": "R-022", "score": 63.0},
                        {"risk_id": "R-001", "score": 52.95},
                    ]
                },
            }
        ]
    )
    table = report.evidence_table(recon).data
    assert table.loc[0, "runner ups"] == "R-022:63.0, R-001:53.0"


def test_review_texts_show_markup_from_incidents_as_text(tmp_path):
    path = tmp_path / "review-MAN-1.md"
    path.write_text(
        "---\nincident_id: MAN-1\n---\n# Post-incident review: disk full\n\n"
        "**Root cause.** The <script>alert(1)</script> job filled the disk\n",
        encoding="utf-8",
    )
    written = pd.DataFrame([{"review_path": str(path), "written": True}])
    (text,) = report.review_texts(written)
    assert "<script>" not in text
    assert "&lt;script>alert(1)&lt;/script> job" in text
    assert "incident_id" not in text


def test_reconciliation_headline_counts_a_near_miss_apart():
    recon = pd.DataFrame(
        {
            "outcome": ["realized", "realized", "new_risk"],
            "near_miss": [False, True, False],
        }
    )
    text = report.reconciliation_headline(recon)
    assert "**1** realized a documented risk, **1** came near one" in text
    assert "predicted **67%**" in text


def test_cross_reference_names_outcomes_in_words_and_a_near_miss_as_such():
    recon = pd.DataFrame(
        {
            "incident_id": ["A", "B", "C", "D"],
            "title": ["a", "b", "c", "d"],
            "started_at": pd.to_datetime(["2026-01-01"] * 4, utc=True),
            "severity": ["P1"] * 4,
            "outcome": ["realized", "realized", "new_risk", "needs_review"],
            "near_miss": [False, True, False, False],
            "risk_id": ["R-1", "R-2", "R-3", None],
            "owner": ["x"] * 4,
            "match_score": [70.0, 60.0, 10.0, 40.0],
            "candidates": [""] * 4,
            "mitigation_verdict": ["worked", "worked", None, None],
        }
    )
    table = report.cross_reference_table(recon).data
    assert list(table["outcome"]) == [
        "realized",
        "near miss",
        "new risk",
        "needs review",
    ]


def test_no_skipped_record_reads_as_a_sentence_not_an_empty_table():
    shown = report.skipped_table([])
    assert shown.data == "*No record was skipped.*"


def test_evidence_shows_failure_modes_and_terms_in_plain_words():
    recon = pd.DataFrame(
        [
            {
                "incident_id": "MAN-2",
                "decision": "matched",
                "root_cause": "A global rollout of a bad config crashed routers",
                "evidence": {
                    "failure_modes": ["global_rollout", "config"],
                    "shared_terms": ["router", "crash"],
                },
            }
        ]
    )
    table = report.evidence_table(recon).data
    assert table.loc[0, "failure modes"] == "global rollout, config"
    assert table.loc[0, "shared terms"] == "routers, crashed"


def test_update_headline_counts_near_misses_apart_from_realizations():
    from types import SimpleNamespace

    from riskanalytics.report import update_headline

    events = ["realized", "realized", "near-miss", "withdrawn", "reviewed"]
    update = SimpleNamespace(
        changed=True,
        realized=[SimpleNamespace(event=e) for e in events],
        created={"I-9": "R-031"},
        already_recorded=["I-1"],
    )
    assert update_headline(update, dry_run=False) == (
        "This run recorded **2** realization(s), **1** near miss(es), **1** "
        "withdrawn realization(s), **1** reviewers' verdict(s) and **1** new "
        "risk(s); **1** incident(s) were already recorded."
    )
