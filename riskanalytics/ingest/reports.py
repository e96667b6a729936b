"""Written reports: Markdown postmortems and generic CSV / JSON lines forms.

MoJ-style postmortems
    ``# / ## / ### Incident on YYYY-MM-DD[ HH:MM] - title`` sections with bold
    bullet labels. ``Key events`` gives the times (``First detected``,
    ``Fault occurs``, ``Incident declared``, ``Repaired``, ``Resolved``; ``:``
    optional, ``HH.MM`` accepted); ``Time to resolve`` (``2d 1h 29m``) fills a
    missing resolution. ``Resolution`` is the root cause, ``Review actions``
    the recovery actions, ``Impact`` the impact; optional ``Service`` and
    ``Severity`` bullets are read too. Times without a zone are in the
    default zone (the MoJ log itself uses London time). Ids are
    ``moj-YYYY-MM-DD-<slug of title>``. The ``Template`` section is ignored.
Front-matter postmortems (icco/postmortems)
    YAML front matter with ``uuid``, ``title``, ``start_time``, ``end_time``,
    ``company``, ``product``, ``summary``, ``categories`` and ``keywords``
    (the ``category``); id ``pm-<uuid>``.
Generic CSV / JSON lines (contract)
    Any subset of the incident columns beyond ``incident_id`` (or ``id``) and
    one of ``title``/``root_cause``. A true ``near_miss`` or a ``trigger`` of
    ``near-miss`` marks a near miss (both are then set). The report's own
    classification is its ``category`` (or ``categories``, ``section``), then
    its ``tags`` (or ``labels``, ``keywords``), joined with ``; ``.
"""

from __future__ import annotations

import io
import logging
import re
from pathlib import Path
from typing import Any

import frontmatter
import yaml

from riskanalytics.exceptions import InputFormatError
from riskanalytics.ingest._common import (
    ReadContext,
    RecordError,
    canonical_report,
    first,
    iter_csv_rows,
    parse_duration,
    parse_time,
    read_json_records,
    read_text,
    slug,
    text_or_none,
)
from riskanalytics.schema import INCIDENT_COLUMNS, INCIDENT_EXTRA_COLUMNS

__all__ = [
    "read_csv_reports",
    "read_frontmatter_postmortem",
    "read_jsonl_reports",
    "read_moj_postmortems",
]

log = logging.getLogger(__name__)

_HEADING = re.compile(r"^(#{1,3})\s+Incident on\s+(.*?)\s*$", re.MULTILINE)
_ANY_HEADING = re.compile(r"^#{1,3}\s+\S", re.MULTILINE)
_STAMP = re.compile(
    r"(?<!\d)(\d{4})-(\d{2})-(\d{2})(?:[ T](\d{1,2})[:.](\d{2}))?(?!\d)"
)
_LABEL = re.compile(r"^\s*[-*]\s+\*\*(.+?)\*\*:?\s*(.*)$")
_EVENT = re.compile(
    r"^\s*[-*]\s+(First detected|Fault occurs|Fault detected|Team aware|"
    r"Incident declared|Repaired(?: declared)?|Resolved)\b:?\s*(.*)$",
    re.IGNORECASE,
)
_START_EVENTS = ("fault occurs", "first detected", "fault detected", "team aware")


def read_moj_postmortems(path: Path, ctx: ReadContext) -> list[dict[str, Any]]:
    """Read every ``Incident on ...`` section of a MoJ-style Markdown postmortem.

    Parameters
    ----------
    path
        An incident log (many sections) or one incident page.
    ctx
        Read options; the default zone applies to the log's local times.

    Returns
    -------
    list of dict
        One incident dict per section.
    """
    text = read_text(path)
    template_at = text.find("## Template")
    headings = list(_HEADING.finditer(text))
    records: list[dict[str, Any]] = []
    seen: dict[str, int] = {}
    for heading in headings:
        if 0 <= template_at < heading.start():
            continue
        line = text.count("\n", 0, heading.start()) + 1
        following = _ANY_HEADING.search(text, heading.end())
        body = text[heading.end() : following.start() if following else len(text)]
        try:
            record = _moj_section(heading.group(2), body, ctx, f"{path}:{line}")
        except (RecordError, ValueError) as exc:
            ctx.skip(path, f"line {line}", exc)
            continue
        count = seen.get(record["incident_id"], 0) + 1
        seen[record["incident_id"]] = count
        if count > 1:
            record["incident_id"] += f"-{count}"
        record["_record"] = f"line {line}"
        records.append(record)
    return records


def _moj_fields(body: str) -> tuple[dict[str, str], dict[str, str]]:
    fields: dict[str, list[str]] = {}
    events: dict[str, str] = {}
    current: str | None = None
    for raw in body.splitlines():
        event = _EVENT.match(raw)
        if event and current == "key events":
            name = event.group(1).lower().replace(" declared", "")
            if name == "incident":
                name = "incident declared"
            events.setdefault(name, event.group(2))
            continue
        label = _LABEL.match(raw)
        if label and not raw.startswith("    "):
            current = label.group(1).strip().rstrip(":").lower()
            fields[current] = [label.group(2).strip()]
        elif current is not None and raw.strip():
            fields[current].append(raw.strip().lstrip("-* ").strip())
    joined = {
        k: "\n".join(v for v in values if v).strip() for k, values in fields.items()
    }
    return joined, events


def _stamp(text: str | None, ctx: ReadContext):
    match = _STAMP.search(text or "")
    if not match:
        return None
    year, month, day, hour, minute = match.groups()
    value = f"{year}-{month}-{day} {hour or '00'}:{minute or '00'}"
    return parse_time(value, ctx.tz)


def _moj_section(
    heading: str, body: str, ctx: ReadContext, where: str = ""
) -> dict[str, Any]:
    date = _STAMP.search(heading)
    if not date:
        raise RecordError(f"expected 'Incident on YYYY-MM-DD', found {heading!r}")
    title = heading[date.end() :].strip()
    title = re.sub(r"^(UTC\b)?\s*[-:]?\s*", "", title).strip() or None
    fields, events = _moj_fields(body)

    times = {name: _stamp(value, ctx) for name, value in events.items()}
    for name, value in events.items():
        if times[name] is None and re.search(r"\d{4}", value or ""):
            log.warning(
                "%s: %s: %r is no YYYY-MM-DD date (a typo in the year?); that "
                "time is not used",
                where,
                name,
                value.strip(),
            )
    starts = [times[n] for n in _START_EVENTS if times.get(n) is not None]
    started = min(starts) if starts else times.get("incident declared")
    if started is None:
        started = _stamp(heading, ctx)
    resolved = times.get("resolved") or times.get("repaired")
    resolve_span = parse_duration(fields.get("time to resolve"))
    if resolved is None and started is not None and resolve_span is not None:
        resolved = started + resolve_span
    if resolved is None:
        resolved = _stamp(fields.get("status"), ctx)

    identified = text_or_none(fields.get("identified"))
    title = title or (identified.splitlines()[0] if identified else None)
    day = "-".join(date.groups()[:3])
    return {
        "incident_id": f"moj-{day}-{slug(title)}",
        "source": "postmortem",
        "title": title,
        "root_cause": text_or_none(fields.get("resolution")),
        "impact": text_or_none(fields.get("impact")),
        "started_at": started,
        "resolved_at": resolved,
        "severity": text_or_none(fields.get("severity")),
        "service": text_or_none(fields.get("service")),
        "recovery_actions": text_or_none(fields.get("review actions")),
        "trigger": "resolved" if resolved is not None else "manual",
        "near_miss": "near miss" in (title or "").lower(),
    }


def _frontmatter_report(path: Path, meta: dict, body: str, ctx: ReadContext) -> list:
    """A manual or near-miss report: the generic columns as YAML front matter.

    The Markdown body below the front matter is the root cause when the front
    matter gives none.
    """
    row = dict(meta)
    if not text_or_none(row.get("root_cause")) and body.strip():
        row["root_cause"] = body.strip()[:4000]
    row.setdefault("root_cause", None)
    try:
        record = generic_record(row, "report", ctx)
    except (RecordError, ValueError) as exc:
        ctx.skip(path, "front matter", exc)
        return []
    return [record]


def read_frontmatter_postmortem(path: Path, ctx: ReadContext) -> list[dict[str, Any]]:
    """Read a postmortem with YAML front matter (icco/postmortems style).

    Returns
    -------
    list of dict
        One incident dict.
    """
    text = read_text(path)
    try:
        post = frontmatter.loads(text)
    except yaml.YAMLError as exc:
        raise InputFormatError(
            f"{path}: front matter is not valid YAML: {exc}"
        ) from None
    meta = post.metadata
    if "incident_id" in meta or ("id" in meta and "uuid" not in meta):
        return _frontmatter_report(path, meta, post.content, ctx)
    key = text_or_none(first(meta.get("uuid"), meta.get("id")))
    if key is None:
        ctx.skip(path, "front matter", "expected a 'uuid' or 'id' key")
        return []
    try:
        started = parse_time(meta.get("start_time"), ctx.tz)
        resolved = parse_time(meta.get("end_time"), ctx.tz)
    except ValueError as exc:
        ctx.skip(path, "front matter", exc)
        return []
    company = text_or_none(meta.get("company"))
    product = text_or_none(meta.get("product"))
    return [
        {
            "incident_id": f"pm-{key}",
            "source": "postmortem",
            "title": text_or_none(meta.get("title")),
            "root_cause": text_or_none(meta.get("summary"))
            or text_or_none(post.content[:2000]),
            "impact": None,
            # its broad categories, then the keywords that say more
            "category": _category(meta),
            "started_at": started,
            "resolved_at": resolved,
            "service": " ".join(p for p in (company, product) if p) or None,
            "trigger": "resolved" if resolved is not None else "manual",
        }
    ]


# --- generic forms -------------------------------------------------------------

_KNOWN = set(INCIDENT_COLUMNS) | set(INCIDENT_EXTRA_COLUMNS)
_TRUE = {"true", "yes", "y", "1", "1.0", "x"}
_FALSE = {"", "false", "no", "n", "0", "0.0", "nan", "none", "null", "-"}


def generic_record(row: dict[str, Any], source: str, ctx: ReadContext) -> dict:
    """One manual report (CSV row or JSON object) as an incident dict."""
    if not isinstance(row, dict):
        raise RecordError(f"expected an object, found {type(row).__name__}")
    row = canonical_report(row)
    incident_id = text_or_none(row.get("incident_id"))
    if incident_id is None:
        raise RecordError(
            "expected an 'incident_id' (or 'id', 'number', 'ticket', ...)"
        )
    if "title" not in row and "root_cause" not in row:
        raise RecordError("expected a 'title' or a 'root_cause'")
    if (
        text_or_none(row.get("title")) is None
        and text_or_none(row.get("root_cause")) is None
    ):
        log.warning(
            "Incident %s has no title and no root cause: it cannot be matched",
            incident_id,
        )
    record: dict[str, Any] = {k: v for k, v in row.items() if k in _KNOWN}
    for key in ("title", "root_cause", "impact", "severity", "service"):
        record[key] = text_or_none(row.get(key))
    record["recovery_actions"] = text_or_none(row.get("recovery_actions"))
    record["category"] = _category(row)
    record["incident_id"] = incident_id
    record["source"] = text_or_none(row.get("source")) or source
    record["started_at"] = parse_time(row.get("started_at"), ctx.tz)
    record["resolved_at"] = parse_time(row.get("resolved_at"), ctx.tz)
    near = row.get("near_miss")
    near_text = "" if near is None or near is False else str(near).strip().lower()
    if near_text not in _TRUE | _FALSE:
        raise RecordError(f"near_miss {near!r} is neither true nor false")
    near_miss = near is True or near_text in _TRUE
    trigger = text_or_none(row.get("trigger"))
    trigger = trigger.lower() if trigger else None
    if trigger == "near-miss" or trigger == "near_miss":
        near_miss, trigger = True, "near-miss"
    if near_miss and trigger is None:
        trigger = "near-miss"
    record["near_miss"] = near_miss
    record["trigger"] = trigger or "manual"
    for key in ("source_file", "source_record", "alert_count", "linked_ids"):
        record.pop(key, None)
    return record


#: Keys of a report that classify it: its one label (the first present), then
#: its tags.
_LABEL_KEYS = ("category", "categories", "section")
_TAG_KEYS = ("tags", "labels", "keywords")


def _category(row: dict[str, Any]) -> str | None:
    """The report's own classification: its label, then its tags, ``; ``-joined."""
    label = next(
        (text for key in _LABEL_KEYS if (text := text_or_none(row.get(key)))), None
    )
    parts = [label] if label else []
    for key in _TAG_KEYS:
        value = row.get(key)
        if isinstance(value, dict):  # Alertmanager-style labels name no category
            continue
        if text := text_or_none(value):
            parts += [p.strip() for p in text.split(";")]
    unique = list(dict.fromkeys(p for p in parts if p))
    return "; ".join(unique) or None


def read_csv_reports(path: Path, ctx: ReadContext) -> list[dict[str, Any]]:
    """Read a CSV of manual or near-miss reports (the generic contract format).

    A record is named by the line it starts on; a header naming a column twice
    is refused.
    """
    text = read_text(path)
    rows = iter_csv_rows(path, io.StringIO(text), strict=True)
    header_line, header = next(rows, (1, []))
    _check_header(path, header_line, header)

    records = []
    for line, row in rows:
        where = f"line {line}"
        if len(row) > len(header):
            ctx.skip(path, where, f"more cells than the {len(header)} header columns")
            continue
        if len(row) < len(header):
            ctx.skip(
                path,
                where,
                f"{len(row)} cells, fewer than the {len(header)} header columns",
            )
            continue
        try:
            record = generic_record(dict(zip(header, row, strict=True)), "csv", ctx)
        except (RecordError, ValueError) as exc:
            ctx.skip(path, where, exc)
            continue
        record["_record"] = where
        records.append(record)
    return records


def _check_header(path: Path, line: int, header: list[str]) -> None:
    """Refuse a header that names a column twice (as the reader would key it)."""
    seen: dict[str, str] = {}
    for name in header:
        key = name.strip().lower().replace(" ", "_")
        if key in seen:
            repeated = repr(name) if name == seen[key] else f"{seen[key]!r}/{name!r}"
            raise InputFormatError(
                f"{path}: line {line}: header names column {repeated} twice; "
                "expected each column once"
            )
        seen[key] = name


def read_jsonl_reports(path: Path, ctx: ReadContext) -> list[dict[str, Any]]:
    """Read JSON lines (or a JSON list) of manual reports, the generic format."""
    records = []
    for label, value in read_json_records(path, ctx):
        items = (
            [(f"[{i}]", v) for i, v in enumerate(value)]
            if isinstance(value, list) and label == "document"
            else [(label, value)]
        )
        for where, item in items:
            try:
                record = generic_record(item, "jsonl", ctx)
            except (RecordError, ValueError, TypeError) as exc:
                ctx.skip(path, where, exc)
                continue
            record["_record"] = where
            records.append(record)
    return records
