"""Files written whole or not at all: a synced temporary file, then a rename."""

from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path

__all__ = ["replace_file", "write_temp"]


def write_temp(path: Path, data: bytes, mode: int | None = None) -> Path:
    """``data`` in a synced temporary file beside ``path``, ready to replace it.

    The temporary file gets ``mode``, else the mode of ``path`` when it exists.
    """
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        if mode is None and path.exists():
            mode = stat.S_IMODE(path.stat().st_mode)
        if mode is not None:
            os.chmod(name, mode)
    except BaseException:
        Path(name).unlink(missing_ok=True)
        raise
    return Path(name)


def replace_file(path: Path, data: bytes, mode: int | None = None) -> None:
    """Write ``path`` atomically: a reader or a crash sees the old file or the
    new one, never a mix. An existing file keeps its mode."""
    path = Path(path)
    temp = write_temp(path, data, mode)
    try:
        os.replace(temp, path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
