"""Read incidents from every supported source into one table.

Sources: PagerDuty and Opsgenie (pagers), Alertmanager and Grafana (alerts,
grouped into incidents), rollback logs, Helm, Argo Rollouts, kubectl and GitHub
deployments (rollbacks), Markdown postmortems and generic CSV/JSON lines forms
(manual and near-miss reports), and public postmortem collections (back-fill).
The format of each file is detected from its content (:func:`detect_format`).

Every incident has the columns of :data:`riskanalytics.schema.INCIDENT_COLUMNS`
followed by :data:`riskanalytics.schema.INCIDENT_EXTRA_COLUMNS`. Times are
timezone-aware UTC; missing values are NA/NaT. The ``trigger`` of an incident is
``rollback`` for rollback sources, ``near-miss`` for near-miss reports,
``resolved`` for pager, alert and postmortem incidents that have a resolution
time, and ``manual`` otherwise (or as the manual report says).
"""

from riskanalytics.ingest._common import SkippedRecord
from riskanalytics.ingest._core import (
    FORMATS,
    IngestResult,
    detect_format,
    detect_json_format,
    link_incidents,
    read_incidents,
    write_incidents_csv,
)

__all__ = [
    "FORMATS",
    "IngestResult",
    "SkippedRecord",
    "detect_format",
    "detect_json_format",
    "link_incidents",
    "read_incidents",
    "write_incidents_csv",
]
