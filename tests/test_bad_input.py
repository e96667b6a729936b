"""Bad input through the command line: exit code 2, a message, nothing written.

Every case runs on a copy of the sample project. A case passes when the command
exits with 2, its standard error starts with ``error:`` and names the file and
the place (line, record or key), no Python traceback escapes, and no file of
the project changed: register bytes, reviews, decisions, and no run folder.

Full runs execute notebooks; here ``papermill.execute_notebook`` is replaced by
a stub that fails loudly, so a case only passes when the input is refused
before any notebook would start.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from riskanalytics.checklist import review_status
from riskanalytics.cli import cli

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "bad_input"
REGISTER = Path("learning") / "risk-register.md"


# --- helpers --------------------------------------------------------------------


def snapshot(project: Path) -> dict[str, str]:
    """Relative path -> sha256 of every file (and symlink target) in the project."""
    found = {}
    for path in sorted(project.rglob("*")):
        key = str(path.relative_to(project))
        if path.is_symlink():
            found[key] = "link:" + os.readlink(path)
        elif path.is_file():
            found[key] = hashlib.sha256(path.read_bytes()).hexdigest()
        else:
            found[key] = "dir"
    return found


def invoke(project: Path, *args: str):
    """Run the CLI in ``project`` (paths relative to it), exceptions captured."""
    cwd = os.getcwd()
    os.chdir(project)
    try:
        return CliRunner().invoke(cli, list(args))
    finally:
        os.chdir(cwd)


def assert_refused(result, *names: str) -> None:
    """Exit 2, ``error:`` on stderr naming every one of ``names``, no traceback."""
    assert result.exception is None or isinstance(result.exception, SystemExit), (
        f"uncaught {type(result.exception).__name__}: {result.exception}"
    )
    assert result.exit_code == 2, (result.exit_code, result.stderr)
    assert result.stderr.startswith("error:"), result.stderr
    assert "Traceback" not in result.stderr
    for name in names:
        assert name in result.stderr, (name, result.stderr)


def edit_config(project: Path, **changes) -> None:
    """Set top-level keys of the project's config.yaml (``a__b`` sets ``a.b``)."""
    path = project / "config.yaml"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    for key, value in changes.items():
        *parents, leaf = key.split("__")
        target = data
        for parent in parents:
            target = target.setdefault(parent, {})
        target[leaf] = value
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")


@pytest.fixture
def project(sample_project: Path) -> Path:
    return sample_project


@pytest.fixture
def no_notebooks(monkeypatch):
    """Make any notebook execution fail: a refused run never gets that far."""
    import papermill

    def refuse(*args, **kwargs):
        raise RuntimeError(f"a notebook was started: {args[0]}")

    monkeypatch.setattr(papermill, "execute_notebook", refuse)


def dry_run_refused(project: Path, *names: str, args=()) -> None:
    run_refused(project, *names, args=("--dry-run", *args))


def run_refused(project: Path, *names: str, args=("--no-notify",)) -> None:
    """``run`` exits 2 naming ``names``, and the project is as it was."""
    before = snapshot(project)
    result = invoke(project, "run", *args)
    assert_refused(result, *names)
    assert snapshot(project) == before


# --- config.yaml ----------------------------------------------------------------


def test_missing_config_is_refused(project):
    (project / "config.yaml").unlink()
    dry_run_refused(project, "config.yaml", "file not found")


def test_empty_config_names_the_required_keys(project):
    (project / "config.yaml").write_text("", encoding="utf-8")
    dry_run_refused(project, "config.yaml", "risk_register_path", "incident_sources")


def test_empty_config_says_the_register_path_is_required(project):
    (project / "config.yaml").write_text("", encoding="utf-8")
    result = invoke(project, "run", "--dry-run")
    assert_refused(result, "risk_register_path: Field required")
    assert "decisions_path" not in result.stderr


def test_config_that_is_not_yaml_names_the_line(project):
    shutil.copy(FIXTURES / "config_not_yaml.yaml", project / "config.yaml")
    dry_run_refused(project, "config.yaml", "line 3", "not valid YAML")
    result = invoke(project, "run", "--dry-run")
    assert "<unicode string>" not in result.stderr
    assert result.stderr.count("\n") == 2  # the file, then one line per problem


def test_config_key_set_twice_names_both_lines(project):
    shutil.copy(FIXTURES / "config_key_set_twice.yaml", project / "config.yaml")
    dry_run_refused(
        project,
        "config.yaml",
        "review_deadline_days: set twice, on line 21 and line 60",
    )


def test_notification_url_naming_an_unset_variable_stops_a_run_before_any_notebook(
    project, no_notebooks, monkeypatch
):
    monkeypatch.delenv("RA_UNSET_SMTP_PASSWORD", raising=False)
    edit_config(
        project,
        notifications__enabled=True,
        notifications__default=[
            "mailtos://riskbot:${RA_UNSET_SMTP_PASSWORD}@mail.example.com"
            "?to=sre@example.com"
        ],
    )
    before = snapshot(project)
    result = invoke(project, "run")
    assert_refused(
        result, "config.yaml", "notifications.default.0", "RA_UNSET_SMTP_PASSWORD"
    )
    assert snapshot(project) == before


@pytest.mark.parametrize(
    ("run_id", "message"),
    [("../../escaped", "is not a folder name"), ("same", "runs are never overwritten")],
)
def test_run_id_outside_reports_or_taken_is_refused(
    project, no_notebooks, run_id, message
):
    (project / "reports" / "same").mkdir(parents=True)
    (project / "reports" / "same" / "run.json").write_text("{}\n", encoding="utf-8")
    before = snapshot(project)
    result = invoke(project, "run", "--no-notify", "--run-id", run_id)
    assert result.exit_code == 2, result.output
    assert "'--run-id'" in result.stderr and message in result.stderr
    assert snapshot(project) == before
    assert not (project.parent / "escaped").exists()


def test_config_that_is_a_list_is_refused(project):
    shutil.copy(FIXTURES / "config_top_level_list.yaml", project / "config.yaml")
    dry_run_refused(project, "config.yaml", "expected a mapping")


def test_config_reports_every_wrong_type_at_once(project):
    edit_config(
        project,
        auto_create_risks="maybe",
        review_deadline_days="soon",
        matching__top_k="many",
    )
    dry_run_refused(
        project,
        "config.yaml",
        "3 problem(s)",
        "auto_create_risks",
        "review_deadline_days",
        "matching.top_k",
    )


@pytest.mark.parametrize(
    ("changes", "key"),
    [
        ({"risk_treshold": 3}, "risk_treshold"),
        ({"review_deadline_days": -3}, "review_deadline_days"),
        ({"matching__matched_threshold": 150}, "matching.matched_threshold"),
        ({"matching__review_threshold": -1}, "matching.review_threshold"),
        ({"matching__matched_threshold": 20}, "review_threshold (35"),
        ({"matching__engine": "spark"}, "matching.engine"),
        ({"risk_threshold_for_escalation": "extreme"}, "'extreme'"),
        ({"risk_threshold_for_escalation": 30}, "risk_threshold_for_escalation"),
        ({"likelihood_probability": {"rare": 2}}, "likelihood_probability.rare"),
        ({"metrics_period": "year"}, "metrics_period"),
        ({"incident_sources": "learning/incidents"}, "incident_sources"),
    ],
    ids=[
        "unknown-key",
        "negative-days",
        "matched-threshold-above-100",
        "review-threshold-below-0",
        "review-above-matched",
        "unknown-engine",
        "unknown-escalation-band",
        "escalation-score-above-25",
        "probability-above-1",
        "unknown-period",
        "sources-not-a-list",
    ],
)
def test_config_value_out_of_range_names_the_key(project, changes, key):
    edit_config(project, **changes)
    dry_run_refused(project, "config.yaml", key)


def test_config_escalation_threshold_true_is_refused(project):
    edit_config(project, risk_threshold_for_escalation=True)
    dry_run_refused(project, "config.yaml", "risk_threshold_for_escalation")


def test_config_unknown_timezone_names_the_config_key(project):
    edit_config(project, timezone="Mars/Olympus")
    dry_run_refused(project, "config.yaml", "timezone", "Mars/Olympus")


def test_config_unknown_source_format_names_the_config_key(project):
    edit_config(
        project, incident_sources=[{"path": "learning/incidents", "format": "x"}]
    )
    dry_run_refused(project, "config.yaml", "incident_sources.0.format")


@pytest.mark.parametrize(
    ("register", "names"),
    [
        ("learning", ["learning", "Is a directory"]),
        ("learning/nothing.md", ["nothing.md", "No such file"]),
    ],
    ids=["folder", "missing-file"],
)
def test_config_register_path_that_is_no_register_is_refused(project, register, names):
    edit_config(project, risk_register_path=register)
    dry_run_refused(project, *names)


def test_config_register_path_to_a_binary_file_is_refused(project):
    (project / "learning" / "register.bin").write_bytes(bytes(range(256)) * 8)
    edit_config(project, risk_register_path="learning/register.bin")
    dry_run_refused(project, "register.bin:2", "byte 0x80")


def test_config_incident_source_missing_is_refused(project):
    edit_config(project, incident_sources=[{"path": "learning/nowhere"}])
    dry_run_refused(project, "learning/nowhere", "file not found")


def test_config_reports_dir_that_is_a_file_is_refused(project, no_notebooks):
    edit_config(project, reports_dir="learning/release-runbook.md")
    run_refused(project, "release-runbook.md", "reports_dir")


def test_a_folder_where_the_notification_record_goes_is_refused(project, no_notebooks):
    config = yaml.safe_load((project / "config.yaml").read_text(encoding="utf-8"))
    (project / config["reports_dir"] / "notifications-sent.json").mkdir(parents=True)
    run_refused(project, "notifications-sent.json is a folder", "reports_dir")


def test_config_reviews_dir_that_is_a_file_is_refused_before_notebooks(
    project, no_notebooks
):
    edit_config(project, reviews_dir="learning/release-runbook.md")
    run_refused(project, "release-runbook.md", "reviews_dir")


# --- the register ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("fixture", "place"),
    [
        ("register_without_table.md", ":1: no risk table found"),
        ("register_without_id_column.md", ":6: the risk table has no ID column"),
        ("register_duplicate_ids.md", ":10: duplicate risk id 'R-002'"),
        ("register_ragged_row.md", ":10: expected 8 cells"),
        ("register_latin1_bytes.md", ":9: expected UTF-8"),
        ("register_nul_bytes.md", ":11: expected Markdown text, found a NUL byte"),
        ("register_history_ragged_row.md", ":47: expected 9 cells as in the history"),
    ],
)
def test_broken_register_is_refused_by_run_and_check(project, fixture, place):
    shutil.copy(FIXTURES / fixture, project / REGISTER)
    dry_run_refused(project, f"risk-register.md{place}")

    before = snapshot(project)
    result = invoke(project, "register", "check", str(REGISTER))
    assert result.exit_code == 2, result.output
    assert f"risk-register.md{place}" in result.output
    assert snapshot(project) == before


def test_empty_register_is_refused(project):
    (project / REGISTER).write_bytes(b"")
    dry_run_refused(project, "risk-register.md:1", "no risk table")


def test_broken_register_stops_a_full_run_before_any_notebook(project, no_notebooks):
    shutil.copy(FIXTURES / "register_duplicate_ids.md", project / REGISTER)
    run_refused(project, "risk-register.md:10", "duplicate")
    assert not (project / "reports").exists()


def test_register_without_risks_does_not_crash_a_dry_run(project):
    shutil.copy(FIXTURES / "register_header_without_risks.md", project / REGISTER)
    result = invoke(project, "run", "--dry-run")
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert result.exit_code in (0, 2)


def test_register_with_crlf_and_bom_previews_without_writing(project):
    data = (project / REGISTER).read_bytes()
    (project / REGISTER).write_bytes(b"\xef\xbb\xbf" + data.replace(b"\n", b"\r\n"))
    before = snapshot(project)
    result = invoke(project, "run", "--dry-run")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.startswith("---")
    assert snapshot(project) == before


def test_register_behind_a_symlink_previews_without_writing(project):
    real = project / "learning" / "registers" / "platform.md"
    real.parent.mkdir()
    (project / REGISTER).rename(real)
    (project / REGISTER).symlink_to(Path("registers") / "platform.md")
    before = snapshot(project)
    result = invoke(project, "run", "--dry-run")
    assert result.exit_code == 0, result.stderr
    assert snapshot(project) == before


def test_dangling_register_symlink_is_refused(project):
    (project / REGISTER).unlink()
    (project / REGISTER).symlink_to("gone.md")
    dry_run_refused(project, "gone.md", "No such file")


# --- incident files -------------------------------------------------------------


@pytest.mark.parametrize(
    ("fixture", "place"),
    [
        ("incidents_alertmanager_truncated.json", "line 43 column"),
        ("incidents_json_unknown_shape.json", "JSON of an unknown shape"),
        ("incidents_empty.json", "file is empty"),
        ("incidents_csv_without_id_column.csv", "first line 'caller,title"),
        ("incidents_unknown_format.txt", "unknown incident format"),
        ("incidents_csv_latin1.csv", "byte 0xe9 at offset 26"),
        (
            "incidents_csv_duplicate_header_column.csv",
            "line 1: header names column 'incident_id' twice",
        ),
    ],
)
def test_unreadable_incident_file_is_refused_everywhere(project, fixture, place):
    bad = project / "inbox" / fixture
    bad.parent.mkdir()
    shutil.copy(FIXTURES / fixture, bad)
    before = snapshot(project)

    result = invoke(project, "ingest", str(bad.relative_to(project)))
    assert_refused(result, fixture, place)
    assert result.stdout == ""

    out = project / "out.csv"
    result = invoke(project, "ingest", str(bad), "--output", str(out))
    assert_refused(result, fixture, place)
    assert not out.exists()

    result = invoke(
        project, "match", "--register", str(REGISTER), "--incidents", str(bad)
    )
    assert_refused(result, fixture, place)

    result = invoke(project, "run", "--dry-run", "--input", str(bad))
    assert_refused(result, fixture, place)
    assert snapshot(project) == before


def test_a_number_too_long_for_python_is_refused_or_skipped(project, caplog):
    huge = "1" * 5000
    document = project / "am-huge.json"
    document.write_text(f'{{"n": {huge}, "alerts": []}}', encoding="utf-8")
    before = snapshot(project)
    result = invoke(project, "ingest", str(document))
    assert_refused(result, "am-huge.json", "expected JSON", "4300 digits")
    result = invoke(project, "run", "--dry-run", "--input", str(document))
    assert_refused(result, "am-huge.json")
    assert snapshot(project) == before

    lines = project / "pd.jsonl"
    sample = project / "learning" / "incidents" / "pagerduty-sms-duplicates.jsonl"
    first = sample.read_text(encoding="utf-8").splitlines()[0]
    lines.write_text(f'{first}\n{{"n": {huge}}}\n', encoding="utf-8")
    result = invoke(project, "ingest", str(lines))
    assert result.exit_code == 0, result.stderr
    assert "pd.jsonl: record line 2: expected JSON" in caplog.text


def test_unreadable_incident_file_stops_a_full_run(project, no_notebooks):
    shutil.copy(
        FIXTURES / "incidents_alertmanager_truncated.json",
        project / "learning" / "incidents" / "more-alerts.json",
    )
    before = snapshot(project)
    result = invoke(project, "run", "--no-notify", "--trigger", "resolved")
    assert_refused(result, "more-alerts.json", "line 43")
    assert snapshot(project) == before


def test_binary_file_in_an_incident_folder_is_refused(project):
    (project / "learning" / "incidents" / "core.dump").write_bytes(
        b"\x7fELF\x02\x01\x01\x00" + bytes(range(256)) * 4
    )
    dry_run_refused(project, "core.dump", "expected UTF-8")


def test_impossible_date_is_skipped_with_its_line_or_refused_when_strict(
    project, caplog
):
    bad = FIXTURES / "incidents_csv_impossible_date.csv"
    result = invoke(project, "ingest", str(bad))
    assert "incidents_csv_impossible_date.csv: record line 2" in caplog.text
    assert "2O26-13-45" in caplog.text
    # its one record skipped, the file gave nothing: no empty table, exit 2
    assert_refused(result, "every record was skipped (1); line 2", "2O26-13-45")
    assert result.stdout == ""

    result = invoke(project, "ingest", "--strict", str(bad))
    assert_refused(result, "incidents_csv_impossible_date.csv", "line 2", "2O26-13-45")


def test_near_miss_that_is_neither_true_nor_false_is_a_bad_record(project, caplog):
    bad = project / "reports.csv"
    bad.write_text(
        "incident_id,title,near_miss\nM-1,Disk filled,maybe\nM-2,Disk filled,no\n",
        encoding="utf-8",
    )
    result = invoke(project, "ingest", str(bad))
    assert result.exit_code == 0, result.stderr
    assert "M-2" in result.stdout and "M-1" not in result.stdout
    assert "reports.csv: record line 2: near_miss 'maybe'" in caplog.text
    result = invoke(project, "ingest", "--strict", str(bad))
    assert_refused(result, "reports.csv", "line 2", "near_miss 'maybe'")


def test_skipped_record_is_counted_in_the_run_summary_or_refused_when_strict(
    project, caplog
):
    bad = FIXTURES / "incidents_csv_impossible_date.csv"
    result = invoke(project, "run", "--dry-run", "--input", str(bad))
    assert result.exit_code == 0, result.stderr
    summary = json.loads(
        result.stderr[result.stderr.index("{") :].split("\n}")[0] + "}"
    )
    assert summary["skipped_records"] == 1
    assert "incidents_csv_impossible_date.csv: record line 2" in caplog.text

    edit_config(project, strict=True)
    before = snapshot(project)
    result = invoke(project, "run", "--dry-run", "--input", str(bad))
    assert_refused(result, "incidents_csv_impossible_date.csv", "line 2")
    assert snapshot(project) == before


def test_bad_record_is_skipped_by_a_run_or_refused_with_strict(project, no_notebooks):
    shutil.copy(
        FIXTURES / "incidents_csv_impossible_date.csv",
        project / "learning" / "incidents" / "late.csv",
    )
    result = invoke(project, "run", "--dry-run")
    assert result.exit_code == 0, result.stderr
    before = snapshot(project)
    result = invoke(project, "run", "--strict", "--no-notify")
    assert_refused(result, "late.csv", "record line 2", "2O26-13-45")
    assert snapshot(project) == before


def _reuse_incident_id(project: Path) -> Path:
    """A second source holding MAN-2026-014 of the sample CSV, with other text."""
    later = project / "learning" / "incidents" / "more-reports.jsonl"
    rows = [
        {"incident_id": "MAN-2026-200", "title": "Queue stuck", "service": "queue"},
        {
            "incident_id": "MAN-2026-014",
            "title": "Search index rebuilt twice",
            "root_cause": "A cron entry was copied to a second host",
            "started_at": "2026-06-20T10:00:00Z",
            "service": "search",
        },
    ]
    later.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return later


def test_incident_id_reused_by_another_source_is_skipped_naming_both(project, caplog):
    _reuse_incident_id(project)
    result = invoke(project, "run", "--dry-run")
    assert result.exit_code == 0, (result.stderr, result.exception)
    summary = json.loads(
        result.stderr[result.stderr.index("{") :].split("\n}")[0] + "}"
    )
    assert summary["skipped_records"] == 1
    assert (
        "more-reports.jsonl: record line 2: incident id MAN-2026-014 already read from "
    ) in caplog.text
    assert "manual-reports.csv line 2" in caplog.text


def test_incident_id_reused_by_another_source_is_refused_when_strict(
    project, no_notebooks
):
    _reuse_incident_id(project)
    run_refused(
        project,
        "more-reports.jsonl: record line 2",
        "MAN-2026-014 already read from ",
        "manual-reports.csv line 2",
        args=("--strict", "--no-notify"),
    )


def test_folder_without_incidents_gives_an_empty_table(project):
    (project / "empty").mkdir()
    (project / "empty" / "README.md").write_text("# nothing yet\n", encoding="utf-8")
    result = invoke(project, "ingest", "empty")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.startswith("incident_id,source,title,")
    assert result.stdout.count("\n") == 1


def test_utf16_csv_is_refused_with_a_hint(project):
    bad = FIXTURES / "incidents_csv_utf16.csv"
    result = invoke(project, "ingest", str(bad))
    assert_refused(result, "incidents_csv_utf16.csv", "offset 0", "UTF-16")


def test_csv_with_unclosed_quote_is_refused(project):
    bad = FIXTURES / "incidents_csv_broken_quote.csv"
    result = invoke(project, "ingest", str(bad))
    assert_refused(result, "incidents_csv_broken_quote.csv: line 2: not CSV")


def test_near_miss_report_with_broken_front_matter_names_the_line(project):
    shutil.copy(FIXTURES / "report_front_matter_not_yaml.md", project / "nm.md")
    dry_run_refused(
        project,
        "nm.md: line 6: front matter is not valid YAML",
        args=("--trigger", "near-miss", "--report", "nm.md"),
    )


def test_minimal_manual_report_previews(project):
    shutil.copy(
        FIXTURES / "incidents_csv_only_id_and_title.csv",
        project / "learning" / "incidents" / "minimal.csv",
    )
    result = invoke(project, "run", "--dry-run")
    assert result.exception is None, repr(result.exception)
    assert result.exit_code == 0, result.stderr
    assert "MIN-1" in result.stdout


# --- analysts' decisions and reviews ---------------------------------------------


def test_bad_decisions_file_is_refused_by_a_dry_run(project):
    shutil.copy(
        FIXTURES / "decisions_unknown_key.yaml",
        project / "learning" / "match-decisions.yaml",
    )
    dry_run_refused(project, "match-decisions.yaml", "entry 1", "decision")


def test_bad_decisions_file_stops_a_full_run_before_any_notebook(project, no_notebooks):
    shutil.copy(
        FIXTURES / "decisions_unknown_key.yaml",
        project / "learning" / "match-decisions.yaml",
    )
    run_refused(project, "match-decisions.yaml", "entry 1")


def test_decision_naming_an_unknown_risk_stops_a_full_run_before_any_notebook(
    project, no_notebooks
):
    shutil.copy(
        FIXTURES / "decisions_unknown_risk.yaml",
        project / "learning" / "match-decisions.yaml",
    )
    run_refused(project, "match-decisions.yaml", "entry 2", "R-999")


@pytest.mark.parametrize(
    ("fixture", "review", "expected"),
    [
        (
            "review_impossible_deadline.md",
            "review-OLD-2026-001.md",
            ("review-OLD-2026-001.md:6: deadline",),
        ),
        (
            "review_new_risk_with_colon.md",
            "review-MAN-2026-014.md",
            ("review-MAN-2026-014.md:11: new_risks item 1", "quotes"),
        ),
    ],
)
def test_broken_review_stops_a_full_run_before_any_notebook(
    project, no_notebooks, fixture, review, expected
):
    reviews = project / "learning" / "reviews"
    reviews.mkdir()
    shutil.copy(FIXTURES / fixture, reviews / review)
    run_refused(project, review, *expected)


def test_review_status_skips_a_review_with_an_impossible_deadline(tmp_path, caplog):
    shutil.copy(
        FIXTURES / "review_impossible_deadline.md", tmp_path / "review-OLD-1.md"
    )
    status = review_status(tmp_path)
    assert status.empty
    assert "review-OLD-1.md" in caplog.text


def test_review_status_skips_a_latin1_review(tmp_path, caplog):
    shutil.copy(FIXTURES / "review_latin1.md", tmp_path / "review-OLD-2.md")
    status = review_status(tmp_path)
    assert status.empty
    assert "review-OLD-2.md" in caplog.text


# --- outputs that cannot be written ------------------------------------------------


def _set_config(project: Path, **values) -> None:
    config = project / "config.yaml"
    data = yaml.safe_load(config.read_text(encoding="utf-8"))
    data.update(values)
    config.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")


@pytest.mark.parametrize("key", ["reviews_dir", "reports_dir"])
def test_an_output_folder_that_cannot_be_made_stops_the_run_first(
    project, no_notebooks, key
):
    # a folder inside a file cannot be created, whoever runs the test
    _set_config(project, **{key: "learning/risk-register.md/out"})
    run_refused(project, "config.yaml", key, "cannot be written")


def _immutable(path: Path) -> bool:
    """Make ``path`` immutable (chattr +i), if this machine lets us."""
    import subprocess

    done = subprocess.run(["chattr", "+i", str(path)], capture_output=True)
    return done.returncode == 0


def _mutable(path: Path) -> None:
    import subprocess

    subprocess.run(["chattr", "-i", str(path)], capture_output=True)


@pytest.mark.parametrize(
    "where",
    [
        "learning/reviews/",
        "learning/risk-register.md",
        "learning/.risk-register-backups/",
        "learning/risk-register.md.riskanalytics.lock",
    ],
)
def test_an_unwritable_review_folder_or_register_stops_the_run_first(
    project, no_notebooks, where
):
    target = project / where
    if where.endswith("/"):
        target.mkdir()
    elif not target.exists():
        target.write_bytes(b"")
    if not _immutable(target):
        if os.access(target, os.W_OK) and os.geteuid() == 0:
            pytest.skip("no chattr here and root can write anything")
        target.chmod(0o555 if target.is_dir() else 0o444)
    try:
        run_refused(project, "config.yaml", "cannot be written")
    finally:
        _mutable(target)
        target.chmod(0o755 if target.is_dir() else 0o644)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "- incident_id: MAN-2026-031\n  action: reject\n  risk_id: R-022\n"
            "  action: confirm\n",
            ("match-decisions.yaml:4: entry 1", "action set twice"),
        ),
        (
            "- {incident_id: MAN-2026-031, action: confirm, risk_id: R-022}\n"
            "- {incident_id: MAN-2026-014, action: reject, action: confirm}\n",
            ("match-decisions.yaml:2: entry 2", "action set twice"),
        ),
        (
            "- {incident_id: MAN-2026-031, action: confirm, risk_id: R-022,"
            " at: not a date}\n",
            ("match-decisions.yaml:1: entry 1", "at must be a date"),
        ),
        (
            "- incident_id: MAN-2026-031\n  action: confirm\n  risk_id: R-022\n"
            "  by: [1, 2]\n",
            ("match-decisions.yaml:4: entry 1", "by must be text"),
        ),
        (
            "- incident_id: MAN-2026-031\n  action: confirm\n  risk_id: R-022\n"
            "  note: {a: 1}\n",
            ("match-decisions.yaml:4: entry 1", "note must be text"),
        ),
    ],
)
def test_malformed_decision_stops_a_full_run_before_any_notebook(
    project, no_notebooks, text, expected
):
    (project / "learning" / "match-decisions.yaml").write_text(text, encoding="utf-8")
    run_refused(project, *expected)


def test_confirm_without_risk_of_an_unmatched_incident_is_refused_by_a_dry_run(
    project,
):
    # the matcher decides PD-1482 "new": its best candidate scores about 14
    (project / "learning" / "match-decisions.yaml").write_text(
        "- incident_id: MAN-2026-031\n  action: confirm\n"
        "- incident_id: PD-1482\n  action: confirm\n",
        encoding="utf-8",
    )
    dry_run_refused(
        project,
        "match-decisions.yaml:3: entry 2",
        "confirm needs risk_id: the incident has no matched risk",
    )


def test_confirm_without_risk_of_an_unmatched_incident_stops_a_full_run_first(
    project, no_notebooks
):
    (project / "learning" / "match-decisions.yaml").write_text(
        "- incident_id: PD-1482\n  action: confirm\n", encoding="utf-8"
    )
    run_refused(
        project,
        "match-decisions.yaml:1: entry 1",
        "confirm needs risk_id: the incident has no matched risk",
    )


def test_a_review_naming_a_risk_the_register_lacks_is_warned_about(project, caplog):
    reviews = project / "learning" / "reviews"
    reviews.mkdir()
    (reviews / "review-PD-1482.md").write_text(
        "---\nincident_id: PD-1482\nstatus: open\ndeadline: '2026-12-01'\n"
        "risk_id: R-999\n---\n",
        encoding="utf-8",
    )
    result = invoke(project, "run", "--dry-run")
    assert result.exit_code == 0, result.output
    assert "review-PD-1482.md:5: risk_id R-999 is not in" in caplog.text


def test_confirm_without_risk_of_an_unmatched_incident_is_refused_by_match(project):
    (project / "learning" / "match-decisions.yaml").write_text(
        "- incident_id: PD-1482\n  action: confirm\n", encoding="utf-8"
    )
    before = snapshot(project)
    result = invoke(
        project,
        "match",
        "--config",
        "config.yaml",
        "--register",
        str(REGISTER),
        "--incidents",
        "learning/incidents",
    )
    assert_refused(result, "match-decisions.yaml:1: entry 1", "no matched risk")
    assert snapshot(project) == before


def test_review_naming_another_incident_stops_a_full_run_before_any_notebook(
    project, no_notebooks
):
    reviews = project / "learning" / "reviews"
    reviews.mkdir()
    (reviews / "review-MAN-2026-014.md").write_text(
        "---\nincident_id: MAN-2026-019\nstatus: open\ndeadline: 2026-06-01\n---\n",
        encoding="utf-8",
    )
    run_refused(
        project, "review-MAN-2026-014.md:2: incident_id 'MAN-2026-019'", "file name"
    )


def test_notification_url_apprise_cannot_load_stops_a_run_before_any_notebook(
    project, no_notebooks
):
    edit_config(
        project,
        notifications__enabled=True,
        notifications__escalation=[
            "json://hooks.example.com/leads",
            "mailtoo://riskbot:${RA_SMTP_PASSWORD}@mail.example.com",
        ],
    )
    run_refused(
        project, "config.yaml", "notifications.escalation.1", "mailtoo://", args=()
    )


def test_a_review_renamed_out_of_its_pattern_is_warned_about(project, caplog):
    reviews = project / "learning" / "reviews"
    reviews.mkdir()
    (reviews / "MAN-2026-031-renamed.md").write_text(
        "---\nincident_id: MAN-2026-031\nstatus: done\ndeadline: '2026-12-01'\n---\n",
        encoding="utf-8",
    )
    (reviews / "notes.md").write_text("# Meeting notes\n", encoding="utf-8")
    result = invoke(project, "run", "--dry-run")
    assert result.exit_code == 0, result.output
    assert "MAN-2026-031-renamed.md looks like a review but is not read" in caplog.text
    assert "notes.md looks like" not in caplog.text
