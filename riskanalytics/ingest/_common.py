"""Shared pieces of the incident readers: the read context, time and text helpers.

Every reader has the signature ``reader(path, ctx) -> list[dict] | AlertBatch``:
it reads one file and returns one dict per incident (keys from the incident
columns, plus private keys starting with ``_`` that the merge step uses), or,
for alert sources, a batch of alert rows that are grouped into incidents once
every file has been read.
"""

from __future__ import annotations

import csv
import hashlib
import json
import logging
import re
import threading
import warnings
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import pandas as pd
from dateutil import parser as dateparser

from riskanalytics.exceptions import InputFormatError
from riskanalytics.schema import INCIDENT_COLUMNS, INCIDENT_EXTRA_COLUMNS, TRIGGERS

__all__ = [
    "AlertBatch",
    "ReadContext",
    "RecordError",
    "SkippedRecord",
    "CSV_FIELD_LIMIT",
    "encoding_hint",
    "first",
    "incident_frame",
    "iter_csv_rows",
    "load_json",
    "normalize_id",
    "parse_duration",
    "parse_time",
    "read_text",
    "slug",
    "stable_hash",
    "text_or_none",
]

log = logging.getLogger(__name__)

ALL_COLUMNS = INCIDENT_COLUMNS + INCIDENT_EXTRA_COLUMNS
TIME_COLUMNS = ("started_at", "resolved_at")
_STRING_COLUMNS = [
    c for c in ALL_COLUMNS if c not in TIME_COLUMNS + ("near_miss", "alert_count")
]


@dataclass
class SkippedRecord:
    """A record that was left out: the file, where in it, and why."""

    file: str
    record: str
    reason: str


class RecordError(ValueError):
    """One record of a file is unusable; the file as a whole may still be read."""


@dataclass
class AlertBatch:
    """Alerts read from one file, one row per alert, grouped into incidents later."""

    frame: pd.DataFrame


@dataclass
class ReadContext:
    """Options of one :func:`read_incidents` call and the records skipped so far."""

    strict: bool = False
    default_timezone: str = "UTC"
    grouping_by: tuple[str, ...] = ("alertname", "service")
    grouping_window_minutes: float = 60.0
    skipped: list[SkippedRecord] = field(default_factory=list)
    quiet: bool = False

    def __post_init__(self) -> None:
        try:
            self.tz = ZoneInfo(self.default_timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise InputFormatError(
                f"default_timezone: expected an IANA zone name such as "
                f"'Europe/London', found {self.default_timezone!r}"
            ) from None

    def skip(self, path: Path | str, record: Any, reason: str | Exception) -> None:
        """Record a bad record: WARNING log, or InputFormatError when strict.

        ``reason`` may be the exception that made the record bad; a KeyError
        reads "missing 'key'" rather than the bare key.
        """
        if isinstance(reason, KeyError) and reason.args:
            reason = f"missing {reason.args[0]!r}"
        reason = str(reason)
        message = f"{path}: record {record}: {reason}"
        if self.strict:
            raise InputFormatError(message)
        if not self.quiet:
            log.warning("Skipped %s", message)
        self.skipped.append(SkippedRecord(str(path), str(record), reason))


#: Other names manual reports and ticket exports give the incident columns
#: (keys lower-cased, spaces and hyphens as ``_``). A column already named as
#: the contract says wins over an alias.
REPORT_COLUMN_ALIASES = {
    "incident_id": (
        "id",
        "incident",
        "incident_number",
        "number",
        "ticket",
        "ticket_id",
        "key",
        "issue_key",
        "reference",
        "ref",
    ),
    "title": ("summary", "short_description", "subject", "headline"),
    "root_cause": ("cause", "root_cause_analysis", "rca", "reason"),
    "impact": ("effect", "customer_impact", "business_impact", "consequence"),
    "started_at": (
        "opened",
        "opened_at",
        "created",
        "created_at",
        "start",
        "start_time",
        "started",
        "detected_at",
    ),
    "resolved_at": (
        "closed",
        "closed_at",
        "resolved",
        "end",
        "end_time",
        "ended_at",
        "fixed_at",
    ),
    "severity": ("priority", "sev", "urgency"),
    "service": ("component", "system", "application", "app", "configuration_item"),
    "recovery_actions": ("resolution", "actions", "remediation", "workaround", "fix"),
}
_ALIAS_OF = {
    alias: column for column, names in REPORT_COLUMN_ALIASES.items() for alias in names
}


def _normal_key(name: object) -> str:
    return str(name).strip().lower().replace(" ", "_").replace("-", "_")


def report_key(name: object) -> str:
    """A report column's name as the contract spells it, or normalised."""
    key = _normal_key(name)
    return _ALIAS_OF.get(key, key)


def canonical_report(row: dict) -> dict:
    """The row with its keys as the contract names them. A column named as the
    contract says wins over its other names, and of those the first in
    :data:`REPORT_COLUMN_ALIASES` wins ("opened" over "created")."""
    out: dict = {}
    aliased: dict[str, dict[str, Any]] = {}
    for name, value in row.items():
        key = _normal_key(name)
        if key in _ALIAS_OF:
            aliased.setdefault(_ALIAS_OF[key], {})[key] = value
        else:
            out[key] = value
    for column, values in aliased.items():
        if column not in out:
            first = next(a for a in REPORT_COLUMN_ALIASES[column] if a in values)
            out[column] = values[first]
    return out


def read_text(path: Path) -> str:
    """The file's text as UTF-8 (a BOM is dropped); InputFormatError otherwise."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise InputFormatError(f"{path}: file not found") from None
    except OSError as exc:
        raise InputFormatError(f"{path}: cannot be read ({exc.strerror})") from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputFormatError(
            f"{path}: expected UTF-8 text, found byte 0x{data[exc.start]:02x} "
            f"at offset {exc.start}{encoding_hint(data)}"
        ) from None


def encoding_hint(data: bytes) -> str:
    """A hint for a message about bytes that are not UTF-8, or ``""``."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return " (the file is UTF-16: save it as UTF-8)"
    return ""


def load_json(path: Path, text: str | None = None) -> Any:
    """Parse a whole file as JSON; InputFormatError naming line and column."""
    if text is None:
        text = read_text(path)
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputFormatError(
            f"{path}: line {exc.lineno} column {exc.colno}: expected JSON, {exc.msg}"
        ) from None
    except RecursionError:
        raise InputFormatError(f"{path}: JSON nested too deeply") from None
    except ValueError as exc:  # a number too long to convert, say
        reason = str(exc).split(";")[0]
        raise InputFormatError(f"{path}: expected JSON, {reason}") from None


def iter_json_lines(path: Path, ctx: ReadContext) -> Iterator[tuple[int, Any]]:
    """Yield ``(line number, value)`` per non-blank line; bad lines are skipped."""
    try:
        handle = path.open(encoding="utf-8-sig")
    except OSError as exc:
        raise InputFormatError(f"{path}: cannot be read ({exc.strerror})") from None
    with handle:
        try:
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                try:
                    yield number, json.loads(line)
                except (ValueError, RecursionError) as exc:
                    ctx.skip(path, f"line {number}", f"expected JSON: {exc}")
        except UnicodeDecodeError as exc:
            raise InputFormatError(
                f"{path}: expected UTF-8 text, found byte 0x{exc.object[exc.start]:02x}"
            ) from None


def is_json_lines(text: str) -> bool:
    """True when the text holds more than one JSON value, one per line.

    The first line decides: when it is a whole JSON value and more lines
    follow, the text cannot be one JSON document, so it is read line by line
    and a broken later line (a cut last record) is one bad record.
    """
    lines = [line for line in text.splitlines() if line.strip()]
    if len(lines) < 2:
        return False
    try:
        json.loads(lines[0])
    except (ValueError, RecursionError):
        return False
    return True


def sniff_json_lines(path: Path, size: int = 1 << 20) -> bool:
    """True when the file starts with two JSON values on separate lines.

    Only the first ``size`` characters are read, so large files are not loaded.
    """
    try:
        with path.open(encoding="utf-8-sig", errors="replace") as handle:
            head = handle.read(size)
    except OSError as exc:
        raise InputFormatError(f"{path}: cannot be read ({exc.strerror})") from None
    lines = head.splitlines()
    if len(head) == size and lines:
        lines = lines[:-1]
    return is_json_lines("\n".join(lines[:50]))


def read_json_records(path: Path, ctx: ReadContext) -> Iterator[tuple[str, Any]]:
    """Yield ``(record label, value)`` from a JSON document or a JSON lines file."""
    if sniff_json_lines(path):
        for number, value in iter_json_lines(path, ctx):
            yield f"line {number}", value
        return
    yield "document", load_json(path)


# --- CSV ----------------------------------------------------------------------

#: Largest CSV cell read, in characters: a postmortem's root cause can be long.
CSV_FIELD_LIMIT = 16 * 1024 * 1024

_field_limit_lock = threading.Lock()
_field_limit_users = 0
_field_limit_before = csv.field_size_limit()


@contextmanager
def _csv_field_limit() -> Iterator[None]:
    """Raise the csv module's (process-wide) cell limit while a file is read."""
    global _field_limit_users, _field_limit_before
    with _field_limit_lock:
        if _field_limit_users == 0:
            _field_limit_before = csv.field_size_limit(
                max(CSV_FIELD_LIMIT, csv.field_size_limit())
            )
        _field_limit_users += 1
    try:
        yield
    finally:
        with _field_limit_lock:
            _field_limit_users -= 1
            if _field_limit_users == 0:
                csv.field_size_limit(_field_limit_before)


def iter_csv_rows(
    path: Path | str, lines: Iterable[str], **options: Any
) -> Iterator[tuple[int, list[str]]]:
    """Yield ``(line where the record starts, cells)`` for each non-blank record.

    A record whose quoted cells span lines is named by its first line. Cells
    up to :data:`CSV_FIELD_LIMIT` characters are read.

    Raises
    ------
    InputFormatError
        When the text is not CSV, naming the line where the bad record starts.
    """
    with _csv_field_limit():
        reader = csv.reader(lines, **options)
        end = 0  # the last line of the previous record
        while True:
            try:
                row = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                raise InputFormatError(
                    f"{path}: line {end + 1}: not CSV ({exc})"
                ) from None
            start, end = end + 1, reader.line_num
            if row:
                yield start, row


# --- values -------------------------------------------------------------------

_EMPTY_TEXT = {"", "n/a", "none", "null", "-", "tbc", "unknown"}


def text_or_none(value: Any) -> str | None:
    """Strip a value to text; empty, placeholder or non-text values give None."""
    if value is None:
        return None
    if isinstance(value, float) and value != value:
        return None
    if isinstance(value, list | tuple):
        parts = [text_or_none(v) for v in value]
        joined = "; ".join(p for p in parts if p)
        return joined or None
    if isinstance(value, dict):
        return None
    text = str(value).strip()
    if text.lower() in _EMPTY_TEXT:
        return None
    return text


def normalize_id(value: Any) -> str | None:
    """An incident id stripped, each run of whitespace (newlines too) one space."""
    if value is None or (isinstance(value, float) and value != value):
        return None
    return " ".join(str(value).split()) or None


def first(*values: Any) -> Any:
    """The first value that is not None/empty."""
    for value in values:
        if text_or_none(value) is not None:
            return value
    return None


def slug(text: str | None, words: int = 6) -> str:
    """Lower-case ASCII words joined by ``-``: a readable, stable id part."""
    parts = re.findall(r"[a-z0-9]+", (text or "").lower())
    return "-".join(parts[:words]) or "incident"


def stable_hash(*parts: Any, length: int = 10) -> str:
    """A short hex digest of the parts, the same on every run and machine."""
    data = "\x1f".join("" if p is None else str(p) for p in parts)
    return hashlib.sha1(data.encode("utf-8")).hexdigest()[:length]


# --- times --------------------------------------------------------------------

_EPOCH = pd.Timestamp(0, tz="UTC")
_NOT_ENDED = re.compile(r"^0001-01-01")
_HAS_ZONE = re.compile(r"(Z|[+-]\d\d:?\d\d|\b[A-Z]{3,4})$")
_ISO = re.compile(
    r"^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?)?(Z|[+-]\d\d:?\d\d)?$"
)
_US_DATE = re.compile(r"^(\d{1,2})/(\d{1,2})/(\d{4})(.*)$")


def parse_time(value: Any, tz: ZoneInfo | str = "UTC") -> pd.Timestamp | None:
    """Parse one time into a UTC Timestamp; None when missing or "not ended".

    Accepts ISO-8601 (any offset, nanoseconds), epoch seconds, milliseconds,
    microseconds or 19-digit nanoseconds (int or digit string, told apart by
    size), ``M/D/YYYY`` (US order), C ``ctime`` (``Fri Sep  2 22:04:05 1977``)
    and other forms dateutil reads. Times without a zone are in ``tz``.
    (Alertmanager's "not ended", ``0001-01-01T00:00:00Z``, is read by the alert
    reader itself: here it is out of range like any other year before 1900.)

    Raises
    ------
    ValueError
        When the value is present but is no time, or is outside 1900-2200.
    """
    if isinstance(tz, str):
        tz = ZoneInfo(tz)
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, float) and value != value:
        return None
    if isinstance(value, pd.Timestamp | datetime):
        stamp = pd.Timestamp(value)
        return _localize(stamp, tz)
    if isinstance(value, int | float):
        return _from_epoch(value)
    text = str(value).strip()
    if not text or text.lower() in _EMPTY_TEXT:
        return None
    if re.fullmatch(r"\d{9,19}(\.\d+)?", text):
        return _from_epoch(float(text) if "." in text else int(text))
    us = _US_DATE.match(text)
    if us:
        month, day, year, rest = us.groups()
        text = f"{year}-{int(month):02d}-{int(day):02d}{rest}"
    try:
        stamp = pd.Timestamp(text) if _ISO.match(text) else None
    except ValueError as exc:
        # ISO-shaped but impossible (an offset of 24 h or more, day 30 of
        # February): dateutil would read some of them as something else
        raise ValueError(f"expected a date and time, found {value!r}") from exc
    if stamp is None:
        try:
            with warnings.catch_warnings():
                # a zone name dateutil does not know would silently be dropped
                warnings.simplefilter("error", dateparser.UnknownTimezoneWarning)
                stamp = pd.Timestamp(dateparser.parse(text, tzinfos=_ZONE_NAMES))
        except dateparser.UnknownTimezoneWarning as exc:
            raise ValueError(
                f"expected a date and time with a known zone, found {value!r}"
            ) from exc
        except (ValueError, OverflowError, TypeError) as exc:
            raise ValueError(f"expected a date and time, found {value!r}") from exc
    return _localize(stamp, tz)


#: Zone abbreviations that name one offset; others (IST, ...) are refused.
_ZONE_NAMES = {
    name: offset * 3600
    for name, offset in {
        "EST": -5,
        "EDT": -4,
        "CST": -6,
        "CDT": -5,
        "MST": -7,
        "MDT": -6,
        "PST": -8,
        "PDT": -7,
        "CET": 1,
        "CEST": 2,
        "BST": 1,
        "JST": 9,
    }.items()
}


def _from_epoch(number: float) -> pd.Timestamp:
    size = abs(number)
    if size >= 1e17:
        unit = "ns"
    elif size >= 1e14:
        unit = "us"
    elif size >= 1e11:
        unit = "ms"
    else:
        unit = "s"
    try:
        stamp = pd.Timestamp(number, unit=unit, tz="UTC")
    except (OverflowError, ValueError, pd.errors.OutOfBoundsDatetime) as exc:
        raise ValueError(f"epoch time {number!r} is out of range") from exc
    return _localize(stamp, ZoneInfo("UTC"))


_EARLIEST = pd.Timestamp("1900-01-01", tz="UTC")
_LATEST = pd.Timestamp("2200-01-01", tz="UTC")


def _localize(stamp: pd.Timestamp, tz: ZoneInfo) -> pd.Timestamp:
    outside = ValueError(f"time {stamp} is outside 1900-2200")
    if stamp.tzinfo is None:
        if not _EARLIEST.tz_localize(None) - pd.Timedelta(days=1) <= stamp:
            raise outside
        if not stamp <= _LATEST.tz_localize(None) + pd.Timedelta(days=1):
            raise outside  # year 9999 cannot even be localized
        if stamp.tz_localize(tz, ambiguous=False, nonexistent="NaT") is pd.NaT:
            log.warning(
                "%s does not exist in %s (the clocks went forward): read as the "
                "first time after the change",
                stamp,
                tz,
            )
        stamp = stamp.tz_localize(tz, ambiguous=False, nonexistent="shift_forward")
    if not _EARLIEST <= stamp <= _LATEST:
        raise outside
    return stamp.tz_convert("UTC")


def parse_times(values: pd.Series, tz: ZoneInfo) -> pd.Series:
    """Vectorised :func:`parse_time` for ISO-8601 strings; bad values become NaT."""
    text = values.astype("string").str.strip()
    text = text.mask(text.str.match(_NOT_ENDED.pattern).fillna(False))
    zoned = text.str.contains(r"(?:Z|[+-]\d\d:?\d\d)$", regex=True).fillna(False)
    out = pd.to_datetime(text.where(zoned), utc=True, format="ISO8601", errors="coerce")
    naive = text.notna() & ~zoned
    if naive.any():
        local = pd.to_datetime(text[naive], format="ISO8601", errors="coerce")
        out[naive] = local.dt.tz_localize(
            tz, ambiguous="NaT", nonexistent="shift_forward"
        ).dt.tz_convert("UTC")
    return out.astype("datetime64[ns, UTC]")


_DURATION_PART = re.compile(
    r"(\d+(?:\.\d+)?)\s*(d|days?|h|hrs?|hours?|m|mins?|minutes?|s|secs?|seconds?)\b",
    re.IGNORECASE,
)


def parse_duration(text: Any) -> pd.Timedelta | None:
    """Parse ``2d 1h 29m``, ``0h 07m``, ``45 minutes`` or plain minutes; else None."""
    if text is None:
        return None
    if isinstance(text, int | float) and not isinstance(text, bool):
        return None if text != text else pd.Timedelta(minutes=float(text))
    source = str(text).strip()
    if re.fullmatch(r"\d+(\.\d+)?", source):
        return pd.Timedelta(minutes=float(source))
    parts = _DURATION_PART.findall(source.split("(")[0])
    if not parts:
        return None
    total = timedelta()
    for number, unit in parts:
        key = unit[0].lower()
        amount = float(number)
        total += {
            "d": timedelta(days=amount),
            "h": timedelta(hours=amount),
            "m": timedelta(minutes=amount),
            "s": timedelta(seconds=amount),
        }[key]
    return pd.Timedelta(total)


# --- frames -------------------------------------------------------------------


def incident_frame(records: list[dict[str, Any]]) -> pd.DataFrame:
    """Build the incidents table from record dicts, with the contract dtypes."""
    frame = (
        pd.DataFrame.from_records(records, columns=ALL_COLUMNS)
        if records
        else (pd.DataFrame({c: [] for c in ALL_COLUMNS}))
    )
    return normalize_frame(frame)


def normalize_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """Give a frame exactly the incident columns, in order, with their dtypes."""
    frame = frame.copy()
    for column in ALL_COLUMNS:
        if column not in frame:
            frame[column] = None
    for column in TIME_COLUMNS:
        frame[column] = pd.to_datetime(frame[column], utc=True).astype(
            "datetime64[ns, UTC]"
        )
    for column in _STRING_COLUMNS:
        values = frame[column].astype("string").str.strip()
        frame[column] = values.mask(values == "")
    # every reader's ids pass here: "X|Y\nZ" and "X|Y Z" are one incident
    frame["incident_id"] = frame["incident_id"].str.replace(r"\s+", " ", regex=True)
    frame["near_miss"] = [v is True or v == 1 for v in frame["near_miss"].tolist()]
    frame["alert_count"] = pd.array(frame["alert_count"], dtype="Int64")
    bad = frame["trigger"].notna() & ~frame["trigger"].isin(TRIGGERS)
    frame.loc[bad, "trigger"] = "manual"
    return frame[ALL_COLUMNS].reset_index(drop=True)
