"""The command line: contracts of ingest, match, register check and run."""

import csv
import io
import json
import re
import shutil
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from riskanalytics.cli import cli
from riskanalytics.schema import INCIDENT_COLUMNS

ROOT = Path(__file__).resolve().parent.parent
DEV = ROOT / "tests" / "fixtures" / "match" / "dev"


def invoke(*args):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def run_project(project, *args):
    """``riskanalytics run`` with the config of a copied sample project."""
    return CliRunner().invoke(
        cli, ["run", "--config", str(project / "config.yaml"), *args]
    )


def test_ingest_writes_the_incident_columns_for_the_samples():
    result = invoke("ingest", str(ROOT / "learning" / "incidents"))
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert rows
    assert list(rows[0])[: len(INCIDENT_COLUMNS)] == INCIDENT_COLUMNS
    assert len({row["incident_id"] for row in rows}) == len(rows)


def test_ingest_into_a_missing_folder_exits_2_before_reading(tmp_path):
    target = tmp_path / "nowhere" / "incidents.csv"
    result = invoke(
        "ingest", str(ROOT / "learning" / "incidents"), "--output", str(target)
    )
    assert result.exit_code == 2
    assert "'--output'" in result.stderr and "does not exist" in result.stderr
    assert not target.parent.exists()


def test_ingest_does_not_replace_a_file_that_is_no_csv(tmp_path):
    register = tmp_path / "risk-register.md"
    shutil.copyfile(ROOT / "learning" / "risk-register.md", register)
    before = register.read_bytes()
    source = str(ROOT / "learning" / "incidents")
    result = invoke("ingest", source, "--output", str(register))
    assert result.exit_code == 2
    assert "is no .csv path" in result.stderr
    assert register.read_bytes() == before

    target = tmp_path / "incidents.csv"
    target.write_text("old\n", encoding="utf-8")
    assert invoke("ingest", source, "--output", str(target)).exit_code == 0
    assert target.read_text(encoding="utf-8").startswith("incident_id,")
    assert (
        invoke("ingest", source, "--output", str(tmp_path / "new.txt")).exit_code == 2
    )
    assert not (tmp_path / "new.txt").exists()
    assert invoke("ingest", source, "--output", "-").stdout.startswith("incident_id,")


def test_match_prints_the_contract_columns_for_every_incident():
    result = invoke(
        "match",
        "--register",
        str(DEV / "risk-register.md"),
        "--incidents",
        str(DEV / "incidents.jsonl"),
    )
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    lines = (DEV / "incidents.jsonl").read_text().strip().splitlines()
    assert len(rows) == len(lines)
    assert list(rows[0]) == [
        "incident_id",
        "risk_id",
        "score",
        "decision",
        "candidates",
    ]
    for row in rows:
        assert row["decision"] in {"matched", "review", "new"}
        assert (row["risk_id"] != "") == (row["decision"] == "matched")
        scores = [float(c.split(":")[1]) for c in row["candidates"].split(";") if c]
        assert scores == sorted(scores, reverse=True)
        assert 0 <= float(row["score"]) <= 100


def test_match_as_json():
    result = invoke(
        "match",
        "--register",
        str(DEV / "risk-register.md"),
        "--incidents",
        str(DEV / "incidents.jsonl"),
        "--format",
        "json",
    )
    assert result.exit_code == 0
    assert '"decision"' in result.stdout


def test_register_check_reports_the_sample_register(sample_project):
    register = sample_project / "learning" / "risk-register.md"
    result = invoke("register", "check", str(register))
    assert result.exit_code == 0, result.output
    assert "30 risks, ids like R-001; a new risk gets R-031" in result.stdout


def test_register_add_ids_previews_then_writes(tmp_path):
    path = tmp_path / "risk_register.md"
    source = (
        ROOT / "tests" / "fixtures" / "register" / "turing_no_leading_pipes_no_id.md"
    )
    path.write_bytes(source.read_bytes())

    check = CliRunner().invoke(cli, ["register", "check", str(path)])
    preview = CliRunner().invoke(cli, ["register", "add-ids", "--dry-run", str(path)])
    assert check.exit_code == 2 and "register add-ids" in check.output
    assert preview.exit_code == 0 and "+R-001 | Azure Platform" in preview.stdout
    assert path.read_bytes() == source.read_bytes()

    written = CliRunner().invoke(cli, ["register", "add-ids", str(path)])
    again = CliRunner().invoke(cli, ["register", "add-ids", str(path)])
    assert written.exit_code == 0 and "added 5 ids, R-001 to R-005" in written.stderr
    assert CliRunner().invoke(cli, ["register", "check", str(path)]).exit_code == 0
    assert again.exit_code == 2 and "already has an ID column" in again.stderr


def test_register_check_exits_2_on_a_register_without_a_table(tmp_path):
    path = tmp_path / "risk-register.md"
    path.write_text("# Risks\n\nnothing\n")
    result = invoke("register", "check", str(path))
    assert result.exit_code == 2
    assert "risk-register.md" in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["run", "--config", "missing.yaml"], "missing.yaml"),
        (["ingest", "nowhere.json"], "nowhere.json"),
        (["match", "--register", "nope.md", "--incidents", "x.csv"], "nope.md"),
    ],
)
def test_bad_input_exits_2_naming_the_file(tmp_path, monkeypatch, args, message):
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 2
    assert message in result.output


def test_broken_config_exits_2_and_touches_nothing(sample_project, monkeypatch):
    register = sample_project / "learning" / "risk-register.md"
    before = register.read_bytes()
    config = sample_project / "config.yaml"
    config.write_text(
        config.read_text().replace(
            "review_deadline_days: 14", "review_deadline_days: x"
        )
    )
    monkeypatch.chdir(sample_project)
    result = CliRunner().invoke(cli, ["run", "--config", str(config)])
    assert result.exit_code == 2
    assert "review_deadline_days" in result.output
    assert register.read_bytes() == before
    assert not (sample_project / "reports").exists()


def test_dry_run_prints_the_diff_and_writes_nothing(sample_project):
    register = sample_project / "learning" / "risk-register.md"
    before = register.read_bytes()
    result = CliRunner().invoke(
        cli, ["run", "--config", str(sample_project / "config.yaml"), "--dry-run"]
    )
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("---")
    assert "Realized" in result.stdout
    assert register.read_bytes() == before
    assert not (sample_project / "reports").exists()


def test_dry_run_prints_the_notifications_it_would_send(sample_project):
    config = sample_project / "config.yaml"
    data = yaml.safe_load(config.read_text(encoding="utf-8"))
    # A port nothing listens on: a message sent by mistake would fail loudly.
    data["notifications"] = {
        "enabled": True,
        "default": ["json://127.0.0.1:9/owners"],
        "escalation": ["json://127.0.0.1:9/leads"],
    }
    config.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")

    result = CliRunner().invoke(cli, ["run", "--config", str(config), "--dry-run"])

    assert result.exit_code == 0, result.output
    owners = re.findall(r"^would notify (\S+) via ", result.stderr, re.M)
    assert "platform-team" in owners and "release-team" in owners
    assert len(owners) == len(set(owners))  # one message per owner
    assert "Realized risk R-018" in result.stderr
    assert not (sample_project / "reports").exists()  # no state, nothing sent


def test_near_miss_needs_a_report(sample_project):
    result = run_project(sample_project, "--trigger", "near-miss")
    assert result.exit_code == 2
    assert "--report" in result.output


def test_copy_of_dev_set_is_present():
    # the match contract test above must not depend on ../shared
    assert (DEV / "labels.csv").exists()


def test_resolved_run_for_an_unknown_incident_exits_2(sample_project):
    result = run_project(
        sample_project,
        "--trigger",
        "resolved",
        "--incident-id",
        "PD-424242",
        "--dry-run",
    )
    assert result.exit_code == 2
    assert "PD-424242" in result.output


def test_rollback_run_with_a_rollback_log_realizes_the_release_risk(
    sample_project,
):
    log = sample_project / "rollback.jsonl"
    log.write_text(
        '{"time": "2026-11-30T14:05:00Z", "service": "checkout", '
        '"from_version": "3.4.0", "to_version": "3.3.2", "reason": "checkout 3.4.0 '
        "shipped a bug in the discount code path that returned HTTP 500 for every "
        'basket with a voucher", "operator": "a.jones"}\n'
    )
    result = run_project(
        sample_project, "--trigger", "rollback", "--rollback-log", str(log), "--dry-run"
    )
    assert result.exit_code == 0, result.output
    added = [line for line in result.stdout.splitlines() if "20261130" in line]
    assert added and "| R-018 | realized |" in added[0]


def test_weekly_run_exits_1_on_overdue_reviews_and_records_a_failing_channel(
    sample_project, caplog
):
    # The sample incidents are from 2026 and their reviews are due 14 days after
    # each: every review this run writes is already overdue.
    config = sample_project / "config.yaml"
    data = yaml.safe_load(config.read_text(encoding="utf-8"))
    data["notifications"] = {
        "enabled": True,
        "default": ["json://127.0.0.1:9/owners"],  # nothing listens there
        "retries": 1,
        "backoff_seconds": 0.05,
    }
    config.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    from riskanalytics.pipeline import preview

    previewed = preview(config, trigger="weekly")["summary"]["reviews_overdue"]

    result = CliRunner().invoke(
        cli,
        ["run", "--config", str(config), "--trigger", "weekly", "--run-id", "w"],
    )

    summary = json.loads((sample_project / "reports" / "w" / "run.json").read_text())
    overdue = summary["counts"]["reviews_overdue"]
    assert previewed == overdue  # a dry run counts the reviews it would write
    assert result.exit_code == 1, result.output
    assert overdue > 0 and f"reviews overdue: {overdue}" in result.stdout
    assert summary["trigger"] == "weekly" and summary["outcome"] == "success"
    failed = summary["notifications"]["failed"]
    assert failed and all(entry["attempts"] == 2 for entry in failed)
    assert any(key.startswith("overdue:") for e in failed for key in e["keys"])
    assert "failed after 2 attempt(s)" in caplog.text  # the log says it too
    assert f"{len(failed)} notification(s) failed (see the log)" in result.stdout


@pytest.mark.parametrize(("flags", "level"), [((), "WARNING"), (("-v",), "NOTSET")])
def test_library_progress_lines_show_only_with_verbose(flags, level):
    import logging

    loggers = [logging.getLogger(name) for name in ("papermill", "apprise")]
    saved = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.NOTSET)
    try:
        register = str(ROOT / "learning" / "risk-register.md")
        assert invoke(*flags, "register", "check", register).exit_code == 0
        assert [logging.getLevelName(lg.level) for lg in loggers] == [level] * 2
    finally:
        for logger, old in zip(loggers, saved, strict=True):
            logger.setLevel(old)


@pytest.mark.parametrize(("overdue", "code"), [(0, 0), (3, 1)])
def test_weekly_run_exits_1_saying_reviews_are_overdue(
    sample_project, monkeypatch, caplog, overdue, code
):
    from riskanalytics import pipeline

    counts = {"incidents": 10, "realized": 7, "near_misses": 1, "new_risks": 2}
    counts |= {"needs_review": 0, "reviews_overdue": overdue}
    counts["skipped_records"] = overdue  # shown only when some were
    monkeypatch.setattr(
        pipeline, "run", lambda *a, **k: {"run_id": "w", "counts": counts}
    )
    monkeypatch.chdir(sample_project)
    result = CliRunner().invoke(cli, ["run", "--trigger", "weekly"])
    assert result.exit_code == code, result.output
    assert ("3 post-incident review(s) overdue: exit 1" in caplog.text) == bool(code)
    assert ("3 record(s) skipped" in result.stdout) == bool(code)
    assert ("skipped" in result.stdout) == bool(code)


@pytest.mark.parametrize("port", ["99999", "-1", "http"])
def test_serve_refuses_a_port_that_cannot_be(port):
    result = invoke("serve", "--port", port)
    assert result.exit_code == 2
    assert "--port" in result.output and "Traceback" not in result.output
