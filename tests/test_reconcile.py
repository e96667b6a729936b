import re
from pathlib import Path

import pandas as pd
import pytest

from riskanalytics.config import load_config
from riskanalytics.reconcile import (
    judge_mitigations,
    new_risk_from_incident,
    reconcile,
    review_filename,
    review_path_for,
)
from tests.helpers import incidents, matches, risks

ROOT = Path(__file__).resolve().parent.parent

CERT = {
    "risk_id": "R-004",
    "description": "A TLS certificate expires and clients reject connections",
    "owner": "platform-team",
    "mitigations": "Automated ACME renewal; expiry alerts 30 days ahead",
    "likelihood": "Likely",
    "likelihood_level": 4,
    "impact_level": 4,
}
BUG = {
    "risk_id": "R-018",
    "description": "A release ships a bug",
    "owner": "release-team",
    "mitigations": "Canary releases; automated rollback on SLO burn; feature flags",
    "likelihood_level": 2,
    "impact_level": 2,
}


@pytest.fixture
def config():
    return load_config(ROOT / "config.yaml", risk_threshold_for_escalation="high")


def test_expiry_alert_that_never_fired_is_a_failed_mitigation():
    incident = incidents(
        {
            "incident_id": "i1",
            "root_cause": "The certificate expired. The expiry alerts did not fire "
            "because the alert rule was disabled.",
        }
    ).iloc[0]
    verdict = judge_mitigations(incident, CERT["mitigations"])
    assert verdict.verdict == "failed"
    assert "expiry alerts did not fire" in verdict.evidence


def test_canary_that_caught_the_bug_is_a_mitigation_that_worked():
    incident = incidents(
        {
            "incident_id": "i2",
            "root_cause": "A null pointer bug in release 4.2.",
            "recovery_actions": "The canary releases caught the error spike and the "
            "rollout was rolled back automatically.",
        }
    ).iloc[0]
    assert judge_mitigations(incident, BUG["mitigations"]).verdict == "worked"


def test_silent_incident_data_gives_unknown_verdict():
    incident = incidents({"incident_id": "i3", "root_cause": "Something broke."})
    assert judge_mitigations(incident.iloc[0], CERT["mitigations"]).verdict == "unknown"


def test_rollback_incident_with_rollback_mitigation_worked():
    incident = incidents(
        {"incident_id": "i4", "root_cause": "Bad release", "trigger": "rollback"}
    ).iloc[0]
    assert judge_mitigations(incident, BUG["mitigations"]).verdict == "worked"


def test_near_miss_means_the_controls_worked():
    incident = incidents({"incident_id": "i5", "root_cause": "x", "near_miss": True})
    assert judge_mitigations(incident.iloc[0], None).verdict == "worked"


def test_outcomes_follow_decisions(config):
    table = reconcile(
        incidents(
            {
                "incident_id": "a",
                "root_cause": "cert expired",
                "started_at": "2026-03-01T10:00Z",
                "resolved_at": "2026-03-01T11:30Z",
            },
            {
                "incident_id": "b",
                "root_cause": "vendor SMS sent twice",
                "service": "checkout",
            },
            {"incident_id": "c", "root_cause": "hmm"},
        ),
        matches(
            ("a", "R-004", 80.0, "matched", "R-004:80.0;R-018:20.0"),
            ("b", None, 10.0, "new", "R-018:10.0"),
            ("c", None, 40.0, "review", "R-018:40.0;R-004:30.0"),
        ),
        risks(CERT, BUG),
        config,
    )
    by_id = table.set_index("incident_id")
    assert by_id.loc["a", "outcome"] == "realized"
    assert by_id.loc["a", "risk_id"] == "R-004"
    assert by_id.loc["a", "owner"] == "platform-team"
    assert by_id.loc["a", "duration_minutes"] == 90
    assert by_id.loc["a", "risk_rating"] == 16
    assert bool(by_id.loc["a", "escalate"]) is True
    assert by_id.loc["a", "review_deadline"] == pd.Timestamp("2026-03-15T11:30Z")
    assert by_id.loc["b", "outcome"] == "new_risk"
    assert by_id.loc["b", "owner"] == "payments-team"  # service -> owner map
    assert pd.isna(by_id.loc["b", "risk_id"])
    assert by_id.loc["c", "outcome"] == "needs_review"
    assert by_id.loc["c", "owner"] == "release-team"  # owner of the top candidate


def test_low_rated_risk_is_not_escalated(config):
    table = reconcile(
        incidents({"incident_id": "a", "root_cause": "bug"}),
        matches(("a", "R-018", 90.0, "matched", "R-018:90.0")),
        risks(CERT, BUG),
        config,
    )
    assert table.loc[0, "risk_rating"] == 4
    assert not table.loc[0, "escalate"]


def test_review_file_names_are_safe_and_never_shared():
    assert review_filename("PD-123") == "review-PD-123.md"
    assert re.fullmatch(
        r"review-PD-123-x-[0-9a-f]{10}\.md", review_filename("PD/123 x")
    )
    assert re.fullmatch(r"review-incident-[0-9a-f]{10}\.md", review_filename("../.."))
    ids = ["a/b", "a-b", "a b", "事故一", "事故二", "..", "A" * 400, "A" * 401]
    names = [review_filename(i) for i in ids]
    assert len(set(names)) == len(ids)
    assert all(len(n) < 110 and "/" not in n for n in names)


def test_a_review_under_its_earlier_name_is_kept(tmp_path):
    legacy = tmp_path / "review-PD-123-x.md"
    legacy.write_text("---\nincident_id: PD/123 x\n---\n", encoding="utf-8")
    assert review_path_for(tmp_path, "PD/123 x") == legacy
    # a file of that name about another incident is not taken
    assert review_path_for(tmp_path, "PD 123 x") != legacy


def test_an_id_too_long_for_a_file_name_gets_a_review_path(tmp_path):
    path = review_path_for(tmp_path, "X" * 300)
    assert path.parent == tmp_path and len(path.name) < 110
    path.write_text("---\nincident_id: x\n---\n", encoding="utf-8")


def test_incident_without_any_text_goes_to_review_not_to_a_new_risk(config):
    table = reconcile(
        incidents({"incident_id": "blank"}),
        matches(("blank", None, 0.0, "new", "")),
        risks(CERT),
        config,
    )
    assert table.loc[0, "outcome"] == "needs_review"


def new_risk(config, register=None, **fields) -> dict:
    """The new risk built from one incident ("Vendor resent SMS" unless told)."""
    row = {"incident_id": "x", "root_cause": "Vendor resent SMS", **fields}
    return new_risk_from_incident(incidents(row).iloc[0], config, register)


def test_new_risk_speaks_the_registers_own_scale(config):
    numeric = risks(
        {
            "risk_id": "A",
            "likelihood": "3",
            "likelihood_level": 3,
            "impact": "4",
            "impact_level": 4,
        },
        {"risk_id": "B", "likelihood": "Medium", "likelihood_level": 3},
        {"risk_id": "C", "likelihood": "3", "likelihood_level": 3},
    )
    fields = new_risk(config, numeric, severity="high")
    assert fields["likelihood"] == "3"  # the most common word at level 3
    assert fields["impact"] == "4"  # high severity -> Major -> level 4
    assert new_risk(config, severity="high")["likelihood"] == "Possible"


@pytest.mark.parametrize(
    ("category", "expected"),
    [
        ("Config Errors", "Config Errors"),
        ("  Hardware/Power   Failures ", "Hardware/Power Failures"),
        ("Uncategorized", "Unclassified"),
        ("cloud; simpledb; power loss", "cloud"),
        ("Uncategorized; dns", "Unclassified"),
        ("x" * 41, "Unclassified"),
        (None, "Unclassified"),
    ],
)
def test_new_risk_takes_the_sources_one_short_category(config, category, expected):
    assert new_risk(config, category=category)["category"] == expected


def test_abbreviations_do_not_cut_a_new_risk_description(config):
    text = "A node was launched approx. 5 minutes late. Pods waited."
    assert (
        new_risk(config, root_cause=text)["description"]
        == "A node was launched approx. 5 minutes late."
    )


@pytest.mark.parametrize(
    ("root_cause", "description"),
    [
        ("The zone was deleted; lookups failed", "The zone was deleted"),
        ("Disk full: writes failed", "Disk full: writes failed"),
        ("word " * 60, ("word " * 39).strip() + "…"),
        ("x" * 300, "x" * 199 + "…"),
    ],
)
def test_new_risk_description_ends_cleanly(config, root_cause, description):
    assert new_risk(config, root_cause=root_cause)["description"] == description


@pytest.mark.parametrize(
    ("threshold", "likelihood", "impact", "escalated"),
    [
        ("high", 2, 5, True),  # rating 10: the high band starts there
        ("high", 3, 3, False),  # rating 9: just below
        (16, 4, 4, True),  # a score threshold: at it
        (17, 4, 4, False),  # a score threshold: just above
    ],
)
def test_escalation_starts_at_the_threshold(threshold, likelihood, impact, escalated):
    config = load_config(
        ROOT / "config.yaml",
        risk_threshold_for_escalation=threshold,
        rating_bands={"low": 1, "medium": 5, "high": 10, "critical": 17},
    )
    risk = dict(CERT, likelihood_level=likelihood, impact_level=impact)
    table = reconcile(
        incidents({"incident_id": "a", "root_cause": "certificate expired"}),
        matches(("a", "R-004", 80.0, "matched", "R-004:80.0")),
        risks(risk, BUG),
        config,
    )
    assert table.loc[0, "risk_rating"] == likelihood * impact
    assert bool(table.loc[0, "escalate"]) is escalated


def test_new_risk_in_a_percentage_register_gets_percentages(config):
    from riskanalytics.register import read_register

    register = read_register(
        ROOT / "tests/fixtures/register/akyoseva_percent_scales_bom_crlf.md"
    )
    fields = new_risk(config, register.risks, severity="critical")
    # no risk is at level 3 (likelihood) or 5 (impact): a value in the band
    assert fields["likelihood"] == "40%"
    assert fields["impact"] == "90%"


def test_new_risk_in_a_numeric_register_gets_the_level_itself(config):
    numeric = risks(
        {"risk_id": "A", "likelihood": "1", "likelihood_level": 1},
        {"risk_id": "B", "likelihood": "0.2", "likelihood_level": 2},
        {"risk_id": "C", "impact": "2", "impact_level": 2},
    )
    fields = new_risk(config, numeric, severity="p1")
    assert fields["likelihood"] == "Possible"  # numbers of two kinds: no style
    assert fields["impact"] == "5"


@pytest.mark.parametrize(
    ("severity", "impact"),
    [("P1", "Severe"), ("SEV-2", "Major"), ("warning", "Moderate"), ("P4", "Minor")]
    + [("P5", "Minor"), ("minor", "Minor"), ("major", "Major"), (None, "Moderate")],
)
def test_a_new_risk_s_impact_follows_the_severity_band_of_its_incident(
    config, severity, impact
):
    incident = pd.Series(
        {"incident_id": "I-1", "root_cause": "A queue filled up", "severity": severity}
    )
    assert new_risk_from_incident(incident, config)["impact"] == impact
