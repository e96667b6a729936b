"""Read a risk register losslessly: the risk table, its history and its scales.

The register is a Markdown file. Its risks sit in the first table that has an
ID-like column and a description-like column, found by header name and common
synonyms; a GitHub pipe table or an HTML ``<table>``. The text is kept exactly
as read (byte-order mark and line endings included), and every row remembers
where each cell sits in its line, so that an update can change one cell or add
one row and leave every other byte alone.
"""

from __future__ import annotations

import html
import json
import logging
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path

import pandas as pd
from markdown_it import MarkdownIt

from riskanalytics.exceptions import RegisterFormatError
from riskanalytics.register import scales as _scales
from riskanalytics.schema import RISK_COLUMNS

__all__ = [
    "HISTORY_COLUMNS",
    "HISTORY_HEADERS",
    "HISTORY_HEADING",
    "Register",
    "RegisterCheck",
    "check_register",
    "next_ids",
    "read_register",
    "split_lines",
]

log = logging.getLogger(__name__)

BOM = "\ufeff"

#: Heading of the section where updates record what happened to which risk.
HISTORY_HEADING = "Risk history"

#: Header texts of the history table, in the order a new table gets them.
HISTORY_HEADERS = [
    "Date",
    "Risk",
    "Event",
    "Incident",
    "Source",
    "Match score",
    "Mitigations",
    "Review",
    "Run",
]

#: Columns of :attr:`Register.history`, one per history header, plus ``line``.
HISTORY_COLUMNS = [
    "date",
    "risk_id",
    "event",
    "incident_id",
    "source",
    "match_score",
    "mitigation_verdict",
    "review",
    "run_id",
    "line",
]

# Normalized header text -> our field. Order within a field is preference.
_SYNONYMS: dict[str, list[str]] = {
    "risk_id": [
        "id",
        "risk id",
        "riskid",
        "ref",
        "ref.",
        "reference",
        "risk ref",
        "risk reference",
        "#",
        "no",
        "no.",
        "nr",
        "number",
        "risk no",
        "risk no.",
        "risk number",
        "risk #",
        "hazard number",
        "hazard no",
        "hazard id",
        "key",
    ],
    "description": [
        "description",
        "risk description",
        "description of risk",
        "hazard description",
        "risk",
        "hazard",
        "threat",
        "risk event",
        "title",
        "risk title",
        "risk name",
        "hazard name",
        "name",
        "summary",
        "risk statement",
        "statement",
        "what could go wrong",
        "scenario",
        "risk scenario",
    ],
    "mitigations": [
        "mitigation",
        "mitigations",
        "controls",
        "existing controls",
        "control",
        "control measures",
        "mitigation plan",
        "mitigation strategy",
        "mitigating actions",
        "mitigation actions",
        "risk response",
        "response",
        "treatment",
        "actions",
    ],
    "likelihood": ["likelihood", "probability", "chance", "frequency"],
    "impact": ["impact", "severity", "consequence", "consequences"],
    "owner": [
        "owner",
        "risk owner",
        "owned by",
        "owners",
        "responsible",
        "assignee",
        "accountable",
    ],
    "status": ["status", "risk status", "state"],
    "category": ["category", "risk category", "type", "risk type", "area", "domain"],
}
_PREFIX_FIELDS = ("likelihood", "impact")
_TITLE_WORDS = {"title", "risk title", "risk name", "hazard name", "name", "summary"}

_HISTORY_FIELDS = {
    h.lower(): name
    for h, name in zip(HISTORY_HEADERS, HISTORY_COLUMNS[:-1], strict=True)
}

_LINE_RE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+$")
_ENDING_RE = re.compile(r"(\r\n|\r|\n)$")
_DELIM_CELL = re.compile(r"^\s*:?-+:?\s*$")
_ID_RE = re.compile(r"^(.*?)(\d+)$")


def split_lines(text: str) -> list[str]:
    """Split text into lines that keep their endings (``\\n``, ``\\r\\n``, ``\\r``).

    ``"".join(split_lines(text)) == text`` always holds.
    """
    return _LINE_RE.findall(text)


def line_ending(line: str) -> str:
    """The ending of one line, or "" for a last line without one."""
    match = _ENDING_RE.search(line)
    return match.group(1) if match else ""


def cell_spans(content: str) -> list[tuple[int, int]]:
    """Where each cell of a pipe-table row sits in the line (without its ending).

    A pipe right after a backslash is part of the cell, as in GitHub Markdown.
    Leading and trailing pipes are optional.
    """
    pipes = [
        i
        for i, ch in enumerate(content)
        if ch == "|" and (i == 0 or content[i - 1] != "\\")
    ]
    bounds = [-1, *pipes, len(content)]
    spans = [(bounds[i] + 1, bounds[i + 1]) for i in range(len(bounds) - 1)]
    if pipes and not content[: pipes[0]].strip():
        spans = spans[1:]
    if pipes and not content[pipes[-1] + 1 :].strip() and spans:
        spans = spans[:-1]
    return spans


def _ends_with_pipe(content: str) -> bool:
    stripped = content.rstrip()
    return stripped.endswith("|") and not stripped.endswith("\\|")


def unescape_cell(raw: str) -> str:
    """A cell's text: stripped, with ``\\|`` turned back into ``|``."""
    return raw.strip().replace("\\|", "|")


def plain_id(text: str) -> str:
    """A risk id without Markdown decoration or page templating."""
    text = text.strip()
    link = re.fullmatch(r"\[([^\]]*)\]\([^)]*\)", text)
    if link:
        text = link.group(1)
    template = re.fullmatch(r"\{\{\s*[\w-]+\s*:\s*([^}]*?)\s*\}\}", text)
    if template:
        text = template.group(1)
    # emphasis or code around the whole id ("**R-001**", "`R-001`"); a lone
    # "_" or "*" is part of the id ("INC_6_")
    while emphasis := re.fullmatch(r"(\*\*|__|\*|_|`)\s*(.+?)\s*\1", text):
        text = emphasis.group(2)
    return text.strip()


def _normalize_header(text: str) -> str:
    text = re.sub(r"<[^>]+>", " ", text)
    text = re.sub(r"[*_`]", "", html.unescape(text)).strip().lower()
    text = re.sub(r"\s+", " ", text).strip(" :")
    return text


def _field_for(header: str) -> str | None:
    norm = _normalize_header(header)
    for name, words in _SYNONYMS.items():
        if norm in words:
            return name
    for name in _PREFIX_FIELDS:
        for word in _SYNONYMS[name]:
            if re.match(rf"^{word}\b", norm):
                return name
    return None


@dataclass
class Table:
    """One table found in the file: its lines and, per row, its cells.

    Line numbers are 0-based indexes into :func:`split_lines` of the text
    without its byte-order mark. ``values[i]`` holds the cell texts of row
    ``rows[i]``; for pipe tables ``spans[i]`` holds where each cell sits in that
    line, ``(start, end)``, so that one cell can be rewritten in place. HTML
    tables are read, and written only by appending rows after ``row_ends[-1]``.
    """

    kind: str  # "pipe" or "html"
    header_line: int
    header: list[str]
    rows: list[int] = field(default_factory=list)
    values: list[list[str]] = field(default_factory=list)
    spans: list[list[tuple[int, int]]] = field(default_factory=list)
    delimiter_line: int | None = None
    end_line: int = 0  # last line of the table (inclusive)
    fields: dict[str, int] = field(default_factory=dict)
    title_col: int | None = None
    row_ends: list[int] = field(default_factory=list)


@dataclass
class Register:
    """A risk register as read from disk.

    Attributes
    ----------
    path : Path
        The file read.
    text : str
        The decoded text exactly as read: a byte-order mark stays as
        ``"\\ufeff"`` at the start and line endings are not translated, so
        ``text.encode("utf-8")`` gives back the file's bytes.
    risks : pandas.DataFrame
        One row per risk, :data:`riskanalytics.schema.RISK_COLUMNS`;
        ``likelihood_level`` and ``impact_level`` are 1-5 (``Int64``) or NA,
        ``line`` is the 1-based line of the risk's row. A ``title`` column is
        added when the table has both a title and a description column; the
        ``description`` then reads ``"title: description"``.
    history : pandas.DataFrame
        The ``Risk history`` table, :data:`HISTORY_COLUMNS`; empty if absent.
    columns : dict
        Our field (``risk_id``, ``description`` ...) to the header text found.
    id_scheme : str
        Format of the ids, e.g. ``"R-{:03d}"``; new risks follow it.
    warnings : list of str
        Cells that were read with a repair or without a level, with lines.
    scale_names : dict
        ``likelihood``/``impact`` to the name of the scale chosen.
    """

    path: Path
    text: str
    risks: pd.DataFrame
    history: pd.DataFrame
    columns: dict[str, str]
    id_scheme: str
    warnings: list[str] = field(default_factory=list)
    scale_names: dict[str, str] = field(default_factory=dict)
    table: Table | None = field(default=None, repr=False)
    history_table: Table | None = field(default=None, repr=False)
    history_heading_line: int | None = field(default=None, repr=False)

    def rating(self, risk_id: str) -> int | None:
        """Likelihood level x impact level (1-25) of a risk, None if unknown."""
        rows = self.risks[self.risks["risk_id"] == risk_id]
        if rows.empty:
            return None
        likelihood = rows["likelihood_level"].iloc[0]
        impact = rows["impact_level"].iloc[0]
        if pd.isna(likelihood) or pd.isna(impact):
            return None
        return int(likelihood) * int(impact)

    @property
    def body(self) -> str:
        """The text without its byte-order mark."""
        return self.text[1:] if self.text.startswith(BOM) else self.text


# --- finding tables -----------------------------------------------------------


def _markdown() -> MarkdownIt:
    return MarkdownIt("commonmark").enable("table")


class _HtmlTableParser(HTMLParser):
    """Collect header cells and rows of HTML tables, with their line numbers."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.tables: list[dict] = []
        self._stack: list[dict] = []
        self._cell: list[str] | None = None
        self._row: list[str] | None = None
        self._row_line = 0

    def handle_starttag(self, tag, attrs):
        line = self.getpos()[0] - 1
        if tag == "table":
            self._stack.append(
                {
                    "start": line,
                    "header": [],
                    "header_line": line,
                    "rows": [],
                    "row_ends": [],
                }
            )
        elif not self._stack:
            return
        elif tag == "tr":
            self._row, self._row_line = [], line
        elif tag in ("td", "th"):
            self._cell = []
            if tag == "th" and not self._stack[-1]["header"]:
                self._stack[-1]["header_line"] = line
        elif tag == "br" and self._cell is not None:
            self._cell.append(" ")

    def handle_endtag(self, tag):
        if not self._stack:
            return
        table = self._stack[-1]
        line = self.getpos()[0] - 1
        if tag in ("td", "th") and self._cell is not None:
            text = re.sub(r"\s+", " ", "".join(self._cell)).strip()
            if tag == "th":
                table["header"].append(text)
            elif self._row is not None:
                self._row.append(text)
            else:
                self._row, self._row_line = [text], line
            self._cell = None
        elif tag == "tr" and self._row is not None:
            if self._row:
                table["rows"].append((self._row_line, self._row))
                table["row_ends"].append(line)
            self._row = None
        elif tag == "table":
            table["end"] = line
            self.tables.append(self._stack.pop())

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


def _pipe_tables(lines: list[str], tokens) -> list[Table]:
    tables = []
    for i, token in enumerate(tokens):
        if token.type != "table_open" or not token.map:
            continue
        start, end = token.map
        header_count = 0
        row_starts = []
        for inner in tokens[i + 1 :]:
            if inner.type == "table_close":
                break
            if inner.type == "th_open":
                header_count += 1
            if inner.type == "tr_open" and inner.map and inner.map[0] > start + 1:
                row_starts.append(inner.map[0])
        content = lines[start][: len(lines[start]) - len(line_ending(lines[start]))]
        spans = cell_spans(content)
        if len(spans) != header_count:
            continue  # inside a list or quote: not a table we can edit in place
        table = Table(
            kind="pipe",
            header_line=start,
            header=[unescape_cell(content[a:b]) for a, b in spans],
            delimiter_line=start + 1,
            end_line=start + 1,
        )
        open_end = not _ends_with_pipe(content)
        for row in row_starts:
            if row >= end:
                break
            body = lines[row][: len(lines[row]) - len(line_ending(lines[row]))]
            if "|" not in body.replace("\\|", ""):
                break  # prose right under the table
            row_spans = cell_spans(body)
            if (
                open_end
                and len(row_spans) == header_count - 1
                and _ends_with_pipe(body)
            ):
                # Without outer pipes, "a | b |" is how an empty last cell is written.
                row_spans.append((len(body.rstrip()), len(body.rstrip())))
            table.rows.append(row)
            table.spans.append(row_spans)
            table.values.append([unescape_cell(body[a:b]) for a, b in row_spans])
            table.end_line = row
        tables.append(table)
    return tables


def _html_tables(lines: list[str], tokens) -> list[Table]:
    tables = []
    for token in tokens:
        if token.type != "html_block" or "<table" not in token.content.lower():
            continue
        # An HTML block ends at a blank line, a table need not: read the
        # raw lines on until the table closes.
        parser = _HtmlTableParser()
        offset = token.map[0]
        for line in lines[offset:]:
            parser.feed(line)
            if parser.tables and not parser._stack:
                break
        parser.close()
        for found in parser.tables:
            if not found["header"] and found["rows"]:
                found["header_line"], header = found["rows"].pop(0)
                found["row_ends"].pop(0)
                found["header"] = header
            table = Table(
                kind="html",
                header_line=offset + found["header_line"],
                header=found["header"],
                rows=[offset + line for line, _ in found["rows"]],
                values=[row for _, row in found["rows"]],
                end_line=offset + found.get("end", found["header_line"]),
            )
            table.spans = [[] for _ in table.rows]
            table.row_ends = [offset + line for line in found["row_ends"]]
            tables.append(table)
    return tables


def _map_columns(table: Table) -> None:
    described = []
    for col, header in enumerate(table.header):
        name = _field_for(header)
        if name == "description":
            described.append(col)
        elif name and name not in table.fields:
            table.fields[name] = col
    if described:
        # The most description-like column holds the text; a title beside it
        # is kept too.
        order = _SYNONYMS["description"]
        described.sort(key=lambda c: order.index(_normalize_header(table.header[c])))
        table.fields["description"] = described[0]
        titles = [
            c
            for c in described[1:]
            if _normalize_header(table.header[c]) in _TITLE_WORDS
            or _normalize_header(table.header[c]) in ("risk", "hazard")
        ]
        if titles:
            table.title_col = titles[0]


def _headings(tokens) -> list[tuple[int, int, str]]:
    found = []
    for i, token in enumerate(tokens):
        if token.type == "heading_open" and token.map:
            text = tokens[i + 1].content if i + 1 < len(tokens) else ""
            found.append((token.map[0], int(token.tag[1]), text))
    return found


def _is_history_heading(text: str) -> bool:
    return _normalize_header(text) == HISTORY_HEADING.lower()


# --- ids and levels -----------------------------------------------------------


def id_scheme(ids: list[str]) -> str:
    """The format new ids follow, from the ids already in the register.

    The most common prefix wins; digits are zero-padded when any id of that
    prefix is (``R-001`` -> ``"R-{:03d}"``, ``OPS-29`` -> ``"OPS-{:d}"``).
    Without any numbered id the scheme is ``"R-{:03d}"``.
    """
    by_prefix: dict[str, list[str]] = {}
    for risk_id in ids:
        match = _ID_RE.match(risk_id)
        if match:
            by_prefix.setdefault(match.group(1), []).append(match.group(2))
    if not by_prefix:
        return "R-{:03d}"
    prefix = max(by_prefix, key=lambda p: len(by_prefix[p]))
    digits = by_prefix[prefix]
    padded = [d for d in digits if len(d) > 1 and d.startswith("0")]
    escaped = prefix.replace("{", "{{").replace("}", "}}")
    if padded:
        width = max(len(d) for d in padded)
        return escaped + "{:0" + str(width) + "d}"
    return escaped + "{:d}"


def next_ids(register: Register) -> Iterator[str]:
    """The ids a new risk can take, in order: the file's scheme, numbers unused.

    Numbers continue from the highest id in the table or the history, so an id
    that a history row still names is never given again.
    """
    scheme = register.id_scheme
    taken = set(register.risks["risk_id"]) | set(register.history["risk_id"])
    numbers = [scheme_number(scheme, r) for r in taken if r]
    number = max([n for n in numbers if n is not None], default=0)
    while True:
        number += 1
        candidate = scheme.format(number)
        if candidate not in taken:
            yield candidate


def scheme_number(scheme: str, risk_id: str) -> int | None:
    """The number of an id written in ``scheme``, or None if it is not."""
    prefix = scheme.split("{:")[0].replace("{{", "{").replace("}}", "}")
    match = _ID_RE.match(risk_id)
    if match and match.group(1) == prefix:
        return int(match.group(2))
    return None


# --- reading ------------------------------------------------------------------


def _decode(path: Path, data: bytes) -> str:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise RegisterFormatError(
            f"{path}:{line}: expected UTF-8 text, found byte "
            f"0x{data[exc.start]:02x} that is not valid UTF-8"
        ) from None
    nul = data.find(b"\0")
    if nul >= 0:  # valid UTF-8, but binary: a NUL is no Markdown
        line = data[:nul].count(b"\n") + 1
        raise RegisterFormatError(
            f"{path}:{line}: expected Markdown text, found a NUL byte (binary data)"
        )
    return text


def _missing_id_error(path: Path, table: Table) -> RegisterFormatError:
    headers = " | ".join(table.header)
    return RegisterFormatError(
        f"{path}:{table.header_line + 1}: the risk table has no ID column "
        f"(expected a header such as ID, Risk ID, Ref or #; found: {headers}). "
        "Add a first column 'ID' and give each risk a stable id such as R-001, "
        "R-002 ..., or let 'riskanalytics register add-ids "
        f"{path}' do it (--dry-run shows the change first); ids are never "
        "invented during a run, because reviews and history refer to them."
    )


def parse_register(path: Path, text: str, scales: dict | None = None) -> Register:
    """Parse register text already read from ``path`` (see :func:`read_register`)."""
    body = text[1:] if text.startswith(BOM) else text
    lines = split_lines(body)
    tokens = _markdown().parse(body)
    headings = _headings(tokens)
    tables = sorted(
        _pipe_tables(lines, tokens) + _html_tables(lines, tokens),
        key=lambda t: t.header_line,
    )
    for table in tables:
        _map_columns(table)

    # The history section, if any, and the risk table outside it.
    history_heading = next((h for h in headings if _is_history_heading(h[2])), None)
    history_table = None
    history_end = None
    if history_heading:
        after = [h for h in headings if h[0] > history_heading[0]]
        limit = next((h[0] for h in after if h[1] <= history_heading[1]), len(lines))
        history_end = limit
        history_table = next(
            (
                t
                for t in tables
                if t.kind == "pipe" and history_heading[0] < t.header_line < limit
            ),
            None,
        )
    candidates = [
        t
        for t in tables
        if t is not history_table
        and not (history_heading and history_heading[0] < t.header_line < history_end)
    ]

    table = next(
        (t for t in candidates if "risk_id" in t.fields and "description" in t.fields),
        None,
    )
    if table is None:
        described = next((t for t in candidates if "description" in t.fields), None)
        if described is not None:
            raise _missing_id_error(path, described)
        if candidates:
            first = candidates[0]
            raise RegisterFormatError(
                f"{path}:{first.header_line + 1}: no risk table found: expected a "
                "table with an ID column (ID, Risk ID, Ref, #) and a description "
                "column (Risk, Title, Description, Hazard); found headers: "
                + " | ".join(first.header)
            )
        raise RegisterFormatError(
            f"{path}:1: no risk table found: expected a Markdown pipe table or an "
            "HTML <table> with ID and Risk/Description columns; found none"
            + _json_hint(body)
        )

    second = next(
        (
            t
            for t in candidates
            if t is not table and "risk_id" in t.fields and "description" in t.fields
        ),
        None,
    )
    if second is not None:
        # one table is read and updated: new IDs could repeat the other's
        raise RegisterFormatError(
            f"{path}:{second.header_line + 1}: a second risk table (the first "
            f"starts at line {table.header_line + 1}); riskanalytics reads and "
            "updates one table of risks: merge them into one"
        )

    wanted = {_normalize_header(h) for h in HISTORY_HEADERS}
    orphan = next(
        (
            t
            for t in candidates
            if t is not table and wanted <= {_normalize_header(h) for h in t.header}
        ),
        None,
    )
    if orphan is not None:
        raise RegisterFormatError(
            f"{path}:{orphan.header_line + 1}: a risk history table outside a "
            f"'## {HISTORY_HEADING}' section"
            + (
                f" (that section starts at line {history_heading[0] + 1})"
                if history_heading
                else ""
            )
            + ": put it back under the heading, or a run would record its "
            "incidents again"
        )

    for kind, t in (("risk", table), ("history", history_table)):
        stray = _stray_row(lines, t, tables)
        if stray is not None:
            raise RegisterFormatError(
                f"{path}:{stray + 1}: a table row after the {kind} table, which "
                f"ends at line {t.end_line + 1}: a blank line or a comment ends a "
                "Markdown table, so this row and those after it would be left out; "
                "remove what separates them"
            )

    warnings: list[str] = []
    _check_rows(path, table)
    risks, scale_names = _risk_frame(path, table, scales or {}, warnings)
    history = _history_frame(path, history_table, warnings)
    scheme = id_scheme(list(risks["risk_id"]))
    for message in warnings:
        log.warning("%s", message)
    return Register(
        path=path,
        text=text,
        risks=risks,
        history=history,
        columns={name: table.header[col] for name, col in table.fields.items()},
        id_scheme=scheme,
        warnings=warnings,
        scale_names=scale_names,
        table=table,
        history_table=history_table,
        history_heading_line=history_heading[0] if history_heading else None,
    )


def _stray_row(lines: list[str], table: Table | None, tables: list[Table]):
    """The line of a row cut off from ``table`` by blank lines or comments, or None."""
    if table is None or table.kind != "pipe":
        return None
    starts = {t.header_line for t in tables}
    comment = False
    for i in range(table.end_line + 1, len(lines)):
        text = lines[i].strip()
        if comment:
            comment = "-->" not in text
            continue
        if not text:
            continue
        if text.startswith("<!--"):
            comment = "-->" not in text[4:]
            continue
        indent = len(lines[i]) - len(lines[i].lstrip(" \t"))
        if indent >= 4 or lines[i].startswith("\t"):
            return None  # an indented code block, not a row
        cells = len(cell_spans(text.rstrip()))
        if text.startswith("|") and i not in starts and cells >= len(table.header) - 1:
            return i
        return None
    return None


def _json_hint(body: str) -> str:
    """Why a JSON file is no register, for the error message."""
    if not body.lstrip().startswith(("{", "[")):
        return ""
    try:
        value = json.loads(body)
    except ValueError:
        return ""
    if isinstance(value, dict) and "plan-of-action-and-milestones" in value:
        return (
            ". This is an OSCAL plan of action and milestones (JSON); its risks "
            "can be written into a Markdown table with ID, Risk, Likelihood, "
            "Impact, Owner, Mitigation and Status columns"
        )
    return ". This file is JSON, not a Markdown register"


def _check_rows(path: Path, table: Table) -> None:
    width = len(table.header)
    id_col = table.fields["risk_id"]
    seen: dict[str, int] = {}
    for line, values in zip(table.rows, table.values, strict=True):
        if len(values) != width:
            raise RegisterFormatError(
                f"{path}:{line + 1}: expected {width} cells as in the header on "
                f"line {table.header_line + 1}, found {len(values)}"
            )
        if not any(values):
            continue
        risk_id = plain_id(values[id_col])
        if not risk_id:
            raise RegisterFormatError(
                f"{path}:{line + 1}: the row has no id in column "
                f"'{table.header[id_col]}'; give it a unique id (ids are never "
                "invented)"
            )
        if risk_id in seen:
            raise RegisterFormatError(
                f"{path}:{line + 1}: duplicate risk id {risk_id!r}, already used "
                f"on line {seen[risk_id] + 1}; expected every id once"
            )
        seen[risk_id] = line


def _risk_frame(
    path: Path, table: Table, scales: dict, warnings: list[str]
) -> tuple[pd.DataFrame, dict[str, str]]:
    records = []
    for line, values in zip(table.rows, table.values, strict=True):
        if not any(values):
            continue
        record = {"line": line + 1}
        for name in RISK_COLUMNS:
            if name in table.fields:
                cell = values[table.fields[name]]
                record[name] = cell if cell else None
        record["risk_id"] = plain_id(values[table.fields["risk_id"]])
        if table.title_col is not None:
            title = values[table.title_col] or None
            record["title"] = title
            if title and record.get("description"):
                record["description"] = f"{title}: {record['description']}"
            elif title:
                record["description"] = title
        records.append(record)

    scale_names = {}
    for kind in ("likelihood", "impact"):
        extra = dict(scales.get(kind, {}))
        extra.update({k: v for k, v in scales.items() if isinstance(v, int)})
        cells = [r.get(kind) or "" for r in records]
        choice = _scales.choose_scale(cells, kind, extra)
        scale_names[kind] = choice.name if kind in table.fields else "absent"
        for record in records:
            level, problem = _scales.to_level(record.get(kind), choice)
            record[f"{kind}_level"] = level
            if problem:
                warnings.append(
                    f"{path}:{record['line']}: {kind} of {record['risk_id']}: "
                    f"{problem}; level left empty"
                )

    columns = RISK_COLUMNS + (["title"] if table.title_col is not None else [])
    frame = pd.DataFrame.from_records(records, columns=columns)
    for name in columns:
        if name.endswith("_level"):
            frame[name] = frame[name].astype("Int64")
        elif name == "line":
            frame[name] = frame[name].astype("int64")
        else:
            frame[name] = frame[name].astype("object")
            frame[name] = frame[name].where(frame[name].notna(), None)
    return frame, scale_names


def _parse_date(text: str):
    try:
        stamp = pd.Timestamp(text)
    except ValueError:
        return pd.NaT
    if stamp is pd.NaT:
        return stamp
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


def _history_frame(path: Path, table: Table | None, warnings: list[str]):
    records = []
    if table is not None:
        fields = {
            _HISTORY_FIELDS[_normalize_header(h)]: i
            for i, h in enumerate(table.header)
            if _normalize_header(h) in _HISTORY_FIELDS
        }
        table.fields = fields
        width = len(table.header)
        for line, values in zip(table.rows, table.values, strict=True):
            if len(values) != width:  # misread, its incident would be recorded twice
                raise RegisterFormatError(
                    f"{path}:{line + 1}: expected {width} cells as in the history "
                    f"header on line {table.header_line + 1}, found {len(values)}"
                )
            record = {"line": line + 1}
            for name, col in fields.items():
                record[name] = values[col] if col < len(values) else ""
            record["risk_id"] = plain_id(record.get("risk_id", ""))
            # written by the history writer as it is: no decoration to remove
            record["incident_id"] = str(record.get("incident_id", "")).strip()
            record["event"] = (record.get("event") or "").strip().lower()
            record["date"] = _parse_date(record.get("date") or "")
            try:
                score = float(record.get("match_score") or "nan")
            except ValueError:
                warnings.append(
                    f"{path}:{line + 1}: history match score "
                    f"{record.get('match_score')!r} is not a number"
                )
                score = float("nan")
            record["match_score"] = score
            records.append(record)
    frame = pd.DataFrame.from_records(records, columns=HISTORY_COLUMNS)
    frame["date"] = pd.to_datetime(frame["date"], utc=True)
    frame["match_score"] = frame["match_score"].astype("float64")
    frame["line"] = frame["line"].astype("int64")
    return frame


def read_register(path: str | Path, *, scales: dict | None = None) -> Register:
    """Read a risk register from a Markdown file.

    Parameters
    ----------
    path : str or Path
        The register, UTF-8 Markdown (a byte-order mark and any line ending
        are kept).
    scales : dict, optional
        Extra scale words, lower case, to levels 1-5: either flat
        (``{"tolerable": 2}``, for both likelihood and impact) or per kind
        (``{"likelihood": {...}, "impact": {...}}``).

    Returns
    -------
    Register
        The risks, history, column mapping and id scheme.

    Raises
    ------
    RegisterFormatError
        No usable table, no ID column, duplicate or missing ids, or rows with
        a different number of cells than the header; the message names the
        file and line.
    """
    path = Path(path)
    started = time.perf_counter()
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise RegisterFormatError(f"{path}: cannot read the register: {exc}") from exc
    register = parse_register(path, _decode(path, data), scales)
    log.info(
        "read %d risks and %d history rows from %s in %.2f s",
        len(register.risks),
        len(register.history),
        path,
        time.perf_counter() - started,
    )
    return register


@dataclass
class RegisterCheck:
    """What :func:`check_register` understood of a register, and its problems."""

    path: Path
    problems: list[str]
    warnings: list[str]
    risks: int = 0
    history: int = 0
    columns: dict[str, str] = field(default_factory=dict)
    scale_names: dict[str, str] = field(default_factory=dict)
    id_scheme: str = ""
    next_id: str = ""
    table_line: int | None = None
    table_kind: str = ""
    line_ending: str = ""
    bom: bool = False

    @property
    def ok(self) -> bool:
        """True when the register can be read and updated."""
        return not self.problems

    def to_text(self) -> str:
        """A short report for people, as printed by ``register check``."""
        out = [f"register: {self.path}"]
        if self.table_line is not None:
            out.append(
                f"risk table: line {self.table_line} ({self.table_kind}), "
                f"{self.risks} risks, ids like {self.id_scheme.format(1)}; "
                f"a new risk gets {self.next_id}"
            )
            for name, header in self.columns.items():
                out.append(f"  {name:<12} <- {header}")
            for kind, name in self.scale_names.items():
                out.append(f"scale {kind}: {name}")
            out.append(f"history rows: {self.history}")
            endings = {"\r\n": "CRLF", "\n": "LF", "\r": "CR", "": "none"}
            out.append(
                f"line endings: {endings[self.line_ending]}; "
                f"byte-order mark: {'yes' if self.bom else 'no'}"
            )
        out += [f"warning: {w}" for w in self.warnings]
        out += [f"problem: {p}" for p in self.problems]
        out.append("ok" if self.ok else f"{len(self.problems)} problem(s)")
        return "\n".join(out)


def check_register(path: str | Path) -> RegisterCheck:
    """Read a register and report what was understood, changing nothing.

    Parameters
    ----------
    path : str or Path
        The register.

    Returns
    -------
    RegisterCheck
        ``ok`` is False when the register cannot be used; ``problems`` then
        say why, naming the file and line.
    """
    path = Path(path)
    try:
        register = read_register(path)
    except RegisterFormatError as exc:
        return RegisterCheck(path=path, problems=[str(exc)], warnings=[])
    problems = []
    for field_name in ("owner", "status"):
        if field_name not in register.columns:
            register.warnings.append(
                f"{path}:{register.table.header_line + 1}: no {field_name} column"
                + (
                    "; realizations are recorded in the history only"
                    if field_name == "status"
                    else ""
                )
            )
    known = set(register.risks["risk_id"])
    for row in register.history.itertuples():
        if row.risk_id and row.risk_id not in known:
            register.warnings.append(
                f"{path}:{int(row.line)}: the history names {row.risk_id}, which "
                "is not in the risk table (deleted by hand?); a run keeps what "
                "the history says of its incidents"
            )
    endings = [line_ending(x) for x in split_lines(register.body)]
    common = max(set(endings) - {""}, key=endings.count, default="")
    return RegisterCheck(
        path=path,
        problems=problems,
        warnings=register.warnings,
        risks=len(register.risks),
        history=len(register.history),
        columns=register.columns,
        scale_names=register.scale_names,
        id_scheme=register.id_scheme,
        next_id=next(next_ids(register)),
        table_line=register.table.header_line + 1,
        table_kind=register.table.kind,
        line_ending=common,
        bom=register.text.startswith(BOM),
    )
