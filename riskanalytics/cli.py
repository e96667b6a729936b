"""The ``riskanalytics`` command line.

Exit codes: 0 success; 1 the job ran but found what the user must act on
(``run --trigger weekly`` with overdue reviews; a failed notebook); 2 bad input
or configuration, with a message naming the file and the place, and nothing
written.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from pathlib import Path

import click

from riskanalytics.exceptions import RiskAnalyticsError
from riskanalytics.schema import TRIGGERS

__all__ = ["main"]

log = logging.getLogger(__name__)


class _Group(click.Group):
    """Turns every RiskAnalyticsError into a message and exit code 2."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except RiskAnalyticsError as exc:
            from riskanalytics.pipeline import RunFailedError

            click.echo(f"error: {exc}", err=True)
            ctx.exit(1 if isinstance(exc, RunFailedError) else 2)


@click.group(cls=_Group)
@click.option("-v", "--verbose", count=True, help="More log detail (-vv: debug).")
@click.option("-q", "--quiet", is_flag=True, help="Only warnings and errors.")
@click.version_option(package_name="riskanalytics")
def cli(verbose: int, quiet: bool) -> None:
    """Close the loop between a risk register and real incidents."""
    level = logging.WARNING if quiet else logging.INFO
    if verbose > 1:
        level = logging.DEBUG
    logging.basicConfig(
        level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )
    logging.captureWarnings(True)
    if not verbose:  # their progress lines repeat ours; -v shows them
        for name in _CHATTY:
            logging.getLogger(name).setLevel(max(level, logging.WARNING))


#: Libraries whose INFO lines only repeat what riskanalytics logs itself.
_CHATTY = ("papermill", "apprise", "traitlets")


_existing = click.Path(exists=True, dir_okay=False, path_type=Path)


@cli.command()
@click.option(
    "--config",
    "config_path",
    default="config.yaml",
    show_default=True,
    type=click.Path(path_type=Path),
    help="The configuration file.",
)
@click.option(
    "--trigger",
    type=click.Choice(TRIGGERS),
    default="manual",
    show_default=True,
    help="What started this run; recorded in run.json.",
)
@click.option(
    "--rollback-log",
    type=_existing,
    multiple=True,
    help="A rollback log written by the release runbook's rollback step.",
)
@click.option(
    "--report",
    "reports",
    type=_existing,
    multiple=True,
    help="A manual or near-miss report (Markdown, CSV, JSONL, YAML).",
)
@click.option(
    "--input",
    "extra",
    type=_existing,
    multiple=True,
    help="Any other incident file for this run (a webhook payload, an export).",
)
@click.option(
    "--incident-id",
    default=None,
    help="The incident this run is about (with --trigger resolved, the one "
    "resolved); the run stops with exit 2 if no source holds it.",
)
@click.option("--dry-run", is_flag=True, help="Show the register diff; write nothing.")
@click.option("--no-notify", is_flag=True, help="Do not send notifications.")
@click.option("--run-id", default=None, help="Name of the run folder under reports.")
@click.option(
    "--strict",
    is_flag=True,
    help="A bad record in an incident file stops the run (config: strict).",
)
def run(
    config_path,
    trigger,
    rollback_log,
    reports,
    extra,
    incident_id,
    dry_run,
    no_notify,
    run_id,
    strict,
):
    """Run the whole job: reconcile, update the register, reviews, metrics.

    Four notebooks are executed into reports/<run-id>/ with their HTML, the
    charts, the reviews written and run.json.
    """
    from riskanalytics import pipeline
    from riskanalytics.config import load_config

    config = load_config(config_path, strict=True if strict else None)
    inputs = [*rollback_log, *reports, *extra]
    if trigger == "near-miss" and not inputs:
        raise click.UsageError("--trigger near-miss needs --report FILE")
    if trigger == "rollback" and not inputs:
        log.warning(
            "--trigger rollback without --rollback-log: configured sources only"
        )

    if run_id is not None:
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", run_id):
            raise click.BadParameter(
                f"{run_id!r} is not a folder name (letters, digits, '.', '_', '-')",
                param_hint="'--run-id'",
            )
        if (config.reports_dir / run_id).exists():
            raise click.BadParameter(
                f"{config.reports_dir / run_id} exists; runs are never overwritten",
                param_hint="'--run-id'",
            )
    if incident_id is not None:
        pipeline.require_incident(config, incident_id, inputs)

    if dry_run:
        preview = pipeline.preview(config, trigger=trigger, inputs=inputs)
        click.echo(preview["diff"] or "# the register would not change")
        click.echo(json.dumps(preview["summary"], indent=2), err=True)
        _echo_unsent(preview["notifications"])
        return

    summary = pipeline.run(
        config,
        trigger=trigger,
        inputs=inputs,
        notify=not no_notify,
        run_id=run_id,
        incident_id=incident_id,
    )
    if no_notify:
        _echo_unsent(summary.get("notifications", {}))
    counts = summary["counts"]
    failed = summary.get("notifications", {}).get("counts", {}).get("failed", 0)
    click.echo(
        f"run {summary['run_id']}: {counts['incidents']} incidents, "
        f"{counts['realized']} realized, "
        + (f"{counts['near_misses']} near miss(es), " if counts["near_misses"] else "")
        + f"{counts['new_risks']} new, "
        f"{counts['needs_review']} to review; reviews overdue: "
        f"{counts['reviews_overdue']}; "
        + (
            f"{counts['skipped_records']} record(s) skipped (see the log); "
            if counts.get("skipped_records")
            else ""
        )
        + (f"{failed} notification(s) failed (see the log); " if failed else "")
        + f"report: {config.reports_dir / summary['run_id']}"
    )
    if trigger == "weekly" and counts["reviews_overdue"]:
        log.warning(
            "%d post-incident review(s) overdue: exit 1 (the report lists them in "
            "03_post_incident_review.html)",
            counts["reviews_overdue"],
        )
        sys.exit(1)


def _echo_unsent(notifications: dict) -> None:
    """Print, on stderr, the notifications a run did not send but would have."""
    if not notifications.get("enabled"):
        click.echo("# notifications are disabled in the configuration", err=True)
        return
    entries = notifications.get("dry_run", [])
    if not entries:
        click.echo("# no notification would be sent", err=True)
    for entry in entries:
        click.echo(
            f"would notify {entry['owner']} via {entry.get('url') or 'no URL'}: "
            f"{entry['title']}",
            err=True,
        )
        click.echo("    " + entry["body"].replace("\n", "\n    "), err=True)


@cli.command()
@click.argument("files", nargs=-1, type=click.Path(path_type=Path))
@click.option("--format", "fmt", default=None, help="Input format (default: detect).")
@click.option("--output", type=click.Path(dir_okay=False, path_type=Path), default=None)
@click.option("--strict", is_flag=True, help="A bad record is an error, not skipped.")
@click.option(
    "--timezone", default="UTC", show_default=True, help="Zone for naive times."
)
@click.option(
    "--pull",
    "pull_source",
    type=click.Choice(["pagerduty", "opsgenie"]),
    default=None,
    help="Pull resolved incidents from this service's API (token from "
    "PAGERDUTY_API_TOKEN or OPSGENIE_API_KEY) instead of reading files.",
)
@click.option("--since", type=click.DateTime(["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S"]))
@click.option("--until", type=click.DateTime(["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S"]))
def ingest(files, fmt, output, strict, timezone, pull_source, since, until):
    """Normalize incident files (or an API pull) to the incident columns, as CSV.

    FILES are files, folders or glob patterns. The format of each file is
    detected from its content; --format names it instead: alertmanager,
    argo-rollouts, cloud-incidents, csv, danluu, github-deployment, grafana,
    grafana-legacy, helm, issre, json, jsonl, k8s-failure-stories, kubectl,
    opsgenie (webhooks, Alert and Incident API objects), pagerduty (webhooks
    v3 and v2, REST incidents and log entries, Analytics raw incidents),
    postmortem (bold-label Markdown),
    postmortem-frontmatter (YAML front matter: a postmortem, or a manual or
    near-miss report with the incident columns, as in
    learning/near-miss-template.md), rollback-log.
    """
    from riskanalytics.exceptions import InputFormatError
    from riskanalytics.ingest import read_incidents, write_incidents_csv

    if output is not None and not output.absolute().parent.is_dir():
        raise click.BadParameter(
            f"folder {str(output.parent)!r} does not exist", param_hint="'--output'"
        )
    if output is not None and str(output) == "-":
        output = None  # standard output, as without --output
    if output is not None and output.suffix.lower() != ".csv":
        # ingest writes CSV: replacing a register or a report by it loses the file
        raise click.BadParameter(
            f"{str(output)!r} is no .csv path; ingest writes CSV",
            param_hint="'--output'",
        )
    if pull_source:
        from datetime import UTC, datetime, timedelta

        from riskanalytics.ingest.live import pull

        until = until or datetime.now(UTC)
        since = since or until - timedelta(days=7)
        frame = pull(pull_source, since=since, until=until)
        write_incidents_csv(frame, output or sys.stdout)
        log.info("%d incidents pulled from %s", len(frame), pull_source)
        return
    if not files:
        raise click.UsageError("give incident FILES, or --pull SERVICE")

    result = read_incidents(files, fmt, strict=strict, default_timezone=timezone)
    if result.incidents.empty and result.skipped:
        first = result.skipped[0]
        raise InputFormatError(
            f"{first.file}: every record was skipped ({len(result.skipped)}); "
            f"{first.record}: {first.reason}"
        )
    write_incidents_csv(result.incidents, output or sys.stdout)
    log.info(
        "%d incidents from %d files, %d records skipped",
        len(result.incidents),
        len(result.files),
        len(result.skipped),
    )


@cli.command()
@click.option("--register", "register_path", required=True, type=_existing)
@click.option(
    "--incidents",
    "incident_files",
    required=True,
    multiple=True,
    type=click.Path(exists=True, path_type=Path),
    help="Incident files or folders (any format ingest reads).",
)
@click.option("--format", "fmt", type=click.Choice(["csv", "json"]), default="csv")
@click.option(
    "--config",
    "config_path",
    type=_existing,
    default=None,
    help="Take thresholds and analyst decisions from this configuration.",
)
def match(register_path, incident_files, fmt, config_path):
    """Match incidents against a register; one row per incident.

    Columns: incident_id, risk_id, score (0 to 100), decision (matched, review,
    new), candidates (RISK_ID:score joined by ';', best first).
    """
    from riskanalytics.decisions import load_decisions
    from riskanalytics.ingest import read_incidents
    from riskanalytics.match import match_incidents
    from riskanalytics.register import read_register

    register = read_register(register_path)
    incidents = read_incidents(incident_files).incidents
    matching, decisions = None, None
    if config_path is not None:
        from riskanalytics.config import load_config

        config = load_config(config_path)
        matching, decisions = config.matching, load_decisions(config.decisions_path)
    table = match_incidents(incidents, register.risks, matching, decisions)
    table = table.rename(columns={"match_score": "score"})
    table["score"] = table["score"].round(1)
    columns = ["incident_id", "risk_id", "score", "decision", "candidates"]
    if fmt == "csv":
        table[columns].to_csv(sys.stdout, index=False)
    else:
        rows = table[columns].astype(object).where(table[columns].notna(), None)
        click.echo(json.dumps(rows.to_dict(orient="records"), indent=2))


@cli.group()
def register() -> None:
    """Inspect a risk register."""


@register.command("check")
@click.argument("path", type=click.Path(path_type=Path))
def register_check(path):
    """Print what was understood of a register; exit 2 on problems."""
    from riskanalytics.register import check_register

    report = check_register(path)
    click.echo(report.to_text())
    if not report.ok:
        sys.exit(2)


@register.command("add-ids")
@click.argument("path", type=_existing)
@click.option("--prefix", default="R-", show_default=True, help="Text before numbers.")
@click.option(
    "--width",
    default=3,
    show_default=True,
    type=click.IntRange(1, 9),
    help="Digits of each number, zero-padded.",
)
@click.option("--dry-run", is_flag=True, help="Print the change; write nothing.")
def register_add_ids(path, prefix, width, dry_run):
    """Add an ID column to a register whose risk table has none.

    The rows are numbered in the order they are written (R-001, R-002 ...);
    only the table's lines change, and the previous version is kept as a
    backup. Prints the change as a unified diff; exit 2 when the table
    already has ids or none is found.
    """
    from riskanalytics.register.ids import add_ids

    result = add_ids(path, prefix=prefix, width=width, dry_run=dry_run)
    click.echo(result.diff)
    done = "added" if result.written else "would add"
    click.echo(
        f"# {done} {len(result.ids)} ids, {result.ids[0]} to {result.ids[-1]}"
        if result.ids
        else "# the risk table has no rows",
        err=True,
    )


@cli.command()
@click.option("--config", "config_path", default="config.yaml", type=_existing)
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8080, show_default=True, type=click.IntRange(0, 65535))
def serve(config_path, host, port):
    """Receive webhooks and queue runs (PagerDuty, Alertmanager, GitHub, ...)."""
    from riskanalytics.serve import serve as serve_app

    serve_app(config_path, host=host, port=port)


def main() -> None:
    """Entry point of the ``riskanalytics`` command."""
    cli(prog_name="riskanalytics")
