"""An on-disk queue of runs, executed one at a time by a single worker thread.

Each queued run is one file in the queue directory, holding the request body
exactly as received, named ``<sequence>--<source>--<trigger>.json`` so that
sorting the names gives the order of arrival. A file is written atomically
(temporary name, then rename) and leaves the queue only after its run has
finished: into ``done/`` when the run returned, into ``failed/`` when it
raised. A run interrupted by a stop or a crash is therefore executed again
when the worker restarts; nothing queued is lost.

One worker per queue directory: two processes sharing a directory could both
execute the same file.
"""

from __future__ import annotations

import logging
import os
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from riskanalytics._files import replace_file
from riskanalytics.exceptions import RiskAnalyticsError

__all__ = ["RunQueue", "RunRequest"]

log = logging.getLogger(__name__)

_NAME = re.compile(
    r"^(?P<seq>[0-9]{20})--(?P<source>[a-z0-9_-]+)--(?P<trigger>[a-z-]+)\.json$"
)


@dataclass(frozen=True)
class RunRequest:
    """A run asked for by a webhook.

    Attributes
    ----------
    trigger
        One of :data:`riskanalytics.schema.TRIGGERS` (``resolved``,
        ``rollback`` ...).
    payload_path
        The saved request body, in the queue directory.
    source
        The endpoint that received it: ``pagerduty``, ``github`` ...
    """

    trigger: str
    payload_path: Path
    source: str


class RunQueue:
    """Queued runs on disk, and the worker thread that executes them.

    Parameters
    ----------
    directory
        The queue directory; created if missing.
    runner
        Called with each :class:`RunRequest`, one at a time, in arrival order.
    poll_seconds
        How often the worker looks for files it was not told about.
    """

    def __init__(
        self,
        directory: Path,
        runner: Callable[[RunRequest], None],
        *,
        poll_seconds: float = 1.0,
    ) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.runner = runner
        self.poll_seconds = poll_seconds
        self._lock = threading.Lock()
        self._last_seq = max((int(p.name[:20]) for p in self._all_files()), default=0)
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.current: RunRequest | None = None

    def _all_files(self) -> list[Path]:
        found = []
        for folder in (
            self.directory,
            self.directory / "done",
            self.directory / "failed",
        ):
            if folder.is_dir():
                found += [p for p in folder.iterdir() if _NAME.match(p.name)]
        return found

    def pending(self) -> list[Path]:
        """Queued files not yet executed, oldest first."""
        return sorted(p for p in self.directory.iterdir() if _NAME.match(p.name))

    def put(self, body: bytes, *, source: str, trigger: str) -> RunRequest:
        """Save a request body atomically and wake the worker.

        Returns
        -------
        RunRequest
            The queued run, with the path of the saved body.
        """
        with self._lock:
            seq = max(self._last_seq + 1, time.time_ns())
            self._last_seq = seq
        path = self.directory / f"{seq:020d}--{source}--{trigger}.json"
        replace_file(path, body)
        log.info("Queued %s run from %s as %s", trigger, source, path.name)
        self._wake.set()
        return RunRequest(trigger=trigger, payload_path=path, source=source)

    def start(self) -> None:
        """Start the worker thread; it first executes what an earlier one left."""
        leftover = self.pending()
        if leftover:
            log.info(
                "%d run(s) left in %s from before; executing them first",
                len(leftover),
                self.directory,
            )
        self._stop.clear()
        self._thread = threading.Thread(
            target=self._work, name="riskanalytics-run-queue", daemon=True
        )
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Ask the worker to stop after the current run, waiting up to ``timeout``.

        A run still executing after ``timeout`` seconds stays queued and is
        executed again by the next worker on this directory.
        """
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                log.warning(
                    "Run %s still executing at shutdown; it stays queued in %s",
                    self.current.payload_path.name if self.current else "?",
                    self.directory,
                )

    @property
    def alive(self) -> bool:
        """Whether the worker thread is running."""
        return self._thread is not None and self._thread.is_alive()

    def _work(self) -> None:
        while not self._stop.is_set():
            queued = self.pending()
            if not queued:
                self._wake.wait(self.poll_seconds)
                self._wake.clear()
                continue
            self._execute(queued[0])

    def _execute(self, path: Path) -> None:
        match = _NAME.match(path.name)
        request = RunRequest(
            trigger=match["trigger"], payload_path=path, source=match["source"]
        )
        self.current = request
        started = time.monotonic()
        log.info(
            "Run %s (%s from %s) started", path.name, request.trigger, request.source
        )
        try:
            self.runner(request)
        except RiskAnalyticsError as exc:  # bad input: the message says it all
            log.error("Run %s failed; moved to failed/: %s", path.name, exc)
            folder = "failed"
        except Exception:
            log.exception("Run %s failed; moved to failed/", path.name)
            folder = "failed"
        else:
            log.info("Run %s finished in %.1f s", path.name, time.monotonic() - started)
            folder = "done"
        finally:
            self.current = None

        if self._stop.is_set() and not path.exists():
            return
        target = self.directory / folder
        target.mkdir(exist_ok=True)
        try:
            os.replace(path, target / path.name)
        except FileNotFoundError:
            log.warning("Run %s was taken by another worker meanwhile", path.name)
