import re
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest

from riskanalytics.checklist import (
    format_duration,
    read_review,
    render_review,
    review_status,
    write_reviews,
)
from riskanalytics.config import load_config
from riskanalytics.exceptions import InputFormatError
from riskanalytics.reconcile import reconcile
from tests.helpers import incidents, matches, risks


def read_front_matter(text: str) -> dict:
    import yaml

    return yaml.safe_load(text.split("---\n")[1])


ROOT = Path(__file__).resolve().parent.parent
NOW = datetime(2026, 6, 1, tzinfo=UTC)


@pytest.fixture
def recon(tmp_path):
    config = load_config(ROOT / "config.yaml", reviews_dir=str(tmp_path / "reviews"))
    return reconcile(
        incidents(
            {
                "incident_id": "PD-7",
                "title": "Checkout TLS errors",
                "source": "pagerduty",
                "root_cause": "The certificate expired; expiry alerts did not fire.",
                "impact": "Card payments failed for 40 minutes.",
                "recovery_actions": "Renewed the certificate by hand.",
                "started_at": "2026-05-20T10:00Z",
                "resolved_at": "2026-05-20T10:40Z",
                "severity": "critical",
                "service": "checkout",
            },
            {"incident_id": "MAN-2", "title": "Duplicate SMS", "source": "csv"},
        ),
        matches(
            ("PD-7", "R-004", 81.5, "matched", "R-004:81.5;R-018:12.0"),
            ("MAN-2", None, 5.0, "new", "R-018:5.0"),
        ),
        risks(
            {
                "risk_id": "R-004",
                "description": "A TLS certificate expires",
                "owner": "platform-team",
                "mitigations": "Automated ACME renewal; expiry alerts 30 days ahead",
                "likelihood": "Likely",
                "likelihood_level": 4,
                "impact_level": 4,
            }
        ),
        config,
        now=NOW,
    )


def test_review_answers_the_three_questions_with_the_facts(recon, tmp_path):
    result = write_reviews(recon, deadline_days=14, now=NOW)
    assert result["written"].all()
    text = Path(result.loc[0, "review_path"]).read_text(encoding="utf-8")
    for question in (
        "Was this risk documented?",
        "Did mitigations work as expected?",
        "What new risks were exposed?",
    ):
        assert question in text
    assert "2026-06-03" in text  # 14 days after resolution
    assert "40 min" in text
    assert "Renewed the certificate by hand." in text
    assert "R-004" in text and "platform-team" in text
    assert "**failed**" in text
    assert "R-004:81.5;R-018:12.0" in text
    assert "certificate, expired" in text


def test_existing_review_is_never_overwritten(recon, tmp_path):
    first = write_reviews(recon, deadline_days=14, now=NOW)
    path = Path(first.loc[0, "review_path"])
    path.write_text(path.read_text().replace("status: open", "status: done"))
    again = write_reviews(recon, deadline_days=14, now=NOW)
    assert not again["written"].any()
    assert "status: done" in path.read_text()


def test_dry_run_writes_no_review(recon):
    result = write_reviews(recon, deadline_days=14, now=NOW, dry_run=True)
    assert not any(Path(p).exists() for p in result["review_path"])


def test_reviews_are_copied_into_the_run_folder(recon, tmp_path):
    write_reviews(recon, deadline_days=14, now=NOW, copy_to=tmp_path / "run")
    assert len(list((tmp_path / "run").glob("review-*.md"))) == 2


def test_filled_in_answers_are_read_back_and_overdue_counted(recon, tmp_path):
    result = write_reviews(recon, deadline_days=14, now=NOW)
    path = Path(result.loc[0, "review_path"])
    text = path.read_text().replace(
        "mitigations_worked: unknown", "mitigations_worked: no"
    )
    path.write_text(text.replace("new_risks: []", "new_risks: [Alert rules drift]"))
    meta = read_review(path)
    assert meta["mitigations_worked"] == "no"
    assert meta["new_risks"] == ["Alert rules drift"]

    status = review_status(path.parent, now=datetime(2026, 6, 10, tzinfo=UTC))
    late = status.set_index("incident_id").loc["PD-7"]
    assert bool(late["overdue"]) and late["days_overdue"] == 7


@pytest.mark.parametrize(
    ("now", "overdue", "days"),
    [
        (datetime(2026, 6, 3, 0, 5, tzinfo=UTC), False, 0),  # due today
        (datetime(2026, 6, 3, 23, 59, tzinfo=UTC), False, 0),
        (datetime(2026, 6, 4, 0, 0, tzinfo=UTC), True, 1),
    ],
)
def test_a_review_is_due_until_the_end_of_its_day(recon, now, overdue, days):
    result = write_reviews(recon, deadline_days=14, now=NOW)
    status = review_status(Path(result.loc[0, "review_path"]).parent, now=now)
    row = status.set_index("incident_id").loc["PD-7"]
    assert row["review_deadline"].strftime("%Y-%m-%d") == "2026-06-03"
    assert (bool(row["overdue"]), row["days_overdue"]) == (overdue, days)


def test_review_with_broken_front_matter_names_the_file(tmp_path):
    path = tmp_path / "review-x.md"
    path.write_text("---\nincident_id: [\n---\n")
    with pytest.raises(InputFormatError, match="review-x.md"):
        read_review(path)


@pytest.mark.parametrize(
    ("minutes", "text"),
    [(None, "unknown"), (5, "5 min"), (125, "2 h 05 min"), (60 * 49, "2 d 1 h 00 min")],
)
def test_durations_read_as_people_write_them(minutes, text):
    assert format_duration(minutes if minutes is not None else pd.NA) == text


def test_review_answer_outside_the_allowed_values_names_the_file(recon):
    result = write_reviews(recon, deadline_days=14, now=NOW)
    path = Path(result.loc[0, "review_path"])
    path.write_text(
        path.read_text().replace(
            "mitigations_worked: unknown", "mitigations_worked: banana"
        )
    )
    line = next(
        n
        for n, text in enumerate(path.read_text().splitlines(), start=1)
        if text.startswith("mitigations_worked:")
    )
    with pytest.raises(InputFormatError, match=rf"review-PD-7.md:{line}: .*banana"):
        read_review(path)


def test_review_answer_set_twice_names_the_second_line(recon):
    result = write_reviews(recon, deadline_days=14, now=NOW)
    path = Path(result.loc[0, "review_path"])
    text = path.read_text().replace(
        "mitigations_worked: unknown",
        "mitigations_worked: yes\nmitigations_worked: no",
    )
    path.write_text(text)
    line = text.splitlines().index("mitigations_worked: no") + 1
    with pytest.raises(
        InputFormatError,
        match=rf"review-PD-7.md:{line}: mitigations_worked is set twice",
    ):
        read_review(path)


def test_reviews_are_readable_by_the_team(recon):
    result = write_reviews(recon, deadline_days=14, now=NOW)
    mode = Path(result.loc[0, "review_path"]).stat().st_mode & 0o777
    assert mode & 0o044 == 0o044


def test_review_quotes_shared_terms_as_the_incident_wrote_them(recon):
    evidence = {"shared_terms": ["certificat", "expir", "expiry"]}
    row = recon.iloc[0].copy()
    row["evidence"] = evidence
    text = render_review(row, deadline_days=14, now=NOW)
    assert "Terms shared with the risk: certificate, expired, expiry." in text


def test_near_miss_review_says_the_risk_nearly_happened_not_that_it_did(recon):
    row = recon.iloc[0].copy()
    row["near_miss"] = True
    text = render_review(row, deadline_days=14, now=NOW)
    meta = read_front_matter(text)
    assert meta["outcome"] == "near-miss"
    assert "The incident realized" not in text
    assert "near miss of **R-004**" in text
    assert "did not happen" in text


def test_a_changed_match_updates_only_the_reviews_outcome_risk_and_owner(recon):
    write_reviews(recon, deadline_days=14, now=NOW)
    path = Path(recon.loc[0, "review_path"])
    edited = (
        path.read_text()
        .replace("mitigations_worked: unknown", "mitigations_worked: 'no'")
        .replace("status: open", "status: in-review")
    ) + "\nNotes from the review meeting.\n"
    path.write_text(edited)

    # an analyst redirects PD-7 to another risk and owner
    recon.loc[0, ["risk_id", "owner"]] = ["R-010", "core-eng"]
    later = datetime(2026, 6, 3, tzinfo=UTC)
    result = write_reviews(recon, deadline_days=14, now=later)
    assert result["updated"].tolist() == [True, False]
    text = path.read_text()
    meta = read_review(path)
    assert (meta["risk_id"], meta["owner"], meta["outcome"]) == (
        "R-010",
        "core-eng",
        "realized",
    )
    assert (meta["status"], meta["mitigations_worked"]) == ("in-review", "no")
    assert text.startswith(edited.replace("R-004\n", "R-010\n", 1).split("owner:")[0])
    assert "Notes from the review meeting." in text
    assert "2026-06-03:** an analyst's decision changed this incident from " in text
    assert "realized R-004 (owner platform-team) to realized R-010" in text
    old_lines = edited.splitlines()
    new_lines = text.splitlines()
    changed = [
        a for a, b in zip(old_lines, new_lines, strict=False) if a != b
    ]  # the risk_id and owner lines only
    assert [line.split(":")[0] for line in changed] == ["risk_id", "owner"]

    # the same match again changes nothing
    assert not write_reviews(recon, deadline_days=14, now=later)["updated"].any()
    assert path.read_text() == text

    # a rejection that leaves the incident for review
    recon.loc[0, ["outcome", "risk_id"]] = ["needs_review", None]
    write_reviews(recon, deadline_days=14, now=later)
    assert read_review(path)["risk_id"] is None
    assert read_review(path)["outcome"] == "needs_review"


def test_facts_with_pipes_and_newlines_keep_the_table_whole(recon):
    row = recon.iloc[0].copy()
    row["service"] = "mail|er\nx"
    row["incident_id"] = "X|Y\nZ"
    row["title"] = "Two\nlines"
    text = render_review(row, deadline_days=14, now=NOW)
    body = text.split("\n---\n", 1)[1]
    assert "# Post-incident review: Two lines\n" in body
    facts = body.split("| Fact | Value |\n|---|---|\n")[1].split("\n\n")[0]
    rows = facts.splitlines()
    assert len(rows) == 7
    assert "| Service | mail\\|er x |" in rows
    assert rows[0].startswith("| Incident | `X\\|Y Z` (")
    assert all(len(re.split(r"(?<!\\)\|", r)) == 4 for r in rows)


def test_review_naming_another_incident_is_refused_by_its_line(recon):
    result = write_reviews(recon, deadline_days=14, now=NOW)
    path = Path(result.loc[0, "review_path"])
    assert path.name == "review-PD-7.md"
    path.write_text(path.read_text().replace("incident_id: PD-7", "incident_id: MAN-2"))
    line = next(
        n
        for n, text in enumerate(path.read_text().splitlines(), start=1)
        if text.startswith("incident_id:")
    )
    with pytest.raises(InputFormatError) as caught:
        read_review(path)
    message = str(caught.value)
    assert message.startswith(f"{path}:{line}: incident_id 'MAN-2'")
    assert "'PD-7'" in message
    status = review_status(path.parent, now=NOW)
    assert status["incident_id"].tolist() == ["MAN-2"]  # the other review only


def test_review_of_an_incident_whose_id_is_not_a_file_name_is_read(tmp_path):
    path = tmp_path / "review-PD-7-x.md"  # review_filename("PD/7 x")
    path.write_text("---\nincident_id: PD/7 x\ndeadline: 2026-06-03\n---\n")
    assert read_review(path)["incident_id"] == "PD/7 x"


@pytest.mark.parametrize(
    ("edit", "kept"),
    [
        (lambda t: t.replace("owner: platform-team", "owner: >-\n  platform-team"), ""),
        (lambda t: t.replace("owner: platform-team", '"owner": platform-team'), ""),
        (lambda t: t.replace("owner: platform-team\n", ""), ""),
        (
            lambda t: t.replace("risk_id: R-004", "risk_id: 'R-004'   # check this"),
            "   # check this",
        ),
        (lambda t: t.replace("\n", "\r\n"), ""),
        (lambda t: "\ufeff" + t, ""),
    ],
    ids=["folded", "quoted key", "no owner line", "comment", "crlf", "bom"],
)
def test_a_hand_edited_review_follows_a_changed_match_once(recon, edit, kept):
    write_reviews(recon, deadline_days=14, now=NOW)
    path = Path(recon.loc[0, "review_path"])
    text = edit(path.read_text(encoding="utf-8"))
    path.write_bytes(text.encode("utf-8"))
    recon.loc[0, ["risk_id", "owner"]] = ["R-010", "core-eng"]
    later = datetime(2026, 6, 3, tzinfo=UTC)

    assert write_reviews(recon, deadline_days=14, now=later)["updated"].tolist() == [
        True,
        False,
    ]
    data = path.read_bytes()
    meta = read_review(path)
    assert (meta["risk_id"], meta["owner"]) == ("R-010", "core-eng")
    assert data.decode("utf-8").count("an analyst's decision changed") == 1
    assert data.startswith(b"\xef\xbb\xbf") == text.startswith("\ufeff")
    if "\r\n" in text:
        assert data.count(b"\r\n") == data.count(b"\n")  # every line still CRLF
    assert f"risk_id: R-010{kept}" in data.decode("utf-8")
    # the next run finds it in line
    assert not write_reviews(recon, deadline_days=14, now=later)["updated"].any()
    assert path.read_bytes() == data


def test_a_review_that_cannot_be_written_is_warned_about_not_fatal(
    recon, monkeypatch, caplog
):
    from riskanalytics import checklist

    write_reviews(recon, deadline_days=14, now=NOW)
    path = Path(recon.loc[0, "review_path"])
    before = path.read_bytes()

    def refuse(path, data, mode=None):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(checklist, "replace_file", refuse)
    recon.loc[0, ["risk_id", "owner"]] = ["R-010", "core-eng"]
    result = write_reviews(recon, deadline_days=14, now=NOW)
    assert not result["updated"].any()
    assert path.read_bytes() == before
    assert "could not be updated (Permission denied)" in caplog.text
