"""Matching incidents to risks: scores, decisions, candidates, evidence, engines."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from riskanalytics.config import MatchingConfig
from riskanalytics.exceptions import ConfigError
from riskanalytics.match import (
    PARALLEL_MIN_INCIDENTS,
    SCORE_SCALE,
    Matcher,
    _cause_and_effect,
    _english_stop_words,
    _top_columns,
    load_synonyms,
    match_incidents,
    readable_terms,
)
from riskanalytics.register import read_register
from riskanalytics.schema import MATCH_COLUMNS

DEV = Path(__file__).parent / "fixtures" / "match" / "dev"

RISKS = pd.DataFrame(
    [
        {
            "risk_id": "R-1",
            "description": "A memory leak leads to out of memory kills and crash loops",
            "category": "Software",
            "mitigations": "Memory limits; heap profiling",
        },
        {
            "risk_id": "R-2",
            "description": "A TLS certificate expires and clients reject connections",
            "category": "Security",
            "mitigations": "Automated renewal; expiry alerts",
        },
        {
            "risk_id": "R-3",
            "description": "A Kubernetes cluster upgrade breaks workloads",
            "category": "Infrastructure",
            "mitigations": "Upgrade staging first",
        },
        {
            "risk_id": "R-4",
            "description": "A disk fills up and database writes fail",
            "category": "Capacity",
            "mitigations": "Disk usage alerts; log rotation",
        },
    ]
)


def incidents(*rows: dict) -> pd.DataFrame:
    frame = pd.DataFrame(list(rows))
    for column in ("incident_id", "title", "root_cause", "impact", "category"):
        if column not in frame.columns:
            frame[column] = pd.NA
    return frame


def one(matcher: Matcher, **fields) -> pd.Series:
    return matcher.match(incidents({"incident_id": "I-1", **fields})).iloc[0]


def test_score_scale_is_zero_to_hundred():
    assert SCORE_SCALE == (0, 100)


@pytest.mark.parametrize(
    ("root_cause", "expected"),
    [
        ("Pods were OOMKilled after the heap kept growing", "R-1"),
        ("The k8s control nodes were moved to 1.30 and pods failed", "R-3"),
        ("Our cert lapsed; browsers refused the handshake", "R-2"),
        ("No space left on device on the postgres volume", "R-4"),
    ],
)
def test_synonyms_bring_different_words_together(root_cause, expected):
    row = one(Matcher(RISKS), root_cause=root_cause)
    assert row["candidates"].split(";")[0].split(":")[0] == expected
    assert row["evidence"]["failure_modes"]


def test_a_longer_phrase_keeps_the_failure_modes_of_its_shorter_form():
    # "ddos" signals an overload and a breach; "ddos attack" must not drop one
    risks = pd.DataFrame(
        [
            {"risk_id": "R-1", "description": "A traffic spike overloads the site"},
            {"risk_id": "R-2", "description": "A zebra escapes the zoo"},
        ]
    )
    for text in ("A DDoS hit the site", "A DDoS attack hit the site"):
        row = one(Matcher(risks), root_cause=text)
        assert "overload" in row["evidence"]["failure_modes"], text


def test_synonyms_explain_the_match_in_evidence():
    row = one(Matcher(RISKS), root_cause="Service OOMKilled repeatedly")
    assert "memory" in row["evidence"]["failure_modes"]
    assert row["evidence"]["runner_ups"] == [
        {"risk_id": r, "score": float(s)}
        for r, s in (c.split(":") for c in row["candidates"].split(";")[1:])
    ]


def test_without_vocabulary_synonyms_do_not_match():
    plain = Matcher(RISKS, synonyms={})
    row = one(plain, root_cause="Service OOMKilled repeatedly")
    assert row["candidates"] == ""
    assert row["match_score"] == 0.0


@pytest.mark.parametrize(
    "fields",
    [
        {"root_cause": "", "title": ""},
        {"root_cause": None, "title": None},
        {"root_cause": float("nan"), "title": pd.NA, "impact": pd.NA},
        {"root_cause": "   ", "title": "!!! ---"},
    ],
)
def test_empty_text_is_new_with_score_zero(fields):
    row = one(Matcher(RISKS), **fields)
    assert row["decision"] == "new"
    assert row["match_score"] == 0.0
    assert row["candidates"] == ""
    assert pd.isna(row["risk_id"])


def test_empty_register_gives_new_for_every_incident():
    empty = pd.DataFrame(columns=["risk_id", "description"])
    result = Matcher(empty).match(
        incidents({"incident_id": "I-1", "root_cause": "disk full"})
    )
    assert result["decision"].tolist() == ["new"]
    assert result["match_score"].tolist() == [0.0]


def test_no_incidents_gives_empty_table_with_columns():
    result = Matcher(RISKS).match(incidents())
    assert len(result) == 0
    assert set(MATCH_COLUMNS) <= set(result.columns)


def test_id_column_is_accepted_for_incident_id():
    frame = pd.DataFrame([{"id": "X-9", "root_cause": "disk full"}])
    assert Matcher(RISKS).match(frame)["incident_id"].tolist() == ["X-9"]


def test_very_long_text_is_scored_within_scale():
    text = "The disk filled up and writes failed. " * 5000 + "x" * 100_000
    row = one(Matcher(RISKS), root_cause=text)
    assert 0 <= row["match_score"] <= 100
    assert row["candidates"].startswith("R-4:")


def test_non_english_text_does_not_fail():
    rows = incidents(
        {"incident_id": "de", "root_cause": "Zertifikat abgelaufen, Verbindung "},
        {"incident_id": "ja", "root_cause": "証明書の有効期限が切れました"},
        {"incident_id": "ru", "root_cause": "Диск переполнен"},
    )
    result = Matcher(RISKS).match(rows)
    assert result["match_score"].between(0, 100).all()
    assert result["decision"].isin(["matched", "review", "new"]).all()


def test_duplicated_risks_tie_and_the_first_listed_wins():
    doubled = pd.concat(
        [RISKS, RISKS.iloc[[3]].assign(risk_id="R-4b")], ignore_index=True
    )
    row = one(Matcher(doubled), root_cause="The disk filled up, writes failed")
    first, second = row["candidates"].split(";")[:2]
    assert first.startswith("R-4:") and second.startswith("R-4b:")
    assert first.split(":")[1] == second.split(":")[1]


def test_duplicated_risk_id_keeps_the_first_and_warns(caplog):
    doubled = pd.concat([RISKS, RISKS.iloc[[0]]], ignore_index=True)
    with caplog.at_level(logging.WARNING, logger="riskanalytics.match"):
        matcher = Matcher(doubled)
    assert matcher.risk_ids == ["R-1", "R-2", "R-3", "R-4"]
    assert "R-1" in caplog.text


SOME = incidents(
    {"incident_id": "a", "root_cause": "The disk filled up and writes failed"},
    {"incident_id": "b", "root_cause": "A pod was OOMKilled"},
    {"incident_id": "c", "title": "Clients saw certificate errors"},
    {"incident_id": "d", "root_cause": "The payroll batch was late"},
    {"incident_id": "e", "root_cause": ""},
)


@pytest.mark.parametrize(
    ("matched", "review"), [(55, 35), (80, 10), (0, 0), (100, 100)]
)
def test_thresholds_decide_from_the_best_score(matched, review):
    result = Matcher(RISKS, matched_threshold=matched, review_threshold=review).match(
        SOME
    )
    for row in result.itertuples():
        if row.candidates and row.match_score >= matched:
            assert row.decision == "matched"
            assert row.risk_id == row.candidates.split(":")[0]
        elif row.candidates and row.match_score >= review:
            assert row.decision == "review" and pd.isna(row.risk_id)
        else:
            assert row.decision == "new" and pd.isna(row.risk_id)


def test_default_thresholds_match_clear_cases_and_not_unrelated_ones():
    result = Matcher(RISKS).match(SOME).set_index("incident_id")
    assert result.loc["a", "decision"] == "matched"
    assert result.loc["d", "decision"] == "new"


def test_thresholds_out_of_order_are_refused():
    with pytest.raises(ValueError, match="review_threshold"):
        Matcher(RISKS, matched_threshold=30, review_threshold=60)


def test_candidates_format_is_best_first_top_k_one_decimal():
    result = Matcher(RISKS, top_k=2).match(SOME)
    pattern = re.compile(r"^R-\d+:\d{1,3}\.\d(;R-\d+:\d{1,3}\.\d)*$")
    for row in result.itertuples():
        if not row.candidates:
            continue
        assert pattern.match(row.candidates)
        scores = [float(c.split(":")[1]) for c in row.candidates.split(";")]
        assert len(scores) <= 2
        assert scores == sorted(scores, reverse=True)
        assert scores[0] == row.match_score


def test_result_has_match_columns_and_decided_by_score():
    result = Matcher(RISKS).match(SOME)
    assert list(result.columns[: len(MATCH_COLUMNS)]) == MATCH_COLUMNS
    assert set(result["decided_by"]) == {"score"}
    assert result["incident_id"].tolist() == list("abcde")
    assert all(isinstance(e, dict) for e in result["evidence"])


def test_formal_statement_weighs_its_cause_above_its_consequence():
    formal = pd.DataFrame(
        [
            {
                "risk_id": "RSK-01",
                "description": "There is a risk that the TLS certificate expires, "
                "resulting in customers being unable to log in",
            },
            {
                "risk_id": "RSK-02",
                "description": "There is a risk that the login service is deployed "
                "with a bug, resulting in failed payments",
            },
        ]
    )
    matcher = Matcher(formal)
    cause = one(matcher, root_cause="The certificate expired")
    consequence = one(matcher, root_cause="Customers were unable to log in")
    assert cause["candidates"].startswith("RSK-01")
    assert cause["match_score"] > consequence["match_score"]


def test_chunking_does_not_change_results():
    whole = Matcher(RISKS).match(SOME)
    chunked = Matcher(RISKS, chunk_size=2).match(SOME)
    pd.testing.assert_frame_equal(whole, chunked)


@pytest.fixture(scope="module")
def dev():
    risks = read_register(DEV / "risk-register.md").risks
    frame = pd.read_json(DEV / "incidents.jsonl", lines=True, dtype=False)
    labels = pd.read_csv(DEV / "labels.csv", dtype=str)
    return risks, frame.rename(columns={"id": "incident_id"}), labels


def test_candidate_retrieval_gives_the_exhaustive_top_one(dev):
    risks, frame, _ = dev
    narrow = Matcher(risks, candidate_pool=5).match(frame)
    exhaustive = Matcher(risks, candidate_pool=None).match(frame)
    first = narrow["candidates"].str.split(":").str[0]
    assert first.tolist() == exhaustive["candidates"].str.split(":").str[0].tolist()
    assert narrow["match_score"].tolist() == exhaustive["match_score"].tolist()


def test_dev_set_accuracy_stays_above_floor(dev):
    """A regression guard on the labeled dev set, with the fixed default config."""
    risks, frame, labels = dev
    result = match_incidents(frame, risks, MatchingConfig())
    acceptable = dict(
        zip(labels["id"], labels["acceptable"].str.split(";"), strict=True)
    )
    correct = top3 = 0
    for row in result.itertuples():
        ok = acceptable[row.incident_id]
        predicted = row.risk_id if row.decision == "matched" else "NONE"
        ranked = [c.split(":")[0] for c in row.candidates.split(";") if c]
        correct += predicted in ok
        top3 += bool(set(ranked[:3]) & set(ok)) or ok == ["NONE"]
    assert correct / len(result) >= 0.80
    assert top3 / len(result) >= 0.90


def test_synonyms_file_extends_the_vocabulary(tmp_path):
    path = tmp_path / "synonyms.yaml"
    path.write_text("failure_modes:\n  disk_full:\n    - zorbfull\n", encoding="utf-8")
    modes = load_synonyms(path)
    assert "zorbfull" in modes["disk_full"]
    assert "oom" in modes["memory"]
    config = MatchingConfig(synonyms_path=path)
    rows = incidents({"incident_id": "z", "root_cause": "zorbfull on host"})
    assert match_incidents(rows, RISKS, config)["candidates"][0].startswith("R-4")


def test_malformed_synonyms_file_names_file_and_key(tmp_path):
    path = tmp_path / "synonyms.yaml"
    path.write_text("failure_modes:\n  disk_full: {a: 1}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"synonyms\.yaml[\s\S]*disk_full"):
        load_synonyms(path)


@pytest.mark.timeout(120)
def test_dask_engine_gives_the_local_result():
    distributed = pytest.importorskip("dask.distributed")
    from riskanalytics.match import _match_dask

    rows = pd.concat([SOME] * 3, ignore_index=True)
    rows["incident_id"] = [f"I-{i}" for i in range(len(rows))]
    local = match_incidents(rows, RISKS, MatchingConfig())
    # a matcher that learnt from confirmed incidents travels to the workers too
    learnt = Matcher(RISKS, chunk_size=2, examples={"R-1": ["heap grew until OOM"]})
    with distributed.LocalCluster(
        n_workers=1, threads_per_worker=2, processes=False, dashboard_address=":0"
    ) as cluster:
        config = MatchingConfig(engine="dask", dask_scheduler=cluster.scheduler_address)
        remote = match_incidents(rows, RISKS, config)
        remote_learnt = _match_dask(learnt, rows, cluster.scheduler_address)
    pd.testing.assert_frame_equal(local, remote)
    pd.testing.assert_frame_equal(learnt.match(rows), remote_learnt)


@pytest.mark.timeout(120)
@pytest.mark.parametrize(
    ("copies", "chunk_size", "workers", "threads"),
    [(4, 3, 2, 1), (3, 2, 1, 2)],
    ids=["several-chunks", "repeated-texts"],
)
def test_dask_engine_on_chunks_gives_the_local_result(
    copies, chunk_size, workers, threads
):
    distributed = pytest.importorskip("dask.distributed")
    from riskanalytics.match import _match_dask

    rows = pd.concat([SOME] * copies, ignore_index=True)
    rows["incident_id"] = [f"I-{i}" for i in range(len(rows))]
    matcher = Matcher(RISKS, chunk_size=chunk_size)
    with distributed.LocalCluster(
        n_workers=workers,
        threads_per_worker=threads,
        processes=False,
        dashboard_address=":0",
    ) as cluster:
        remote = _match_dask(matcher, rows, cluster.scheduler_address)
    pd.testing.assert_frame_equal(matcher.match(rows), remote)


def test_candidate_search_by_blocks_equals_a_full_sort_with_ties():
    rng = np.random.default_rng(3)
    values = rng.random((60, 1000)).astype(np.float32)
    values[:10, :200] = 0.5  # ties across many blocks
    values[10:20] = 0.0  # all tied
    values[20:30, ::97] = 2.0  # more maxima than places, far apart
    values[30:40] = np.round(values[30:40], 1)  # ties at the cut-off
    for pool in (1, 3, 10):
        found = _top_columns(values, pool)
        # the reference: stable sort, best first, ties by leftmost column
        expected = np.sort(np.argsort(-values, axis=1, kind="stable")[:, :pool])
        assert (found == expected).all(), pool


@pytest.mark.parametrize(
    ("text", "cause", "effect"),
    [
        ("A bad config push caused all routers to crash.", "bad config", "routers"),
        ("Routers crashed DUE TO a bad config push", "bad config", "routers"),
        ("Disk full. Writes failed because of the disk", "disk full", "writes"),
        ("Nothing links these words", "nothing links", ""),
        ("Wrong bucket settings lead to a data leak", "bucket settings", "data leak"),
    ],
)
def test_root_cause_splits_into_cause_and_effect(text, cause, effect):
    found_cause, found_effect = _cause_and_effect(text)
    assert cause in found_cause
    assert effect in found_effect
    if effect:
        assert effect not in found_cause


@pytest.mark.timeout(120)
def test_worker_processes_give_the_one_process_result(dev):
    risks, frame, _ = dev
    # confirmed incidents too: their vectors travel with the matcher
    examples = {"R-004": [frame["root_cause"].iloc[0]], "R-018": ["a bad deploy"]}
    alone = Matcher(risks, chunk_size=40, examples=examples).match(frame)
    shared = Matcher(risks, chunk_size=40, workers=2, examples=examples).match(frame)
    pd.testing.assert_frame_equal(alone, shared)


def test_repeated_texts_are_scored_once_with_the_rows_of_scoring_each(dev):
    risks, frame, _ = dev
    rng = np.random.default_rng(5)
    rows = frame.iloc[rng.integers(0, 40, size=120)].reset_index(drop=True)
    rows.loc[::7, "root_cause"] = None  # empty texts repeat too
    rows["incident_id"] = [f"I-{i}" for i in range(len(rows))]
    matcher = Matcher(risks, chunk_size=50)
    every_row = pd.concat(
        [matcher._match_chunk(rows.iloc[i : i + 50]) for i in range(0, 120, 50)],
        ignore_index=True,
    )
    once = matcher.match(rows)
    pd.testing.assert_frame_equal(once, every_row)
    evidence = once["evidence"].tolist()
    assert len({id(e) for e in evidence}) == len(evidence)


def test_incidents_without_text_columns_are_new():
    result = Matcher(RISKS).match(pd.DataFrame({"incident_id": ["a", "b"]}))
    assert result["incident_id"].tolist() == ["a", "b"]
    assert result["decision"].tolist() == ["new", "new"]


def test_worker_processes_by_default_only_for_large_inputs(monkeypatch):
    monkeypatch.setattr("os.cpu_count", lambda: 2)
    matcher = Matcher(RISKS)
    assert matcher._workers_for(100, 1) == 1
    assert matcher._workers_for(PARALLEL_MIN_INCIDENTS, 10) == 2
    assert Matcher(RISKS, workers=1)._workers_for(PARALLEL_MIN_INCIDENTS, 10) == 1
    assert Matcher(RISKS, workers=3)._workers_for(10, 2) == 1


def test_packaged_stop_words_are_scikit_learns():
    text = pytest.importorskip("sklearn.feature_extraction.text")
    assert _english_stop_words() == text.ENGLISH_STOP_WORDS


FORMAL = Path(__file__).parent / "fixtures" / "match" / "formal"


def test_formal_register_of_another_domain_matches_its_incidents():
    """'There is a risk that ...' statements, numeric scales, other columns."""
    risks = read_register(FORMAL / "risk-register.md").risks
    frame = pd.read_json(FORMAL / "incidents.jsonl", lines=True, dtype=False)
    labels = pd.read_csv(FORMAL / "labels.csv", dtype=str)
    result = Matcher(risks).match(frame)
    expected = dict(zip(labels["id"], labels["best"], strict=True))
    for row in result.itertuples():
        first = row.candidates.split(":")[0] if row.candidates else "NONE"
        if expected[row.incident_id] == "NONE":
            assert row.decision != "matched", row.incident_id
        else:
            assert first == expected[row.incident_id], row.incident_id
    matched = result[result["decision"] == "matched"]
    assert len(matched) >= 6
    assert (matched["risk_id"] == matched["incident_id"].map(expected)).all()


def test_a_bare_key_is_not_a_credential():
    risks = pd.DataFrame(
        [
            {"risk_id": "C-1", "description": "Expired credentials break logins"},
            {"risk_id": "C-2", "description": "A disk fills up and writes fail"},
        ]
    )
    row = one(Matcher(risks), root_cause="The Enter key on one laptop was stuck")
    assert row["decision"] != "matched"
    assert "credentials" not in row["evidence"]["failure_modes"]
    row = one(Matcher(risks), root_cause="An API key was rotated and logins failed")
    assert row["risk_id"] == "C-1"


def test_the_platform_weighs_less_than_what_failed():
    row = one(
        Matcher(RISKS),
        title="Kubernetes outage",
        root_cause="The disk of a Kubernetes node filled up and pods failed",
    )
    assert row["candidates"].split(":")[0] == "R-4"


def test_categories_and_mitigations_do_not_make_a_failure_mode_common():
    described = RISKS.assign(category="Software", mitigations="Memory limits")
    plain = RISKS.assign(category="", mitigations="")
    a, b = Matcher(described)._modes, Matcher(plain)._modes
    term = "fm:memory"
    assert a.idf[a.index[term]] == pytest.approx(b.idf[b.index[term]])
    # a term found only in a category still has a weight
    only = RISKS.assign(category=["Software", "", "", ""])
    space = Matcher(only)._modes
    assert space.idf[space.index["fm:software_bug"]] > 0


def test_sharing_only_the_platform_is_reviewed_not_matched():
    risks = pd.DataFrame(
        [
            {"risk_id": "K-1", "description": "A Kubernetes upgrade breaks pods"},
            {"risk_id": "K-2", "description": "A disk fills up and writes fail"},
        ]
    )
    row = one(Matcher(risks), title="Kubernetes", root_cause="Kubernetes pods")
    assert row["candidates"].split(":")[0] == "K-1"
    assert row["match_score"] >= 55
    assert row["evidence"]["failure_modes"] == ["kubernetes"]
    assert row["decision"] == "review"
    assert pd.isna(row["risk_id"])
    row = one(Matcher(risks), root_cause="The Kubernetes upgrade broke all pods")
    assert row["decision"] == "matched"
    assert row["risk_id"] == "K-1"
    # a risk about the platform itself has nothing else to share
    risks.loc[0, "description"] = "Kubernetes itself is unstable"
    row = one(Matcher(risks), title="Kubernetes", root_cause="Kubernetes pods")
    assert row["decision"] == "matched"


def test_a_register_of_another_domain_does_not_match_on_one_generic_mode():
    risks = pd.DataFrame(
        [
            {"risk_id": "H-1", "description": "Transcription error on the network"},
            {"risk_id": "H-2", "description": "Unclear headings in discharge letters"},
        ]
    )
    row = one(
        Matcher(risks),
        root_cause="A fiber cable was cut; DNS, BGP routing and TLS handshakes failed",
    )
    assert row["decision"] != "matched"


def test_a_register_that_names_no_failure_mode_still_matches_on_words():
    risks = pd.DataFrame(
        [
            {"risk_id": "H-1", "description": "Unclear headings in discharge letters"},
            {"risk_id": "H-2", "description": "Transcription error in drug names"},
        ]
    )
    matcher = Matcher(risks)
    row = one(matcher, root_cause="DNS and BGP routing failed after a config push")
    assert row["decision"] == "new"
    row = one(matcher, root_cause="A transcription error swapped two drug names")
    assert row["candidates"].split(":")[0] == "H-2"


def test_readable_terms_show_stems_as_the_incident_words():
    terms = ["certificat", "expir", "releas softwar", "dn"]
    text = "A release of buggy software; the TLS Certificate EXPIRED."
    assert readable_terms(terms, None, text) == [
        "certificate",
        "expired",
        "release software",
        "dn",
    ]


def test_the_sources_own_category_is_evidence():
    risks = pd.DataFrame(
        [
            {"risk_id": "C-1", "description": "A bad configuration change is pushed"},
            {"risk_id": "C-2", "description": "A disk fills up and writes fail"},
        ]
    )
    matcher = Matcher(risks)
    vague = "Every page showed a warning to every visitor"
    assert one(matcher, root_cause=vague)["decision"] == "new"
    row = one(matcher, root_cause=vague, category="Config Errors")
    assert row["candidates"].split(":")[0] == "C-1"
    assert row["evidence"]["field_overlap"]["category"] > 0
    # a placeholder classifies nothing
    placeholder = one(matcher, root_cause=vague, category="Uncategorized")
    assert placeholder["candidates"] == one(matcher, root_cause=vague)["candidates"]


def test_a_platforms_own_write_up_is_not_a_provider_outage():
    risks = pd.DataFrame(
        [
            {
                "risk_id": "P-1",
                "description": "A cloud provider has an outage",
                "mitigations": "Multi-region design",
            },
            {
                "risk_id": "P-2",
                "description": "A release ships a software bug that causes errors",
            },
        ]
    )
    matcher = Matcher(risks)
    customer = one(
        matcher, title="Shop", root_cause="An AWS outage in the us-east-1 region"
    )
    assert customer["candidates"].split(":")[0] == "P-1"
    own = one(
        matcher,
        title="Azure Storage - West Europe",
        root_cause="A software bug left customers in the region without storage",
    )
    assert own["candidates"].split(":")[0] == "P-2"
    assert "cloud" not in own["evidence"]["failure_modes"]


def test_an_incident_like_a_confirmed_one_ranks_its_risk_first():
    risks = pd.DataFrame(
        [
            {"risk_id": "V-1", "description": "A payment vendor fails"},
            {"risk_id": "V-2", "description": "A disk fills up and writes fail"},
        ]
    )
    confirmed = "Checkout froze: the acquirer gateway timed out for card payments"
    later = "The acquirer gateway timed out again; checkout froze"
    plain = one(Matcher(risks), root_cause=later)
    assert plain["decision"] == "new"
    assert "confirmed_alike" not in plain["evidence"]
    # among other confirmed incidents of the risk, the one most alike counts
    others = ["vendor api returned 500s", "vendor outage", "vendor rate limit hit"]
    matcher = Matcher(risks, examples={"V-1": [*others, confirmed]})
    learnt = one(matcher, root_cause=later)
    assert learnt["decision"] == "matched" and learnt["risk_id"] == "V-1"
    assert learnt["evidence"]["confirmed_alike"] > 50
    # examples of a risk the register lacks are ignored
    stray = one(Matcher(risks, examples={"V-9": [confirmed]}), root_cause=later)
    assert stray["decision"] == "new"
