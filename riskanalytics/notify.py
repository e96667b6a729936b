"""Tell risk owners what the incidents showed, and escalate the serious risks.

One message per owner per run gathers everything that concerns them: the
risks of theirs that incidents realized (with the incident, the mitigation
verdict and the review deadline), the new risks assigned to them, incidents
waiting for a match decision, and post-incident reviews that are overdue.
Risks rated at or above the escalation threshold also go, in one message
marked as an escalation, to the escalation URLs.

Messages are delivered through `apprise <https://github.com/caronc/apprise>`_
URLs (``mailto://``, ``slack://``, ``workflows://`` for Teams, ``json://`` ...).
URLs may hold ``${NAME}`` placeholders that are filled from the environment only at
send time; reports and logs show URLs redacted.

Every fact carries a deduplication key. Keys delivered to a URL are recorded in
a JSON state file, so a re-run notifies only what is new. Overdue reviews are
keyed by the number of whole weeks overdue, so an overdue review is repeated
once a week until it is done.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import time
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pandas as pd
from filelock import FileLock

from riskanalytics._files import replace_file
from riskanalytics.config import Config

__all__ = [
    "Fact",
    "Message",
    "NotifyReport",
    "build_messages",
    "default_state_path",
    "redact_url",
    "send_messages",
    "unset_variables",
]

log = logging.getLogger(__name__)

ESCALATION_OWNER = "escalation"
STATE_VERSION = 1

_PLACEHOLDER = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_HOSTLIKE = re.compile(r"^(localhost|[0-9.]+|\[[0-9a-fA-F:]+\]|[\w-]+(\.[\w-]+)+)$")
_KIND_ORDER = {"realized": 0, "new_risk": 1, "needs_review": 2, "overdue": 3}


@dataclass(frozen=True)
class Fact:
    """One thing an owner is told about: a row of reconciliation or overdue."""

    kind: str
    key: str
    lines: tuple[str, ...]
    risk_id: str = ""
    incident_id: str = ""
    near_miss: bool = False
    review: bool = False


@dataclass
class Message:
    """A notification to one owner (or to the escalation channels).

    Attributes
    ----------
    owner
        The owner's name, or ``"escalation"`` for the escalation message.
    urls
        Apprise URLs as configured, ``${ENV}`` placeholders not yet expanded.
    title, body
        Plain text subject and body.
    escalation
        True for the message sent to the escalation URLs.
    keys
        Deduplication keys of the facts in the message.
    facts
        The facts themselves, so that a message can be re-rendered with only
        the facts not yet sent.
    """

    owner: str
    urls: list[str]
    title: str
    body: str
    escalation: bool
    keys: list[str]
    facts: list[Fact] = field(default_factory=list, repr=False, compare=False)


@dataclass
class NotifyReport:
    """What :func:`send_messages` did, one entry per message and URL.

    Every entry has ``owner``, ``escalation``, ``keys`` and a redacted ``url``
    (``urls`` for dry runs); ``sent`` adds ``title`` and ``attempts``,
    ``failed`` adds ``attempts`` and ``error``, ``dry_run`` adds ``title`` and
    ``body``. No entry holds a secret.
    """

    sent: list[dict] = field(default_factory=list)
    skipped_already_sent: list[dict] = field(default_factory=list)
    failed: list[dict] = field(default_factory=list)
    dry_run: list[dict] = field(default_factory=list)

    def to_dict(self) -> dict:
        """The report as plain JSON-serializable data, for ``run.json``."""
        return {
            "sent": [dict(e) for e in self.sent],
            "skipped_already_sent": [dict(e) for e in self.skipped_already_sent],
            "failed": [dict(e) for e in self.failed],
            "dry_run": [dict(e) for e in self.dry_run],
            "counts": {
                "sent": len(self.sent),
                "skipped_already_sent": len(self.skipped_already_sent),
                "failed": len(self.failed),
                "dry_run": len(self.dry_run),
            },
        }


# -- building messages ------------------------------------------------------


def _text(value: Any) -> str:
    if value is None:
        return ""
    try:
        if pd.isna(value):
            return ""
    except (TypeError, ValueError):
        pass
    return str(value).strip()


def _date(value: Any) -> str:
    if _text(value) == "":
        return ""
    stamp = pd.Timestamp(value)
    if stamp.tzinfo is None:
        stamp = stamp.tz_localize("UTC")
    return stamp.tz_convert("UTC").strftime("%Y-%m-%d")


def _time(value: Any) -> str:
    if _text(value) == "":
        return ""
    stamp = pd.Timestamp(value)
    if stamp.tzinfo is None:
        stamp = stamp.tz_localize("UTC")
    return stamp.tz_convert("UTC").strftime("%Y-%m-%d %H:%M UTC")


def _score(value: Any) -> str:
    text = _text(value)
    try:
        return f"{float(text):g}" if text else ""
    except ValueError:
        return text


def _flag(value: Any) -> bool:
    return _text(value).lower() in {"true", "1", "yes"}


def _incident_line(row: pd.Series) -> str:
    incident_id = _text(row.get("incident_id"))
    title = _text(row.get("title")) or "(no title)"
    details = [
        _text(row.get("severity")),
        _text(row.get("service")),
    ]
    when = []
    if _time(row.get("started_at")):
        when.append(f"started {_time(row.get('started_at'))}")
    if _time(row.get("resolved_at")):
        when.append(f"resolved {_time(row.get('resolved_at'))}")
    extra = ", ".join([d for d in details if d] + when)
    return f"Incident {incident_id}: {title}" + (f" ({extra})" if extra else "")


def _review_line(row: pd.Series) -> str | None:
    path = _text(row.get("review_path"))
    deadline = _date(row.get("review_deadline"))
    if not path and not deadline:
        return None
    parts = ["Post-incident review"]
    if path:
        parts.append(f": {path}")
    if deadline:
        parts.append(f", due {deadline}")
    return "".join(parts)


def _rating(row: pd.Series) -> str:
    rating = _text(row.get("risk_rating"))
    return f" (rating {rating})" if rating else ""


def _reconciliation_fact(row: pd.Series, *, unowned: bool = False) -> Fact | None:
    outcome = _text(row.get("outcome"))
    incident_id = _text(row.get("incident_id"))
    risk_id = _text(row.get("risk_id"))
    description = _text(row.get("risk_description")) or "(no description)"
    review = _review_line(row)
    score = _score(row.get("match_score"))

    if outcome == "realized":
        verdict = _text(row.get("mitigation_verdict")) or "unknown"
        # a near miss is recorded against the risk but the risk did not happen
        what = "Near miss of risk" if _flag(row.get("near_miss")) else "Realized risk"
        lines = [
            f"{what} {risk_id}{_rating(row)}: {description}",
            _incident_line(row),
            f"Mitigation verdict: {verdict}"
            + (f"; match score {score} of 100" if score else ""),
        ]
    elif outcome == "new_risk":
        lines = [
            f"New risk {risk_id}{_rating(row)} "
            + ("with no owner yet" if unowned else "assigned to you")
            + f": {description}",
            _incident_line(row),
        ]
    elif outcome == "needs_review":
        why = (
            "an analyst rejected its match"
            if _text(row.get("decided_by")) == "analyst"
            else "no risk matched with confidence"
        )
        lines = [
            f"Incident {incident_id} needs a match decision: {why}"
            + (f" (best score {score} of 100)" if score else ""),
            _incident_line(row),
        ]
    else:
        log.warning(
            "Reconciliation row for incident %s has outcome %r, expected one of "
            "realized, new_risk, needs_review; not notified",
            incident_id,
            outcome,
        )
        return None
    if review:
        lines.append(review)
    return Fact(
        kind=outcome,
        key=f"{outcome}:{incident_id}:{risk_id}",
        lines=tuple(lines),
        risk_id=risk_id,
        incident_id=incident_id,
        near_miss=outcome == "realized" and _flag(row.get("near_miss")),
        review=bool(_text(row.get("review_path"))),
    )


def _overdue_fact(row: pd.Series) -> Fact:
    incident_id = _text(row.get("incident_id"))
    risk_id = _text(row.get("risk_id"))
    days = _text(row.get("days_overdue"))
    try:
        weeks = int(float(days)) // 7
    except ValueError:
        weeks = 0
    about = f"incident {incident_id}" + (f", risk {risk_id}" if risk_id else "")
    lines = [
        f"Overdue post-incident review for {about}: "
        f"{_text(row.get('review_path')) or '(no path)'}",
        f"Was due {_date(row.get('review_deadline')) or '(unknown)'}"
        + (f", {days} day(s) overdue" if days else ""),
    ]
    return Fact(
        kind="overdue",
        key=f"overdue:{incident_id}:{risk_id}:week{weeks}",
        lines=tuple(lines),
        risk_id=risk_id,
        incident_id=incident_id,
        review=True,
    )


def _counted(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _render(
    owner: str, facts: Sequence[Fact], escalation: bool, unowned: bool = False
) -> tuple[str, str]:
    """The title and plain-text body of a message holding ``facts``."""
    counts = {kind: sum(f.kind == kind for f in facts) for kind in _KIND_ORDER}
    near_misses = sum(f.near_miss for f in facts)
    counts["realized"] -= near_misses
    # one risk realized by two incidents is one realized risk
    realized = {f.risk_id for f in facts if f.kind == "realized" and not f.near_miss}
    summary = []
    if counts["realized"]:
        summary.append(
            _counted(len(realized), "realized risk")
            + (
                f" ({counts['realized']} incidents)"
                if counts["realized"] > len(realized)
                else ""
            )
        )
    if near_misses:
        summary.append(f"{near_misses} near miss" + ("es" if near_misses > 1 else ""))
    if counts["new_risk"]:
        summary.append(_counted(counts["new_risk"], "new risk"))
    if counts["needs_review"]:
        summary.append(_counted(counts["needs_review"], "incident") + " to review")
    if counts["overdue"]:
        summary.append(_counted(counts["overdue"], "overdue review"))

    if escalation:
        title = "[ESCALATION] riskanalytics: " + ", ".join(summary)
        intro = (
            "These risks are rated at or above the escalation threshold and "
            "were involved in incidents."
        )
    else:
        if unowned:
            title = f"riskanalytics: {', '.join(summary)} with no owner"
            intro = (
                "Risk register news with no owner yet: give each risk an owner "
                "in the register."
            )
        else:
            title = f"riskanalytics: {', '.join(summary)} for {owner}"
            intro = f"Risk register news for {owner}."
        if any(f.review for f in facts):
            intro += (
                "\nFill in each post-incident review by its due date: in its front "
                "matter set mitigations_worked, new_risks and status."
            )

    blocks = [intro]
    for fact in sorted(facts, key=lambda f: (_KIND_ORDER[f.kind], f.key)):
        blocks.append(
            "\n".join(["- " + fact.lines[0]] + [f"  {x}" for x in fact.lines[1:]])
        )
    return title, "\n\n".join(blocks) + "\n"


def _urls_for(config: Config, owner: str) -> list[str]:
    owners = config.notifications.owners
    return list(
        owners.get(owner) or owners.get(owner.lower()) or config.notifications.default
    )


def build_messages(
    config: Config,
    reconciliation: pd.DataFrame,
    overdue_reviews: pd.DataFrame | None = None,
) -> list[Message]:
    """Gather a run's facts into one message per owner, plus escalations.

    Parameters
    ----------
    config
        The run's configuration; ``config.notifications`` names the URLs.
        ``notifications.enabled`` is not looked at here: the caller decides
        whether to send.
    reconciliation
        One row per incident, with the columns ``incident_id, title, severity,
        service, started_at, resolved_at, outcome, risk_id, risk_description,
        owner, risk_rating, escalate, mitigation_verdict, match_score,
        review_path, review_deadline``.
    overdue_reviews
        Optional rows ``incident_id, risk_id, owner, review_path,
        review_deadline, days_overdue``.

    Returns
    -------
    list of Message
        Owner messages sorted by owner, then the escalation message (if any
        row has ``escalate`` true). A row without an owner goes to
        ``config.default_owner``. Owners without configured URLs get the
        ``notifications.default`` URLs; a message may have no URL at all, which
        :func:`send_messages` reports as failed.
    """
    by_owner: dict[str, list[Fact]] = {}
    escalated: list[Fact] = []

    for _, row in reconciliation.iterrows():
        owner = _text(row.get("owner")) or config.default_owner
        fact = _reconciliation_fact(row, unowned=owner == config.default_owner)
        if fact is None:
            continue
        by_owner.setdefault(owner, []).append(fact)
        if fact.kind != "needs_review" and _flag(row.get("escalate")):
            line = f"Owner: {owner}"
            escalated.append(
                Fact(
                    kind=fact.kind,
                    key=f"escalation:{fact.key}",
                    lines=fact.lines + (line,),
                    risk_id=fact.risk_id,
                    incident_id=fact.incident_id,
                    near_miss=fact.near_miss,
                )
            )

    if overdue_reviews is not None:
        for _, row in overdue_reviews.iterrows():
            owner = _text(row.get("owner")) or config.default_owner
            by_owner.setdefault(owner, []).append(_overdue_fact(row))

    messages = []
    for owner in sorted(by_owner):
        facts = by_owner[owner]
        title, body = _render(
            owner, facts, escalation=False, unowned=owner == config.default_owner
        )
        messages.append(
            Message(
                owner=owner,
                urls=_urls_for(config, owner),
                title=title,
                body=body,
                escalation=False,
                keys=[f.key for f in facts],
                facts=list(facts),
            )
        )
    if escalated:
        title, body = _render(ESCALATION_OWNER, escalated, escalation=True)
        messages.append(
            Message(
                owner=ESCALATION_OWNER,
                urls=list(config.notifications.escalation),
                title=title,
                body=body,
                escalation=True,
                keys=[f.key for f in escalated],
                facts=escalated,
            )
        )
    log.info(
        "Built %d notification message(s) from %d reconciliation row(s)",
        len(messages),
        len(reconciliation),
    )
    return messages


# -- URLs and secrets -------------------------------------------------------


def redact_url(url: str) -> str:
    """A URL safe to log: scheme and host kept, credentials and paths hidden.

    ``mailto://user:pw@smtp.example.com:587?to=a@b`` becomes
    ``mailto://***@smtp.example.com:587/...``; a host that looks like a token
    (``slack://T0ken/B0t/...``) is hidden too.
    """
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparseable URL>"
    scheme = parts.scheme or "?"
    hostport = parts.netloc.rpartition("@")[2]
    host, port = hostport, ""
    if ":" in hostport and not hostport.endswith("]"):
        host, _, port = hostport.rpartition(":")
    if host and not _HOSTLIKE.match(host):
        host = "***"
    netloc = ("***@" if "@" in parts.netloc else "") + host
    if re.fullmatch(r"[0-9]+|\$\{[A-Za-z_][A-Za-z0-9_]*\}", port):
        netloc += f":{port}"
    rest = "/..." if (parts.path.strip("/") or parts.query or parts.fragment) else ""
    return f"{scheme}://{netloc}{rest}"


def unset_variables(config: Config) -> list[tuple[str, str]]:
    """``(config key, problem)`` for each notification URL naming an unset variable.

    Checked before a run writes anything, so that a missing secret stops the
    run instead of leaving every owner unnotified after the register changed.
    """
    urls = [
        (f"notifications.{name}.{i}", url)
        for name in ("default", "escalation")
        for i, url in enumerate(getattr(config.notifications, name))
    ]
    urls += [
        (f"notifications.owners.{owner}.{i}", url)
        for owner, owner_urls in config.notifications.owners.items()
        for i, url in enumerate(owner_urls)
    ]
    problems = []
    for key, url in urls:
        missing = sorted({n for n in _PLACEHOLDER.findall(url) if n not in os.environ})
        if missing:
            problems.append(
                (
                    key,
                    f"environment variable(s) not set: {', '.join(missing)} "
                    "(set them, or run with --no-notify)",
                )
            )
    return problems


def _expand(url: str) -> str:
    missing = [n for n in _PLACEHOLDER.findall(url) if n not in os.environ]
    if missing:
        raise LookupError(
            "environment variable(s) not set: " + ", ".join(sorted(set(missing)))
        )
    return _PLACEHOLDER.sub(lambda m: os.environ[m.group(1)], url)


#: Stand-ins for ``${VAR}`` placeholders when a URL is checked at load time: a
#: number fits a port or a numeric id, the other a token of letters and digits.
_STAND_INS = ("8025", "A1b2C3d4E5f6")
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")


def url_problem(url: str) -> str | None:
    """Why apprise cannot load a notification URL; None when it can.

    ``${VAR}`` placeholders are filled with stand-in values, as the real ones
    come from the environment only at send time. A URL with placeholders that
    loads with none of the stand-ins (a placeholder holding several parts of
    the URL, say) is refused only when apprise has no service for its scheme.
    """
    match = _SCHEME.match(url.strip())
    if not match:
        return "not an apprise URL: expected service://..."
    scheme = match.group(1).lower()
    apprise = _apprise()
    from apprise.manager_plugins import NotificationManager

    if scheme not in NotificationManager():
        return f"apprise has no service for {scheme}:// (a typo in the scheme?)"
    placeholders = bool(_PLACEHOLDER.search(url))
    tries = [_PLACEHOLDER.sub(v, url) for v in _STAND_INS] if placeholders else [url]
    apprise_log = logging.getLogger("apprise")
    disabled, apprise_log.disabled = apprise_log.disabled, True
    try:
        if any(apprise.Apprise().add(u) for u in tries):
            return None
    finally:
        apprise_log.disabled = disabled
    if placeholders:
        log.debug("%s: not checked beyond its scheme (placeholders)", redact_url(url))
        return None
    return f"apprise cannot load this {scheme}:// URL (check its parts and options)"


def _url_id(url: str) -> str:
    return hashlib.sha256(url.encode("utf-8")).hexdigest()[:16]


_apprise_loaded = False


def _apprise():
    """Import apprise and load its plugins once.

    Loading the e-mail plugin imports the standard ``imghdr`` module, which is
    deprecated since Python 3.11; that one warning is silenced here because
    the import is apprise's, not ours.
    """
    global _apprise_loaded
    import apprise

    if not _apprise_loaded:
        from apprise.manager_plugins import NotificationManager

        with warnings.catch_warnings():
            warnings.filterwarnings(
                "ignore", message=".imghdr. is deprecated", category=DeprecationWarning
            )
            NotificationManager().load_modules()
        _apprise_loaded = True
    return apprise


def _deliver(url: str, title: str, body: str) -> str | None:
    """Send once; None on success, else the reason (never holding the URL)."""
    try:
        expanded = _expand(url)
    except LookupError as exc:
        return str(exc)
    apprise = _apprise()
    sender = apprise.Apprise()
    if not sender.add(expanded):
        return "apprise does not understand this URL"
    try:
        ok = sender.notify(title=title, body=body, body_format="text")
    except Exception as exc:  # a plugin bug must not stop the run
        return f"{type(exc).__name__} while sending"
    return None if ok else "the channel refused or could not be reached"


# -- state ------------------------------------------------------------------


def default_state_path(config: Config) -> Path:
    """Where the record of sent notifications lives: in ``reports_dir``."""
    return config.reports_dir / "notifications-sent.json"


def _read_state(path: Path, *, repair: bool = True) -> dict[str, dict[str, str]]:
    """Map of dedup key to {url id: ISO time sent}.

    An entry of the wrong shape is dropped with a warning and the others kept,
    so that one bad entry does not send everything again. A file that is no
    such JSON at all is moved aside (``.corrupt``, ``.corrupt.1``, ...) and the
    record starts afresh.
    """
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        sent = data["sent"]
        if not isinstance(sent, dict):
            raise TypeError("'sent' is not a mapping")
    except (OSError, ValueError, KeyError, TypeError, RecursionError) as exc:
        reason = "nested too deeply" if isinstance(exc, RecursionError) else exc
        if not repair:
            log.warning("%s: notification state unreadable (%s)", path, reason)
            return {}
        aside = _aside(path)
        log.warning(
            "%s: notification state unreadable (%s), expected JSON with a 'sent' "
            "mapping; moved to %s and starting afresh, so earlier notifications "
            "may be repeated",
            path,
            reason,
            aside,
        )
        os.replace(path, aside)
        return {}
    state, bad = {}, []
    for key, value in sent.items():
        if isinstance(value, dict) and all(isinstance(v, str) for v in value.values()):
            state[str(key)] = {str(k): v for k, v in value.items()}
        else:
            bad.append(str(key))
    if bad:
        log.warning(
            "%s: %d notification state entr%s of the wrong shape dropped (%s); "
            "what they recorded may be sent again",
            path,
            len(bad),
            "y" if len(bad) == 1 else "ies",
            ", ".join(bad[:5]) + (", ..." if len(bad) > 5 else ""),
        )
    return state


def _aside(path: Path) -> Path:
    """A free ``.corrupt`` name beside ``path``: earlier copies are kept."""
    aside = path.with_name(path.name + ".corrupt")
    n = 0
    while aside.exists():
        n += 1
        aside = path.with_name(f"{path.name}.corrupt.{n}")
    return aside


def _write_state(path: Path, sent: dict[str, dict[str, str]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {"version": STATE_VERSION, "sent": dict(sorted(sent.items()))}
    text = json.dumps(data, indent=1, sort_keys=True) + "\n"
    replace_file(path, text.encode("utf-8"))


# -- sending ----------------------------------------------------------------


def _entry(message: Message, keys: Iterable[str], **more: Any) -> dict:
    return {
        "owner": message.owner,
        "escalation": message.escalation,
        "keys": list(keys),
        **more,
    }


def _content(message: Message, keys: list[str]) -> tuple[str, str]:
    if set(keys) == set(message.keys) or not message.facts:
        return message.title, message.body
    facts = [f for f in message.facts if f.key in set(keys)]
    return _render(message.owner, facts, message.escalation)


def send_messages(
    messages: Sequence[Message],
    *,
    state_path: Path,
    dry_run: bool = False,
    retries: int = 3,
    backoff_seconds: float = 1.0,
) -> NotifyReport:
    """Deliver messages, skipping what each URL already received.

    Parameters
    ----------
    messages
        From :func:`build_messages`.
    state_path
        JSON file recording which dedup keys each URL received; written
        atomically after every delivery, under a lock file next to it.
    dry_run
        Return what would be sent (in ``report.dry_run``) without sending or
        recording anything.
    retries
        Further attempts after a failed one, waiting ``backoff_seconds`` times
        1, 2, 4 ... seconds between them.
    backoff_seconds
        The first wait between attempts, in seconds.

    Returns
    -------
    NotifyReport
        A message whose facts a URL already received is skipped for that URL;
        one partly received is re-rendered with only the new facts. A channel
        that still fails after the retries is reported in ``failed`` and
        logged at WARNING; nothing is raised for it.
    """
    report = NotifyReport()
    state_path = Path(state_path)
    started = time.monotonic()

    if dry_run:
        sent_before = _read_state(state_path, repair=False)
        for message in messages:
            for url in message.urls or [""]:
                uid = _url_id(url)
                keys = [k for k in message.keys if uid not in sent_before.get(k, {})]
                if not keys:
                    continue
                title, body = _content(message, keys)
                log.info(
                    "Would notify %s via %s: %s",
                    message.owner,
                    redact_url(url) if url else "no URL configured",
                    title,
                )
                report.dry_run.append(
                    _entry(
                        message,
                        keys,
                        url=redact_url(url) if url else None,
                        title=title,
                        body=body,
                    )
                )
        log.info("Not sent: %d notification(s) would be sent", len(report.dry_run))
        return report

    state_path.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(state_path.with_name(state_path.name + ".riskanalytics.lock")))
    with lock:
        sent = _read_state(state_path)
        for message in messages:
            if not message.urls:
                log.warning(
                    "No notification URL configured for %s (notifications.owners "
                    "or notifications.default); %d fact(s) not sent",
                    message.owner,
                    len(message.keys),
                )
                report.failed.append(
                    _entry(
                        message,
                        message.keys,
                        url=None,
                        attempts=0,
                        error="no notification URL configured",
                    )
                )
                continue
            for url in message.urls:
                _send_one(
                    message, url, sent, state_path, report, retries, backoff_seconds
                )

    log.info(
        "Notifications: %d sent, %d already sent, %d failed in %.1f s",
        len(report.sent),
        len(report.skipped_already_sent),
        len(report.failed),
        time.monotonic() - started,
    )
    return report


def _send_one(
    message: Message,
    url: str,
    sent: dict[str, dict[str, str]],
    state_path: Path,
    report: NotifyReport,
    retries: int,
    backoff_seconds: float,
) -> None:
    uid = _url_id(url)
    shown = redact_url(url)
    done = [k for k in message.keys if uid in sent.get(k, {})]
    keys = [k for k in message.keys if k not in set(done)]
    if done:
        report.skipped_already_sent.append(_entry(message, done, url=shown))
    if not keys:
        log.debug("Already sent to %s via %s: %s", message.owner, shown, done)
        return

    title, body = _content(message, keys)
    error = None
    attempts = 0
    for attempt in range(retries + 1):
        attempts = attempt + 1
        error = _deliver(url, title, body)
        if error is None or error.startswith("environment variable"):
            break
        if attempt < retries:
            wait = backoff_seconds * 2**attempt
            log.info(
                "Notification to %s via %s failed (%s); retry %d of %d in %.2f s",
                message.owner,
                shown,
                error,
                attempt + 1,
                retries,
                wait,
            )
            time.sleep(wait)

    if error is not None:
        log.warning(
            "Notification to %s via %s failed after %d attempt(s): %s",
            message.owner,
            shown,
            attempts,
            error,
        )
        report.failed.append(
            _entry(message, keys, url=shown, attempts=attempts, error=error)
        )
        return

    now = datetime.now(UTC).isoformat(timespec="seconds")
    for key in keys:
        sent.setdefault(key, {})[uid] = now
    _write_state(state_path, sent)
    report.sent.append(_entry(message, keys, url=shown, title=title, attempts=attempts))
    log.info("Notified %s via %s (%d fact(s))", message.owner, shown, len(keys))
