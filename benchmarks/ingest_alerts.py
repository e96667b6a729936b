"""Speed and memory of reading and grouping Alertmanager alerts.

Generates Alertmanager webhook bodies (the shape of the real vmalert payload in
tests/fixtures/ingest/alertmanager_firing_and_resolved_shared_fingerprint.json),
one body per line, then times two ways of turning them into incidents, each
in its own process so that peak memory is its own:

- ``riskanalytics``: :func:`riskanalytics.ingest.read_incidents` (columnar
  chunks, vectorised grouping);
- ``naive``: one Python dict per alert, grouping in a dict of lists.

Run::

    .venv/bin/python benchmarks/ingest_alerts.py --alerts 1000000

Goal: at least 100,000 alerts/s and under 1 GB peak memory.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

FIXTURE = (
    Path(__file__).parents[1]
    / "tests"
    / "fixtures"
    / "ingest"
    / "alertmanager_firing_and_resolved_shared_fingerprint.json"
)


def generate(path: Path, alerts: int, per_body: int = 100, seed: int = 7) -> None:
    """Write ``alerts`` alerts as webhook bodies of ``per_body`` alerts, one a line."""
    rng = random.Random(seed)
    template = json.loads(FIXTURE.read_text(encoding="utf-8"))
    alert_template = template["alerts"][0]
    services = [f"svc-{i:02d}" for i in range(50)]
    names = [
        f"{kind}{i}" for kind in ("CPUHigh", "DiskFull", "Latency") for i in range(10)
    ]
    severities = ["critical", "warning", "info"]
    start = datetime(2026, 1, 1, tzinfo=timezone(timedelta(hours=8)))
    written = 0
    with path.open("w", encoding="utf-8") as handle:
        while written < alerts:
            # one episode: a burst of alerts of one rule on one service
            service = rng.choice(services)
            name = rng.choice(names)
            severity = rng.choice(severities)
            episode = start + timedelta(seconds=rng.randrange(90 * 86400))
            batch = []
            for _ in range(min(rng.randrange(20, 2 * per_body), alerts - written)):
                host = f"10.30.{rng.randrange(8)}.{rng.randrange(250)}"
                begins = episode + timedelta(seconds=rng.randrange(1800))
                resolved = rng.random() < 0.8
                ends = begins + timedelta(minutes=rng.randrange(1, 240))
                labels = dict(alert_template["labels"])
                labels.update(
                    alertname=name,
                    service=service,
                    host=host,
                    instance=host,
                    severity=severity,
                )
                alert = dict(alert_template)
                alert.update(
                    status="resolved" if resolved else "firing",
                    labels=labels,
                    startsAt=f"{begins:%Y-%m-%dT%H:%M:%S}.{rng.randrange(10**9):09d}"
                    "+08:00",
                    endsAt=ends.isoformat() if resolved else "0001-01-01T00:00:00Z",
                    fingerprint=f"{rng.getrandbits(64):016x}",
                )
                batch.append(alert)
            written += len(batch)
            body = dict(template, alerts=batch, groupLabels={"alertname": name})
            handle.write(json.dumps(body) + "\n")


def run_riskanalytics(path: Path) -> int:
    from riskanalytics.ingest import read_incidents

    result = read_incidents([path], fmt="alertmanager")
    return len(result.incidents)


def run_naive(path: Path, window_minutes: float = 60.0) -> int:
    """One dict per alert and a per-group Python loop: the obvious baseline."""
    alerts = []
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            for alert in json.loads(line)["alerts"]:
                text = alert["startsAt"]  # nanoseconds: cut to microseconds
                starts = datetime.fromisoformat(text[:26] + text[29:])
                ends = alert["endsAt"]
                alerts.append(
                    {
                        "key": (
                            alert["labels"]["alertname"],
                            alert["labels"]["service"],
                        ),
                        "start": starts,
                        "end": None
                        if ends.startswith("0001")
                        else datetime.fromisoformat(ends),
                        "labels": alert["labels"],
                        "annotations": alert["annotations"],
                    }
                )
    groups: dict[tuple, list[dict]] = {}
    for alert in alerts:
        groups.setdefault(alert["key"], []).append(alert)
    window = timedelta(minutes=window_minutes)
    incidents = 0
    for members in groups.values():
        members.sort(key=lambda a: a["start"])
        reach = None
        for alert in members:
            if reach is None or alert["start"] > reach + window:
                incidents += 1
                reach = alert["start"]
            reach = max(reach, alert["end"] or alert["start"])
    return incidents


def _tree_rss_kb(pid: int) -> int:
    """Resident memory of a process and all its descendants, from /proc (KiB)."""
    total, stack = 0, [pid]
    while stack:
        current = stack.pop()
        try:
            status = Path(f"/proc/{current}/status").read_text()
            children = Path(f"/proc/{current}/task/{current}/children").read_text()
        except OSError:
            continue
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1])
        stack += [int(child) for child in children.split()]
    return total


class _TreePeak(threading.Thread):
    """Samples the memory of this process and its reading processes together."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.peak_kb = 0
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.wait(0.02):
            self.peak_kb = max(self.peak_kb, _tree_rss_kb(os.getpid()))


def measure(mode: str, path: Path, alerts: int) -> None:
    import riskanalytics.ingest  # noqa: F401  (import time is not reading time)

    sampler = _TreePeak()
    sampler.start()
    began = time.perf_counter()
    incidents = run_riskanalytics(path) if mode == "riskanalytics" else run_naive(path)
    seconds = time.perf_counter() - began
    sampler.done.set()
    sampler.join()
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    # reading processes of large files are children: their peak is reported apart
    child_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(
        json.dumps(
            {
                "mode": mode,
                "alerts": alerts,
                "incidents": incidents,
                "seconds": round(seconds, 2),
                "alerts_per_second": round(alerts / seconds),
                "peak_rss_mb": round(peak_mb),
                "peak_child_rss_mb": round(child_mb),
                # this process and its reading processes at the same moment
                "peak_total_rss_mb": round(sampler.peak_kb / 1024),
                "load_average_1m": round(os.getloadavg()[0], 2),
            }
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--alerts", type=int, default=1_000_000)
    parser.add_argument("--file", type=Path, help="reuse or keep the generated file")
    parser.add_argument("--measure", choices=["riskanalytics", "naive"])
    parser.add_argument("--skip-naive", action="store_true")
    parser.add_argument(
        "--processes",
        type=int,
        help="number of reading processes (at most the CPU count)",
    )
    args = parser.parse_args()

    if args.measure:
        if args.processes:
            from riskanalytics.ingest import alerts

            size = args.file.stat().st_size
            alerts.PARALLEL_BYTES = max(1, size // args.processes)
        measure(args.measure, args.file, args.alerts)
        return

    with tempfile.TemporaryDirectory() as folder:
        path = args.file or Path(folder) / "alerts.jsonl"
        if not path.exists():
            began = time.perf_counter()
            generate(path, args.alerts)
            print(
                f"generated {args.alerts:,} alerts "
                f"({path.stat().st_size / 1e6:.0f} MB) "
                f"in {time.perf_counter() - began:.1f} s"
            )
        modes = ["riskanalytics"] + ([] if args.skip_naive else ["naive"])
        for mode in modes:
            command = [
                sys.executable,
                __file__,
                "--measure",
                mode,
                "--file",
                str(path),
                "--alerts",
                str(args.alerts),
                *(["--processes", str(args.processes)] if args.processes else []),
            ]
            subprocess.run(command, check=True)
    print("goal: >= 100000 alerts/s and < 1024 MB peak")


if __name__ == "__main__":
    main()
