"""Analysts' match decisions, kept in ``match-decisions.yaml`` next to the register.

The file is a YAML list; each entry is one decision about one incident::

    - incident_id: PD-1234
      action: confirm          # confirm | reject | redirect
      risk_id: R-007           # confirm: optional when the matcher matched
                               # the incident (that risk is confirmed);
                               # reject: required; redirect: this or new_risk
      new_risk: false          # redirect only: the incident is a new risk
      by: alice                # optional, text
      at: 2026-03-01T10:00:00Z # optional, a date or a date-time
      note: lock on orders     # optional, text

A key set twice in one entry, or a value of the wrong type, is refused with the
file, the line and the key.

Entries apply in file order, so a later entry about the same incident refines an
earlier one. A confirmation or a redirect always wins over the scores on every
re-run; a rejection removes that risk from the incident's candidates and the
incident goes to review with the candidates left (or becomes a new risk when no
candidate reaches the review threshold): the next risk is not matched until an
analyst confirms it.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import yaml
from filelock import FileLock

from riskanalytics._files import replace_file
from riskanalytics._yaml import DuplicateKeyLoader
from riskanalytics.exceptions import InputFormatError

__all__ = [
    "ACTIONS",
    "Decision",
    "Decisions",
    "apply_decisions",
    "check_risk_ids",
    "warn_unknown_incidents",
    "load_decisions",
    "record_decision",
]

log = logging.getLogger(__name__)

ACTIONS = ("confirm", "reject", "redirect")
_KEYS = {"incident_id", "action", "risk_id", "new_risk", "by", "at", "note"}


@dataclass(frozen=True)
class Decision:
    """One analyst decision about one incident."""

    incident_id: str
    action: str
    risk_id: str | None = None
    new_risk: bool = False
    by: str | None = None
    at: str | None = None
    note: str | None = None


@dataclass(frozen=True)
class Decisions:
    """The decisions of one file, in file order."""

    entries: tuple[Decision, ...] = ()
    path: Path | None = field(default=None, compare=False)
    #: the line each entry starts on in the file (1-based), where known
    lines: tuple[int, ...] = field(default=(), compare=False)

    def __len__(self) -> int:
        return len(self.entries)

    def __iter__(self) -> Iterator[Decision]:
        return iter(self.entries)

    def for_incident(self, incident_id: str) -> list[Decision]:
        """The decisions about one incident, in file order."""
        return [d for d in self.entries if d.incident_id == str(incident_id)]

    def outcomes(self) -> dict[str, tuple[str | None, str | None, set[str]]]:
        """Per incident: final action (confirm/redirect or None), its risk, rejects."""
        result: dict[str, tuple[str | None, str | None, set[str]]] = {}
        for d in self.entries:
            action, risk, rejected = result.get(d.incident_id, (None, None, set()))
            rejected = set(rejected)
            if d.action == "reject":
                rejected.add(d.risk_id)
                if risk == d.risk_id:
                    action, risk = None, None
            elif d.action == "confirm":
                action, risk = "confirm", d.risk_id
                rejected.discard(d.risk_id)
            else:
                action, risk = "redirect", None if d.new_risk else d.risk_id
                rejected.discard(d.risk_id)
            result[d.incident_id] = (action, risk, rejected)
        return result

    def examples(self, incidents: pd.DataFrame) -> dict[str, list[str]]:
        """Texts of incidents analysts tied to a risk, ``risk_id`` to texts.

        Used to add confirmed incidents to a risk's profile in the matcher,
        and to find the confirmed incident most like a new one.
        """
        if incidents is None or len(incidents) == 0:
            return {}
        id_column = "incident_id" if "incident_id" in incidents.columns else "id"
        if id_column not in incidents.columns:
            return {}
        texts = {}
        for row in incidents.itertuples(index=False):
            parts = [
                str(getattr(row, f))
                for f in ("title", "root_cause", "impact", "category")
                if isinstance(getattr(row, f, None), str)
            ]
            texts[str(getattr(row, id_column))] = " ".join(parts)
        examples: dict[str, list[str]] = {}
        for incident_id, (_, risk, _) in self.outcomes().items():
            if risk and incident_id in texts:
                examples.setdefault(risk, []).append(texts[incident_id])
        return examples


def _where(path: Path | None, index: int, line: int | None = None) -> str:
    """``file:line: entry n``: the line, and the entry counted from 1."""
    number = index + 1
    return f"{path}:{line}: entry {number}" if line else f"{path}: entry {number}"


def _entry_lines(text: str) -> tuple[int, ...]:
    """The line (1-based) each item of a YAML list starts on; () if unknown."""
    return tuple(start for start, _ in _entry_nodes(text))


def _entry_nodes(text: str) -> list[tuple[int, dict[str, int]]]:
    """Per item of a YAML list: the line it starts on and the line of each key."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return []
    if not isinstance(node, yaml.SequenceNode):
        return []
    entries = []
    for item in node.value:
        keys: dict[str, int] = {}
        if isinstance(item, yaml.MappingNode):
            for key_node, _ in item.value:
                if isinstance(key_node, yaml.ScalarNode):
                    keys.setdefault(str(key_node.value), key_node.start_mark.line + 1)
        entries.append((item.start_mark.line + 1, keys))
    return entries


def _load_yaml(path: Path, text: str) -> Any:
    """The file's YAML; a key set twice in one mapping is refused by its line."""
    loader = DuplicateKeyLoader(text)
    try:
        raw = loader.get_single_data()
        duplicates = sorted(loader.duplicates)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        raise InputFormatError(f"{path}:{where} not valid YAML: {exc}") from None
    finally:
        loader.dispose()
    if duplicates:
        line, key, problem = duplicates[0]
        starts = _entry_lines(text) if isinstance(raw, list) else ()
        index = next(
            (i for i in reversed(range(len(starts))) if starts[i] <= line), None
        )
        where = f"{path}:{line}" if index is None else _where(path, index, line)
        raise InputFormatError(f"{where}: {key} {problem}")
    return raw


def _text(where: str, key: str, value: Any) -> str | None:
    """An optional text value (``by``, ``note``); numbers read as their text."""
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    raise InputFormatError(
        f"{where}: {key} must be text, found {type(value).__name__} {value!r}; "
        "put it in quotes"
    )


def _timestamp(where: str, value: Any) -> str | None:
    """The optional ``at``: a date or a date-time, as ISO 8601 text."""
    if value is None:
        return None
    if isinstance(value, dt.date):  # a datetime is a date too
        return value.isoformat()
    if isinstance(value, str):
        try:
            dt.datetime.fromisoformat(value.strip())
        except ValueError:
            pass
        else:
            return value.strip()
    raise InputFormatError(
        f"{where}: at must be a date or a date-time (YYYY-MM-DD or "
        f"YYYY-MM-DDTHH:MM:SSZ), found {value!r}"
    )


def _parse_entry(
    path: Path,
    index: int,
    raw: Any,
    line: int | None = None,
    key_lines: Mapping[str, int] | None = None,
) -> Decision:
    where = _where(path, index, line)
    key_lines = key_lines or {}

    def at_key(key: str) -> str:
        return _where(path, index, key_lines.get(key, line))

    if not isinstance(raw, Mapping):
        raise InputFormatError(
            f"{where}: expected a mapping with incident_id and action, "
            f"found {type(raw).__name__}"
        )
    unknown = set(map(str, raw)) - _KEYS
    if unknown:
        raise InputFormatError(
            f"{where}: unknown key(s) {', '.join(sorted(unknown))}; expected some of "
            f"{', '.join(sorted(_KEYS))}"
        )
    incident_id = raw.get("incident_id")
    if incident_id is None or str(incident_id).strip() == "":
        raise InputFormatError(f"{where}: expected an incident_id, found none")
    for key in ("incident_id", "risk_id"):
        value = raw.get(key)
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, str | int)
        ):
            raise InputFormatError(
                f"{at_key(key)}: {key} must be one id, found {value!r}"
            )
    action = raw.get("action")
    if action not in ACTIONS:
        raise InputFormatError(
            f"{where}: action must be one of {', '.join(ACTIONS)}, found {action!r}"
        )
    risk_id = raw.get("risk_id")
    risk_id = None if risk_id is None else str(risk_id).strip() or None
    new_risk = raw.get("new_risk", False)
    if not isinstance(new_risk, bool):
        raise InputFormatError(
            f"{where}: new_risk must be true or false, found {new_risk!r}"
        )
    if action == "reject" and risk_id is None:
        raise InputFormatError(
            f"{where}: reject needs the risk_id rejected, found none"
        )
    if action == "redirect" and (risk_id is None) == (not new_risk):
        raise InputFormatError(
            f"{where}: redirect needs either a risk_id or new_risk: true, "
            f"found risk_id={risk_id!r}, new_risk={new_risk!r}"
        )
    return Decision(
        incident_id=str(incident_id).strip(),
        action=action,
        risk_id=risk_id,
        new_risk=new_risk,
        by=_text(at_key("by"), "by", raw.get("by")),
        at=_timestamp(at_key("at"), raw.get("at")),
        note=_text(at_key("note"), "note", raw.get("note")),
    )


def load_decisions(path: str | Path | None) -> Decisions:
    """Read analysts' decisions.

    Parameters
    ----------
    path
        The decisions YAML file; a missing file (or ``None``) means no decisions.

    Returns
    -------
    Decisions
        The entries in file order.

    Raises
    ------
    InputFormatError
        When the file is not YAML, not a list, or an entry is malformed (a key
        set twice, a value of the wrong type); the message names the file, the
        line, the entry (counted from 1) and the key.
    """
    if path is None:
        return Decisions()
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return Decisions(path=path)
    except (OSError, UnicodeDecodeError) as exc:
        raise InputFormatError(f"{path}: cannot be read: {exc}") from None
    raw = _load_yaml(path, text)
    if raw is None:
        return Decisions(path=path)
    if not isinstance(raw, list):
        raise InputFormatError(
            f"{path}: expected a list of decisions, found {type(raw).__name__}"
        )
    nodes = _entry_nodes(text)
    lines = tuple(start for start, _ in nodes)
    entries = tuple(
        _parse_entry(path, i, e, *(nodes[i] if i < len(nodes) else (None, None)))
        for i, e in enumerate(raw)
    )
    log.debug("Loaded %d match decisions from %s", len(entries), path)
    return Decisions(entries, path, lines)


def check_risk_ids(decisions: Decisions, risk_ids: set[str], register: Path) -> None:
    """Raise InputFormatError when an entry names a risk the register lacks.

    The message names the decisions file, the line, the entry (counted from 1) and the
    register, so a typo in a risk id stops the run before anything is written.
    """
    lines = decisions.lines
    for index, decision in enumerate(decisions):
        if decision.risk_id is not None and decision.risk_id not in risk_ids:
            line = lines[index] if index < len(lines) else None
            raise InputFormatError(
                f"{_where(decisions.path, index, line)}: risk_id {decision.risk_id!r} "
                f"is not a risk of {register}"
            )


def warn_unknown_incidents(decisions: Decisions, incident_ids: set[str]) -> int:
    """Warn about each entry whose incident no source holds; return their count.

    Such an entry changes nothing (yet): its incident id may be mistyped, or
    its incident may come from a source this configuration does not read.
    """
    unknown = [
        (index, d)
        for index, d in enumerate(decisions)
        if d.incident_id not in incident_ids
    ]
    for index, decision in unknown:
        line = decisions.lines[index] if index < len(decisions.lines) else None
        log.warning(
            "%s: incident %r is in none of the sources; the decision applies to "
            "nothing",
            _where(decisions.path, index, line),
            decision.incident_id,
        )
    return len(unknown)


def record_decision(
    path: str | Path,
    incident_id: str,
    action: str,
    risk_id: str | None = None,
    *,
    new_risk: bool = False,
    by: str | None = None,
    note: str | None = None,
    at: dt.datetime | None = None,
) -> Decision:
    """Append one decision to the file, atomically and under a file lock.

    Parameters
    ----------
    path
        The decisions YAML file; created when missing.
    incident_id, action, risk_id, new_risk, by, note
        The decision (see the module docstring).
    at
        When it was made; now (UTC) by default.

    Returns
    -------
    Decision
        The decision as written.

    Raises
    ------
    InputFormatError
        When the decision is malformed or the existing file is.
    """
    path = Path(path)
    when = (at or dt.datetime.now(dt.UTC)).isoformat(timespec="seconds")
    raw = {"incident_id": str(incident_id), "action": action}
    if risk_id is not None:
        raw["risk_id"] = str(risk_id)
    if new_risk:
        raw["new_risk"] = True
    raw.update({k: v for k, v in (("by", by), ("at", when), ("note", note)) if v})

    with FileLock(str(path) + ".lock"):
        existing = load_decisions(path)
        decision = _parse_entry(path, len(existing), raw)
        entries = [
            {k: v for k, v in asdict(d).items() if v not in (None, False)}
            for d in (*existing.entries, decision)
        ]
        text = yaml.safe_dump(entries, sort_keys=False, allow_unicode=True)
        path.parent.mkdir(parents=True, exist_ok=True)
        replace_file(path, text.encode("utf-8"))
    log.info(
        "Recorded %s of %s for incident %s in %s", action, risk_id, incident_id, path
    )
    return decision


def _parse_candidates(text: Any) -> list[tuple[str, float]]:
    if not isinstance(text, str) or not text:
        return []
    out = []
    for part in text.split(";"):
        risk, _, score = part.rpartition(":")
        out.append((risk, float(score)))
    return out


def _decide(score: float, matched: float, review: float) -> str:
    if score >= matched:
        return "matched"
    return "review" if score >= review else "new"


def _matched_risk(
    row: pd.Series, rejected: set[str], recorded: str | None = None
) -> str | None:
    """The risk the incident is matched to once rejections are applied, or None.

    That is the risk the register records for it (``recorded``), else the
    matcher's own match, unless an analyst rejected it: a rejected incident
    goes to review, so a confirm after it must name its risk.
    """
    if recorded:
        return recorded if recorded not in rejected else None
    risk = row.get("risk_id")
    if row.get("decision") == "matched" and isinstance(risk, str) and risk:
        if risk not in rejected:
            return risk
    return None


def _unmatched_confirm(decisions: Decisions, row: pd.Series) -> InputFormatError:
    """The error for a confirm without risk_id on an incident matched to no risk."""
    incident_id = str(row["incident_id"])
    index = next(
        i
        for i in reversed(range(len(decisions.entries)))
        if decisions.entries[i].incident_id == incident_id
        and decisions.entries[i].action in ("confirm", "redirect")
    )
    line = decisions.lines[index] if index < len(decisions.lines) else None
    best = _parse_candidates(row.get("candidates"))
    found = (
        f"best candidate {best[0][0]} scored {best[0][1]:.1f}"
        if best
        else "no candidate"
    )
    return InputFormatError(
        f"{_where(decisions.path, index, line)}: confirm needs risk_id: the incident "
        f"has no matched risk (incident {incident_id}: the matcher decided "
        f"{row.get('decision')!r}, {found}); name the risk to confirm, or redirect "
        "it with new_risk: true"
    )


def apply_decisions(
    matches: pd.DataFrame,
    decisions: Decisions,
    *,
    matched_threshold: float = 55.0,
    review_threshold: float = 35.0,
    recorded: Mapping[str, str] | None = None,
) -> pd.DataFrame:
    """Apply analysts' decisions on top of scored matches.

    Parameters
    ----------
    matches
        The match table from :func:`riskanalytics.match.match_incidents`.
    decisions
        The analysts' decisions.
    matched_threshold, review_threshold
        Thresholds (0 to 100) used to re-decide an incident after a rejection.
    recorded
        Incident id to the risk the register already records it as realizing:
        a rejection or a bare confirm is about that risk, not about what the
        matcher would pick today.

    Returns
    -------
    pandas.DataFrame
        A copy of ``matches``: confirmed and redirected incidents are
        ``matched`` to the analyst's risk (or ``new``); rejected incidents are
        ``review`` (or ``new`` below the review threshold), their rejected risks
        gone from ``candidates``; ``decided_by`` is ``"analyst"`` on changed rows.
        A confirm without ``risk_id`` confirms the incident's matched risk.

    Raises
    ------
    InputFormatError
        When a confirm without ``risk_id`` is about an incident matched to no
        risk (decided ``review`` or ``new``): naming the file, line and entry.
    """
    result = matches.copy()
    if "decided_by" not in result.columns:
        result["decided_by"] = pd.Series("score", index=result.index, dtype="string")
    outcomes = decisions.outcomes()
    if not outcomes or len(result) == 0:
        return result

    recorded = recorded or {}
    for idx in result.index[result["incident_id"].astype(str).isin(outcomes)]:
        incident = str(result.at[idx, "incident_id"])
        action, risk, rejected = outcomes[incident]
        candidates = [
            (r, s)
            for r, s in _parse_candidates(result.at[idx, "candidates"])
            if r not in rejected
        ]
        scores = dict(candidates)
        if action == "confirm" and risk is None:
            risk = _matched_risk(result.loc[idx], rejected, recorded.get(incident))
            if risk is None:
                raise _unmatched_confirm(decisions, result.loc[idx])
        if action in ("confirm", "redirect"):
            if risk is None:
                decision, score = "new", (candidates[0][1] if candidates else 0.0)
            else:
                decision, score = (
                    "matched",
                    scores.get(risk, float(result.at[idx, "match_score"])),
                )
                candidates = [(risk, score)] + [c for c in candidates if c[0] != risk]
        elif (
            kept := _matched_risk(result.loc[idx], rejected, recorded.get(incident))
        ) is not None:
            # a rejected runner-up: the match stands
            risk, decision = kept, "matched"
            score = scores.get(kept, float(result.at[idx, "match_score"]))
        else:
            # the analyst said the match was wrong: the candidates left go to a
            # person, not straight into the register
            score = candidates[0][1] if candidates else 0.0
            decision = _decide(score, matched_threshold, review_threshold)
            decision, risk = ("review" if decision == "matched" else decision), None
        result.at[idx, "risk_id"] = risk if decision == "matched" else pd.NA
        result.at[idx, "decision"] = decision
        result.at[idx, "match_score"] = float(score)
        result.at[idx, "candidates"] = ";".join(f"{r}:{s:.1f}" for r, s in candidates)
        result.at[idx, "decided_by"] = "analyst"
        evidence = result.at[idx, "evidence"]
        if isinstance(evidence, dict):
            notes = [
                {k: v for k, v in asdict(d).items() if v not in (None, False)}
                for d in decisions.for_incident(str(result.at[idx, "incident_id"]))
            ]
            result.at[idx, "evidence"] = {**evidence, "analyst": notes}
    log.info(
        "Applied analysts' decisions to %d incidents",
        int((result["decided_by"] == "analyst").sum()),
    )
    return result
