"""Reading, checking and updating risk registers, on real and written fixtures."""

import difflib
import re
import shutil
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest
from filelock import FileLock

from riskanalytics.exceptions import RegisterConflictError, RegisterFormatError
from riskanalytics.register import (
    NewRisk,
    Realization,
    apply_update,
    check_register,
    plan_update,
    read_register,
    store,
)
from riskanalytics.register.ids import add_ids
from riskanalytics.register.parse import cell_spans, split_lines
from riskanalytics.register.scales import choose_scale, to_level
from riskanalytics.schema import RISK_COLUMNS

FIXTURES = Path(__file__).parent / "fixtures" / "register"

READABLE = {
    "akyoseva_percent_scales_bom_crlf.md": ("{:d}", 4),
    "nhs_hazard_index_html_table.md": ("FHIR{:03d}", 7),
    "no_outer_pipes_escaped_cells.md": ("RISK-{:02d}", 3),
    "padded_table_with_history.md": ("OPS-{:d}", 3),
    "platform_risk_register.md": ("R-{:03d}", 30),
    "sre_register_unpadded_ids.md": ("R{:d}", 6),
    "unknown_scale_words.md": ("R-{:d}", 3),
}
UNREADABLE = {
    "duplicate_ids.md": (7, "duplicate risk id 'R-1'"),
    "empty_id_cell.md": (6, "has no id"),
    "ragged_row.md": (6, "expected 6 cells"),
    "turing_no_leading_pipes_no_id.md": (7, "no ID column"),
    "turing_padded_label_line_no_id.md": (10, "no ID column"),
    "nhs_hazard_page_no_id_column.md": (10, "no ID column"),
    "oscal_poam_not_markdown.json": (1, "This is an OSCAL plan of action"),
}
NEXT_IDS = {
    "akyoseva_percent_scales_bom_crlf.md": "5",
    "nhs_hazard_index_html_table.md": "FHIR010",
    "no_outer_pipes_escaped_cells.md": "RISK-04",
    "padded_table_with_history.md": "OPS-30",
    "platform_risk_register.md": "R-031",
    "sre_register_unpadded_ids.md": "R7",
}
WHEN = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def copy_fixture(tmp_path, name):
    target = tmp_path / name
    shutil.copyfile(FIXTURES / name, target)
    return target


def new_risk(incident_id="INC-100", description="Kafka broker disk fills up"):
    return NewRisk(
        incident_id=incident_id,
        description=description,
        category="Capacity",
        likelihood="Likely",
        impact="Major",
        owner="sre-team",
        mitigations="Disk alerts",
        source="alertmanager",
        date=WHEN,
        match_score=21.5,
        review_link="reviews/INC-100.md",
    )


def realization(risk_id, incident_id="INC-200", verdict="failed"):
    return Realization(
        risk_id=risk_id,
        incident_id=incident_id,
        date=WHEN,
        source="pagerduty",
        match_score=77.0,
        mitigation_verdict=verdict,
        review_link="reviews/INC-200.md",
    )


def changed_lines(old: str, new: str):
    """(replaced old lines, deleted old lines, inserted new lines) of a change."""
    a, b = split_lines(old), split_lines(new)
    replaced, deleted, inserted = [], [], []
    matcher = difflib.SequenceMatcher(a=a, b=b, autojunk=False)
    for op, i1, i2, j1, j2 in matcher.get_opcodes():
        if op == "replace":
            replaced += list(zip(a[i1:i2], b[j1 : j1 + (i2 - i1)], strict=True))
            inserted += b[j1 + (i2 - i1) : j2]
        elif op == "delete":
            deleted += a[i1:i2]
        elif op == "insert":
            inserted += b[j1:j2]
    return replaced, deleted, inserted


# --- reading ------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(READABLE))
def test_register_reads_real_and_written_fixtures(name):
    scheme, count = READABLE[name]
    register = read_register(FIXTURES / name)

    assert list(register.risks.columns[: len(RISK_COLUMNS)]) == RISK_COLUMNS
    assert len(register.risks) == count
    assert register.id_scheme == scheme
    assert register.risks["risk_id"].is_unique
    assert str(register.risks["likelihood_level"].dtype) == "Int64"
    lines = split_lines(register.body)
    risks = register.risks
    for risk_id, line in zip(risks["risk_id"], risks["line"], strict=True):
        assert risk_id in lines[line - 1] or register.table.kind == "html"


@pytest.mark.parametrize("name", sorted(READABLE))
def test_register_text_round_trips_to_the_same_bytes(name, tmp_path):
    path = copy_fixture(tmp_path, name)
    original = path.read_bytes()

    register = read_register(path)
    update = plan_update(register, [], [])

    assert register.text.encode("utf-8") == original
    assert update.new_text.encode("utf-8") == original
    assert not update.changed and update.diff == ""
    apply_update(path, [], [])
    assert path.read_bytes() == original


@pytest.mark.parametrize("name", sorted(UNREADABLE))
def test_register_errors_name_file_and_line(name):
    line, words = UNREADABLE[name]
    with pytest.raises(RegisterFormatError) as caught:
        read_register(FIXTURES / name)
    message = str(caught.value)
    assert message.startswith(f"{FIXTURES / name}:{line}:")
    assert words in message


@pytest.mark.parametrize(
    ("edit", "line", "words"),
    [
        # a blank line or a comment cuts the table: the rows after it would vanish
        (("| OPS-28 ", "\n| OPS-28 "), 9, "a table row after the risk table"),
        (("| OPS-28 ", "<!-- to do -->\n| OPS-28 "), 9, "ends at line 7"),
        (("| OPS-28 ", "<!--\nmulti\n-->\n| OPS-28 "), 11, "a blank line or a"),
        (("| 2024-03-02 ", "\n| 2024-03-02 "), 18, "after the history table"),
        # without its heading the history table would be recorded a second time
        (("## Risk history\n", ""), 14, "a risk history table outside"),
    ],
    ids=["blank-line", "comment", "multi-line-comment", "history", "no-heading"],
)
def test_register_refuses_what_would_hide_rows(tmp_path, edit, line, words):
    path = tmp_path / "register.md"
    text = (FIXTURES / "padded_table_with_history.md").read_text(encoding="utf-8")
    assert edit[0] in text
    path.write_text(text.replace(edit[0], edit[1], 1), encoding="utf-8")
    with pytest.raises(RegisterFormatError) as caught:
        read_register(path)
    assert str(caught.value).startswith(f"{path}:{line}:")
    assert words in str(caught.value)


def test_register_prose_and_comments_after_the_table_are_fine(tmp_path):
    path = tmp_path / "register.md"
    text = (FIXTURES / "padded_table_with_history.md").read_text(encoding="utf-8")
    text = text.replace(
        "Reviewed every quarter.",
        "<!-- a note -->\n\n| Legend: L = likelihood |\n\n"
        "    | OPS-99 | an example in a code block | x | 1 | 1 | a | b | Open |\n\n"
        "Reviewed.",
    )
    path.write_text(text, encoding="utf-8")
    assert len(read_register(path).risks) == 3


def test_register_missing_id_column_suggests_adding_ids():
    with pytest.raises(RegisterFormatError, match="Add a first column 'ID'") as caught:
        read_register(FIXTURES / "turing_no_leading_pipes_no_id.md")
    assert "riskanalytics register add-ids" in str(caught.value)


def test_register_keeps_bom_and_crlf_in_text():
    register = read_register(FIXTURES / "akyoseva_percent_scales_bom_crlf.md")
    assert register.text.startswith("\ufeff")
    assert "\r\n" in register.text and "\n" not in register.text.replace("\r\n", "")


def test_register_maps_synonym_headers():
    register = read_register(FIXTURES / "padded_table_with_history.md")
    assert register.columns == {
        "risk_id": "ID",
        "description": "Description",
        "likelihood": "Probability",
        "impact": "Severity",
        "owner": "Risk owner",
        "mitigations": "Existing controls",
        "status": "Status",
    }
    first = register.risks.iloc[0]
    assert first["title"] == "Certificate expiry"
    assert first["description"].endswith("A TLS certificate expires and clients fail")
    assert first["mitigations"] == "cert-manager; expiry alerts"
    assert register.risks.iloc[1]["mitigations"] is None


def test_register_unescapes_pipes_and_keeps_inline_code():
    register = read_register(FIXTURES / "no_outer_pipes_escaped_cells.md")
    risks = register.risks.set_index("risk_id")
    assert risks.loc["RISK-01", "description"] == (
        "Shell `a | b` pipelines lose exit codes"
    )
    assert risks.loc["RISK-03", "mitigations"] == "Retry|backoff"
    assert risks.loc["RISK-03", "description"] == "Unicode — café ☕ outage in zone ü"
    assert risks.loc["RISK-02", "mitigations"] is None
    assert pd.isna(risks.loc["RISK-03", "likelihood_level"])


def test_register_reads_percentages_into_bands():
    register = read_register(FIXTURES / "akyoseva_percent_scales_bom_crlf.md")
    risks = register.risks.set_index("risk_id")
    # Impact 80% 40% 50% 30%, probability 10% 15% 10% 10%.
    assert list(risks["impact_level"]) == [4, 3, 3, 2]
    assert list(risks["likelihood_level"]) == [1, 2, 1, 1]
    assert register.rating("1") == 4
    assert register.rating("missing") is None


def test_register_reads_every_field_of_the_sre_register():
    register = read_register(FIXTURES / "sre_register_unpadded_ids.md")
    risks = register.risks.set_index("risk_id")
    assert list(risks.index) == ["R1", "R2", "R3", "R4", "R5", "R6"]
    assert register.columns["mitigations"] == "Mitigation"  # not Contingency
    r2 = risks.loc["R2"]
    assert r2["description"] == "Misconfigured Alertmanager silences masking incidents"
    assert r2["owner"] == "SRE Lead"
    assert r2["mitigations"] == (
        "Require owner/reason/expiry metadata; weekly silence audit; sandbox tests"
    )
    assert (r2["likelihood"], r2["impact"]) == ("Medium", "High")
    assert r2["status"] is None  # the register has no Status column
    # Low < Medium < High < Critical, on the same 1-5 levels for both.
    assert list(risks["likelihood_level"]) == [3, 3, 3, 2, 3, 2]
    assert list(risks["impact_level"]) == [4, 4, 4, 3, 3, 5]
    assert list(risks["owner"]) == [
        "Platform",
        "SRE Lead",
        "Infra",
        "Security",
        "Observability",
        "Security",
    ]


def test_register_reads_owners_and_status_of_the_platform_register():
    risks = read_register(FIXTURES / "platform_risk_register.md").risks
    risks = risks.set_index("risk_id")
    assert risks.loc["R-002", "owner"] == "network-team"
    assert risks.loc["R-013", "status"] == "Accepted"
    assert (risks["status"] == "Open").sum() == 29
    assert risks.loc["R-009", "mitigations"] == (
        "Disk usage alerts at 80%; log rotation; quotas"
    )
    assert risks["owner"].notna().all() and risks["mitigations"].notna().all()


def test_register_reads_word_scales_and_rating():
    register = read_register(FIXTURES / "platform_risk_register.md")
    assert register.scale_names == {
        "likelihood": "rare..almost certain",
        "impact": "insignificant..severe",
    }
    assert register.rating("R-001") == 4 * 5  # Likely, Severe
    assert register.rating("R-005") == 1 * 4  # Rare, Major
    assert register.rating("R-010") == 3 * 3  # Possible, Moderate


def test_register_unknown_scale_words_warn_with_line(caplog):
    register = read_register(FIXTURES / "unknown_scale_words.md")
    risks = register.risks.set_index("risk_id")
    assert pd.isna(risks.loc["R-1", "likelihood_level"])
    assert risks.loc["R-1", "impact_level"] == 4
    assert risks.loc["R-3", "likelihood_level"] == 4  # "4 - Likely"
    assert risks.loc["R-3", "impact_level"] == 5  # probability 0.9
    assert any(":5: likelihood of R-1" in w for w in register.warnings)
    assert any("'Dreadful'" in w and ":6:" in w for w in register.warnings)
    assert "unknown word 'Sometimes'" in caplog.text


def test_register_user_scales_add_words():
    register = read_register(
        FIXTURES / "unknown_scale_words.md",
        scales={"likelihood": {"sometimes": 3}, "dreadful": 5},
    )
    risks = register.risks.set_index("risk_id")
    assert risks.loc["R-1", "likelihood_level"] == 3
    assert risks.loc["R-2", "impact_level"] == 5


@pytest.mark.parametrize(
    ("values", "kind", "cell", "level"),
    [
        (["Minor", "Significant", "Considerable"], "impact", "Minor", 1),
        (["Minor", "Moderate", "Severe"], "impact", "Minor", 2),
        (["Low", "Medium", "High"], "likelihood", "Medium", 3),
        (["Low", "Critical"], "impact", "Critical", 5),
        (["Almost certain"], "likelihood", "almost  certain", 5),
        ([], "likelihood", "100%", 5),
        ([], "likelihood", "10%", 1),
        ([], "likelihood", "10.5%", 2),
        ([], "impact", "**3**", 3),
        ([], "impact", "Likely (4)", 4),
    ],
)
def test_scales_map_cells_to_levels(values, kind, cell, level):
    assert to_level(cell, choose_scale(values + [cell], kind)) == (level, None)


def test_scales_refuse_out_of_range_numbers():
    scale = choose_scale(["6", "150%"], "impact")
    assert to_level("6", scale)[0] is None
    assert "above 100%" in to_level("150%", scale)[1]


def test_register_reads_html_table_ids_from_page_links():
    register = read_register(FIXTURES / "nhs_hazard_index_html_table.md")
    assert list(register.risks["risk_id"])[:2] == ["FHIR003", "FHIR004"]
    assert register.risks.iloc[4]["description"].startswith("M&A (Linked")


def test_check_register_reports_understanding_and_problems():
    good = check_register(FIXTURES / "akyoseva_percent_scales_bom_crlf.md")
    bad = check_register(FIXTURES / "ragged_row.md")

    assert good.ok and good.risks == 4 and good.bom and good.line_ending == "\r\n"
    text = good.to_text()
    assert "4 risks" in text and "Probability" in text and "CRLF" in text
    assert "no status column" in text
    assert not bad.ok
    assert "ragged_row.md:6" in bad.to_text()


# --- updating -----------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(NEXT_IDS))
def test_register_update_changes_only_expected_lines(name, tmp_path):
    path = copy_fixture(tmp_path, name)
    register = read_register(path)
    target = register.risks["risk_id"].iloc[1]
    before = path.read_bytes().decode("utf-8")

    update = apply_update(
        path, [realization(target)], [new_risk()], run_id="run-7", backup_dir=tmp_path
    )
    after = path.read_bytes().decode("utf-8")
    replaced, deleted, inserted = changed_lines(before, after)

    assert update.created == {"INC-100": NEXT_IDS[name]}
    assert [r.risk_id for r in update.realized] == [target]
    assert deleted == []
    status_line = register.risks["line"].iloc[1] - 1
    for old, new in replaced:
        if old == split_lines(before)[status_line]:
            # Only the Status cell changed; every other cell as it was.
            column = register.table.fields["status"]
            cells_before = [old[a:b] for a, b in cell_spans(old.rstrip("\r\n"))]
            cells_after = [new[a:b] for a, b in cell_spans(new.rstrip("\r\n"))]
            assert cells_after[column].strip() == "Realized"
            del cells_before[column], cells_after[column]
            assert cells_before == cells_after
        else:  # only a missing final line ending may be added
            assert new.startswith(old) and new[len(old) :] in ("\n", "\r\n")
    assert len(replaced) <= 2
    assert any(NEXT_IDS[name] in line for line in inserted)
    assert sum(bool(re.search(r"\|\s*run-7\s*\|", x)) for x in inserted) == 2

    reread = read_register(path)
    risks = reread.risks.set_index("risk_id")
    assert len(reread.risks) == len(register.risks) + 1
    assert risks.loc[NEXT_IDS[name], "description"].endswith(
        "Kafka broker disk fills up"
    )
    if "status" in register.columns:
        assert risks.loc[target, "status"] == "Realized"
    owners = register.risks.set_index("risk_id")["owner"]
    assert risks.loc[owners.index, "owner"].equals(owners)
    history = reread.history
    assert set(history["event"].iloc[-2:]) == {"created", "realized"}
    assert history.iloc[-1]["mitigation_verdict"] == "failed"
    assert history.iloc[-1]["match_score"] == 77.0


def test_register_update_keeps_bom_and_crlf(tmp_path):
    path = copy_fixture(tmp_path, "akyoseva_percent_scales_bom_crlf.md")

    apply_update(path, [realization("2")], [new_risk()], backup_dir=tmp_path)
    data = path.read_bytes()

    assert data.startswith(b"\xef\xbb\xbf")
    assert data.count(b"\n") == data.count(b"\r\n")
    assert b"|5|Kafka broker disk fills up|" in data  # the table's no-space style
    assert b"\r\n## Risk history\r\n" in data


def test_register_update_keeps_padding_of_status_cell(tmp_path):
    path = copy_fixture(tmp_path, "padded_table_with_history.md")
    short = new_risk(description="Disk fills")
    apply_update(path, [realization("OPS-29")], [short], backup_dir=tmp_path)
    lines = path.read_text(encoding="utf-8").splitlines()

    header, row, created = lines[4], lines[8], lines[9]
    assert row.endswith("| Realized |")
    assert len(row) == len(header) == len(created)
    assert created.startswith("| OPS-30 | Disk fills            | Disk fills  ")


def test_register_new_ids_follow_the_file_scheme_and_skip_history_ids(tmp_path):
    path = copy_fixture(tmp_path, "padded_table_with_history.md")
    text = path.read_text(encoding="utf-8").replace(
        "| 2024-03-02 | OPS-28 |", "| 2024-03-02 | OPS-41 |"
    )
    path.write_text(text, encoding="utf-8")

    update = plan_update(
        read_register(path), [], [new_risk("A"), new_risk("B", "Second risk")]
    )

    assert update.created == {"A": "OPS-42", "B": "OPS-43"}


def test_register_update_is_idempotent(tmp_path):
    path = copy_fixture(tmp_path, "platform_risk_register.md")
    events = [realization("R-009"), realization("R-009")]

    first = apply_update(path, events, [new_risk()], backup_dir=tmp_path)
    once = path.read_bytes()
    second = apply_update(path, events, [new_risk()], backup_dir=tmp_path)

    assert first.changed and len(first.realized) == 1
    assert not second.changed and path.read_bytes() == once
    assert sorted(second.already_recorded) == ["INC-100", "INC-200"]
    assert second.existing == {"INC-100": "R-031"}
    assert len(read_register(path).history) == 2


def test_register_realization_already_in_history_is_not_repeated():
    register = read_register(FIXTURES / "padded_table_with_history.md")
    update = plan_update(register, [realization("OPS-28", "PD-1001")], [])
    assert not update.changed and update.already_recorded == ["PD-1001"]


def test_register_without_status_column_records_history_only(tmp_path):
    path = copy_fixture(tmp_path, "sre_register_unpadded_ids.md")
    before = path.read_text(encoding="utf-8")

    apply_update(path, [realization("R3")], [], backup_dir=tmp_path)
    after = path.read_text(encoding="utf-8")

    assert after.startswith(before)
    assert "| R3 | realized | INC-200 | pagerduty | 77.0 | failed |" in after


def test_register_realization_of_a_risk_created_in_the_same_update(tmp_path):
    path = copy_fixture(tmp_path, "platform_risk_register.md")
    register = read_register(path)
    update = plan_update(register, [realization("R-031")], [new_risk()])
    assert "| R-031 | Kafka broker disk fills up |" in update.new_text
    assert "| Realized |\n" in update.new_text.split("| R-031 |")[1]


def test_register_realization_of_unknown_risk_is_refused(tmp_path):
    path = copy_fixture(tmp_path, "platform_risk_register.md")
    before = path.read_bytes()
    with pytest.raises(RegisterConflictError, match="'R-999'"):
        apply_update(path, [realization("R-999")], [new_risk()])
    assert path.read_bytes() == before


def test_register_new_risk_cells_are_escaped(tmp_path):
    path = copy_fixture(tmp_path, "platform_risk_register.md")
    risky = new_risk(description="Pipes | in\ntext and a trailing \\")
    apply_update(path, [], [risky], backup_dir=tmp_path)
    risks = read_register(path).risks.set_index("risk_id")
    assert risks.loc["R-031", "description"] == "Pipes | in text and a trailing \\"


def test_register_dry_run_writes_nothing(tmp_path):
    path = copy_fixture(tmp_path, "platform_risk_register.md")
    before = path.read_bytes()

    update = apply_update(path, [realization("R-001")], [new_risk()], dry_run=True)

    assert update.changed and "+| R-031 |" in update.diff
    assert "-| R-001 |" in update.diff and "+| R-001 |" in update.diff
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]


def test_register_update_keeps_a_backup_of_the_previous_version(tmp_path, caplog):
    path = copy_fixture(tmp_path, "platform_risk_register.md")
    before = path.read_bytes()
    caplog.set_level("INFO")

    apply_update(path, [realization("R-001")], [])

    backups = list((tmp_path / ".risk-register-backups").iterdir())
    assert len(backups) == 1 and backups[0].read_bytes() == before
    assert backups[0].name.startswith("platform_risk_register.")
    assert str(backups[0]) in caplog.text


def test_register_edit_between_read_and_apply_is_kept(tmp_path):
    path = copy_fixture(tmp_path, "platform_risk_register.md")
    planned = plan_update(read_register(path), [realization("R-002")], [new_risk()])

    # A person edits the file after the plan was shown to them.
    text = path.read_text(encoding="utf-8")
    text = text.replace(
        "| network-team | Prefix filters;", "| net-ops | Prefix filters;"
    )
    text = text.replace(
        "dedicated control plane capacity | Open |\n",
        "dedicated control plane capacity | Open |\n"
        "| R-031 | Someone added this risk by hand | Data | Rare | Minor | dba-team "
        "| Checks | Open |\n",
    )
    path.write_text(text, encoding="utf-8")
    update = apply_update(path, [realization("R-002")], [new_risk()])

    risks = read_register(path).risks.set_index("risk_id")
    assert planned.created == {"INC-100": "R-031"}
    assert update.created == {"INC-100": "R-032"}
    assert risks.loc["R-002", "owner"] == "net-ops"
    assert risks.loc["R-002", "status"] == "Realized"
    assert risks.loc["R-031", "description"] == "Someone added this risk by hand"


def test_register_edit_during_the_write_is_kept(tmp_path, monkeypatch):
    path = copy_fixture(tmp_path, "platform_risk_register.md")
    real_write = store.write_temp
    edits = []

    def write_then_edit(target, data, mode=None):
        temp = real_write(target, data, mode)
        if not edits and target == path:
            edits.append(1)  # an editor saves while the update is being written
            text = path.read_text(encoding="utf-8")
            path.write_text(text.replace("| sre-team |", "| sre-oncall |", 1))
        return temp

    monkeypatch.setattr(store, "write_temp", write_then_edit)
    apply_update(path, [realization("R-009")], [])

    risks = read_register(path).risks.set_index("risk_id")
    assert edits == [1]
    assert risks.loc["R-008", "owner"] == "sre-oncall"
    assert risks.loc["R-009", "status"] == "Realized"
    assert not list(tmp_path.glob(".*.tmp"))


def test_register_update_waits_for_the_lock_then_gives_up(tmp_path):
    path = copy_fixture(tmp_path, "platform_risk_register.md")
    before = path.read_bytes()
    with FileLock(str(store.lock_path(path))):
        with pytest.raises(RegisterConflictError, match="waited 0.2 s"):
            apply_update(path, [realization("R-001")], [], lock_timeout=0.2)
    assert path.read_bytes() == before


def test_register_history_heading_without_table_gets_one(tmp_path):
    path = tmp_path / "register.md"
    path.write_text(
        "| ID | Risk | Status |\n|---|---|---|\n| R-01 | Disk | Open |\n\n"
        "## Risk history\n\nNothing yet.\n",
        encoding="utf-8",
    )
    apply_update(path, [realization("R-01")], [], backup_dir=tmp_path)
    text = path.read_text(encoding="utf-8")
    assert text.count("## Risk history") == 1
    assert text.index("| Date | Risk |") < text.index("Nothing yet.")
    assert "| R-01 | Disk | Realized |" in text


def test_register_update_through_a_symlink_keeps_the_link(tmp_path):
    real = copy_fixture(tmp_path, "platform_risk_register.md")
    link = tmp_path / "link.md"
    link.symlink_to(real)

    apply_update(link, [realization("R-001")], [], backup_dir=tmp_path / "b")

    assert link.is_symlink()
    assert "| Realized |" in real.read_text(encoding="utf-8")


def test_register_history_date_may_be_missing():
    register = read_register(FIXTURES / "platform_risk_register.md")
    event = realization("R-001")
    event.date = pd.NaT
    update = plan_update(register, [event], [])
    assert "\n|  | R-001 | realized | INC-200 |" in update.new_text


def test_register_skips_code_blocks_and_legend_tables(tmp_path):
    path = tmp_path / "register.md"
    path.write_text(
        "# Register\n\nExample of the format:\n\n```markdown\n"
        "| ID | Risk | Status |\n|---|---|---|\n| X-1 | Example only | Open |\n```\n\n"
        "| Level | Likelihood | Impact |\n|---|---|---|\n| 1 | Rare | Minor |\n\n"
        "| **Risk ID** | Risk description | Status |\n|:--|:--|:--|\n"
        "| [R-7](risks/r7.md) | Disk fills | Open |\n",
        encoding="utf-8",
    )
    register = read_register(path)
    assert list(register.risks["risk_id"]) == ["R-7"]
    assert register.risks["line"].iloc[0] == 17
    update = plan_update(register, [realization("R-7")], [new_risk()])
    assert "| R-8 | Kafka broker disk fills up | Open |" in update.new_text
    assert "| [R-7](risks/r7.md) | Disk fills | Realized |" in update.new_text


def test_register_turing_table_updates_once_ids_are_added(tmp_path):
    # The real table has no IDs; add them the way the error message suggests.
    lines = (FIXTURES / "turing_no_leading_pipes_no_id.md").read_text("utf-8")
    lines = lines.splitlines(keepends=True)
    lines[6] = "ID | " + lines[6]
    lines[7] = "-- |" + lines[7]
    for n, i in enumerate(range(8, 13), start=1):
        lines[i] = f"DSH-{n} | " + lines[i]
    path = tmp_path / "risk_register.md"
    path.write_text("".join(lines), encoding="utf-8")
    before = path.read_text(encoding="utf-8")

    register = read_register(path)
    apply_update(path, [realization("DSH-2")], [new_risk()], backup_dir=tmp_path)
    after = path.read_text(encoding="utf-8")

    assert register.columns["impact"] == "Severity"
    assert register.columns["description"] == "Description"
    assert register.risks["title"].iloc[0] == "Azure Platform Compromise"
    assert register.rating("DSH-1") == 5
    assert after.startswith(before)
    assert (
        "\nDSH-6 | Kafka broker disk fills up | Kafka broker disk fills up | " in after
    )
    assert "| Likely | Major |  |\n" in after  # Score left empty, trailing pipe kept


def test_register_update_keeps_file_mode_and_backs_up_with_it(tmp_path):
    path = copy_fixture(tmp_path, "platform_risk_register.md")
    path.chmod(0o444)

    apply_update(path, [realization("R-001")], [])

    backup = next((tmp_path / ".risk-register-backups").iterdir())
    assert path.stat().st_mode & 0o777 == 0o444
    assert backup.stat().st_mode & 0o777 == 0o444
    assert store.lock_path(path).name == "platform_risk_register.md.riskanalytics.lock"


# --- adding ids -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "count"),
    [("turing_no_leading_pipes_no_id.md", 5), ("turing_padded_label_line_no_id.md", 6)],
)
def test_register_add_ids_changes_only_the_table_lines(name, count, tmp_path):
    path = copy_fixture(tmp_path, name)
    before = path.read_text(encoding="utf-8")

    preview = add_ids(path, dry_run=True)
    assert path.read_text(encoding="utf-8") == before and not preview.written
    result = add_ids(path)
    after = path.read_text(encoding="utf-8")

    ids = [f"R-{n:03d}" for n in range(1, count + 1)]
    assert result.ids == preview.ids == ids and result.written
    replaced, deleted, inserted = changed_lines(before, after)
    assert deleted == [] and inserted == []
    assert len(replaced) == count + 2  # header, delimiter line and every row
    for old, new in replaced:
        assert new.endswith(old.lstrip("| ")) or new.endswith(old)
    register = read_register(path)
    assert list(register.risks["risk_id"]) == ids
    assert register.risks["description"].iloc[0].startswith("Azure")
    assert register.columns["impact"] == "Severity"
    backups = list((tmp_path / ".risk-register-backups").iterdir())
    assert [b.read_text(encoding="utf-8") for b in backups] == [before]
    with pytest.raises(RegisterFormatError, match="already has an ID column"):
        add_ids(path)


def test_register_add_ids_refuses_a_page_without_a_pipe_table(tmp_path):
    path = copy_fixture(tmp_path, "nhs_hazard_page_no_id_column.md")
    before = path.read_bytes()
    with pytest.raises(RegisterFormatError, match="HTML table"):
        add_ids(path)
    assert path.read_bytes() == before


def test_two_incidents_realizing_one_risk_in_one_run_write_realized_once(tmp_path):
    path = copy_fixture(tmp_path, "platform_risk_register.md")
    events = [realization("R-018", "INC-1"), realization("R-018", "INC-2")]

    apply_update(path, events, [], backup_dir=tmp_path)

    register = read_register(path)
    status = register.risks.set_index("risk_id").at["R-018", "status"]
    assert status == "Realized"
    assert "Realizedzed" not in path.read_text(encoding="utf-8")
    assert list(register.history["incident_id"]) == ["INC-1", "INC-2"]


def test_register_add_ids_keeps_a_delimiter_row_without_spaces_in_its_style(tmp_path):
    path = tmp_path / "risk-register.md"
    path.write_text(
        "| Risk | Owner |\n|------|-------|\n| Disk fills up | sre |\n",
        encoding="utf-8",
    )
    add_ids(path)
    assert path.read_text(encoding="utf-8") == (
        "| ID    | Risk | Owner |\n|-------|------|-------|\n"
        "| R-001 | Disk fills up | sre |\n"
    )


def test_readme_lists_every_header_name_the_parser_reads():
    from riskanalytics.register.parse import _SYNONYMS

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    for field, names in _SYNONYMS.items():
        (row,) = [
            line for line in readme.splitlines() if line.startswith(f"| {field} |")
        ]
        assert row.split(" | ")[1].rstrip(" |") == ", ".join(f"`{n}`" for n in names)


def test_a_second_risk_table_is_refused_naming_its_line(tmp_path):
    path = tmp_path / "risk-register.md"
    header = "| ID | Risk | Owner |\n|----|------|-------|\n"
    text = (
        f"# Risks\n\n{header}| R-001 | Disk fills up | sre |\n\nMore risks:\n\n"
        f"{header}| R-002 | DNS fails | net |\n"
    )
    path.write_text(text, encoding="utf-8")
    with pytest.raises(RegisterFormatError, match=r"risk-register.md:9: a second"):
        read_register(path)
    assert not check_register(path).ok
    assert path.read_text(encoding="utf-8") == text
