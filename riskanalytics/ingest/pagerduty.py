"""PagerDuty: webhook v3 events, legacy v2 ``messages`` and REST v2 incidents.

One incident per PagerDuty incident, id ``PD-<number>`` (or ``PD-<id>`` when the
payload has no number). Several events of one incident (triggered, then
resolved) become one row when the files are merged: the earliest start and the
latest resolution win.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

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
    if isinstance(body, dict) and isinstance(body.get("event"), dict):
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
        for i, incident in enumerate(body):
            yield f"{label} [{i}]", lambda ctx, x=incident: _from_rest(x, ctx)
    else:
        yield label, lambda ctx: _from_rest(body, ctx)


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
    if "incident_number" not in incident and "id" not in incident:
        raise RecordError("expected 'incident_number' or 'id'")
    status = str(incident.get("status") or "")
    resolved_at = parse_time(incident.get("resolved_at"), ctx.tz)
    if resolved_at is None and status == "resolved":
        resolved_at = parse_time(incident.get("last_status_change_at"), ctx.tz)
    return {
        "incident_id": _incident_id(
            incident.get("incident_number"), incident.get("id")
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
