"""Column names shared by every stage: incidents, risks and matches.

Defined once here and imported everywhere, so that a column has one name from
ingestion to the charts.
"""

__all__ = [
    "DECISIONS",
    "INCIDENT_COLUMNS",
    "MATCH_COLUMNS",
    "MITIGATION_VERDICTS",
    "OUTCOMES",
    "RISK_COLUMNS",
    "TRIGGERS",
]

#: Columns every ingester returns (contract). Times are timezone-aware UTC
#: pandas Timestamps; missing values are missing (``pd.NA``/``NaT``), never "".
INCIDENT_COLUMNS = [
    "incident_id",
    "source",
    "title",
    "root_cause",
    "impact",
    "started_at",
    "resolved_at",
    "severity",
    "service",
    "recovery_actions",
    "trigger",
]

#: Optional incident columns some ingesters add.
#: ``near_miss`` (bool), ``source_file`` (path), ``source_record`` (line or index),
#: ``alert_count`` (alerts grouped into the incident), ``linked_ids`` (ids of the
#: same incident seen through other sources, ``;``-joined), ``category`` (the
#: source's own classification of the incident: a collection's heading, a
#: report's tags, ``;``-joined).
INCIDENT_EXTRA_COLUMNS = [
    "near_miss",
    "category",
    "source_file",
    "source_record",
    "alert_count",
    "linked_ids",
]

#: Columns of the risks table read from the register.
#: ``likelihood_level`` and ``impact_level`` are the stated scales mapped onto
#: one ordinal scale 1 (lowest) to 5 (highest); ``line`` is the 1-based line of
#: the risk's row in the file.
RISK_COLUMNS = [
    "risk_id",
    "description",
    "category",
    "likelihood",
    "impact",
    "owner",
    "mitigations",
    "status",
    "likelihood_level",
    "impact_level",
    "line",
]

#: Columns of the match table, one row per incident.
#: ``match_score`` is on the package's one scale, 0 to 100 (see
#: :mod:`riskanalytics.match`); ``candidates`` is ``RISK_ID:score`` joined by
#: ``;``, best first; ``evidence`` is a dict per row.
MATCH_COLUMNS = [
    "incident_id",
    "risk_id",
    "match_score",
    "decision",
    "candidates",
    "evidence",
]

#: Values of the match ``decision`` column.
DECISIONS = ("matched", "review", "new")

#: Values of the reconciliation ``outcome`` column.
OUTCOMES = ("realized", "new_risk", "needs_review")

#: Values of the mitigation verdict.
MITIGATION_VERDICTS = ("worked", "failed", "unknown")

#: What started a run, and the ``trigger`` of an incident.
TRIGGERS = ("rollback", "resolved", "near-miss", "weekly", "manual")
