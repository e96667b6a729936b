"""Tests for riskanalytics.ingest against copies of real public files."""

from __future__ import annotations

import io
import json
import logging
import shutil
from pathlib import Path

import pandas as pd
import pytest

import riskanalytics.ingest as ingest
from riskanalytics.exceptions import InputFormatError
from riskanalytics.ingest import (
    FORMATS,
    IngestResult,
    detect_format,
    read_incidents,
    write_incidents_csv,
)
from riskanalytics.ingest._common import parse_duration, parse_time
from riskanalytics.schema import INCIDENT_COLUMNS, INCIDENT_EXTRA_COLUMNS, TRIGGERS

FIXTURES = Path(__file__).parent / "fixtures" / "ingest"
LEARNING = Path(__file__).parents[1] / "learning" / "incidents"
UTC = "datetime64[ns, UTC]"


def ts(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz="UTC")


def read(*names: str, **kwargs) -> IngestResult:
    return read_incidents([FIXTURES / n for n in names], **kwargs)


def one(name: str, **kwargs) -> dict:
    result = read(name, **kwargs)
    assert len(result.incidents) == 1, result.incidents
    return result.incidents.iloc[0].to_dict()


# --- public API and schema ---------------------------------------------------------


def test_public_names_are_exported():
    assert set(ingest.__all__) >= {
        "FORMATS",
        "IngestResult",
        "SkippedRecord",
        "detect_format",
        "read_incidents",
        "write_incidents_csv",
    }
    assert callable(FORMATS["pagerduty"])


def test_incidents_have_contract_columns_dtypes_and_no_empty_strings():
    frame = read_incidents([FIXTURES]).incidents
    assert list(frame.columns) == INCIDENT_COLUMNS + INCIDENT_EXTRA_COLUMNS
    assert str(frame["started_at"].dtype) == UTC
    assert str(frame["resolved_at"].dtype) == UTC
    assert frame["trigger"].isin(TRIGGERS).all()
    assert frame["incident_id"].is_unique
    for column in ("title", "root_cause", "impact", "severity", "service"):
        assert not (frame[column].dropna() == "").any(), column


def test_empty_input_gives_empty_table_with_columns(tmp_path):
    result = read_incidents([tmp_path])
    assert result.incidents.empty
    assert list(result.incidents.columns) == INCIDENT_COLUMNS + INCIDENT_EXTRA_COLUMNS


# --- detection ------------------------------------------------------------------

DETECTED = {
    "pagerduty_v3_triggered.json": "pagerduty",
    "pagerduty_v2_messages_trigger.json": "pagerduty",
    "pagerduty_rest_incident_list.json": "pagerduty",
    "pagerduty_analytics_raw_incidents.json": "pagerduty",
    "pagerduty_log_entries_list.json": "pagerduty",
    "pagerduty_v3_incident_data.json": "pagerduty",
    "opsgenie_create_ms_and_ns_times.json": "opsgenie",
    "alertmanager_firing_and_resolved_shared_fingerprint.json": "alertmanager",
    "alertmanager_empty_group_labels.json": "alertmanager",
    "grafana_unified.json": "grafana",
    "grafana_legacy_no_times.json": "grafana-legacy",
    "helm_history_with_rollback.txt": "helm",
    "helm_history_with_rollback.json": "helm",
    "helm_history_with_rollback.yaml": "helm",
    "helm3_history_without_rollback.txt": "helm",
    "helm_rollback_output.txt": "helm",
    "argo_rollout_aborted/rollout.yaml": "argo-rollouts",
    "argo_rollout_aborted/analysisrun.yaml": "argo-rollouts",
    "kubectl_history_in_markdown_note.md": "kubectl",
    "github_deployment_status_success.json": "github-deployment",
    "moj_incident_log_many_sections.md.erb": "postmortem",
    "moj_incident_page_year_typo.md.erb": "postmortem",
    "icco_frontmatter/00b7f759-21f8-4767-8803-f09d863005cd.md": (
        "postmortem-frontmatter"
    ),
    "danluu_readme.md": "danluu",
    "k8s_failure_stories_readme.md": "k8s-failure-stories",
    "cloud_incidents_duplicate_id.csv": "cloud-incidents",
    "issre_mixed_manifestation.json": "issre",
}


@pytest.mark.parametrize(("name", "expected"), sorted(DETECTED.items()))
def test_detect_format_from_content(name, expected):
    assert detect_format(FIXTURES / name) == expected


def test_detect_format_of_learning_samples():
    found = {
        p.name: detect_format(p)
        for p in LEARNING.rglob("*")
        if p.is_file() and p.name != "SOURCES.md"
    }
    assert found == {
        "pagerduty-sms-duplicates.jsonl": "pagerduty",
        "alertmanager-postgres-disk.json": "alertmanager",
        "checkout.helm-history.json": "helm",
        "rollback-log.jsonl": "rollback-log",
        "payments-api.rollout.yaml": "argo-rollouts",
        "payments-api.analysisrun.yaml": "argo-rollouts",
        "moj-2026-05-19-eks-upgrade-1-30.md.erb": "postmortem",
        "manual-reports.csv": "csv",
    }


def test_unknown_format_raises_naming_the_file(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("Just some notes about the week.\n", encoding="utf-8")
    with pytest.raises(InputFormatError, match="notes.txt.*unknown incident format"):
        read_incidents([path])


def test_unknown_json_shape_raises(tmp_path):
    path = tmp_path / "odd.json"
    path.write_text('{"hello": "world"}', encoding="utf-8")
    with pytest.raises(InputFormatError, match="odd.json: JSON of an unknown shape"):
        detect_format(path)


def test_missing_file_raises_naming_the_file(tmp_path):
    with pytest.raises(InputFormatError, match="nowhere.json: file not found"):
        read_incidents([tmp_path / "nowhere.json"])


def test_non_utf8_file_raises(tmp_path):
    path = tmp_path / "latin1.csv"
    path.write_bytes("incident_id,title\nX-1,caf\xe9 down\n".encode("latin-1"))
    with pytest.raises(InputFormatError, match="latin1.csv: expected UTF-8"):
        read_incidents([path])


def test_broken_json_raises_with_line(tmp_path):
    path = tmp_path / "pd.json"
    text = (FIXTURES / "pagerduty_v3_triggered.json").read_text()[:300]
    path.write_text(text, encoding="utf-8")
    with pytest.raises(InputFormatError, match=r"pd.json: line \d+ column \d+"):
        read_incidents([path], fmt="pagerduty")


def test_unknown_format_name_raises():
    with pytest.raises(InputFormatError, match="format 'nope' is unknown"):
        read_incidents([FIXTURES / "grafana_unified.json"], fmt="nope")


def test_glob_with_no_match_raises(tmp_path):
    with pytest.raises(InputFormatError, match="no file matches"):
        read_incidents([str(tmp_path / "*.json")])


def test_folder_is_read_sorted_and_recursively_skipping_sources(tmp_path):
    shutil.copytree(FIXTURES / "argo_rollout_aborted", tmp_path / "b")
    shutil.copy(FIXTURES / "grafana_unified.json", tmp_path / "a.json")
    (tmp_path / "SOURCES.md").write_text("where these came from\n", encoding="utf-8")
    result = read_incidents([tmp_path])
    assert [p.name for p in result.files] == [
        "a.json",
        "analysisrun.yaml",
        "rollout.yaml",
    ]


def test_glob_pattern_is_expanded():
    result = read_incidents([str(FIXTURES / "helm_history_with_rollback.*")])
    assert len(result.files) == 3


# --- PagerDuty ------------------------------------------------------------------


def test_pagerduty_v3_triggered():
    row = one("pagerduty_v3_triggered.json")
    assert row["incident_id"] == "PD-9"
    assert row["source"] == "pagerduty"
    assert row["title"] == "Test Incident 3"
    assert row["service"] == "pig208"
    assert row["severity"] == "high"
    assert row["started_at"] == ts("2021-06-04T13:35:29.781")
    assert pd.isna(row["resolved_at"])
    assert row["trigger"] == "manual"


def pagerduty_trigger_and_resolve() -> tuple[dict, dict]:
    """A real PagerDuty v3 triggered event and its resolution 30 minutes later."""
    body = json.loads((FIXTURES / "pagerduty_v3_triggered.json").read_text())
    resolved = json.loads(json.dumps(body))
    resolved["event"]["event_type"] = "incident.resolved"
    resolved["event"]["occurred_at"] = "2021-06-04T14:05:00.000Z"
    resolved["event"]["data"]["status"] = "resolved"
    return body, resolved


def test_pagerduty_v3_triggered_and_resolved_events_merge(tmp_path):
    body, resolved = pagerduty_trigger_and_resolve()
    path = tmp_path / "events.jsonl"
    path.write_text(json.dumps(resolved) + "\n" + json.dumps(body) + "\n")
    result = read_incidents([path])
    assert len(result.incidents) == 1
    row = result.incidents.iloc[0]
    assert row["started_at"] == ts("2021-06-04T13:35:29.781")
    assert row["resolved_at"] == ts("2021-06-04T14:05:00")
    assert row["trigger"] == "resolved"


def test_pagerduty_v3_non_incident_event_is_ignored_without_warning(caplog):
    with caplog.at_level(logging.WARNING):
        result = read("pagerduty_v3_service_event_ignored.json")
    assert result.incidents.empty
    assert result.skipped == []
    assert not caplog.records


def test_pagerduty_v3_priority_updated_uses_priority_as_severity():
    row = one("pagerduty_v3_priority_updated.json")
    assert row["incident_id"] == "PD-2"
    assert row["severity"] == "P1"
    assert row["service"] == "API Service"


def test_pagerduty_v2_messages_trigger_and_acknowledge_merge():
    result = read(
        "pagerduty_v2_messages_trigger.json", "pagerduty_v2_messages_acknowledge.json"
    )
    assert result.incidents["incident_id"].tolist() == ["PD-33"]
    row = result.incidents.iloc[0]
    assert row["title"] == "My new incident"
    assert row["service"] == "Production XDB Cluster"
    assert row["started_at"] == ts("2017-09-26T15:14:36")


def test_pagerduty_rest_incident_list():
    row = one("pagerduty_rest_incident_list.json")
    assert row["incident_id"] == "PD-1234"
    assert row["severity"] == "P2"
    assert row["resolved_at"] == ts("2015-10-06T21:38:23")
    assert row["trigger"] == "resolved"
    assert row["source_record"] == "document incidents[0]"


def test_pagerduty_v3_data_object_alone_keeps_the_incident_number():
    row = one("pagerduty_v3_incident_data.json")
    assert row["incident_id"] == "PD-2"  # as the webhook carrying it would give
    assert row["title"] == "A little bump in the road"
    assert row["service"] == "API Service" and row["severity"] == "P1"
    assert row["started_at"] == ts("2020-04-09T15:16:27")


def test_pagerduty_analytics_raw_incidents_in_the_response_time_zone(tmp_path):
    rows = read("pagerduty_analytics_raw_incidents.json").incidents
    rows = rows.set_index("incident_id")
    assert sorted(rows.index) == ["PD-928", "PD-929"]
    fire = rows.loc["PD-928"]
    assert fire["title"] == "The server is on fire!"
    assert fire["service"] == "Engineering"
    assert fire["severity"] == "low"  # no priority: the urgency
    assert fire["started_at"] == ts("2023-05-31T10:05:00")
    assert fire["resolved_at"] == ts("2023-05-31T10:15:00")
    assert rows.loc["PD-929", "severity"] == "SEV-2"
    assert pd.isna(rows.loc["PD-929", "resolved_at"])  # resolved before created

    # Zoneless times are in the response's time_zone, not the default zone.
    body = json.loads((FIXTURES / "pagerduty_analytics_raw_incidents.json").read_text())
    body["time_zone"] = "America/New_York"
    path = tmp_path / "analytics.json"
    path.write_text(json.dumps(body), encoding="utf-8")
    moved = read_incidents([path], default_timezone="Asia/Tokyo").incidents
    moved = moved.set_index("incident_id")
    assert moved.loc["PD-928", "started_at"] == ts("2023-05-31T14:05:00")


def test_pagerduty_log_entries_give_the_incident_timeline(tmp_path):
    row = one("pagerduty_log_entries_list.json")
    assert row["incident_id"] == "PD-1234"
    assert row["title"] == "The server is on fire."
    assert row["service"] == "My Mail Service"
    assert row["started_at"] == ts("2015-11-07T00:14:20")
    assert pd.isna(row["resolved_at"])

    body = json.loads((FIXTURES / "pagerduty_log_entries_list.json").read_text())
    trigger = body["log_entries"][0]
    resolve = dict(
        trigger, id="R2", type="resolve_log_entry", created_at="2015-11-07T01:00:00Z"
    )
    resolve["note"] = "Rolled back the mail relay config"
    body["log_entries"] = [resolve, trigger, "not an entry"]
    path = tmp_path / "log_entries.json"
    path.write_text(json.dumps(body), encoding="utf-8")
    result = read_incidents([path])
    row = result.incidents.iloc[0]
    assert len(result.incidents) == 1
    assert row["resolved_at"] == ts("2015-11-07T01:00:00")
    assert row["trigger"] == "resolved"
    assert row["recovery_actions"] == "Rolled back the mail relay config"
    assert [s.record for s in result.skipped] == ["document log_entries[2]"]


def test_pagerduty_log_entries_merge_with_the_incident_export():
    result = read(
        "pagerduty_rest_incident_list.json", "pagerduty_log_entries_list.json"
    )
    assert list(result.incidents["incident_id"]) == ["PD-1234"]
    row = result.incidents.iloc[0]
    assert row["started_at"] == ts("2015-10-06T21:30:42")
    assert row["resolved_at"] == ts("2015-10-06T21:38:23")


# --- Opsgenie -------------------------------------------------------------------


def test_opsgenie_create_reads_epoch_milliseconds():
    row = one("opsgenie_create_ms_and_ns_times.json")
    assert row["incident_id"] == "OG-ec03dad6-62c8-4c94-b38b-d88f398e900f"
    assert row["started_at"] == pd.Timestamp(1502709956288, unit="ms", tz="UTC")
    assert row["severity"] == "P3"
    assert row["service"] == "Server"
    assert pd.isna(row["resolved_at"])


def test_opsgenie_close_uses_nanosecond_updated_at(tmp_path):
    body = json.loads((FIXTURES / "opsgenie_create_ms_and_ns_times.json").read_text())
    close = json.loads(json.dumps(body))
    close["action"] = "Close"
    close["alert"]["updatedAt"] = 1502713556288000110
    path = tmp_path / "og.jsonl"
    path.write_text(json.dumps(body) + "\n" + json.dumps(close) + "\n")
    row = read_incidents([path]).incidents.iloc[0]
    assert row["resolved_at"] == pd.Timestamp(1502713556288000110, unit="ns", tz="UTC")
    assert row["trigger"] == "resolved"


def _opsgenie_alert_file(tmp_path, close_time) -> Path:
    """An Alert API object closed 'close_time' ms after it was created."""
    path = tmp_path / "alerts.json"
    alert = {
        "id": "70413a06-38d6-4c85-92b8-5ebc900d42e2",
        "tinyId": "1791",
        "message": "Payments queue backlog",
        "status": "closed",
        "createdAt": "2026-04-01T10:00:00.000Z",
        "updatedAt": "2026-04-01T10:30:00.000Z",
        "priority": "P1",
        "report": {"closeTime": close_time},
        "entity": "payments",
    }
    path.write_text(json.dumps({"data": [alert]}))
    return path


def test_opsgenie_alert_api_object_with_report(tmp_path):
    row = read_incidents([_opsgenie_alert_file(tmp_path, 1_200_000)]).incidents.iloc[0]
    assert row["resolved_at"] == ts("2026-04-01T10:20:00")
    assert row["severity"] == "P1"


@pytest.mark.parametrize("close", [9.2e15, -5, 1e18])
def test_opsgenie_close_time_that_is_no_duration_is_a_bad_record(tmp_path, close):
    result = read_incidents([_opsgenie_alert_file(tmp_path, close)])
    assert result.incidents.empty
    assert "report.closeTime" in result.skipped[0].reason


def test_opsgenie_incident_api_objects_resolved_at_their_update():
    path = (
        Path(__file__).parent / "fixtures" / "live" / "opsgenie_incidents_offset0.json"
    )
    rows = read_incidents([path]).incidents.set_index("incident_id")
    resolved = rows.loc["OG-2e9f9a4d-7d2b-4f0e-8f7c-1a0b6c9d3e21"]
    assert resolved["title"] == "Checkout unavailable in EU"
    assert resolved["resolved_at"] == ts("2026-11-10T10:03:30")
    assert resolved["trigger"] == "resolved" and resolved["severity"] == "P1"
    assert pd.isna(rows.loc["OG-6a1d2c3b-4e5f-4a7b-8c9d-0e1f2a3b4c5d", "resolved_at"])


# --- Alertmanager and Grafana ----------------------------------------------------


def test_alertmanager_api_v2_alert_list_gives_unresolved_incidents(tmp_path):
    # GET /api/v2/alerts answers a list of gettableAlert objects: a status
    # object instead of a string, and endsAt in the future while active.
    body = json.loads((FIXTURES / "alertmanager_empty_group_labels.json").read_text())
    alerts = []
    for alert in body["alerts"]:
        alert = {k: v for k, v in alert.items() if k != "status"}
        alert.update(
            endsAt="2099-01-01T00:00:00Z",
            updatedAt=alert["startsAt"],
            receivers=[{"name": "team"}],
            status={"state": "active", "silencedBy": [], "inhibitedBy": []},
        )
        alerts.append(alert)
    path = tmp_path / "alerts.json"
    path.write_text(json.dumps(alerts), encoding="utf-8")

    assert detect_format(path) == "alertmanager"
    result = read_incidents([path])
    assert result.skipped == []
    frame = result.incidents
    assert len(frame) == 1 and frame["alert_count"].iloc[0] == len(alerts)
    assert pd.isna(frame["resolved_at"].iloc[0])  # still active
    assert frame["trigger"].iloc[0] == "manual"


def test_alertmanager_mixed_group_with_shared_fingerprint():
    frame = read("alertmanager_firing_and_resolved_shared_fingerprint.json").incidents
    assert len(frame) == 4
    assert frame["alert_count"].sum() == 4
    resolved = frame[frame["trigger"] == "resolved"]
    assert len(resolved) == 1
    assert resolved.iloc[0]["resolved_at"] == ts("2021-03-30T13:17:50.814674209")
    assert frame["started_at"].eq(ts("2021-03-30T12:17:50.814674209")).all()
    assert set(frame["severity"]) == {"warning", "critical", "info"}
    assert set(frame["service"]) == {"component-x", "component-y"}


def test_alertmanager_groups_by_alertname_only():
    frame = read(
        "alertmanager_firing_and_resolved_shared_fingerprint.json",
        grouping_by=["alertname"],
    ).incidents
    assert sorted(frame["alert_count"].tolist()) == [1, 1, 2]
    cpu = frame[frame["title"] == "CPUHigh"].iloc[0]
    assert pd.isna(cpu["resolved_at"])  # one of its two alerts still fires
    assert cpu["trigger"] == "manual"


def test_alertmanager_two_alerts_with_same_labels_are_one_incident():
    row = one("alertmanager_empty_group_labels.json")
    assert row["alert_count"] == 2
    assert row["title"] == "High CPU Temperature: High CPU core temperature"
    assert row["severity"] == "critical"
    assert row["source_record"] == "document alerts[0]"


def _am_body(starts: str, ends: str, status: str, alertname: str = "DiskFull"):
    return {
        "version": "4",
        "status": status,
        "alerts": [
            {
                "status": status,
                "labels": {"alertname": alertname, "service": "db"},
                "annotations": {},
                "startsAt": starts,
                "endsAt": ends,
                "fingerprint": "f" + starts[-6:-4],
            }
        ],
    }


def test_alert_gap_longer_than_window_opens_new_incident(tmp_path):
    path = tmp_path / "am.jsonl"
    bodies = [
        _am_body("2026-03-01T10:00:00Z", "2026-03-01T10:10:00Z", "resolved"),
        _am_body("2026-03-01T10:50:00Z", "2026-03-01T11:00:00Z", "resolved"),
        _am_body("2026-03-01T13:00:00Z", "0001-01-01T00:00:00Z", "firing"),
    ]
    path.write_text("".join(json.dumps(b) + "\n" for b in bodies))
    frame = read_incidents([path], grouping_window_minutes=60).incidents
    assert frame["alert_count"].tolist() == [2, 1]
    assert frame.iloc[0]["resolved_at"] == ts("2026-03-01T11:00")
    frame = read_incidents([path], grouping_window_minutes=30).incidents
    assert frame["alert_count"].tolist() == [1, 1, 1]


def test_alert_repeated_in_later_notification_counts_once(tmp_path):
    path = tmp_path / "am.jsonl"
    firing = _am_body("2026-03-01T10:00:00Z", "0001-01-01T00:00:00Z", "firing")
    resolved = _am_body("2026-03-01T10:00:00Z", "2026-03-01T10:20:00Z", "resolved")
    path.write_text(json.dumps(firing) + "\n" + json.dumps(resolved) + "\n")
    row = read_incidents([path]).incidents.iloc[0]
    assert row["alert_count"] == 1
    assert row["resolved_at"] == ts("2026-03-01T10:20")


def test_alert_ids_are_stable_across_runs():
    first = read("alertmanager_firing_and_resolved_shared_fingerprint.json")
    second = read("alertmanager_firing_and_resolved_shared_fingerprint.json")
    assert first.incidents["incident_id"].tolist() == (
        second.incidents["incident_id"].tolist()
    )
    assert all(i.startswith("alert-") for i in first.incidents["incident_id"])


def test_grafana_unified_alert():
    row = one("grafana_unified.json")
    assert row["source"] == "grafana"
    assert row["title"] == "CPU Usage High"
    assert row["started_at"] == ts("2023-03-29T09:41:10")


def test_grafana_legacy_alert_has_no_times():
    row = one("grafana_legacy_no_times.json")
    assert row["source"] == "grafana"
    assert row["title"] == "[Alerting] Test notification"
    assert row["impact"] == "High value=100; Higher Value=200"
    assert pd.isna(row["started_at"])


# --- rollbacks ---------------------------------------------------------------------


@pytest.mark.parametrize("suffix", ["txt", "json", "yaml"])
def test_helm_rollback_revision_is_an_incident(tmp_path, suffix):
    path = tmp_path / f"foo.history.{suffix}"
    shutil.copy(FIXTURES / f"helm_history_with_rollback.{suffix}", path)
    row = read_incidents([path]).incidents.iloc[0]
    assert row["incident_id"] == "foo-rev3"
    assert row["source"] == "helm"
    assert row["service"] == "foo"
    assert row["trigger"] == "rollback"
    assert row["recovery_actions"] == "helm rollback foo 1"
    assert row["resolved_at"] == ts("1977-09-02T22:04:05")


def test_helm_table_time_without_zone_uses_default_zone(tmp_path):
    path = tmp_path / "foo.txt"
    shutil.copy(FIXTURES / "helm_history_with_rollback.txt", path)
    row = read_incidents([path], default_timezone="Europe/Berlin").incidents.iloc[0]
    assert row["resolved_at"] == ts("1977-09-02T21:04:05")  # CET, no DST in 1977


def test_helm3_history_without_rollback_has_no_incident():
    result = read("helm3_history_without_rollback.txt")
    assert result.incidents.empty
    assert result.skipped == []


def test_helm_rollback_output_has_no_incident_and_says_what_to_save(caplog):
    result = read("helm_rollback_output.txt")
    assert result.incidents.empty and result.skipped == []
    assert "helm history RELEASE -o json" in caplog.text


def test_argo_aborted_rollout_takes_root_cause_from_analysis_run():
    result = read_incidents([FIXTURES / "argo_rollout_aborted"])
    assert len(result.incidents) == 1
    row = result.incidents.iloc[0]
    assert row["incident_id"] == "argo-default-rollout-background-analysis-rev2"
    assert row["trigger"] == "rollback"
    assert row["root_cause"].startswith(
        'metric "web" assessed Failed due to failed (1) > failureLimit (0)'
    )
    assert "metric web Failed (values: false)" in row["root_cause"]
    assert row["started_at"] == ts("2020-09-22T09:10:04")
    assert row["resolved_at"] == ts("2020-09-22T09:10:05")


def test_kubectl_history_gaps_are_rollbacks():
    frame = read("kubectl_history_in_markdown_note.md").incidents
    assert frame["incident_id"].tolist() == [
        "kubectl-bwd-deployment-rev702",
        "kubectl-bwd-deployment-rev704",
        "kubectl-bwd-deployment-rev706",
    ]
    assert frame.iloc[0]["started_at"] == ts("2018-11-01T18:33:05")
    assert (frame["trigger"] == "rollback").all()


def test_kubectl_history_that_no_kubectl_printed_is_skipped(tmp_path):
    from riskanalytics.ingest import read_incidents

    head = "deployment.apps/web\nREVISION  CHANGE-CAUSE\n"
    gap = tmp_path / "gap.txt"
    gap.write_text(head + "1  <none>\n30000000  <none>\n", encoding="utf-8")
    long = tmp_path / "long.txt"
    long.write_text(head + "1  a\n" + "9" * 5000 + "  b\n3  c\n", encoding="utf-8")

    result = read_incidents([gap], "kubectl")
    assert result.incidents.empty
    assert "29999998 revisions missing" in result.skipped[0].reason
    result = read_incidents([long], "kubectl")
    assert result.incidents["incident_id"].tolist() == ["kubectl-web-rev2"]
    assert "not a number" in result.skipped[0].reason


def test_github_deployment_success_is_not_an_incident():
    assert read("github_deployment_status_success.json").incidents.empty


def test_github_deployment_failure_is_a_rollback_incident():
    row = one("github_deployment_status_failure.json")
    assert row["incident_id"] == "gh-deploy-145988746-209916254"
    assert row["service"] == "Hello-World"
    assert row["root_cause"] == "Health check failed after deploy: 502 from /healthz"
    assert row["trigger"] == "rollback"


def test_rollback_log_json_lines(tmp_path):
    path = tmp_path / "rollbacks.jsonl"
    path.write_text(
        json.dumps(
            {
                "time": "2026-04-21T09:58:30Z",
                "service": "checkout",
                "from_version": "3.2.0",
                "to_version": "3.1.4",
                "reason": "connection pool exhausted",
                "operator": "mo",
            }
        )
        + "\n"
    )
    row = read_incidents([path]).incidents.iloc[0]
    assert row["incident_id"] == "rollback-checkout-20260421T095830"
    assert row["root_cause"] == "connection pool exhausted"
    assert row["recovery_actions"] == "rolled back checkout from 3.2.0 to 3.1.4 by mo"
    assert row["trigger"] == "rollback"


def test_rollback_log_key_value_text_with_local_time(tmp_path):
    path = tmp_path / "rollbacks.log"
    path.write_text(
        "time=2026-07-01T10:00:00 service=search from_version=1.9 to_version=1.8 "
        'reason="index mapping broke queries" operator=ana\n'
        "this line is not a rollback\n"
    )
    assert detect_format(path) == "rollback-log"
    result = read_incidents([path], default_timezone="Europe/London")
    row = result.incidents.iloc[0]
    assert row["started_at"] == ts("2026-07-01T09:00:00")
    assert row["root_cause"] == "index mapping broke queries"
    assert [(s.record, "time" in s.reason) for s in result.skipped] == [
        ("line 2", True)
    ]


# --- reports ----------------------------------------------------------------------


def test_moj_incident_log_sections():
    frame = read(
        "moj_incident_log_many_sections.md.erb", default_timezone="Europe/London"
    ).incidents
    assert len(frame) == 34  # the Template section is not an incident
    assert frame["incident_id"].is_unique
    row = frame.set_index("incident_id").loc[
        "moj-2024-09-20-eks-subnet-route-table-associations-destroyed"
    ]
    assert row["started_at"] == ts("2024-09-20T10:24")  # 11:24 BST
    assert row["resolved_at"] == ts("2024-09-20T10:40")
    assert row["root_cause"].startswith("Cloud Platform infrastructure pipelines")
    assert row["impact"].startswith("Cloud Platform services were not available")
    assert row["recovery_actions"].startswith("Review and update the process")
    assert frame["started_at"].notna().all()


def test_moj_fault_occurs_is_the_start_and_dotted_times_parse():
    frame = read("moj_incident_log_many_sections.md.erb").incidents.set_index(
        "incident_id"
    )
    assert frame.loc["moj-2020-04-15-nginx-tls", "started_at"] == ts("2020-04-15T07:15")
    prometheus = frame.loc[
        "moj-2024-04-15-prometheus-restarted-during-wal-reload-several"
    ]
    assert prometheus["started_at"] == ts("2024-04-15T12:32")
    assert prometheus["resolved_at"] == ts("2024-04-18T16:13")


def test_moj_resolved_before_started_is_dropped_with_warning(caplog):
    with caplog.at_level(logging.WARNING):
        frame = read("moj_incident_log_many_sections.md.erb").incidents
    row = frame.set_index("incident_id").loc[
        "moj-2023-01-05-circleci-security-incident"
    ]
    assert pd.isna(row["resolved_at"])  # the log says 2022-02-01, a typo
    assert any("resolved_at" in r.getMessage() for r in caplog.records)


def test_moj_page_with_year_typo_falls_back_to_declared_time(caplog):
    row = one("moj_incident_page_year_typo.md.erb", default_timezone="Europe/London")
    assert "moj_incident_page_year_typo.md.erb:6: first detected: " in caplog.text
    assert "'22025-03-18 09:36' is no YYYY-MM-DD date" in caplog.text
    assert row["incident_id"] == "moj-2025-03-18-aws-eks-upgrade-to-1-30"
    assert row["started_at"] == ts("2025-03-18T10:03")
    assert row["resolved_at"] == ts("2025-03-20T12:09")
    assert row["trigger"] == "resolved"


def test_frontmatter_postmortems():
    frame = read_incidents([FIXTURES / "icco_frontmatter"]).incidents
    assert len(frame) == 5
    assert frame["started_at"].notna().sum() == 3
    row = frame.set_index("incident_id").loc["pm-00b7f759-21f8-4767-8803-f09d863005cd"]
    assert row["service"] == "Amazon SimpleDB"
    assert row["root_cause"].startswith("Multiple SimpleDB storage nodes lost power")
    assert row["category"].startswith("cloud; simpledb; us east; power loss")


CSV_REPORTS = """\
id,title,root_cause,started_at,resolved_at,service,trigger,near_miss
N-1,Cache stampede,,4/2/2026 10:00,2026-04-02T17:00:00+02:00,cache,,
N-2,,Runbook step skipped,2026-05-01,,,near-miss,
N-3,Failover drill found stale replica,,2026-06-01 09:00,,db,,yes
N-4,,,2026-06-02,,,,
N-5,Bad time,,yesterday-ish,,,,
"""


def test_generic_csv_reports(tmp_path, caplog):
    path = tmp_path / "reports.csv"
    path.write_text(CSV_REPORTS, encoding="utf-8")
    assert detect_format(path) == "csv"
    with caplog.at_level(logging.WARNING):
        result = read_incidents([path], default_timezone="America/New_York")
    frame = result.incidents.set_index("incident_id")
    assert list(frame.index) == ["N-1", "N-2", "N-3", "N-4"]  # N-4: kept, no text
    assert pd.isna(frame.loc["N-4", "title"]) and pd.isna(
        frame.loc["N-4", "root_cause"]
    )
    assert frame.loc["N-1", "started_at"] == ts("2026-04-02T14:00")  # M/D/YYYY, EDT
    assert frame.loc["N-1", "resolved_at"] == ts("2026-04-02T15:00")
    assert frame.loc["N-1", "trigger"] == "manual"
    assert pd.isna(frame.loc["N-1", "root_cause"])
    assert frame.loc["N-2", "near_miss"] and frame.loc["N-2", "trigger"] == "near-miss"
    assert frame.loc["N-3", "near_miss"] and frame.loc["N-3", "trigger"] == "near-miss"
    assert [s.record for s in result.skipped] == ["line 6"]
    assert all(s.file == str(path) for s in result.skipped)
    messages = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("reports.csv: record line 6" in m for m in messages)
    assert any("N-4 has no title and no root cause" in m for m in messages)


def test_generic_csv_strict_mode_raises_on_bad_record(tmp_path):
    path = tmp_path / "reports.csv"
    path.write_text(CSV_REPORTS, encoding="utf-8")
    with pytest.raises(InputFormatError, match="reports.csv: record line 6"):
        read_incidents([path], strict=True)


BAD_INPUT = Path(__file__).resolve().parent / "fixtures" / "bad_input"


def test_csv_row_with_fewer_cells_than_the_header_is_skipped(caplog):
    path = BAD_INPUT / "incidents_csv_short_row.csv"
    with caplog.at_level(logging.WARNING):
        result = read_incidents([path])
    assert list(result.incidents["incident_id"]) == [
        "MAN-2026-014",
        "MAN-2026-023",
        "MAN-2026-027",
        "MAN-2026-031",
    ]
    assert [(s.file, s.record) for s in result.skipped] == [(str(path), "line 3")]
    messages = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any(
        "incidents_csv_short_row.csv: record line 3: 3 cells" in m for m in messages
    )
    with pytest.raises(InputFormatError, match="short_row.csv: record line 3"):
        read_incidents([path], strict=True)


def test_json_lines_file_with_its_last_line_cut_skips_that_line(caplog):
    path = BAD_INPUT / "incidents_pagerduty_last_line_cut.jsonl"
    assert detect_format(path) == "pagerduty"
    with caplog.at_level(logging.WARNING):
        result = read_incidents([path])
    assert list(result.incidents["incident_id"]) == ["PD-1482"]
    assert [(s.file, s.record) for s in result.skipped] == [(str(path), "line 2")]
    messages = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("last_line_cut.jsonl: record line 2" in m for m in messages)
    with pytest.raises(InputFormatError, match="last_line_cut.jsonl: record line 2"):
        read_incidents([path], strict=True)


def test_generic_jsonl_reports(tmp_path):
    path = tmp_path / "reports.jsonl"
    rows = [
        {"incident_id": "J-1", "title": "Queue stuck", "severity": "P3"},
        {"id": "J-2", "root_cause": "Flag flipped", "trigger": "near-miss"},
        ["not", "an", "object"],
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows) + "{broken\n")
    result = read_incidents([path])
    assert result.incidents["incident_id"].tolist() == ["J-1", "J-2"]
    assert result.incidents["near_miss"].tolist() == [False, True]
    assert [s.record for s in result.skipped] == ["line 3", "line 4"]


def test_repeated_id_in_one_jsonl_file_keeps_the_first_and_warns(tmp_path, caplog):
    path = tmp_path / "reports.jsonl"
    rows = [
        {"id": "J-1", "title": "Queue stuck", "root_cause": "consumer died"},
        {"id": "J-2", "title": "Flag flipped"},
        {"id": "J-1", "title": "Cache cold", "root_cause": "restart"},
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    with caplog.at_level(logging.WARNING):
        result = read_incidents([path])
    frame = result.incidents.set_index("incident_id")
    assert list(frame.index) == ["J-1", "J-2"]
    assert frame.loc["J-1", "title"] == "Queue stuck"
    assert [(s.file, s.record) for s in result.skipped] == [(str(path), "line 3")]
    assert (
        f"Skipped {path}: record line 3: incident id J-1 already read from {path} "
        "line 1"
    ) in caplog.text
    with pytest.raises(InputFormatError, match="reports.jsonl: record line 3"):
        read_incidents([path], strict=True)


def test_repeated_id_in_one_csv_file_keeps_the_first_and_warns(tmp_path):
    path = tmp_path / "reports.csv"
    path.write_text("id,title\nC-1,Disk full\nC-2,DNS\nC-1,Disk full again\n")
    result = read_incidents([path])
    assert result.incidents["title"].tolist() == ["Disk full", "DNS"]
    assert [s.record for s in result.skipped] == ["line 4"]
    assert result.skipped[0].reason.endswith(f"from {path} line 2")


def test_same_id_in_two_sources_with_other_text_is_skipped_naming_both(tmp_path):
    shutil.copy(LEARNING / "manual-reports.csv", tmp_path / "a-manual.csv")
    later = tmp_path / "b-more.jsonl"
    rows = [
        {"incident_id": "J-1", "title": "Queue stuck"},
        {"incident_id": "MAN-2026-014", "title": "Other", "root_cause": "other"},
    ]
    later.write_text("".join(json.dumps(r) + "\n" for r in rows))
    result = read_incidents([tmp_path])
    frame = result.incidents
    assert frame["incident_id"].is_unique
    row = frame.set_index("incident_id").loc["MAN-2026-014"]
    assert row["title"] == "api.example.com TLS certificate expired"
    [skipped] = result.skipped
    assert (skipped.file, skipped.record) == (str(later), "line 2")
    assert skipped.reason == (
        f"incident id MAN-2026-014 already read from {tmp_path / 'a-manual.csv'} line 2"
    )


def test_exact_repeat_of_an_incident_in_another_file_is_merged_quietly(
    tmp_path, caplog
):
    report = {
        "incident_id": "R-1",
        "title": "Disk full",
        "root_cause": "WAL volume  filled\nup",
    }
    (tmp_path / "a.jsonl").write_text(json.dumps(report) + "\n")
    (tmp_path / "b.csv").write_text(
        "incident_id,title,root_cause,service\n"
        'R-1,Disk full,"WAL volume filled up",db\n'
    )
    with caplog.at_level(logging.WARNING):
        result = read_incidents([tmp_path])
    assert result.skipped == [] and caplog.text == ""
    assert result.incidents["incident_id"].tolist() == ["R-1"]
    assert result.incidents["source_file"].iloc[0] == str(tmp_path / "a.jsonl")
    assert result.incidents["service"].iloc[0] == "db"  # filled from the repeat


def test_events_of_one_incident_in_several_files_still_merge(tmp_path):
    body, resolved = pagerduty_trigger_and_resolve()
    resolved["event"]["data"]["title"] = "Test Incident 3 (renamed)"
    (tmp_path / "1-triggered.json").write_text(json.dumps(body))
    (tmp_path / "2-resolved.json").write_text(json.dumps(resolved))
    result = read_incidents([tmp_path])
    assert result.skipped == []
    assert result.incidents["incident_id"].tolist() == ["PD-9"]
    assert result.incidents["resolved_at"].iloc[0] == ts("2021-06-04T14:05:00")


@pytest.mark.parametrize("raw", ["X|Y\nZ", " X|Y \t\r\n  Z ", "X|Y\u00a0Z"])
def test_incident_id_whitespace_is_collapsed_to_one_space(tmp_path, raw):
    path = tmp_path / "reports.jsonl"
    path.write_text(json.dumps({"incident_id": raw, "title": "t"}) + "\n")
    assert read_incidents([path]).incidents["incident_id"].tolist() == ["X|Y Z"]


def test_incident_ids_differing_only_in_whitespace_are_one_incident(tmp_path):
    path = tmp_path / "reports.csv"
    path.write_text('id,title\n"X|Y\nZ",Disk full\nX|Y  Z,Disk full\n')
    result = read_incidents([path])
    assert result.incidents["incident_id"].tolist() == ["X|Y Z"]
    assert result.skipped == []


def test_csv_with_a_10_mb_cell_is_read(tmp_path):
    path = tmp_path / "reports.csv"
    cause = "x" * 10_000_000
    path.write_text(f"id,title,root_cause\nC-1,Big,{cause}\nC-2,Small,y\n")
    frame = read_incidents([path]).incidents
    assert frame["incident_id"].tolist() == ["C-1", "C-2"]
    assert len(frame["root_cause"].iloc[0]) == 10_000_000


def test_csv_cell_over_the_limit_names_the_line_it_starts_on(tmp_path):
    from riskanalytics.ingest._common import CSV_FIELD_LIMIT

    path = tmp_path / "reports.csv"
    path.write_text(f"id,title\nC-1,Small\nC-2,{'x' * (CSV_FIELD_LIMIT + 1)}\n")
    with pytest.raises(InputFormatError, match=r"reports.csv: line 3: not CSV \(field"):
        read_incidents([path])


def test_csv_record_is_named_by_its_first_line(tmp_path):
    path = tmp_path / "reports.csv"
    head = 'id,title,root_cause\nC-1,Disk,"line one\nline two"\n\nC-2,DNS,x,extra\n'
    path.write_text(head)
    result = read_incidents([path])
    assert [s.record for s in result.skipped] == ["line 5"]

    path.write_text(head + 'C-3,"Unclosed,quote\nmore\n')
    with pytest.raises(InputFormatError, match="reports.csv: line 6: not CSV"):
        read_incidents([path])


def test_csv_header_naming_a_column_twice_is_refused(tmp_path):
    path = tmp_path / "reports.csv"
    path.write_text("incident_id,incident_id,title\nA,B,Disk full\n")
    with pytest.raises(
        InputFormatError,
        match="reports.csv: line 1: header names column 'incident_id' twice",
    ):
        read_incidents([path], fmt="csv")


@pytest.mark.parametrize(
    "started",
    [
        "0001-01-01T00:00:00Z",
        "0001-01-01",
        "1800-01-01",
        "9999-12-31",
        "9999-12-31T23:59:59",  # past year 9999 once localized
    ],
)
def test_report_time_outside_1900_to_2200_is_skipped_with_a_warning(
    tmp_path, caplog, started
):
    path = tmp_path / "reports.jsonl"
    rows = [
        {"id": "J-1", "title": "Queue stuck", "started_at": started},
        {"id": "J-2", "title": "Flag flipped", "started_at": "2026-01-02"},
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    with caplog.at_level(logging.WARNING):
        result = read_incidents([path], default_timezone="America/New_York")
    assert result.incidents["incident_id"].tolist() == ["J-2"]
    assert [s.record for s in result.skipped] == ["line 1"]
    assert "reports.jsonl: record line 1: time" in caplog.text
    assert "outside 1900-2200" in caplog.text


def test_front_matter_time_of_year_one_is_skipped_with_a_warning(tmp_path):
    path = tmp_path / "nm.md"
    path.write_text(
        "---\nincident_id: NM-1\ntitle: Near miss\n"
        'started_at: "0001-01-01T00:00:00Z"\n---\nbody\n'
    )
    result = read_incidents([path])
    assert result.incidents.empty
    assert "outside 1900-2200" in result.skipped[0].reason


@pytest.mark.parametrize(
    ("fields", "category"),
    [
        ({"category": "Config Errors"}, "Config Errors"),
        ({"section": "Time"}, "Time"),
        ({"tags": ["dns", " ", "bgp"]}, "dns; bgp"),
        ({"category": "", "tags": "network"}, "network"),
        ({"category": "security", "tags": ["tls", "security"]}, "security; tls"),
        ({"section": "Time", "labels": {"severity": "page"}}, "Time"),
        ({"tags": {"not": "text"}}, None),
        ({}, None),
    ],
)
def test_generic_reports_keep_their_own_category(tmp_path, fields, category):
    path = tmp_path / "reports.jsonl"
    path.write_text(json.dumps({"id": "J-1", "root_cause": "x", **fields}) + "\n")
    value = read_incidents([path]).incidents["category"].iloc[0]
    assert (None if pd.isna(value) else value) == category


# --- back-fill --------------------------------------------------------------------


def test_danluu_entries_exclude_other_lists_and_analysis():
    frame = read("danluu_readme.md").incidents
    assert len(frame) == 190
    assert frame["category"].value_counts()["Config Errors"] == 45
    assert not frame["category"].str.contains("Other lists|Analysis").any()
    assert frame["impact"].isna().all()
    assert frame["started_at"].isna().all()


def test_k8s_failure_stories():
    frame = read("k8s_failure_stories_readme.md").incidents
    assert len(frame) == 50
    row = frame[
        frame["title"] == "The case of the missing packet: An EKS migration tale"
    ]
    assert row.iloc[0]["service"] == "MindTickle"
    assert row.iloc[0]["root_cause"] == "involved: EKS, AWS CNI Plugin"


def test_cloud_incidents_csv_keeps_the_first_of_its_duplicate_id():
    result = read("cloud_incidents_duplicate_id.csv")
    frame = result.incidents.set_index("incident_id")
    assert len(frame) == 355  # 356 rows, azure-20180904-1 twice
    title = frame.loc["cloud-azure-20180904-1", "title"]
    assert title == "South Central US - Preliminary RCA"
    [skipped] = result.skipped
    assert skipped.record == "line 160"
    assert skipped.reason.startswith("incident id cloud-azure-20180904-1 already")
    assert skipped.reason.endswith("cloud_incidents_duplicate_id.csv line 159")
    assert frame.loc["cloud-aws-2", "started_at"] == ts("2011-04-29")
    assert frame.loc["cloud-aws-2", "resolved_at"] == ts("2011-04-29") + pd.Timedelta(
        minutes=1768
    )
    assert frame["resolved_at"].isna().sum() == 2


def test_issre_json_with_spaced_keys_and_mixed_manifestation():
    frame = read("issre_mixed_manifestation.json").incidents.set_index("incident_id")
    assert len(frame) == 14
    row = frame.loc["issre-aws-1"]
    assert row["started_at"] == ts("2011-06-04")
    assert row["resolved_at"] == ts("2011-06-04") + pd.Timedelta(minutes=575)
    assert row["impact"] == "availability; performance"
    assert row["root_cause"].startswith("internal causes/software bugs; external")


# --- linking and ids -------------------------------------------------------------


def test_rollback_and_pagerduty_incident_on_same_service_are_linked(tmp_path):
    body = json.loads((FIXTURES / "pagerduty_v3_triggered.json").read_text())
    body["event"]["data"]["service"]["summary"] = "Checkout"
    body["event"]["occurred_at"] = "2026-04-21T09:25:00Z"
    (tmp_path / "pd.json").write_text(json.dumps(body))
    (tmp_path / "rollback.jsonl").write_text(
        json.dumps(
            {
                "time": "2026-04-21T09:58:30Z",
                "service": "checkout",
                "to_version": "3.1.4",
                "reason": "pool exhausted",
            }
        )
        + "\n"
    )
    frame = read_incidents([tmp_path]).incidents
    assert len(frame) == 1
    row = frame.iloc[0]
    assert row["incident_id"] == "rollback-checkout-20260421T095830"
    assert row["linked_ids"] == "PD-9"
    assert row["trigger"] == "rollback"
    assert row["severity"] == "high"  # filled from the PagerDuty record


def test_alerts_and_the_pagerduty_incident_they_paged_are_linked(tmp_path):
    body = json.loads((FIXTURES / "pagerduty_v3_triggered.json").read_text())
    body["event"]["data"]["service"]["summary"] = "db"
    body["event"]["occurred_at"] = "2026-03-01T10:02:00Z"
    (tmp_path / "pd.json").write_text(json.dumps(body))
    alert = _am_body("2026-03-01T10:00:00Z", "2026-03-01T10:40:00Z", "resolved")
    (tmp_path / "am.json").write_text(json.dumps(alert))
    frame = read_incidents([tmp_path]).incidents
    assert len(frame) == 1
    assert frame.iloc[0]["incident_id"] == "PD-9"
    assert frame.iloc[0]["linked_ids"].startswith("alert-")
    assert frame.iloc[0]["alert_count"] == 1


def test_incidents_far_apart_are_not_linked(tmp_path):
    body = json.loads((FIXTURES / "pagerduty_v3_triggered.json").read_text())
    body["event"]["data"]["service"]["summary"] = "db"
    body["event"]["occurred_at"] = "2026-03-02T10:02:00Z"
    (tmp_path / "pd.json").write_text(json.dumps(body))
    alert = _am_body("2026-03-01T10:00:00Z", "2026-03-01T10:40:00Z", "resolved")
    (tmp_path / "am.json").write_text(json.dumps(alert))
    frame = read_incidents([tmp_path]).incidents
    assert len(frame) == 2
    assert frame["linked_ids"].isna().all()


def test_learning_samples_read_cleanly_and_link_helm_with_rollback_log():
    result = read_incidents([LEARNING])
    frame = result.incidents.set_index("incident_id")
    assert result.skipped == []
    assert len(frame) == 10
    assert frame.loc["rollback-checkout-20260421T095830", "linked_ids"] == (
        "checkout-rev41"
    )
    assert frame["started_at"].dt.year.eq(2026).all()
    assert frame["started_at"].dt.month.nunique() >= 6
    assert frame["near_miss"].sum() == 1


def test_reruns_are_idempotent():
    first = read_incidents([FIXTURES]).incidents
    second = read_incidents([FIXTURES]).incidents
    pd.testing.assert_frame_equal(first, second)


# --- CSV output ----------------------------------------------------------------------


def test_write_incidents_csv_round_trips_through_generic_reader(tmp_path):
    frame = read_incidents([LEARNING]).incidents
    buffer = io.StringIO()
    write_incidents_csv(frame, buffer)
    text = buffer.getvalue()
    assert text.splitlines()[0].startswith(",".join(INCIDENT_COLUMNS))
    assert "2026-01-27T16:44:52Z" in text
    path = tmp_path / "out.csv"
    write_incidents_csv(frame, path)
    again = read_incidents([path]).incidents.set_index("incident_id")
    assert set(again.index) == set(frame["incident_id"])
    original = frame.set_index("incident_id")
    assert (
        again["started_at"] == original.loc[again.index, "started_at"].dt.floor("s")
    ).all()
    assert again.loc["MAN-2026-023", "near_miss"]


# --- helpers -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1502709956288, "2017-08-14T11:25:56.288"),
        (1502709956288000110, "2017-08-14T11:25:56.288000110"),
        ("1502709956", "2017-08-14T11:25:56"),
        ("2021-03-30T20:17:50.814674209+08:00", "2021-03-30T12:17:50.814674209"),
        ("Fri Sep  2 22:04:05 1977", "1977-09-02T22:04:05"),
        ("06/04/2011", "2011-06-04"),
        ("6/4/11 10:05", "2011-06-04T10:05"),  # M/D/YY
        ("12/31/99", "1999-12-31"),
        ("Thu Nov  1 18:33:05 UTC 2018", "2018-11-01T18:33:05"),
        ("March 3 2026 10:00 PST", "2026-03-03T18:00"),
        ("2026/03/03 10:00 CEST", "2026-03-03T08:00"),
    ],
)
def test_parse_time_forms(value, expected):
    assert parse_time(value) == ts(expected)


@pytest.mark.parametrize("value", ["2026/03/03 10:00 B", "2026/03/03 10:00 IST"])
def test_parse_time_refuses_a_zone_name_it_cannot_place(value):
    with pytest.raises(ValueError, match="with a known zone"):
        parse_time(value)


def test_parse_time_empty_year_one_and_garbage():
    assert parse_time("") is None
    with pytest.raises(ValueError, match="outside 1900-2200"):
        parse_time("0001-01-01T00:00:00Z")  # "not ended" only for alert ends
    with pytest.raises(ValueError, match="expected a date and time"):
        parse_time("soonish")


@pytest.mark.parametrize(
    "value", ["2026-03-03T10:00:00+25:00", "2026-03-03T10:00:00-24:30", "2026-02-30"]
)
def test_parse_time_refuses_impossible_iso_times(value):
    with pytest.raises(ValueError, match="expected a date and time"):
        parse_time(value)


@pytest.mark.parametrize(
    ("text", "minutes"),
    [
        ("2d 1h 29m", 2 * 1440 + 89),
        ("0h 07m", 7),
        ("9h 16m (during support hours 10:00-17:00)", 556),
        ("45", 45),
    ],
)
def test_parse_duration(text, minutes):
    assert parse_duration(text) == pd.Timedelta(minutes=minutes)


def test_parse_duration_placeholder_is_none():
    assert parse_duration("Xh Xm") is None


def test_bad_default_timezone_raises():
    with pytest.raises(InputFormatError, match="default_timezone"):
        read_incidents(
            [FIXTURES / "grafana_unified.json"], default_timezone="Mars/Base"
        )


def test_large_alert_file_read_in_processes_matches_one_process(
    tmp_path, monkeypatch, caplog
):
    from riskanalytics.ingest import alerts

    path = tmp_path / "am.jsonl"
    lines = []
    for day in range(1, 21):
        for minute in (0, 20, 200):
            starts = f"2026-03-{day:02d}T10:{minute % 60:02d}:00Z"
            body = _am_body(starts, f"2026-03-{day:02d}T11:30:00Z", "resolved")
            body["alerts"][0]["labels"]["service"] = f"db{day % 3}"
            lines.append(json.dumps(body))
    lines.insert(7, "{not json")
    path.write_text("\n".join(lines) + "\n")
    single = read_incidents([path])
    monkeypatch.setattr(alerts, "PARALLEL_BYTES", path.stat().st_size // 2)
    with caplog.at_level(logging.INFO):
        parallel = read_incidents([path])
    assert any("2 processes" in r.getMessage() for r in caplog.records)
    pd.testing.assert_frame_equal(single.incidents, parallel.incidents)
    assert [s.record for s in parallel.skipped] == ["line 8"]
    assert [s.record for s in single.skipped] == ["line 8"]


def test_alert_time_without_zone_uses_default_zone(tmp_path):
    path = tmp_path / "am.json"
    body = _am_body("2026-03-01T10:00:00", "2026-03-01T10:30:00+01:00", "resolved")
    path.write_text(json.dumps(body))
    row = read_incidents([path], default_timezone="Europe/Berlin").incidents.iloc[0]
    assert row["started_at"] == ts("2026-03-01T09:00")
    assert row["resolved_at"] == ts("2026-03-01T09:30")


def test_alert_with_unreadable_start_is_skipped_and_strict_raises(tmp_path):
    path = tmp_path / "am.json"
    body = _am_body("2026-03-01T10:00:00Z", "2026-03-01T10:30:00Z", "resolved")
    body["alerts"].append(dict(body["alerts"][0], startsAt="last tuesday"))
    path.write_text(json.dumps(body))
    result = read_incidents([path])
    assert len(result.incidents) == 1
    assert [s.record for s in result.skipped] == ["document alerts[1]"]
    with pytest.raises(InputFormatError, match=r"am.json: record document alerts\[1\]"):
        read_incidents([path], strict=True)


def test_alertmanager_status_of_a_number_then_text_is_read_not_a_crash(tmp_path):
    # found by the property tests: "status": 0 on the first alert, text after it
    body = json.loads(
        (
            FIXTURES / "alertmanager_firing_and_resolved_shared_fingerprint.json"
        ).read_text()
    )
    assert len(body["alerts"]) > 1
    body["alerts"][0]["status"] = 0
    path = tmp_path / "webhook.json"
    path.write_text(json.dumps(body))
    try:
        read_incidents([path])
    except InputFormatError:
        pass  # refusing it by name is as good as reading it


def test_a_local_time_the_clocks_skipped_is_read_as_the_change_with_a_warning(caplog):
    from zoneinfo import ZoneInfo

    from riskanalytics.ingest._common import parse_time

    berlin = ZoneInfo("Europe/Berlin")
    with caplog.at_level(logging.WARNING):
        assert parse_time("2026-03-29 02:30", berlin) == ts("2026-03-29T01:00:00")
    assert "2026-03-29 02:30:00 does not exist in Europe/Berlin" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        assert parse_time("2026-03-29 03:30", berlin) == ts("2026-03-29T01:30:00")
    assert caplog.text == ""


def test_a_ticket_export_in_its_own_column_names_is_read(tmp_path):
    path = tmp_path / "export.csv"
    path.write_text(
        "Number,Short description,Cause,Customer impact,Created,Opened,Closed,"
        "Priority,Configuration item,Resolution,Name\n"
        "INC0010402,Checkout errors,A bad config push,Payments failed,"
        "2026-03-01 09:00,2026-03-02 10:00,2026-03-02 11:30,P4,checkout,Rolled back,"
        "Alice Smith\n",
        encoding="utf-8",
    )
    row = read_incidents([path], default_timezone="UTC").incidents.iloc[0]
    assert row["incident_id"] == "INC0010402"  # "Name" is no title
    assert (row["title"], row["root_cause"]) == ("Checkout errors", "A bad config push")
    assert (row["impact"], row["severity"]) == ("Payments failed", "P4")
    assert (row["service"], row["recovery_actions"]) == ("checkout", "Rolled back")
    assert row["started_at"] == ts("2026-03-02T10:00:00")  # "opened" before "created"
    assert row["resolved_at"] == ts("2026-03-02T11:30:00")
