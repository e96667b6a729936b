"""A small webhook service that queues runs when incidents resolve or deploys roll back.

Endpoints
---------
``POST /webhooks/pagerduty``
    PagerDuty v3 webhooks, signed: ``X-PagerDuty-Signature`` holds one or more
    comma-separated ``v1=<hex HMAC-SHA256 of the raw body>`` keyed with
    ``PAGERDUTY_WEBHOOK_SECRET``. ``incident.resolved`` queues a ``resolved``
    run.
``POST /webhooks/github``
    GitHub webhooks, signed: ``X-Hub-Signature-256: sha256=<hex>`` keyed with
    ``GITHUB_WEBHOOK_SECRET``. A ``deployment_status`` whose state is
    ``failure`` or ``error``, or whose description mentions a rollback, queues
    a ``rollback`` run.
``POST /webhooks/alertmanager``, ``/webhooks/grafana``, ``/webhooks/opsgenie``
    When ``RISKANALYTICS_WEBHOOK_TOKEN`` is set, ``Authorization: Bearer
    <token>`` is required. A notification whose status is ``resolved``
    (Grafana legacy: state ``ok``; Opsgenie: action ``Close``) queues a
    ``resolved`` run.
``GET /healthz``
    Liveness, with the number of queued runs.

A signed endpoint whose secret is not set answers 503 and logs why: it never
accepts unsigned posts. A bad signature or token answers 401, a body over
the size limit 413, a body that is not a JSON object (or would start a run
but is of no known incident format) 400; none of them queues
anything. Any other event answers 202 without queuing a run.

Accepted bodies are saved as received in the queue directory (see
:mod:`riskanalytics.queue`) and executed one at a time; a restart executes
what was left.
"""

from __future__ import annotations

import argparse
import asyncio
import contextvars
import hashlib
import hmac
import json
import logging
import os
import re
from collections.abc import Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from riskanalytics.config import load_config
from riskanalytics.ingest import detect_json_format
from riskanalytics.queue import RunQueue, RunRequest

__all__ = ["MAX_BODY_BYTES", "RunRequest", "create_app", "main", "serve"]

log = logging.getLogger(__name__)

#: Largest accepted request body, in bytes.
MAX_BODY_BYTES = 1024 * 1024

#: Seconds a client has to send a request's whole body.
BODY_TIMEOUT_SECONDS = 30.0

_ROLLBACK_WORDS = re.compile(r"\broll(?:ed|ing)?[ -]?back\b|\brevert(?:ed)?\b", re.I)


class _Refused(Exception):
    def __init__(self, status: int, reason: str):
        super().__init__(reason)
        self.status = status
        self.reason = reason


# -- reading and authenticating a request -----------------------------------


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise _Refused(413, f"body of {declared} bytes is over the {limit} limit")
    chunks = []
    size = 0
    try:
        async with asyncio.timeout(BODY_TIMEOUT_SECONDS):
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    raise _Refused(413, f"body is over the {limit} byte limit")
                chunks.append(chunk)
    except TimeoutError:
        raise _Refused(
            408, f"body not received within {BODY_TIMEOUT_SECONDS:g} s"
        ) from None
    except ClientDisconnect:
        raise _Refused(400, "the client closed the connection mid-body") from None
    return b"".join(chunks)


def _secret(name: str, endpoint: str) -> bytes:
    value = os.environ.get(name)
    if not value:
        log.error(
            "%s webhook refused: %s is not set, and unsigned posts are never "
            "accepted; set it to the webhook's signing secret",
            endpoint,
            name,
        )
        raise _Refused(503, f"{name} is not configured on this server")
    return value.encode("utf-8")


def _same(expected: str, offered: str) -> bool:
    """Constant-time comparison that also copes with non-ASCII header values."""
    return hmac.compare_digest(expected.encode("utf-8"), offered.encode("utf-8"))


def _hex_hmac(secret: bytes, body: bytes) -> str:
    return hmac.new(secret, body, hashlib.sha256).hexdigest()


def _check_pagerduty(request: Request, body: bytes) -> None:
    secret = _secret("PAGERDUTY_WEBHOOK_SECRET", "PagerDuty")
    expected = "v1=" + _hex_hmac(secret, body)
    header = request.headers.get("x-pagerduty-signature", "")
    offered = [s.strip() for s in header.split(",") if s.strip()]
    if not any(_same(expected, s) for s in offered):
        raise _Refused(401, "X-PagerDuty-Signature missing or wrong")


def _check_github(request: Request, body: bytes) -> None:
    secret = _secret("GITHUB_WEBHOOK_SECRET", "GitHub")
    expected = "sha256=" + _hex_hmac(secret, body)
    offered = request.headers.get("x-hub-signature-256", "").strip()
    if not _same(expected, offered):
        raise _Refused(401, "X-Hub-Signature-256 missing or wrong")


def _check_token(request: Request, body: bytes) -> None:
    token = os.environ.get("RISKANALYTICS_WEBHOOK_TOKEN")
    if not token:
        return
    scheme, _, offered = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not _same(token, offered.strip()):
        raise _Refused(401, "Authorization: Bearer token missing or wrong")


# -- what each event means ---------------------------------------------------


def _pagerduty_trigger(payload: dict, request: Request) -> tuple[str | None, str]:
    event = payload.get("event")
    kind = event.get("event_type") if isinstance(event, dict) else None
    if kind == "incident.resolved":
        return "resolved", kind
    return None, f"event_type {kind!r}"


def _github_trigger(payload: dict, request: Request) -> tuple[str | None, str]:
    event = request.headers.get("x-github-event") or (
        "deployment_status" if "deployment_status" in payload else "unknown"
    )
    if event != "deployment_status":
        return None, f"event {event!r}"
    status = payload.get("deployment_status") or {}
    deployment = payload.get("deployment") or {}
    state = str(status.get("state") or "")
    text = " ".join(
        str(x or "") for x in (status.get("description"), deployment.get("description"))
    )
    if state in ("failure", "error") or _ROLLBACK_WORDS.search(text):
        return "rollback", f"deployment_status {state}"
    return None, f"deployment_status {state!r} without rollback"


def _alert_trigger(payload: dict, request: Request) -> tuple[str | None, str]:
    status = str(payload.get("status") or payload.get("state") or "").lower()
    if status in ("resolved", "ok"):
        return "resolved", f"status {status}"
    return None, f"status {status!r}"


def _opsgenie_trigger(payload: dict, request: Request) -> tuple[str | None, str]:
    action = str(payload.get("action") or "")
    if action.lower() == "close":
        return "resolved", "action Close"
    return None, f"action {action!r}"


_ENDPOINTS: dict[str, tuple[Callable, Callable]] = {
    "pagerduty": (_check_pagerduty, _pagerduty_trigger),
    "github": (_check_github, _github_trigger),
    "alertmanager": (_check_token, _alert_trigger),
    "grafana": (_check_token, _alert_trigger),
    "opsgenie": (_check_token, _opsgenie_trigger),
}


# -- the application ---------------------------------------------------------


def _close_loops(context: contextvars.Context) -> None:
    """Close the event loops a run left in its context and thread.

    The notebook client makes an event loop for the worker thread and keeps it
    in a context variable; it would stay open, with its sockets, until the
    thread's objects are collected.
    """
    for value in context.values():
        if (
            isinstance(value, asyncio.AbstractEventLoop)
            and not value.is_running()
            and not value.is_closed()
        ):
            value.close()
    asyncio.set_event_loop(None)


def _default_runner(config_path: Path) -> Callable[[RunRequest], None]:
    def run(request: RunRequest) -> None:
        from riskanalytics.pipeline import run as pipeline_run

        config = load_config(config_path)
        context = contextvars.copy_context()
        try:
            context.run(
                pipeline_run,
                config,
                trigger=request.trigger,
                inputs=[request.payload_path],
            )
        finally:
            _close_loops(context)

    return run


def create_app(
    config_path: Path,
    *,
    queue_dir: Path | None = None,
    runner: Callable[[RunRequest], None] | None = None,
    max_body_bytes: int = MAX_BODY_BYTES,
) -> Starlette:
    """The webhook application; its worker starts and stops with it.

    Parameters
    ----------
    config_path
        The ``config.yaml`` of the runs; read now to fail early, and again
        by the default runner at every run.
    queue_dir
        Where queued request bodies are kept; ``<reports_dir>/queue`` by
        default.
    runner
        Executes one queued run; by default
        ``riskanalytics.pipeline.run(config, trigger=..., inputs=[payload])``.
    max_body_bytes
        Larger bodies are refused with 413.

    Returns
    -------
    starlette.applications.Starlette
        With ``app.state.queue`` the :class:`~riskanalytics.queue.RunQueue`.
    """
    config_path = Path(config_path)
    config = load_config(config_path)
    queue = RunQueue(
        Path(queue_dir) if queue_dir else config.reports_dir / "queue",
        runner or _default_runner(config_path),
    )

    def endpoint(source: str) -> Callable:
        async def receive(request: Request) -> JSONResponse:
            return await webhook(source, request)

        return receive

    async def webhook(source: str, request: Request) -> JSONResponse:
        check, classify = _ENDPOINTS[source]
        try:
            body = await _read_body(request, max_body_bytes)
            check(request, body)
            try:
                payload = json.loads(body)
            except (UnicodeDecodeError, ValueError) as exc:
                raise _Refused(400, f"body is not valid JSON: {exc}") from None
            except RecursionError:
                raise _Refused(400, "body is JSON nested too deeply") from None
            if not isinstance(payload, dict):
                raise _Refused(400, "body is JSON but not an object")
            trigger, what = classify(payload, request)
            if trigger is not None and detect_json_format(payload) is None:
                # queued, it would only fail when its run reads it
                raise _Refused(400, f"body is JSON of no known shape for {source}")
        except _Refused as refused:
            level = logging.ERROR if refused.status == 503 else logging.WARNING
            log.log(
                level,
                "Refused %s webhook from %s: %d %s",
                source,
                request.client.host if request.client else "?",
                refused.status,
                refused.reason,
            )
            return JSONResponse({"error": refused.reason}, status_code=refused.status)

        if trigger is None:
            log.info("Accepted %s webhook (%s); no run needed", source, what)
            return JSONResponse({"status": "ignored", "reason": what}, status_code=202)
        queued = queue.put(body, source=source, trigger=trigger)
        return JSONResponse(
            {"status": "queued", "trigger": trigger, "id": queued.payload_path.name},
            status_code=202,
        )

    async def healthz(request: Request) -> JSONResponse:
        healthy = queue.alive
        return JSONResponse(
            {
                "status": "ok" if healthy else "worker stopped",
                "queued": len(queue.pending()),
            },
            status_code=200 if healthy else 503,
        )

    @asynccontextmanager
    async def lifespan(app: Starlette):
        if not os.environ.get("RISKANALYTICS_WEBHOOK_TOKEN"):
            log.warning(
                "RISKANALYTICS_WEBHOOK_TOKEN is not set: the Alertmanager, Grafana "
                "and Opsgenie endpoints accept posts without authentication"
            )
        queue.start()
        try:
            yield
        finally:
            queue.stop()

    app = Starlette(
        routes=[
            *(
                Route(f"/webhooks/{name}", endpoint(name), methods=["POST"])
                for name in _ENDPOINTS
            ),
            Route("/healthz", healthz, methods=["GET"]),
        ],
        lifespan=lifespan,
    )
    app.state.queue = queue
    return app


def serve(config_path: str | Path, host: str = "127.0.0.1", port: int = 8080) -> None:
    """Run the webhook service with uvicorn until interrupted.

    Put it behind a TLS-terminating reverse proxy when it faces the internet.
    """
    import uvicorn

    uvicorn.run(create_app(Path(config_path)), host=host, port=port)


def main(argv: list[str] | None = None) -> Any:
    """``python -m riskanalytics.serve --config config.yaml [--host H] [--port P]``."""
    parser = argparse.ArgumentParser(prog="python -m riskanalytics.serve")
    parser.add_argument("--config", required=True, type=Path)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", default=8080, type=int)
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    serve(args.config, host=args.host, port=args.port)


if __name__ == "__main__":
    main()
