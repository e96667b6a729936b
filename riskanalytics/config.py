"""Load and validate ``config.yaml`` once, into a frozen, typed object.

Paths in the file resolve against the folder the file is in. Every problem is
collected and reported together, each with the key that is wrong. Secrets are
never read from the file: only names of environment variables are.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StrictStr,
    ValidationError,
    field_validator,
    model_validator,
)

from riskanalytics._yaml import DuplicateKeyLoader
from riskanalytics.exceptions import ConfigError

__all__ = [
    "Config",
    "IncidentSource",
    "MatchingConfig",
    "NotificationConfig",
    "load_config",
]

log = logging.getLogger(__name__)

DEFAULT_LIKELIHOOD_PROBABILITY = {
    "rare": 0.05,
    "unlikely": 0.15,
    "possible": 0.35,
    "likely": 0.65,
    "almost certain": 0.9,
}


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class IncidentSource(_Frozen):
    """One place incidents come from: a file, a folder or a glob pattern."""

    path: Path
    format: str = "auto"
    name: str | None = None

    @field_validator("format")
    @classmethod
    def _known_format(cls, value: str) -> str:
        from riskanalytics.ingest import FORMATS

        if value != "auto" and value not in FORMATS:
            raise ValueError(
                f"unknown format {value!r}; expected auto or one of "
                f"{', '.join(sorted(FORMATS))}"
            )
        return value


class MatchingConfig(_Frozen):
    """Matching thresholds, on the package's 0 to 100 score scale."""

    matched_threshold: float = Field(55.0, ge=0, le=100)
    review_threshold: float = Field(35.0, ge=0, le=100)
    top_k: int = Field(3, ge=1, le=20)
    engine: Literal["local", "dask"] = "local"
    dask_scheduler: str | None = None
    synonyms_path: Path | None = None

    @model_validator(mode="after")
    def _ordered(self) -> MatchingConfig:
        if self.review_threshold > self.matched_threshold:
            raise ValueError(
                f"review_threshold ({self.review_threshold}) must not exceed "
                f"matched_threshold ({self.matched_threshold})"
            )
        return self


class AlertGroupingConfig(_Frozen):
    """How alerts are grouped into incidents."""

    by: list[str] = ["alertname", "service"]
    window_minutes: float = Field(60.0, gt=0)


class NotificationConfig(_Frozen):
    """Where owners and escalations are notified (apprise URLs).

    URLs may hold ``${ENV_VAR}`` placeholders, filled from the environment at
    send time; secrets never live in this file.
    """

    enabled: bool = False
    owners: dict[str, list[str]] = {}
    default: list[str] = []
    escalation: list[str] = []
    retries: int = Field(3, ge=0, le=10)
    backoff_seconds: float = Field(1.0, ge=0)


class Config(_Frozen):
    """The validated configuration of a run. Paths are absolute."""

    config_path: Path
    risk_register_path: Path
    incident_sources: list[IncidentSource]
    auto_create_risks: StrictBool = True
    risk_threshold_for_escalation: StrictStr | StrictInt = "high"
    review_deadline_days: StrictInt = Field(14, ge=0, le=3650)
    reports_dir: Path
    reviews_dir: Path
    decisions_path: Path
    timezone: str = "UTC"
    strict: StrictBool = False
    owners: dict[str, str] = {}
    default_owner: str = "unassigned"
    likelihood_probability: dict[str, float] = DEFAULT_LIKELIHOOD_PROBABILITY
    rating_bands: dict[str, int] = {"low": 1, "medium": 5, "high": 10, "critical": 17}
    metrics_period: Literal["week", "month"] = "month"
    severity_bands: dict[str, list[StrictStr]] = {}
    matching: MatchingConfig = MatchingConfig()
    alert_grouping: AlertGroupingConfig = AlertGroupingConfig()
    notifications: NotificationConfig = NotificationConfig()

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}") from None
        return value

    @model_validator(mode="after")
    def _check(self) -> Config:
        for band, score in self.rating_bands.items():
            if not 1 <= score <= 25:
                raise ValueError(f"rating_bands.{band}: {score} is not a score 1 to 25")
        for word, p in self.likelihood_probability.items():
            if not 0.0 <= p <= 1.0:
                raise ValueError(f"likelihood_probability.{word}: {p} is not in [0, 1]")
        threshold = self.risk_threshold_for_escalation
        if isinstance(threshold, str) and threshold.lower() not in self.rating_bands:
            raise ValueError(
                f"risk_threshold_for_escalation: {threshold!r} is not a rating band "
                f"({', '.join(self.rating_bands)}) nor a score from 1 to 25"
            )
        if isinstance(threshold, int) and not 1 <= threshold <= 25:
            raise ValueError(
                f"risk_threshold_for_escalation: {threshold} is not a score 1 to 25"
            )
        return self

    def escalation_score(self) -> int:
        """The lowest rating (likelihood level x impact level, 1 to 25) escalated."""
        threshold = self.risk_threshold_for_escalation
        if isinstance(threshold, int):
            return threshold
        return self.rating_bands[threshold.lower()]

    def owner_for_service(self, service: str | None) -> str | None:
        """The owner configured for a service, or None when there is none."""
        if not service:
            return None
        return self.owners.get(service) or self.owners.get(service.lower())


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _cross_checks(data: dict) -> list[tuple[str, str]]:
    """Problems that involve a value's range or another key, each by its key.

    They are checked on the raw values so that they are reported together with
    the type errors of other keys (pydantic runs its model checks only once
    every field is valid). A value of the wrong type is left to pydantic.
    """
    problems = []
    probabilities = data.get("likelihood_probability")
    if isinstance(probabilities, dict):
        for word, p in probabilities.items():
            if _number(p) and not 0.0 <= p <= 1.0:
                problems.append(
                    (f"likelihood_probability.{word}", f"{p} is not in [0, 1]")
                )
    bands = data.get("rating_bands", Config.model_fields["rating_bands"].default)
    if isinstance(bands, dict):
        for band, score in bands.items():
            if _number(score) and not 1 <= score <= 25:
                problems.append(
                    (f"rating_bands.{band}", f"{score} is not a score 1 to 25")
                )
        threshold = data.get("risk_threshold_for_escalation", "high")
        key = "risk_threshold_for_escalation"
        if isinstance(threshold, str) and threshold.lower() not in bands:
            names = ", ".join(map(str, bands))
            problems.append(
                (
                    key,
                    f"{threshold!r} is not a rating band ({names}) "
                    "nor a score from 1 to 25",
                )
            )
        if _number(threshold) and not 1 <= threshold <= 25:
            problems.append((key, f"{threshold} is not a score 1 to 25"))
    matching = data.get("matching")
    if isinstance(matching, dict):
        matched = matching.get("matched_threshold", 55.0)
        review = matching.get("review_threshold", 35.0)
        if _number(matched) and _number(review) and review > matched:
            problems.append(
                (
                    "matching.review_threshold",
                    f"review_threshold ({float(review)}) must not exceed "
                    f"matched_threshold ({float(matched)})",
                )
            )
    return problems + _notification_problems(data.get("notifications"))


_TRUE = {"true", "yes", "on", "y", "t", "1"}


def _notification_problems(notifications: Any) -> list[tuple[str, str]]:
    """Notification URLs apprise cannot load, each by its key and index.

    Checked only when notifications are enabled; values of the wrong type are
    left to pydantic.
    """
    if not isinstance(notifications, dict):
        return []
    enabled = notifications.get("enabled", False)
    if not (enabled is True or str(enabled).strip().lower() in _TRUE):
        return []
    urls = [
        (f"notifications.{name}.{i}", url)
        for name in ("default", "escalation")
        if isinstance(notifications.get(name), list)
        for i, url in enumerate(notifications[name])
    ]
    owners = notifications.get("owners")
    if isinstance(owners, dict):
        urls += [
            (f"notifications.owners.{owner}.{i}", url)
            for owner, owner_urls in owners.items()
            if isinstance(owner_urls, list)
            for i, url in enumerate(owner_urls)
        ]
    urls = [(key, url) for key, url in urls if isinstance(url, str)]
    if not urls:
        return []
    from riskanalytics.notify import url_problem

    problems = []
    for key, url in urls:
        problem = url_problem(url)
        if problem:
            problems.append((key, problem))
    return problems


def _yaml_problem(exc: yaml.YAMLError) -> str:
    """The YAML error in one line, without PyYAML's source excerpts."""
    problem = getattr(exc, "problem", None)
    if not problem:
        return str(exc)
    context, mark = getattr(exc, "context", None), getattr(exc, "context_mark", None)
    if context and mark:
        return f"{problem} ({context} from line {mark.line + 1})"
    return problem


def _load_yaml(text: str) -> tuple[Any, list[tuple[str, str]]]:
    loader = DuplicateKeyLoader(text)
    try:
        data = loader.get_single_data()
        return data, [(key, text) for _, key, text in sorted(loader.duplicates)]
    finally:
        loader.dispose()


#: Where pydantic places the errors of the model checks mirrored by _cross_checks.
_MODEL_LOCS = ((), ("matching",))

_PATH_KEYS = ("risk_register_path", "reports_dir", "reviews_dir", "decisions_path")


def _resolve(base: Path, value: Any) -> Any:
    if isinstance(value, str) and value:
        path = Path(value).expanduser()
        return path if path.is_absolute() else (base / path).resolve()
    return value


def load_config(path: str | Path, **overrides: Any) -> Config:
    """Read, resolve and validate a configuration file.

    Parameters
    ----------
    path
        The ``config.yaml`` to read.
    **overrides
        Top-level keys that replace the file's values (for example from CLI
        options or notebook parameters), applied before validation.

    Raises
    ------
    ConfigError
        With every problem found, each naming its key.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            path,
            [
                (
                    "<file>",
                    f"file not found (looked for {path.absolute()}; run from the "
                    "project's folder or give --config)",
                )
            ],
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(path, [("<file>", f"cannot be read: {exc}")]) from None
    try:
        raw, duplicates = _load_yaml(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark else "<file>"
        raise ConfigError(
            path, [(where, f"not valid YAML: {_yaml_problem(exc)}")]
        ) from None
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(path, [("<file>", "expected a mapping of keys to values")])

    raw.update({k: v for k, v in overrides.items() if v is not None})
    missing = [
        (key, "Field required")
        for key in ("risk_register_path", "incident_sources")
        if raw.get(key) in (None, "")
    ]
    if missing:
        raise ConfigError(path, duplicates + missing)
    base = path.resolve().parent
    data = dict(raw)
    data["config_path"] = path.resolve()
    data.setdefault("reports_dir", "reports")
    data.setdefault("reviews_dir", "reviews")
    register = data.get("risk_register_path")
    if isinstance(register, str) and "decisions_path" not in data:
        data["decisions_path"] = str(Path(register).with_name("match-decisions.yaml"))
    for key in _PATH_KEYS:
        data[key] = _resolve(base, data.get(key))
    sources = data.get("incident_sources")
    if isinstance(sources, list):
        data["incident_sources"] = [
            {**s, "path": _resolve(base, s.get("path"))}
            if isinstance(s, dict)
            else {"path": _resolve(base, s)}
            for s in sources
        ]
    matching = data.get("matching")
    if isinstance(matching, dict) and matching.get("synonyms_path"):
        matching["synonyms_path"] = _resolve(base, matching["synonyms_path"])

    cross = _cross_checks(data)
    try:
        config = Config.model_validate(data)
    except ValidationError as exc:
        problems = list(duplicates)
        for err in exc.errors():
            if cross and err["type"] == "value_error" and err["loc"] in _MODEL_LOCS:
                continue  # a model check, reported by its key in ``cross``
            key = ".".join(str(p) for p in err["loc"]) or "<file>"
            problems.append((key, err["msg"]))
        raise ConfigError(path, problems + cross) from None
    if duplicates or cross:
        raise ConfigError(path, duplicates + cross)
    log.debug("Loaded configuration from %s", path)
    return config
