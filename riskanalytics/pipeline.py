"""The run: four notebooks executed by papermill into ``reports/<run-id>/``.

Each notebook calls one stage function of this module, so everything a run
computes is also reachable from Python without a kernel:

1. :func:`stage_reconcile` (``01_reconciliation``): ingest, match, reconcile.
2. :func:`stage_register_update` (``02_register_update``): the register diff,
   then the atomic update.
3. :func:`stage_reviews` (``03_post_incident_review``): the review checklists.
4. :func:`stage_metrics` (``04_accuracy_metrics``): accuracy metrics and charts.

Stages hand their results to the next through files in the run folder
(``reconciliation.pkl`` and friends), so a notebook can be re-run on its own.
:func:`run` checks the inputs first (a bad config, register or incident file
stops the run before anything is written), executes the notebooks in order,
renders each to HTML without code, notifies owners and writes ``run.json``.
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import re
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from riskanalytics.config import Config, load_config
from riskanalytics.exceptions import ConfigError, RiskAnalyticsError

__all__ = [
    "NOTEBOOKS",
    "ReconcileResult",
    "RunFailedError",
    "load_stage",
    "apply_reviews",
    "new_run_id",
    "preview",
    "require_incident",
    "run",
    "stage_metrics",
    "stage_reconcile",
    "stage_register_update",
    "stage_reviews",
]

log = logging.getLogger(__name__)

NOTEBOOK_DIR = Path(__file__).resolve().parent.parent / "notebooks"

#: The notebooks of a run, in order.
NOTEBOOKS = (
    "01_reconciliation.ipynb",
    "02_register_update.ipynb",
    "03_post_incident_review.ipynb",
    "04_accuracy_metrics.ipynb",
)


class RunFailedError(RiskAnalyticsError):
    """A notebook of the run failed; the message names it and the cell."""


def new_run_id(trigger: str, now: datetime | None = None) -> str:
    """A sortable run id: ``20261203T101500Z-rollback``."""
    now = now or datetime.now(UTC)
    return f"{now:%Y%m%dT%H%M%SZ}-{re.sub(r'[^a-z-]', '', trigger.lower())}"


def _new_run_dir(reports_dir: Path, run_id: str) -> tuple[str, Path]:
    """Create a run folder of its own: two runs started in one second get
    ``<id>`` and ``<id>-2``, never the same folder."""
    reports_dir.mkdir(parents=True, exist_ok=True)
    for number in itertools.count(1):
        name = run_id if number == 1 else f"{run_id}-{number}"
        try:
            (reports_dir / name).mkdir()
        except FileExistsError:
            continue
        return name, reports_dir / name
    raise AssertionError("unreachable")


def _config(config: Config | str | Path) -> Config:
    return config if isinstance(config, Config) else load_config(config)


def _save(run_dir: Path, name: str, value: object) -> None:
    run_dir.mkdir(parents=True, exist_ok=True)
    pd.to_pickle(value, run_dir / f"{name}.pkl")


def load_stage(run_dir: str | Path, name: str) -> object:
    """Load what an earlier stage saved in the run folder."""
    path = Path(run_dir) / f"{name}.pkl"
    if not path.exists():
        raise RiskAnalyticsError(
            f"{path}: missing; run the earlier notebooks of this run first"
        )
    return pd.read_pickle(path)


@dataclass
class ReconcileResult:
    """What the reconciliation stage found."""

    incidents: pd.DataFrame
    skipped: list
    matches: pd.DataFrame
    reconciliation: pd.DataFrame
    register_path: Path
    reviews: pd.DataFrame | None = None


def _ingest(config: Config, inputs: Sequence[str | Path]):
    from riskanalytics.ingest import read_incidents

    paths = [source.path for source in config.incident_sources] + [
        Path(p) for p in inputs
    ]
    formats = {source.format for source in config.incident_sources}
    fmt = formats.pop() if len(formats) == 1 and not inputs else None
    return read_incidents(
        paths,
        None if fmt in (None, "auto") else fmt,
        strict=config.strict,
        default_timezone=config.timezone,
        grouping_by=config.alert_grouping.by,
        grouping_window_minutes=config.alert_grouping.window_minutes,
    )


def _given_for_run(
    incidents: pd.DataFrame, inputs: Sequence[str | Path], trigger: str
) -> pd.DataFrame:
    """Incidents with the run's trigger applied to those of the files it was given.

    An incident without a trigger of its own takes the run's. With ``near-miss``,
    the incidents of the given files are near misses, whatever their report
    says (``riskanalytics run --trigger near-miss --report FILE``).
    """
    if not inputs or "trigger" not in incidents:
        return incidents
    incidents["trigger"] = incidents["trigger"].fillna(trigger)
    if trigger == "near-miss" and "source_file" in incidents:
        given = {str(Path(p)) for p in inputs}
        mine = incidents["source_file"].astype(str).isin(given)
        incidents.loc[mine, "trigger"] = "near-miss"
        near = incidents["near_miss"].eq(True) if "near_miss" in incidents else False
        incidents["near_miss"] = mine | near
    return incidents


def _warn_outside_sources(config: Config, inputs: Sequence[str | Path]) -> None:
    """Warn of given files that later runs will not read.

    The register's history keeps what their incidents realized, but the next
    run's reconciliation and metrics hold only the configured sources' incidents.
    """
    sources = [Path(source.path).resolve() for source in config.incident_sources]
    for given in inputs:
        path = Path(given).resolve()
        if not any(path == s or s in path.parents for s in sources):
            log.warning(
                "%s is not in incident_sources: later runs and the weekly metrics"
                " will not see its incidents; write it into a configured source"
                " or give it again",
                given,
            )


#: History event of a realization an analyst's decision moved to another risk.
WITHDRAWN = "withdrawn"


def _history_by_incident(history: pd.DataFrame) -> dict[str, tuple[str, str]]:
    """incident id -> (event, risk id) of what the register already records.

    A realization later withdrawn (an analyst redirected the incident) no longer
    counts, unless the risk is realized again after the withdrawal; the history
    keeps every row.
    """
    if history is None or history.empty:
        return {}
    rows = [
        (
            str(row.get("event") or "realized").strip().lower(),
            str(row["incident_id"]).strip(),
            str(row["risk_id"]).strip(),
        )
        for _, row in history.iterrows()
    ]
    # in file order: a withdrawal takes back what came before it for that risk
    # and incident, not a realization recorded after it
    active: dict[str, list[tuple[str, str]]] = {}
    for event, incident_id, risk_id in rows:
        entries = active.setdefault(incident_id, [])
        if event == WITHDRAWN:
            entries[:] = [(e, r) for e, r in entries if r != risk_id]
        elif all(r != risk_id for _, r in entries):
            entries.append((event, risk_id))
    return {i: entries[0] for i, entries in active.items() if entries}


#: Outcomes of an analyst's decision that withdraw a recorded realization (a
#: redirect to another risk or to a new risk, or a rejection of the recorded
#: risk that leaves the incident for review), and what is recorded instead.
_WITHDRAWING = {
    "realized": "{risk} as realized",
    "new_risk": "the incident as a new risk",
    "needs_review": "the incident as one to review",
}


def _apply_history(
    recon: pd.DataFrame, risks: pd.DataFrame, recorded: dict, config: Config
) -> pd.DataFrame:
    """Keep what the register already records for an incident: re-runs agree."""
    by_risk = risks.set_index("risk_id", drop=False)
    recon["withdraws"] = None
    recon["decision_not_applied"] = None
    for i, row in recon.iterrows():
        kind, risk_id = recorded.get(str(row["incident_id"]), (None, None))
        if kind is None:
            continue
        known = risk_id in by_risk.index
        if not known:
            # the risk was deleted from the table by hand: the history still says
            # what the incident did, so it is not matched to another risk
            log.warning(
                "Incident %s is recorded as %s %s, which is no longer in the "
                "register's table; nothing new is recorded for it",
                row["incident_id"],
                kind,
                risk_id,
            )
        elif row.get("decided_by") == "analyst" and row["risk_id"] != risk_id:
            withdraws = (
                row["outcome"] in _WITHDRAWING
                if kind != "created"
                else row["outcome"] == "realized"  # a new risk that was not new
            )
            if withdraws:
                log.warning(
                    "Incident %s is recorded as %s %s; an analyst's decision "
                    "changes that: the history records %s as withdrawn and %s. The "
                    "Status of %s is left as it is: change it by hand%s",
                    row["incident_id"],
                    "creating" if kind == "created" else "realizing",
                    risk_id,
                    risk_id,
                    _WITHDRAWING[row["outcome"]].format(risk=row["risk_id"]),
                    risk_id,
                    "" if kind == "created" else " if no other incident realized it",
                )
                recon.at[i, "withdraws"] = risk_id
                continue
            if kind == "created" and row["outcome"] == "new_risk":
                pass  # the new risk it made is recorded: nothing to apply
            else:
                log.warning(
                    "Incident %s is recorded in the register as %s %s; an "
                    "analyst's decision (%s) is shown in the reports but not "
                    "applied to the register: edit the register by hand",
                    row["incident_id"],
                    kind,
                    risk_id,
                    row["outcome"],
                )
                recon.at[i, "decision_not_applied"] = (
                    f"recorded as {kind} {risk_id}; the decision makes it "
                    f"{row['outcome']}"
                    + (f" {row['risk_id']}" if isinstance(row["risk_id"], str) else "")
                )
        risk = by_risk.loc[risk_id] if known else pd.Series(dtype=object)
        recon.at[i, "outcome"] = "new_risk" if kind == "created" else "realized"
        recon.at[i, "risk_id"] = risk_id
        if kind == "near-miss":
            # recorded as a near miss (a run given it with --trigger near-miss):
            # so it stays, whatever its file says
            recon.at[i, "near_miss"] = True
            recon.at[i, "trigger"] = "near-miss"
            recon.at[i, "mitigation_verdict"] = "worked"
        recon.at[i, "risk_description"] = risk.get("description")
        recon.at[i, "owner"] = risk.get("owner") or config.default_owner
        recon.at[i, "mitigations"] = risk.get("mitigations")
        if kind == "created":
            recon.at[i, "mitigation_verdict"] = None
        elif not known:
            recon.at[i, "mitigation_verdict"] = "unknown"  # of a risk now gone
    return recon


def _register_changes(
    recon: pd.DataFrame, config: Config, register_dir: Path, risks: pd.DataFrame
):
    from riskanalytics.reconcile import new_risk_from_incident
    from riskanalytics.register import NewRisk, Realization

    def when(row):
        for key in ("started_at", "resolved_at"):
            if not pd.isna(row.get(key)):
                return pd.Timestamp(row[key]).floor("us").to_pydatetime()
        return datetime.now(UTC)

    def link(row):
        return os.path.relpath(row["review_path"], register_dir)

    realizations, new_risks = [], []
    for _, row in recon.iterrows():
        if isinstance(row.get("withdraws"), str):
            realizations.append(
                Realization(
                    risk_id=row["withdraws"],
                    incident_id=str(row["incident_id"]),
                    date=when(row),
                    source=str(row["source"]),
                    match_score=None,
                    mitigation_verdict="",
                    review_link=link(row),
                    event=WITHDRAWN,
                )
            )
        if row["outcome"] == "realized":
            realizations.append(
                Realization(
                    risk_id=str(row["risk_id"]),
                    incident_id=str(row["incident_id"]),
                    date=when(row),
                    source=str(row["source"]),
                    match_score=float(row["match_score"]),
                    mitigation_verdict=str(row["mitigation_verdict"] or "unknown"),
                    review_link=link(row),
                    # a near miss shows the risk is live, but it did not happen:
                    # the history says so and the Status stays as it is
                    event="near-miss" if row["near_miss"] is True else "realized",
                )
            )
        elif row["outcome"] == "new_risk" and config.auto_create_risks:
            fields = new_risk_from_incident(row, config, risks)
            new_risks.append(
                NewRisk(
                    incident_id=str(row["incident_id"]),
                    source=str(row["source"]),
                    date=when(row),
                    match_score=float(row["match_score"]),
                    review_link=link(row),
                    **fields,
                )
            )
    return realizations, new_risks


#: A reviewer's answer to "did mitigations work" as a mitigation verdict.
_ANSWERS = {"yes": "worked", "worked": "worked", "no": "failed", "failed": "failed"}
_ANSWERS |= {"partly": "failed", "partially": "failed"}


def apply_reviews(recon: pd.DataFrame, reviews: pd.DataFrame) -> pd.DataFrame:
    """Let the answers people wrote in reviews override the pre-filled verdicts.

    A review whose ``mitigations_worked`` is ``yes``, ``no`` or ``partly``
    replaces the verdict guessed from the incident data (``partly`` counts as
    failed); ``mitigation_source`` says which one a row carries.
    """
    recon = recon.copy()
    recon["mitigation_source"] = recon["mitigation_verdict"].map(
        lambda v: None if pd.isna(v) else "incident data"
    )
    if reviews is None or reviews.empty:
        return recon
    answers = {
        str(row["incident_id"]): _ANSWERS[str(row["mitigations_worked"]).lower()]
        for _, row in reviews.iterrows()
        if str(row["mitigations_worked"]).lower() in _ANSWERS
    }
    realized = recon["outcome"] == "realized"
    for i in recon.index[realized & recon["incident_id"].astype(str).isin(answers)]:
        recon.at[i, "mitigation_verdict"] = answers[str(recon.at[i, "incident_id"])]
        recon.at[i, "mitigation_source"] = "review"
    return recon


def _review_changes(
    recon: pd.DataFrame,
    reviews,
    config: Config,
    register_dir,
    risks: pd.DataFrame,
    recorded: dict | None = None,
):
    """History entries for reviewers' verdicts, and the new risks they named.

    ``recorded`` is what the register's history already records per incident
    (``_history_by_incident``): a review of an incident that this run's inputs
    do not hold (a rollback log given to one run only) still counts for the
    risk the register records it as realizing.
    """
    from riskanalytics.reconcile import scale_word
    from riskanalytics.register import NewRisk, Realization

    if reviews is None or reviews.empty:
        return [], []
    by_incident = recon.set_index(recon["incident_id"].astype(str))
    # a review says when it is due, not when it was done: the history dates a
    # reviewer's answer by the run that first reads it
    read_at = datetime.now(UTC)
    verdicts, named = [], []
    for _, review in reviews.iterrows():
        iid = str(review["incident_id"])
        link = os.path.relpath(review["review_path"], register_dir)
        row = by_incident.loc[iid] if iid in by_incident.index else None
        if isinstance(row, pd.DataFrame):
            row = row.iloc[0]
        answer = _ANSWERS.get(str(review["mitigations_worked"]).lower())
        risk_id = None
        if row is not None and row["outcome"] == "realized":
            risk_id = str(row["risk_id"])
        elif row is None and (recorded or {}).get(iid, ("", ""))[0] == "realized":
            risk_id = recorded[iid][1]
        if risk_id and answer:
            verdicts.append(
                Realization(
                    risk_id=risk_id,
                    incident_id=iid,
                    date=read_at,
                    source="review",
                    match_score=None,
                    mitigation_verdict=answer,
                    review_link=link,
                    event="reviewed",
                )
            )
        for n, text in enumerate(review["new_risks"], start=1):
            if not str(text).strip():
                continue
            named.append(
                NewRisk(
                    incident_id=f"{iid}/review-{n}",
                    description=str(text).strip(),
                    category="Unclassified",
                    likelihood=scale_word(risks, "likelihood", 3, "Possible"),
                    impact=scale_word(risks, "impact", 3, "Moderate"),
                    owner=str(review["owner"] or config.default_owner),
                    mitigations=None,
                    source="review",
                    date=read_at,
                    match_score=None,
                    review_link=link,
                )
            )
    return verdicts, named


def stage_reconcile(
    config: Config | str | Path,
    run_dir: str | Path,
    *,
    inputs: Sequence[str | Path] = (),
    trigger: str = "manual",
) -> ReconcileResult:
    """Ingest, match and reconcile; save the tables in ``run_dir``.

    Parameters
    ----------
    config
        The configuration or the path of ``config.yaml``.
    run_dir
        The run's report folder.
    inputs
        Incident files given for this run (a rollback log, a near-miss report),
        read beside the configured sources.
    trigger
        What started the run; incidents from ``inputs`` without a trigger of
        their own get this one.
    """
    from riskanalytics.checklist import review_status
    from riskanalytics.decisions import load_decisions
    from riskanalytics.match import match_incidents
    from riskanalytics.reconcile import reconcile
    from riskanalytics.register import plan_update, read_register

    config, run_dir = _config(config), Path(run_dir)
    started = time.perf_counter()

    ingested = _ingest(config, inputs)
    incidents = _given_for_run(ingested.incidents, inputs, trigger)
    _warn_outside_sources(config, inputs)
    register = read_register(config.risk_register_path)
    recorded = _history_by_incident(register.history)
    predicted = _predicting(register)

    decisions = load_decisions(config.decisions_path)
    matches = match_incidents(
        incidents, predicted, config.matching, decisions, _realizing(recorded)
    )
    recon = reconcile(incidents, matches, register.risks, config)
    recon = _apply_history(recon, register.risks, recorded, config)
    reviews = review_status(config.reviews_dir)
    recon = apply_reviews(recon, reviews)

    realizations, new_risks = _register_changes(
        recon, config, config.risk_register_path.parent, register.risks
    )
    verdicts, named = _review_changes(
        recon,
        reviews,
        config,
        config.risk_register_path.parent,
        register.risks,
        recorded,
    )
    plan = plan_update(register, realizations + verdicts, new_risks + named)
    for incident_id, risk_id in plan.created.items():
        recon.loc[recon["incident_id"] == incident_id, "risk_id"] = risk_id

    result = ReconcileResult(
        incidents=incidents,
        skipped=list(ingested.skipped),
        matches=matches,
        reconciliation=recon,
        register_path=config.risk_register_path,
        reviews=reviews,
    )
    _save(run_dir, "reconcile", result)
    recon.drop(columns=["evidence"]).to_csv(run_dir / "reconciliation.csv", index=False)
    log.info(
        "Reconciliation of %d incidents done in %.1f s",
        len(recon),
        time.perf_counter() - started,
    )
    return result


def stage_register_update(
    config: Config | str | Path, run_dir: str | Path, *, dry_run: bool = False
):
    """Apply the reconciliation to the register (atomic, locked, history kept).

    Returns the register module's ``RegisterUpdate``; its ``diff`` is also saved
    as ``register.diff`` in the run folder.
    """
    from riskanalytics.register import apply_update, read_register

    config, run_dir = _config(config), Path(run_dir)
    result: ReconcileResult = load_stage(run_dir, "reconcile")
    recon = result.reconciliation
    register = read_register(config.risk_register_path)
    risks = register.risks
    realizations, new_risks = _register_changes(
        recon, config, config.risk_register_path.parent, risks
    )
    verdicts, named = _review_changes(
        recon,
        result.reviews,
        config,
        config.risk_register_path.parent,
        risks,
        _history_by_incident(register.history),
    )
    update = apply_update(
        config.risk_register_path,
        realizations + verdicts,
        new_risks + named,
        run_id=run_dir.name,
        dry_run=dry_run,
    )
    for incident_id, risk_id in update.created.items():
        recon.loc[recon["incident_id"] == incident_id, "risk_id"] = risk_id
    _save(run_dir, "reconcile", result)
    _save(run_dir, "register_update", update)
    (run_dir / "register.diff").write_text(update.diff, encoding="utf-8")
    return update


def stage_reviews(
    config: Config | str | Path, run_dir: str | Path, *, dry_run: bool = False
) -> pd.DataFrame:
    """Write the post-incident reviews that do not exist yet; list all of them."""
    from riskanalytics.checklist import review_status, write_reviews

    config, run_dir = _config(config), Path(run_dir)
    result: ReconcileResult = load_stage(run_dir, "reconcile")
    written = write_reviews(
        result.reconciliation,
        deadline_days=config.review_deadline_days,
        copy_to=run_dir / "reviews",
        dry_run=dry_run,
    )
    status = review_status(config.reviews_dir)
    _save(run_dir, "reviews", {"written": written, "status": status})
    return written


def stage_metrics(config: Config | str | Path, run_dir: str | Path):
    """Compute the accuracy metrics and draw the charts into ``run_dir``."""
    from riskanalytics.metrics import compute_metrics
    from riskanalytics.plots import save_all
    from riskanalytics.register import created_risks, read_register

    config, run_dir = _config(config), Path(run_dir)
    result: ReconcileResult = load_stage(run_dir, "reconcile")
    register = read_register(config.risk_register_path)
    created = created_risks(register.history)
    created |= set(
        result.reconciliation.loc[lambda t: t.outcome == "new_risk", "risk_id"]
    )
    predictions = register.risks[~register.risks["risk_id"].isin(created)]

    metrics = compute_metrics(
        result.reconciliation,
        predictions,
        likelihood_mapping=config.likelihood_probability,
        period=config.metrics_period,
        severity_bands=config.severity_bands,
    )
    charts = save_all(metrics, run_dir / "charts")
    _save(run_dir, "metrics", metrics)
    (run_dir / "metrics.json").write_text(
        json.dumps(_jsonable(metrics.headline), indent=2), encoding="utf-8"
    )
    return metrics, charts


def _jsonable(value):
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, float) and value != value:
        return None
    if hasattr(value, "item"):
        return _jsonable(value.item())
    if isinstance(value, Path | pd.Timestamp | datetime):
        return str(value)
    return value


#: Arguments of every notebook kernel: its own log (transport warnings, shutdown
#: messages) is noise on the run's console; a failing cell still fails the run.
KERNEL_ARGUMENTS = ["--IPKernelApp.log_level=CRITICAL"]


#: How often a notebook's kernel is started when it dies before it answers.
KERNEL_STARTS = 3


def _execute(papermill, notebook: str, output: str, **kwargs) -> None:
    """Execute one notebook; start its kernel again if it dies on starting.

    A kernel picks its ports before it binds them, so runs starting kernels at
    the same moment can collide ("Address already in use") and the kernel dies
    before it runs a cell; starting it again is safe.
    """
    for attempt in range(1, KERNEL_STARTS + 1):
        try:
            papermill.execute_notebook(notebook, output, **kwargs)
            return
        except RuntimeError as exc:
            if "Kernel died before replying" not in str(exc):
                raise
            if attempt == KERNEL_STARTS:
                raise RunFailedError(
                    f"{output}: the notebook's kernel died {attempt} times before "
                    f"running a cell: {exc}"
                ) from None
            log.warning(
                "%s: the kernel died before running a cell (%s); starting it again",
                output,
                exc,
            )


def _title(book, notebook: Path) -> str:
    """The report's title: the notebook's first Markdown heading."""
    for cell in book.cells:
        if cell.get("cell_type") == "markdown":
            for line in cell.get("source", "").splitlines():
                if line.startswith("#"):
                    return line.lstrip("#").strip()
    return notebook.stem


def _render_html(notebook: Path) -> Path:
    import nbformat
    from nbconvert import HTMLExporter

    book = nbformat.read(notebook, as_version=4)
    for cell in book.cells:  # logs are for the run's console, not for readers
        if cell.get("outputs"):
            cell["outputs"] = [
                out
                for out in cell["outputs"]
                if not (
                    out.get("output_type") == "stream" and out.get("name") == "stderr"
                )
            ]
    exporter = HTMLExporter(exclude_input=True, exclude_input_prompt=True)
    exporter.exclude_output_prompt = True
    body, _ = exporter.from_notebook_node(
        book, resources={"metadata": {"name": _title(book, notebook)}}
    )
    html = notebook.with_suffix(".html")
    html.write_text(body, encoding="utf-8")
    return html


def require_incident(
    config: Config | str | Path, incident_id: str, inputs: Sequence[str | Path] = ()
) -> None:
    """Raise InputFormatError unless a source holds ``incident_id``."""
    from riskanalytics.exceptions import InputFormatError

    config = _config(config)
    incidents = _ingest(config, inputs).incidents
    linked = incidents.get("linked_ids", pd.Series(dtype=object)).fillna("")
    known = set(incidents["incident_id"].astype(str))
    known |= {i for ids in linked for i in str(ids).split(";") if i}
    if incident_id not in known:
        sources = ", ".join(str(s.path) for s in config.incident_sources)
        raise InputFormatError(
            f"{config.config_path}: incident {incident_id!r} is in none of the "
            f"sources ({sources}{', ' if inputs else ''}"
            f"{', '.join(str(p) for p in inputs)})"
        )


def _realizing(recorded: dict[str, tuple[str, str]]) -> dict[str, str]:
    """Incident id to the risk the history records it as realizing."""
    return {i: r for i, (kind, r) in recorded.items() if kind in _REALIZING}


#: History events of an incident that realized a risk (a near miss included).
_REALIZING = ("realized", "near-miss")


def _predicting(register) -> pd.DataFrame:
    """The register's risks that predicted something: not those created from
    an incident."""
    from riskanalytics.register import created_risks

    created = created_risks(register.history)
    return register.risks[~register.risks["risk_id"].isin(created)]


def _check_bare_confirms(config: Config, incidents, register, decisions) -> None:
    """A confirm without ``risk_id`` needs the incident's matched risk: match
    those incidents now, so that one with none stops the run before any write
    (:func:`riskanalytics.decisions.apply_decisions` raises)."""
    from riskanalytics.match import match_incidents

    bare = {d.incident_id for d in decisions if d.action == "confirm" and not d.risk_id}
    subset = incidents[incidents["incident_id"].astype(str).isin(bare)]
    if not len(subset):
        return
    recorded = _realizing(_history_by_incident(register.history))
    match_incidents(subset, _predicting(register), config.matching, decisions, recorded)


def _cannot_write(folder: Path) -> str | None:
    """Why files cannot be created in ``folder`` (or the nearest folder that
    exists, where it would be made), or None. Tried, not guessed from modes:
    permissions, read-only mounts and immutable folders all show."""
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    try:
        with tempfile.TemporaryFile(dir=existing, prefix=".riskanalytics-check-"):
            pass
    except OSError as exc:
        return f"{existing} cannot be written ({exc.strerror or exc})"
    return None


def _cannot_replace(path: Path) -> str | None:
    """Why the file ``path`` cannot be updated, or None (opened for appending,
    nothing written)."""
    try:
        with path.open("ab"):
            pass
    except OSError as exc:
        return f"{path} cannot be written ({exc.strerror or exc})"
    return None


def _preflight(
    config: Config,
    inputs: Sequence[str | Path],
    *,
    notify: bool = False,
    sources: bool = True,
    writes: tuple[str, ...] = (),
) -> dict:
    """Read every input once so that bad input stops the run before any write.

    With ``notify`` (a run that will send), notification URLs naming unset
    environment variables are a configuration error too. Without ``sources``
    the incident files are left to the caller, which reads them next.
    ``writes`` names what the run will write (``reports_dir``, ``reviews_dir``,
    ``risk_register_path``): each must be writable, or nothing starts.
    """
    from riskanalytics.decisions import (
        check_risk_ids,
        load_decisions,
        warn_unknown_incidents,
    )
    from riskanalytics.register import read_register

    for key in ("reports_dir", "reviews_dir"):
        folder = getattr(config, key)
        if folder.exists() and not folder.is_dir():
            raise ConfigError(
                config.config_path, [(key, f"{folder} exists and is not a folder")]
            )
    # a run that cannot write its outputs must stop before it changes anything
    register_path = Path(config.risk_register_path)
    folders = {
        "reports_dir": config.reports_dir,
        "reviews_dir": config.reviews_dir,
        "risk_register_path": register_path.parent,
    }
    unwritable = [
        (key, problem)
        for key in writes
        if (problem := _cannot_write(Path(folders[key])))
    ]
    if "risk_register_path" in writes:
        from riskanalytics.register.store import BACKUP_DIR_NAME, lock_path

        backups = register_path.parent / BACKUP_DIR_NAME
        checks = [
            (register_path, _cannot_replace),
            (lock_path(register_path), _cannot_replace),
            (backups, _cannot_write),
        ]
        for target, check in checks:
            if target.exists() and (problem := check(target)):
                unwritable.append(("risk_register_path", problem))
    from riskanalytics.notify import default_state_path

    state = default_state_path(config)
    if "reports_dir" in writes and state.exists() and state.is_dir():
        unwritable.append(("reports_dir", f"{state} is a folder, not a file"))
    if unwritable:
        raise ConfigError(config.config_path, unwritable)
    if notify and config.notifications.enabled:
        from riskanalytics.notify import unset_variables

        problems = unset_variables(config)
        if problems:
            raise ConfigError(config.config_path, problems)
    register = read_register(config.risk_register_path)
    decisions = load_decisions(config.decisions_path)
    check_risk_ids(
        decisions,
        set(register.risks["risk_id"].astype(str)),
        config.risk_register_path,
    )
    risk_ids = set(register.risks["risk_id"].astype(str))
    if "status" not in register.columns:
        log.warning(
            "%s:%d: no Status column: realizations are recorded in the history only",
            config.risk_register_path,
            register.table.header_line + 1,
        )
    if config.reviews_dir.is_dir():
        from riskanalytics.checklist import (
            FrontMatterLines,
            names_an_incident,
            read_review,
        )

        for other in sorted(config.reviews_dir.glob("*.md")):
            if not other.name.startswith("review-") and names_an_incident(other):
                log.warning(
                    "%s looks like a review but is not read: reviews are named "
                    "review-<incident id>.md",
                    other,
                )
        for review in sorted(config.reviews_dir.glob("review-*.md")):
            named = read_review(review).get("risk_id")
            if named is not None and str(named) not in risk_ids:
                log.warning(
                    "%s%s: risk_id %s is not in %s: its answers are kept but "
                    "count for no risk",
                    review,
                    FrontMatterLines(review)("risk_id"),
                    named,
                    config.risk_register_path,
                )
    if not sources:
        return {"register": str(config.risk_register_path)}
    ingested = _ingest(config, inputs)
    warn_unknown_incidents(
        decisions, set(ingested.incidents["incident_id"].astype(str))
    )
    _check_bare_confirms(config, ingested.incidents, register, decisions)
    return {
        "register": str(config.risk_register_path),
        "risks": len(register.risks),
        "incident_files": [str(p) for p in ingested.files],
        "incidents": len(ingested.incidents),
        "skipped_records": len(ingested.skipped),
    }


def run(
    config: Config | str | Path,
    *,
    trigger: str,
    inputs: Sequence[str | Path] = (),
    dry_run: bool = False,
    notify: bool = True,
    run_id: str | None = None,
    kernel_name: str | None = None,
    incident_id: str | None = None,
) -> dict:
    """Run the whole job: the four notebooks, HTML, notifications, ``run.json``.

    Parameters
    ----------
    config
        The configuration or the path of ``config.yaml``.
    trigger
        ``rollback``, ``resolved``, ``near-miss``, ``weekly`` or ``manual``.
    inputs
        Incident files for this run beside the configured sources.
    dry_run
        Compute everything, change nothing: the register diff and the reviews
        are reported, not written; nothing is sent.
    notify
        Send notifications to risk owners (when enabled in config).
    run_id
        The run folder's name under ``reports_dir``; default from time and trigger.

    Returns
    -------
    dict
        The run summary also written to ``run.json``.

    Raises
    ------
    RiskAnalyticsError
        Bad configuration or input, before anything is written.
    RunFailedError
        A notebook failed; ``run.json`` says which.
    """
    import papermill

    from riskanalytics.register import created_risks, read_register

    config = _config(config)
    started = datetime.now(UTC)
    clock = time.perf_counter()
    writes = ("reports_dir",)
    if not dry_run:
        writes += ("reviews_dir", "risk_register_path")
    inputs_summary = _preflight(
        config, inputs, notify=notify and not dry_run, writes=writes
    )
    _warn_outside_sources(config, inputs)  # the notebooks' logs are in their report
    if run_id:
        run_dir = config.reports_dir / run_id
        run_dir.mkdir(parents=True, exist_ok=True)
    else:
        run_id, run_dir = _new_run_dir(config.reports_dir, new_run_id(trigger, started))
    log.info("Run %s (%s) into %s", run_id, trigger, run_dir)

    summary = {
        "run_id": run_id,
        "trigger": trigger,
        "incident_id": incident_id,
        "dry_run": dry_run,
        "started_at": started.isoformat(),
        "config": str(config.config_path),
        "inputs": {**inputs_summary, "extra": [str(p) for p in inputs]},
        "steps": {},
        "outcome": "running",
    }
    parameters = {
        "config_path": str(config.config_path),
        "run_dir": str(run_dir),
        "trigger": trigger,
        "inputs": [str(Path(p).resolve()) for p in inputs],
        "dry_run": dry_run,
    }
    try:
        for name in NOTEBOOKS:
            step = time.perf_counter()
            output = run_dir / name
            try:
                _execute(
                    papermill,
                    str(NOTEBOOK_DIR / name),
                    str(output),
                    parameters=parameters,
                    cwd=str(NOTEBOOK_DIR),
                    kernel_name=kernel_name,
                    progress_bar=False,
                    report_mode=True,
                    extra_arguments=KERNEL_ARGUMENTS,
                )
            except papermill.PapermillExecutionError as exc:
                raise RunFailedError(
                    f"{output}: cell {exc.exec_count} failed: {exc.ename}: {exc.evalue}"
                ) from None
            _render_html(output)
            summary["steps"][name.removesuffix(".ipynb")] = round(
                time.perf_counter() - step, 2
            )
            log.info("Notebook %s done in %.1f s", name, time.perf_counter() - step)

        result: ReconcileResult = load_stage(run_dir, "reconcile")
        update = load_stage(run_dir, "register_update")
        reviews = load_stage(run_dir, "reviews")
        metrics = load_stage(run_dir, "metrics")
        recon = result.reconciliation
        status = reviews["status"]
        overdue = status[status["overdue"]] if len(status) else status
        summary["counts"] = {
            "incidents": len(recon),
            "skipped_records": len(result.skipped),
            **_outcome_counts(recon),
            "history_entries_added": len(update.realized) + len(update.created),
            "risks_created": len(update.created),
            "reviews_written": int(reviews["written"]["written"].sum()),
            "reviews_updated": int(reviews["written"]["updated"].sum()),
            "reviews_open": int((status["status"] != "done").sum())
            if len(status)
            else 0,
            "reviews_overdue": len(overdue),
            "escalations": int(recon["escalate"].sum()),
            "new_risks_unassigned": _unassigned(
                recon, config, set(update.created.values())
            ),
            "realizations_withdrawn": _withdrawn(
                update, created_risks(read_register(config.risk_register_path).history)
            ),
            "decisions_not_applied": _not_applied(recon),
        }
        summary["register_changed"] = bool(update.changed)
        summary["metrics"] = metrics.headline

        step = time.perf_counter()
        summary["notifications"] = _notify(config, recon, overdue, dry_run, notify)
        summary["steps"]["notify"] = round(time.perf_counter() - step, 2)
        summary["outcome"] = "success"
    except BaseException as exc:
        summary["outcome"] = "failed"
        summary["error"] = str(exc)
        raise
    finally:
        summary["seconds"] = round(time.perf_counter() - clock, 2)
        (run_dir / "run.json").write_text(
            json.dumps(_jsonable(summary), indent=2) + "\n", encoding="utf-8"
        )
    log.info("Run %s finished in %.1f s", run_id, summary["seconds"])
    return summary


def _outcome_counts(recon: pd.DataFrame) -> dict[str, int]:
    """Incidents by outcome; a near miss matched to a risk is not a realization."""
    near = recon["near_miss"].eq(True) if "near_miss" in recon else False
    matched = recon["outcome"] == "realized"
    return {
        "realized": int((matched & ~near).sum()),
        "near_misses": int((matched & near).sum()),
        "new_risks": int((recon["outcome"] == "new_risk").sum()),
        "needs_review": int((recon["outcome"] == "needs_review").sum()),
    }


def _not_applied(recon: pd.DataFrame) -> int:
    """Count, and name, analysts' decisions the register update could not apply."""
    if "decision_not_applied" not in recon:
        return 0
    rows = recon[recon["decision_not_applied"].map(lambda v: isinstance(v, str))]
    for _, row in rows.iterrows():
        log.warning(
            "Incident %s: an analyst's decision is not applied to the register "
            "(%s): edit the register by hand",
            row["incident_id"],
            row["decision_not_applied"],
        )
    return len(rows)


def _withdrawn(update, created: set[str]) -> int:
    """Count, and name, realizations this run withdrew on an analyst's decision.

    ``created`` holds the risks made from incidents: withdrawing one means the
    incident was no new risk after all.
    """
    withdrawn = [r for r in update.realized if r.event == WITHDRAWN]
    for event in withdrawn:
        if event.risk_id in created:
            log.warning(
                "Incident %s was no new risk (an analyst's decision): the history "
                "says so; %s, made from it, stays in the register: retire it by "
                "hand (its Status) if nothing else calls for it",
                event.incident_id,
                event.risk_id,
            )
            continue
        log.warning(
            "Incident %s no longer realizes %s (an analyst's decision): the history "
            "says so; change the Status of %s by hand if no other incident "
            "realized it",
            event.incident_id,
            event.risk_id,
            event.risk_id,
        )
    return len(withdrawn)


def _unassigned(recon: pd.DataFrame, config: Config, created: set[str]) -> int:
    """Count new risks that no service-to-owner entry assigned.

    A warning names those ``created`` in this run; the others were named by the
    run that created them.
    """
    new = recon[
        (recon["outcome"] == "new_risk") & (recon["owner"] == config.default_owner)
    ]
    for _, row in new[new["risk_id"].isin(created)].iterrows():
        log.warning(
            "New risk %s (incident %s, service %s) has no owner: add the service "
            "to 'owners' in %s",
            row["risk_id"],
            row["incident_id"],
            row["service"] if isinstance(row["service"], str) else "not recorded",
            config.config_path,
        )
    return len(new)


def _notify(config, recon, overdue, dry_run, notify) -> dict:
    if not config.notifications.enabled:
        return {"enabled": False}
    from riskanalytics.notify import build_messages, default_state_path, send_messages

    messages = build_messages(config, recon, overdue)
    report = send_messages(
        messages,
        state_path=default_state_path(config),
        dry_run=dry_run or not notify,
        retries=config.notifications.retries,
        backoff_seconds=config.notifications.backoff_seconds,
    )
    return {"enabled": True, **report.to_dict()}


def preview(
    config: Config | str | Path, *, trigger: str, inputs: Sequence[str | Path] = ()
) -> dict:
    """What a run would do, computed in a scratch folder; nothing is written.

    Returns
    -------
    dict
        ``diff`` (the register change as a unified diff), ``summary``
        (counts of realized, new and to-review incidents, reviews to write)
        and ``notifications`` (what a run would send, as in ``run.json``;
        ``{"enabled": False}`` when notifications are off).
    """
    from riskanalytics.checklist import past_due, review_status

    config = _config(config)
    _preflight(config, inputs, sources=False)  # stage_reconcile reads the sources
    with tempfile.TemporaryDirectory(prefix="riskanalytics-") as scratch:
        scratch = Path(scratch) / "dry-run"
        result = stage_reconcile(config, scratch, inputs=inputs, trigger=trigger)
        update = stage_register_update(config, scratch, dry_run=True)
        reviews = [
            row
            for _, row in result.reconciliation.iterrows()
            if not Path(row["review_path"]).exists()
        ]
    now = pd.Timestamp.now(tz="UTC")
    # a review written now whose deadline has passed is overdue at once
    late_new = sum(
        1
        for row in reviews
        if pd.notna(row["review_deadline"]) and past_due(row["review_deadline"], now)
    )
    recon = result.reconciliation
    summary = {
        "trigger": trigger,
        "incidents": len(recon),
        "skipped_records": len(result.skipped),
        **_outcome_counts(recon),
        "history_entries_to_add": len(update.realized) + len(update.created),
        "reviews_to_write": len(reviews),
    }
    status = review_status(config.reviews_dir, now=now)
    overdue = status[status["overdue"]] if len(status) else status
    summary["reviews_overdue"] = len(overdue) + late_new
    notifications = _notify(config, recon, overdue, dry_run=True, notify=False)
    return {"diff": update.diff, "summary": summary, "notifications": notifications}
