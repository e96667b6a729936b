"""Give a register without an ID column one, numbering its risks in order.

Reviews and the history refer to risks by id, so a register must have them;
they are never invented during a run. :func:`add_ids` is the explicit step a
person takes once: it inserts an ``ID`` column before the first column of the
risk table (a Markdown pipe table) and numbers the rows ``R-001``, ``R-002``
... in the order they are written. Only the table's lines change; the write is
locked, atomic and backed up like an update.
"""

from __future__ import annotations

import difflib
import logging
from dataclasses import dataclass
from pathlib import Path

from filelock import FileLock, Timeout

from riskanalytics._files import write_temp
from riskanalytics.exceptions import RegisterConflictError, RegisterFormatError
from riskanalytics.register import store
from riskanalytics.register.parse import (
    BOM,
    Table,
    _decode,
    _map_columns,
    _markdown,
    _pipe_tables,
    line_ending,
    parse_register,
    split_lines,
)

__all__ = ["IdsAdded", "add_ids"]

log = logging.getLogger(__name__)


@dataclass
class IdsAdded:
    """What :func:`add_ids` did: the ids given, the diff, and whether it wrote."""

    ids: list[str]
    diff: str
    new_text: str
    written: bool


def _id_less_table(path: Path, lines: list[str], body: str) -> Table:
    tables = _pipe_tables(lines, _markdown().parse(body))
    for table in tables:
        _map_columns(table)
    if any("risk_id" in t.fields and "description" in t.fields for t in tables):
        raise RegisterFormatError(f"{path}: the risk table already has an ID column")
    table = next((t for t in tables if "description" in t.fields), None)
    if table is None:
        raise RegisterFormatError(
            f"{path}:1: no Markdown pipe table with a Risk or Description column "
            "found to add ids to; an HTML table needs its ID column added by hand"
        )
    return table


def _with_cell(line: str, cell: str, padded: bool) -> str:
    ending = line_ending(line)
    content = line[: len(line) - len(ending)]
    stripped = content.lstrip()
    indent = content[: len(content) - len(stripped)]
    if stripped.startswith("|"):
        text = f" {cell} |" if padded else f"{cell}|"
        return indent + "|" + text + stripped[1:] + ending
    return indent + f"{cell} | " + stripped + ending


def add_ids(
    path: str | Path,
    *,
    prefix: str = "R-",
    width: int = 3,
    dry_run: bool = False,
    backup_dir: Path | None = None,
    lock_timeout: float = 60,
) -> IdsAdded:
    """Insert an ID column into a register whose risk table has none.

    Parameters
    ----------
    path : str or Path
        The register.
    prefix : str, optional
        Text before each number.
    width : int, optional
        Digits of each number, zero-padded (``3`` gives ``R-001``).
    dry_run : bool, optional
        Return the change without writing.
    backup_dir : Path, optional
        Where the previous version is kept, as for
        :func:`~riskanalytics.register.apply_update`.
    lock_timeout : float, optional
        Seconds to wait for a running update to finish.

    Returns
    -------
    IdsAdded
        The ids, in row order, and the change as a unified diff.

    Raises
    ------
    RegisterFormatError
        The file has no pipe risk table, or its table already has ids.
    RegisterConflictError
        Another update held the lock for ``lock_timeout`` seconds.
    """
    path = Path(path)
    if path.is_symlink():
        path = path.resolve()
    if dry_run:
        return _plan(path, path.read_bytes(), prefix, width)
    try:
        with FileLock(str(store.lock_path(path)), timeout=lock_timeout):
            data = path.read_bytes()
            result = _plan(path, data, prefix, width)
            temp = write_temp(path, result.new_text.encode("utf-8"))
            try:
                backup = store._backup(path, data, backup_dir)
                store.os.replace(temp, path)
            finally:
                temp.unlink(missing_ok=True)
            store._fsync_dir(path.parent)
    except Timeout:
        raise RegisterConflictError(
            f"{path}: another run holds the update lock {store.lock_path(path)}; "
            f"waited {lock_timeout} s. Nothing was written"
        ) from None
    log.info(
        "added ids %s to %s; previous version kept at %s",
        ", ".join(result.ids),
        path,
        backup,
    )
    result.written = True
    return result


def _plan(path: Path, data: bytes, prefix: str, width: int) -> IdsAdded:
    text = _decode(path, data)
    bom = BOM if text.startswith(BOM) else ""
    body = text[len(bom) :]
    lines = split_lines(body)
    table = _id_less_table(path, lines, body)

    header = lines[table.header_line]
    padded = " |" in header or "| " in header
    ids = []
    for values in table.values:
        if any(values):
            ids.append(f"{prefix}{len(ids) + 1:0{width}d}")
    size = max([len("ID"), *map(len, ids)]) if padded else 0
    fresh = list(lines)
    fresh[table.header_line] = _with_cell(header, "ID".ljust(size), padded)
    if table.delimiter_line is not None:
        delimiter = lines[table.delimiter_line]
        # a delimiter row is often written without spaces ("|---|") in a padded
        # table: keep its own style, as wide as the header's cell
        spaced = " |" in delimiter or "| " in delimiter
        dashes = max(3, size + (2 if padded and not spaced else 0))
        fresh[table.delimiter_line] = _with_cell(delimiter, "-" * dashes, spaced)
    numbers = iter(ids)
    for row, values in zip(table.rows, table.values, strict=True):
        cell = next(numbers) if any(values) else ""
        fresh[row] = _with_cell(lines[row], cell.ljust(size), padded)

    new_text = bom + "".join(fresh)
    register = parse_register(path, new_text)  # never write what cannot be read
    if list(register.risks["risk_id"]) != ids:
        raise RegisterFormatError(
            f"{path}:{table.header_line + 1}: adding an ID column did not give a "
            "readable risk table; add the ids by hand"
        )
    diff = "\n".join(
        difflib.unified_diff(
            [x.rstrip("\r\n") for x in lines],
            [x.rstrip("\r\n") for x in fresh],
            fromfile=f"{path} (before)",
            tofile=f"{path} (after)",
            lineterm="",
        )
    )
    return IdsAdded(ids=ids, diff=diff, new_text=new_text, written=False)
