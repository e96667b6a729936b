"""The webhook service over real HTTP: uvicorn on loopback, posts with httpx."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import shutil
import socket
import threading
import time
from pathlib import Path

import httpx
import pytest
import uvicorn

from riskanalytics import serve
from riskanalytics.exceptions import InputFormatError
from riskanalytics.serve import MAX_BODY_BYTES, RunRequest, create_app

FIXTURES = Path(__file__).parent / "fixtures" / "serve"
PD_SECRET = "pd-signing-secret-7c1d"
GH_SECRET = "gh-signing-secret-93ab"
TOKEN = "alert-token-55e0"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _body(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def _pd_sign(body: bytes, secret: str = PD_SECRET) -> str:
    return "v1=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def _gh_sign(body: bytes, secret: str = GH_SECRET) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class Recorder:
    """A runner that records the queued runs it executes, optionally blocking."""

    def __init__(self, block: threading.Event | None = None):
        self.block = block
        self.started: list[RunRequest] = []
        self.runs: list[tuple[RunRequest, bytes]] = []
        self.changed = threading.Condition()

    def __call__(self, request: RunRequest) -> None:
        with self.changed:
            self.started.append(request)
            self.changed.notify_all()
        if self.block is not None:
            self.block.wait()
        with self.changed:
            self.runs.append((request, request.payload_path.read_bytes()))
            self.changed.notify_all()

    def wait_for(self, what: str, count: int, timeout: float = 10.0) -> None:
        with self.changed:
            ok = self.changed.wait_for(
                lambda: len(getattr(self, what)) >= count, timeout
            )
        assert ok, f"{count} {what} expected, got {len(getattr(self, what))}"


class Server:
    """uvicorn serving the app in a thread on a free loopback port."""

    def __init__(self, app):
        self.port = _free_port()
        config = uvicorn.Config(
            app, host="127.0.0.1", port=self.port, log_level="warning", ws="none"
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            assert time.monotonic() < deadline, "server did not start"
            time.sleep(0.02)
        self.client = httpx.Client(base_url=f"http://127.0.0.1:{self.port}")

    def stop(self) -> None:
        self.client.close()
        self.server.should_exit = True
        self.thread.join(15)


@pytest.fixture
def config_path(tmp_path):
    shutil.copy(FIXTURES / "config.yaml", tmp_path / "config.yaml")
    return tmp_path / "config.yaml"


@pytest.fixture
def secrets(monkeypatch):
    monkeypatch.setenv("PAGERDUTY_WEBHOOK_SECRET", PD_SECRET)
    monkeypatch.setenv("GITHUB_WEBHOOK_SECRET", GH_SECRET)
    monkeypatch.delenv("RISKANALYTICS_WEBHOOK_TOKEN", raising=False)


@pytest.fixture
def service(config_path, tmp_path, secrets):
    recorder = Recorder()
    server = Server(
        create_app(config_path, queue_dir=tmp_path / "queue", runner=recorder)
    )
    yield server, recorder, tmp_path / "queue"
    server.stop()


def _queued(queue_dir: Path) -> list[Path]:
    return sorted(p for p in queue_dir.rglob("*.json"))


def test_healthz_reports_worker_and_queue(service):
    server, _, _ = service

    response = server.client.get("/healthz")

    assert response.status_code == 200
    assert response.json() == {"status": "ok", "queued": 0}


def test_pagerduty_resolved_with_good_signature_queues_resolved_run(service):
    server, recorder, queue_dir = service
    body = _body("pagerduty_incident_resolved_v3.json")
    # PagerDuty sends one signature per active secret, comma-separated.
    header = f"{_pd_sign(body, 'an-old-secret')},{_pd_sign(body)}"

    response = server.client.post(
        "/webhooks/pagerduty",
        content=body,
        headers={"X-PagerDuty-Signature": header, "Content-Type": "application/json"},
    )

    assert response.status_code == 202
    assert response.json()["status"] == "queued"
    assert response.json()["trigger"] == "resolved"
    recorder.wait_for("runs", 1)
    request, saved = recorder.runs[0]
    assert (request.trigger, request.source) == ("resolved", "pagerduty")
    assert saved == body
    deadline = time.monotonic() + 5
    while not (queue_dir / "done" / request.payload_path.name).exists():
        assert time.monotonic() < deadline
        time.sleep(0.02)


@pytest.mark.parametrize(
    "header",
    [None, "v1=" + "0" * 64, "sha256=abc", "v1=" + "f" * 63, b"v1=\xe9"],
    ids=["missing", "wrong", "other-scheme", "truncated", "non-ascii"],
)
def test_pagerduty_bad_signature_is_refused(service, header):
    server, recorder, queue_dir = service
    body = _body("pagerduty_incident_resolved_v3.json")
    headers = {"X-PagerDuty-Signature": header} if header else {}

    response = server.client.post("/webhooks/pagerduty", content=body, headers=headers)

    assert response.status_code == 401
    assert _queued(queue_dir) == [] and recorder.started == []


def test_pagerduty_signed_with_other_secret_is_refused(service):
    server, recorder, queue_dir = service
    body = _body("pagerduty_incident_resolved_v3.json")

    response = server.client.post(
        "/webhooks/pagerduty",
        content=body,
        headers={"X-PagerDuty-Signature": _pd_sign(body, "not-the-secret")},
    )

    assert response.status_code == 401
    assert _queued(queue_dir) == []


def test_signed_endpoints_without_secret_refuse_and_say_why(
    service, monkeypatch, caplog
):
    server, recorder, queue_dir = service
    monkeypatch.delenv("PAGERDUTY_WEBHOOK_SECRET")
    monkeypatch.delenv("GITHUB_WEBHOOK_SECRET")
    body = _body("pagerduty_incident_resolved_v3.json")
    gh_body = _body("github_deployment_status_failure.json")

    with caplog.at_level(logging.ERROR, logger="riskanalytics.serve"):
        pd = server.client.post(
            "/webhooks/pagerduty",
            content=body,
            headers={"X-PagerDuty-Signature": _pd_sign(body)},
        )
        gh = server.client.post(
            "/webhooks/github",
            content=gh_body,
            headers={"X-Hub-Signature-256": _gh_sign(gh_body)},
        )

    assert (pd.status_code, gh.status_code) == (503, 503)
    assert "PAGERDUTY_WEBHOOK_SECRET is not set" in caplog.text
    assert "GITHUB_WEBHOOK_SECRET is not set" in caplog.text
    assert _queued(queue_dir) == []


def test_pagerduty_other_event_is_accepted_without_run(service):
    server, recorder, queue_dir = service
    body = _body("pagerduty_incident_triggered_v3.json")

    response = server.client.post(
        "/webhooks/pagerduty",
        content=body,
        headers={"X-PagerDuty-Signature": _pd_sign(body)},
    )

    assert response.status_code == 202
    assert response.json() == {
        "status": "ignored",
        "reason": "event_type 'incident.triggered'",
    }
    assert _queued(queue_dir) == []


@pytest.mark.parametrize(
    ("fixture", "event", "queued"),
    [
        ("github_deployment_status_failure.json", "deployment_status", True),
        ("github_deployment_status_rolled_back.json", "deployment_status", True),
        ("github_deployment_status_success.json", "deployment_status", False),
        ("github_deployment_status_failure.json", "deployment", False),
    ],
)
def test_github_deployment_status_maps_to_rollback(service, fixture, event, queued):
    server, recorder, queue_dir = service
    body = _body(fixture)

    response = server.client.post(
        "/webhooks/github",
        content=body,
        headers={"X-Hub-Signature-256": _gh_sign(body), "X-GitHub-Event": event},
    )

    assert response.status_code == 202
    assert (response.json()["status"] == "queued") is queued
    if queued:
        recorder.wait_for("runs", 1)
        assert recorder.runs[0][0].trigger == "rollback"
        assert recorder.runs[0][0].source == "github"
    else:
        assert _queued(queue_dir) == []


def test_github_bad_signature_is_refused(service):
    server, recorder, queue_dir = service
    body = _body("github_deployment_status_failure.json")

    response = server.client.post(
        "/webhooks/github",
        content=body,
        headers={"X-Hub-Signature-256": _gh_sign(body + b" ")},
    )

    assert response.status_code == 401
    assert _queued(queue_dir) == []


def test_oversized_body_is_refused(service):
    server, recorder, queue_dir = service
    body = b'{"pad": "' + b"x" * MAX_BODY_BYTES + b'"}'

    declared = server.client.post(
        "/webhooks/pagerduty",
        content=body,
        headers={"X-PagerDuty-Signature": _pd_sign(body)},
    )
    # Without Content-Length (chunked), the limit applies while reading.
    chunked = server.client.post(
        "/webhooks/alertmanager",
        content=(body[i : i + 65536] for i in range(0, len(body), 65536)),
    )

    assert (declared.status_code, chunked.status_code) == (413, 413)
    assert _queued(queue_dir) == [] and recorder.started == []


def _partial_post(port: int, body: bytes) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port))
    sock.sendall(
        b"POST /webhooks/alertmanager HTTP/1.1\r\nHost: x\r\n"
        b"Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n" + body
    )
    return sock


def test_a_body_cut_off_or_too_slow_is_refused_without_a_traceback(
    service, monkeypatch, caplog
):
    server, recorder, queue_dir = service
    monkeypatch.setattr(serve, "BODY_TIMEOUT_SECONDS", 0.5)
    with caplog.at_level(logging.WARNING):
        _partial_post(server.port, b'{"ab').close()
        slow = _partial_post(server.port, b'{"ab')
        slow.settimeout(5)
        answer = slow.recv(4096)
        slow.close()
        deadline = time.monotonic() + 5
        while "closed the connection" not in caplog.text:
            assert time.monotonic() < deadline, caplog.text
            time.sleep(0.05)
    assert answer.startswith(b"HTTP/1.1 408")
    assert "Traceback" not in caplog.text and "ClientDisconnect" not in caplog.text
    assert _queued(queue_dir) == [] and recorder.started == []


@pytest.mark.parametrize("body", [b'{"event": ', b"[1, 2]", b"\xff\xfe{}"])
def test_malformed_json_is_refused(service, body):
    server, recorder, queue_dir = service

    signed = server.client.post(
        "/webhooks/pagerduty",
        content=body,
        headers={"X-PagerDuty-Signature": _pd_sign(body)},
    )
    open_endpoint = server.client.post("/webhooks/grafana", content=body)

    assert (signed.status_code, open_endpoint.status_code) == (400, 400)
    assert _queued(queue_dir) == []


def test_token_is_required_when_set(service, monkeypatch):
    server, recorder, queue_dir = service
    monkeypatch.setenv("RISKANALYTICS_WEBHOOK_TOKEN", TOKEN)
    body = _body("alertmanager_resolved.json")

    missing = server.client.post("/webhooks/alertmanager", content=body)
    wrong = server.client.post(
        "/webhooks/alertmanager",
        content=body,
        headers={"Authorization": "Bearer not-it"},
    )
    right = server.client.post(
        "/webhooks/alertmanager",
        content=body,
        headers={"Authorization": f"Bearer {TOKEN}"},
    )

    assert (missing.status_code, wrong.status_code) == (401, 401)
    assert right.status_code == 202 and right.json()["trigger"] == "resolved"
    recorder.wait_for("runs", 1)
    assert len(recorder.started) == 1


@pytest.mark.parametrize(
    ("endpoint", "fixture", "status"),
    [
        ("alertmanager", "alertmanager_firing.json", "ignored"),
        ("alertmanager", "alertmanager_resolved.json", "queued"),
        ("grafana", "grafana_unified_firing.json", "ignored"),
        ("opsgenie", "opsgenie_alert_create.json", "ignored"),
        ("opsgenie", "opsgenie_alert_close.json", "queued"),
    ],
)
def test_alert_endpoints_queue_only_resolved(service, endpoint, fixture, status):
    server, recorder, queue_dir = service

    response = server.client.post(f"/webhooks/{endpoint}", content=_body(fixture))

    assert response.status_code == 202
    assert response.json()["status"] == status


def test_restart_executes_queued_runs_exactly_once(config_path, tmp_path, secrets):
    queue_dir = tmp_path / "queue"
    release = threading.Event()
    blocked = Recorder(block=release)
    first = Server(create_app(config_path, queue_dir=queue_dir, runner=blocked))
    bodies = [
        _body("pagerduty_incident_resolved_v3.json"),
        _body("alertmanager_resolved.json"),
        _body("opsgenie_alert_close.json"),
    ]
    try:
        first.client.post(
            "/webhooks/pagerduty",
            content=bodies[0],
            headers={"X-PagerDuty-Signature": _pd_sign(bodies[0])},
        )
        blocked.wait_for("started", 1)
        first.client.post("/webhooks/alertmanager", content=bodies[1])
        first.client.post("/webhooks/opsgenie", content=bodies[2])
        assert first.client.get("/healthz").json()["queued"] == 3
        time.sleep(0.3)  # room for a second run to start, if runs overlapped
        assert len(blocked.started) == 1  # one run at a time
    finally:
        first.stop()  # the first run is still blocked in the runner
    assert blocked.runs == [] and len(_queued(queue_dir)) == 3

    recorder = Recorder()
    second = Server(create_app(config_path, queue_dir=queue_dir, runner=recorder))
    try:
        recorder.wait_for("runs", 3)
        time.sleep(0.3)  # room for a duplicate to show up
        assert [(r.source, r.trigger) for r, _ in recorder.runs] == [
            ("pagerduty", "resolved"),
            ("alertmanager", "resolved"),
            ("opsgenie", "resolved"),
        ]
        assert [saved for _, saved in recorder.runs] == bodies
        assert second.client.get("/healthz").json()["queued"] == 0
        assert len(list((queue_dir / "done").iterdir())) == 3
    finally:
        second.stop()
        release.set()


def test_resolved_body_of_no_known_shape_is_refused_not_queued(service):
    server, recorder, queue_dir = service
    body = b'{"status": "resolved", "alerts": "nope"}'
    response = server.client.post("/webhooks/alertmanager", content=body)
    assert response.status_code == 400
    assert response.json() == {
        "error": "body is JSON of no known shape for alertmanager"
    }
    assert _queued(queue_dir) == []


def test_deeply_nested_json_is_refused(service):
    server, recorder, queue_dir = service
    nested = b'{"a": ' * 50_000 + b"1" + b"}" * 50_000
    response = server.client.post("/webhooks/grafana", content=nested)
    assert response.status_code == 400
    assert response.json() == {"error": "body is JSON nested too deeply"}
    assert _queued(queue_dir) == []


def test_run_refused_for_bad_input_is_logged_without_a_traceback(
    config_path, tmp_path, secrets, caplog
):
    queue_dir = tmp_path / "queue"
    recorder = Recorder()

    def runner(request: RunRequest) -> None:
        recorder(request)
        raise InputFormatError(f"{request.payload_path}: JSON of an unknown shape")

    server = Server(create_app(config_path, queue_dir=queue_dir, runner=runner))
    try:
        server.client.post(
            "/webhooks/alertmanager", content=_body("alertmanager_resolved.json")
        )
        recorder.wait_for("runs", 1)
        deadline = time.monotonic() + 10
        while not (queue_dir / "failed").is_dir() and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        server.stop()

    assert len(list((queue_dir / "failed").iterdir())) == 1
    assert "moved to failed/: " in caplog.text
    assert "JSON of an unknown shape" in caplog.text
    assert "Traceback" not in caplog.text


def test_failing_run_is_set_aside_and_the_next_one_runs(
    config_path, tmp_path, secrets, caplog
):
    queue_dir = tmp_path / "queue"
    recorder = Recorder()

    def runner(request: RunRequest) -> None:
        if request.source == "alertmanager":
            raise RuntimeError("register is locked")
        recorder(request)

    server = Server(create_app(config_path, queue_dir=queue_dir, runner=runner))
    try:
        server.client.post(
            "/webhooks/alertmanager", content=_body("alertmanager_resolved.json")
        )
        server.client.post(
            "/webhooks/opsgenie", content=_body("opsgenie_alert_close.json")
        )
        recorder.wait_for("runs", 1)
    finally:
        server.stop()

    assert [r.source for r, _ in recorder.runs] == ["opsgenie"]
    [failed] = list((queue_dir / "failed").iterdir())
    assert "--alertmanager--resolved" in failed.name
    assert "register is locked" in caplog.text


# -- deploy files -------------------------------------------------------------

DEPLOY = Path(__file__).parent.parent / "deploy"


def _weekly_commands() -> dict[str, str]:
    found = {}
    for path in sorted(DEPLOY.rglob("*")):
        if path.is_file():
            for line in path.read_text().splitlines():
                if "riskanalytics run " in line and not line.lstrip().startswith("#"):
                    command = line[line.index("riskanalytics run ") :]
                    found[path.name] = command.split(">>")[0].split("||")[0]
    return found


def test_deploy_files_all_run_the_same_weekly_command():
    import shlex

    from riskanalytics.cli import cli

    commands = _weekly_commands()

    assert set(commands) == {
        "riskanalytics",
        "riskanalytics-weekly.service",
        "weekly.yml",
    }
    for name, command in commands.items():
        args = shlex.split(command)[2:]
        context = cli.commands["run"].make_context("run", args)
        assert context.params["trigger"] == "weekly", name
        assert context.params["config_path"].name == "config.yaml", name


def test_deploy_schedules_agree_on_monday_morning():
    import yaml

    cron = (DEPLOY / "cron" / "riskanalytics").read_text()
    timer = (DEPLOY / "systemd" / "riskanalytics-weekly.timer").read_text()
    workflow = yaml.safe_load((DEPLOY / "github-actions" / "weekly.yml").read_text())

    assert "\n30 6 * * 1 " in cron
    assert "OnCalendar=Mon *-*-* 06:30:00" in timer
    # YAML 1.1 reads the key "on" as True.
    assert workflow[True]["schedule"] == [{"cron": "30 6 * * 1"}]


def test_webhook_starts_a_real_run_of_the_sample_project(sample_project, secrets):
    # The default runner: a full run (notebooks, register, run.json) per request.
    config_path = sample_project / "config.yaml"
    server = Server(create_app(config_path))
    done = sample_project / "reports" / "queue" / "done"
    try:
        response = server.client.post(
            "/webhooks/alertmanager", content=_body("alertmanager_resolved.json")
        )
        assert response.status_code == 202
        deadline = time.monotonic() + 240
        while not (done.is_dir() and any(done.iterdir())):
            assert time.monotonic() < deadline, "the queued run did not finish"
            assert not (sample_project / "reports" / "queue" / "failed").exists()
            time.sleep(0.2)
    finally:
        server.stop()

    [payload] = list(done.iterdir())
    [run_json] = list((sample_project / "reports").glob("*-resolved/run.json"))
    summary = json.loads(run_json.read_text(encoding="utf-8"))
    assert summary["trigger"] == "resolved" and summary["outcome"] == "success"
    assert summary["inputs"]["extra"] == [
        str(sample_project / "reports" / "queue" / payload.name)
    ]
    assert summary["counts"]["incidents"] >= 1
    # The alert of the webhook body is one of the run's incidents.
    reconciliation = (run_json.parent / "reconciliation.csv").read_text()
    assert "High CPU Temperature" in reconciliation
