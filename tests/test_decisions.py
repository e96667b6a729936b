"""Analysts' match decisions: reading, recording and applying them."""

from __future__ import annotations

import threading
from pathlib import Path

import pandas as pd
import pytest
import yaml

from riskanalytics.config import MatchingConfig
from riskanalytics.decisions import (
    Decisions,
    apply_decisions,
    check_risk_ids,
    load_decisions,
    record_decision,
)
from riskanalytics.exceptions import InputFormatError
from riskanalytics.match import Matcher, match_incidents

RISKS = pd.DataFrame(
    [
        {"risk_id": "R-1", "description": "A memory leak leads to out of memory kills"},
        {"risk_id": "R-2", "description": "A TLS certificate expires"},
        {"risk_id": "R-3", "description": "A disk fills up and writes fail"},
    ]
)
INCIDENTS = pd.DataFrame(
    [
        {"incident_id": "I-1", "root_cause": "The disk filled up and writes failed"},
        {"incident_id": "I-2", "root_cause": "Pods were OOMKilled, heap kept growing"},
        {"incident_id": "I-3", "root_cause": "The quarterly report ran late"},
    ]
)


def write(path, entries):
    path.write_text(yaml.safe_dump(entries), encoding="utf-8")
    return path


def test_missing_file_means_no_decisions(tmp_path):
    decisions = load_decisions(tmp_path / "match-decisions.yaml")
    assert len(decisions) == 0
    assert len(load_decisions(None)) == 0


def test_empty_file_means_no_decisions(tmp_path):
    path = tmp_path / "match-decisions.yaml"
    path.write_text("", encoding="utf-8")
    assert len(load_decisions(path)) == 0


@pytest.mark.parametrize(
    ("entries", "message"),
    [
        ({"incident_id": "I-1"}, r"expected a list of decisions, found dict"),
        ([{"incident_id": "I-1", "action": "confirm"}, "oops"], r"entry 2: expected"),
        ([{"incident_id": "I-1", "action": "accept"}], r"entry 1: action must be"),
        ([{"action": "confirm"}], r"entry 1: expected an incident_id"),
        ([{"incident_id": "I-1", "action": "reject"}], r"entry 1: reject needs"),
        ([{"incident_id": "I-1", "action": "redirect"}], r"entry 1: redirect needs"),
        (
            [{"incident_id": "I-1", "action": "confirm", "risk": "R-1"}],
            r"entry 1: unknown key\(s\) risk",
        ),
    ],
)
def test_malformed_file_names_file_and_entry(tmp_path, entries, message):
    path = write(tmp_path / "match-decisions.yaml", entries)
    with pytest.raises(InputFormatError, match=message) as caught:
        load_decisions(path)
    assert "match-decisions.yaml" in str(caught.value)


def test_invalid_yaml_names_file_and_line(tmp_path):
    path = tmp_path / "match-decisions.yaml"
    path.write_text("- incident_id: I-1\n  action: [confirm\n", encoding="utf-8")
    with pytest.raises(InputFormatError, match=r"match-decisions\.yaml: line \d+"):
        load_decisions(path)


def test_record_decision_appends_in_order_and_round_trips(tmp_path):
    path = tmp_path / "learning" / "match-decisions.yaml"
    record_decision(path, "I-1", "confirm", "R-3", by="alice", note="disk")
    record_decision(path, "I-2", "redirect", new_risk=True, by="bob")
    decisions = load_decisions(path)
    assert [(d.incident_id, d.action, d.risk_id) for d in decisions] == [
        ("I-1", "confirm", "R-3"),
        ("I-2", "redirect", None),
    ]
    assert decisions.entries[0].by == "alice" and decisions.entries[0].at
    assert decisions.entries[1].new_risk is True
    assert not list(path.parent.glob("*.tmp"))


def test_record_decision_refuses_a_malformed_decision(tmp_path):
    path = tmp_path / "match-decisions.yaml"
    with pytest.raises(InputFormatError, match="reject needs"):
        record_decision(path, "I-1", "reject")
    assert not path.exists()


def test_concurrent_records_are_all_kept(tmp_path):
    path = tmp_path / "match-decisions.yaml"
    threads = [
        threading.Thread(
            target=record_decision, args=(path, f"I-{i}", "confirm", "R-1")
        )
        for i in range(8)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(d.incident_id for d in load_decisions(path)) == [
        f"I-{i}" for i in range(8)
    ]


def scored():
    return Matcher(RISKS).match(INCIDENTS)


def decisions(*entries) -> Decisions:
    from riskanalytics.decisions import Decision

    return Decisions(tuple(Decision(**e) for e in entries))


def test_confirm_forces_the_risk_as_matched():
    result = apply_decisions(
        scored(),
        decisions({"incident_id": "I-3", "action": "confirm", "risk_id": "R-2"}),
    ).set_index("incident_id")
    assert result.loc["I-3", "decision"] == "matched"
    assert result.loc["I-3", "risk_id"] == "R-2"
    assert result.loc["I-3", "candidates"].startswith("R-2:")
    assert result.loc["I-3", "decided_by"] == "analyst"
    assert result.loc["I-1", "decided_by"] == "score"


def test_confirm_without_risk_keeps_the_best_candidate():
    before = scored().set_index("incident_id")
    result = apply_decisions(
        scored(), decisions({"incident_id": "I-1", "action": "confirm"})
    ).set_index("incident_id")
    assert result.loc["I-1", "risk_id"] == before.loc["I-1", "candidates"].split(":")[0]
    assert result.loc["I-1", "decided_by"] == "analyst"


def test_reject_removes_the_risk_and_decides_again():
    before = scored().set_index("incident_id")
    assert before.loc["I-1", "risk_id"] == "R-3"
    result = apply_decisions(
        scored(),
        decisions({"incident_id": "I-1", "action": "reject", "risk_id": "R-3"}),
    ).set_index("incident_id")
    assert "R-3" not in result.loc["I-1", "candidates"]
    assert (
        pd.isna(result.loc["I-1", "risk_id"]) or result.loc["I-1", "risk_id"] != "R-3"
    )
    left = result.loc["I-1", "candidates"]
    expected = float(left.split(";")[0].split(":")[1]) if left else 0.0
    assert result.loc["I-1", "match_score"] == expected
    assert result.loc["I-1", "decision"] in {"review", "new"}


def test_after_a_reject_a_runner_up_above_the_match_threshold_goes_to_review():
    from tests.helpers import matches

    scored = matches(("I-9", "R-2", 90.0, "matched", "R-2:90.0;R-1:80.0;R-4:9.0"))
    result = apply_decisions(
        scored, decisions({"incident_id": "I-9", "action": "reject", "risk_id": "R-2"})
    ).iloc[0]
    assert result["decision"] == "review" and pd.isna(result["risk_id"])
    assert result["candidates"] == "R-1:80.0;R-4:9.0"
    assert result["match_score"] == 80.0


def test_rejecting_a_runner_up_keeps_the_match():
    from tests.helpers import matches

    scored = matches(("I-9", "R-2", 90.0, "matched", "R-2:90.0;R-1:80.0;R-4:9.0"))
    for rejected in ("R-1", "R-7"):  # a runner-up, a risk not even a candidate
        result = apply_decisions(
            scored,
            decisions({"incident_id": "I-9", "action": "reject", "risk_id": rejected}),
        ).iloc[0]
        assert (result["decision"], result["risk_id"]) == ("matched", "R-2")
        assert result["match_score"] == 90.0
        assert rejected not in result["candidates"]


def test_a_rejection_or_bare_confirm_is_about_the_risk_the_register_records():
    from tests.helpers import matches

    # the matcher picks R-2 today; the register records the incident on R-1
    scored = matches(("I-9", "R-2", 90.0, "matched", "R-2:90.0;R-1:80.0;R-4:9.0"))
    recorded = {"I-9": "R-1"}

    def decide(entry):
        entries = decisions({"incident_id": "I-9", **entry})
        return apply_decisions(scored, entries, recorded=recorded).iloc[0]

    rejected = decide({"action": "reject", "risk_id": "R-1"})
    assert (rejected["decision"], rejected["match_score"]) == ("review", 90.0)
    other = decide({"action": "reject", "risk_id": "R-4"})
    assert (other["decision"], other["risk_id"], other["match_score"]) == (
        "matched",
        "R-1",
        80.0,
    )
    confirmed = decide({"action": "confirm"})
    assert (confirmed["decision"], confirmed["risk_id"]) == ("matched", "R-1")


def test_redirect_sets_another_risk_or_new():
    result = apply_decisions(
        scored(),
        decisions(
            {"incident_id": "I-1", "action": "redirect", "risk_id": "R-1"},
            {"incident_id": "I-2", "action": "redirect", "new_risk": True},
        ),
    ).set_index("incident_id")
    assert result.loc["I-1", "risk_id"] == "R-1"
    assert result.loc["I-1", "decision"] == "matched"
    assert result.loc["I-2", "decision"] == "new"
    assert pd.isna(result.loc["I-2", "risk_id"])


def test_later_entry_refines_an_earlier_one():
    result = apply_decisions(
        scored(),
        decisions(
            {"incident_id": "I-1", "action": "confirm", "risk_id": "R-3"},
            {"incident_id": "I-1", "action": "reject", "risk_id": "R-3"},
        ),
    ).set_index("incident_id")
    assert (
        pd.isna(result.loc["I-1", "risk_id"]) or result.loc["I-1", "risk_id"] != "R-3"
    )


def test_confirmed_decision_wins_on_every_rerun(tmp_path):
    path = tmp_path / "match-decisions.yaml"
    record_decision(path, "I-3", "confirm", "R-1", by="alice")
    for _ in range(2):
        result = match_incidents(
            INCIDENTS, RISKS, MatchingConfig(), load_decisions(path)
        ).set_index("incident_id")
        assert result.loc["I-3", "risk_id"] == "R-1"
        assert result.loc["I-3", "decided_by"] == "analyst"
        assert result.loc["I-3", "evidence"]["analyst"][0]["by"] == "alice"


def test_confirmed_incidents_teach_the_risk_their_words():
    taught = pd.DataFrame(
        [{"incident_id": "I-9", "root_cause": "kafka consumer lag on zorblax brokers"}]
    )
    new = pd.DataFrame(
        [{"incident_id": "I-10", "root_cause": "zorblax brokers lagged again"}]
    )
    entries = decisions({"incident_id": "I-9", "action": "confirm", "risk_id": "R-2"})
    before = match_incidents(new, RISKS).iloc[0]
    after = match_incidents(
        pd.concat([taught, new], ignore_index=True), RISKS, None, entries
    ).iloc[1]
    assert "R-2" not in (before["candidates"] or "")
    assert after["candidates"].startswith("R-2:")


def test_decision_naming_an_unknown_risk_is_warned(caplog):
    entries = decisions({"incident_id": "I-1", "action": "confirm", "risk_id": "R-99"})
    with caplog.at_level("WARNING", logger="riskanalytics.match"):
        match_incidents(INCIDENTS, RISKS, MatchingConfig(), entries)
    assert "R-99" in caplog.text and "I-1" in caplog.text


def test_malformed_entry_is_named_by_the_line_people_see(tmp_path):
    path = tmp_path / "match-decisions.yaml"
    path.write_text(
        "- incident_id: I-1\n"
        "  action: confirm\n"
        "- incident_id: I-2\n"
        "  action: confirm\n"
        "# the third entry starts on line 6\n"
        "- incident_id: I-3\n"
        "  action: reject\n",
        encoding="utf-8",
    )
    with pytest.raises(InputFormatError) as caught:
        load_decisions(path)
    assert str(caught.value).startswith(f"{path}:6: entry 3: reject needs")


def test_unknown_risk_is_named_by_its_line(tmp_path):
    path = tmp_path / "match-decisions.yaml"
    path.write_text(
        "- {incident_id: I-1, action: confirm, risk_id: R-001}\n"
        "- {incident_id: I-2, action: redirect, risk_id: R-999}\n",
        encoding="utf-8",
    )
    with pytest.raises(InputFormatError) as caught:
        check_risk_ids(load_decisions(path), {"R-001"}, Path("risk-register.md"))
    assert str(caught.value).startswith(f"{path}:2: entry 2: risk_id")


def refusal(tmp_path: Path, text: str, use=lambda decisions: None) -> tuple[Path, str]:
    """A decisions file of ``text``, and the message that refuses it when it is
    loaded, then given to ``use``."""
    path = tmp_path / "match-decisions.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(InputFormatError) as caught:
        use(load_decisions(path))
    return path, str(caught.value)


@pytest.mark.parametrize(
    ("text", "where"),
    [
        (
            "- incident_id: I-1\n  action: reject\n  risk_id: R-1\n  action: confirm\n",
            ":4: entry 1: action set twice, on line 2 and line 4",
        ),
        (
            "- {incident_id: I-1, action: confirm, risk_id: R-1}\n"
            "- {incident_id: I-2, action: reject, action: confirm}\n",
            ":2: entry 2: action set twice, on line 2; keep one",
        ),
    ],
)
def test_key_set_twice_in_an_entry_is_refused_by_its_line(tmp_path, text, where):
    path, message = refusal(tmp_path, text)
    assert message.startswith(f"{path}{where}")


@pytest.mark.parametrize(
    ("field", "message"),
    [
        ('at: "not a date"', "at must be a date or a date-time"),
        ("at: 17", "at must be a date or a date-time"),
        ("by: [1, 2]", "by must be text, found list"),
        ("note: {a: 1}", "note must be text, found dict"),
        ("note: yes", "note must be text, found bool"),
    ],
)
def test_field_of_the_wrong_type_is_refused_by_line_and_key(tmp_path, field, message):
    path, refused = refusal(
        tmp_path,
        "- incident_id: I-1\n  action: confirm\n  risk_id: R-1\n"
        f"- incident_id: I-2\n  action: confirm\n  risk_id: R-1\n  {field}\n",
    )
    assert refused.startswith(f"{path}:7: entry 2: {message}")


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ("- incident_id: [1, 2]\n  action: reject\n  risk_id: R-1\n", "incident_id"),
        ("- incident_id: I-2\n  action: reject\n  risk_id: {a: 1}\n", "risk_id"),
        ("- incident_id: yes\n  action: reject\n  risk_id: R-1\n", "incident_id"),
    ],
)
def test_an_id_that_is_no_single_id_is_refused(tmp_path, entry, message):
    path, refused = refusal(
        tmp_path, "- incident_id: I-1\n  action: confirm\n  risk_id: R-1\n" + entry
    )
    line = 4 if message == "incident_id" else 6
    assert refused.startswith(f"{path}:{line}: entry 2: {message} must be one id")


def test_dates_date_times_and_plain_text_are_accepted(tmp_path):
    path = tmp_path / "match-decisions.yaml"
    path.write_text(
        "- {incident_id: I-1, action: confirm, risk_id: R-1, at: 2026-03-01}\n"
        "- {incident_id: I-2, action: confirm, risk_id: R-1,"
        " at: 2026-03-01T10:00:00Z, by: 7, note: lock on orders}\n"
        "- {incident_id: I-3, action: confirm, risk_id: R-1,"
        " at: '2026-03-01T10:00:00+00:00'}\n",
        encoding="utf-8",
    )
    first, second, third = load_decisions(path)
    assert first.at == "2026-03-01"
    assert second.at.startswith("2026-03-01T10:00:00")
    assert (second.by, second.note) == ("7", "lock on orders")
    assert third.at == "2026-03-01T10:00:00+00:00"


def test_confirm_without_risk_on_an_unmatched_incident_is_refused(tmp_path):
    assert scored().set_index("incident_id").loc["I-3", "decision"] == "new"
    path, message = refusal(
        tmp_path,
        "- {incident_id: I-1, action: confirm}\n"
        "- {incident_id: I-3, action: confirm}\n",
        use=lambda decisions: apply_decisions(scored(), decisions),
    )
    assert message.startswith(
        f"{path}:2: entry 2: confirm needs risk_id: the incident has no matched risk"
    )
    with pytest.raises(InputFormatError, match="confirm needs risk_id"):
        match_incidents(INCIDENTS, RISKS, MatchingConfig(), load_decisions(path))


@pytest.mark.parametrize("decision", ["new", "review"])
def test_confirm_without_risk_does_not_realize_the_top_candidate(decision):
    from tests.helpers import matches

    score = 14.0 if decision == "new" else 40.0
    scored = matches(("I-9", None, score, decision, f"R-2:{score};R-1:9.0"))
    entries = decisions({"incident_id": "I-9", "action": "confirm"})
    with pytest.raises(InputFormatError, match="has no matched risk.*R-2"):
        apply_decisions(scored, entries)


def test_confirm_without_risk_after_rejecting_the_match_needs_a_risk():
    entries = decisions(
        {"incident_id": "I-1", "action": "reject", "risk_id": "R-3"},
        {"incident_id": "I-1", "action": "confirm"},
    )
    with pytest.raises(InputFormatError, match="entry 2: confirm needs risk_id"):
        apply_decisions(scored(), entries)


def test_a_later_redirect_replaces_a_confirm_without_risk():
    result = apply_decisions(
        scored(),
        decisions(
            {"incident_id": "I-3", "action": "confirm"},
            {"incident_id": "I-3", "action": "redirect", "new_risk": True},
        ),
    ).set_index("incident_id")
    assert result.loc["I-3", "decision"] == "new"
