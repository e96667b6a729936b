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
from riskanalytics.ingest import read_incidents
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
        return _GENERIC if fmt == "jsonl" else _ROLLBACK
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
