"""Generated registers: read back byte for byte, and updated only where expected."""

import difflib
from datetime import UTC, datetime
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from riskanalytics.register import NewRisk, Realization, plan_update
from riskanalytics.register.parse import cell_spans, parse_register, split_lines

# Cell text: unicode letters, symbols and punctuation, with pipes (escaped when
# written) and inline code; no line breaks, backslashes or control characters.
CELL_CHARS = st.characters(
    blacklist_categories=("Cc", "Cs", "Zl", "Zp", "Co", "Cn"),
    blacklist_characters="\\\ufeff\x85",
)
cell_text = st.text(CELL_CHARS, max_size=25).map(str.strip)
PROSE_CHARS = st.sampled_from(list("abcdefXYZ 0123.,;:!?'\"()éü—☕"))
prose_line = st.text(PROSE_CHARS, max_size=30)

LIKELIHOOD = {
    "Rare": 1,
    "Unlikely": 2,
    "Possible": 3,
    "Likely": 4,
    "Almost certain": 5,
    "1": 1,
    "5": 5,
    "40%": 3,
    "": None,
}
HEADERS = {
    "risk_id": ["ID", "Risk ID", "Ref", "#"],
    "description": ["Risk", "Description", "Risk description", "Hazard"],
    "likelihood": ["Likelihood", "Probability"],
    "owner": ["Owner", "Risk owner"],
    "status": ["Status"],
    "notes": ["Notes", "Contingency"],
}


def _cells(line):
    content = line.rstrip("\r\n")
    return [content[a:b] for a, b in cell_spans(content)]


def escape(text):
    return text.replace("|", "\\|")


@st.composite
def registers(draw):
    fields = ["risk_id", "description", "likelihood", "owner"]
    if draw(st.booleans()):
        fields.append("status")
    if draw(st.booleans()):
        fields.append("notes")
    fields = [fields[0], *draw(st.permutations(fields[1:]))]
    headers = [draw(st.sampled_from(HEADERS[f])) for f in fields]
    n = draw(st.integers(1, 6))
    prefix = draw(st.sampled_from(["R-", "OPS-", "RISK", "R"]))
    width = draw(st.sampled_from([1, 2, 3]))
    rows = []
    for i in range(n):
        rows.append(
            {
                "risk_id": f"{prefix}{i + 1:0{width}d}",
                "description": draw(cell_text.filter(bool)),
                "likelihood": draw(st.sampled_from(sorted(LIKELIHOOD))),
                "owner": draw(cell_text),
                "status": draw(st.sampled_from(["Open", "Accepted", "", "Closed"])),
                "notes": draw(cell_text),
            }
        )

    outer = draw(st.sampled_from(["both", "none", "trailing"]))
    pad = st.sampled_from(["", " ", "  ", "   "])
    eol = draw(st.sampled_from(["\n", "\r\n"]))

    def row(values):
        cells = []
        for i, value in enumerate(values):
            lead = draw(pad) if (i or outer == "both") else ""
            cells.append(lead + value + draw(pad))
        line = "|".join(cells)
        if outer == "both":
            line = "|" + line + "|"
        elif outer == "trailing":
            line = line + "|"
        return line + draw(st.sampled_from(["", " ", "  "])) + eol

    delim = [draw(st.sampled_from(["---", ":--", "-:", ":-:", "-"])) for _ in fields]
    if outer != "both":
        delim[0] = "---"  # "- |" or "-: |" would start a list item, not a table
    table = [row(headers), row(delim)]
    table += [row([escape(r[f]) for f in fields]) for r in rows]

    before = [line + eol for line in draw(st.lists(prose_line, max_size=3))]
    after = [line + eol for line in draw(st.lists(prose_line, max_size=3))]
    if draw(st.booleans()):
        before = ["(register_label)=" + eol, "# Register" + eol, *before]
    body = "".join(before) + eol + "".join(table)
    if after:
        body += eol + "".join(after)
    if draw(st.booleans()):
        body = body.rstrip("\r\n ")  # no final line ending
    bom = "\ufeff" if draw(st.booleans()) else ""
    return bom + body, fields, rows, eol


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(registers(), cell_text.filter(bool), st.data())
def test_generated_register_round_trips_and_updates_only_expected_lines(
    generated, new_text, data
):
    text, fields, rows, eol = generated
    path = Path("generated.md")

    # Read: the same text back, every cell as written.
    register = parse_register(path, text)
    assert register.text.encode("utf-8") == text.encode("utf-8")
    assert plan_update(register, [], []).new_text == text
    risks = register.risks
    assert list(risks["risk_id"]) == [r["risk_id"] for r in rows]
    assert list(risks["description"]) == [r["description"] for r in rows]
    assert list(risks["owner"].fillna("")) == [r["owner"] for r in rows]
    levels = [LIKELIHOOD[r["likelihood"]] for r in rows]
    assert [
        None if v is None or v != v else int(v)
        for v in risks["likelihood_level"].astype("float")
    ] == levels

    # Update: one realized risk, one new risk.
    target = data.draw(st.sampled_from(rows))
    when = datetime(2024, 1, 2, tzinfo=UTC)
    update = plan_update(
        register,
        [Realization(target["risk_id"], "INC-1", when, "pd", 80.0, "worked", "")],
        [
            NewRisk(
                "INC-2",
                new_text,
                None,
                "Likely",
                "Major",
                "own|er",
                None,
                "m",
                when,
                None,
                "",
            )
        ],
        run_id="r1",
    )
    old_lines, new_lines = (
        split_lines(text.lstrip("\ufeff")),
        split_lines(update.new_text.lstrip("\ufeff")),
    )
    assert update.new_text.startswith("\ufeff") == text.startswith("\ufeff")
    matcher = difflib.SequenceMatcher(a=old_lines, b=new_lines, autojunk=False)
    status_index = int(risks["line"][risks["risk_id"] == target["risk_id"]].iloc[0])
    for op, i1, i2, j1, j2 in matcher.get_opcodes():
        assert op != "delete"
        if op == "replace":
            for old, new in zip(old_lines[i1:i2], new_lines[j1:j2], strict=False):
                if new == old + eol:  # a final line ending added
                    pass
                else:  # the Status cell, maybe on a last line without ending
                    assert i1 <= status_index - 1 < i2
                    assert "status" in fields
                    # Only the Status cell changed; every other cell as it was.
                    before, after = _cells(old), _cells(new)
                    column = fields.index("status")
                    if len(before) == len(after) - 1 == column and (
                        old.rstrip().endswith("|")
                    ):
                        # "R-3|0||||": alone, the line's last pipe reads as the
                        # closing one; in its table, as the empty Status cell
                        before.append("")
                    assert len(before) == len(after)
                    assert after[column].strip() == "Realized"
                    assert before[:column] == after[:column]
                    assert before[column + 1 :] == after[column + 1 :]
    for line in new_lines:
        assert line.endswith(eol)

    # Read the result: the change is there, nothing else moved.
    reread = parse_register(path, update.new_text)
    risks2 = reread.risks.set_index("risk_id")
    new_id = update.created["INC-2"]
    assert len(reread.risks) == len(rows) + 1
    assert risks2.loc[new_id, "description"] == " ".join(new_text.split()) or (
        risks2.loc[new_id, "description"] == new_text.strip()
    )
    assert risks2.loc[new_id, "owner"] == "own|er"
    for r in rows:
        assert risks2.loc[r["risk_id"], "description"] == r["description"]
        assert (risks2.loc[r["risk_id"], "owner"] or "") == r["owner"]
    if "status" in fields:
        assert risks2.loc[target["risk_id"], "status"] == "Realized"
    assert list(reread.history["event"]) == ["created", "realized"]
    assert not plan_update(
        reread,
        [Realization(target["risk_id"], "INC-1", when, "pd", 80.0, "worked", "")],
        [NewRisk("INC-2", "x", None, None, None, "o", None, "m", when, None, "")],
    ).changed


def test_status_on_a_last_line_without_ending_gets_the_cell_and_the_ending():
    text = "ID|Risk|Likelihood|Owner|Notes|Status\n---|---|---|---|---|---\nR-1|0||||"
    register = parse_register(Path("generated.md"), text)
    when = datetime(2024, 1, 2, tzinfo=UTC)
    update = plan_update(
        register, [Realization("R-1", "INC-1", when, "pd", 80.0, "worked", "")], []
    )
    assert update.new_text.startswith(text + "Realized\n\n## Risk history\n")
