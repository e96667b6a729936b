"""Format detection, the reading loop, merging and cross-source linking.

Merging and linking rules
-------------------------
0. Ids are unique. Event sources (pagers, rollbacks, legacy Grafana alerts)
   may repeat an id (rule 1); anywhere else, and across sources, the first
   record read with an id is kept. A later record with that id and the same
   texts (title, root cause, impact, recovery actions) only fills the first
   one's empty fields; one with other texts is skipped with a warning naming
   both files and records.
1. Rows of one source with the same ``incident_id`` (a PagerDuty incident's
   triggered and resolved events, an Opsgenie Create and Close) merge into one:
   the earliest start, the latest resolution, otherwise the last value read.
2. Two incidents from different sources are the same incident when they name
   the same service (compared case- and punctuation-insensitively) and their
   times overlap; an incident without a resolution time counts as lasting
   ``grouping_window_minutes``. Back-fill collections are never linked.
3. A linked cluster keeps one row per cluster, holding at most one incident
   per source: the richest (most filled contract fields; ties go to
   postmortem, manual report, pager, rollback, then alert sources). Its empty
   fields are filled from the others, its ``trigger`` becomes ``rollback``
   when any member is a rollback, ``alert_count`` adds up, and ``linked_ids``
   lists the other ids (``;``-joined, sorted).
"""

from __future__ import annotations

import csv
import glob
import io
import json
import logging
import re
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import frontmatter
import pandas as pd
import yaml

from riskanalytics.exceptions import InputFormatError
from riskanalytics.ingest import (
    alerts,
    backfill,
    opsgenie,
    pagerduty,
    reports,
    rollback,
)
from riskanalytics.ingest._common import (
    ALL_COLUMNS,
    AlertBatch,
    ReadContext,
    SkippedRecord,
    encoding_hint,
    incident_frame,
    is_json_lines,
    load_json,
    normalize_frame,
    normalize_id,
    report_key,
)
from riskanalytics.schema import INCIDENT_COLUMNS

__all__ = [
    "FORMATS",
    "IngestResult",
    "detect_format",
    "detect_json_format",
    "read_incidents",
    "write_incidents_csv",
]

log = logging.getLogger(__name__)

#: Format name -> reader ``reader(path, ctx)``.
FORMATS: dict[str, Callable] = {
    "pagerduty": pagerduty.read_pagerduty,
    "opsgenie": opsgenie.read_opsgenie,
    "alertmanager": alerts.read_alertmanager,
    "grafana": alerts.read_alertmanager,
    "grafana-legacy": alerts.read_grafana_legacy,
    "helm": rollback.read_helm_history,
    "argo-rollouts": rollback.read_argo_rollouts,
    "kubectl": rollback.read_kubectl_history,
    "github-deployment": rollback.read_github_deployment,
    "rollback-log": rollback.read_rollback_log,
    "postmortem": reports.read_moj_postmortems,
    "postmortem-frontmatter": reports.read_frontmatter_postmortem,
    "csv": reports.read_csv_reports,
    "jsonl": reports.read_jsonl_reports,
    "json": reports.read_jsonl_reports,
    "danluu": backfill.read_danluu,
    "k8s-failure-stories": backfill.read_k8s_failure_stories,
    "cloud-incidents": backfill.read_cloud_incidents,
    "issre": backfill.read_issre,
}

_IGNORED_IN_FOLDERS = re.compile(r"^(\..*|README.*|SOURCES.*|.*~)$", re.IGNORECASE)
#: Formats whose records are events: one incident's records share its id.
_EVENT_FORMATS = {
    "pagerduty",
    "opsgenie",
    "grafana-legacy",
    "helm",
    "argo-rollouts",
    "kubectl",
    "github-deployment",
    "rollback-log",
}
#: The texts that tell two incidents apart.
_TEXT_FIELDS = ["title", "root_cause", "impact", "recovery_actions"]
_BACKFILL = {"danluu", "k8s-failure-stories", "cloud-incidents", "issre"}
_PRIORITY = {
    "postmortem": 0,
    "csv": 1,
    "jsonl": 1,
    "pagerduty": 2,
    "opsgenie": 2,
    "rollback-log": 3,
    "helm": 3,
    "argo-rollouts": 3,
    "kubectl": 3,
    "github-deployment": 3,
    "alertmanager": 4,
    "grafana": 4,
}
_RICH_FIELDS = [
    "title",
    "root_cause",
    "impact",
    "started_at",
    "resolved_at",
    "severity",
    "service",
    "recovery_actions",
]


@dataclass
class IngestResult:
    """What :func:`read_incidents` read.

    Attributes
    ----------
    incidents
        One row per incident: ``schema.INCIDENT_COLUMNS`` then
        ``schema.INCIDENT_EXTRA_COLUMNS``; times ``datetime64[ns, UTC]``.
    skipped
        Records left out, each with file, record and reason.
    files
        The files read, in order.
    """

    incidents: pd.DataFrame
    skipped: list[SkippedRecord] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)


# --- detection ------------------------------------------------------------------

_MOJ = re.compile(r"^#{1,3}\s+Incident on\s+\d{4}-\d{2}-\d{2}", re.MULTILINE)
_KUBECTL = re.compile(
    r"^\s*[a-z]+(?:\.[a-z0-9.]+)?/[\w.-]+\s*\n\s*REVISION\s+CHANGE-CAUSE", re.MULTILINE
)
_ARGO = re.compile(r"^kind:\s*(Rollout|AnalysisRun)\s*$", re.MULTILINE)


def detect_format(path: Path) -> str:
    """Name the format of an incident file from its content.

    Parameters
    ----------
    path
        The file to look at. JSON lines files are judged by their first line.

    Returns
    -------
    str
        A key of :data:`FORMATS`.

    Raises
    ------
    InputFormatError
        When the file cannot be read or its format is not one of
        :data:`FORMATS`.
    """
    path = Path(path)
    text = _head(path)
    stripped = text.lstrip()
    if not stripped:
        raise InputFormatError(f"{path}: file is empty; expected an incident file")
    if stripped[0] in "{[":
        if is_json_lines(text):
            value = json.loads(next(line for line in text.splitlines() if line.strip()))
        else:
            value = load_json(path)
        name = _classify_json(value)
        if name is None:
            raise InputFormatError(
                f"{path}: JSON of an unknown shape; expected one of "
                f"{', '.join(sorted(FORMATS))}"
            )
        return name
    name = _classify_text(path, text, stripped)
    if name is None and stripped.startswith("---"):
        _front_matter_error(path, text)
    if name is None:
        raise InputFormatError(
            f"{path}: unknown incident format (first line "
            f"{stripped.splitlines()[0][:60]!r}); expected one of "
            f"{', '.join(sorted(FORMATS))}"
        )
    return name


def _head(path: Path, size: int = 1 << 18) -> str:
    try:
        with path.open("rb") as handle:
            data = handle.read(size)
    except FileNotFoundError:
        raise InputFormatError(f"{path}: file not found") from None
    except OSError as exc:
        raise InputFormatError(f"{path}: cannot be read ({exc.strerror})") from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        if len(data) == size and exc.start >= size - 4:
            return data[: exc.start].decode("utf-8-sig")
        raise InputFormatError(
            f"{path}: expected UTF-8 text, found byte 0x{data[exc.start]:02x} at "
            f"offset {exc.start}{encoding_hint(data)}"
        ) from None


def detect_json_format(value: Any) -> str | None:
    """The format of a parsed JSON document (a webhook body), or None if unknown."""
    return _classify_json(value)


def _classify_json(value: Any) -> str | None:
    if isinstance(value, list):
        item = next((v for v in value if isinstance(v, dict)), None)
        if item is None:
            return "jsonl" if not value else None
        if "revision" in item and ("chart" in item or "updated" in item):
            return "helm"
        if "labels" in item and "startsAt" in item:
            return "alertmanager"
        if "incident_number" in item:
            return "pagerduty"
        if "alertId" in item or "tinyId" in item:
            return "opsgenie"
        return _classify_json(item) if _generic(item) else None
    if not isinstance(value, dict):
        return None
    keys = set(value)
    event = value.get("event")
    if isinstance(event, dict) and "event_type" in event:
        return "pagerduty"
    if {"messages"} <= keys and isinstance(value["messages"], list):
        return "pagerduty"
    if isinstance(value.get("incidents"), list) or isinstance(
        value.get("incident"), dict
    ):
        return "pagerduty"
    if "incident_number" in keys:
        return "pagerduty"
    if value.get("type") == "incident" and "number" in keys:
        return "pagerduty"  # a webhook v3 event's data object
    if "action" in keys and "alert" in keys:
        return "opsgenie"
    data = value.get("data")
    sample = data[0] if isinstance(data, list) and data else data
    if isinstance(value.get("log_entries"), list):
        return "pagerduty"
    if isinstance(sample, dict) and (
        "incident_number" in sample or "seconds_to_resolve" in sample
    ):
        return "pagerduty"  # Analytics raw incidents
    if isinstance(sample, dict) and ("tinyId" in sample or "alertId" in sample):
        return "opsgenie"
    if isinstance(value.get("alerts"), list):
        return (
            "grafana"
            if "orgId" in keys or str(value.get("version")) == "1"
            else ("alertmanager")
        )
    if "labels" in keys and "startsAt" in keys:
        return "alertmanager"
    if "evalMatches" in keys or ("ruleName" in keys and "state" in keys):
        return "grafana-legacy"
    if "deployment_status" in keys:
        return "github-deployment"
    if "service" in keys and ("to_version" in keys or "from_version" in keys):
        return "rollback-log"
    if value.get("kind") in ("Rollout", "AnalysisRun"):
        return "argo-rollouts"
    if _generic(value):
        return "jsonl"
    inner = [v for v in value.values() if isinstance(v, dict)]
    if inner and all("root cause" in v or "impact symptom" in v for v in inner[:5]):
        return "issre"
    return None


def _generic(value: dict) -> bool:
    keys = {report_key(k) for k in value}
    return "incident_id" in keys and bool(keys & {"title", "root_cause"})


def _front_matter_error(path: Path, text: str) -> None:
    """Raise InputFormatError when the front matter is there but not YAML."""
    try:
        frontmatter.loads(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "context_mark", None) or getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}:" if mark else ""  # counts the first ---
        problem = getattr(exc, "problem", None) or str(exc)
        raise InputFormatError(
            f"{path}:{where} front matter is not valid YAML ({problem})"
        ) from None


def _classify_text(path: Path, text: str, stripped: str) -> str | None:
    first_line = stripped.splitlines()[0]
    if stripped.startswith("---"):
        try:
            meta = frontmatter.loads(text).metadata
        except (yaml.YAMLError, ValueError):
            meta = {}
        if (
            ("uuid" in meta or "url" in meta)
            and "title" in meta
            and not _MOJ.search(text)
        ):
            return "postmortem-frontmatter"
        if "incident_id" in meta or ("id" in meta and "uuid" not in meta):
            return "postmortem-frontmatter"  # a manual or near-miss report
    if _MOJ.search(text):
        return "postmortem"
    if first_line.startswith("REVISION") and "UPDATED" in first_line:
        return "helm"
    if first_line.startswith("Rollback was a success! Happy Helming!"):
        return "helm"  # the output of helm rollback itself
    if _ARGO.search(text):
        return "argo-rollouts"
    if re.match(r"^-\s", stripped) and re.search(r"^\s*revision:\s*\d+", text, re.M):
        return "helm"
    if first_line.startswith("# A List of Post-mortems"):
        return "danluu"
    if first_line.startswith("# Kubernetes Failure Stories"):
        return "k8s-failure-stories"
    if _KUBECTL.search(text):
        return "kubectl"
    if re.search(r"\bservice=\S", first_line) and re.search(
        r"\b(to|from)_version=", first_line
    ):
        return "rollback-log"
    if "," in first_line:
        header = {h.strip().lower() for h in next(csv.reader(io.StringIO(first_line)))}
        if {"provider", "root_cause_l1"} <= header:
            return "cloud-incidents"
        keys = {report_key(h) for h in header}
        if "incident_id" in keys and keys & {"title", "root_cause"}:
            return "csv"
    return None


# --- reading -------------------------------------------------------------------


def _expand(paths: Iterable[str | Path]) -> list[Path]:
    files: list[Path] = []
    if isinstance(paths, str | Path):
        paths = [paths]
    for item in paths:
        text = str(item)
        if any(ch in text for ch in "*?[") and not Path(text).exists():
            matches = sorted(glob.glob(text, recursive=True))
            if not matches:
                raise InputFormatError(f"{text}: no file matches this pattern")
            files.extend(Path(m) for m in matches if Path(m).is_file())
            continue
        path = Path(item)
        if path.is_dir():
            files.extend(
                p
                for p in sorted(path.rglob("*"))
                if p.is_file()
                and not any(
                    _IGNORED_IN_FOLDERS.match(part)
                    for part in p.relative_to(path).parts
                )
            )
        else:
            files.append(path)
    return files


def read_incidents(
    paths: Iterable[str | Path],
    fmt: str | None = None,
    *,
    strict: bool = False,
    default_timezone: str = "UTC",
    grouping_by: Sequence[str] = ("alertname", "service"),
    grouping_window_minutes: float = 60.0,
) -> IngestResult:
    """Read incident files of any supported format into one incidents table.

    Parameters
    ----------
    paths
        Files, folders (read recursively, in sorted order, skipping hidden,
        ``README*`` and ``SOURCES*`` files) or glob patterns.
    fmt
        A key of :data:`FORMATS` for every file, or None/"auto" to detect
        each file's format from its content.
    strict
        Raise on the first bad record instead of skipping it with a warning.
    default_timezone
        IANA zone for times written without one.
    grouping_by
        Alert labels whose values group alerts into one incident.
    grouping_window_minutes
        Largest gap, in minutes, between alerts of one incident; also how long
        an incident without a resolution time is taken to last when linking.

    Returns
    -------
    IngestResult
        The incidents (merged, linked, de-duplicated), skipped records, files.

    Raises
    ------
    InputFormatError
        When a file cannot be read at all, its format is unknown, ``fmt`` is
        not a known format, or (with ``strict``) a record is bad.
    """
    began = time.perf_counter()
    if fmt not in (None, "auto") and fmt not in FORMATS:
        raise InputFormatError(
            f"format {fmt!r} is unknown; expected one of {', '.join(sorted(FORMATS))}"
        )
    ctx = ReadContext(
        strict=strict,
        default_timezone=default_timezone,
        grouping_by=tuple(grouping_by),
        grouping_window_minutes=grouping_window_minutes,
    )
    files = _expand(paths)
    log.info("Reading incidents from %d file(s)", len(files))

    records: list[dict[str, Any]] = []
    alert_frames: list[pd.DataFrame] = []
    for path in files:
        name = detect_format(path) if fmt in (None, "auto") else fmt
        output = FORMATS[name](path, ctx)
        if isinstance(output, AlertBatch):
            frame = output.frame
            frame["source_file"] = pd.Categorical([str(path)] * len(frame))
            alert_frames.append(frame)
            log.info("%s: %s, %d alert(s)", path, name, len(frame))
            continue
        for index, record in enumerate(output):
            record["source_file"] = str(path)
            record["source_record"] = record.pop("_record", None) or f"[{index}]"
            record["_format"] = name
            records.append(record)
        log.info("%s: %s, %d record(s)", path, name, len(output))

    attachments = [r for r in records if "_attach_to" in r]
    own = [r for r in records if "_attach_to" not in r]
    frame = _unique_ids(incident_frame(own), [r["_format"] for r in own], ctx)
    if alert_frames:
        grouped = alerts.group_alerts(
            pd.concat(alert_frames, ignore_index=True),
            ctx.grouping_by,
            ctx.grouping_window_minutes,
        )
        frame = (
            pd.concat([frame, grouped], ignore_index=True) if len(frame) else grouped
        )
    frame = _merge_same_id(frame)
    frame = _attach(frame, attachments)
    frame = _drop_backwards_times(frame)
    frame = link_incidents(frame, ctx.grouping_window_minutes)
    frame = frame.sort_values(
        ["started_at", "incident_id"], na_position="last", kind="stable"
    )
    frame = normalize_frame(frame)
    log.info(
        "Read %d incident(s) from %d file(s), skipped %d record(s) in %.2f s",
        len(frame),
        len(files),
        len(ctx.skipped),
        time.perf_counter() - began,
    )
    return IngestResult(frame, ctx.skipped, files)


def _unique_ids(
    frame: pd.DataFrame, formats: list[str], ctx: ReadContext
) -> pd.DataFrame:
    """Keep the first record of each id; see rule 0 of the module docstring."""
    first: dict[str, int] = {}
    dropped: list[int] = []
    texts = frame[_TEXT_FIELDS].apply(lambda column: column.str.split().str.join(" "))
    for at, incident_id in enumerate(frame["incident_id"]):
        if pd.isna(incident_id):
            continue
        kept = first.setdefault(incident_id, at)
        if kept == at:
            continue
        if (
            formats[at] in _EVENT_FORMATS
            and formats[kept] in _EVENT_FORMATS
            and frame.at[kept, "source"] == frame.at[at, "source"]
        ):
            continue  # events of one incident, merged by _merge_same_id

        dropped.append(at)
        if texts.iloc[at].equals(texts.iloc[kept]):
            empty = frame.loc[kept].isna() & frame.loc[at].notna()
            frame.loc[kept, empty[empty].index] = frame.loc[at, empty[empty].index]
            log.debug(
                "%s %s: incident %s repeats %s %s; merged",
                frame.at[at, "source_file"],
                frame.at[at, "source_record"],
                incident_id,
                frame.at[kept, "source_file"],
                frame.at[kept, "source_record"],
            )
            continue
        ctx.skip(
            frame.at[at, "source_file"],
            frame.at[at, "source_record"],
            f"incident id {incident_id} already read from "
            f"{frame.at[kept, 'source_file']} {frame.at[kept, 'source_record']}",
        )
    if not dropped:
        return frame
    return frame.drop(index=frame.index[dropped]).reset_index(drop=True)


def _merge_same_id(frame: pd.DataFrame) -> pd.DataFrame:
    duplicated = frame.duplicated(["source", "incident_id"], keep=False)
    if not duplicated.any():
        return frame
    merged = []
    for _, rows in frame[duplicated].groupby(["source", "incident_id"], sort=False):
        row = rows.ffill().iloc[-1].copy()
        row["started_at"] = rows["started_at"].min()
        row["resolved_at"] = rows["resolved_at"].max()
        if pd.notna(row["resolved_at"]) and row["trigger"] == "manual":
            row["trigger"] = "resolved"
        merged.append(row)
    return pd.concat(
        [frame[~duplicated], pd.DataFrame(merged)], ignore_index=True
    ).astype(
        {"started_at": "datetime64[ns, UTC]", "resolved_at": "datetime64[ns, UTC]"}
    )


def _drop_backwards_times(frame: pd.DataFrame) -> pd.DataFrame:
    backwards = frame["resolved_at"] < frame["started_at"]
    for _, row in frame[backwards].iterrows():
        log.warning(
            "%s %s: resolved_at %s is before started_at %s; resolved_at dropped",
            row["source_file"],
            row["source_record"],
            row["resolved_at"],
            row["started_at"],
        )
    frame.loc[backwards, "resolved_at"] = pd.NaT
    return frame


def _attach(frame: pd.DataFrame, attachments: list[dict[str, Any]]) -> pd.DataFrame:
    for extra in attachments:
        extra["_attach_to"] = normalize_id(extra["_attach_to"])
        target = frame.index[frame["incident_id"] == extra["_attach_to"]]
        if target.empty:
            log.info(
                "%s %s: no incident %s to attach to",
                extra["source_file"],
                extra["source_record"],
                extra["_attach_to"],
            )
            continue
        at = target[0]
        current = frame.at[at, "root_cause"]
        known = "" if pd.isna(current) else str(current)
        parts = [
            part
            for part in str(extra.get("root_cause") or "").split("; ")
            if part and part not in known
        ]
        if parts:
            frame.at[at, "root_cause"] = "; ".join([known, *parts] if known else parts)
        start = extra.get("started_at")
        if start is not None and (
            pd.isna(frame.at[at, "started_at"]) or start < frame.at[at, "started_at"]
        ):
            frame.at[at, "started_at"] = start
    return frame


# --- linking --------------------------------------------------------------------


def _service_key(value: Any) -> str | None:
    if value is None or pd.isna(value):
        return None
    key = re.sub(r"[^a-z0-9]", "", str(value).lower())
    return key or None


def link_incidents(frame: pd.DataFrame, window_minutes: float = 60.0) -> pd.DataFrame:
    """Link and de-duplicate one incident seen through several sources.

    See the module docstring for the rule.

    Parameters
    ----------
    frame
        Incidents with the contract columns.
    window_minutes
        How long an incident without a resolution time is taken to last.

    Returns
    -------
    pandas.DataFrame
        One row per cluster of linked incidents, ``linked_ids`` filled.
    """
    if frame.empty or frame["source"].nunique() < 2:
        return frame
    frame = frame.reset_index(drop=True)
    window = pd.Timedelta(minutes=window_minutes)
    service = frame["service"].map(_service_key)
    usable = (
        service.notna() & frame["started_at"].notna() & ~frame["source"].isin(_BACKFILL)
    )
    end = frame["resolved_at"].where(
        frame["resolved_at"].notna() & (frame["resolved_at"] >= frame["started_at"]),
        frame["started_at"] + window,
    )

    parent = list(range(len(frame)))
    sources = [{s} for s in frame["source"]]

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    candidates = frame[usable].assign(_service=service[usable], _end=end[usable])
    for _, group in candidates.groupby("_service", sort=False):
        if group["source"].nunique() < 2:
            continue
        group = group.sort_values("started_at")
        rows = list(
            zip(
                group.index,
                group["started_at"],
                group["_end"],
                group["source"],
                strict=True,
            )
        )
        for i, (a, _start, end_a, source_a) in enumerate(rows):
            for b, start_b, _end_b, source_b in rows[i + 1 :]:
                if start_b > end_a:
                    break
                if source_a == source_b:
                    continue
                ra, rb = root(a), root(b)
                if ra != rb and not (sources[ra] & sources[rb]):
                    parent[rb] = ra
                    sources[ra] |= sources[rb]

    clusters: dict[int, list[int]] = {}
    for i in range(len(frame)):
        clusters.setdefault(root(i), []).append(i)
    if all(len(members) == 1 for members in clusters.values()):
        return frame
    keep_rows = []
    for members in clusters.values():
        if len(members) == 1:
            keep_rows.append(frame.loc[members[0]])
            continue
        keep_rows.append(_combine(frame.loc[members]))
    return pd.DataFrame(keep_rows).reset_index(drop=True)


def _combine(rows: pd.DataFrame) -> pd.Series:
    richness = rows[_RICH_FIELDS].notna().sum(axis=1)
    priority = rows["source"].map(_PRIORITY).fillna(5)
    order = (
        pd.DataFrame(
            {"rich": -richness, "priority": priority, "id": rows["incident_id"]}
        )
        .sort_values(["rich", "priority", "id"])
        .index
    )
    ordered = rows.loc[order]
    kept = ordered.iloc[0].copy()
    for column in _RICH_FIELDS:
        if pd.isna(kept[column]):
            values = ordered[column].dropna()
            if len(values):
                kept[column] = values.iloc[0]
    if (rows["trigger"] == "rollback").any():
        kept["trigger"] = "rollback"
    counts = rows["alert_count"].dropna()
    if len(counts):
        kept["alert_count"] = int(counts.sum())
    others = sorted(str(i) for i in ordered["incident_id"].iloc[1:])
    previous = (
        [p for p in str(kept["linked_ids"]).split(";") if p and p != "<NA>"]
        if (pd.notna(kept["linked_ids"]))
        else []
    )
    kept["linked_ids"] = ";".join(sorted(set(previous) | set(others)))
    log.debug("Linked %s with %s", kept["incident_id"], kept["linked_ids"])
    return kept


# --- writing --------------------------------------------------------------------


def write_incidents_csv(df: pd.DataFrame, out: Any) -> None:
    """Write incidents as the contract CSV: times ISO-8601 UTC, missing cells empty.

    Parameters
    ----------
    df
        Incidents (at least ``schema.INCIDENT_COLUMNS``); extra columns known
        to the schema follow them.
    out
        A path or a text stream (for example ``sys.stdout``).
    """
    columns = [c for c in ALL_COLUMNS if c in df.columns]
    missing = [c for c in INCIDENT_COLUMNS if c not in df.columns]
    if missing:
        raise InputFormatError(f"incidents table lacks column(s) {', '.join(missing)}")
    table = df[columns].copy()
    for column in ("started_at", "resolved_at"):
        times = pd.to_datetime(table[column], utc=True)
        table[column] = times.dt.strftime("%Y-%m-%dT%H:%M:%SZ").where(times.notna())
    if isinstance(out, str | Path):
        with Path(out).open("w", encoding="utf-8", newline="") as handle:
            table.to_csv(handle, index=False)
    else:
        table.to_csv(out, index=False)
