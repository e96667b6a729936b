"""Write a register update safely: locked, re-planned, atomic, backed up.

Concurrent runs take a lock file next to the register
(``<name>.riskanalytics.lock``, via :mod:`filelock`). Inside the lock the
register is read again and the update planned against what is on disk, so that
an edit a person made since the caller last read it is kept. The new text goes
to a temporary file in the same folder, is flushed and synced, and replaces the
register with :func:`os.replace`, so that a reader or a crash sees the old file
or the new one, never a mix. The previous version is kept as a backup first,
in ``.risk-register-backups/`` beside the register unless told otherwise.
"""

from __future__ import annotations

import logging
import os
import stat
import time
from datetime import UTC, datetime
from pathlib import Path

from filelock import FileLock, Timeout

from riskanalytics._files import write_temp
from riskanalytics.exceptions import RegisterConflictError
from riskanalytics.register.parse import parse_register, read_register
from riskanalytics.register.update import RegisterUpdate, plan_update

__all__ = ["BACKUP_DIR_NAME", "apply_update", "lock_path"]

log = logging.getLogger(__name__)

#: Folder, next to the register, where previous versions are kept.
BACKUP_DIR_NAME = ".risk-register-backups"

_ATTEMPTS = 5


def lock_path(path: Path) -> Path:
    """The lock file that serializes updates: ``<name>.riskanalytics.lock``."""
    return path.with_name(path.name + ".riskanalytics.lock")


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some file systems cannot sync a directory; the data is synced
    finally:
        os.close(fd)


def _backup(path: Path, data: bytes, backup_dir: Path | None) -> Path:
    folder = Path(backup_dir) if backup_dir else path.parent / BACKUP_DIR_NAME
    folder.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    target = folder / f"{path.stem}.{stamp}{path.suffix}"
    counter = 1
    while target.exists():
        target = folder / f"{path.stem}.{stamp}-{counter}{path.suffix}"
        counter += 1
    temp = write_temp(target, data, stat.S_IMODE(path.stat().st_mode))
    os.replace(temp, target)
    return target


def apply_update(
    path,
    realizations,
    new_risks,
    *,
    run_id: str = "",
    dry_run: bool = False,
    backup_dir: Path | None = None,
    lock_timeout: float = 60,
) -> RegisterUpdate:
    """Record realized and new risks in the register on disk.

    Parameters
    ----------
    path : str or Path
        The register.
    realizations, new_risks : iterables
        As for :func:`~riskanalytics.register.plan_update`.
    run_id : str, optional
        Written into the history rows.
    dry_run : bool, optional
        Plan and return the diff, writing nothing (no lock, no backup).
    backup_dir : Path, optional
        Where the previous version is kept; by default
        ``<register folder>/.risk-register-backups/``.
    lock_timeout : float, optional
        Seconds to wait for another run's update to finish.

    Returns
    -------
    RegisterUpdate
        What was applied, planned against the file as it was inside the lock.

    Raises
    ------
    RegisterFormatError
        The register cannot be read.
    RegisterConflictError
        The lock was not obtained in time, or the file kept changing while it
        was being written.
    """
    path = Path(path)
    if path.is_symlink():
        path = path.resolve()  # replace the file linked to, keep the link
    realizations = list(realizations)
    new_risks = list(new_risks)
    if dry_run:
        return plan_update(read_register(path), realizations, new_risks, run_id=run_id)

    started = time.perf_counter()
    lock = FileLock(str(lock_path(path)), timeout=lock_timeout)
    try:
        with lock:
            update = _apply_locked(
                path, realizations, new_risks, run_id=run_id, backup_dir=backup_dir
            )
    except Timeout:
        raise RegisterConflictError(
            f"{path}: another run holds the update lock {lock_path(path)}; "
            f"waited {lock_timeout} s for it to finish. Nothing was written; run "
            "again once the other update is done"
        ) from None
    log.info(
        "register update of %s done in %.2f s", path, time.perf_counter() - started
    )
    return update


def _remove_stale_temps(path: Path, backup_dir: Path | None = None) -> None:
    # Holding the lock, any temporary file of ours is left by a writer that died:
    # beside the register, or a half-written backup in the backup folder.
    backups = Path(backup_dir) if backup_dir else path.parent / BACKUP_DIR_NAME
    stale_files = [
        *path.parent.glob(f".{path.name}.*.tmp"),
        *backups.glob(f".{path.stem}.*{path.suffix}.*.tmp"),
    ]
    for stale in stale_files:
        log.warning("removing %s, left by an update that was interrupted", stale)
        stale.unlink(missing_ok=True)


def _apply_locked(path, realizations, new_risks, *, run_id, backup_dir):
    _remove_stale_temps(path, backup_dir)
    for attempt in range(1, _ATTEMPTS + 1):
        register = read_register(path)
        update = plan_update(register, realizations, new_risks, run_id=run_id)
        if not update.changed:
            log.info("register %s already up to date", path)
            return update

        data = update.new_text.encode("utf-8")
        parse_register(path, update.new_text)  # never write what cannot be read
        temp = write_temp(path, data)
        try:
            # An editor does not take our lock: if the file changed since it
            # was read, plan again against the new text.
            if path.read_bytes() != register.text.encode("utf-8"):
                log.warning(
                    "%s changed on disk while updating (attempt %d); planning again",
                    path,
                    attempt,
                )
                continue
            backup = _backup(path, register.text.encode("utf-8"), backup_dir)
            os.replace(temp, path)
        finally:
            temp.unlink(missing_ok=True)
        _fsync_dir(path.parent)
        log.info(
            "updated %s: %d realized, %d created; previous version kept at %s",
            path,
            len(update.realized),
            len(update.created),
            backup,
        )
        return update
    raise RegisterConflictError(
        f"{path}: the file changed on disk during each of {_ATTEMPTS} update "
        "attempts; expected it to stay unchanged for a moment. Nothing was written"
    )
