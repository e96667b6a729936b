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

import json

try:  # orjson parses JSON lines about twice as fast; json is the fallback
    from orjson import loads as _loads
except ImportError:  # pragma: no cover
    _loads = json.loads
import logging
import multiprocessing
import os
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from riskanalytics.exceptions import InputFormatError
from riskanalytics.ingest._common import (
    AlertBatch,
    ReadContext,
    RecordError,
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
_CHUNK = 200_000
#: JSON lines files get one reading process per this many bytes, up to the CPUs.
PARALLEL_BYTES = 64 * 1024 * 1024
_TEXT_FIELDS = ("alertname", "service", "severity", "summary", "description")
_ROW_FIELDS = (
    *_TEXT_FIELDS,
    "status",
    "starts_at",
    "ends_at",
    "zoned",
    "identity",
    "line",
    "position",
)


def _text(value: Any) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return None


def _checked_row(alert: Any, extra: Sequence[str]) -> tuple:
    """The row of one alert, every value checked (the slow path, for odd input)."""
    if not isinstance(alert, dict):
        raise RecordError("expected an alert object")
    labels = alert.get("labels")
    if not isinstance(labels, dict):
        raise RecordError("expected 'labels' to be an object")
    annotations = alert.get("annotations")
    if not isinstance(annotations, dict):
        annotations = {}
    starts = alert.get("startsAt")
    if not isinstance(starts, str) or len(starts) < 10:
        raise RecordError(f"expected 'startsAt' to be a time, found {starts!r}")
    status = alert.get("status")
    if isinstance(status, dict):
        status = status.get("state")
    service = next((labels[n] for n in SERVICE_LABELS if labels.get(n)), None)
    ends = _text(alert.get("endsAt"))
    if ends is not None and (len(ends) < 10 or ends.startswith("0")):
        ends = None
    identity = hash(
        (str(alert.get("fingerprint")), starts, repr(sorted(map(str, labels.items()))))
    )
    return (
        _text(labels.get("alertname")),
        _text(service),
        _text(labels.get("severity")),
        _text(annotations.get("summary")),
        _text(annotations.get("description") or annotations.get("message")),
        _text(status),
        starts,
        ends,
        starts[-1] == "Z" or starts[-6] in "+-",
        identity,
        *[_text(labels.get(key)) for key in extra],
    )


class _Rows:
    """Rows of alerts, turned into a columnar frame every ``_CHUNK`` rows."""

    def __init__(self, keys: Sequence[str]) -> None:
        self.keys = [k for k in keys if k not in ("alertname", "service")]
        self.rows: list[tuple] = []
        self.frames: list[pd.DataFrame] = []

    def add_body(self, alerts: list, line: int, path: Path, ctx: ReadContext) -> None:
        rows = self.rows
        keys = self.keys
        for position, alert in enumerate(alerts):
            try:
                # fast path for well-formed alerts; anything odd takes the slow one
                # (values of the wrong type are cleaned when the chunk is built)
                labels = alert["labels"]
                starts = alert["startsAt"]
                annotations = alert.get("annotations") or {}
                ends = alert.get("endsAt")
                if ends is not None and ends[0] == "0":
                    ends = None
                row = (
                    labels.get("alertname"),
                    labels.get("service")
                    or next((labels[n] for n in SERVICE_LABELS if labels.get(n)), None),
                    labels.get("severity"),
                    annotations.get("summary"),
                    annotations.get("description") or annotations.get("message"),
                    alert.get("status"),
                    starts,
                    ends,
                    starts[-1] == "Z" or starts[-6] in "+-",
                    hash((alert.get("fingerprint"), starts, tuple(labels.items()))),
                    line,
                    position,
                )
                if keys:
                    row += tuple(labels.get(key) for key in keys)
            except (KeyError, TypeError, IndexError, AttributeError):
                try:
                    row = _checked_row(alert, keys)
                except RecordError as exc:
                    where = f"line {line}" if line else "document"
                    ctx.skip(path, f"{where} alerts[{position}]", exc)
                    continue
                row = (*row[:10], line, position, *row[10:])
            rows.append(row)
        if len(rows) >= _CHUNK:
            self.flush(path, ctx)

    def flush(self, path: Path, ctx: ReadContext) -> None:
        if not self.rows:
            return
        names = [*_ROW_FIELDS[:5], "status", "starts_at", "ends_at", "zoned"]
        names += ["identity", "line", "position", *[f"label:{k}" for k in self.keys]]
        columns = dict(zip(names, zip(*self.rows, strict=True), strict=True))
        self.rows = []
        frame = pd.DataFrame(
            {
                name: _categorical(values)
                for name, values in columns.items()
                if name not in ("starts_at", "ends_at", "zoned")
            }
        )
        zoned = np.fromiter(columns["zoned"], dtype=bool, count=len(frame))
        frame["starts_at"] = _times(columns["starts_at"], zoned, ctx)
        ends = columns["ends_at"]
        zoned_ends = np.fromiter(
            (
                v is not None
                and v.__class__ is str
                and (v[-1] == "Z" or v[-6:-5] in "+-")
                for v in ends
            ),
            dtype=bool,
            count=len(ends),
        )
        frame["ends_at"] = _times(ends, zoned_ends, ctx)
        bad = frame["starts_at"].isna()
        for line, position in frame.loc[bad, ["line", "position"]].itertuples(
            index=False
        ):
            where = f"line {line}" if line else "document"
            ctx.skip(
                path,
                f"{where} alerts[{position}]",
                "expected 'startsAt' to be an ISO-8601 time",
            )
        self.frames.append(frame.loc[~bad])

    def frame(self) -> pd.DataFrame:
        if not self.frames:
            return _empty_alerts(self.keys)
        return pd.concat(self.frames, ignore_index=True)


def _categorical(values: tuple) -> Any:
    if values and isinstance(values[0], int) and not isinstance(values[0], bool):
        try:
            return np.fromiter(values, dtype="int64", count=len(values))
        except (TypeError, ValueError, OverflowError):
            pass  # a number first, then text ("status": 0, then "resolved")
    try:
        array = np.empty(len(values), dtype=object)
        array[:] = values
        codes, uniques = pd.factorize(array)
    except (TypeError, ValueError):  # lists or objects where text was expected
        return pd.Categorical([_text(v) for v in values])
    return pd.Categorical.from_codes(codes, categories=uniques)


def _times(values: tuple, zoned: np.ndarray, ctx: ReadContext) -> pd.Series:
    """Parse ISO-8601 strings; zoneless ones are in the default zone."""
    series = pd.Series(values, dtype="object")
    out = pd.to_datetime(
        series.where(zoned), utc=True, format="ISO8601", errors="coerce"
    ).astype("datetime64[ns, UTC]")
    naive = ~zoned & series.notna().to_numpy(dtype=bool)
    if naive.any():
        out[naive] = parse_times(series[naive], ctx.tz)
    return out


def _empty_alerts(keys: Sequence[str]) -> pd.DataFrame:
    columns: dict[str, pd.Series] = {
        name: pd.Series([], dtype="object") for name in (*_TEXT_FIELDS, "status")
    }
    for key in keys:
        columns[f"label:{key}"] = pd.Series([], dtype="object")
    columns["starts_at"] = pd.Series([], dtype="datetime64[ns, UTC]")
    columns["ends_at"] = pd.Series([], dtype="datetime64[ns, UTC]")
    for name in ("identity", "line", "position"):
        columns[name] = pd.Series([], dtype="int64")
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
    if sniff_json_lines(path):
        size = path.stat().st_size
        workers = min(os.cpu_count() or 1, max(1, size // PARALLEL_BYTES))
        if workers > 1:
            return _read_parallel(path, ctx, workers)
        frame, sources = _read_range(path, ctx, 0, size, 1)
    else:
        rows = _Rows(ctx.grouping_by)
        alerts, source = _alerts_of_document(path, ctx)
        rows.add_body(alerts, 0, path, ctx)
        rows.flush(path, ctx)
        frame, sources = rows.frame(), {source}
    frame["source"] = "grafana" if sources == {"grafana"} else "alertmanager"
    return AlertBatch(frame)


def _alerts_of_document(path: Path, ctx: ReadContext) -> tuple[list, str]:
    try:
        return _alerts_of(load_json(path))
    except RecordError as exc:
        ctx.skip(path, "document", exc)
        return [], "alertmanager"


def _read_range(
    path: Path, ctx: ReadContext, start: int, stop: int, first_line: int
) -> tuple[pd.DataFrame, set[str]]:
    """Read the JSON lines that start in bytes ``[start, stop)`` of the file."""
    rows = _Rows(ctx.grouping_by)
    sources: set[str] = set()
    with path.open("rb") as handle:
        handle.seek(start)
        line = first_line - 1
        while handle.tell() < stop:
            raw = handle.readline()
            if not raw:
                break
            line += 1
            if line == 1 and raw.startswith(b"\xef\xbb\xbf"):
                raw = raw[3:]
            if not raw.strip():
                continue
            try:
                body = _loads(raw)
            except UnicodeDecodeError:
                raise InputFormatError(
                    f"{path}: line {line}: expected UTF-8 text"
                ) from None
            except (ValueError, RecursionError) as exc:
                ctx.skip(path, f"line {line}", f"expected JSON: {exc}")
                continue
            try:
                alerts, source = _alerts_of(body)
            except RecordError as exc:
                ctx.skip(path, f"line {line}", exc)
                continue
            sources.add(source)
            rows.add_body(alerts, line, path, ctx)
    rows.flush(path, ctx)
    return rows.frame(), sources


def _range_worker(
    path: Path, ctx: ReadContext, start: int, stop: int, first_line: int
) -> tuple[pd.DataFrame, set[str], list]:
    ctx.quiet = True  # the parent logs what was skipped
    frame, sources = _read_range(path, ctx, start, stop, first_line)
    return frame, sources, ctx.skipped


def _split(path: Path, parts: int) -> list[tuple[int, int, int]]:
    """Byte ranges ``(start, stop, first line)`` that begin at line starts."""
    size = path.stat().st_size
    targets = [size * i // parts for i in range(1, parts)]
    bounds = [(0, 1)]
    offset, lines = 0, 0
    block_size = 1 << 24
    with path.open("rb") as handle:
        while targets:
            block = handle.read(block_size)
            if not block:
                break
            while targets and targets[0] < offset + len(block):
                cut = block.find(b"\n", max(0, targets[0] - offset))
                if cut < 0:
                    break
                bounds.append(
                    (offset + cut + 1, lines + block.count(b"\n", 0, cut + 1) + 1)
                )
                targets.pop(0)
            lines += block.count(b"\n")
            offset += len(block)
    starts = [b for b in bounds if b[0] < size]
    stops = [b[0] for b in starts[1:]] + [size]
    return [(s, e, n) for (s, n), e in zip(starts, stops, strict=True) if e > s]


def _read_parallel(path: Path, ctx: ReadContext, workers: int) -> AlertBatch:
    ranges = _split(path, workers)
    log.info("%s: reading %d byte ranges in %d processes", path, len(ranges), workers)
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        futures = [
            pool.submit(_range_worker, path, ctx, start, stop, line)
            for start, stop, line in ranges
        ]
        results = [future.result() for future in futures]
    frames, sources = [], set()
    for frame, found, skipped in results:
        frames.append(frame)
        sources |= found
        for record in skipped:
            log.warning(
                "Skipped %s: record %s: %s", record.file, record.record, record.reason
            )
            ctx.skipped.append(record)
    frame = pd.concat(frames, ignore_index=True)
    frame["source"] = "grafana" if sources == {"grafana"} else "alertmanager"
    return AlertBatch(frame)


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
) -> pd.DataFrame:
    """Group alert rows into incidents (see the module docstring for the rule).

    Parameters
    ----------
    alerts
        Rows as read by :func:`read_alertmanager` (concatenated batches, with
        ``source`` and ``source_file`` columns).
    by
        Label names whose values define a group.
    window_minutes
        Largest gap, in minutes, between alerts of one incident.

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
    group = (
        alerts.groupby(keys, sort=False, observed=True, dropna=False)
        .ngroup()
        .to_numpy()
    )
    start = alerts["starts_at"].to_numpy(dtype="datetime64[ns]")
    end = alerts["ends_at"].to_numpy(dtype="datetime64[ns]")
    resolved = (alerts["status"] == "resolved").to_numpy(dtype=bool, na_value=False)
    order = np.lexsort((start, group))
    group, start, end, resolved = (
        group[order],
        start[order],
        end[order],
        resolved[order],
    )

    # a new incident where the gap since the latest end in the group exceeds
    # the window; alerts still firing reach only as far as their start
    reach = np.where(resolved & ~np.isnat(end) & (end >= start), end, start)
    latest = pd.Series(reach).groupby(group).cummax().to_numpy()
    previous = np.roll(latest, 1)
    first_in_group = np.r_[True, group[1:] != group[:-1]]
    window = np.timedelta64(int(window_minutes * 60e9), "ns")
    new = first_in_group | (start > previous + window)
    incident = np.cumsum(new) - 1

    ordered = alerts.iloc[order].reset_index(drop=True)
    ordered["incident"] = incident
    ordered["resolved"] = resolved
    severity = ordered["severity"].astype("category")
    ranks = pd.Series(
        [_SEVERITY_RANK.get(str(c).lower(), -1) for c in severity.cat.categories] + [-1]
    ).to_numpy()
    ordered["rank"] = ranks[severity.cat.codes.to_numpy()]  # code -1 (missing) -> -1
    grouped = ordered.groupby("incident", sort=True)
    summary = grouped.agg(
        started_at=("starts_at", "min"),
        last_end=("ends_at", "max"),
        all_resolved=("resolved", "all"),
        alert_count=("identity", "size"),
    )
    heads = ordered.loc[new.nonzero()[0]].set_index("incident")
    top = ordered.sort_values(
        ["incident", "rank"], ascending=[True, False], kind="stable"
    )
    severity = top.drop_duplicates("incident").set_index("incident")["severity"]

    done = summary["all_resolved"] & summary["last_end"].notna()
    name = heads["alertname"].astype("string")
    text = heads["summary"].astype("string")
    title = (name + ": " + text).fillna(name).fillna(text)
    values = heads[keys].astype("string").fillna("")
    stamp = summary["started_at"].dt.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    incident_ids = [
        "alert-" + stable_hash(*parts)
        for parts in zip(*[values[k] for k in keys], stamp, strict=True)
    ]
    records = [
        f"line {line} alerts[{position}]" if line else f"document alerts[{position}]"
        for line, position in zip(heads["line"], heads["position"], strict=True)
    ]
    return normalize_frame(
        pd.DataFrame(
            {
                "incident_id": incident_ids,
                "source": heads["source"].astype("string"),
                "title": title,
                "root_cause": heads["description"].astype("string"),
                "started_at": summary["started_at"],
                "resolved_at": summary["last_end"].where(done),
                "severity": severity.astype("string"),
                "service": heads["service"].astype("string"),
                "trigger": np.where(done, "resolved", "manual"),
                "source_file": heads["source_file"].astype("string")
                if "source_file" in heads
                else None,
                "source_record": records,
                "alert_count": summary["alert_count"],
            }
        )
    )


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
