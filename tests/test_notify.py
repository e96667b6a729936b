"""Notifications over real SMTP and HTTP servers on loopback."""

from __future__ import annotations

import email
import json
import logging
import shutil
import socket
import threading
import time
from email import policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult

from riskanalytics import notify
from riskanalytics.config import load_config
from riskanalytics.notify import (
    Message,
    build_messages,
    redact_url,
    send_messages,
)

FIXTURES = Path(__file__).parent / "fixtures" / "notify"
SMTP_PASSWORD = "pw-4f9c1e-never-logged"

# aiosmtpd itself uses its deprecated Session.login_data after AUTH.
pytestmark = pytest.mark.filterwarnings(
    "ignore:Session.login_data is deprecated:DeprecationWarning"
)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _read_reconciliation(name: str) -> pd.DataFrame:
    frame = pd.read_csv(FIXTURES / name, dtype=str, keep_default_na=True)
    for col in ("started_at", "resolved_at", "review_deadline"):
        if col in frame:
            frame[col] = pd.to_datetime(frame[col], utc=True)
    if "risk_rating" in frame:
        frame["risk_rating"] = frame["risk_rating"].astype("Int64")
        frame["match_score"] = frame["match_score"].astype(float)
        frame["escalate"] = frame["escalate"] == "true"
    if "days_overdue" in frame:
        frame["days_overdue"] = frame["days_overdue"].astype(int)
    return frame


class SMTPRecorder:
    """An SMTP server that requires the login riskbot / SMTP_PASSWORD."""

    def __init__(self):
        self.mails: list[tuple[str, list[str], email.message.EmailMessage]] = []
        self.logins: list[tuple[bytes, bytes]] = []

    async def handle_DATA(self, server, session, envelope):
        parsed = email.message_from_bytes(envelope.content, policy=policy.default)
        self.mails.append((envelope.mail_from, list(envelope.rcpt_tos), parsed))
        return "250 OK"

    def authenticate(self, server, session, envelope, mechanism, auth_data):
        self.logins.append((auth_data.login, auth_data.password))
        good = auth_data.login == b"riskbot" and auth_data.password == (
            SMTP_PASSWORD.encode()
        )
        return AuthResult(success=good)


class HookRecorder(BaseHTTPRequestHandler):
    posts: list[tuple[str, dict]]

    def do_POST(self):
        length = int(self.headers.get("Content-Length", 0))
        self.posts.append((self.path, json.loads(self.rfile.read(length))))
        self.send_response(200)
        self.end_headers()

    def log_message(self, format, *args):
        pass


@pytest.fixture
def servers(monkeypatch):
    smtp = SMTPRecorder()
    port = _free_port()
    controller = Controller(
        smtp,
        hostname="127.0.0.1",
        port=port,
        authenticator=smtp.authenticate,
        auth_require_tls=False,
    )
    controller.start()

    handler = type("Handler", (HookRecorder,), {"posts": []})
    http = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=http.serve_forever, daemon=True)
    thread.start()

    monkeypatch.setenv("RA_TEST_SMTP_PORT", str(port))
    monkeypatch.setenv("RA_TEST_SMTP_PASSWORD", SMTP_PASSWORD)
    monkeypatch.setenv("RA_TEST_HTTP_PORT", str(http.server_address[1]))
    yield smtp, handler.posts

    http.shutdown()
    http.server_close()
    controller.stop()


@pytest.fixture
def config(tmp_path):
    shutil.copy(FIXTURES / "config.yaml", tmp_path / "config.yaml")
    return load_config(tmp_path / "config.yaml")


@pytest.fixture
def reconciliation():
    return _read_reconciliation("reconciliation_two_owners_one_escalation.csv")


@pytest.fixture
def overdue():
    return _read_reconciliation("overdue_reviews_one_week.csv")


def test_build_messages_one_message_per_owner(config, reconciliation, overdue):
    messages = build_messages(config, reconciliation, overdue)

    owners = [m.owner for m in messages]
    assert owners == ["dba-team", "payments-team", "unassigned", "escalation"]
    payments = messages[1]
    assert payments.keys == [
        "realized:PFQZPSY:R-007",
        "realized:INC-2041:R-011",
        "new_risk:INC-2050:R-031",
        "overdue:INC-1990:R-011:week1",
    ]
    assert "${RA_TEST_SMTP_PASSWORD}" in payments.urls[0]
    assert payments.title == (
        "riskanalytics: 2 realized risks, 1 new risk, 1 overdue review "
        "for payments-team"
    )
    assert "Mitigation verdict: failed; match score 82.5 of 100" in payments.body
    assert "Post-incident review: reviews/PFQZPSY.md, due 2026-11-16" in payments.body
    assert "New risk R-031 (rating 9) assigned to you" in payments.body
    assert "Was due 2026-10-20, 9 day(s) overdue" in payments.body
    # An incident nobody owns goes to the default owner and default URLs.
    assert messages[2].keys == ["needs_review:INC-2060:"]
    assert messages[2].urls == [config.notifications.default[0]]
    assert messages[2].title == "riskanalytics: 1 incident to review with no owner"
    assert messages[2].body.startswith("Risk register news with no owner yet")


def test_build_messages_names_a_near_miss_as_such(config, reconciliation):
    reconciliation["near_miss"] = reconciliation["incident_id"] == "PFQZPSY"
    payments = build_messages(config, reconciliation)[1]
    assert payments.owner == "payments-team"
    assert "Near miss of risk R-007 (rating 16)" in payments.body
    assert "Realized risk R-007" not in payments.body
    assert "Realized risk R-011" in payments.body


def test_subject_counts_a_near_miss_apart_from_realized_risks(config, reconciliation):
    reconciliation["near_miss"] = reconciliation["incident_id"] == "PFQZPSY"
    payments = build_messages(config, reconciliation)[1]
    assert payments.title == (
        "riskanalytics: 1 realized risk, 1 near miss, 1 new risk for payments-team"
    )
    escalation = build_messages(config, reconciliation)[-1]
    assert (
        escalation.title == "[ESCALATION] riskanalytics: 1 realized risk, 1 near miss"
    )


def test_subject_counts_a_risk_realized_twice_once(config, reconciliation):
    payments = reconciliation["incident_id"].isin(["PFQZPSY", "INC-2041"])
    assert reconciliation.loc[payments, "risk_id"].nunique() == 2
    reconciliation.loc[payments, "risk_id"] = "R-007"
    title = build_messages(config, reconciliation)[1].title
    assert title.startswith("riskanalytics: 1 realized risk (2 incidents), 1 new risk")


def test_an_incident_to_review_after_a_rejection_says_so(config, reconciliation):
    reconciliation["decided_by"] = "score"
    messages = build_messages(config, reconciliation)
    assert "INC-2060 needs a match decision: no risk matched" in messages[2].body
    reconciliation.loc[reconciliation["incident_id"] == "INC-2060", "decided_by"] = (
        "analyst"
    )
    messages = build_messages(config, reconciliation)
    assert "INC-2060 needs a match decision: an analyst rejected" in messages[2].body


def test_message_tells_the_owner_what_to_do_by_when(config, reconciliation):
    payments = build_messages(config, reconciliation)[1]
    assert (
        "Fill in each post-incident review by its due date: in its front matter "
        "set mitigations_worked, new_risks and status." in payments.body
    )


def test_build_messages_escalates_only_risks_at_threshold(config, reconciliation):
    messages = build_messages(config, reconciliation)

    escalation = messages[-1]
    assert escalation.escalation is True
    assert [m.escalation for m in messages[:-1]] == [False] * 3
    assert escalation.urls == list(config.notifications.escalation)
    assert escalation.keys == [
        "escalation:realized:PFQZPSY:R-007",
        "escalation:realized:INC-2052:R-003",
    ]
    assert escalation.title.startswith("[ESCALATION]")
    assert "Owner: dba-team" in escalation.body
    assert "R-011" not in escalation.body


def test_send_messages_delivers_email_over_smtp(
    servers, config, reconciliation, tmp_path
):
    smtp, posts = servers
    messages = [m for m in build_messages(config, reconciliation) if m.owner != "x"]

    report = send_messages(messages, state_path=tmp_path / "sent.json")

    assert report.failed == []
    by_rcpt = {tuple(rcpts): mail for _, rcpts, mail in smtp.mails}
    assert set(by_rcpt) == {("payments@example.com",), ("cto@example.com",)}
    mail = by_rcpt[("payments@example.com",)]
    assert mail["From"] == "riskbot@example.com"
    assert mail["Subject"] == (
        "riskanalytics: 2 realized risks, 1 new risk for payments-team"
    )
    text = mail.get_content()
    assert "Incident PFQZPSY: Checkout payments failing after deploy" in text
    assert "Realized risk R-007 (rating 16)" in text
    assert "due 2026-11-16" in text
    assert all(login == (b"riskbot", SMTP_PASSWORD.encode()) for login in smtp.logins)
    assert by_rcpt[("cto@example.com",)]["Subject"].startswith("[ESCALATION]")


def test_send_messages_escalation_goes_to_escalation_webhook(
    servers, config, reconciliation, tmp_path
):
    smtp, posts = servers
    report = send_messages(
        build_messages(config, reconciliation), state_path=tmp_path / "sent.json"
    )

    assert len(report.sent) == 5  # dba, payments, unassigned, escalation x2
    by_path: dict[str, list[dict]] = {}
    for path, body in posts:
        by_path.setdefault(path, []).append(body)
    assert sorted(by_path) == ["/escalation", "/owners/dba-team", "/owners/default"]
    escalated = by_path["/escalation"][0]
    assert escalated["title"].startswith("[ESCALATION]")
    assert "R-007" in escalated["message"] and "R-003" in escalated["message"]
    assert "R-011" not in escalated["message"]
    assert "[ESCALATION]" not in by_path["/owners/dba-team"][0]["title"]
    assert "INC-2060 needs a match decision" in by_path["/owners/default"][0]["message"]


def test_send_messages_twice_sends_only_new_facts(
    servers, config, reconciliation, overdue, tmp_path
):
    smtp, posts = servers
    state = tmp_path / "state" / "sent.json"
    first = send_messages(build_messages(config, reconciliation), state_path=state)
    mails, hooks = len(smtp.mails), len(posts)

    again = send_messages(build_messages(config, reconciliation), state_path=state)

    assert len(first.sent) == 5
    assert again.sent == [] and again.failed == []
    assert len(again.skipped_already_sent) == 5
    assert (len(smtp.mails), len(posts)) == (mails, hooks)
    recorded = json.loads(state.read_text())["sent"]
    assert "realized:PFQZPSY:R-007" in recorded

    # A new overdue review for payments-team is sent alone, in a message of its own.
    third = send_messages(
        build_messages(config, reconciliation, overdue), state_path=state
    )
    assert [e["keys"] for e in third.sent] == [["overdue:INC-1990:R-011:week1"]]
    mail = smtp.mails[-1][2]
    assert mail["Subject"] == "riskanalytics: 1 overdue review for payments-team"
    assert "R-007" not in mail.get_content()


def test_a_bad_state_entry_is_dropped_and_the_rest_kept(
    servers, config, reconciliation, tmp_path, caplog
):
    smtp, posts = servers
    state = tmp_path / "sent.json"
    send_messages(build_messages(config, reconciliation), state_path=state)
    mails, hooks = len(smtp.mails), len(posts)
    data = json.loads(state.read_text())
    data["sent"]["bogus"] = "x"
    state.write_text(json.dumps(data))

    again = send_messages(build_messages(config, reconciliation), state_path=state)
    assert again.sent == [] and (len(smtp.mails), len(posts)) == (mails, hooks)
    assert "1 notification state entry of the wrong shape dropped (bogus)" in (
        caplog.text
    )


def test_a_state_file_no_json_reader_can_read_is_set_aside_each_time(tmp_path):
    state = tmp_path / "sent.json"
    for _ in range(2):
        state.write_text('{"sent":' + "[" * 200_000)
        assert notify._read_state(state) == {}
        assert not state.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "sent.json.corrupt",
        "sent.json.corrupt.1",
    ]


def test_send_messages_unreachable_channel_retried_then_reported(
    config, tmp_path, caplog, monkeypatch
):
    waits = []
    clock = SimpleNamespace(sleep=waits.append, monotonic=time.monotonic)
    monkeypatch.setattr(notify, "time", clock)  # this module's clock only
    port = _free_port()  # nothing listens here
    message = Message(
        owner="dba-team",
        urls=[f"json://127.0.0.1:{port}/hook"],
        title="t",
        body="b",
        escalation=False,
        keys=["realized:INC-1:R-1"],
    )
    state = tmp_path / "sent.json"

    with caplog.at_level(logging.WARNING, logger="riskanalytics.notify"):
        report = send_messages(
            [message], state_path=state, retries=2, backoff_seconds=0.01
        )

    assert report.sent == []
    [failure] = report.failed
    assert failure["attempts"] == 3
    assert waits == [0.01, 0.02]  # backoff doubles between attempts
    assert failure["keys"] == ["realized:INC-1:R-1"]
    assert failure["url"] == f"json://127.0.0.1:{port}/..."
    assert "failed after 3 attempt(s)" in caplog.text
    assert not state.exists() or "INC-1" not in state.read_text()


def test_send_messages_never_reveals_secrets(
    servers, config, reconciliation, tmp_path, caplog, monkeypatch
):
    monkeypatch.setenv("RA_TEST_SMTP_PORT", str(_free_port()))  # SMTP down
    with caplog.at_level(logging.DEBUG, logger="riskanalytics"):
        report = send_messages(
            build_messages(config, reconciliation),
            state_path=tmp_path / "sent.json",
            retries=1,
            backoff_seconds=0.0,
        )

    assert {e["owner"] for e in report.failed} == {"payments-team", "escalation"}
    dumped = json.dumps(report.to_dict())
    assert SMTP_PASSWORD not in dumped and SMTP_PASSWORD not in caplog.text
    assert "mailto://***@127.0.0.1:" in dumped


def test_send_messages_missing_env_variable_is_reported(
    config, reconciliation, tmp_path, monkeypatch
):
    for name in ("RA_TEST_SMTP_PORT", "RA_TEST_SMTP_PASSWORD", "RA_TEST_HTTP_PORT"):
        monkeypatch.delenv(name, raising=False)
    report = send_messages(
        build_messages(config, reconciliation), state_path=tmp_path / "s.json"
    )

    assert len(report.failed) == 5
    assert all(e["attempts"] == 1 for e in report.failed)
    assert "RA_TEST_SMTP_PASSWORD" in report.failed[1]["error"]


def test_send_messages_dry_run_sends_and_records_nothing(
    servers, config, reconciliation, tmp_path
):
    smtp, posts = servers
    state = tmp_path / "sent.json"

    report = send_messages(
        build_messages(config, reconciliation), state_path=state, dry_run=True
    )

    assert len(report.dry_run) == 5
    assert report.sent == [] and smtp.mails == [] and posts == []
    assert not state.exists()
    assert "Realized risk R-007" in report.dry_run[1]["body"]
    assert SMTP_PASSWORD not in json.dumps(report.to_dict())


def test_send_messages_without_url_reports_failure(config, tmp_path):
    message = Message("ghost", [], "t", "b", False, ["new_risk:I:R"])

    report = send_messages([message], state_path=tmp_path / "s.json")

    assert report.failed[0]["error"] == "no notification URL configured"


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (
            "mailto://user:hunter2@smtp.example.com:587?to=a@example.com",
            "mailto://***@smtp.example.com:587/...",
        ),
        ("slack://T0KENA/B0TB/c0dec/#ops", "slack://***/..."),
        ("json://127.0.0.1:8080/hook", "json://127.0.0.1:8080/..."),
        ("msteams://${TEAMS_WEBHOOK}", "msteams://***"),
    ],
)
def test_redact_url_hides_credentials(url, shown):
    assert redact_url(url) == shown


def test_a_new_risk_nobody_owns_is_not_said_to_be_assigned(config, reconciliation):
    row = reconciliation[reconciliation["outcome"] == "new_risk"].head(1).copy()
    row["owner"] = None
    (message,) = [
        m for m in build_messages(config, row) if m.owner == config.default_owner
    ]
    assert "with no owner yet" in message.body
    assert "assigned to you" not in message.body
