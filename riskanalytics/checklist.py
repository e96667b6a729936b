"""Post-incident reviews: one pre-filled Markdown checklist per incident.

A review opens with YAML front matter that people fill in (``status``,
``mitigations_worked``, ``new_risks``) and that later runs read back, then the
incident's facts and the three questions every review answers: was this risk
documented, did mitigations work as expected, what new risks were exposed.

A review file, once written, belongs to the people filling it in: later runs
never overwrite it. When an analyst's decision changes an incident's match
after its review was written, a run changes only the review's ``outcome``,
``risk_id``, ``owner`` and guessed ``mitigation_verdict`` entries and adds a
dated note at the end.
"""

from __future__ import annotations

import logging
import os
import re
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import frontmatter
import pandas as pd
import yaml
from jinja2 import Environment, PackageLoader, StrictUndefined

from riskanalytics._files import replace_file
from riskanalytics._yaml import DuplicateKeyLoader
from riskanalytics.exceptions import InputFormatError
from riskanalytics.match import readable_terms

__all__ = [
    "MITIGATION_ANSWERS",
    "REVIEW_STATUSES",
    "FrontMatterLines",
    "format_duration",
    "names_an_incident",
    "past_due",
    "read_review",
    "render_review",
    "review_status",
    "write_reviews",
]

log = logging.getLogger(__name__)

REVIEW_STATUSES = ("open", "in-review", "done")

#: What a reviewer may answer to "did mitigations work as expected?".
MITIGATION_ANSWERS = ("unknown", "yes", "no", "partly")

_env = Environment(
    loader=PackageLoader("riskanalytics", "templates"),
    undefined=StrictUndefined,
    keep_trailing_newline=True,
    autoescape=False,
)


def _cell(value: object) -> str:
    """Text fit for one Markdown table cell or heading: one line, pipes escaped."""
    return " ".join(str(value).split()).replace("|", "\\|")


_env.filters["cell"] = _cell


def format_duration(minutes: object) -> str:
    """A duration in minutes as ``2 h 05 min``; "unknown" when missing."""
    if minutes is None or pd.isna(minutes):
        return "unknown"
    total = int(round(float(minutes)))
    days, rest = divmod(total, 24 * 60)
    hours, mins = divmod(rest, 60)
    if days:
        return f"{days} d {hours} h {mins:02d} min"
    return f"{hours} h {mins:02d} min" if hours else f"{mins} min"


def _show(value: object, empty: str = "not recorded") -> str:
    if value is None or (not isinstance(value, str | dict | list) and pd.isna(value)):
        return empty
    if isinstance(value, pd.Timestamp):
        return value.strftime("%Y-%m-%d %H:%M UTC")
    text = str(value).strip()
    return text or empty


def render_review(row: pd.Series, *, deadline_days: int, now: datetime) -> str:
    """Render the review Markdown for one reconciliation row."""
    deadline = pd.Timestamp(row["review_deadline"])
    evidence = row.get("evidence") if isinstance(row.get("evidence"), dict) else {}
    shared = readable_terms(
        evidence.get("shared_terms") or [],
        *(row.get(key) for key in ("root_cause", "title", "impact")),
    )
    owned = _owned_values(row)  # a near miss: recorded, but it did not happen
    meta = {
        "incident_id": str(row["incident_id"]),
        "status": "open",
        "deadline": deadline.strftime("%Y-%m-%d"),
        "outcome": owned["outcome"],
        "risk_id": owned["risk_id"],
        "owner": owned["owner"],
        "mitigation_verdict": None
        if pd.isna(row.get("mitigation_verdict"))
        else str(row["mitigation_verdict"]),
        "mitigations_worked": "unknown",
        "new_risks": [],
        "created": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    values = {key: _show(row.get(key)) for key in row.index}
    front = yaml.safe_dump(meta, sort_keys=False, allow_unicode=True)
    # say which keys are the run's and which are the reviewer's
    front = front.replace(
        "\nmitigation_verdict:",
        "\n# the run's guess from the incident text:\nmitigation_verdict:",
        1,
    ).replace(
        "\nmitigations_worked:",
        "\n# your answers: mitigations_worked (yes, no, partly or unknown), new_risks"
        "\n# (one line each; quoted when it holds a colon), and status above\n"
        "mitigations_worked:",
        1,
    )
    values.update(
        front_matter=front,
        title=_show(row.get("title"), str(row["incident_id"])),
        deadline=meta["deadline"],
        deadline_days=deadline_days,
        status=meta["status"],
        owner=meta["owner"],
        duration=format_duration(row.get("duration_minutes")),
        near_miss=bool(row.get("near_miss")),
        escalate=bool(row.get("escalate")),
        outcome=row["outcome"],
        risk_id=meta["risk_id"],
        match_score=f"{float(row.get('match_score') or 0):.1f}",
        shared_terms=", ".join(str(t) for t in shared[:12]),
        candidates=_show(row.get("candidates"), "none"),
    )
    return _env.get_template("review.md.j2").render(**values)


def _write_new(path: Path, text: str) -> bool:
    """Write ``text`` to a new file atomically; False if the file exists."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # readable like any file people share
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(tmp, path)  # fails if a review already exists: never overwrite
        except FileExistsError:
            return False
        return True
    finally:
        os.unlink(tmp)


#: Front-matter keys the tool keeps up to date in an existing review; every
#: other key and the whole body are the people's.
_OWNED_KEYS = ("outcome", "risk_id", "owner")

#: Keys the tool sets again when the owned ones change: its guess at the
#: mitigations was about the first risk.
_FOLLOWING_KEYS = ("mitigation_verdict",)


def _owned_values(row: pd.Series) -> dict[str, str | None]:
    near = row["outcome"] == "realized" and bool(row.get("near_miss")) is True
    verdict = row.get("mitigation_verdict")
    return {
        "outcome": "near-miss" if near else str(row["outcome"]),
        "risk_id": None if pd.isna(row.get("risk_id")) else str(row["risk_id"]),
        "owner": _show(row.get("owner"), "unassigned"),
        "mitigation_verdict": None if pd.isna(verdict) else str(verdict),
    }


def _repoint(path: Path, row: pd.Series, now: datetime) -> bool:
    """Bring an existing review's outcome, risk and owner in line with the
    incident's current match (after an analyst's redirect or rejection).

    Only those front-matter entries change (a value over several lines becomes
    one line; a comment after a one-line value stays), and a dated note is
    added at the end; the answers, the text people wrote, the line endings and
    a byte-order mark stay as they are. False when the review already agrees,
    cannot be read (the run's review check names it), cannot be changed safely
    or cannot be written (a warning says so; the next run tries again).
    """
    try:
        raw = path.read_bytes()
        text = raw.decode("utf-8-sig")
        meta = frontmatter.loads(text).metadata
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return False
    wanted = _owned_values(row)
    keys = _OWNED_KEYS + _FOLLOWING_KEYS
    old = {k: None if meta.get(k) is None else str(meta.get(k)) for k in keys}
    if all(old[k] == wanted[k] for k in _OWNED_KEYS):
        return False
    new_text = _with_owned_values(text, wanted, old, now)
    if new_text is None:
        log.warning(
            "Review %s names %s; its front matter could not be updated safely to "
            "%s: change it by hand",
            path,
            old["risk_id"] or "no risk",
            wanted["risk_id"] or "no risk",
        )
        return False
    bom = "\ufeff" if raw.startswith(b"\xef\xbb\xbf") else ""
    try:
        replace_file(path, (bom + new_text).encode("utf-8"))
    except OSError as exc:
        log.warning("Review %s could not be updated (%s)", path, exc.strerror or exc)
        return False
    log.info(
        "Review %s now names %s (was %s)",
        path,
        wanted["risk_id"] or "no risk",
        old["risk_id"] or "no risk",
    )
    return True


def _with_owned_values(
    text: str, wanted: dict[str, str | None], old: dict[str, str | None], now
) -> str | None:
    """``text`` with its front matter's owned entries set to ``wanted`` and a
    dated note at the end, or None when that cannot be done safely."""
    lines = text.splitlines(keepends=True)
    found = _front_matter_node(lines)
    if found is None:
        return None
    end, root = found
    newline = "\r\n" if lines[0].endswith("\r\n") else "\n"
    spans: dict[str, tuple[int, int, str]] = {}
    for key_node, value_node in root.value:
        key = getattr(key_node, "value", None)
        if key not in wanted or key in spans:
            continue
        first = key_node.start_mark.line
        last = value_node.end_mark.line
        if value_node.end_mark.column == 0 and last > first:
            last -= 1  # a block value ends at the start of the next line
        rest = ""
        if last == first:
            tail = lines[1 + first][value_node.end_mark.column :].rstrip("\r\n")
            rest = tail if re.match(r"\s+#", tail) else ""
        spans[key] = (first, last, rest)
    fresh = list(lines)
    added = []
    for key in _OWNED_KEYS + _FOLLOWING_KEYS:
        if wanted[key] == old[key]:
            continue
        entry = yaml.safe_dump({key: wanted[key]}, allow_unicode=True).rstrip("\n")
        if key in spans:
            first, last, rest = spans[key]
            fresh[1 + first] = entry + rest + newline
            for i in range(first + 1, last + 1):
                fresh[1 + i] = None
        else:
            added.append(entry + newline)
    fresh = [line for line in fresh[:end] if line is not None] + added + fresh[end:]
    body = "".join(fresh)
    if not body.endswith(("\n", "\r")):
        body += newline
    note = (
        f"{newline}> **{now:%Y-%m-%d}:** an analyst's decision changed this incident "
        f"from {old['outcome']} {old['risk_id'] or 'no risk'} (owner {old['owner']}) "
        f"to {wanted['outcome']} {wanted['risk_id'] or 'no risk'} (owner "
        f"{wanted['owner']}). The front matter says so; the text above was written "
        f"for the first match.{newline}"
    )
    result = body + note
    try:
        check = frontmatter.loads(result).metadata
    except yaml.YAMLError:
        return None
    keys = _OWNED_KEYS + _FOLLOWING_KEYS
    got = {k: None if check.get(k) is None else str(check.get(k)) for k in keys}
    return result if got == wanted else None


def write_reviews(
    reconciliation: pd.DataFrame,
    *,
    deadline_days: int,
    copy_to: Path | None = None,
    now: datetime | None = None,
    dry_run: bool = False,
) -> pd.DataFrame:
    """Write one review per incident that has none yet.

    Parameters
    ----------
    reconciliation
        The reconciliation table, with ``review_path`` and ``review_deadline``.
    deadline_days
        Days from resolution to the review deadline, quoted in the review.
    copy_to
        A folder (the run's report folder) that also gets a copy of each review
        written in this run.
    now
        The time of the run, default now (UTC).
    dry_run
        Render but write nothing.

    Returns
    -------
    pandas.DataFrame
        ``incident_id, review_path, written, updated``: ``written`` is False
        for reviews that already existed, kept as people left them except that
        ``updated`` ones now name the incident's current outcome, risk and
        owner (after an analyst's decision changed its match), with a dated
        note at the end.
    """
    now = now or datetime.now(UTC)
    rows = []
    for _, row in reconciliation.iterrows():
        path = Path(row["review_path"])
        text = render_review(row, deadline_days=deadline_days, now=now)
        written = updated = False
        if not dry_run and not path.exists():
            written = _write_new(path, text)
            if written and copy_to is not None:
                _write_new(Path(copy_to) / path.name, text)
        elif not dry_run:
            updated = _repoint(path, row, now)
        rows.append(
            {
                "incident_id": row["incident_id"],
                "review_path": str(path),
                "written": written,
                "updated": updated,
            }
        )
    columns = ["incident_id", "review_path", "written", "updated"]
    result = pd.DataFrame(rows, columns=columns)
    log.info(
        "Reviews: %d written, %d already present (%d brought up to date)",
        int(result["written"].sum()),
        int((~result["written"]).sum()),
        int(result["updated"].sum()),
    )
    return result


def read_review(path: str | Path) -> dict:
    """Read a review's front matter (the answers people filled in).

    Raises
    ------
    InputFormatError
        When the front matter is not valid YAML, lacks ``incident_id``, or
        (in a ``review-<slug>.md`` file) names an incident other than the
        one the file name is for.
    """
    path = Path(path)
    try:
        # a byte-order mark (saved by some editors) is not part of the text
        text = path.read_text(encoding="utf-8-sig")
        post = frontmatter.loads(text)
    except yaml.YAMLError as exc:
        raise InputFormatError(
            f"{path}: front matter is not valid YAML: {exc}"
        ) from None
    except UnicodeDecodeError as exc:
        raise InputFormatError(
            f"{path}: expected UTF-8 text, found byte 0x{exc.object[exc.start]:02x} "
            f"at offset {exc.start}"
        ) from None
    except OSError as exc:
        raise InputFormatError(f"{path}: cannot be read ({exc.strerror})") from None
    meta = dict(post.metadata)
    _refuse_duplicate_keys(path, text)
    at = FrontMatterLines(path)
    if "incident_id" not in meta:
        raise InputFormatError(f"{path}: front matter has no incident_id")
    from riskanalytics.reconcile import legacy_review_filename, review_filename

    incident_id = meta["incident_id"]
    if (
        path.name.startswith("review-")
        and path.suffix == ".md"
        and (
            isinstance(incident_id, list | dict)
            or path.name
            not in {
                review_filename(str(incident_id)),
                legacy_review_filename(str(incident_id)),
            }
        )
    ):
        expected = (
            review_filename(str(incident_id))
            if not isinstance(incident_id, list | dict)
            else "review-<incident id>.md"
        )
        raise InputFormatError(
            f"{path}{at('incident_id')}: incident_id {incident_id!r} is not the "
            f"incident this file name is for "
            f"({path.name.removeprefix('review-').removesuffix('.md')!r}): if the "
            f"file was renamed, name it {expected} again; if the id was changed, "
            "put back the id the review was written with"
        )
    status = str(meta.get("status", "open")).lower()
    if status not in REVIEW_STATUSES:
        raise InputFormatError(
            f"{path}{at('status')}: status {status!r} is not one of "
            f"{', '.join(REVIEW_STATUSES)}"
            + (
                " (YAML reads yes, no, on and off as true or false)"
                if isinstance(meta.get("status"), bool)
                else ""
            )
        )
    meta["status"] = status
    try:
        meta["deadline"] = pd.Timestamp(str(meta.get("deadline")), tz="UTC")
    except (ValueError, TypeError):
        raise InputFormatError(
            f"{path}{at('deadline')}: deadline {meta.get('deadline')!r} is not a "
            "date (YYYY-MM-DD)"
        ) from None
    worked = meta.get("mitigations_worked", "unknown")
    if isinstance(worked, bool):  # YAML reads an unquoted yes/no as a boolean
        worked = "yes" if worked else "no"
    meta["mitigations_worked"] = str(worked).lower()
    if meta["mitigations_worked"] not in MITIGATION_ANSWERS:
        raise InputFormatError(
            f"{path}{at('mitigations_worked')}: mitigations_worked {worked!r} "
            "is not one of "
            f"{', '.join(MITIGATION_ANSWERS)}"
        )
    new_risks = meta.get("new_risks") or []
    if isinstance(new_risks, str):
        new_risks = [new_risks]
    if not isinstance(new_risks, list):
        raise InputFormatError(
            f"{path}{at('new_risks')}: new_risks must be a list of one-line risks"
        )
    for number, risk in enumerate(new_risks, start=1):
        if not isinstance(risk, str | int | float) or isinstance(risk, bool):
            raise InputFormatError(
                f"{path}{at('new_risks', number)}: new_risks item {number} is not "
                "one line of text, found "
                f"{risk!r}; put the risk in quotes when it holds a colon"
            )
    meta["new_risks"] = [str(r).strip() for r in new_risks if str(r).strip()]
    meta["path"] = str(path)
    return meta


def _refuse_duplicate_keys(path: Path, text: str) -> None:
    """InputFormatError naming the line of a front-matter key set twice."""
    lines = text.splitlines(keepends=True)
    end = _front_matter_end(lines)
    if end is None:
        return
    loader = DuplicateKeyLoader("".join(lines[1:end]))
    try:
        loader.get_single_data()
    except yaml.YAMLError:
        return  # the front matter was read already: nothing more to say
    finally:
        loader.dispose()
    if loader.duplicates:
        # the loader counts lines from the one after the opening ---
        line, key, _ = sorted(loader.duplicates)[0]
        raise InputFormatError(
            f"{path}:{line + 1}: {key} is set twice in the front matter; keep one"
        )


def _front_matter_end(lines: list[str]) -> int | None:
    """The line of the front matter's closing ``---``, or None without one."""
    if not lines or lines[0].strip() != "---":
        return None
    return next((i for i in range(1, len(lines)) if lines[i].strip() == "---"), None)


def _front_matter_node(lines: list[str]) -> tuple[int, yaml.MappingNode] | None:
    """The line of the closing ``---`` and the front matter's YAML mapping
    (whose marks count lines from the one after the opening ``---``), or None
    when the text has no readable front matter."""
    end = _front_matter_end(lines)
    if end is None:
        return None
    try:
        root = yaml.compose("".join(lines[1:end]))
    except yaml.YAMLError:
        return None
    return (end, root) if isinstance(root, yaml.MappingNode) else None


def names_an_incident(path: Path) -> bool:
    """Whether a Markdown file's front matter names an ``incident_id`` (a
    review, whatever its name)."""
    try:
        meta = frontmatter.loads(path.read_text(encoding="utf-8-sig")).metadata
    except (OSError, UnicodeDecodeError, yaml.YAMLError, ValueError):
        return False
    return "incident_id" in meta


class FrontMatterLines:
    """Where a key (or an item of its list) sits in a review's front matter,
    as ``":N"`` (line N of the file), or ``""`` when it cannot be told."""

    def __init__(self, path: Path):
        try:
            lines = path.read_text(encoding="utf-8-sig").splitlines(keepends=True)
        except (OSError, UnicodeDecodeError):
            lines = []
        found = _front_matter_node(lines)
        self.root = None if found is None else found[1]

    def __call__(self, key: str, item: int | None = None) -> str:
        if self.root is None:
            return ""
        for name, value in self.root.value:
            if getattr(name, "value", None) != key:
                continue
            node = value
            if item is not None and isinstance(value, yaml.SequenceNode):
                if 0 < item <= len(value.value):
                    node = value.value[item - 1]
            # +2: the opening "---" line, and 1-based lines
            return f":{node.start_mark.line + 2}"
        return ""


def past_due(deadline: pd.Timestamp, now: pd.Timestamp) -> bool:
    """Whether a review due on ``deadline`` (a day) is late at ``now``: it is
    due until the end of that day, UTC."""
    return _days_late(deadline, now) > 0


def _days_late(deadline: pd.Timestamp, now: pd.Timestamp) -> int:
    return max(0, (_utc_day(now) - _utc_day(deadline)).days)


def _utc_day(value) -> pd.Timestamp:
    stamp = pd.Timestamp(value)
    stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp
    return stamp.tz_convert("UTC").normalize()


def review_status(
    reviews_dir: str | Path, *, now: datetime | None = None
) -> pd.DataFrame:
    """Every review in a folder with its status, deadline and whether it is overdue.

    Returns
    -------
    pandas.DataFrame
        ``incident_id, risk_id, owner, status, review_path, review_deadline,
        mitigations_worked, new_risks, overdue, days_overdue``. A review whose
        front matter cannot be read is skipped with a warning naming the file.
    """
    now = pd.Timestamp(now or datetime.now(UTC))
    rows = []
    for path in sorted(Path(reviews_dir).glob("review-*.md")):
        try:
            meta = read_review(path)
        except InputFormatError as exc:
            log.warning("Skipped review: %s", exc)
            continue
        deadline = meta["deadline"]
        late = meta["status"] != "done" and past_due(deadline, now)
        rows.append(
            {
                "incident_id": str(meta["incident_id"]),
                "risk_id": meta.get("risk_id"),
                "owner": meta.get("owner"),
                "status": meta["status"],
                "review_path": str(path),
                "review_deadline": deadline,
                "mitigations_worked": str(meta.get("mitigations_worked", "unknown")),
                "new_risks": list(meta.get("new_risks") or []),
                "overdue": late,
                "days_overdue": _days_late(deadline, now) if late else 0,
            }
        )
    columns = [
        "incident_id",
        "risk_id",
        "owner",
        "status",
        "review_path",
        "review_deadline",
        "mitigations_worked",
        "new_risks",
        "overdue",
        "days_overdue",
    ]
    return pd.DataFrame(rows, columns=columns)
