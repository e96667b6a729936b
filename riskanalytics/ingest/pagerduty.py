"""PagerDuty: webhook v3 events, legacy v2 ``messages``, REST v2 incidents and
log entries, and Analytics raw incidents.

One incident per PagerDuty incident, id ``PD-<number>`` (or ``PD-<id>`` when the
payload has no number). Several events of one incident (triggered, then
resolved) become one row when the files are merged: the earliest start and the
latest resolution win. A log entries export (``{"log_entries": [...]}``) gives
one row per incident it names, with its start (``trigger_log_entry``), its
resolution (``resolve_log_entry``) and its notes; the number in the incident
reference's summary (``[#1234] ...``) makes it merge with the same incident
read from an incidents export.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from riskanalytics.ingest._common import (
    ReadContext,
    RecordError,
    first,
    parse_time,
    read_json_records,
    text_or_none,
)

__all__ = ["read_pagerduty"]

log = logging.getLogger(__name__)

_RESOLVED = {"resolved", "incident.resolved", "incident.resolve"}
_NUMBERED = re.compile(r"^\[#(\d+)\]\s*(.*)$", re.S)
#: Keys only an Analytics raw incident (``/analytics/raw/incidents``) has.
_ANALYTICS_KEYS = ("seconds_to_resolve", "seconds_to_first_ack", "service_name")


def read_pagerduty(path: Path, ctx: ReadContext) -> list[dict[str, Any]]:
    """Read PagerDuty webhook bodies (v3, v2) or REST incident objects.

    Parameters
    ----------
    path
        A JSON document or JSON lines file of webhook bodies, a REST
        ``{"incidents": [...]}`` list, an ``{"incident": {...}}`` or a bare
        incident object.
    ctx
        Read options; bad records are skipped through it.

    Returns
    -------
    list of dict
        One incident dict per event or incident object.
    """
    records = []
    for label, body in read_json_records(path, ctx):
        if isinstance(body, dict) and "log_entries" in body:
            records += _from_log_entries(path, label, body["log_entries"], ctx)
            continue
        for where, item in _items(label, body):
            try:
                record = item(ctx)
            except (
                RecordError,
                KeyError,
                TypeError,
                ValueError,
                AttributeError,
            ) as exc:
                ctx.skip(path, where, f"not a PagerDuty incident: {exc}")
                continue
            if record is not None:
                record["_record"] = where
                records.append(record)
    return records


def _items(label: str, body: Any):
    """Yield ``(record label, builder)`` for every incident in one body."""
    if isinstance(body, dict) and _is_analytics(body.get("data")):
        zone = body.get("time_zone")
        for i, incident in enumerate(body["data"]):
            yield (
                f"{label} data[{i}]",
                lambda ctx, x=incident: _from_analytics(x, zone, ctx),
            )
    elif isinstance(body, dict) and isinstance(body.get("event"), dict):
        yield label, lambda ctx: _from_v3(body["event"], ctx)
    elif isinstance(body, dict) and "messages" in body:
        messages = body["messages"]
        if not isinstance(messages, list):
            yield label, _fail("'messages' is not a list")
            return
        for i, message in enumerate(messages):
            yield f"{label} messages[{i}]", lambda ctx, m=message: _from_v2(m, ctx)
    elif isinstance(body, dict) and "incidents" in body:
        incidents = body["incidents"]
        if not isinstance(incidents, list):
            yield label, _fail("'incidents' is not a list")
            return
        for i, incident in enumerate(incidents):
            yield f"{label} incidents[{i}]", lambda ctx, x=incident: _from_rest(x, ctx)
    elif isinstance(body, dict) and isinstance(body.get("incident"), dict):
        yield label, lambda ctx: _from_rest(body["incident"], ctx)
    elif isinstance(body, list):
        analytics = _is_analytics(body)
        for i, incident in enumerate(body):
            if analytics:
                yield (
                    f"{label} [{i}]",
                    lambda ctx, x=incident: _from_analytics(x, None, ctx),
                )
            else:
                yield f"{label} [{i}]", lambda ctx, x=incident: _from_rest(x, ctx)
    else:
        yield label, lambda ctx: _from_rest(body, ctx)


def _is_analytics(items: Any) -> bool:
    """True for a list of Analytics raw incidents."""
    if not isinstance(items, list):
        return False
    sample = next((x for x in items if isinstance(x, dict)), None)
    return sample is not None and any(k in sample for k in _ANALYTICS_KEYS)


def _fail(reason: str):
    def builder(ctx: ReadContext) -> dict[str, Any]:
        raise RecordError(reason)

    return builder


def _ref_summary(ref: Any) -> str | None:
    if isinstance(ref, dict):
        return text_or_none(first(ref.get("summary"), ref.get("name")))
    return text_or_none(ref)


def _incident_id(number: Any, pd_id: Any) -> str:
    if (
        isinstance(number, int)
        and not isinstance(number, bool)
        or (isinstance(number, str) and number.isdigit())
    ):
        return f"PD-{number}"
    if text_or_none(pd_id):
        return f"PD-{pd_id}"
    raise RecordError("expected an incident 'number' or 'id', found neither")


def _severity(data: dict) -> str | None:
    return _ref_summary(data.get("priority")) or text_or_none(data.get("urgency"))


def _from_v3(event: dict, ctx: ReadContext) -> dict[str, Any] | None:
    if event.get("resource_type", "incident") != "incident":
        log.debug(
            "PagerDuty %s event is not about an incident", event.get("event_type")
        )
        return None
    data = event["data"]
    if not isinstance(data, dict):
        raise RecordError("'event.data' is not an object")
    kind = str(event.get("event_type", ""))
    occurred = parse_time(event.get("occurred_at"), ctx.tz)
    status = str(data.get("status") or "")
    resolved = kind == "incident.resolved" or status == "resolved"
    started = parse_time(data.get("created_at"), ctx.tz)
    if started is None and kind == "incident.triggered":
        started = occurred
    return {
        "incident_id": _incident_id(data.get("number"), data.get("id")),
        "source": "pagerduty",
        "title": text_or_none(data.get("title")),
        "root_cause": text_or_none(data.get("resolve_reason")),
        "started_at": started,
        "resolved_at": occurred if resolved else None,
        "severity": _severity(data),
        "service": _ref_summary(data.get("service")),
        "trigger": "resolved" if resolved else "manual",
    }


def _from_v2(message: dict, ctx: ReadContext) -> dict[str, Any]:
    incident = message["incident"]
    record = _from_rest(incident, ctx)
    if str(message.get("event", "")) in _RESOLVED and record["resolved_at"] is None:
        entries = message.get("log_entries") or []
        when = entries[0].get("created_at") if entries else None
        record["resolved_at"] = parse_time(
            first(when, incident.get("last_status_change_at")), ctx.tz
        )
        record["trigger"] = "resolved"
    return record


def _from_rest(incident: Any, ctx: ReadContext) -> dict[str, Any]:
    if not isinstance(incident, dict):
        raise RecordError(
            f"expected an incident object, found {type(incident).__name__}"
        )
    if not any(key in incident for key in ("incident_number", "number", "id")):
        raise RecordError("expected 'incident_number' or 'id'")
    status = str(incident.get("status") or "")
    resolved_at = parse_time(incident.get("resolved_at"), ctx.tz)
    if resolved_at is None and status == "resolved":
        resolved_at = parse_time(incident.get("last_status_change_at"), ctx.tz)
    return {
        "incident_id": _incident_id(
            first(incident.get("incident_number"), incident.get("number")),
            incident.get("id"),
        ),
        "source": "pagerduty",
        "title": text_or_none(first(incident.get("title"), incident.get("summary"))),
        "root_cause": text_or_none(
            first(incident.get("resolve_reason"), incident.get("description"))
            if incident.get("description") != incident.get("title")
            else incident.get("resolve_reason")
        ),
        "started_at": parse_time(incident.get("created_at"), ctx.tz),
        "resolved_at": resolved_at,
        "severity": _severity(incident),
        "service": _ref_summary(incident.get("service")),
        "trigger": "resolved" if resolved_at is not None else "manual",
    }


def _from_analytics(incident: Any, zone: Any, ctx: ReadContext) -> dict[str, Any]:
    """One Analytics raw incident; its times are in the response's ``time_zone``."""
    if not isinstance(incident, dict):
        raise RecordError(
            f"expected an incident object, found {type(incident).__name__}"
        )
    tz = ctx.tz
    if isinstance(zone, str) and zone:
        try:
            tz = ZoneInfo(zone)
        except (ZoneInfoNotFoundError, ValueError):
            log.warning(
                "PagerDuty analytics time_zone %r is unknown; times read in %s",
                zone,
                ctx.tz,
            )
    resolved_at = parse_time(incident.get("resolved_at"), tz)
    return {
        "incident_id": _incident_id(
            incident.get("incident_number"), incident.get("id")
        ),
        "source": "pagerduty",
        "title": text_or_none(
            first(incident.get("title"), incident.get("description"))
        ),
        "root_cause": None,
        "started_at": parse_time(incident.get("created_at"), tz),
        "resolved_at": resolved_at,
        "severity": text_or_none(
            first(incident.get("priority_name"), incident.get("urgency"))
        ),
        "service": text_or_none(incident.get("service_name")),
        "trigger": "resolved" if resolved_at is not None else "manual",
    }


def _log_incident(ref: dict) -> tuple[str, str | None]:
    """The incident id and title named by a log entry's incident reference."""
    summary = text_or_none(ref.get("summary"))
    numbered = _NUMBERED.match(summary or "")
    if numbered:
        return f"PD-{numbered.group(1)}", text_or_none(numbered.group(2))
    return _incident_id(None, ref.get("id")), summary


def _from_log_entries(
    path: Path, label: str, entries: Any, ctx: ReadContext
) -> list[dict[str, Any]]:
    """One incident per incident the log entries name, from their timeline."""
    if not isinstance(entries, list):
        ctx.skip(path, label, "'log_entries' is not a list")
        return []
    incidents: dict[str, dict[str, Any]] = {}
    for i, entry in enumerate(entries):
        where = f"{label} log_entries[{i}]"
        try:
            if not isinstance(entry, dict):
                raise RecordError(
                    f"expected a log entry object, found {type(entry).__name__}"
                )
            ref = entry.get("incident")
            if not isinstance(ref, dict):
                raise RecordError("expected an 'incident' reference")
            incident_id, title = _log_incident(ref)
            when = parse_time(entry.get("created_at"), ctx.tz)
        except (RecordError, ValueError) as exc:
            ctx.skip(path, where, f"not a PagerDuty log entry: {exc}")
            continue
        kind = str(entry.get("type", ""))
        record = incidents.setdefault(
            incident_id,
            {
                "incident_id": incident_id,
                "source": "pagerduty",
                "title": title,
                "root_cause": None,
                "started_at": None,
                "resolved_at": None,
                "severity": None,
                "service": None,
                "trigger": "manual",
                "_record": f"{label} log_entries of {incident_id}",
                "_notes": [],
            },
        )
        service = entry.get("service")
        agent = entry.get("agent")
        if record["service"] is None:
            if isinstance(service, dict):
                record["service"] = _ref_summary(service)
            elif isinstance(agent, dict) and agent.get("type") == "service_reference":
                record["service"] = _ref_summary(agent)
        if when is not None and kind == "trigger_log_entry":
            if record["started_at"] is None or when < record["started_at"]:
                record["started_at"] = when
        elif when is not None and kind == "resolve_log_entry":
            if record["resolved_at"] is None or when > record["resolved_at"]:
                record["resolved_at"] = when
                record["trigger"] = "resolved"
        channel = entry.get("channel") if isinstance(entry.get("channel"), dict) else {}
        note = None
        if kind == "annotate_log_entry":
            note = text_or_none(first(entry.get("note"), channel.get("summary")))
        elif kind == "resolve_log_entry":
            note = text_or_none(entry.get("note"))
        if note and note not in record["_notes"]:
            record["_notes"].append(note)
    records = []
    for record in incidents.values():
        notes = record.pop("_notes")
        if notes:
            record["recovery_actions"] = "; ".join(notes)
        records.append(record)
    return records
