"""Plan a register update: realized risks, new risks and the history rows.

An update changes only what it must, working on the raw lines of the file:

* the Status cell of a realized risk becomes ``Realized`` (padding kept as far
  as the new word allows); without a Status column the realization is
  recorded in the history only;
* a new risk is appended as a row of the risk table, with the next id of the
  file's own scheme, the table's column order, cell style and line ending;
* one row per event is appended to the ``## Risk history`` table, which is
  created at the end of the file when missing.

Nothing is deleted, owners are never changed, and an event already in the
history (the same risk realized by the same incident, or a risk already
created for an incident) is not recorded again.
"""

from __future__ import annotations

import difflib
import html
import logging
import re
from dataclasses import dataclass, field
from datetime import datetime

from riskanalytics.exceptions import RegisterConflictError
from riskanalytics.register.parse import (
    BOM,
    HISTORY_COLUMNS,
    HISTORY_HEADERS,
    HISTORY_HEADING,
    Register,
    Table,
    cell_spans,
    line_ending,
    next_ids,
    split_lines,
)

__all__ = [
    "REALIZED_STATUS",
    "NEW_STATUS",
    "NewRisk",
    "Realization",
    "RegisterUpdate",
    "plan_update",
]

log = logging.getLogger(__name__)

#: Status written into the Status cell of a realized risk.
REALIZED_STATUS = "Realized"
#: Status of a risk created from an incident.
NEW_STATUS = "Open"


@dataclass
class Realization:
    """An incident that realized a risk already in the register.

    ``match_score`` is on the package's 0-100 scale; ``mitigation_verdict`` is
    one of ``worked``, ``failed``, ``unknown``; ``review_link`` is the review
    file's path relative to the register's folder.
    """

    risk_id: str
    incident_id: str
    date: datetime | None
    source: str
    match_score: float | None
    mitigation_verdict: str
    review_link: str = ""
    #: ``realized`` when matching found it; ``reviewed`` when a filled-in review
    #: gives the people's verdict on the mitigations (no Status change).
    event: str = "realized"


@dataclass
class NewRisk:
    """A risk no register row predicted, to be added from an incident."""

    incident_id: str
    description: str
    category: str | None
    likelihood: str | None
    impact: str | None
    owner: str
    mitigations: str | None
    source: str
    date: datetime | None
    match_score: float | None
    review_link: str = ""


@dataclass
class RegisterUpdate:
    """The change to a register: its text before and after, and what it holds.

    ``realized`` and ``created`` (incident id to new risk id) list what this
    update applies; ``already_recorded`` the incident ids skipped because the
    history already has them, with ``existing`` giving the risk id a skipped
    new risk was created under earlier.
    """

    old_text: str
    new_text: str
    diff: str
    realized: list[Realization]
    created: dict[str, str]
    already_recorded: list[str]
    changed: bool
    existing: dict[str, str] = field(default_factory=dict)
    path: str = ""


# --- cells and rows ------------------------------------------------------------


def escape_cell(value: object) -> str:
    """Text safe for one pipe-table cell: one line, pipes escaped."""
    if value is None:
        return ""
    text = re.sub(r"[\r\n]+", " ", str(value)).strip()
    text = text.replace("|", "\\|")
    if text.endswith("\\"):
        text += " "
    return text


def _content(line: str) -> str:
    return line[: len(line) - len(line_ending(line))]


def _replace_cell(line: str, span: tuple[int, int], value: str, fallback: str):
    """``line`` with one cell's text replaced, its padding kept where it fits."""
    start, end = span
    raw = line[start:end]
    if not raw.strip():
        raw = fallback if fallback.strip() else " x "
    lead = raw[: len(raw) - len(raw.lstrip())]
    trail = raw[len(raw.rstrip()) :]
    width = end - start
    cell = lead + value
    cell += " " * max(width - len(cell), 1 if trail else 0)
    return line[:start] + cell + line[end:]


class _RowStyle:
    """How the rows of one pipe table are written, read off an existing row."""

    def __init__(self, table: Table, lines: list[str]):
        template = lines[table.rows[-1] if table.rows else table.header_line]
        content = _content(template)
        spans = cell_spans(content)
        stripped = content.strip()
        self.indent = content[: len(content) - len(content.lstrip())]
        self.lead_pipe = stripped.startswith("|")
        self.trail_pipe = stripped.endswith("|") and not stripped.endswith("\\|")
        raws = [content[a:b] for a, b in spans]
        spaced = [r for r in raws if r.strip()]
        self.space = (
            " "
            if not spaced or sum(r.startswith(" ") for r in spaced) * 2 >= len(spaced)
            else ""
        )
        self.widths: list[int] | None = None
        row_lines = [table.header_line, *table.rows]
        if table.delimiter_line is not None:
            row_lines.append(table.delimiter_line)
        widths = {
            tuple(b - a for a, b in cell_spans(_content(lines[i]))) for i in row_lines
        }
        if len(widths) == 1 and len(row_lines) > 2:
            self.widths = list(widths.pop())

    def render(self, values: list[str], ending: str) -> str:
        cells = []
        for i, value in enumerate(values):
            lead = self.space
            if i == 0 and not self.lead_pipe:
                lead = ""
            trail = self.space
            if i == len(values) - 1 and not self.trail_pipe:
                trail = ""
            cell = lead + value + trail
            if self.widths and len(cell) < self.widths[i]:
                cell = lead + value.ljust(self.widths[i] - len(lead) - len(trail))
                cell += trail
            cells.append(cell)
        line = self.indent + ("|" if self.lead_pipe else "") + "|".join(cells)
        return line + ("|" if self.trail_pipe else "") + ending


def _html_row(values: list[str], indent: str, ending: str) -> list[str]:
    cells = [f"{indent}<td>{html.escape(v, quote=False)}</td>{ending}" for v in values]
    return [f"{indent}<tr>{ending}", *cells, f"{indent}</tr>{ending}"]


def _short_title(text: str, limit: int = 60) -> str:
    text = re.sub(r"\s+", " ", text).strip()
    if len(text) <= limit:
        return text
    cut = text[:limit].rsplit(" ", 1)[0]
    return cut.rstrip(",;:.") + "…"


def _date_text(value) -> str:
    if value is None or value != value:  # None, NaT
        return ""
    try:
        return value.strftime("%Y-%m-%d")
    except (AttributeError, ValueError):
        return str(value)


def _review_cell(link: str) -> str:
    if not link:
        return ""
    target = f"<{link}>" if re.search(r"[\s()<>]", link) else link
    return f"[review]({target})"


def _score_text(score) -> str:
    try:
        value = float(score)
    except (TypeError, ValueError):
        return ""
    return "" if value != value else f"{value:.1f}"


# --- planning -----------------------------------------------------------------


def _dominant_ending(lines: list[str]) -> str:
    endings = [line_ending(x) for x in lines if line_ending(x)]
    return max(set(endings), key=endings.count) if endings else "\n"


def plan_update(
    register: Register,
    realizations,
    new_risks,
    *,
    run_id: str = "",
) -> RegisterUpdate:
    """Compute the change that records realized and new risks, writing nothing.

    Parameters
    ----------
    register : Register
        The register as read by :func:`~riskanalytics.register.read_register`.
    realizations : iterable of Realization
        Risks realized by incidents. A risk id may also be one this update
        creates (as named in ``created``).
    new_risks : iterable of NewRisk
        Risks to add, one per incident.
    run_id : str, optional
        Written into the ``Run`` column of each history row.

    Returns
    -------
    RegisterUpdate
        The new text, a unified diff, and what was applied or skipped.
        ``created`` names the id each new risk gets.

    Raises
    ------
    RegisterConflictError
        A realization names a risk that is not in the register.
    """
    body = register.body
    bom = BOM if register.text.startswith(BOM) else ""
    lines = split_lines(body)
    ending = _dominant_ending(lines)
    table = register.table
    history = register.history

    realized_before = _recorded_keys(history)
    created_before, withdrawn_created = _creations(history)

    created: dict[str, str] = {}
    existing: dict[str, str] = {}
    already: list[str] = []
    new_rows: dict[str, dict[str, str]] = {}
    events: list[dict[str, str]] = []
    ids = next_ids(register)

    # New risks first, so that a realization may name a risk created here.
    row_ids = set(register.risks["risk_id"])
    for risk in new_risks:
        if risk.incident_id in created_before:
            already.append(risk.incident_id)
            existing[risk.incident_id] = created_before[risk.incident_id]
            continue
        if risk.incident_id in created:
            continue
        again = withdrawn_created.get(risk.incident_id)
        if again in row_ids:
            # the risk made from this incident, withdrawn by an analyst and
            # named a new risk again: it is recorded as created once more
            created[risk.incident_id] = again
            events.append(_created_event(risk, again, run_id))
            continue
        risk_id = next(ids)
        created[risk.incident_id] = risk_id
        new_rows[risk_id] = {
            "risk_id": risk_id,
            "description": risk.description,
            "title": _short_title(risk.description),
            "category": risk.category or "",
            "likelihood": risk.likelihood or "",
            "impact": risk.impact or "",
            "owner": risk.owner or "",
            "mitigations": risk.mitigations or "",
            "status": NEW_STATUS,
        }
        events.append(_created_event(risk, risk_id, run_id))

    # Realizations: the Status cell and a history row each.
    row_of = dict(zip(register.risks["risk_id"], register.risks["line"], strict=True))
    status_col = table.fields.get("status")
    edits: dict[int, str] = {}
    realized: list[Realization] = []
    seen = set()
    for event in realizations:
        key = (event.risk_id, event.incident_id, event.event)
        if key in realized_before:
            already.append(event.incident_id)
            continue
        if key in seen:
            continue
        seen.add(key)
        if event.event != "realized" and (
            event.risk_id in new_rows or event.risk_id in row_of
        ):
            pass  # a review's verdict: history only, the Status already says it
        elif event.risk_id in new_rows:
            new_rows[event.risk_id]["status"] = REALIZED_STATUS
        elif event.risk_id in row_of:
            index = int(row_of[event.risk_id]) - 1
            if status_col is not None and table.kind == "html":
                log.warning(
                    "%s: the Status cell of %s is in an HTML table and is left as "
                    "it is; the realization is recorded in the history",
                    register.path,
                    event.risk_id,
                )
            elif status_col is not None:
                position = table.rows.index(index)
                current = table.values[position][status_col]
                # a second incident realizing the same risk in this run finds
                # the cell already edited: the spans are those of the old text
                if (
                    current.strip().lower() != REALIZED_STATUS.lower()
                    and index not in edits
                ):
                    line = edits.get(index, lines[index])
                    header = _content(lines[table.header_line])
                    fallback_span = cell_spans(header)[status_col]
                    fallback = header[fallback_span[0] : fallback_span[1]]
                    edits[index] = _replace_cell(
                        line,
                        table.spans[position][status_col],
                        escape_cell(REALIZED_STATUS),
                        fallback,
                    )
        else:
            raise RegisterConflictError(
                f"{register.path}: incident {event.incident_id} realizes risk "
                f"{event.risk_id!r}, which is not in the register (expected one of "
                f"{', '.join(list(row_of)[:5])}{' ...' if len(row_of) > 5 else ''})"
            )
        realized.append(event)
        events.append(
            {
                "date": _date_text(event.date),
                "risk_id": event.risk_id,
                "event": event.event,
                "incident_id": event.incident_id,
                "source": event.source or "",
                "match_score": _score_text(event.match_score),
                "mitigation_verdict": event.mitigation_verdict or "",
                "review": _review_cell(event.review_link),
                "run_id": run_id,
            }
        )

    for index, line in edits.items():
        lines[index] = line
    # Insert from the bottom up; at one place the history goes in first, so
    # that new risk rows land right under their table, above it.
    insertions: list[tuple[int, int, list[str]]] = []
    if new_rows:
        index, block = _risk_rows(register, lines, new_rows, ending)
        insertions.append((index, 0, block))
    if events:
        # stable: same-day order is kept, but a withdrawal comes before what
        # replaces it (a new risk row is planned first)
        events.sort(key=lambda e: (e["date"], e["event"] != "withdrawn"))
        index, block = _history_rows(register, lines, events, ending)
        insertions.append((index, 1, block))
    for index, _, block in sorted(insertions, reverse=True):
        lines[index:index] = block

    new_text = bom + "".join(lines)
    old_lines = [_content(x) for x in split_lines(body)]
    diff = "\n".join(
        difflib.unified_diff(
            old_lines,
            [_content(x) for x in lines],
            fromfile=f"{register.path} (before)",
            tofile=f"{register.path} (after)",
            lineterm="",
        )
    )
    already = list(dict.fromkeys(already))
    update = RegisterUpdate(
        old_text=register.text,
        new_text=new_text,
        diff=diff,
        realized=realized,
        created=created,
        already_recorded=already,
        changed=new_text != register.text,
        existing=existing,
        path=str(register.path),
    )
    log.info(
        "planned register update of %s: %d realized, %d created, %d already recorded",
        register.path,
        len(realized),
        len(created),
        len(already),
    )
    return update


def _created_event(risk, risk_id: str, run_id: str) -> dict[str, str]:
    return {
        "date": _date_text(risk.date),
        "risk_id": risk_id,
        "event": "created",
        "incident_id": risk.incident_id,
        "source": risk.source or "",
        "match_score": _score_text(risk.match_score),
        "mitigation_verdict": "",
        "review": _review_cell(risk.review_link),
        "run_id": run_id,
    }


def created_risks(history) -> set[str]:
    """Risks the history says were made from an incident, withdrawn or not:
    they predicted nothing."""
    active, withdrawn = _creations(history)
    return set(active.values()) | set(withdrawn.values())


def _creations(history) -> tuple[dict[str, str], dict[str, str]]:
    """Incident to the risk made from it, as the history stands, and incident
    to such a risk a later ``withdrawn`` row took back (in file order)."""
    active: dict[str, str] = {}
    withdrawn: dict[str, str] = {}
    for r, i, e in zip(
        history["risk_id"], history["incident_id"], history["event"], strict=True
    ):
        if e == "created":
            active[i] = r
            withdrawn.pop(i, None)
        elif e == "withdrawn" and active.get(i) == r:
            withdrawn[i] = active.pop(i)
    return active, withdrawn


def _recorded_keys(history) -> set[tuple[str, str, str]]:
    """(risk, incident, event) the history records and has not withdrawn since.

    Rows are read in file order: a ``withdrawn`` row takes back what came before
    it for that risk and incident, so a later decision naming the risk again is
    recorded again; a realization after it takes back the withdrawal.
    """
    keys: set[tuple[str, str, str]] = set()
    for r, i, e in zip(
        history["risk_id"], history["incident_id"], history["event"], strict=True
    ):
        if e == "created":
            continue
        if e == "withdrawn":
            keys = {k for k in keys if k[:2] != (r, i)}
        else:
            keys.discard((r, i, "withdrawn"))
        keys.add((r, i, e))
    return keys


def _terminate(lines: list[str], index: int, ending: str) -> None:
    """Give line ``index`` an ending if it is the file's last line without one."""
    if lines and not line_ending(lines[index]):
        lines[index] += ending


def _risk_rows(register, lines, new_rows, ending) -> tuple[int, list[str]]:
    table = register.table
    fields = dict(table.fields)
    if table.title_col is not None:
        fields["title"] = table.title_col
    by_col = {col: name for name, col in fields.items()}
    rows = []
    for row in new_rows.values():
        values = [row.get(by_col.get(col, ""), "") for col in range(len(table.header))]
        if table.kind == "html":
            rows.append([re.sub(r"\s+", " ", str(v)).strip() for v in values])
        else:
            rows.append([escape_cell(v) for v in values])

    if table.kind == "html":
        last = table.row_ends[-1] if table.row_ends else table.header_line
        template = lines[table.rows[-1]] if table.rows else lines[last]
        indent = template[: len(template) - len(template.lstrip())]
        eol = line_ending(lines[last]) or ending
        _terminate(lines, last, ending)
        block = [x for values in rows for x in _html_row(values, indent, eol)]
        return last + 1, block

    style = _RowStyle(table, lines)
    last = table.end_line
    eol = line_ending(lines[last]) or ending
    _terminate(lines, last, eol)
    return last + 1, [style.render(values, eol) for values in rows]


def _history_rows(register, lines, events, ending) -> tuple[int, list[str]]:
    table = register.history_table
    if table is not None:
        by_col = {col: name for name, col in table.fields.items()}
        style = _RowStyle(table, lines)
        last = table.end_line
        eol = line_ending(lines[last]) or ending
        _terminate(lines, last, eol)
        block = []
        for event in events:
            values = [
                escape_cell(event.get(by_col.get(col, ""), ""))
                for col in range(len(table.header))
            ]
            block.append(style.render(values, eol))
        return last + 1, block

    def row(values):
        return "| " + " | ".join(escape_cell(v) for v in values) + " |" + ending

    table_lines = [
        row(HISTORY_HEADERS),
        "|" + "|".join("---" for _ in HISTORY_HEADERS) + "|" + ending,
        *(row([event[name] for name in HISTORY_COLUMNS[:-1]]) for event in events),
    ]
    heading = register.history_heading_line
    if heading is not None:
        _terminate(lines, heading, ending)
        block = [ending, *table_lines]
        following = lines[heading + 1] if heading + 1 < len(lines) else ""
        if following.strip():
            block.append(ending)
        return heading + 1, block

    block = []
    if lines:
        _terminate(lines, len(lines) - 1, ending)
        if lines[-1].strip():
            block.append(ending)
    block += [f"## {HISTORY_HEADING}{ending}", ending, *table_lines]
    return len(lines), block
