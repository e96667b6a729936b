"""Alertmanager and Grafana alerts, and their grouping into incidents.

Alerts are read into columns (one row per alert, categorical text, datetime64
times) and grouped with vectorised pandas operations, so a million alerts fit
in a few hundred megabytes and group in seconds.

Grouping rule
-------------
1. The same alert sent again in later notifications (same labels, same
   ``startsAt``) counts once; the last copy read wins (its status and end).
2. Alerts are grouped by the values of ``grouping_by`` labels (default
   ``alertname`` and ``service``; ``service`` falls back to the ``app``,
   ``job``, ``namespace``, ``component`` or ``product`` label).
3. Within a group, alerts sorted by start form one incident while each alert
   starts no later than ``grouping_window_minutes`` after the latest end (or
   start, for alerts still firing) seen so far; a longer gap opens a new one.
4. An incident is resolved, at the latest ``endsAt``, when all its alerts are
   resolved; its trigger is then ``resolved``, otherwise ``manual``. Its
   severity is the highest alert severity; its id is ``alert-<hash>`` of the
   group values and the first start, stable across runs.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from riskanalytics.ingest._common import (
    AlertBatch,
    ReadContext,
    RecordError,
    iter_json_lines,
    load_json,
    normalize_frame,
    parse_times,
    sniff_json_lines,
    stable_hash,
    text_or_none,
)

__all__ = ["group_alerts", "read_alertmanager", "read_grafana_legacy"]

log = logging.getLogger(__name__)

SERVICE_LABELS = ("service", "app", "job", "namespace", "component", "product")
_SEVERITY_RANK = {
    "critical": 5,
    "page": 5,
    "p1": 5,
    "error": 4,
    "high": 4,
    "p2": 4,
    "major": 4,
    "warning": 3,
    "medium": 3,
    "p3": 3,
    "minor": 2,
    "low": 2,
    "p4": 2,
    "info": 1,
    "none": 0,
}
_CHUNK = 100_000
_TEXT_FIELDS = ("alertname", "service", "severity", "summary", "description")


def _text(value: Any) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return None


class _Columns:
    """Column lists for one chunk of alerts, turned into a frame when full."""

    def __init__(self, keys: Sequence[str]) -> None:
        self.keys = [k for k in keys if k not in ("alertname", "service")]
        self.lists: dict[str, list] = {
            name: []
            for name in (
                *_TEXT_FIELDS,
                *[f"label:{k}" for k in self.keys],
                "status",
                "starts_at",
                "ends_at",
                "identity",
                "source",
                "record",
            )
        }
        self.frames: list[pd.DataFrame] = []

    def __len__(self) -> int:
        return len(self.lists["status"])

    def add(self, alert: dict, source: str, record: str) -> None:
        labels = alert.get("labels")
        if not isinstance(labels, dict):
            raise RecordError("expected 'labels' to be an object")
        annotations = alert.get("annotations")
        if not isinstance(annotations, dict):
            annotations = {}
        starts = alert.get("startsAt")
        if not isinstance(starts, str):
            raise RecordError(f"expected 'startsAt' to be a time, found {starts!r}")
        status = alert.get("status")
        if isinstance(status, dict):
            status = status.get("state")
        service = None
        for name in SERVICE_LABELS:
            service = labels.get(name)
            if service:
                break
        try:
            identity = hash(
                (alert.get("fingerprint"), frozenset(labels.items()), starts)
            )
        except TypeError:
            identity = hash((str(alert.get("fingerprint")), repr(labels), starts))

        # every value is checked before any column grows, so columns stay aligned
        values = (
            _text(labels.get("alertname")),
            _text(service),
            _text(labels.get("severity")),
            _text(annotations.get("summary")),
            _text(annotations.get("description") or annotations.get("message")),
            *[_text(labels.get(key)) for key in self.keys],
            _text(status),
            starts,
            _text(alert.get("endsAt")),
            identity,
            source,
            record,
        )
        for column, value in zip(self.lists.values(), values, strict=True):
            column.append(value)

    def flush(self, path: Path, ctx: ReadContext) -> None:
        if not len(self):
            return
        frame = pd.DataFrame(
            {
                name: pd.Categorical(values)
                if name not in ("identity", "starts_at", "ends_at", "record")
                else values
                for name, values in self.lists.items()
            }
        )
        frame["identity"] = frame["identity"].astype("int64")
        frame["starts_at"] = parse_times(frame["starts_at"], ctx.tz)
        frame["ends_at"] = parse_times(frame["ends_at"], ctx.tz)
        bad = frame["starts_at"].isna()
        for record in frame.loc[bad, "record"]:
            ctx.skip(path, record, "expected 'startsAt' to be an ISO-8601 time")
        frame = frame.loc[~bad]
        frame["record"] = pd.Categorical(frame["record"])
        self.frames.append(frame)
        for values in self.lists.values():
            values.clear()

    def frame(self) -> pd.DataFrame:
        if not self.frames:
            return _empty_alerts(self.keys)
        return pd.concat(self.frames, ignore_index=True)


def _empty_alerts(keys: Sequence[str]) -> pd.DataFrame:
    columns = {name: pd.Series([], dtype="object") for name in _TEXT_FIELDS}
    for key in keys:
        columns[f"label:{key}"] = pd.Series([], dtype="object")
    columns["status"] = pd.Series([], dtype="object")
    columns["starts_at"] = pd.Series([], dtype="datetime64[ns, UTC]")
    columns["ends_at"] = pd.Series([], dtype="datetime64[ns, UTC]")
    columns["identity"] = pd.Series([], dtype="int64")
    columns["source"] = pd.Series([], dtype="object")
    columns["record"] = pd.Series([], dtype="object")
    return pd.DataFrame(columns)


def read_alertmanager(path: Path, ctx: ReadContext) -> AlertBatch:
    """Read Alertmanager (v4) or Grafana unified webhook bodies, or API v2 alerts.

    Parameters
    ----------
    path
        A JSON document (one webhook body, or a list of API alerts) or a JSON
        lines file of webhook bodies. JSON lines are streamed.
    ctx
        Read options (grouping labels, default zone); bad alerts are skipped.

    Returns
    -------
    AlertBatch
        One row per alert; :func:`group_alerts` turns them into incidents.
    """
    columns = _Columns(ctx.grouping_by)
    if sniff_json_lines(path):
        bodies = ((f"line {n}", body) for n, body in iter_json_lines(path, ctx))
    else:
        bodies = iter([("document", load_json(path))])
    for label, body in bodies:
        try:
            alerts, source = _alerts_of(body)
        except RecordError as exc:
            ctx.skip(path, label, str(exc))
            continue
        for i, alert in enumerate(alerts):
            where = f"{label} alerts[{i}]"
            try:
                if not isinstance(alert, dict):
                    raise RecordError("expected an alert object")
                columns.add(alert, source, where)
            except (RecordError, TypeError, AttributeError) as exc:
                ctx.skip(path, where, str(exc))
        if len(columns) >= _CHUNK:
            columns.flush(path, ctx)
    columns.flush(path, ctx)
    return AlertBatch(columns.frame())


def _alerts_of(body: Any) -> tuple[list, str]:
    if isinstance(body, list):
        return body, "alertmanager"
    if not isinstance(body, dict):
        raise RecordError(f"expected a webhook object, found {type(body).__name__}")
    if "labels" in body and "startsAt" in body:
        return [body], "alertmanager"
    alerts = body.get("alerts")
    if not isinstance(alerts, list):
        raise RecordError("expected an 'alerts' list")
    grafana = "orgId" in body or str(body.get("version")) == "1"
    return alerts, "grafana" if grafana else "alertmanager"


def group_alerts(
    alerts: pd.DataFrame,
    by: Sequence[str] = ("alertname", "service"),
    window_minutes: float = 60.0,
    source_file: str | None = None,
) -> pd.DataFrame:
    """Group alert rows into incidents (see the module docstring for the rule).

    Parameters
    ----------
    alerts
        Rows as read by :func:`read_alertmanager` (concatenated batches).
    by
        Label names whose values define a group.
    window_minutes
        Largest gap, in minutes, between alerts of one incident.
    source_file
        Value for the ``source_file`` column when the alerts carry none.

    Returns
    -------
    pandas.DataFrame
        The incident columns, one row per incident.
    """
    if alerts.empty:
        return normalize_frame(pd.DataFrame())

    # one row per distinct alert: the last copy read wins
    alerts = alerts.drop_duplicates("identity", keep="last")
    keys = [k if k in ("alertname", "service") else f"label:{k}" for k in by]
    key_frame = pd.DataFrame(
        {k: alerts[k].astype("string").fillna("") for k in keys}, index=alerts.index
    )
    group = key_frame.groupby(keys, sort=False, observed=True).ngroup()
    work = pd.DataFrame(
        {
            "group": group.to_numpy(),
            "start": alerts["starts_at"].to_numpy(dtype="datetime64[ns]"),
            "end": alerts["ends_at"].to_numpy(dtype="datetime64[ns]"),
        }
    )
    work["resolved"] = (alerts["status"].astype("string") == "resolved").to_numpy()
    work["row"] = np.arange(len(work))
    work = work.sort_values(["group", "start"], kind="stable")

    # a new incident where the gap since the latest end in the group exceeds
    # the window
    reach = work["end"].where(work["resolved"] & work["end"].notna(), work["start"])
    reach = reach.where(reach >= work["start"], work["start"])
    latest = reach.groupby(work["group"]).cummax()
    previous = latest.groupby(work["group"]).shift()
    window = pd.Timedelta(minutes=window_minutes)
    new = previous.isna() | (work["start"] > previous + window)
    work["incident"] = new.cumsum().to_numpy()

    ordered = alerts.iloc[work["row"].to_numpy()].reset_index(drop=True)
    ordered["incident"] = work["incident"].to_numpy()
    ordered["resolved"] = work["resolved"].to_numpy()
    rank = ordered["severity"].astype("string").str.lower().map(_SEVERITY_RANK)
    ordered["rank"] = rank.fillna(-1).astype("int64")
    grouped = ordered.groupby("incident", sort=True)
    summary = grouped.agg(
        started_at=("starts_at", "min"),
        last_end=("ends_at", "max"),
        all_resolved=("resolved", "all"),
        alert_count=("identity", "size"),
        top_rank=("rank", "max"),
    )
    firsts = grouped[
        ["alertname", "service", "summary", "description", "source", "record"]
    ].first()
    top = ordered.sort_values(["incident", "rank"], ascending=[True, False])
    severity = top.drop_duplicates("incident").set_index("incident")["severity"]
    group_values = ordered.drop_duplicates("incident").set_index("incident")[keys]
    file_values = (
        ordered.drop_duplicates("incident").set_index("incident")["source_file"]
        if "source_file" in ordered
        else pd.Series(source_file, index=summary.index)
    )

    records = []
    for number, row in summary.iterrows():
        values = group_values.loc[number].astype("string").fillna("").tolist()
        started = row["started_at"]
        resolved = bool(row["all_resolved"]) and pd.notna(row["last_end"])
        name = text_or_none(firsts.at[number, "alertname"])
        summary_text = text_or_none(firsts.at[number, "summary"])
        title = ": ".join(t for t in (name, summary_text) if t) or None
        records.append(
            {
                "incident_id": "alert-" + stable_hash(*values, started.isoformat()),
                "source": firsts.at[number, "source"],
                "title": title,
                "root_cause": text_or_none(firsts.at[number, "description"]),
                "impact": None,
                "started_at": started,
                "resolved_at": row["last_end"] if resolved else None,
                "severity": text_or_none(severity.get(number)),
                "service": text_or_none(firsts.at[number, "service"]),
                "recovery_actions": None,
                "trigger": "resolved" if resolved else "manual",
                "near_miss": False,
                "source_file": file_values.get(number),
                "source_record": firsts.at[number, "record"],
                "alert_count": int(row["alert_count"]),
            }
        )
    return normalize_frame(pd.DataFrame.from_records(records))


def read_grafana_legacy(path: Path, ctx: ReadContext) -> list[dict[str, Any]]:
    """Read a legacy (Grafana 7 and earlier) alert notification.

    It carries no times, so the incident has none; the id is
    ``grafana-<ruleId>-<hash of title and message>``.
    """
    body = load_json(path)
    bodies = body if isinstance(body, list) else [body]
    records = []
    for i, item in enumerate(bodies):
        where = "document" if len(bodies) == 1 else f"[{i}]"
        if not isinstance(item, dict) or "ruleName" not in item and "title" not in item:
            ctx.skip(path, where, "expected a Grafana alert with 'ruleName' or 'title'")
            continue
        matches = (
            item.get("evalMatches") if isinstance(item.get("evalMatches"), list) else []
        )
        metrics = [
            f"{m.get('metric')}={m.get('value')}"
            for m in matches
            if isinstance(m, dict)
        ]
        state = str(item.get("state", "")).lower()
        title = text_or_none(item.get("title")) or text_or_none(item.get("ruleName"))
        message = text_or_none(item.get("message"))
        records.append(
            {
                "incident_id": "grafana-"
                + stable_hash(item.get("ruleId"), title, message, length=10),
                "source": "grafana",
                "title": title,
                "root_cause": message,
                "impact": "; ".join(metrics) or None,
                "severity": None,
                "service": text_or_none(item.get("ruleName")),
                "trigger": "resolved" if state == "ok" else "manual",
            }
        )
    return records
