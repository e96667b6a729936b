"""Public postmortem collections, for back-filling history.

danluu/post-mortems README (``danluu``)
    Every ``[Company](url). summary`` paragraph under a category heading is an
    incident (``Other lists of postmortems``, ``Analysis`` and
    ``Contributors`` are not). The heading is the ``category``, the
    paragraph the root cause. No times.
    Id ``danluu-<hash of url and text>``.
kubernetes-failure-stories README (``k8s-failure-stories``)
    Each top-level ``* [Title - Org - medium year](url)`` with ``involved:``
    and ``impact:`` sub-bullets. Id ``k8s-<hash of url>``.
cloud_incidents.csv (``cloud-incidents``)
    Its own columns; ``date`` starts the incident, ``duration_minutes`` ends
    it. Id ``cloud-<the file's id>`` (``cloud-aws-2``).
ISSRE'22 anomaly collection JSON (``issre``)
    An object keyed by incident id; ``time`` is ``MM/DD/YYYY``, ``duration``
    minutes; keys contain spaces and ``manifestation`` mixes strings and
    objects. Id ``issre-<key>`` (``issre-aws-1``).
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

import pandas as pd
from tqdm import tqdm

from riskanalytics.exceptions import InputFormatError
from riskanalytics.ingest._common import (
    ReadContext,
    RecordError,
    iter_csv_rows,
    load_json,
    parse_time,
    read_text,
    stable_hash,
    text_or_none,
)

__all__ = [
    "read_cloud_incidents",
    "read_danluu",
    "read_issre",
    "read_k8s_failure_stories",
]

log = logging.getLogger(__name__)

_NOT_INCIDENTS = {
    "other lists of postmortems",
    "analysis",
    "contributors",
    "table of contents",
}
_ENTRY = re.compile(r"^\[([^\]]+)\]\(([^)\s]+)\)\.?\s*(.*)$", re.DOTALL)
_RECORD_ERRORS = (RecordError, KeyError, TypeError, ValueError, AttributeError)


def _progress(items, path: Path, unit: str):
    """Wrap a loop in a progress bar (stderr) when the file is large (> 5 MB)."""
    large = path.stat().st_size > 5_000_000
    return tqdm(items, desc=path.name, unit=unit, disable=not large, leave=False)


def read_danluu(path: Path, ctx: ReadContext) -> list[dict[str, Any]]:
    """Read the danluu/post-mortems README list into incidents without times."""
    text = read_text(path)
    records = []
    section: str | None = None
    line_no = 0
    for block in re.split(r"\n\s*\n", text):
        start_line = line_no + 1
        line_no += block.count("\n") + 2
        stripped = block.strip()
        heading = re.match(r"^##\s+(.*)$", stripped)
        if heading:
            section = heading.group(1).strip()
            continue
        if section is None or section.lower() in _NOT_INCIDENTS:
            continue
        entry = _ENTRY.match(stripped)
        if not entry:
            continue
        company, url, summary = entry.groups()
        summary = " ".join(summary.split())
        if not summary:
            ctx.skip(path, f"line {start_line}", "entry has no summary text")
            continue
        sentence = re.split(r"(?<=[.!?])\s", summary, maxsplit=1)[0]
        records.append(
            {
                "incident_id": f"danluu-{stable_hash(url, summary)}",
                "source": "danluu",
                "title": f"{company}: {sentence}"[:200],
                "root_cause": summary,
                "category": section,
                "service": company,
                "recovery_actions": url,
                "trigger": "manual",
                "_record": f"block at line {start_line}",
            }
        )
    return records


_STORY = re.compile(r"^\*\s+\[(.+)\]\((\S+)\)\s*$")
_SUB = re.compile(r"^\s+\*\s+(involved|impact):\s*(.*)$", re.IGNORECASE)


def read_k8s_failure_stories(path: Path, ctx: ReadContext) -> list[dict[str, Any]]:
    """Read the kubernetes-failure-stories README bullet list."""
    text = read_text(path)
    records: list[dict[str, Any]] = []
    current: dict[str, Any] | None = None
    for number, line in enumerate(text.splitlines(), start=1):
        story = _STORY.match(line)
        if story:
            title, url = story.groups()
            parts = [p.strip() for p in title.split(" - ")]
            current = {
                "incident_id": f"k8s-{stable_hash(url)}",
                "source": "k8s-failure-stories",
                "title": parts[0],
                "service": parts[1] if len(parts) > 2 else None,
                "recovery_actions": url,
                "trigger": "manual",
                "_record": f"line {number}",
            }
            records.append(current)
            continue
        sub = _SUB.match(line)
        if sub and current is not None:
            key = "root_cause" if sub.group(1).lower() == "involved" else "impact"
            value = sub.group(2).strip().rstrip(",")
            current[key] = f"involved: {value}" if key == "root_cause" else value
        elif line.startswith("#") and current is not None:
            current = None
    return records


def read_cloud_incidents(path: Path, ctx: ReadContext) -> list[dict[str, Any]]:
    """Read cloud_incidents.csv (provider postmortems with layered root causes)."""
    records = []
    with path.open(encoding="utf-8-sig", newline="") as handle:
        rows = iter_csv_rows(path, handle)
        try:
            _, header = next(rows, (1, []))
            for line, cells in _progress(rows, path, "incident"):
                where = f"line {line}"
                try:
                    row = dict(zip(header, cells, strict=False))
                    records.append(_cloud_row(row, ctx, where))
                except _RECORD_ERRORS as exc:
                    ctx.skip(path, where, exc)
        except UnicodeDecodeError as exc:
            raise InputFormatError(f"{path}: not a readable CSV ({exc})") from None
    return records


def _cloud_row(row: dict, ctx: ReadContext, where: str) -> dict[str, Any]:
    key = text_or_none(row.get("id"))
    if key is None:
        raise RecordError("expected an 'id'")
    started = parse_time(row.get("date"), ctx.tz)
    minutes = text_or_none(row.get("duration_minutes"))
    resolved = (
        started + pd.Timedelta(minutes=float(minutes)) if started and minutes else None
    )
    layers = [
        text_or_none(row.get("root_cause_l1")),
        text_or_none(row.get("root_cause_l2")),
    ]
    cause = " / ".join(layer for layer in layers if layer)
    summary = text_or_none(row.get("summary"))
    return {
        "incident_id": f"cloud-{key}",
        "source": "cloud-incidents",
        "title": text_or_none(row.get("title")),
        "root_cause": f"{cause}: {summary}" if cause and summary else cause or summary,
        "impact": text_or_none(row.get("impact_symptoms")),
        "started_at": started,
        "resolved_at": resolved,
        "service": " ".join(p for p in (text_or_none(row.get("provider")),) if p)
        or None,
        "recovery_actions": text_or_none(row.get("mitigation_actions")),
        "trigger": "resolved" if resolved is not None else "manual",
        "_record": where,
    }


def read_issre(path: Path, ctx: ReadContext) -> list[dict[str, Any]]:
    """Read an ISSRE'22 anomaly collection JSON (object keyed by incident id)."""
    data = load_json(path)
    if not isinstance(data, dict):
        raise InputFormatError(
            f"{path}: expected an object keyed by incident id, found "
            f"{type(data).__name__}"
        )
    records = []
    for key, value in _progress(data.items(), path, "incident"):
        try:
            records.append(_issre_item(str(key), value, ctx))
        except _RECORD_ERRORS as exc:
            ctx.skip(path, key, exc)
    return records


def _labels(value: Any) -> list[str]:
    """Flatten strings, lists and objects of strings into a list of text."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [text for item in value for text in _labels(item)]
    if isinstance(value, dict):
        return [text for item in value.values() for text in _labels(item)]
    return []


def _issre_item(key: str, item: Any, ctx: ReadContext) -> dict[str, Any]:
    if not isinstance(item, dict):
        raise RecordError(f"expected an object, found {type(item).__name__}")
    started = parse_time(item.get("time"), ctx.tz)
    duration = item.get("duration")
    resolved = None
    if (
        started is not None
        and isinstance(duration, int | float)
        and not isinstance(duration, bool)
    ):
        resolved = started + pd.Timedelta(minutes=float(duration))
    cause = item.get("root cause") if isinstance(item.get("root cause"), dict) else {}
    labels = [
        "/".join(str(v) for v in label.values())
        for label in cause.get("label") or []
        if isinstance(label, dict)
    ]
    details = text_or_none(cause.get("details"))
    mitigation = (
        item.get("mitigation") if isinstance(item.get("mitigation"), dict) else {}
    )
    root = "; ".join(labels)
    if details:
        root = f"{root}: {details}" if root else details
    return {
        "incident_id": f"issre-{key}",
        "source": "issre",
        "title": text_or_none(item.get("title")),
        "root_cause": root or text_or_none(item.get("summary")),
        "impact": text_or_none(_labels(item.get("impact symptom"))),
        "started_at": started,
        "resolved_at": resolved,
        "service": text_or_none(_labels(item.get("service_name"))[:3]),
        "recovery_actions": text_or_none(
            mitigation.get("details") or _labels(mitigation.get("label"))
        ),
        "trigger": "resolved" if resolved is not None else "manual",
        "_record": key,
    }
