"""Property tests: damaged JSON never crashes a reader with anything but
InputFormatError, and non-strict reads always return the contract table."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from riskanalytics.exceptions import InputFormatError
from riskanalytics.ingest import FORMATS, read_incidents
from riskanalytics.schema import INCIDENT_COLUMNS

FIXTURES = Path(__file__).parent / "fixtures" / "ingest"

#: One real JSON fixture per JSON reader.
JSON_READERS = {
    "pagerduty": "pagerduty_v2_messages_trigger.json",
    "opsgenie": "opsgenie_create_ms_and_ns_times.json",
    "alertmanager": "alertmanager_firing_and_resolved_shared_fingerprint.json",
    "grafana": "grafana_unified.json",
    "grafana-legacy": "grafana_legacy_no_times.json",
    "github-deployment": "github_deployment_status_failure.json",
    "helm": "helm_history_with_rollback.json",
    "issre": "issre_mixed_manifestation.json",
    "json": None,
    "jsonl": None,
    "rollback-log": None,
}
_GENERIC = {"incident_id": "X-1", "title": "Cache down", "started_at": "2026-01-02"}
_ROLLBACK = {"time": "2026-01-02T03:04:05Z", "service": "api", "reason": "bug"}

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False)
    | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)


def _document(fmt: str) -> Any:
    name = JSON_READERS[fmt]
    if name is None:
        return _GENERIC if fmt in ("json", "jsonl") else _ROLLBACK
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


def _paths(value: Any, prefix: tuple = ()) -> list[tuple]:
    paths = [prefix]
    if isinstance(value, dict):
        for key, item in value.items():
            paths += _paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            paths += _paths(item, (*prefix, index))
    return paths


def _replace(value: Any, path: tuple, new: Any) -> Any:
    if not path:
        return new
    head, rest = path[0], path[1:]
    copy = list(value) if isinstance(value, list) else dict(value)
    copy[head] = _replace(value[head], rest, new)
    return copy


def _read(fmt: str, text: str) -> None:
    suffix = ".jsonl" if fmt in ("jsonl", "rollback-log") else ".json"
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"input{suffix}"
        path.write_text(text, encoding="utf-8")
        try:
            result = read_incidents([path], fmt=fmt)
        except InputFormatError as exc:
            assert str(path) in str(exc) or "input" in str(exc)
            return
        assert list(result.incidents.columns)[: len(INCIDENT_COLUMNS)] == (
            INCIDENT_COLUMNS
        )


SETTINGS = settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


@pytest.mark.parametrize("fmt", sorted(JSON_READERS))
@SETTINGS
@given(data=st.data())
def test_mistyped_json_only_raises_input_format_error(fmt, data):
    document = _document(fmt)
    path = data.draw(st.sampled_from(_paths(document)), label="path")
    new = data.draw(json_values, label="new value")
    damaged = _replace(document, path, new)
    text = json.dumps(damaged)
    if fmt in ("jsonl", "rollback-log"):
        text = text + "\n" + json.dumps(document) + "\n"
    _read(fmt, text)


@pytest.mark.parametrize("fmt", sorted(JSON_READERS))
@SETTINGS
@given(data=st.data())
def test_truncated_json_only_raises_input_format_error(fmt, data):
    text = json.dumps(_document(fmt), indent=1)
    if fmt in ("jsonl", "rollback-log"):
        text = json.dumps(_document(fmt)) + "\n" + json.dumps(_document(fmt))
    cut = data.draw(st.integers(min_value=0, max_value=len(text)), label="cut")
    _read(fmt, text[:cut])


#: One real text fixture per reader of text, YAML and CSV files.
TEXT_READERS = {
    "argo-rollouts": "argo_rollout_aborted/rollout.yaml",
    "cloud-incidents": "cloud_incidents_duplicate_id.csv",
    "danluu": "danluu_readme.md",
    "helm": "helm_history_with_rollback.txt",
    "k8s-failure-stories": "k8s_failure_stories_readme.md",
    "kubectl": "kubectl_history_in_markdown_note.md",
    "postmortem": "moj_incident_log_many_sections.md.erb",
    "postmortem-frontmatter": (
        "icco_frontmatter/00b7f759-21f8-4767-8803-f09d863005cd.md"
    ),
    "csv": None,
    "rollback-log": None,
}
_CSV = (
    "incident_id,title,started_at,resolved_at,root_cause,service\n"
    "X-1,Cache down,2026-01-02 10:00,2026-01-02 11:00,eviction storm,cache\n"
    "X-2,Disk full,1/3/26,2d 1h 29m,logs,db\n"
)
_ROLLBACK_TEXT = (
    "time=2026-01-02T03:04:05Z service=api from_version=1.2 to_version=1.1 "
    'reason="bad deploy"\n'
    "time=2026-01-03T03:04:05 service=web from_version=2 to_version=1 reason=bug\n"
)
# Pieces people and tools put in these files: table cells, bold labels, dates,
# durations, YAML and front matter markers, numbers of any size.
_PIECES = st.sampled_from(
    [
        "|",
        " | ",
        "**",
        "- ",
        "* ",
        "#",
        "### Incident on ",
        "---\n",
        ": ",
        "\t",
        "\n",
        ",",
        '"',
        "2026-02-30",
        "0001-01-01T00:00:00Z",
        "13/45/20",
        "99d 99h 99m",
        "REVISION",
        "1" * 25,
        "-1",
        "{",
        "[",
        "]",
        "(",
        "null",
        "\ufeff",
        "é",
    ]
)
_JUNK = st.lists(_PIECES | st.text(max_size=6), min_size=1, max_size=6).map("".join)


def _text_document(fmt: str) -> str:
    name = TEXT_READERS[fmt]
    if name is None:
        return _CSV if fmt == "csv" else _ROLLBACK_TEXT
    return (FIXTURES / name).read_text(encoding="utf-8")


def _read_text(fmt: str, name: str, text: str) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / Path(name).name
        path.write_text(text, encoding="utf-8")
        try:
            result = read_incidents([path], fmt=fmt)
        except InputFormatError as exc:
            assert str(path) in str(exc) or path.name in str(exc)
            return
        assert list(result.incidents.columns)[: len(INCIDENT_COLUMNS)] == (
            INCIDENT_COLUMNS
        )


@pytest.mark.parametrize("fmt", sorted(TEXT_READERS))
@SETTINGS
@given(data=st.data())
def test_damaged_text_only_raises_input_format_error(fmt, data):
    text = _text_document(fmt)
    name = TEXT_READERS[fmt] or ("reports.csv" if fmt == "csv" else "rollbacks.log")
    lines = text.splitlines(keepends=True)
    for _ in range(data.draw(st.integers(1, 4), label="edits")):
        if not lines:
            lines = [""]
        where = data.draw(st.integers(0, len(lines) - 1), label="line")
        edit = data.draw(
            st.sampled_from(["cut", "insert", "replace", "delete", "repeat"]),
            label="edit",
        )
        line = lines[where]
        column = data.draw(st.integers(0, len(line)), label="column")
        if edit == "cut":
            lines = lines[:where] + [line[:column]]
        elif edit == "insert":
            lines[where] = (
                line[:column] + data.draw(_JUNK, label="junk") + line[column:]
            )
        elif edit == "replace":
            lines[where] = data.draw(_JUNK, label="junk") + "\n"
        elif edit == "delete":
            del lines[where]
        else:
            lines.insert(where, line)
    _read_text(fmt, name, "".join(lines))


def test_every_reader_has_a_property_test():
    assert set(JSON_READERS) | set(TEXT_READERS) == set(FORMATS)
