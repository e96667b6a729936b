"""Opsgenie: outgoing webhook bodies (Create, Close, ...), Alert and Incident API
objects.

One incident per Opsgenie alert, id ``OG-<alertId>``. ``createdAt`` is epoch
milliseconds and ``updatedAt`` epoch nanoseconds (19 digits) in webhooks; the
Alert API uses ISO-8601 strings. A Close event's ``updatedAt`` is the
resolution time; an API alert with ``status: closed`` is resolved at
``createdAt + report.closeTime`` (milliseconds) or its ``updatedAt``; an
Incident API object with ``status: resolved`` at its ``updatedAt``.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pandas as pd

from riskanalytics.ingest._common import (
    ReadContext,
    RecordError,
    first,
    parse_time,
    read_json_records,
    text_or_none,
)

__all__ = ["read_opsgenie"]

log = logging.getLogger(__name__)

#: The longest ``report.closeTime`` read as an alert's duration: ten years.
_MAX_CLOSE_MS = 10 * 366 * 24 * 3600 * 1000


def read_opsgenie(path: Path, ctx: ReadContext) -> list[dict[str, Any]]:
    """Read Opsgenie webhook bodies or Alert API objects (``{"data": ...}``).

    Parameters
    ----------
    path
        A JSON document or JSON lines file.
    ctx
        Read options; bad records are skipped through it.

    Returns
    -------
    list of dict
        One incident dict per webhook body or alert object.
    """
    records = []
    for label, body in read_json_records(path, ctx):
        items: list[tuple[str, Any, str | None]]
        if isinstance(body, dict) and "action" in body:
            items = [(label, body.get("alert"), str(body.get("action")))]
        elif isinstance(body, dict) and isinstance(body.get("data"), list):
            items = [
                (f"{label} data[{i}]", a, None) for i, a in enumerate(body["data"])
            ]
        elif isinstance(body, dict) and isinstance(body.get("data"), dict):
            items = [(label, body["data"], None)]
        elif isinstance(body, list):
            items = [(f"{label} [{i}]", a, None) for i, a in enumerate(body)]
        else:
            items = [(label, body, None)]
        for where, alert, action in items:
            try:
                records.append(_from_alert(alert, action, ctx))
            except (
                RecordError,
                KeyError,
                TypeError,
                ValueError,
                AttributeError,
            ) as exc:
                ctx.skip(path, where, f"not an Opsgenie alert: {exc}")
    return records


def _from_alert(alert: Any, action: str | None, ctx: ReadContext) -> dict[str, Any]:
    if not isinstance(alert, dict):
        raise RecordError(f"expected an alert object, found {type(alert).__name__}")
    alert_id = text_or_none(first(alert.get("alertId"), alert.get("id")))
    if alert_id is None:
        raise RecordError("expected 'alertId' or 'id'")
    started = parse_time(alert.get("createdAt"), ctx.tz)
    updated = parse_time(alert.get("updatedAt"), ctx.tz)
    resolved = None
    status = str(alert.get("status", "")).lower()
    if action is not None and action.lower() == "close":
        resolved = updated
    elif status == "resolved":  # an Incident API object
        resolved = updated
    elif status == "closed":
        report = alert.get("report") if isinstance(alert.get("report"), dict) else {}
        close_ms = report.get("closeTime")
        if isinstance(close_ms, int | float) and started is not None:
            if not 0 <= close_ms <= _MAX_CLOSE_MS:
                raise RecordError(
                    f"report.closeTime {close_ms!r} is no duration in milliseconds"
                    " (0 to ten years)"
                )
            resolved = started + pd.Timedelta(milliseconds=close_ms)
        else:
            resolved = updated
    priority = alert.get("priority")
    if isinstance(priority, int) and not isinstance(priority, bool):
        priority = f"P{priority}"
    tags = alert.get("tags") if isinstance(alert.get("tags"), list) else []
    return {
        "incident_id": f"OG-{alert_id}",
        "source": "opsgenie",
        "title": text_or_none(alert.get("message")),
        "root_cause": text_or_none(alert.get("description")),
        "started_at": started,
        "resolved_at": resolved,
        "severity": text_or_none(priority),
        "service": text_or_none(first(alert.get("entity"), *tags[:1])),
        "trigger": "resolved" if resolved is not None else "manual",
    }
