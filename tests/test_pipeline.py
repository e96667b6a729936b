"""The whole run on a copy of the sample data: notebooks, register, reviews."""

import json
import logging
import re
import shutil
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest

from riskanalytics import pipeline
from riskanalytics.checklist import read_review
from riskanalytics.config import load_config
from riskanalytics.exceptions import RiskAnalyticsError
from riskanalytics.register import read_register


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    """The sample project run twice on the same inputs."""
    from tests.conftest import copy_sample

    project = copy_sample(tmp_path_factory.mktemp("project"))
    config = load_config(project / "config.yaml")
    before = config.risk_register_path.read_bytes()
    first = pipeline.run(config, trigger="manual", run_id="first")
    after_first = config.risk_register_path.read_bytes()
    reviews_first = sorted(p.name for p in config.reviews_dir.glob("review-*.md"))
    second = pipeline.run(config, trigger="manual", run_id="second")
    return {
        "config": config,
        "before": before,
        "after_first": after_first,
        "after_second": config.risk_register_path.read_bytes(),
        "first": first,
        "second": second,
        "reviews_first": reviews_first,
        "reviews_second": sorted(
            p.name for p in config.reviews_dir.glob("review-*.md")
        ),
    }


def test_run_leaves_notebooks_html_charts_and_summary(two_runs):
    run_dir = two_runs["config"].reports_dir / "first"
    for name in pipeline.NOTEBOOKS:
        assert (run_dir / name).exists()
        html = (run_dir / name).with_suffix(".html").read_text(encoding="utf-8")
        assert "stage_" not in html  # code cells are hidden from the report
    assert len(list((run_dir / "charts").glob("*.png"))) == 5
    summary = json.loads((run_dir / "run.json").read_text())
    assert summary["outcome"] == "success"
    assert summary["trigger"] == "manual"
    assert set(summary["steps"]) >= {"01_reconciliation", "04_accuracy_metrics"}
    assert summary["counts"]["incidents"] == two_runs["first"]["counts"]["incidents"]
    assert list((run_dir / "reviews").glob("review-*.md"))


def test_register_gets_a_realized_risk_and_a_new_risk(two_runs):
    counts = two_runs["first"]["counts"]
    assert counts["realized"] >= 1 and counts["risks_created"] >= 1
    old = two_runs["before"].decode()
    new = two_runs["after_first"].decode()
    register = read_register(two_runs["config"].risk_register_path)
    assert (register.risks["status"] == "Realized").sum() >= 1
    assert len(register.risks) == 30 + counts["risks_created"]
    # nothing deleted: every line of the old file is still there
    old_lines = [line for line in old.splitlines() if "| Open |" not in line]
    for line in old_lines:
        assert line in new
    assert re.search(r"\| R-031 \|", new)
    assert "## Risk history" in new


def test_every_incident_gets_one_review(two_runs):
    counts = two_runs["first"]["counts"]
    assert counts["reviews_written"] == counts["incidents"]
    assert len(two_runs["reviews_first"]) == counts["incidents"]


def test_second_run_on_the_same_inputs_changes_nothing(two_runs):
    assert two_runs["after_second"] == two_runs["after_first"]
    counts = two_runs["second"]["counts"]
    assert counts["history_entries_added"] == 0
    assert counts["risks_created"] == 0
    assert counts["reviews_written"] == 0
    assert two_runs["reviews_second"] == two_runs["reviews_first"]
    assert counts["realized"] == two_runs["first"]["counts"]["realized"]


def test_preview_shows_the_diff_and_writes_nothing(sample_project):
    config = load_config(sample_project / "config.yaml")
    before = config.risk_register_path.read_bytes()
    result = pipeline.preview(config, trigger="manual")
    assert "+| R-031 |" in result["diff"].replace(" | ", " | ")
    assert config.risk_register_path.read_bytes() == before
    assert not config.reviews_dir.exists()
    assert not config.reports_dir.exists()


def test_preview_counts_a_near_miss_apart_from_realizations(sample_project):
    config = load_config(sample_project / "config.yaml")
    summary = pipeline.preview(config, trigger="manual")["summary"]
    assert (summary["realized"], summary["near_misses"]) == (7, 1)  # MAN-2026-023
    assert summary["new_risks"] == 2


def test_unreadable_register_stops_before_anything_is_written(sample_project):
    config = load_config(sample_project / "config.yaml")
    config.risk_register_path.write_text("# Risks\n\nNo table here.\n")
    with pytest.raises(RiskAnalyticsError, match="risk-register.md"):
        pipeline.run(config, trigger="manual")
    assert not config.reports_dir.exists()
    assert not config.reviews_dir.exists()
    assert config.risk_register_path.read_text() == "# Risks\n\nNo table here.\n"


def test_stage_outputs_are_reachable_without_a_kernel(sample_project, tmp_path):
    config = load_config(sample_project / "config.yaml")
    result = pipeline.stage_reconcile(config, tmp_path / "run")
    assert set(result.reconciliation["outcome"]) <= {
        "realized",
        "new_risk",
        "needs_review",
    }
    new = result.reconciliation[result.reconciliation["outcome"] == "new_risk"]
    assert new["risk_id"].str.match(r"R-\d{3}").all()
    assert Path(tmp_path / "run" / "reconciliation.csv").exists()


def test_filled_in_review_flows_into_the_register_and_the_metrics(
    sample_project, tmp_path
):
    config = load_config(sample_project / "config.yaml")
    first = pipeline.stage_reconcile(config, tmp_path / "one")
    pipeline.stage_register_update(config, tmp_path / "one")
    pipeline.stage_reviews(config, tmp_path / "one")

    recon = first.reconciliation
    realized = recon[recon["outcome"] == "realized"].iloc[0]
    review = Path(realized["review_path"])
    text = review.read_text(encoding="utf-8")
    text = text.replace("status: open", "status: done")
    text = text.replace("mitigations_worked: unknown", "mitigations_worked: no")
    text = text.replace(
        "new_risks: []", "new_risks: [Runbook links point to a dead wiki]"
    )
    review.write_text(text, encoding="utf-8")

    second = pipeline.stage_reconcile(config, tmp_path / "two")
    row = second.reconciliation.set_index("incident_id").loc[realized["incident_id"]]
    assert row["mitigation_verdict"] == "failed"
    assert row["mitigation_source"] == "review"
    update = pipeline.stage_register_update(config, tmp_path / "two")
    (key, risk_id), *_ = update.created.items()
    assert key == f"{realized['incident_id']}/review-1" and len(update.created) == 1
    assert re.fullmatch(r"R-\d{3}", risk_id)

    register = read_register(config.risk_register_path)
    history = register.history
    reviewed = history[history["event"] == "reviewed"]
    assert list(reviewed["risk_id"]) == [realized["risk_id"]]
    assert list(reviewed["mitigation_verdict"]) == ["failed"]
    assert "Runbook links point to a dead wiki" in register.text

    again = pipeline.stage_reconcile(config, tmp_path / "three")
    assert not pipeline.stage_register_update(config, tmp_path / "three").changed
    assert len(again.reconciliation) == len(recon)


def test_html_reports_carry_no_log_lines(two_runs):
    run_dir = two_runs["config"].reports_dir / "first"
    for name in pipeline.NOTEBOOKS:
        html = (run_dir / name).with_suffix(".html").read_text(encoding="utf-8")
        assert "INFO riskanalytics" not in html
        assert "Traceback" not in html


def test_html_reports_speak_to_readers_not_to_notebook_users(two_runs):
    run_dir = two_runs["config"].reports_dir / "first"
    for name in pipeline.NOTEBOOKS:
        html = (run_dir / name).with_suffix(".html").read_text(encoding="utf-8")
        html = re.sub(r"(?s)<(style|script)\b.*?</\1>", "", html)
        text = re.sub(r"<[^>]+>", " ", html)
        for word in ("JupyterLab", "dry_run", "parameters below"):
            assert word not in text, (name, word)


def test_near_miss_is_recorded_without_marking_the_risk_realized(sample_project):
    from riskanalytics.register import read_register

    config = load_config(
        sample_project / "config.yaml",
        incident_sources=[{"path": "learning/near-miss-template.md"}],
    )
    result = pipeline.stage_reconcile(config, sample_project / "run")
    row = result.reconciliation.set_index("incident_id").loc["NM-2026-001"]
    assert row["trigger"] == "near-miss" and row["outcome"] == "realized"
    pipeline.stage_register_update(config, sample_project / "run")
    register = read_register(config.risk_register_path)
    event = register.history.set_index("incident_id").loc["NM-2026-001"]
    assert event["event"] == "near-miss"
    status = register.risks.set_index("risk_id").loc[event["risk_id"], "status"]
    assert status == "Open"


def test_trigger_near_miss_makes_the_given_report_a_near_miss(sample_project):
    from riskanalytics.register import read_register

    template = (sample_project / "learning" / "near-miss-template.md").read_text()
    report = sample_project / "nm.md"
    report.write_text(template.replace("near_miss: true\n", ""), encoding="utf-8")
    config = load_config(sample_project / "config.yaml")

    result = pipeline.stage_reconcile(
        config, sample_project / "run", inputs=[report], trigger="near-miss"
    )
    recon = result.reconciliation.set_index("incident_id")
    row = recon.loc["NM-2026-001"]
    assert row["trigger"] == "near-miss" and bool(row["near_miss"]) is True
    # the configured sources' incidents keep their own trigger and near misses
    alone = pipeline.stage_reconcile(config, sample_project / "alone")
    alone = alone.reconciliation.set_index("incident_id")[["trigger", "near_miss"]]
    others = recon.drop(index="NM-2026-001")[["trigger", "near_miss"]]
    pd.testing.assert_frame_equal(others.loc[alone.index], alone)

    pipeline.stage_register_update(config, sample_project / "run")
    register = read_register(config.risk_register_path)
    events = register.history[register.history["incident_id"] == "NM-2026-001"]
    assert events["event"].tolist() == ["near-miss"]


def test_a_near_miss_recorded_so_stays_one_in_later_runs(sample_project):
    template = (sample_project / "learning" / "near-miss-template.md").read_text()
    report = sample_project / "learning" / "incidents" / "nm.md"
    report.write_text(template.replace("near_miss: true\n", ""), encoding="utf-8")
    config = load_config(sample_project / "config.yaml")
    pipeline.stage_reconcile(
        config, sample_project / "a", inputs=[report], trigger="near-miss"
    )
    pipeline.stage_register_update(config, sample_project / "a")
    text = config.risk_register_path.read_bytes()

    result = _reconcile_and_update(config, sample_project, "b")  # no trigger
    assert config.risk_register_path.read_bytes() == text
    events = result.history[result.history["incident_id"] == "NM-2026-001"]
    assert events["event"].tolist() == ["near-miss"]


def test_a_given_file_outside_the_sources_is_named_in_a_warning(sample_project, caplog):
    config = load_config(sample_project / "config.yaml")
    template = sample_project / "learning" / "near-miss-template.md"
    inside = sample_project / "learning" / "incidents" / "nm.md"
    inside.write_text(template.read_text(), encoding="utf-8")
    outside = sample_project / "nm.md"
    outside.write_text(template.read_text(), encoding="utf-8")

    with caplog.at_level(logging.WARNING, logger="riskanalytics.pipeline"):
        pipeline.stage_reconcile(config, sample_project / "a", inputs=[inside])
    assert "not in incident_sources" not in caplog.text
    with caplog.at_level(logging.WARNING, logger="riskanalytics.pipeline"):
        pipeline.stage_reconcile(config, sample_project / "b", inputs=[outside])
    assert f"{outside} is not in incident_sources" in caplog.text


def test_html_report_is_titled_by_its_first_heading(tmp_path):
    import nbformat

    book = nbformat.v4.new_notebook()
    book.cells = [
        nbformat.v4.new_code_cell("x = 1"),
        nbformat.v4.new_markdown_cell("Intro.\n\n# How well the register predicts"),
    ]
    path = tmp_path / "04_accuracy_metrics.ipynb"
    nbformat.write(book, path)
    html = pipeline._render_html(path).read_text(encoding="utf-8")
    assert "<title>How well the register predicts</title>" in html


def test_unowned_new_risk_is_named_only_by_the_run_that_created_it(
    sample_project, caplog
):
    config = load_config(sample_project / "config.yaml")
    recon = pd.DataFrame(
        {
            "incident_id": ["PD-1482", "MAN-2026-019"],
            "outcome": ["new_risk", "new_risk"],
            "risk_id": ["R-031", "R-032"],
            "owner": [config.default_owner] * 2,
            "service": ["notifications", None],
        }
    )
    with caplog.at_level("WARNING"):
        assert pipeline._unassigned(recon, config, {"R-032"}) == 2
    assert "R-032" in caplog.text and "service not recorded" in caplog.text
    assert "R-031" not in caplog.text


def test_preview_warns_about_a_bad_record_once(sample_project, caplog):
    reports = sample_project / "learning" / "incidents" / "manual-reports.csv"
    with reports.open("a", encoding="utf-8") as handle:
        handle.write("MAN-2026-099,Odd date,x,y,2026-13-45,,P2,cafe,none,resolved,\n")
    config = load_config(sample_project / "config.yaml")
    with caplog.at_level("WARNING"):
        pipeline.preview(config, trigger="manual")
    assert caplog.text.count("manual-reports.csv: record line 7") == 1


def test_decision_about_an_incident_no_source_holds_is_warned_about(
    sample_project, caplog
):
    (sample_project / "learning" / "match-decisions.yaml").write_text(
        "- incident_id: MAN-2026-014\n  action: confirm\n"
        "- incident_id: MAN-2026-41\n  action: confirm\n  risk_id: R-004\n",
        encoding="utf-8",
    )
    config = load_config(sample_project / "config.yaml")
    with caplog.at_level("WARNING"):
        pipeline._preflight(config, [])
    assert "match-decisions.yaml:3: entry 2: incident 'MAN-2026-41'" in caplog.text
    assert "entry 1" not in caplog.text


def test_notebook_kernels_keep_their_log_off_the_console(tmp_path, capfd):
    import nbformat
    import papermill

    book = nbformat.v4.new_notebook()
    book.metadata["kernelspec"] = {"name": "python3", "language": "python"}
    book.cells = [nbformat.v4.new_code_cell("x = 1")]
    path = tmp_path / "tiny.ipynb"
    nbformat.write(book, path)
    papermill.execute_notebook(
        str(path),
        str(tmp_path / "out.ipynb"),
        progress_bar=False,
        extra_arguments=pipeline.KERNEL_ARGUMENTS,
    )
    assert "IPKernelApp" not in capfd.readouterr().err

    book.cells = [nbformat.v4.new_code_cell("1 / 0")]
    nbformat.write(book, path)
    with pytest.raises(papermill.PapermillExecutionError, match="ZeroDivisionError"):
        papermill.execute_notebook(
            str(path),
            str(tmp_path / "out.ipynb"),
            progress_bar=False,
            extra_arguments=pipeline.KERNEL_ARGUMENTS,
        )


def test_run_starts_its_notebook_kernels_with_the_quiet_arguments(
    sample_project, monkeypatch
):
    import papermill

    seen = {}

    def record(*args, **kwargs):
        seen.update(kwargs)
        raise RuntimeError("stop after the first notebook")

    monkeypatch.setattr(papermill, "execute_notebook", record)
    config = load_config(sample_project / "config.yaml")
    with pytest.raises(RuntimeError, match="stop after"):
        pipeline.run(config, trigger="manual", notify=False, run_id="quiet")
    assert seen["extra_arguments"] == pipeline.KERNEL_ARGUMENTS


def _reconcile_and_update(config, project, run, *, reviews=False):
    """Reconcile into ``project/run``, update the register, read it back."""
    pipeline.stage_reconcile(config, project / run)
    pipeline.stage_register_update(config, project / run)
    if reviews:
        pipeline.stage_reviews(config, project / run)
    return read_register(config.risk_register_path)


def test_redirect_after_recording_withdraws_the_old_risk_once(sample_project, caplog):
    config = load_config(sample_project / "config.yaml")

    def reconcile_and_update(run):
        return _reconcile_and_update(config, sample_project, run, reviews=True)

    first = reconcile_and_update("first").history.set_index("incident_id")
    incident = first.index[first["event"] == "realized"][0]
    old = first.loc[incident, "risk_id"]
    new = next(r for r in ("R-013", "R-014") if r != old)
    config.decisions_path.write_text(
        f"- incident_id: {incident}\n  action: redirect\n  risk_id: {new}\n",
        encoding="utf-8",
    )

    redirected = reconcile_and_update("second")
    rows = redirected.history[redirected.history["incident_id"] == incident]
    assert [tuple(r) for r in rows[["risk_id", "event"]].values] == [
        (old, "realized"),
        (old, "withdrawn"),
        (new, "realized"),
    ]
    statuses = redirected.risks.set_index("risk_id")["status"]
    assert statuses[new] == "Realized" and statuses[old] == "Realized"
    assert f"records {old} as withdrawn" in caplog.text
    # the incident's review names the risk it realized now, and says why
    review = next(config.reviews_dir.glob(f"review-{incident}*.md"))
    assert read_review(review)["risk_id"] == new
    assert f"from realized {old} " in review.read_text(encoding="utf-8")

    text = config.risk_register_path.read_bytes()
    reviewed = review.read_bytes()
    reconcile_and_update("third")
    assert config.risk_register_path.read_bytes() == text
    assert review.read_bytes() == reviewed


def test_review_of_an_incident_given_for_one_run_is_read_back_by_the_next(
    sample_project, tmp_path
):
    config = load_config(sample_project / "config.yaml")
    log = Path(__file__).parent / "fixtures" / "pipeline"
    log = log / "rollback_log_voucher_bug.jsonl"
    first = pipeline.stage_reconcile(config, tmp_path / "one", inputs=[log])
    pipeline.stage_register_update(config, tmp_path / "one")
    pipeline.stage_reviews(config, tmp_path / "one")
    recon = first.reconciliation.set_index("incident_id")
    (incident_id,) = [
        i for i in recon.index if i.startswith("rollback-checkout-2026113")
    ]
    review = Path(recon.at[incident_id, "review_path"])
    text = review.read_text(encoding="utf-8")
    text = text.replace("status: open", "status: done")
    text = text.replace("mitigations_worked: unknown", "mitigations_worked: no")
    text = text.replace("new_risks: []", "new_risks: [Vouchers have no canary check]")
    review.write_text(text, encoding="utf-8")

    # the next run reads the configured sources only, not the rollback log
    pipeline.stage_reconcile(config, tmp_path / "two")
    pipeline.stage_register_update(config, tmp_path / "two")

    register = read_register(config.risk_register_path)
    history = register.history
    reviewed = history[history["event"] == "reviewed"]
    assert list(reviewed["incident_id"]) == [incident_id]
    assert list(reviewed["risk_id"]) == ["R-018"]
    assert list(reviewed["mitigation_verdict"]) == ["failed"]
    # dated when the answer was read, not by the deadline two weeks ahead
    dates = history.loc[history["source"] == "review", "date"]
    assert set(dates.dt.strftime("%Y-%m-%d")) == {f"{datetime.now(UTC):%Y-%m-%d}"}
    named = register.risks[register.risks["description"].str.startswith("Vouchers")]
    assert named["impact"].iloc[0] == "Moderate"  # the middle of the scale
    assert named["likelihood"].iloc[0] == "Possible"

    pipeline.stage_reconcile(config, tmp_path / "three")
    assert not pipeline.stage_register_update(config, tmp_path / "three").changed


def test_full_run_names_a_withdrawn_realization_on_the_console(sample_project, caplog):
    config = load_config(sample_project / "config.yaml")
    pipeline.run(config, trigger="manual", run_id="first")
    history = read_register(config.risk_register_path).history
    row = history[history["event"] == "realized"].iloc[0]
    new = "R-013" if row["risk_id"] != "R-013" else "R-014"
    config.decisions_path.write_text(
        f"- incident_id: {row['incident_id']}\n  action: redirect\n  risk_id: {new}\n",
        encoding="utf-8",
    )

    summary = pipeline.run(config, trigger="manual", run_id="second")

    assert summary["counts"]["realizations_withdrawn"] == 1
    assert (
        f"Incident {row['incident_id']} no longer realizes {row['risk_id']}"
        in caplog.text
    )


@pytest.mark.parametrize(
    ("decision", "then"),
    [
        ("action: redirect\n  new_risk: true\n", "created"),
        # the candidates left go to review, not into the register
        ("action: reject\n  risk_id: {old}\n", None),
        (
            "action: reject\n  risk_id: {old}\n"
            "- incident_id: {incident}\n  action: reject\n  risk_id: R-022\n",
            None,
        ),
    ],
    ids=["redirect-to-new-risk", "reject-recorded-risk", "reject-all-candidates"],
)
def test_decision_against_a_recorded_realization_withdraws_it(
    sample_project, caplog, decision, then
):
    config = load_config(sample_project / "config.yaml")

    def reconcile_and_update(run):
        return _reconcile_and_update(config, sample_project, run)

    first = reconcile_and_update("first")
    history = first.history.set_index("incident_id")
    incident = history.index[history["event"] == "realized"][0]
    old = history.loc[incident, "risk_id"]
    config.decisions_path.write_text(
        f"- incident_id: {incident}\n  " + decision.format(old=old, incident=incident),
        encoding="utf-8",
    )

    caplog.clear()
    second = reconcile_and_update("second")
    rows = second.history[second.history["incident_id"] == incident]
    events = [tuple(r) for r in rows[["risk_id", "event"]].values]
    assert events[:2] == [(old, "realized"), (old, "withdrawn")]
    assert len(events) == (3 if then else 2)
    if then:
        (new, event) = events[2]
        assert event == then and new != old
    if then == "created":
        assert new not in set(first.risks["risk_id"])
        assert new in set(second.risks["risk_id"])
    assert f"records {old} as withdrawn" in caplog.text
    assert set(first.risks["risk_id"]) <= set(second.risks["risk_id"])

    text = config.risk_register_path.read_bytes()
    caplog.clear()
    reconcile_and_update("third")
    assert config.risk_register_path.read_bytes() == text
    assert "not applied to the register" not in caplog.text


def test_rejecting_a_risk_that_is_not_the_match_withdraws_nothing(sample_project):
    config = load_config(sample_project / "config.yaml")
    history = _reconcile_and_update(config, sample_project, "first").history
    text = config.risk_register_path.read_bytes()
    row = history[history["event"] == "realized"].iloc[0]
    other = "R-001" if row["risk_id"] != "R-001" else "R-002"
    config.decisions_path.write_text(
        f"- incident_id: {row['incident_id']}\n  action: reject\n  risk_id: {other}\n",
        encoding="utf-8",
    )
    result = pipeline.stage_reconcile(config, sample_project / "second")
    recon = result.reconciliation.set_index("incident_id").loc[row["incident_id"]]
    assert (recon["outcome"], recon["risk_id"]) == ("realized", row["risk_id"])
    pipeline.stage_register_update(config, sample_project / "second")
    assert config.risk_register_path.read_bytes() == text


def test_rejecting_the_recorded_risk_sends_the_incident_to_review_not_to_a_new_best(
    sample_project,
):
    config = load_config(sample_project / "config.yaml")
    first = _reconcile_and_update(config, sample_project, "first")
    row = first.history[first.history["event"] == "realized"].iloc[0]
    incident, old = row["incident_id"], row["risk_id"]
    # a risk added since, written like the incident, now outranks the recorded one
    result = pipeline.stage_reconcile(config, sample_project / "probe")
    text = result.reconciliation.set_index("incident_id").loc[incident, "root_cause"]
    path = config.risk_register_path
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    at = next(i for i, x in enumerate(lines) if x.startswith(f"| {old} |"))
    cells = lines[at].split("|")
    cells[1], cells[2] = " R-099 ", f" {text.splitlines()[0][:150]} "
    lines.insert(at + 1, "|".join(cells))
    path.write_text("".join(lines), encoding="utf-8")
    probe = pipeline.stage_reconcile(config, sample_project / "probe2")
    matches = probe.matches.set_index("incident_id")
    assert matches.loc[incident, "candidates"].startswith("R-099:")

    config.decisions_path.write_text(
        f"- incident_id: {incident}\n  action: reject\n  risk_id: {old}\n",
        encoding="utf-8",
    )
    second = _reconcile_and_update(config, sample_project, "second")
    events = second.history[second.history["incident_id"] == incident]
    assert [tuple(r) for r in events[["risk_id", "event"]].values] == [
        (old, "realized"),
        (old, "withdrawn"),
    ]


def test_a_new_risk_redirected_away_and_back_is_created_again(sample_project):
    config = load_config(sample_project / "config.yaml")
    first = _reconcile_and_update(config, sample_project, "first")
    row = first.history[first.history["event"] == "created"].iloc[0]
    incident, made = row["incident_id"], row["risk_id"]
    away = f"- incident_id: {incident}\n  action: redirect\n  risk_id: R-013\n"
    config.decisions_path.write_text(away, encoding="utf-8")
    _reconcile_and_update(config, sample_project, "second")
    back = f"- incident_id: {incident}\n  action: redirect\n  new_risk: true\n"
    config.decisions_path.write_text(away + back, encoding="utf-8")
    third = _reconcile_and_update(config, sample_project, "third")

    events = third.history[third.history["incident_id"] == incident]
    assert [tuple(r) for r in events[["risk_id", "event"]].values] == [
        (made, "created"),
        (made, "withdrawn"),
        ("R-013", "realized"),
        ("R-013", "withdrawn"),
        (made, "created"),
    ]
    assert len(third.risks) == len(first.risks)  # the same risk, not another
    text = config.risk_register_path.read_bytes()
    _reconcile_and_update(config, sample_project, "fourth")
    assert config.risk_register_path.read_bytes() == text


def test_a_risk_deleted_by_hand_is_not_replaced_by_another_match(
    sample_project, caplog
):
    config = load_config(sample_project / "config.yaml")

    def reconcile_and_update(run):
        return _reconcile_and_update(config, sample_project, run)

    first = reconcile_and_update("first")
    realized = first.history[first.history["event"] == "realized"].iloc[0]
    path = config.risk_register_path
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    gone = f"| {realized['risk_id']} |"
    path.write_text("".join(x for x in lines if not x.startswith(gone)), "utf-8")

    caplog.clear()
    second = reconcile_and_update("second")
    assert second.history.drop(columns="line").equals(
        first.history.drop(columns="line")
    )
    assert (
        f"Incident {realized['incident_id']} is recorded as realized "
        f"{realized['risk_id']}, which is no longer in the register's table"
    ) in caplog.text
    assert len(second.risks) == len(first.risks) - 1

    from riskanalytics.register import check_register

    check = check_register(path)
    assert check.ok
    assert any(f"the history names {realized['risk_id']}" in w for w in check.warnings)


def test_a_run_warns_before_its_notebooks_of_what_their_logs_would_hide(
    sample_project, monkeypatch, caplog
):
    import papermill

    def stop(*args, **kwargs):
        raise RuntimeError("stop before the first notebook")

    monkeypatch.setattr(papermill, "execute_notebook", stop)
    register = sample_project / "learning" / "risk-register.md"
    text = register.read_text(encoding="utf-8")
    register.write_text(text.replace(" Status |", " Progress |", 1), encoding="utf-8")
    given = sample_project / "nm.md"
    shutil.copy(sample_project / "learning" / "near-miss-template.md", given)
    config = load_config(sample_project / "config.yaml")
    with pytest.raises(RuntimeError, match="stop before"):
        pipeline.run(config, trigger="near-miss", inputs=[given], notify=False)
    assert f"{given} is not in incident_sources" in caplog.text
    assert "no Status column" in caplog.text


def test_two_runs_started_in_one_second_get_folders_of_their_own(
    sample_project, monkeypatch
):
    import papermill

    outputs = []

    def record(*args, **kwargs):
        outputs.append(Path(args[1] if len(args) > 1 else kwargs["output_path"]))
        raise RuntimeError("stop after the first notebook")

    monkeypatch.setattr(papermill, "execute_notebook", record)
    monkeypatch.setattr(pipeline, "new_run_id", lambda *a, **k: "20261203T101500Z-x")
    config = load_config(sample_project / "config.yaml")
    for _ in range(2):
        with pytest.raises(RuntimeError, match="stop after"):
            pipeline.run(config, trigger="manual", notify=False)
    first, second = (path.parent.name for path in outputs)
    assert (first, second) == ("20261203T101500Z-x", "20261203T101500Z-x-2")


@pytest.mark.parametrize("deaths", [1, pipeline.KERNEL_STARTS])
def test_a_kernel_that_dies_on_starting_is_started_again(
    sample_project, monkeypatch, deaths
):
    import papermill

    starts = []

    def flaky(notebook, output, **kwargs):
        starts.append(Path(notebook).name)
        if len(starts) <= deaths:
            raise RuntimeError("Kernel died before replying to kernel_info")
        raise RuntimeError("stop after the first notebook")

    monkeypatch.setattr(papermill, "execute_notebook", flaky)
    config = load_config(sample_project / "config.yaml")
    if deaths < pipeline.KERNEL_STARTS:
        with pytest.raises(RuntimeError, match="stop after"):
            pipeline.run(config, trigger="manual", notify=False, run_id="flaky")
        assert starts == [pipeline.NOTEBOOKS[0]] * (deaths + 1)
    else:
        with pytest.raises(pipeline.RunFailedError, match="01_reconciliation.*died"):
            pipeline.run(config, trigger="manual", notify=False, run_id="flaky")
        assert len(starts) == pipeline.KERNEL_STARTS


def test_redirect_back_to_the_first_risk_records_it_again(sample_project):
    config = load_config(sample_project / "config.yaml")

    def redirect_and_update(run, risk_id=None):
        if risk_id:
            config.decisions_path.write_text(
                f"- incident_id: {incident}\n  action: redirect\n"
                f"  risk_id: {risk_id}\n",
                encoding="utf-8",
            )
        pipeline.stage_reconcile(config, sample_project / run)
        pipeline.stage_register_update(config, sample_project / run)
        register = read_register(config.risk_register_path)
        rows = register.history[register.history["incident_id"] == incident]
        return [tuple(r) for r in rows[["risk_id", "event"]].values]

    pipeline.stage_reconcile(config, sample_project / "first")
    pipeline.stage_register_update(config, sample_project / "first")
    history = read_register(config.risk_register_path).history
    incident, old = history.loc[history["event"] == "realized"].iloc[0][
        ["incident_id", "risk_id"]
    ]
    other = next(r for r in ("R-013", "R-014") if r != old)

    redirect_and_update("second", other)
    events = redirect_and_update("third", old)
    assert events == [
        (old, "realized"),
        (old, "withdrawn"),
        (other, "realized"),
        (other, "withdrawn"),
        (old, "realized"),
    ]
    text = config.risk_register_path.read_bytes()
    assert redirect_and_update("fourth") == events
    assert config.risk_register_path.read_bytes() == text
    recorded = pipeline._history_by_incident(
        read_register(config.risk_register_path).history
    )
    assert recorded[incident] == ("realized", old)


def test_full_run_moves_a_new_risk_that_was_not_new_to_the_analyst_s_risk(
    sample_project, caplog
):
    config = load_config(sample_project / "config.yaml")
    first = pipeline.run(config, trigger="manual", run_id="first")
    register = read_register(config.risk_register_path)
    row = register.history[register.history["event"] == "created"].iloc[0]
    incident, created = row["incident_id"], row["risk_id"]
    config.decisions_path.write_text(
        f"- incident_id: {incident}\n  action: redirect\n  risk_id: R-013\n",
        encoding="utf-8",
    )
    caplog.clear()
    second = pipeline.run(config, trigger="manual", run_id="second")

    assert second["counts"]["decisions_not_applied"] == 0
    assert second["counts"]["realizations_withdrawn"] == 1
    assert f"Incident {incident} was no new risk" in caplog.text
    after = read_register(config.risk_register_path)
    events = after.history[after.history["incident_id"] == incident]
    assert [tuple(r) for r in events[["risk_id", "event"]].values] == [
        (created, "created"),
        (created, "withdrawn"),
        ("R-013", "realized"),
    ]
    risks = after.risks.set_index("risk_id")
    assert risks.loc["R-013", "status"] == "Realized"
    assert created in risks.index  # kept: a person retires it
    # the risk made from the incident is still no prediction
    metrics = [
        json.loads((config.reports_dir / run / "run.json").read_text())
        for run in ("first", "second")
    ]
    assert first["counts"]["incidents"] == second["counts"]["incidents"]
    assert (
        metrics[0]["metrics"]["risks_in_register"]
        == (metrics[1]["metrics"]["risks_in_register"])
    )

    text = config.risk_register_path.read_bytes()
    pipeline.run(config, trigger="manual", run_id="third")
    assert config.risk_register_path.read_bytes() == text


def test_a_run_with_no_incidents_writes_every_report(sample_project):
    import yaml

    path = sample_project / "config.yaml"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    data["incident_sources"] = []
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    register = (sample_project / "learning" / "risk-register.md").read_bytes()

    summary = pipeline.run(load_config(path), trigger="weekly", notify=False)

    assert summary["outcome"] == "success" and summary["counts"]["incidents"] == 0
    run_dir = sample_project / "reports" / summary["run_id"]
    assert len(list(run_dir.glob("*.html"))) == 4
    assert (sample_project / "learning" / "risk-register.md").read_bytes() == register


def with_reports(project: Path, name: str, text: str):
    """The project's config, with a CSV of manual reports added to its sources."""
    path = project / "learning" / "incidents" / name
    path.write_text(text, encoding="utf-8")
    return load_config(project / "config.yaml")


def test_incident_ids_with_markdown_characters_are_recorded_once(sample_project):
    config = with_reports(
        sample_project,
        "odd-ids.csv",
        "incident_id,title,root_cause,started_at\n"
        "INC_6_,Cert,The TLS certificate expired,2026-03-07T10:00:00Z\n"
        "*x*,Cert,The TLS certificate expired again,2026-03-08T10:00:00Z\n"
        "`y`,Cert,The TLS certificate expired once more,2026-03-09T10:00:00Z\n",
    )
    for run in ("one", "two"):
        pipeline.stage_reconcile(config, sample_project / run)
        pipeline.stage_register_update(config, sample_project / run)
        history = read_register(config.risk_register_path).history
        ids = history["incident_id"].tolist()
        assert [ids.count(i) for i in ("INC_6_", "*x*", "`y`")] == [1, 1, 1], run


def test_a_new_risk_takes_the_category_of_its_incident(sample_project):
    config = with_reports(
        sample_project,
        "categorised.csv",
        "incident_id,title,root_cause,started_at,category\n"
        "CAT-1,Wombats,A wombat chewed through the glorp,2026-03-07T10:00:00Z,"
        "Wildlife\n",
    )
    pipeline.stage_reconcile(config, sample_project / "one")
    update = pipeline.stage_register_update(config, sample_project / "one")
    new_id = update.created["CAT-1"]
    risks = read_register(config.risk_register_path).risks.set_index("risk_id")
    assert risks.loc[new_id, "category"] == "Wildlife"
