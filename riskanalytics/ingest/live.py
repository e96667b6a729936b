"""Pull resolved incidents live from the PagerDuty and Opsgenie APIs.

PagerDuty is read through the official ``pagerduty`` client (REST API v2):
``GET /incidents`` over the time window with classic offset paging, then, per
incident, ``GET /incidents/{id}/log_entries`` for the timeline. Opsgenie is
read with ``httpx`` from the Alert API (``GET /v2/alerts``) or the Incident
API (``GET /v1/incidents``), following ``paging.next``. Records become
incidents through the same conversions as exported files
(:mod:`riskanalytics.ingest.pagerduty`, :mod:`riskanalytics.ingest.opsgenie`),
so a pulled incident and a file-read one have the same id and columns.

Credentials come only from environment variables and never appear in a log
line or an error message.

Errors
------
::

    ConfigError        the credential variable is unset or empty; the service
                       answered 401 or 403; a bad argument (window, status)
    InputFormatError   429 or 5xx still answered after the retries; another
                       4xx; a body that is not the expected JSON; no connection

Retries
-------
A 429 answer is retried up to :data:`RATE_LIMIT_RETRIES` times, waiting what
its ``Retry-After`` header says (seconds or an HTTP date) or else an
exponential backoff from :data:`BACKOFF_SECONDS`, never more than
:data:`MAX_WAIT_SECONDS`. A 5xx answer or a dropped connection is retried up to
:data:`SERVER_ERROR_RETRIES` times with the same backoff.
"""

from __future__ import annotations

import email.utils
import logging
import os
import time
import warnings
from collections.abc import Callable, Iterable
from datetime import date, datetime
from typing import Any

import httpx
import pagerduty
import pandas as pd

from riskanalytics.exceptions import ConfigError, InputFormatError
from riskanalytics.ingest._common import (
    ReadContext,
    RecordError,
    first,
    incident_frame,
    parse_time,
    text_or_none,
)
from riskanalytics.ingest.opsgenie import _from_alert
from riskanalytics.ingest.pagerduty import _from_rest

__all__ = [
    "BACKOFF_SECONDS",
    "MAX_WAIT_SECONDS",
    "PULL_SOURCES",
    "RATE_LIMIT_RETRIES",
    "SERVER_ERROR_RETRIES",
    "pull",
    "pull_opsgenie",
    "pull_pagerduty",
]

log = logging.getLogger(__name__)

#: Retries of a request answered 429 Too Many Requests.
RATE_LIMIT_RETRIES = 4
#: Retries of a request answered 5xx or cut off by the network.
SERVER_ERROR_RETRIES = 3
#: First backoff wait in seconds; doubles on each retry.
BACKOFF_SECONDS = 0.25
#: Longest wait before a retry, in seconds, whatever ``Retry-After`` says.
MAX_WAIT_SECONDS = 10.0
#: Seconds to wait for a connection or a response.
TIMEOUT_SECONDS = 30.0

#: PagerDuty's ``GET /incidents`` accepts at most six months per query; longer
#: windows are split into spans of this many days.
_PD_SPAN_DAYS = 179
_PD_STATUSES = ("triggered", "acknowledged", "resolved")
_OG_PATHS = {"alerts": "/v2/alerts", "incidents": "/v1/incidents"}
_OG_PAGE_SIZE = 100
_OG_MAX_PAGES = 10_000


# --- public API ---------------------------------------------------------------


def pull_pagerduty(
    *,
    since: datetime,
    until: datetime,
    token_env: str = "PAGERDUTY_API_TOKEN",
    base_url: str = "https://api.pagerduty.com",
    statuses: Iterable[str] = ("resolved",),
    with_log_entries: bool = True,
) -> pd.DataFrame:
    """Pull PagerDuty incidents created in ``[since, until)`` into incidents.

    Parameters
    ----------
    since, until
        The window, as datetimes (naive ones are UTC), dates or ISO-8601
        text. Windows longer than six months are queried in parts.
    token_env
        Name of the environment variable holding a REST API v2 token.
    base_url
        The REST API address: ``https://api.pagerduty.com``, or
        ``https://api.eu.pagerduty.com`` for the EU service region. The
        client accepts only ``https://`` addresses.
    statuses
        Incident statuses to ask for (``statuses[]``): any of ``triggered``,
        ``acknowledged``, ``resolved``.
    with_log_entries
        Also read each incident's log entries: the first trigger entry can
        move ``started_at`` earlier, the last resolve entry gives
        ``resolved_at`` when the incident has none, and notes (annotations,
        notes on the resolve entry) become ``recovery_actions``. One more
        request (or more, when paged) per incident.

    Returns
    -------
    pandas.DataFrame
        One row per incident with the incident columns (ids ``PD-<number>``,
        times timezone-aware UTC), sorted by ``started_at``; ``source_file`` is
        the ``/incidents`` address and ``source_record`` the PagerDuty id.

    Raises
    ------
    ConfigError
        When the token variable is unset or empty, PagerDuty answers 401 or
        403, ``base_url`` is not https, or the window or a status is invalid.
    InputFormatError
        When PagerDuty still answers 429 or 5xx after the retries, answers
        another error, sends a body that is not the expected JSON, or cannot
        be reached.
    """
    began = time.perf_counter()
    start, end = _window(since, until)
    wanted = _statuses(statuses)
    token = _secret(token_env, "a PagerDuty REST API v2 token")
    try:
        client = _PagerDutyClient(token, base_url=base_url)
    except pagerduty.UrlError:
        raise ConfigError(
            "pull_pagerduty",
            [("base_url", f"expected an https:// address, found {base_url!r}")],
        ) from None
    client.timeout = TIMEOUT_SECONDS
    client.sleep_timer = BACKOFF_SECONDS
    client.max_network_attempts = SERVER_ERROR_RETRIES
    ctx = ReadContext()
    where = f"{client.url.rstrip('/')}/incidents"

    with client:
        try:
            incidents = _pd_incidents(client, start, end, wanted)
            records = []
            for incident in incidents:
                record = _pd_record(incident, where, ctx)
                if record is None:
                    continue
                if with_log_entries:
                    entries = _pd_log_entries(client, incident["id"])
                    _apply_timeline(record, incident, entries, ctx)
                records.append(record)
        except pagerduty.Error as exc:
            raise _pd_error(exc, token_env, client.url) from None

    frame = _frame(records)
    log.info(
        "Pulled %d incident(s) from PagerDuty (%s to %s) in %d request(s), %.2f s",
        len(frame),
        start.isoformat(),
        end.isoformat(),
        client.total_call_count,
        time.perf_counter() - began,
    )
    return frame


def pull_opsgenie(
    *,
    since: datetime,
    until: datetime,
    key_env: str = "OPSGENIE_API_KEY",
    base_url: str = "https://api.opsgenie.com",
    kind: str = "alerts",
) -> pd.DataFrame:
    """Pull closed Opsgenie alerts (or resolved incidents) into incidents.

    Parameters
    ----------
    since, until
        The creation-time window ``[since, until)``, as datetimes (naive ones
        are UTC), dates or ISO-8601 text; sent as epoch milliseconds in the
        search query (``createdAt>=... AND createdAt<...``).
    key_env
        Name of the environment variable holding an Opsgenie API key, sent as
        ``Authorization: GenieKey <key>``.
    base_url
        ``https://api.opsgenie.com``, or ``https://api.eu.opsgenie.com`` for
        the EU instance. Every page is fetched from this address, including
        the ``paging.next`` links, so the key goes nowhere else.
    kind
        ``alerts``: the Alert API, closed alerts only (``status: closed`` in
        the query); an alert is resolved at ``createdAt + report.closeTime``
        or else its ``updatedAt``. ``incidents``: the Incident API; resolved
        and closed incidents, resolved at their ``updatedAt``.

    Returns
    -------
    pandas.DataFrame
        One row per alert or incident, ids ``OG-<id>``, sorted by
        ``started_at``; ``source_file`` is the list address.

    Raises
    ------
    ConfigError
        When the key variable is unset or empty, Opsgenie answers 401 or 403,
        or ``kind`` or the window is invalid.
    InputFormatError
        When Opsgenie still answers 429 or 5xx after the retries, answers
        another error, sends a body that is not the expected JSON, or cannot
        be reached.
    """
    began = time.perf_counter()
    if kind not in _OG_PATHS:
        raise ConfigError(
            "pull_opsgenie",
            [("kind", f"expected one of {', '.join(_OG_PATHS)}, found {kind!r}")],
        )
    start, end = _window(since, until)
    key = _secret(key_env, "an Opsgenie API key")
    path = _OG_PATHS[kind]
    query = f"createdAt>={_epoch_ms(start)} AND createdAt<{_epoch_ms(end)}"
    if kind == "alerts":
        query += " AND status:closed"
    params: dict[str, Any] | None = {
        "query": query,
        "offset": 0,
        "limit": _OG_PAGE_SIZE,
        "sort": "createdAt",
        "order": "asc",
    }
    ctx = ReadContext()
    where = f"{base_url.rstrip('/')}{path}"

    records: list[dict[str, Any]] = []
    dropped = requests = 0
    with httpx.Client(
        base_url=base_url,
        headers={"Authorization": f"GenieKey {key}", "Accept": "application/json"},
        timeout=TIMEOUT_SECONDS,
        follow_redirects=False,
    ) as client:
        url = path
        seen: set[str] = set()
        for _ in range(_OG_MAX_PAGES):
            response = _with_retries(
                "Opsgenie", lambda u=url, p=params: _og_get(client, u, p)
            )
            requests += 1
            body = _og_body(response, key_env)
            page = body["data"]
            for index, item in enumerate(page):
                record = _og_record(item, kind, where, index, ctx)
                if record is None:
                    dropped += 1
                else:
                    records.append(record)
            url = _og_next(body, base_url)
            params = None
            if not page or url is None or url in seen:
                break
            seen.add(url)
        else:
            log.warning(
                "Opsgenie %s: stopped after %d pages; the result may be incomplete",
                path,
                _OG_MAX_PAGES,
            )

    frame = _frame(records)
    log.info(
        "Pulled %d incident(s) from Opsgenie %s (%s to %s; %d not closed, left "
        "out) in %d request(s), %.2f s",
        len(frame),
        kind,
        start.isoformat(),
        end.isoformat(),
        dropped,
        requests,
        time.perf_counter() - began,
    )
    return frame


#: Source name -> pull function, for :func:`pull`.
PULL_SOURCES: dict[str, Callable[..., pd.DataFrame]] = {
    "opsgenie": pull_opsgenie,
    "pagerduty": pull_pagerduty,
}


def pull(source: str, **kwargs: Any) -> pd.DataFrame:
    """Pull incidents from ``source`` (a key of :data:`PULL_SOURCES`).

    Parameters
    ----------
    source
        ``pagerduty`` or ``opsgenie``.
    **kwargs
        Keyword arguments of :func:`pull_pagerduty` or :func:`pull_opsgenie`;
        ``since`` and ``until`` are required.

    Returns
    -------
    pandas.DataFrame
        The incidents, as the chosen function returns them.

    Raises
    ------
    ConfigError
        When ``source`` is unknown, and as the chosen function raises.
    InputFormatError
        As the chosen function raises.
    """
    try:
        function = PULL_SOURCES[source]
    except KeyError:
        raise ConfigError(
            "pull",
            [
                (
                    "source",
                    f"expected one of {', '.join(sorted(PULL_SOURCES))}, "
                    f"found {source!r}",
                )
            ],
        ) from None
    return function(**kwargs)


# --- arguments and credentials ------------------------------------------------


def _window(since: Any, until: Any) -> tuple[pd.Timestamp, pd.Timestamp]:
    """Both ends as UTC Timestamps; ConfigError when missing or backwards."""
    ends = []
    for name, value in (("since", since), ("until", until)):
        if isinstance(value, date) and not isinstance(value, datetime):
            value = datetime(value.year, value.month, value.day)
        try:
            stamp = parse_time(value)
        except ValueError as exc:
            raise ConfigError("pull", [(name, str(exc))]) from None
        if stamp is None:
            raise ConfigError("pull", [(name, f"expected a time, found {value!r}")])
        ends.append(stamp)
    if ends[0] >= ends[1]:
        raise ConfigError(
            "pull",
            [
                (
                    "until",
                    f"expected a time after since={ends[0].isoformat()}, "
                    f"found {ends[1].isoformat()}",
                )
            ],
        )
    return ends[0], ends[1]


def _statuses(statuses: Iterable[str]) -> list[str]:
    if isinstance(statuses, str):
        statuses = [statuses]
    wanted = list(dict.fromkeys(statuses))
    bad = [s for s in wanted if s not in _PD_STATUSES]
    if bad or not wanted:
        raise ConfigError(
            "pull_pagerduty",
            [
                (
                    "statuses",
                    f"expected some of {', '.join(_PD_STATUSES)}, found {wanted!r}",
                )
            ],
        )
    return wanted


def _secret(variable: str, what: str) -> str:
    """The value of an environment variable holding a credential."""
    value = os.environ.get(variable, "").strip()
    if not value:
        raise ConfigError(
            "environment",
            [(variable, f"expected {what}, found the variable unset or empty")],
        )
    return value


def _epoch_ms(stamp: pd.Timestamp) -> int:
    return int(stamp.value // 1_000_000)


def _iso(stamp: pd.Timestamp) -> str:
    return stamp.strftime("%Y-%m-%dT%H:%M:%SZ")


# --- retries ------------------------------------------------------------------


class _RetryableStatus(Exception):
    """A 429 or 5xx answer, taken out of the client's own retry loop."""

    def __init__(self, response: Any):
        super().__init__(response.status_code)
        self.response = response


def _retryable(status: int) -> bool:
    return status == 429 or 500 <= status <= 599


def _with_retries(service: str, send: Callable[[], Any]) -> Any:
    """Send, retrying 429 and 5xx answers and dropped connections; the answer.

    ``send`` returns a response (httpx or httpx2) or raises a transport error
    (``httpx.TransportError``). The last answer is returned when it is not
    retryable; an InputFormatError is raised when the retries run out.
    """
    attempts = {"rate": 0, "server": 0}
    while True:
        try:
            response = send()
        except httpx.TransportError as exc:
            if attempts["server"] >= SERVER_ERROR_RETRIES:
                url = exc.request.url if _has_request(exc) else "?"
                raise InputFormatError(
                    f"{service} GET {url}: expected an answer, found no connection "
                    f"after {attempts['server'] + 1} attempts ({type(exc).__name__})"
                ) from None
            attempts["server"] += 1
            delay = _backoff(attempts["server"])
            log.warning(
                "%s: %s; retry %d of %d in %.2f s",
                service,
                type(exc).__name__,
                attempts["server"],
                SERVER_ERROR_RETRIES,
                delay,
            )
            time.sleep(delay)
            continue

        status = response.status_code
        if not _retryable(status):
            return response
        kind, limit = (
            ("rate", RATE_LIMIT_RETRIES)
            if status == 429
            else ("server", SERVER_ERROR_RETRIES)
        )
        request = response.request
        if attempts[kind] >= limit:
            raise InputFormatError(
                f"{service} {request.method} {request.url.path}: expected a "
                f"successful answer, found HTTP {status} after {limit} retries"
            )
        attempts[kind] += 1
        delay = _retry_after(response)
        if delay is None:
            delay = _backoff(attempts[kind])
        log.warning(
            "%s %s %s answered HTTP %d; retry %d of %d in %.2f s",
            service,
            request.method,
            request.url.path,
            status,
            attempts[kind],
            limit,
            delay,
        )
        time.sleep(delay)


def _has_request(exc: httpx.TransportError) -> bool:
    try:
        exc.request  # noqa: B018 - raises RuntimeError when unset
    except RuntimeError:
        return False
    return True


def _backoff(attempt: int) -> float:
    return min(BACKOFF_SECONDS * 2 ** (attempt - 1), MAX_WAIT_SECONDS)


def _retry_after(response: Any) -> float | None:
    """Seconds the ``Retry-After`` header asks for, capped; None when absent."""
    value = (response.headers.get("retry-after") or "").strip()
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            log.debug("Ignored a Retry-After header that is no time: %r", value)
            return None
        seconds = when.timestamp() - time.time()
    if seconds != seconds:
        return None
    return min(max(seconds, 0.0), MAX_WAIT_SECONDS)


# --- PagerDuty ----------------------------------------------------------------


class _PagerDutyClient(pagerduty.RestApiV2Client):
    """The REST API v2 client with this module's retry policy.

    The library retries 429 answers without limit and without reading
    ``Retry-After``; here every 429 and 5xx answer leaves its loop through
    :meth:`postprocess` and is retried by :func:`_with_retries` instead.
    """

    def postprocess(self, response, suffix=None):
        super().postprocess(response, suffix)
        if _retryable(response.status_code):
            raise _RetryableStatus(response)

    def request(self, method, url, **kwargs):
        return _with_retries("PagerDuty", lambda: self._attempt(method, url, kwargs))

    def _attempt(self, method, url, kwargs):
        try:
            return super().request(method, url, **kwargs)
        except _RetryableStatus as exc:
            return exc.response


def _pd_incidents(
    client: _PagerDutyClient,
    start: pd.Timestamp,
    end: pd.Timestamp,
    statuses: list[str],
) -> list[dict[str, Any]]:
    """Incident objects over the window, in spans PagerDuty accepts, de-duplicated."""
    found: dict[str, dict[str, Any]] = {}
    span = pd.Timedelta(days=_PD_SPAN_DAYS)
    left = start
    while left < end:
        right = min(left + span, end)
        params = {
            "since": _iso(left),
            "until": _iso(right),
            "statuses[]": statuses,
            "time_zone": "UTC",
            "sort_by": "created_at:asc",
        }
        for incident in _pd_list(client, "incidents", params):
            if isinstance(incident, dict) and incident.get("id"):
                found[str(incident["id"])] = incident
            else:
                log.warning("PagerDuty /incidents: skipped an item without an id")
        left = right
    return list(found.values())


def _pd_list(client: _PagerDutyClient, path: str, params: dict) -> list[dict]:
    """Every item of a paged PagerDuty list; the client's warnings are logged."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.filterwarnings("always", category=UserWarning, module=r"pagerduty")
        items = list(client.iter_all(path, params=params))
    for warning in caught:
        log.warning("PagerDuty /%s: %s", path, warning.message)
    log.debug("PagerDuty /%s: %d item(s)", path, len(items))
    return items


def _pd_log_entries(client: _PagerDutyClient, pd_id: str) -> list[dict]:
    """An incident's log entries; none, with a warning, when it is gone (404)."""
    path = f"incidents/{pd_id}/log_entries"
    try:
        return _pd_list(client, path, {})
    except pagerduty.HttpError as exc:
        if exc.response.status_code != 404:
            raise
        log.warning("PagerDuty /%s answered HTTP 404; timeline left out", path)
        return []


def _pd_record(
    incident: dict[str, Any], where: str, ctx: ReadContext
) -> dict[str, Any] | None:
    try:
        record = _from_rest(incident, ctx)
    except (RecordError, KeyError, TypeError, ValueError, AttributeError) as exc:
        ctx.skip(where, f"id {incident.get('id')}", f"not a PagerDuty incident: {exc}")
        return None
    record["source_file"] = where
    record["source_record"] = f"id {incident['id']}"
    return record


def _apply_timeline(
    record: dict[str, Any],
    incident: dict[str, Any],
    entries: list[dict[str, Any]],
    ctx: ReadContext,
) -> None:
    """Fill start, resolution and recovery notes from an incident's log entries."""
    timeline = []
    for entry in entries:
        if not isinstance(entry, dict):
            continue
        try:
            when = parse_time(entry.get("created_at"))
        except ValueError as exc:
            ctx.skip(record["source_file"], f"log entry {entry.get('id')}", exc)
            continue
        if when is not None:
            timeline.append((when, str(entry.get("type", "")), entry))
    timeline.sort(key=lambda item: item[0])

    triggers = [when for when, kind, _ in timeline if kind == "trigger_log_entry"]
    if triggers and (
        record["started_at"] is None or triggers[0] < record["started_at"]
    ):
        record["started_at"] = triggers[0]

    resolves = [when for when, kind, _ in timeline if kind == "resolve_log_entry"]
    explicit = parse_time(incident.get("resolved_at"))
    if resolves and explicit is None:
        record["resolved_at"] = resolves[-1]
        record["trigger"] = "resolved"

    notes = []
    for _, kind, entry in timeline:
        channel = entry.get("channel") if isinstance(entry.get("channel"), dict) else {}
        if kind == "annotate_log_entry":
            note = text_or_none(first(entry.get("note"), channel.get("summary")))
        elif kind == "resolve_log_entry":
            note = text_or_none(entry.get("note"))
        else:
            note = None
        if note and note not in notes:
            notes.append(note)
    if notes:
        record["recovery_actions"] = "; ".join(notes)
    log.debug(
        "PagerDuty %s: %d log entries, %d note(s)",
        record["incident_id"],
        len(timeline),
        len(notes),
    )


def _refused(
    response: httpx.Response, service: str, credential: str, env: str
) -> ConfigError:
    """The error for a service that refused the credential read from ``env``."""
    request = response.request
    return ConfigError(
        env,
        [
            (
                service,
                f"{request.method} {request.url.path} answered HTTP "
                f"{response.status_code} ({response.reason_phrase}); expected "
                f"{credential} to be accepted",
            )
        ],
    )


def _pd_error(exc: pagerduty.Error, token_env: str, base_url: str) -> Exception:
    """The riskanalytics error for a failed PagerDuty call; never the token."""
    response = exc.response
    if response is None:
        cause = exc.__cause__
        return InputFormatError(
            f"PagerDuty {base_url}: expected an answer, found no connection "
            f"({type(cause).__name__ if cause else 'network error'})"
        )
    request = response.request
    status = response.status_code
    if status in (401, 403):
        return _refused(response, "PagerDuty", f"the token in {token_env}", token_env)
    if response.is_success:
        return InputFormatError(
            f"PagerDuty {request.method} {request.url}: expected a JSON body with "
            f"the listed objects, found {_snippet(response.text)}"
        )
    return InputFormatError(
        f"PagerDuty {request.method} {request.url.path}: expected a successful "
        f"answer, found HTTP {status} {_snippet(response.text)}"
    )


# --- Opsgenie -----------------------------------------------------------------


def _og_get(client: httpx.Client, url: str, params: dict | None) -> httpx.Response:
    return client.get(url, params=params)


def _og_body(response: httpx.Response, key_env: str) -> dict[str, Any]:
    """The decoded page, or the error its status or body calls for."""
    request = response.request
    status = response.status_code
    if status in (401, 403):
        raise _refused(response, "Opsgenie", f"the key in {key_env}", key_env)
    if not response.is_success:
        raise InputFormatError(
            f"Opsgenie {request.method} {request.url.path}: expected a successful "
            f"answer, found HTTP {status} {_snippet(response.text)}"
        )
    try:
        body = response.json()
    except ValueError:
        raise InputFormatError(
            f"Opsgenie {request.method} {request.url}: expected a JSON body, "
            f"found {_snippet(response.text)}"
        ) from None
    if not isinstance(body, dict) or not isinstance(body.get("data"), list):
        raise InputFormatError(
            f"Opsgenie {request.method} {request.url}: expected an object with a "
            f"'data' list, found {_snippet(response.text)}"
        )
    return body


def _og_next(body: dict[str, Any], base_url: str) -> str | None:
    """The next page as a path and query on ``base_url``; None on the last page."""
    paging = body.get("paging") if isinstance(body.get("paging"), dict) else {}
    link = text_or_none(paging.get("next"))
    if link is None:
        return None
    target = httpx.URL(link)
    if target.host and target.host != httpx.URL(base_url).host:
        log.debug("Opsgenie paging.next on %s fetched from %s", target.host, base_url)
    return target.raw_path.decode("ascii")


def _og_record(
    item: Any, kind: str, where: str, index: int, ctx: ReadContext
) -> dict[str, Any] | None:
    """One incident from an alert or incident object; None when not closed."""
    label = f"data[{index}]"
    try:
        record = _from_alert(item, None, ctx)
        if kind == "incidents":
            status = str(item.get("status", "")).lower()
            if status in ("resolved", "closed") and record["resolved_at"] is None:
                record["resolved_at"] = parse_time(item.get("updatedAt"))
                record["trigger"] = "resolved"
    except (RecordError, KeyError, TypeError, ValueError, AttributeError) as exc:
        ctx.skip(where, label, f"not an Opsgenie {kind[:-1]}: {exc}")
        return None
    if record["resolved_at"] is None:
        log.debug("Opsgenie %s %s is not closed; left out", kind[:-1], item.get("id"))
        return None
    record["source_file"] = where
    record["source_record"] = f"id {item.get('id')}"
    return record


# --- shared -------------------------------------------------------------------


def _frame(records: list[dict[str, Any]]) -> pd.DataFrame:
    frame = incident_frame(records)
    frame = frame.drop_duplicates(["source", "incident_id"], keep="last")
    frame = frame.sort_values(
        ["started_at", "incident_id"], na_position="last", kind="stable"
    )
    return frame.reset_index(drop=True)


def _snippet(text: str, size: int = 80) -> str:
    text = " ".join(text.split())
    return repr(text[:size] + ("..." if len(text) > size else ""))
