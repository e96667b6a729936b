"""Live pulls from PagerDuty and Opsgenie against a local HTTPS server.

The server answers on a free loopback port with the documented example
payloads in tests/fixtures/live/ (see SOURCES.md there), paged by the
``offset`` the client asks for, checks the Authorization header, records every
request, and can be told to answer a list of faults first.
"""

from __future__ import annotations

import json
import logging
import re
import socket
import ssl
import threading
import time
from collections import deque
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pandas as pd
import pytest

from riskanalytics.exceptions import ConfigError, InputFormatError
from riskanalytics.ingest import live
from riskanalytics.ingest.live import pull, pull_opsgenie, pull_pagerduty
from riskanalytics.schema import INCIDENT_COLUMNS

FIXTURES = Path(__file__).parent / "fixtures" / "live"
PD_TOKEN = "pd-test-token-u+1"
OG_KEY = "og-test-key-3f1c9a7e"
SINCE = datetime(2015, 10, 1, tzinfo=UTC)
UNTIL = datetime(2015, 11, 1, tzinfo=UTC)
OG_SINCE = datetime(2026, 11, 1, tzinfo=UTC)
OG_UNTIL = datetime(2026, 12, 1, tzinfo=UTC)


def _pages(pattern: str) -> dict[tuple[str, int], dict]:
    """Fixture bodies keyed by (resource id or "", offset)."""
    pages = {}
    for path in sorted(FIXTURES.glob("*.json")):
        match = re.fullmatch(pattern, path.name)
        if match:
            key = match.group("id") if "id" in match.groupdict() else ""
            offset = int(match.group("offset") or 0)
            pages[(key, offset)] = json.loads(path.read_text(encoding="utf-8"))
    return pages


PD_INCIDENTS = _pages(r"pagerduty_incidents_offset(?P<offset>\d+)(_documented)?\.json")
PD_LOG_ENTRIES = _pages(
    r"pagerduty_log_entries_(?P<id>[A-Z0-9]+)_(?:offset(?P<offset>\d+)|documented)"
    r"\.json"
)
OG_ALERTS = _pages(r"opsgenie_alerts_offset(?P<offset>\d+)\.json")
OG_INCIDENTS = _pages(r"opsgenie_incidents_offset(?P<offset>\d+)\.json")


class FakeApi:
    """What the server serves, what it was asked, and the faults to answer first."""

    def __init__(self) -> None:
        self.requests: list[dict] = []
        self.faults: deque[dict] = deque()
        self.lock = threading.Lock()

    def fail(self, path: str, status: int, body: bytes = b"", **headers: str) -> None:
        """Answer the next request under ``path`` with this status instead."""
        self.faults.append(
            {"path": path, "status": status, "body": body, "headers": headers}
        )

    def seen(self, path: str) -> list[dict]:
        """The recorded requests for exactly this path, in order."""
        return [r for r in self.requests if r["path"] == path]


class Handler(BaseHTTPRequestHandler):
    server_version = "FakeApi/1.0"

    def log_message(self, format, *args):  # noqa: A002 - the base class's name
        pass

    def do_GET(self):  # noqa: N802 - http.server's name
        api: FakeApi = self.server.api
        parts = urlsplit(self.path)
        query = parse_qs(parts.query, keep_blank_values=True)
        with api.lock:
            api.requests.append(
                {
                    "path": parts.path,
                    "query": query,
                    "authorization": self.headers.get("Authorization"),
                    "at": time.monotonic(),
                }
            )
            fault = None
            if api.faults and parts.path.startswith(api.faults[0]["path"]):
                fault = api.faults.popleft()
        if fault is not None:
            self._send(fault["status"], fault["body"], fault["headers"])
            return
        offset = int(query.get("offset", ["0"])[0])
        if parts.path.startswith("/incidents"):
            self._pagerduty(parts.path, offset)
        elif parts.path in ("/v2/alerts", "/v1/incidents"):
            self._opsgenie(parts.path, offset)
        else:
            self._json(404, {"error": {"message": "Not Found", "code": 2100}})

    def _pagerduty(self, path: str, offset: int) -> None:
        if self.headers.get("Authorization") != f"Token token={PD_TOKEN}":
            self._json(401, {"error": {"message": "Unauthenticated", "code": 2006}})
            return
        if path == "/incidents":
            page = PD_INCIDENTS.get(("", offset))
        else:
            incident = path.split("/")[2]
            pages = {k: v for k, v in PD_LOG_ENTRIES.items() if k[0] == incident}
            if not pages and offset == 0:
                page = {"log_entries": [], "limit": 100, "offset": 0, "more": False}
            else:
                page = pages.get((incident, offset))
        if page is None:
            self._json(400, {"error": {"message": f"no page at offset {offset}"}})
        else:
            self._json(200, page)

    def _opsgenie(self, path: str, offset: int) -> None:
        if self.headers.get("Authorization") != f"GenieKey {OG_KEY}":
            self._json(401, {"message": "Could not authenticate", "took": 0.001})
            return
        pages = OG_ALERTS if path == "/v2/alerts" else OG_INCIDENTS
        page = pages.get(("", offset))
        if page is None:
            self._json(422, {"message": f"no page at offset {offset}", "took": 0.0})
        else:
            self._json(200, page)

    def _json(self, status: int, body: object) -> None:
        self._send(status, json.dumps(body).encode(), {})

    def _send(self, status: int, body: bytes, headers: dict[str, str]) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers.items():
            self.send_header(name.replace("_", "-"), value)
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def api(monkeypatch):
    """A running HTTPS FakeApi; ``api.url`` is its base address."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(
        FIXTURES / "tls" / "server.pem", FIXTURES / "tls" / "server-key.pem"
    )
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    server.daemon_threads = True
    server.api = FakeApi()
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()

    monkeypatch.setenv("SSL_CERT_FILE", str(FIXTURES / "tls" / "ca.pem"))
    for name in (
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "ALL_PROXY",
        "http_proxy",
        "https_proxy",
        "all_proxy",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PAGERDUTY_API_TOKEN", PD_TOKEN)
    monkeypatch.setenv("OPSGENIE_API_KEY", OG_KEY)

    server.api.url = f"https://127.0.0.1:{server.server_address[1]}"
    yield server.api
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


def _pd(api, **kwargs):
    return pull_pagerduty(since=SINCE, until=UNTIL, base_url=api.url, **kwargs)


def _og(api, **kwargs):
    return pull_opsgenie(since=OG_SINCE, until=OG_UNTIL, base_url=api.url, **kwargs)


def _utc(text: str) -> pd.Timestamp:
    return pd.Timestamp(text).tz_convert("UTC")


# --- PagerDuty ----------------------------------------------------------------


def test_pagerduty_reads_every_page_and_each_timeline(api, caplog):
    caplog.set_level(logging.DEBUG)

    frame = _pd(api)

    assert list(frame.columns[: len(INCIDENT_COLUMNS)]) == INCIDENT_COLUMNS
    assert frame["incident_id"].tolist() == ["PD-1234", "PD-1235", "PD-1236", "PD-1240"]
    assert set(frame["source"]) == {"pagerduty"}
    assert set(frame["trigger"]) == {"resolved"}
    first = frame.iloc[0]
    assert first["title"] == "The server is on fire."
    assert first["service"] == "My Mail Service"
    assert first["severity"] == "P2"
    assert first["started_at"] == _utc("2015-10-06T21:30:42Z")
    assert first["resolved_at"] == _utc("2015-10-06T21:38:23Z")
    assert first["source_file"] == f"{api.url}/incidents"
    assert first["source_record"] == "id PT4KHLK"

    # resolved_at is null in the list: the resolve log entry gives it; the
    # trigger entry is 12 s before created_at; notes become recovery actions.
    checkout = frame.set_index("incident_id").loc["PD-1235"]
    assert checkout["started_at"] == _utc("2015-10-12T08:01:58Z")
    assert checkout["resolved_at"] == _utc("2015-10-12T09:14:55Z")
    assert checkout["recovery_actions"] == (
        "Rolled back checkout-api to release 2015.10.11-3; "
        "Error rate back under 0.1% after the rollback"
    )
    # No priority: the urgency stands in.
    assert frame.set_index("incident_id").loc["PD-1236", "severity"] == "high"

    listed = api.seen("/incidents")
    assert [r["query"]["offset"] for r in listed] == [["0"], ["1"], ["3"]]
    for request in listed:
        assert request["query"]["since"] == ["2015-10-01T00:00:00Z"]
        assert request["query"]["until"] == ["2015-11-01T00:00:00Z"]
        assert request["query"]["statuses[]"] == ["resolved"]
        assert request["query"]["time_zone"] == ["UTC"]
    log_paths = [r["path"] for r in api.requests if r["path"].endswith("log_entries")]
    assert sorted(set(log_paths)) == [
        f"/incidents/{i}/log_entries"
        for i in ("PK9DL2E", "PQ7RMSD", "PT4KHLK", "PW1ZX8C")
    ]
    paged = api.seen("/incidents/PQ7RMSD/log_entries")
    assert [r["query"]["offset"] for r in paged] == [["0"], ["2"]]
    assert {r["authorization"] for r in api.requests} == {f"Token token={PD_TOKEN}"}

    # The documented log entries example has no "more": logged, not raised.
    warned = [
        r.getMessage()
        for r in caplog.records
        if r.name == "riskanalytics.ingest.live" and r.levelno == logging.WARNING
    ]
    assert len(warned) == 1
    assert warned[0].startswith("PagerDuty /incidents/PT4KHLK/log_entries:")
    assert '"more"' in warned[0]
    assert PD_TOKEN not in caplog.text


def test_pagerduty_without_log_entries_makes_no_timeline_requests(api):
    frame = _pd(api, with_log_entries=False)

    assert len(frame) == 4
    assert [r["path"] for r in api.requests] == ["/incidents"] * 3
    checkout = frame.set_index("incident_id").loc["PD-1235"]
    assert checkout["started_at"] == _utc("2015-10-12T08:02:10Z")
    assert checkout["resolved_at"] == _utc("2015-10-12T09:14:55Z")
    assert pd.isna(checkout["recovery_actions"])


def test_pagerduty_asks_for_statuses_and_splits_windows_over_six_months(api):
    frame = pull_pagerduty(
        since="2015-01-01",
        until="2015-07-20",
        base_url=api.url,
        statuses=("resolved", "acknowledged"),
        with_log_entries=False,
    )

    firsts = [
        r["query"] for r in api.seen("/incidents") if r["query"]["offset"] == ["0"]
    ]
    assert [(q["since"], q["until"]) for q in firsts] == [
        (["2015-01-01T00:00:00Z"], ["2015-06-29T00:00:00Z"]),
        (["2015-06-29T00:00:00Z"], ["2015-07-20T00:00:00Z"]),
    ]
    assert all(q["statuses[]"] == ["resolved", "acknowledged"] for q in firsts)
    # Both spans list the same four incidents: each is kept once.
    assert len(api.seen("/incidents")) == 6
    assert frame["incident_id"].tolist() == ["PD-1234", "PD-1235", "PD-1236", "PD-1240"]


def test_pagerduty_missing_token_variable_names_it(api, monkeypatch):
    monkeypatch.delenv("PAGERDUTY_API_TOKEN")

    with pytest.raises(ConfigError, match="PAGERDUTY_API_TOKEN"):
        _pd(api)
    assert api.requests == []


def test_pagerduty_refused_token_is_a_config_error_without_the_token(api, monkeypatch):
    monkeypatch.setenv("PD_OTHER", "wrong-token-7731")

    with pytest.raises(ConfigError) as caught:
        _pd(api, token_env="PD_OTHER")

    message = str(caught.value)
    assert "PagerDuty" in message and "/incidents" in message and "401" in message
    assert "PD_OTHER" in message
    assert "wrong-token" not in message and "7731" not in message
    assert len(api.requests) == 1


def test_pagerduty_forbidden_is_a_config_error(api):
    api.fail("/incidents", 403, b'{"error": {"message": "Forbidden", "code": 2010}}')

    with pytest.raises(ConfigError, match=r"GET /incidents answered HTTP 403"):
        _pd(api)


def test_pagerduty_429_waits_for_retry_after_then_succeeds(api):
    api.fail("/incidents", 429, b'{"error": {"code": 2020}}', Retry_After="1")

    frame = _pd(api, with_log_entries=False)

    assert len(frame) == 4
    listed = api.seen("/incidents")
    assert [r["query"]["offset"] for r in listed] == [["0"], ["0"], ["1"], ["3"]]
    assert listed[1]["at"] - listed[0]["at"] >= 0.95


def test_pagerduty_429_without_end_gives_up_with_an_error(api):
    for _ in range(live.RATE_LIMIT_RETRIES + 1):
        api.fail("/incidents", 429, b"{}", Retry_After="0")

    with pytest.raises(InputFormatError, match=r"PagerDuty GET /incidents.*HTTP 429"):
        _pd(api)
    assert len(api.requests) == live.RATE_LIMIT_RETRIES + 1


def test_pagerduty_500_then_200_is_retried(api):
    api.fail("/incidents", 500, b'{"error": {"message": "oops"}}')
    api.fail("/incidents", 502, b"<html>bad gateway</html>")

    frame = _pd(api, with_log_entries=False)

    assert frame["incident_id"].tolist() == ["PD-1234", "PD-1235", "PD-1236", "PD-1240"]
    assert len(api.seen("/incidents")) == 5


def test_pagerduty_lasting_5xx_gives_up_with_an_error(api):
    for _ in range(live.SERVER_ERROR_RETRIES + 1):
        api.fail("/incidents", 503, b"unavailable")

    with pytest.raises(InputFormatError, match=r"HTTP 503 after 3 retries"):
        _pd(api)
    assert len(api.requests) == live.SERVER_ERROR_RETRIES + 1


def test_pagerduty_malformed_json_names_the_url(api):
    api.fail("/incidents", 200, b'{"incidents": [{"id": "PT4KHLK",')

    with pytest.raises(InputFormatError) as caught:
        _pd(api)
    assert f"{api.url}/incidents?" in str(caught.value)
    assert "expected a JSON body" in str(caught.value)


def test_pagerduty_missing_log_entries_leave_that_timeline_out(api, caplog):
    api.fail(
        "/incidents/PQ7RMSD/log_entries", 404, b'{"error": {"message": "Not Found"}}'
    )

    frame = _pd(api)

    checkout = frame.set_index("incident_id").loc["PD-1235"]
    assert checkout["started_at"] == _utc("2015-10-12T08:02:10Z")
    assert pd.isna(checkout["recovery_actions"])
    assert len(frame) == 4
    assert "/incidents/PQ7RMSD/log_entries answered HTTP 404" in caplog.text


def test_pagerduty_unreachable_service_is_an_input_error(monkeypatch):
    monkeypatch.setenv("PAGERDUTY_API_TOKEN", PD_TOKEN)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]

    with pytest.raises(InputFormatError, match="no connection") as caught:
        pull_pagerduty(since=SINCE, until=UNTIL, base_url=f"https://127.0.0.1:{port}")
    assert PD_TOKEN not in str(caught.value)


def test_pagerduty_plain_http_base_url_is_refused(api):
    with pytest.raises(ConfigError, match="base_url"):
        pull_pagerduty(since=SINCE, until=UNTIL, base_url="http://127.0.0.1:9")


def test_pagerduty_unknown_status_and_backwards_window_are_refused(api):
    with pytest.raises(ConfigError, match="statuses"):
        _pd(api, statuses=("closed",))
    with pytest.raises(ConfigError, match="until"):
        pull_pagerduty(since=UNTIL, until=SINCE, base_url=api.url)
    assert api.requests == []


# --- Opsgenie -----------------------------------------------------------------


def test_opsgenie_follows_paging_next_and_keeps_closed_alerts(api):
    frame = _og(api)

    assert frame["incident_id"].tolist() == [
        "OG-70413a06-38d6-4c85-92b8-5ebc900d42e2",
        "OG-c9cec2cb-e782-4ebb-bc1d-1b2fa703cf03",
        "OG-b3f0a7e0-5c1e-4a55-9d2e-6f2a8c1e9a10",
    ]
    rows = frame.set_index("incident_id")
    payments = rows.loc["OG-70413a06-38d6-4c85-92b8-5ebc900d42e2"]
    assert payments["title"] == "Payments queue backlog above 10k"
    assert payments["severity"] == "P2"
    assert payments["service"] == "payments"
    assert payments["started_at"] == _utc("2026-11-03T10:15:02.12Z")
    # createdAt + report.closeTime (2,700,000 ms)
    assert payments["resolved_at"] == _utc("2026-11-03T11:00:02.12Z")
    # no report: updatedAt
    search = rows.loc["OG-c9cec2cb-e782-4ebb-bc1d-1b2fa703cf03"]
    assert search["resolved_at"] == _utc("2026-11-18T22:31:09Z")
    assert set(frame["trigger"]) == {"resolved"}

    listed = api.seen("/v2/alerts")
    assert len(listed) == 2
    expected_query = (
        "createdAt>=1793491200000 AND createdAt<1796083200000 AND status:closed"
    )
    assert listed[0]["query"]["query"] == [expected_query]
    assert listed[0]["query"]["offset"] == ["0"]
    assert listed[0]["query"]["limit"] == ["100"]
    # paging.next names api.opsgenie.com; it is fetched from the base URL.
    assert listed[1]["query"]["offset"] == ["2"]
    assert listed[1]["query"]["query"] == [expected_query]
    assert {r["authorization"] for r in listed} == {f"GenieKey {OG_KEY}"}


def test_opsgenie_incidents_kind_reads_resolved_incidents(api):
    frame = _og(api, kind="incidents")

    assert frame["incident_id"].tolist() == ["OG-2e9f9a4d-7d2b-4f0e-8f7c-1a0b6c9d3e21"]
    row = frame.iloc[0]
    assert row["started_at"] == _utc("2026-11-10T09:12:00Z")
    assert row["resolved_at"] == _utc("2026-11-10T10:03:30Z")
    assert row["severity"] == "P1"
    (request,) = api.seen("/v1/incidents")
    assert request["query"]["query"] == [
        "createdAt>=1793491200000 AND createdAt<1796083200000"
    ]


def test_opsgenie_refused_key_is_a_config_error_without_the_key(api, monkeypatch):
    monkeypatch.setenv("OPSGENIE_API_KEY", "stale-key-0042")

    with pytest.raises(ConfigError) as caught:
        _og(api)

    message = str(caught.value)
    assert "Opsgenie" in message and "/v2/alerts" in message and "401" in message
    assert "OPSGENIE_API_KEY" in message
    assert "stale-key" not in message and "0042" not in message


def test_opsgenie_missing_key_variable_names_it(api, monkeypatch):
    monkeypatch.delenv("OPSGENIE_API_KEY")

    with pytest.raises(ConfigError, match="OPSGENIE_API_KEY"):
        _og(api)
    assert api.requests == []


def test_opsgenie_429_and_500_are_retried(api):
    api.fail("/v2/alerts", 429, b'{"message": "rate limited"}', Retry_After="0")
    api.fail("/v2/alerts", 500, b'{"message": "internal"}')

    frame = _og(api)

    assert len(frame) == 3
    offsets = [r["query"]["offset"] for r in api.seen("/v2/alerts")]
    assert offsets == [["0"], ["0"], ["0"], ["2"]]


def test_opsgenie_lasting_429_gives_up_with_an_error(api):
    for _ in range(live.RATE_LIMIT_RETRIES + 1):
        api.fail("/v2/alerts", 429, b"{}", Retry_After="0")

    with pytest.raises(InputFormatError, match=r"Opsgenie GET /v2/alerts.*HTTP 429"):
        _og(api)


def test_opsgenie_malformed_json_names_the_url(api):
    api.fail("/v2/alerts", 200, b"<html>maintenance</html>")

    with pytest.raises(InputFormatError) as caught:
        _og(api)
    assert f"{api.url}/v2/alerts?" in str(caught.value)


def test_opsgenie_unreachable_service_is_an_input_error(monkeypatch):
    monkeypatch.setenv("OPSGENIE_API_KEY", OG_KEY)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]

    with pytest.raises(InputFormatError, match="no connection"):
        pull_opsgenie(
            since=OG_SINCE, until=OG_UNTIL, base_url=f"https://127.0.0.1:{port}"
        )


def test_opsgenie_unknown_kind_is_refused(api):
    with pytest.raises(ConfigError, match="kind"):
        _og(api, kind="schedules")


# --- dispatch -----------------------------------------------------------------


def test_pull_dispatches_on_the_source_name(api):
    pagerduty = pull("pagerduty", since=SINCE, until=UNTIL, base_url=api.url)
    opsgenie = pull("opsgenie", since=OG_SINCE, until=OG_UNTIL, base_url=api.url)

    pd.testing.assert_frame_equal(pagerduty, _pd(api))
    assert opsgenie["source"].tolist() == ["opsgenie"] * 3
    with pytest.raises(ConfigError, match="pagerduty"):
        pull("servicenow", since=SINCE, until=UNTIL)
