"""Several processes updating one register, and writers killed mid-update."""

import multiprocessing
import os
import random
import shutil
import signal
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from riskanalytics.register import (
    NewRisk,
    Realization,
    apply_update,
    plan_update,
    read_register,
    store,
)

FIXTURES = Path(__file__).parent / "fixtures" / "register"
WHEN = datetime(2024, 6, 1, tzinfo=UTC)
PROCESSES = 6
UPDATES = 5
KILLS = 20

pytestmark = pytest.mark.skipif(
    not hasattr(os, "fork"), reason="needs fork to start writers quickly"
)


def events(process, update):
    incident = f"INC-{process}-{update}"
    risk = f"R-{(process * UPDATES + update) % 30 + 1:03d}"
    return (
        [Realization(risk, incident, WHEN, "pagerduty", 70.0, "failed", "")],
        [
            NewRisk(
                incident,
                f"Risk seen first in process {process}, update {update}",
                "Capacity",
                "Likely",
                "Major",
                "sre-team",
                None,
                "manual",
                WHEN,
                None,
                "",
            )
        ],
    )


def run_updates(path, process, barrier):
    barrier.wait()
    for update in range(UPDATES):
        realized, created = events(process, update)
        apply_update(path, realized, created, run_id=f"p{process}", lock_timeout=60)


def run_one_update(path):
    realized, created = events(99, 0)
    apply_update(path, realized, created, run_id="killed")


def test_register_concurrent_updates_lose_nothing(tmp_path):
    path = tmp_path / "risk-register.md"
    shutil.copyfile(FIXTURES / "platform_risk_register.md", path)
    context = multiprocessing.get_context("fork")
    barrier = context.Barrier(PROCESSES)

    workers = [
        context.Process(target=run_updates, args=(path, p, barrier))
        for p in range(PROCESSES)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(120)

    assert [w.exitcode for w in workers] == [0] * PROCESSES
    register = read_register(path)
    history = register.history
    expected = {f"INC-{p}-{u}" for p in range(PROCESSES) for u in range(UPDATES)}
    created = history[history["event"] == "created"]
    realized = history[history["event"] == "realized"]
    lost = len(expected - set(created["incident_id"])) + len(
        expected - set(realized["incident_id"])
    )
    assert lost == 0
    assert len(created) == len(realized) == len(expected)  # nothing twice
    new_ids = sorted(created["risk_id"])
    assert new_ids == [f"R-{n:03d}" for n in range(31, 31 + len(expected))]
    assert len(register.risks) == 30 + len(expected)
    assert set(register.risks["status"].iloc[:30]) == {"Realized"}
    backups = list((tmp_path / ".risk-register-backups").iterdir())
    assert len(backups) == len(expected)
    print(
        f"{PROCESSES} processes x {UPDATES} updates: {len(expected)} realizations "
        f"and {len(expected)} new risks expected, {lost} lost"
    )


def big_register(path, rows=300):
    lines = (FIXTURES / "platform_risk_register.md").read_text(encoding="utf-8")
    extra = "".join(
        f"| R-{n:04d} | Generated risk number {n} with a longer description "
        f"to make the file larger | Data | Possible | Major | dba-team | "
        f"Checks and drills | Open |\n"
        for n in range(31, 31 + rows)
    )
    path.write_text(lines + extra, encoding="utf-8")


def test_register_writer_killed_leaves_old_or_new_file(tmp_path):
    path = tmp_path / "risk-register.md"
    big_register(path)
    old = path.read_bytes()
    realized, created = events(99, 0)
    new = plan_update(read_register(path), realized, created, run_id="killed")
    new = new.new_text.encode("utf-8")
    context = multiprocessing.get_context("fork")

    started = time.perf_counter()
    writer = context.Process(target=run_one_update, args=(path,))
    writer.start()
    writer.join(60)
    duration = time.perf_counter() - started
    assert writer.exitcode == 0 and path.read_bytes() == new

    outcomes = {"old": 0, "new": 0}
    rng = random.Random(20240601)
    for _ in range(KILLS):
        path.write_bytes(old)
        writer = context.Process(target=run_one_update, args=(path,))
        writer.start()
        time.sleep(rng.uniform(0, duration * 1.1))
        os.kill(writer.pid, signal.SIGKILL)
        writer.join(10)

        data = path.read_bytes()
        assert data in (old, new), "register left half-written"
        outcomes["old" if data == old else "new"] += 1
        read_register(path)

    # The lock dies with its holder: the next update goes through, and clears
    # what the killed writers left.
    path.write_bytes(old)
    apply_update(path, realized, created, run_id="killed", lock_timeout=5)
    assert path.read_bytes() == new
    assert not list(tmp_path.glob(".risk-register.md.*.tmp"))
    assert outcomes["old"] + outcomes["new"] == KILLS
    assert outcomes["old"] > 0  # some kills landed before the write
    print(f"writer killed {KILLS} times: {outcomes}, one update {duration:.3f} s")


def run_update_pausing(path, point, ready):
    """One update that stops at ``point`` and waits there to be killed."""

    def pause():
        ready.set()
        time.sleep(30)

    if point == "temp half written":

        def write_half(target, data, mode=None):
            partial = target.parent / f".{target.name}.partial.tmp"
            with open(partial, "wb") as handle:
                handle.write(data[: len(data) // 2])
                handle.flush()
            pause()

        store.write_temp = write_half
    elif point == "before replace":
        real_replace = os.replace

        def replace_later(src, dst):
            if Path(dst) == path:
                pause()
            real_replace(src, dst)

        store.os.replace = replace_later
    elif point == "backup half written":
        real_write = store.write_temp

        def write_backup_half(target, data, mode=None):
            if target.parent.name == store.BACKUP_DIR_NAME:
                target.parent.mkdir(parents=True, exist_ok=True)
                half = target.parent / f".{target.name}.partial.tmp"
                half.write_bytes(data[: len(data) // 2])
                pause()
            return real_write(target, data, mode)

        store.write_temp = write_backup_half
    elif point == "after replace":
        store._fsync_dir = lambda folder: pause()
    run_one_update(path)


@pytest.mark.parametrize(
    ("point", "expected"),
    [
        ("temp half written", "old"),
        ("backup half written", "old"),
        ("before replace", "old"),
        ("after replace", "new"),
    ],
)
def test_register_writer_killed_at_each_step(tmp_path, point, expected):
    path = tmp_path / "risk-register.md"
    shutil.copyfile(FIXTURES / "platform_risk_register.md", path)
    old = path.read_bytes()
    realized, created = events(99, 0)
    new = plan_update(read_register(path), realized, created, run_id="killed")
    context = multiprocessing.get_context("fork")
    ready = context.Event()

    writer = context.Process(target=run_update_pausing, args=(path, point, ready))
    writer.start()
    assert ready.wait(30)
    os.kill(writer.pid, signal.SIGKILL)
    writer.join(10)

    versions = {"old": old, "new": new.new_text.encode("utf-8")}
    assert path.read_bytes() == versions[expected]
    read_register(path)
    apply_update(path, realized, created, run_id="killed", lock_timeout=5)
    assert path.read_bytes() == versions["new"]
    assert not list(tmp_path.glob(".risk-register.md.*.tmp"))
    assert not list(tmp_path.glob(".risk-register-backups/.*.tmp"))
