"""Reconcile incidents with the register: realized risk, new risk or needs review.

For every incident the match decides the outcome:

- ``realized``: the incident realized a risk the register predicted. The risk's
  mitigations get a verdict from what the incident data says (see
  :func:`judge_mitigations`).
- ``new_risk``: no risk predicted it. When ``auto_create_risks`` is on, the
  register gains a risk built from the incident (see :func:`new_risk_from_incident`).
- ``needs_review``: the best candidate scored between the ``review`` and
  ``matched`` thresholds; an analyst decides, the register is not touched.
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import frontmatter
import pandas as pd
import yaml

from riskanalytics.config import Config
from riskanalytics.metrics import severity_band

__all__ = [
    "RECONCILIATION_COLUMNS",
    "MitigationVerdict",
    "judge_mitigations",
    "new_risk_from_incident",
    "reconcile",
    "review_filename",
    "review_path_for",
    "scale_word",
]

log = logging.getLogger(__name__)

#: Columns of the reconciliation table, one row per incident.
RECONCILIATION_COLUMNS = [
    "incident_id",
    "title",
    "source",
    "trigger",
    "severity",
    "service",
    "started_at",
    "resolved_at",
    "duration_minutes",
    "root_cause",
    "impact",
    "recovery_actions",
    "category",
    "near_miss",
    "outcome",
    "risk_id",
    "risk_description",
    "owner",
    "mitigations",
    "likelihood",
    "risk_rating",
    "escalate",
    "mitigation_verdict",
    "mitigation_evidence",
    "match_score",
    "decision",
    "candidates",
    "evidence",
    "decided_by",
    "review_path",
    "review_deadline",
]

# Words that say a control did its job, or did not.
_FAILED = re.compile(
    r"\b(did not|didn't|does not|doesn't|failed to|fail(?:ed)?|was not|wasn't|"
    r"were not|weren't|"
    r"not (?:triggered|fired|caught|detected|working|configured|in place|tested)|"
    r"never|missing|missed|"
    r"no (?:alert|alerting|monitoring|backup|canary|rollback|test)s?|"
    r"failing|had stopped|stopped (?:working|running)|silenced|muted|ignored|archived|"
    r"bypass(?:ed)?|ineffective|disabled|broken|too late|stale|unable to|could not|"
    r"couldn't|without)\b",
    re.IGNORECASE,
)
_WORKED = re.compile(
    r"\b(caught|detected early|alert(?:ed|s)? (?:fired|triggered)|fired|"
    r"automatic(?:ally)? (?:rolled back|rollback|failover|failed over|recovered)|"
    r"auto-?rollback|rolled back automatically|failover (?:succeeded|worked)|"
    r"worked as (?:expected|designed)|contained|prevented|limited the impact|"
    r"stopped the rollout|aborted the rollout|within (?:the )?(?:slo|budget))\b",
    re.IGNORECASE,
)
_STOP = frozenset(
    "a an and or the of to for on in at by with from into per as is are be "
    "one two all any each every automated automatic regular".split()
)


@dataclass(frozen=True)
class MitigationVerdict:
    """A mitigation verdict with the sentence that decided it."""

    verdict: str  # worked | failed | unknown
    evidence: str


def _terms(text: str) -> set[str]:
    words = re.findall(r"[a-z0-9][a-z0-9\-]+", text.lower())
    return {w for w in words if w not in _STOP and len(w) > 2}


# A sentence ends at ! ? or ; and a space, or at a newline, or at a full stop
# and a space unless after a common abbreviation ("approx.", "e.g.", "vs.") or
# before a lower-case word.
_SENTENCE_END = re.compile(
    r"(?<=[!?;])\s+|\n+|"
    r"(?<!\bapprox\.)(?<!\be\.g\.)(?<!\bi\.e\.)(?<!\betc\.)(?<!\bvs\.)"
    r"(?<=\.)\s+(?![a-z0-9])"
)


def _sentences(*texts: object) -> list[str]:
    out = []
    for text in texts:
        if isinstance(text, str) and text.strip():
            out += [s.strip() for s in _SENTENCE_END.split(text) if s.strip()]
    return out


def judge_mitigations(incident: pd.Series, mitigations: object) -> MitigationVerdict:
    """Judge whether a realized risk's mitigations worked, from the incident data.

    A sentence of the incident (root cause, impact, recovery actions) that shares
    words with one of the risk's mitigations is evidence: with a failure cue
    ("did not", "failed to", "no alert", ...) the mitigations ``failed``, with a
    success cue ("caught", "rolled back automatically", ...) they ``worked``.
    A near miss means the controls stopped the harm: ``worked``. Anything else
    is ``unknown``, left for the review.

    Parameters
    ----------
    incident
        One incident row (incident columns).
    mitigations
        The risk's mitigation text, ``;`` or ``,`` separated; may be missing.

    Returns
    -------
    MitigationVerdict
        ``verdict`` is ``worked``, ``failed`` or ``unknown``; ``evidence`` quotes
        the deciding sentence.
    """
    if bool(incident.get("near_miss")) is True:
        return MitigationVerdict("worked", "near miss: the harm was stopped in time")

    controls = []
    if isinstance(mitigations, str):
        controls = [_terms(m) for m in re.split(r"[;,\n]", mitigations)]
        controls = [c for c in controls if c]
    sentences = _sentences(
        incident.get("root_cause"),
        incident.get("impact"),
        incident.get("recovery_actions"),
    )

    failed, worked = None, None
    for sentence in sentences:
        words = _terms(sentence)
        mentions = any(len(words & c) >= min(2, len(c)) for c in controls)
        if not mentions:
            continue
        if failed is None and _FAILED.search(sentence):
            failed = sentence
        elif worked is None and _WORKED.search(sentence):
            worked = sentence
    if failed is not None:
        return MitigationVerdict("failed", failed)
    if worked is not None:
        return MitigationVerdict("worked", worked)

    if incident.get("trigger") == "rollback" and any("rollback" in c for c in controls):
        return MitigationVerdict(
            "worked", "the incident was ended by a rollback, a listed mitigation"
        )
    return MitigationVerdict("unknown", "the incident data does not say")


#: Longest incident id used as it is in a review's file name.
_NAME_LIMIT = 100


def _slug(incident_id: object) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", str(incident_id)).strip("-.")


def review_filename(incident_id: str) -> str:
    """The review file name for an incident: ``review-<id>.md`` when the id is
    safe in a file name as it is; otherwise a safe slug, cut short, and a hash
    of the id, so that two ids never share a file ("a/b" and "a-b", two ids
    in another script) and no name is too long for the file system."""
    text = str(incident_id)
    slug = _slug(text)
    if slug == text and len(text) <= _NAME_LIMIT:
        return f"review-{slug}.md"
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()[:10]
    return f"review-{slug[:80].rstrip('-.') or 'incident'}-{digest}.md"


def legacy_review_filename(incident_id: str) -> str:
    """The slug-only name earlier versions gave every review."""
    return f"review-{_slug(incident_id) or 'incident'}.md"


def review_path_for(reviews_dir: str | Path, incident_id: str) -> Path:
    """Where an incident's review lives. A review written under the earlier,
    slug-only name for an id that now gets a hashed name is kept where it is
    when its front matter names this incident."""
    reviews_dir = Path(reviews_dir)
    path = reviews_dir / review_filename(incident_id)
    legacy = reviews_dir / legacy_review_filename(incident_id)
    try:  # the legacy name of a long id may be too long for the file system
        found = legacy != path and not path.exists() and legacy.is_file()
    except OSError:
        found = False
    if found:
        try:
            meta = frontmatter.load(legacy).metadata
        except (OSError, UnicodeDecodeError, yaml.YAMLError):
            return path
        if str(meta.get("incident_id")) == str(incident_id):
            return legacy
    return path


def _deadline(row: pd.Series, days: int, now: datetime) -> pd.Timestamp:
    for key in ("resolved_at", "started_at"):
        value = row.get(key)
        if value is not None and not pd.isna(value):
            return pd.Timestamp(value) + timedelta(days=days)
    return pd.Timestamp(now) + timedelta(days=days)


def _first_sentence(text: object, limit: int = 200) -> str | None:
    if not isinstance(text, str) or not text.strip():
        return None
    sentence = _sentences(text)[0].rstrip(";:,").rstrip()
    if len(sentence) <= limit:
        return sentence
    # cut at a word, not inside one
    cut = sentence[: limit - 1].rsplit(" ", 1)[0] or sentence[: limit - 1]
    return cut.rstrip(" ;:,.") + "…"


def scale_word(risks: pd.DataFrame, field: str, level: int, default: str) -> str:
    """The word the register itself uses for ``level`` (1-5) of ``field``.

    ``field`` is ``likelihood`` or ``impact``. The most common value among the
    register's risks at that level wins, so a new risk reads like its
    neighbours ("Medium", "3", "40%"); ``default`` when no risk is at that level.
    """
    levels = risks.get(f"{field}_level")
    if levels is None or field not in risks:
        return default
    values = risks.loc[levels.fillna(0).astype(int) == level, field].dropna()
    values = values[values.astype(str).str.strip() != ""]
    if len(values):
        return str(values.mode().iat[0])
    return _numeric_word(risks[field], level) or default


#: A value inside each level's band (1-5), as a percentage and a probability.
_PERCENT_OF_LEVEL = {1: "5%", 2: "20%", 3: "40%", 4: "65%", 5: "90%"}
_PROBABILITY_OF_LEVEL = {1: "0.05", 2: "0.2", 3: "0.4", 4: "0.65", 5: "0.9"}


def _numeric_word(column: pd.Series, level: int) -> str | None:
    """``level`` written as the column writes numbers, if it uses only numbers.

    A column of percentages gets a percentage in the level's band, one of
    probabilities a probability, one of levels 1-5 the level; a column with
    any word in it gets None.
    """
    cells = [str(v).strip() for v in column.dropna() if str(v).strip()]
    if not cells:
        return None
    if all(re.fullmatch(r"\d+(?:\.\d+)?\s*%", c) for c in cells):
        return _PERCENT_OF_LEVEL[level]
    if all(re.fullmatch(r"0?\.\d+", c) for c in cells):
        return _PROBABILITY_OF_LEVEL[level]
    if all(re.fullmatch(r"[1-5]", c) for c in cells):
        return str(level)
    return None


_IMPACT_LEVEL = {"Minor": 2, "Moderate": 3, "Major": 4, "Severe": 5}


def new_risk_from_incident(
    incident: pd.Series, config: Config, risks: pd.DataFrame | None = None
) -> dict:
    """The fields of a register risk built from an unpredicted incident.

    The description is the incident's root cause (else its title); the
    category is the source's label for the incident (the first of its
    categories) when short, else ``Unclassified``; the owner
    comes from the service-to-owner map in config, else ``default_owner``.
    Likelihood starts at ``Possible`` (it has happened once); impact follows the
    incident's severity.
    """
    description = _first_sentence(incident.get("root_cause")) or _first_sentence(
        incident.get("title")
    )
    owner = config.owner_for_service(_text(incident.get("service")))
    # the incident's severity, in the bands the metrics use, sets the impact
    band = severity_band(incident.get("severity"), config.severity_bands)
    impact = _BAND_IMPACT.get(band, "Moderate")
    likelihood = "Possible"
    if risks is not None:
        likelihood = scale_word(risks, "likelihood", 3, likelihood)
        impact = scale_word(risks, "impact", _IMPACT_LEVEL[impact], impact)
    return {
        "description": description or f"Unpredicted incident {incident['incident_id']}",
        "category": _new_risk_category(incident.get("category")),
        "likelihood": likelihood,
        "impact": impact,
        "owner": owner or config.default_owner,
        "mitigations": _text(incident.get("recovery_actions")),
    }


#: The impact a new risk starts with, by the severity band of its incident.
_BAND_IMPACT = {
    "critical": "Severe",
    "high": "Major",
    "medium": "Moderate",
    "low": "Minor",
}


#: Source labels that classify nothing.
_NO_CATEGORY = {
    "uncategorized",
    "uncategorised",
    "unclassified",
    "other",
    "misc",
    "miscellaneous",
    "unknown",
    "general",
    "none",
    "n/a",
}


def _new_risk_category(value: object) -> str:
    """The source's label (the first of its categories), if short; else
    Unclassified."""
    text = " ".join((_text(value) or "").split(";")[0].split())
    if not text or len(text) > 40 or text.lower() in _NO_CATEGORY:
        return "Unclassified"
    return text


def _text(value: object) -> str | None:
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return None
    text = str(value).strip()
    return text or None


def reconcile(
    incidents: pd.DataFrame,
    matches: pd.DataFrame,
    risks: pd.DataFrame,
    config: Config,
    *,
    now: datetime | None = None,
) -> pd.DataFrame:
    """Decide, per incident, realized risk, new risk or needs review.

    Parameters
    ----------
    incidents
        The incidents table (incident columns).
    matches
        The match table (match columns), one row per incident.
    risks
        The register's risks table (risk columns).
    config
        The run's configuration (thresholds, owners, deadlines).
    now
        The time of the run, for incidents without times; default: now, UTC.

    Returns
    -------
    pandas.DataFrame
        :data:`RECONCILIATION_COLUMNS`. For ``new_risk`` rows ``risk_id`` is
        missing until the register update assigns one; ``risk_rating`` is the
        likelihood level times the impact level (1 to 25); ``escalate`` says the
        rating is at or above the escalation threshold.
    """
    now = now or datetime.now(UTC)
    by_risk = risks.set_index("risk_id", drop=False) if len(risks) else None
    by_match = matches.set_index("incident_id", drop=False)
    rows = []

    for _, incident in incidents.iterrows():
        iid = incident["incident_id"]
        match = by_match.loc[iid] if iid in by_match.index else None
        decision = match["decision"] if match is not None else "new"
        outcome = {"matched": "realized", "review": "needs_review"}.get(
            decision, "new_risk"
        )
        if outcome == "new_risk" and not any(
            _text(incident.get(key)) for key in ("title", "root_cause", "impact")
        ):
            outcome = "needs_review"  # nothing to build a risk from: ask a person
        row = {col: incident.get(col) for col in RECONCILIATION_COLUMNS}
        row.update(
            outcome=outcome,
            decision=decision,
            near_miss=bool(incident.get("near_miss")) is True,
            match_score=float(match["match_score"]) if match is not None else 0.0,
            candidates=match["candidates"] if match is not None else "",
            evidence=match["evidence"] if match is not None else {},
            decided_by=match.get("decided_by", "score") if match is not None else None,
            review_path=str(review_path_for(config.reviews_dir, iid)),
            review_deadline=_deadline(incident, config.review_deadline_days, now),
        )
        start, end = incident.get("started_at"), incident.get("resolved_at")
        row["duration_minutes"] = (
            (end - start).total_seconds() / 60
            if not pd.isna(start) and not pd.isna(end)
            else None
        )

        if outcome == "realized" and by_risk is not None:
            risk = by_risk.loc[match["risk_id"]]
            verdict = judge_mitigations(incident, risk.get("mitigations"))
            row.update(
                risk_id=risk["risk_id"],
                risk_description=risk.get("description"),
                owner=_text(risk.get("owner")) or config.default_owner,
                mitigations=risk.get("mitigations"),
                likelihood=risk.get("likelihood"),
                risk_rating=_rating(risk),
                mitigation_verdict=verdict.verdict,
                mitigation_evidence=verdict.evidence,
            )
        elif outcome == "new_risk":
            fields = new_risk_from_incident(incident, config)
            row.update(
                risk_id=None,
                risk_description=fields["description"],
                owner=fields["owner"],
                mitigations=fields["mitigations"],
                likelihood=fields["likelihood"],
                risk_rating=3 * _IMPACT_LEVEL.get(fields["impact"], 3),
            )
        else:
            top = str(row["candidates"]).split(";")[0].split(":")[0]
            if by_risk is not None and top in by_risk.index:
                row["owner"] = _text(by_risk.loc[top].get("owner"))
        rows.append(row)

    table = pd.DataFrame(rows, columns=RECONCILIATION_COLUMNS)
    table["risk_rating"] = pd.array(table["risk_rating"], dtype="Int64")
    table["escalate"] = (
        table["risk_rating"].fillna(0).astype(int) >= config.escalation_score()
    )
    counts = table["outcome"].value_counts().to_dict()
    log.info(
        "Reconciled %d incidents: %d realized, %d new, %d to review",
        len(table),
        counts.get("realized", 0),
        counts.get("new_risk", 0),
        counts.get("needs_review", 0),
    )
    return table


def _rating(risk: pd.Series) -> int | None:
    likelihood, impact = risk.get("likelihood_level"), risk.get("impact_level")
    if pd.isna(likelihood) or pd.isna(impact):
        return None
    return int(likelihood) * int(impact)
