"""Rollbacks: the release runbook's rollback log, Helm, Argo Rollouts, kubectl
rollout history and GitHub deployment_status webhooks.

Every incident read here has trigger ``rollback``.

Rollback log
    JSON lines or ``key=value`` text lines (values may be double-quoted) with
    ``time, service, from_version, to_version, reason, operator``; the reason is
    the root cause. Id ``rollback-<service>-<YYYYmmddTHHMMSS>``, or the line's
    ``incident_id`` when it has one.
Helm history
    ``helm history RELEASE`` as a table (Helm 3 or 4 columns), JSON or YAML. A
    revision whose description says ``Rollback to N`` is an incident
    ``<release>-rev<revision>``: it started when the revision it replaced was
    deployed and was resolved by the rollback. The release name is the file
    name up to its first ``.`` (``checkout.helm-history.json`` -> ``checkout``),
    since Helm's output does not carry it. Table times have no zone and use
    the default zone.
Argo Rollouts
    A Rollout with ``status.abort: true`` is an incident
    ``argo-<namespace>-<name>-rev<revision>``; its root cause is the failed
    analysis message. A failed AnalysisRun of the same rollout and revision (in
    another file or document) adds its metric measurements to the root cause.
kubectl rollout history
    Revisions missing between the first and last listed are revisions that
    were rolled back to (kubectl renumbers them). Each is an incident
    ``kubectl-<name>-rev<N>``, dated by the ``orig-time`` in the next listed
    revision's change cause, when present.
GitHub deployment_status
    A status of ``failure`` or ``error`` is an incident
    ``gh-deploy-<deployment id>-<status id>``; other states are not incidents.
"""

from __future__ import annotations

import json
import logging
import re
import shlex
from pathlib import Path
from typing import Any

import yaml

from riskanalytics.exceptions import InputFormatError
from riskanalytics.ingest._common import (
    ReadContext,
    RecordError,
    first,
    load_json,
    parse_time,
    read_json_records,
    read_text,
    slug,
    text_or_none,
)

__all__ = [
    "read_argo_rollouts",
    "read_github_deployment",
    "read_helm_history",
    "read_kubectl_history",
    "read_rollback_log",
]

log = logging.getLogger(__name__)

_RECORD_ERRORS = (RecordError, KeyError, TypeError, ValueError, AttributeError)


# --- rollback log -----------------------------------------------------------------


def read_rollback_log(path: Path, ctx: ReadContext) -> list[dict[str, Any]]:
    """Read the rollback log the release runbook appends to (JSON or key=value lines).

    Returns
    -------
    list of dict
        One incident dict per rollback line.
    """
    text = read_text(path)
    records = []
    json_lines = text.lstrip().startswith("{")
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        where = f"line {number}"
        try:
            if json_lines:
                entry = json.loads(line)
            else:
                entry = dict(
                    part.split("=", 1) for part in shlex.split(line) if "=" in part
                )
            record = _rollback_entry(entry, ctx)
        except (json.JSONDecodeError, *_RECORD_ERRORS) as exc:
            ctx.skip(path, where, f"not a rollback log line: {exc}")
            continue
        record["_record"] = where
        records.append(record)
    return records


def _rollback_entry(entry: Any, ctx: ReadContext) -> dict[str, Any]:
    if not isinstance(entry, dict):
        raise RecordError(f"expected an object, found {type(entry).__name__}")
    service = text_or_none(entry.get("service"))
    when = parse_time(first(entry.get("time"), entry.get("timestamp")), ctx.tz)
    if service is None or when is None:
        raise RecordError("expected 'time' and 'service'")
    started = parse_time(entry.get("started_at"), ctx.tz) or when
    source_version = text_or_none(entry.get("from_version"))
    target = text_or_none(entry.get("to_version"))
    action = f"rolled back {service}"
    if source_version:
        action += f" from {source_version}"
    if target:
        action += f" to {target}"
    operator = text_or_none(entry.get("operator"))
    if operator:
        action += f" by {operator}"
    incident_id = text_or_none(entry.get("incident_id"))
    return {
        "incident_id": incident_id
        or f"rollback-{slug(service)}-{when.strftime('%Y%m%dT%H%M%S')}",
        "source": "rollback-log",
        "title": text_or_none(entry.get("title"))
        or f"Rollback of {service} {source_version or ''}".strip(),
        "root_cause": text_or_none(entry.get("reason")),
        "impact": text_or_none(entry.get("impact")),
        "started_at": started,
        "resolved_at": when,
        "severity": text_or_none(entry.get("severity")),
        "service": service,
        "recovery_actions": action,
        "trigger": "rollback",
    }


# --- Helm ---------------------------------------------------------------------


#: What ``helm rollback`` prints when it is done, and nothing else.
_HELM_ROLLBACK_DONE = re.compile(r"^Rollback was a success! Happy Helming!\s*$")


def read_helm_history(path: Path, ctx: ReadContext) -> list[dict[str, Any]]:
    """Read ``helm history`` output (table, JSON or YAML); rollbacks become incidents.

    Returns
    -------
    list of dict
        One incident dict per rollback revision.
    """
    text = read_text(path)
    stripped = text.lstrip()
    if _HELM_ROLLBACK_DONE.match(stripped):
        log.warning(
            "%s: 'helm rollback' output names no release, revision or time; no "
            "incident read. Save 'helm history RELEASE -o json' after a rollback "
            "instead",
            path,
        )
        return []
    if stripped.startswith("REVISION"):
        rows = _helm_table(text)
    else:
        try:
            rows = (
                load_json(path, text)
                if stripped.startswith("[")
                else yaml.safe_load(text)
            )
        except yaml.YAMLError as exc:
            raise InputFormatError(
                f"{path}: expected Helm history YAML: {exc}"
            ) from None
        if not isinstance(rows, list):
            raise InputFormatError(
                f"{path}: expected a list of Helm revisions, found "
                f"{type(rows).__name__}"
            )
    release = path.name.split(".")[0]
    release = re.sub(r"[-_]?history$", "", release) or release
    revisions: dict[int, dict] = {}
    for i, row in enumerate(rows):
        try:
            revisions[int(row["revision"])] = row
        except (*_RECORD_ERRORS,) as exc:
            ctx.skip(path, f"revision [{i}]", f"expected a 'revision' number: {exc}")
    records = []
    for number, row in sorted(revisions.items()):
        description = str(row.get("description") or "")
        target = re.search(r"Rollback to (\d+)", description)
        if not target:
            continue
        try:
            records.append(_helm_rollback(release, number, row, revisions, target, ctx))
        except _RECORD_ERRORS as exc:
            ctx.skip(path, f"revision {number}", exc)
    return records


def _helm_table(text: str) -> list[dict[str, Any]]:
    lines = [line for line in text.splitlines() if line.strip()]
    splitter = "\t" if "\t" in lines[0] else None
    header = [
        h.strip().lower().replace(" ", "_")
        for h in (
            lines[0].split(splitter) if splitter else re.split(r"\s{2,}", lines[0])
        )
    ]
    rows = []
    for line in lines[1:]:
        cells = line.split("\t") if splitter else re.split(r"\s{2,}", line.strip())
        row = {h: c.strip() for h, c in zip(header, cells, strict=False)}
        if "rollback" in row:
            row["rollback_revision"] = row.pop("rollback")
        rows.append(row)
    return rows


def _helm_rollback(release, number, row, revisions, target, ctx) -> dict[str, Any]:
    to_revision = int(target.group(1))
    replaced = revisions.get(number - 1, {})
    resolved = parse_time(row.get("updated"), ctx.tz)
    started = parse_time(replaced.get("updated"), ctx.tz) or resolved
    failed = str(replaced.get("status", "")).lower() == "failed"
    cause = text_or_none(replaced.get("description"))
    chart = text_or_none(replaced.get("chart"))
    title = f"Helm release {release} rolled back to revision {to_revision}"
    root = None
    if failed or (
        cause and cause.lower() not in {"upgrade complete", "install complete"}
    ):
        root = f"revision {number - 1} ({chart}): {cause}" if cause else None
    return {
        "incident_id": f"{release}-rev{number}",
        "source": "helm",
        "title": title,
        "root_cause": root,
        "started_at": started,
        "resolved_at": resolved,
        "service": release,
        "recovery_actions": f"helm rollback {release} {to_revision}",
        "trigger": "rollback",
    }


# --- Argo Rollouts ---------------------------------------------------------------


def read_argo_rollouts(path: Path, ctx: ReadContext) -> list[dict[str, Any]]:
    """Read Argo Rollout / AnalysisRun YAML (or JSON) documents.

    Aborted Rollouts give incidents; failed AnalysisRuns give root-cause details
    that are attached to their Rollout's incident when both are read.
    """
    text = read_text(path)
    try:
        documents = [d for d in yaml.safe_load_all(text) if d is not None]
    except yaml.YAMLError as exc:
        raise InputFormatError(f"{path}: expected Kubernetes YAML: {exc}") from None
    items = []
    for document in documents:
        if isinstance(document, dict) and document.get("kind") == "List":
            items.extend(document.get("items") or [])
        else:
            items.append(document)
    records = []
    for i, item in enumerate(items):
        where = f"document {i + 1}"
        try:
            kind = item.get("kind")
            if kind == "Rollout":
                record = _argo_rollout(item, ctx)
            elif kind == "AnalysisRun":
                record = _argo_analysis(item, ctx)
            else:
                raise RecordError(
                    f"expected kind Rollout or AnalysisRun, found {kind!r}"
                )
        except _RECORD_ERRORS as exc:
            ctx.skip(path, where, exc)
            continue
        if record is not None:
            record["_record"] = where
            records.append(record)
    return records


def _argo_id(namespace: Any, name: Any, revision: Any) -> str:
    return f"argo-{namespace or 'default'}-{name}-rev{revision}"


def _argo_rollout(item: dict, ctx: ReadContext) -> dict[str, Any] | None:
    meta = item["metadata"]
    status = item.get("status") or {}
    if not status.get("abort"):
        return None
    revision = (meta.get("annotations") or {}).get("rollout.argoproj.io/revision", "0")
    conditions = status.get("conditions") or []
    aborted = next(
        (
            c
            for c in conditions
            if isinstance(c, dict) and c.get("reason") == "RolloutAborted"
        ),
        {},
    )
    canary = status.get("canary") or {}
    analysis = first(
        (canary.get("currentBackgroundAnalysisRunStatus") or {}).get("message"),
        (canary.get("currentStepAnalysisRunStatus") or {}).get("message"),
    )
    containers = (
        ((item.get("spec") or {}).get("template") or {}).get("spec") or {}
    ).get("containers") or []
    images = ", ".join(str(c.get("image")) for c in containers if isinstance(c, dict))
    aborted_at = parse_time(status.get("abortedAt"), ctx.tz)
    started = parse_time(aborted.get("lastTransitionTime"), ctx.tz) or aborted_at
    return {
        "incident_id": _argo_id(meta.get("namespace"), meta["name"], revision),
        "source": "argo-rollouts",
        "title": f"Rollout {meta['name']} aborted at revision {revision}",
        "root_cause": text_or_none(first(analysis, aborted.get("message"))),
        "impact": f"canary of {images} aborted" if images else None,
        "started_at": min(started, aborted_at) if started and aborted_at else started,
        "resolved_at": aborted_at,
        "service": text_or_none(
            first((meta.get("labels") or {}).get("app"), meta["name"])
        ),
        "recovery_actions": "rollout aborted; traffic returned to the stable version",
        "trigger": "rollback",
    }


def _argo_analysis(item: dict, ctx: ReadContext) -> dict[str, Any] | None:
    meta = item["metadata"]
    status = item.get("status") or {}
    if status.get("phase") not in ("Failed", "Error", "Inconclusive"):
        return None
    owner = next(
        (
            o.get("name")
            for o in meta.get("ownerReferences") or []
            if isinstance(o, dict) and o.get("kind") == "Rollout"
        ),
        None,
    )
    if owner is None:
        raise RecordError("AnalysisRun has no Rollout owner reference")
    revision = (meta.get("annotations") or {}).get("rollout.argoproj.io/revision", "0")
    details = []
    for metric in status.get("metricResults") or []:
        values = [
            str(m.get("value"))
            for m in metric.get("measurements") or []
            if isinstance(m, dict) and m.get("value") is not None
        ]
        details.append(
            f"metric {metric.get('name')} {metric.get('phase')}"
            + (f" (values: {', '.join(values)})" if values else "")
        )
    return {
        "_attach_to": _argo_id(meta.get("namespace"), owner, revision),
        "root_cause": "; ".join(
            d for d in [text_or_none(status.get("message")), *details] if d
        ),
        "started_at": parse_time(status.get("startedAt"), ctx.tz),
    }


# --- kubectl --------------------------------------------------------------------

_KUBE_HEADER = re.compile(
    r"^(?:[\w.-]+\$\s+kubectl[^\n]*\n)?\s*([a-z]+(?:\.[a-z0-9.]+)?)/([\w.-]+)\s*$",
    re.MULTILINE,
)
_KUBE_ROW = re.compile(r"^\s*(\d+)\s+(.*?)\s*$")

#: Revision numbers are int64 in Kubernetes; a longer one is no revision.
_KUBE_MAX_DIGITS = 19

#: Each revision missing from a rollout history is a rollback to it; more
#: missing revisions than this in one history is no history kubectl printed
#: (a Deployment keeps ``revisionHistoryLimit`` revisions, 10 by default).
_KUBE_MAX_MISSING = 1000


def read_kubectl_history(path: Path, ctx: ReadContext) -> list[dict[str, Any]]:
    """Read ``kubectl rollout history`` output, also inside a Markdown note."""
    text = read_text(path)
    records = []
    for header in _KUBE_HEADER.finditer(text):
        rest = text[header.end() :].lstrip("\n")
        if not rest.startswith("REVISION"):
            continue
        name = header.group(2)
        rows: dict[int, str] = {}
        for line in rest.splitlines()[1:]:
            row = _KUBE_ROW.match(line)
            if not row:
                break
            if len(row.group(1)) > _KUBE_MAX_DIGITS:
                ctx.skip(
                    path, f"{name} revision {row.group(1)[:12]}...", "not a number"
                )
                continue
            rows[int(row.group(1))] = row.group(2).strip("'\"")
        if not rows:
            continue
        numbers = sorted(rows)
        gap = numbers[-1] - numbers[0] + 1 - len(numbers)
        if gap > _KUBE_MAX_MISSING:
            ctx.skip(
                path,
                f"{name} revisions {numbers[0]} to {numbers[-1]}",
                f"{gap} revisions missing between them; a rollout history with "
                f"more than {_KUBE_MAX_MISSING} is not read as rollbacks",
            )
            continue
        for missing in range(numbers[0] + 1, numbers[-1]):
            if missing in rows:
                continue
            after = next(n for n in numbers if n > missing)
            when = re.search(r"orig-time:\s*([^;']+)", rows[after])
            try:
                started = parse_time(when.group(1).strip(), ctx.tz) if when else None
            except ValueError as exc:
                if ctx.strict:
                    ctx.skip(path, f"revision {after}", exc)
                # the rollback is kept, undated, as other sources keep a bad time
                log.warning(
                    "%s: revision %s: %s; that time is not used", path, after, exc
                )
                started = None
            records.append(
                {
                    "incident_id": f"kubectl-{name}-rev{missing}",
                    "source": "kubectl",
                    "title": f"{header.group(1)}/{name} rolled back to revision "
                    f"{missing}",
                    "started_at": started,
                    "service": name,
                    "recovery_actions": f"kubectl rollout undo {header.group(1)}/"
                    f"{name} --to-revision={missing}",
                    "trigger": "rollback",
                    "_record": f"revision {missing}",
                }
            )
    return records


# --- GitHub ---------------------------------------------------------------------


def read_github_deployment(path: Path, ctx: ReadContext) -> list[dict[str, Any]]:
    """Read GitHub ``deployment_status`` webhook bodies; failures become incidents."""
    records = []
    for label, body in read_json_records(path, ctx):
        try:
            record = _github_status(body, ctx)
        except _RECORD_ERRORS as exc:
            ctx.skip(path, label, f"not a deployment_status body: {exc}")
            continue
        if record is not None:
            record["_record"] = label
            records.append(record)
    return records


def _github_status(body: Any, ctx: ReadContext) -> dict[str, Any] | None:
    status = body["deployment_status"]
    deployment = body["deployment"]
    state = str(status["state"]).lower()
    if state not in ("failure", "error"):
        log.debug(
            "deployment_status %s is %s: not an incident", status.get("id"), state
        )
        return None
    repository = body.get("repository") or {}
    environment = text_or_none(
        first(status.get("environment"), deployment.get("environment"))
    )
    ref = text_or_none(first(deployment.get("ref"), deployment.get("sha")))
    service = text_or_none(repository.get("name"))
    return {
        "incident_id": f"gh-deploy-{deployment['id']}-{status['id']}",
        "source": "github-deployment",
        "title": f"Deployment of {service or 'repository'} {ref or ''} to "
        f"{environment or 'an environment'} ended in {state}",
        "root_cause": text_or_none(status.get("description")),
        "started_at": parse_time(deployment.get("created_at"), ctx.tz),
        "resolved_at": parse_time(status.get("created_at"), ctx.tz),
        "service": service,
        "recovery_actions": text_or_none(status.get("target_url")),
        "trigger": "rollback",
    }
