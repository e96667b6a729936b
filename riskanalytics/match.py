"""Match incidents to the risks of a register, with a score and the evidence.

Scores
------
Every score is on one scale, ``SCORE_SCALE = (0, 100)``:

- **0**: the incident and the risk share no failure mode and no word.
- **35** (default ``matching.review_threshold``): they share some specific
  vocabulary; an analyst should look (decision ``review``).
- **55** (default ``matching.matched_threshold``): the incident describes the
  failure mode the risk predicted (decision ``matched``).
- **100**: the incident is worded like the risk itself.

A score blends three similarities between the incident's text and the risk's
profile, each between 0 and 1:

- *failure modes* (weight 0.50): both texts are mapped onto a vocabulary of
  failure modes (``riskanalytics/data/synonyms.yaml``: "OOMKilled", "out of
  memory" and "memory leak" all mean ``memory``); a cosine of TF-IDF vectors
  whose weights say how specific each mode is to few risks of the register;
- *words* (weight 0.30): the same cosine over lightly stemmed words and word
  pairs;
- *spelling* (weight 0.20): rapidfuzz ``token_set_ratio`` of the raw texts,
  counted only for risks that share a word or a failure mode with the incident.

The blend maps piecewise linearly onto 0-100: 0.30 gives 55, 1.0 gives 100.

Fields carry different weights: an incident's root cause counts most (its
effect part, "... caused EFFECT", a little less), then its title, then its
impact, then its ``category`` (the source's own classification, such as a
postmortem collection's heading or a report's tags); a risk's description
counts more
than its mitigations and category, and a formal "There is a risk that CAUSE
resulting in CONSEQUENCE" counts its cause more than its consequence.
How specific a term is (its IDF) is counted over the risks' statements only
(title, description, consequence, confirmed examples), not over mitigations and
categories that many risks share; failure modes that name a technology rather
than a failure (``CONTEXT_MODES``: Kubernetes) keep half their IDF, and a best
risk that shares no other failure mode with the incident, though it names one,
is sent to ``review`` rather than ``matched``, whatever its score (a risk about
the platform itself has nothing else to share, and is exempt). An incident
whose title names a cloud platform ("Azure Storage - West Europe") is that
platform's own write-up: its cloud words say where it happened, not that a
provider failed its customers, and its ``cloud`` failure mode is dropped.
An incident's failure modes that no risk of the register names count fully in
its norm (a plain cosine): an incident about something else does not match on
one generic mode it shares; of its words, those the register does not use count
a quarter.

Incidents analysts confirmed for a risk (``examples``, from the decisions file)
join that risk's profile, and the one most like a new incident adds its word
cosine, weighted ``EXAMPLE_WEIGHT`` (0.3), to that risk's blend: a kind of
incident seen and confirmed before is recognised again, however many other
incidents the risk has (``evidence["confirmed_alike"]``, 0-100).

Scale
-----
For 100,000 incidents against 5,000 risks, candidates are retrieved with
sparse products over chunks of incidents (memory grows with the chunk, not
with incidents x risks), and only the best ``candidate_pool`` risks of each
incident are re-scored for spelling (the spelling weight can reorder only
risks whose retrieval scores are within 0.2 of each other). With a pool at
least as large as the register (``candidate_pool=None``) every pair is scored;
on the dev set the default pool of 10 gives the same answers. Each distinct
incident text (title, root cause, impact, category) is analysed and scored
once, and its row repeated for the incidents that share it. From
``PARALLEL_MIN_INCIDENTS`` distinct texts on, chunks are scored in one worker
process per core (each re-scores spelling on one thread; in one process the
re-score uses every core). ``engine: dask`` in the config runs the chunks on a
Dask cluster with identical results.
"""

from __future__ import annotations

import logging
import math
import multiprocessing
import os
import re
import time
import unicodedata
from collections.abc import Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
import yaml
from rapidfuzz import fuzz, process
from tqdm import tqdm

from riskanalytics.exceptions import ConfigError

if TYPE_CHECKING:
    from riskanalytics.config import MatchingConfig
    from riskanalytics.decisions import Decisions

__all__ = [
    "SCORE_SCALE",
    "Matcher",
    "load_synonyms",
    "match_incidents",
    "readable_terms",
]

log = logging.getLogger(__name__)

SCORE_SCALE = (0, 100)

#: Columns of the returned match table: schema.MATCH_COLUMNS plus ``decided_by``.
OUTPUT_COLUMNS = [
    "incident_id",
    "risk_id",
    "match_score",
    "decision",
    "candidates",
    "evidence",
    "decided_by",
]

#: Incident fields and their weights; the root cause says most. ``effect`` is
#: the part of the root-cause text that describes consequences ("... caused
#: EFFECT", "EFFECT due to ...").
INCIDENT_FIELDS = {
    "root_cause": 1.0,
    "effect": 0.8,
    "impact": 0.5,
    "title": 0.6,
    "category": 0.4,
}

#: Risk fields and their weights; ``consequence`` is the "resulting in ..." part.
RISK_FIELDS = {
    "title": 0.8,
    "description": 1.0,
    "consequence": 0.45,
    "mitigations": 0.5,
    "category": 0.35,
    "examples": 0.5,
}

#: Risk fields that state what the risk predicts; they alone count towards how
#: specific a term is (its document frequency over the register).
STATEMENT_FIELDS = frozenset({"title", "description", "consequence", "examples"})

#: Failure modes that name a technology rather than what went wrong, and the
#: share of their IDF they keep: "the pods of our Kubernetes cluster" says
#: where an incident happened, not which risk it realized.
CONTEXT_MODES = {"kubernetes": 0.5}

#: The failure mode of a platform that names itself in an incident's title
#: ("Azure Storage - West Europe"): the platform's own write-up, so the mode
#: says where it happened, not that a provider failed its customers.
_SELF_MODE = "fm:cloud"

#: Blend of the three similarities (failure modes, words, spelling).
BLEND = {"modes": 0.50, "words": 0.30, "spelling": 0.20}

#: Weight, in blend units, of the nearest incident analysts confirmed for a
#: risk: its word cosine with the incident. Confirmed incidents also join the
#: risk's profile (the ``examples`` field); this finds the one most alike.
EXAMPLE_WEIGHT = 0.3

#: Incidents compared with the confirmed ones per sparse product.
_EXAMPLE_BLOCK = 128

#: Blended cosines mapped onto 0-100, piecewise linearly: a blend of 0.30
#: scores 55 (the default matched threshold) and 1 (identical texts) 100.
_SCALE_KNOTS = ([0.0, 0.30, 1.0], [0.0, 55.0, 100.0])

_DOMAIN_STOP_WORDS = {
    "risk",
    "risks",
    "result",
    "resulting",
    "results",
    "lead",
    "leading",
    "leads",
    "cause",
    "caused",
    "causes",
    "causing",
    "due",
    "possible",
    "potential",
    "potentially",
    "incident",
    "incidents",
    "issue",
    "issues",
    "problem",
    "problems",
    "involved",
    "blog",
    "post",
    "postmortem",
    "mortem",
    "minute",
    "minutes",
    "hour",
    "hours",
    "day",
    "days",
    "customer",
    "customers",
    "user",
    "users",
    "production",
    "outage",
    "outages",
    "unknown",
    "uncategorized",
    "uncategorised",
    "misc",
    "miscellaneous",
    "http",
    "https",
    "www",
    "com",
}


def _english_stop_words() -> frozenset[str]:
    # scikit-learn's list, kept as a file: importing scikit-learn takes about a
    # second, paid again by every worker process
    text = (
        resources.files("riskanalytics")
        .joinpath("data/english_stop_words.txt")
        .read_text(encoding="utf-8")
    )
    lines = (line.strip() for line in text.splitlines())
    return frozenset(line for line in lines if line and not line.startswith("#"))


_STOP_WORDS = _english_stop_words() | _DOMAIN_STOP_WORDS

_TOKEN = re.compile(r"[^\W_]+")
_CONSEQUENCE = re.compile(
    r"\b(?:resulting in|results in|result in|leading to|leads to|lead to|"
    r"which (?:could|would|may|might|will) (?:result|lead|cause)\w*|"
    r"causing|so that|and as a result|with the consequence)\b",
    re.IGNORECASE,
)
_MODE_PREFIX = "fm:"
_SENTENCE = re.compile(r"[.!?;]\s+|\n+")
_CAUSE_THEN_EFFECT = (
    r"caused|causing|causes|led to|leading to|leads to|lead to|resulted in|"
    r"resulting in|results in|triggered|triggering|took down|taking down|"
    r"brought down|which meant|so that"
)
_EFFECT_THEN_CAUSE = (
    r"due to|because of|because|caused by|as a result of|triggered by|"
    r"owing to|following|resulting from|after"
)
#: The first connective of a sentence: "CAUSE caused EFFECT" (``forward``) or
#: "EFFECT due to CAUSE" (``backward``); at one place, ``forward`` wins.
_INITIALS = sorted(
    {w[0] for w in f"{_CAUSE_THEN_EFFECT}|{_EFFECT_THEN_CAUSE}".split("|")}
)
_CAUSE_OR_EFFECT = re.compile(
    rf"\b(?=[{''.join(_INITIALS)}])"
    rf"(?:(?P<forward>{_CAUSE_THEN_EFFECT})|(?P<backward>{_EFFECT_THEN_CAUSE}))\b"
)


def _stem(token: str) -> str:
    """Strip common English inflections; leaves short words alone."""
    if len(token) <= 3 or token.isdigit():
        return token
    if token.endswith("ies") and len(token) > 4:
        return token[:-3] + "y"
    if token.endswith("sses"):
        return token[:-2]
    if token.endswith("ing") and len(token) > 5:
        return _undouble(token[:-3])
    if token.endswith("ied") and len(token) > 4:
        return token[:-3] + "y"
    if token.endswith("ed") and len(token) > 4 and not token.endswith("eed"):
        return _undouble(token[:-2])
    if token.endswith("es") and token[-3] in "sxz" and len(token) > 4:
        return token[:-2]
    if token.endswith("s") and not token.endswith(("ss", "us", "is")):
        token = token[:-1]
    return token[:-1] if token.endswith("e") and len(token) > 4 else token


def _undouble(stem: str) -> str:
    if len(stem) > 3 and stem[-1] == stem[-2] and stem[-1] not in "lsz":
        return stem[:-1]
    return stem


class _StemCache(dict):
    """Stems of the tokens seen so far (bounded: cleared when full)."""

    limit = 500_000

    def __missing__(self, token: str) -> str:
        if len(self) >= self.limit:
            self.clear()
        stem = self[token] = _stem(token)
        return stem


_STEMS = _StemCache()


_STOP_STEMS = frozenset(_stem(w) for w in _STOP_WORDS)
_NOT_WORDS = _STOP_STEMS
_PAIR = "{} {}".format


def _tokens(text: str) -> list[str]:
    """Lower-cased, NFKC-normalised, stemmed word tokens (stop words kept)."""
    if not text.isascii():
        text = unicodedata.normalize("NFKC", text)
    return list(map(_STEMS.__getitem__, _TOKEN.findall(text.lower())))


def readable_terms(terms: Iterable[str], *texts: object) -> list[str]:
    """Show matched stems as the words the incident used.

    Parameters
    ----------
    terms
        Stemmed terms or space-joined stem pairs, as in a match's evidence
        (``shared_terms``, ``shared_phrases``).
    texts
        The incident's texts (title, root cause, impact); missing values are
        ignored.

    Returns
    -------
    list of str
        Each term with every stem replaced by the first word of the texts that
        has that stem (lower case); a stem the texts do not hold stays as it is.
    """
    words: dict[str, str] = {}
    for text in texts:
        if not isinstance(text, str):
            continue
        if not text.isascii():
            text = unicodedata.normalize("NFKC", text)
        for word in _TOKEN.findall(text.lower()):
            words.setdefault(_STEMS[word], word)
    return [" ".join(words.get(stem, stem) for stem in t.split(" ")) for t in terms]


def _packaged_synonyms() -> dict[str, list[str]]:
    text = (
        resources.files("riskanalytics")
        .joinpath("data/synonyms.yaml")
        .read_text(encoding="utf-8")
    )
    return _validate_synonyms(yaml.safe_load(text), "riskanalytics/data/synonyms.yaml")


def _validate_synonyms(raw: Any, where: str) -> dict[str, list[str]]:
    if isinstance(raw, Mapping) and "failure_modes" in raw:
        raw = raw["failure_modes"]
    if not isinstance(raw, Mapping):
        raise ConfigError(
            where,
            [
                (
                    "failure_modes",
                    f"expected a mapping of names to phrase lists, found "
                    f"{type(raw).__name__}",
                )
            ],
        )
    problems = []
    modes: dict[str, list[str]] = {}
    for name, phrases in raw.items():
        if isinstance(phrases, str):
            phrases = [phrases]
        if not isinstance(phrases, Sequence) or not all(
            isinstance(p, (str, int, float)) for p in phrases
        ):
            problems.append((f"failure_modes.{name}", "expected a list of phrases"))
            continue
        modes[str(name)] = [str(name).replace("_", " "), *map(str, phrases)]
    if problems:
        raise ConfigError(where, problems)
    return modes


def load_synonyms(path: str | Path | None = None) -> dict[str, list[str]]:
    """Return the failure-mode vocabulary: the packaged one, extended by a file.

    Parameters
    ----------
    path
        A YAML file with ``failure_modes: {name: [phrase, ...]}`` (or the
        mapping alone). Its phrases are added to the packaged vocabulary; a new
        name adds a failure mode. ``None`` returns the packaged vocabulary.

    Returns
    -------
    dict
        Failure-mode name to its phrases (the name itself included).

    Raises
    ------
    ConfigError
        When the file cannot be read or has the wrong shape, naming the key.
    """
    modes = _packaged_synonyms()
    if path is None:
        return modes
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(path, [("<file>", "synonyms file not found")]) from None
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ConfigError(path, [("<file>", f"cannot be read: {exc}")]) from None
    for name, phrases in _validate_synonyms(raw or {}, str(path)).items():
        modes[name] = [*modes.get(name, []), *phrases]
    return modes


class _Vocabulary:
    """Phrase lookup: stemmed token tuples to the failure modes they signal."""

    def __init__(self, modes: Mapping[str, Sequence[str]]):
        self.phrases: dict[tuple[str, ...], set[str]] = {}
        for name, phrases in modes.items():
            for phrase in phrases:
                key = tuple(_tokens(phrase))
                if key:
                    self.phrases.setdefault(key, set()).add(name)
        self.names = {k: sorted(v) for k, v in self.phrases.items()}
        self.longest = max((len(k) for k in self.phrases), default=0)
        # first token of a phrase to the longest phrase it starts
        self.first: dict[str, int] = {}
        for key in self.phrases:
            self.first[key[0]] = max(self.first.get(key[0], 0), len(key))
        self.prefixes = {k[:n] for k in self.phrases for n in range(1, len(k) + 1)}
        # the phrases as a tree of tokens; a phrase's last node holds, under
        # the key "" (never a token), its failure modes and its text
        self.tree: dict[str, dict] = {}
        for key, key_names in self.names.items():
            node = self.tree
            for token in key:
                node = node.setdefault(token, {})
            node[""] = (key_names, " ".join(key))

    def modes(self, tokens: Sequence[str]) -> tuple[list[str], list[str]]:
        """Failure modes found (leftmost, longest phrase first), and the phrases."""
        found: list[str] = []
        phrases: list[str] = []
        tree = self.tree
        end = len(tokens)
        following = 0
        for i in [i for i, token in enumerate(tokens) if token in tree]:
            if i < following:
                continue
            # extend while some phrase still starts this way; keep the longest
            node = tree[tokens[i]]
            longest = node.get("")
            j = stop = i + 1
            while j < end:
                node = node.get(tokens[j])
                if node is None:
                    break
                j += 1
                if "" in node:
                    longest, stop = node[""], j
            if longest is not None:
                found.extend(longest[0])
                phrases.append(longest[1])
                following = stop
        return found, phrases


def _field_text(value: Any) -> str:
    if value is None or value is pd.NA:
        return ""
    if isinstance(value, float) and math.isnan(value):
        return ""
    if isinstance(value, (list, tuple)):
        return " ".join(_field_text(v) for v in value)
    return str(value)


def _cause_and_effect(text: str) -> tuple[str, str]:
    """Split a root-cause text into cause and effect parts, sentence by sentence."""
    if not text.isascii():
        text = unicodedata.normalize("NFKC", text)
    text = text.lower()
    if not _CAUSE_OR_EFFECT.search(text):
        return text, ""
    causes, effects = [], []
    for sentence in _SENTENCE.split(text):
        found = _CAUSE_OR_EFFECT.search(sentence)
        if found is None:
            causes.append(sentence)
        elif found.lastgroup == "forward":
            causes.append(sentence[: found.start()])
            effects.append(sentence[found.end() :])
        else:
            effects.append(sentence[: found.start()])
            causes.append(sentence[found.end() :])
    return " ".join(causes), " ".join(effects)


def _split_consequence(description: str) -> tuple[str, str]:
    """Split "CAUSE resulting in CONSEQUENCE" into its two parts."""
    found = _CONSEQUENCE.search(description)
    if not found or found.start() < 10:
        return description, ""
    return description[: found.start()], description[found.end() :]


class _Space:
    """A sparse term space (failure modes or words) fitted on the risk profiles.

    A term's document frequency counts the risks whose statement (``STATEMENT_
    FIELDS``) uses it: mitigations and categories repeat across risks ("Data",
    "alerts", "canary") without making a term less specific to what a risk
    predicts. A term found only outside the statements counts every field.
    ``weights`` scale the IDF of some terms (see ``CONTEXT_MODES``);
    ``oov_share`` is the share of a document's out-of-register terms counted in
    its norm.
    """

    def __init__(
        self,
        docs: list[dict[str, list[str]]],
        weights: Mapping[str, float] | None = None,
        oov_share: float = 0.25,
    ):
        self.oov_share = oov_share
        df: dict[str, int] = {}
        rest: dict[str, int] = {}
        for doc in docs:
            statement = [v for k, v in doc.items() if k in STATEMENT_FIELDS]
            for term in set().union(*statement) if statement else ():
                df[term] = df.get(term, 0) + 1
            for term in set().union(*doc.values()) if doc else ():
                rest[term] = rest.get(term, 0) + 1
        for term, count in rest.items():
            df.setdefault(term, count)
        self.terms = sorted(df)
        self.index = {term: i for i, term in enumerate(self.terms)}
        n = len(docs)
        self.idf = np.array(
            [math.log((1 + n) / (1 + df[t])) + 1.0 for t in sorted(df)], dtype=float
        )
        for term, weight in (weights or {}).items():
            if term in self.index:
                self.idf[self.index[term]] *= weight
        self.idf_list = self.idf.tolist()
        self.oov_idf = math.log(1 + n) + 1.0

    def matrix(
        self, docs: list[dict[str, list[str]]], weights: Mapping[str, float]
    ) -> sp.csr_matrix:
        """Rows of field-weighted, L2-normalised TF-IDF vectors."""
        n_docs, n_terms = len(docs), len(self.terms)

        # every term of every (document, field), numbered by its field group
        terms: list[str] = []
        lengths: list[int] = []
        group_doc: list[int] = []
        group_weight: list[float] = []
        for r, doc in enumerate(docs):
            for field, field_terms in doc.items():
                weight = weights.get(field, 0.0)
                if field_terms and weight > 0:
                    terms.extend(field_terms)
                    lengths.append(len(field_terms))
                    group_doc.append(r)
                    group_weight.append(weight)
        if not terms:
            return sp.csr_matrix((n_docs, n_terms), dtype=np.float32)
        group = np.repeat(np.arange(len(lengths)), lengths)

        # counts of each distinct term in its group, and its TF-IDF value
        codes, uniques = pd.factorize(pd.Series(terms, dtype=object), sort=False)
        get = self.index.get
        column_of = np.fromiter(
            (get(t, -1) for t in uniques), dtype=np.int64, count=len(uniques)
        )
        keys, counts = np.unique(group * len(uniques) + codes, return_counts=True)
        key_group, key_code = np.divmod(keys, len(uniques))
        column = column_of[key_code]
        known = column >= 0
        tf = np.where(counts == 1, 1.0, 1.0 + np.log(counts))
        # a register may name no term of this space at all (no failure mode)
        idf = self.idf[np.maximum(column, 0)] if len(self.idf) else 0.0
        value = tf * np.where(known, idf, self.oov_idf)

        # each field normalised on all its terms, then weighted
        square = np.bincount(key_group, value * value, minlength=len(lengths))
        oov = np.bincount(
            key_group, np.where(known, 0.0, value * value), minlength=len(lengths)
        )
        scale = np.asarray(group_weight) / np.sqrt(square)
        group_doc_arr = np.asarray(group_doc)
        doc_oov = np.bincount(group_doc_arr, scale * scale * oov, minlength=n_docs)
        matrix = sp.csr_matrix(
            (
                (scale[key_group] * value)[known],
                (group_doc_arr[key_group][known], column[known]),
            ),
            shape=(n_docs, n_terms),
            dtype=np.float64,
        )
        matrix.sum_duplicates()

        # documents normalised, counting a share of their out-of-register terms
        row_square = np.bincount(
            np.repeat(np.arange(n_docs), np.diff(matrix.indptr)),
            matrix.data * matrix.data,
            minlength=n_docs,
        )
        norm = np.sqrt(row_square + self.oov_share * doc_oov)
        norm[norm == 0] = 1.0
        matrix.data /= np.repeat(norm, np.diff(matrix.indptr))
        matrix.eliminate_zeros()
        return matrix.astype(np.float32)


#: Characters of an incident's title and root cause compared for spelling.
_SPELLING_TEXT_LIMIT = 2000

#: Share of an incident's out-of-register vocabulary counted in its norm
#: (0: only words the register uses count; 1: a plain cosine). Failure modes
#: count fully: an incident whose failure modes no risk names is about
#: something else, whatever one generic mode it shares.
_OOV_SHARE = {"modes": 1.0, "words": 0.25}


class Matcher:
    """Score incidents against the risks of one register.

    Parameters
    ----------
    risks
        The risks table (``schema.RISK_COLUMNS``; ``risk_id`` and
        ``description`` are used, ``title``, ``category`` and ``mitigations``
        when present). Duplicate ``risk_id`` rows keep the first.
    matched_threshold, review_threshold
        Decision thresholds on the 0 to 100 scale (see the module docstring).
    top_k
        Number of candidates listed per incident.
    synonyms
        Failure-mode vocabulary, name to phrases; ``None`` uses the packaged
        one (:func:`load_synonyms`).
    candidate_pool
        Risks re-scored per incident after sparse retrieval; ``None`` scores
        every risk (exhaustive).
    chunk_size
        Incidents scored per sparse product.
    examples
        Incident texts analysts confirmed for a risk, ``risk_id`` to texts;
        added to that risk's profile.
    workers
        Worker processes that score chunks at once. ``None`` (the default):
        one per core for at least ``PARALLEL_MIN_INCIDENTS`` distinct incident
        texts, one process otherwise. A number is used when there are at least
        that many chunks. Results are the same as in one process. Scripts that
        use worker processes need the usual ``if __name__ == "__main__":``
        guard (workers are spawned).
    """

    def __init__(
        self,
        risks: pd.DataFrame,
        *,
        matched_threshold: float = 55.0,
        review_threshold: float = 35.0,
        top_k: int = 3,
        synonyms: Mapping | None = None,
        candidate_pool: int | None = 10,
        chunk_size: int = 2000,
        examples: Mapping[str, Sequence[str]] | None = None,
        workers: int | None = None,
    ):
        if not 0 <= review_threshold <= matched_threshold <= 100:
            raise ValueError(
                "thresholds must satisfy 0 <= review_threshold <= matched_threshold"
                f" <= 100, got review {review_threshold}, matched {matched_threshold}"
            )
        if top_k < 1:
            raise ValueError(f"top_k must be at least 1, got {top_k}")
        self.matched_threshold = float(matched_threshold)
        self.review_threshold = float(review_threshold)
        self.top_k = int(top_k)
        self.candidate_pool = candidate_pool
        self.chunk_size = max(1, int(chunk_size))
        self.workers = None if workers is None else max(1, int(workers))
        self.vocabulary = _Vocabulary(
            _validate_synonyms(synonyms, "synonyms")
            if synonyms is not None
            else _packaged_synonyms()
        )
        self.risk_ids, profiles, texts = self._profiles(risks, examples or {})
        self._modes = _Space(
            [p[0] for p in profiles],
            {_MODE_PREFIX + m: w for m, w in CONTEXT_MODES.items()},
            oov_share=_OOV_SHARE["modes"],
        )
        self._words = _Space([p[1] for p in profiles], oov_share=_OOV_SHARE["words"])
        self._risk_modes = self._modes.matrix([p[0] for p in profiles], RISK_FIELDS)
        self._risk_words = self._words.matrix([p[1] for p in profiles], RISK_FIELDS)
        self._risk_rows = (self._risk_modes, self._risk_words)
        # one product gives the blend of both cosines
        self._risk_stack = sp.vstack(
            [
                BLEND["modes"] * self._risk_modes.T,
                BLEND["words"] * self._risk_words.T,
            ],
            format="csr",
        )
        self._examples = self._example_rows(examples or {})
        self._risk_texts = [text.lower() for text in texts]
        self._risk_term_cache: dict[int, frozenset[str]] = {}
        log.debug("Matcher ready: %d risks", len(self.risk_ids))

    # -- profiles ---------------------------------------------------------------

    def _analyse(self, text: str) -> tuple[list[str], list[str]]:
        """Failure-mode terms and word terms (stems and stem pairs) of a text."""
        tokens = _tokens(text)
        modes, _ = self.vocabulary.modes(tokens)
        words = [t for t in tokens if t not in _NOT_WORDS and len(t) > 1]
        words.extend(map(_PAIR, words, words[1:]))
        return [_MODE_PREFIX + m for m in modes], words

    def _profiles(self, risks: pd.DataFrame, examples: Mapping[str, Sequence[str]]):
        ids: list[str] = []
        profiles = []
        texts = []
        if risks is None or len(risks) == 0 or "risk_id" not in risks.columns:
            return ids, profiles, texts
        seen = set()
        for _, row in risks.iterrows():
            risk_id = _field_text(row.get("risk_id")).strip()
            if not risk_id:
                continue
            if risk_id in seen:
                log.warning(
                    "Duplicate risk_id %s in the register: kept the first", risk_id
                )
                continue
            seen.add(risk_id)
            cause, consequence = _split_consequence(_field_text(row.get("description")))
            fields = {
                "title": _field_text(row.get("title")),
                "description": cause,
                "consequence": consequence,
                "mitigations": _field_text(row.get("mitigations")),
                "category": _field_text(row.get("category")),
                "examples": " ".join(_field_text(t) for t in examples.get(risk_id, ())),
            }
            modes, words = {}, {}
            for name, text in fields.items():
                modes[name], words[name] = self._analyse(text)
            ids.append(risk_id)
            profiles.append((modes, words))
            texts.append(
                " ".join(fields[k] for k in ("title", "description", "consequence"))
            )
        return ids, profiles, texts

    def _example_rows(self, examples: Mapping[str, Sequence[str]]):
        """Each confirmed incident's word vector (a column each), and the
        column of its risk."""
        index = {risk_id: j for j, risk_id in enumerate(self.risk_ids)}
        docs, columns = [], []
        for risk_id in sorted(examples, key=lambda r: index.get(r, -1)):
            if risk_id not in index:
                continue
            for text in examples[risk_id]:
                _, words = self._analyse(_field_text(text))
                if words:
                    docs.append({"root_cause": words})
                    columns.append(index[risk_id])
        if not docs:
            return None
        rows = self._words.matrix(docs, INCIDENT_FIELDS).T.tocsr()
        return rows, np.asarray(columns)

    def _nearest_examples(self, incident_words: sp.csr_matrix) -> np.ndarray | None:
        """Per incident and risk, the cosine of the most alike confirmed
        incident (0 where a risk has none), or None without examples. Memory
        grows with the pairs that share a word, not incidents x examples."""
        if self._examples is None:
            return None
        rows, risk_of = self._examples
        nearest = np.zeros((incident_words.shape[0], len(self.risk_ids)))
        # a block of incidents at a time: the products of one block are small
        for start in range(0, incident_words.shape[0], _EXAMPLE_BLOCK):
            similarity = (incident_words[start : start + _EXAMPLE_BLOCK] @ rows).tocoo()
            np.maximum.at(
                nearest,
                (start + similarity.row, risk_of[similarity.col]),
                similarity.data.astype(np.float64),
            )
        return nearest

    # -- scoring ----------------------------------------------------------------

    def _incident_docs(self, incidents: pd.DataFrame):
        modes, words, texts = [], [], []
        for row in incidents.itertuples(index=False):
            m, w = {}, {}
            for field, text in _incident_fields(row).items():
                m[field], w[field] = self._analyse(text)
            if _SELF_MODE in m["title"]:
                # a platform's own write-up: its name says where, not what
                m = {f: [t for t in v if t != _SELF_MODE] for f, v in m.items()}
            modes.append(m)
            words.append(w)
            text = " ".join(
                _field_text(getattr(row, f, "")) for f in ("title", "root_cause")
            )
            texts.append(text[:_SPELLING_TEXT_LIMIT])
        return modes, words, texts

    def _score_chunk(self, incidents: pd.DataFrame):
        """Top candidates (risk indices), their 0-100 scores, and the analyses."""
        n_risks = len(self.risk_ids)
        k = min(self.top_k, n_risks)
        modes, words, texts = self._incident_docs(incidents)
        incident_words = self._words_matrix(words)
        incident_matrix = sp.hstack(
            [self._modes_matrix(modes), incident_words], format="csr"
        )
        coarse = _product(incident_matrix, self._risk_stack)
        nearest = self._nearest_examples(incident_words)
        if nearest is not None:
            coarse = coarse + EXAMPLE_WEIGHT * nearest

        pool = n_risks if self.candidate_pool is None else self.candidate_pool
        pool = max(k, min(pool, n_risks))
        if pool < n_risks:
            cand = _top_columns(coarse, pool)
        else:
            cand = np.tile(np.arange(n_risks), (len(texts), 1))
        fine = np.take_along_axis(coarse, cand, axis=1)
        if self._risk_texts:
            # lower-cased once here rather than once per pair
            lowered = [text.lower() for text in texts]
            queries = [
                lowered[n] for n in range(len(texts)) for _ in range(cand.shape[1])
            ]
            spelling = process.cpdist(
                queries,
                [self._risk_texts[j] for j in cand.ravel()],
                scorer=fuzz.token_set_ratio,
                # every core, or one in a worker process (the workers use them)
                workers=1 if _in_worker_process() else -1,
                dtype=np.float32,
            )
            # spelling only refines risks that share a word or failure mode
            spelling = spelling.reshape(cand.shape) * (fine > 0)
            fine = fine + BLEND["spelling"] * spelling / 100.0

        scores = _to_scale(fine)
        # best first; ties keep register order
        order = np.lexsort((cand, -np.round(scores, 6)), axis=1)[:, :k]
        best = np.take_along_axis(cand, order, 1)
        # how alike the best risk's nearest confirmed incident is, as evidence
        alike = None if nearest is None else nearest[np.arange(len(best)), best[:, 0]]
        return best, np.take_along_axis(scores, order, 1), modes, words, alike

    def _modes_matrix(self, docs):
        return self._modes.matrix(docs, INCIDENT_FIELDS)

    def _words_matrix(self, docs):
        return self._words.matrix(docs, INCIDENT_FIELDS)

    def _evidence(self, modes, words, risk_index: int, candidates) -> dict[str, Any]:
        risk_terms = self._risk_term_cache.get(risk_index)
        if risk_terms is None:
            risk_terms = self._risk_term_cache[risk_index] = self._risk_terms(
                risk_index
            )
        fields = {}
        shared: set[str] = set()
        for field, field_modes in modes.items():
            terms = set(field_modes)
            terms.update(words[field])
            if not terms:
                fields[field] = 0.0
                continue
            common = risk_terms.intersection(terms)
            shared |= common
            fields[field] = round(100.0 * len(common) / len(terms), 1)
        return {
            "failure_modes": sorted(
                t[len(_MODE_PREFIX) :] for t in shared if t.startswith(_MODE_PREFIX)
            ),
            "shared_terms": sorted(
                t for t in shared if not t.startswith(_MODE_PREFIX) and " " not in t
            ),
            "shared_phrases": sorted(t for t in shared if " " in t),
            "field_overlap": fields,
            "runner_ups": [{"risk_id": rid, "score": s} for rid, s in candidates[1:]],
        }

    def _only_context(self, shared: Sequence[str], risk_index: int) -> bool:
        """Whether the incident shares only context modes with a risk that names
        some other failure mode (a risk about the platform itself is exempt)."""
        if not shared or any(m not in CONTEXT_MODES for m in shared):
            return False
        own = self._risk_term_cache[risk_index]  # filled by _evidence
        return any(
            t.startswith(_MODE_PREFIX) and t[len(_MODE_PREFIX) :] not in CONTEXT_MODES
            for t in own
        )

    def _risk_terms(self, risk_index: int) -> frozenset[str]:
        risk_terms = set()
        for space, rows in zip(
            (self._modes, self._words), self._risk_rows, strict=True
        ):
            start, end = rows.indptr[risk_index], rows.indptr[risk_index + 1]
            risk_terms.update(space.terms[j] for j in rows.indices[start:end])
        return frozenset(risk_terms)

    def _decide(self, score: float) -> str:
        if score >= self.matched_threshold:
            return "matched"
        if score >= self.review_threshold:
            return "review"
        return "new"

    def match(self, incidents: pd.DataFrame) -> pd.DataFrame:
        """Match each incident to the register's risks.

        Parameters
        ----------
        incidents
            Incidents table (``schema.INCIDENT_COLUMNS``; ``id`` is accepted for
            ``incident_id``). ``root_cause``, ``impact`` and ``title`` are read.

        Returns
        -------
        pandas.DataFrame
            One row per incident, in input order, with ``schema.MATCH_COLUMNS``
            and ``decided_by`` (``"score"``): ``match_score`` 0 to 100 of the best
            candidate, ``risk_id`` only when ``decision == "matched"``,
            ``candidates`` as ``RISK_ID:score;...`` best first. ``decision`` is
            ``matched`` from ``matched_threshold`` on, unless the best risk
            shares only context failure modes (``CONTEXT_MODES``) with the
            incident while it names another one: then ``review``.
        """
        started = time.perf_counter()
        incidents = _normalise_incidents(incidents)
        unique, codes = _distinct_texts(incidents)
        chunks = [
            unique.iloc[i : i + self.chunk_size]
            for i in range(0, len(unique), self.chunk_size)
        ]
        workers = self._workers_for(len(unique), len(chunks))
        with tqdm(
            total=len(unique),
            desc="Matching incidents",
            unit="incident",
            disable=len(chunks) < 2 or None,
            leave=False,
        ) as bar:
            if workers > 1:
                parts = self._match_in_workers(chunks, workers)
            else:
                parts = map(self._match_chunk, chunks)
            parts = [bar.update(len(part)) or part for part in parts]
        result = _repeat_rows(_concat(parts), codes, incidents["incident_id"])
        log.info(
            "Matched %d incidents against %d risks in %.2f s: %s",
            len(result),
            len(self.risk_ids),
            time.perf_counter() - started,
            ", ".join(
                f"{count} {decision}"
                for decision, count in result["decision"].value_counts().items()
            )
            or "none",
        )
        return result

    def _workers_for(self, n_incidents: int, n_chunks: int) -> int:
        """Worker processes for a call: 1 means in this process."""
        if self.workers is not None:
            return self.workers if n_chunks >= self.workers else 1
        if n_incidents < PARALLEL_MIN_INCIDENTS or _in_worker_process():
            return 1
        return max(1, min(os.cpu_count() or 1, n_chunks))

    def _match_in_workers(
        self, chunks: list[pd.DataFrame], workers: int
    ) -> Iterator[pd.DataFrame]:
        # each worker receives the matcher once, then only chunks of text
        log.debug("Matching %d chunks in %d worker processes", len(chunks), workers)
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(
            max_workers=workers,
            mp_context=context,
            initializer=_set_worker_matcher,
            initargs=(self,),
        ) as pool:
            yield from pool.map(_match_in_worker, chunks)

    def _match_chunk(self, incidents: pd.DataFrame) -> pd.DataFrame:
        ids = incidents["incident_id"].tolist()
        if not self.risk_ids or len(incidents) == 0:
            return _empty_result(ids)
        cand, scores, modes, words, alike = self._score_chunk(incidents)
        risk_ids = self.risk_ids
        records = []
        for n, (row_cand, row_scores) in enumerate(
            zip(cand.tolist(), scores.tolist(), strict=True)
        ):
            listed = [
                (risk_ids[j], round(s, 1))
                for j, s in zip(row_cand, row_scores, strict=True)
                if s > 0
            ]
            best = row_scores[0] if listed else 0.0
            decision = self._decide(round(best, 1)) if listed else "new"
            evidence = (
                self._evidence(modes[n], words[n], row_cand[0], listed)
                if listed
                else _no_evidence()
            )
            if alike is not None and listed:
                evidence["confirmed_alike"] = round(100.0 * float(alike[n]), 1)
            if decision == "matched" and self._only_context(
                evidence["failure_modes"], row_cand[0]
            ):
                # sharing where it happened is not sharing what went wrong
                decision = "review"
            records.append(
                {
                    "incident_id": ids[n],
                    "risk_id": listed[0][0] if decision == "matched" else pd.NA,
                    "match_score": round(best, 1),
                    "decision": decision,
                    "candidates": ";".join(f"{r}:{s:.1f}" for r, s in listed),
                    "evidence": evidence,
                    "decided_by": "score",
                }
            )
        return _frame(records)


_worker_matcher: Matcher | None = None


#: Distinct incident texts from which ``Matcher(workers=None)`` uses one
#: process per core: starting the workers takes one to two seconds, so below
#: this one process is about as fast.
PARALLEL_MIN_INCIDENTS = 30_000


def _in_worker_process() -> bool:
    """True in a started child process (a pool or Dask worker): no nested pools."""
    current = multiprocessing.current_process()
    started = not getattr(current, "_inheriting", False)
    return multiprocessing.parent_process() is not None and started


def _set_worker_matcher(matcher: Matcher) -> None:
    global _worker_matcher
    _worker_matcher = matcher


def _match_in_worker(chunk: pd.DataFrame) -> pd.DataFrame:
    return _worker_matcher._match_chunk(chunk)


def _to_scale(blend: np.ndarray) -> np.ndarray:
    """Blended similarity (0-1) to the package's 0-100 score."""
    return np.interp(blend, *_SCALE_KNOTS)


#: Largest dense slice of the risk profiles (terms x risks, float32 values)
#: multiplied at once; beyond it the product stays sparse x sparse.
_DENSE_LIMIT = 16_000_000


def _product(incidents: sp.csr_matrix, risks: sp.csr_matrix) -> np.ndarray:
    """Dense incidents x risks product of two sparse term matrices."""
    used = np.unique(incidents.indices)
    if len(used) * risks.shape[1] <= _DENSE_LIMIT:
        # the chunk uses few of the register's terms: a dense slice is faster
        return np.asarray(incidents[:, used] @ risks[used].toarray())
    return (incidents @ risks).toarray()


def _top_columns(values: np.ndarray, pool: int) -> np.ndarray:
    """Column indices of each row's ``pool`` largest values (ties: leftmost)."""
    n_rows, n_cols = values.shape
    n_blocks = -(-n_cols // _BLOCK)
    if n_blocks <= 2 * pool or n_rows == 0:
        return _top_columns_exact(values, pool)

    # the pool largest values lie in the pool blocks with the largest maxima
    block_max = np.maximum.reduceat(values, np.arange(0, n_cols, _BLOCK), axis=1)
    blocks = np.argpartition(block_max, n_blocks - pool, axis=1)[:, n_blocks - pool :]
    blocks.sort(axis=1)
    columns = (blocks[:, :, None] * _BLOCK + np.arange(_BLOCK)).reshape(n_rows, -1)
    gathered = np.take_along_axis(values, np.minimum(columns, n_cols - 1), axis=1)
    gathered[columns >= n_cols] = -np.inf
    local = _top_columns_exact(gathered, pool)
    result = np.take_along_axis(columns, local, axis=1)

    # a value outside the chosen blocks may tie the cut-off: redo those rows
    kth = np.take_along_axis(gathered, local, axis=1).min(axis=1)
    np.put_along_axis(block_max, blocks, -np.inf, axis=1)
    unsure = np.flatnonzero(block_max.max(axis=1) >= kth)
    if len(unsure):
        result[unsure] = _top_columns_exact(values[unsure], pool)
    return result


#: Columns per block when looking for each row's largest values.
_BLOCK = 64


def _top_columns_exact(values: np.ndarray, pool: int) -> np.ndarray:
    n_rows, n_cols = values.shape
    kth = np.partition(values, n_cols - pool, axis=1)[:, n_cols - pool][:, None]
    keep = values > kth
    tied = values == kth
    need = pool - keep.sum(axis=1)
    crowded = np.flatnonzero(tied.sum(axis=1) > need)
    keep |= tied
    if len(crowded):
        # more values equal the cut-off than places left: keep the leftmost
        rank = np.cumsum(tied[crowded], axis=1, dtype=np.int32)
        keep[crowded] &= ~tied[crowded] | (rank <= need[crowded, None])
    return np.nonzero(keep)[1].reshape(n_rows, pool)


def _incident_fields(row) -> dict[str, str]:
    cause, effect = _cause_and_effect(_field_text(getattr(row, "root_cause", "")))
    return {
        "root_cause": cause,
        "effect": effect,
        "impact": _field_text(getattr(row, "impact", "")),
        "title": _field_text(getattr(row, "title", "")),
        "category": _field_text(getattr(row, "category", "")),
    }


def _no_evidence() -> dict[str, Any]:
    return {
        "failure_modes": [],
        "shared_terms": [],
        "shared_phrases": [],
        "field_overlap": {},
        "runner_ups": [],
    }


def _frame(records: list[dict[str, Any]]) -> pd.DataFrame:
    frame = pd.DataFrame.from_records(records, columns=OUTPUT_COLUMNS)
    frame["incident_id"] = frame["incident_id"].astype("string")
    frame["risk_id"] = frame["risk_id"].astype("string")
    frame["match_score"] = frame["match_score"].astype(float)
    frame["decision"] = frame["decision"].astype("string")
    frame["candidates"] = frame["candidates"].astype("string")
    frame["decided_by"] = frame["decided_by"].astype("string")
    return frame


def _empty_result(ids: Sequence[Any]) -> pd.DataFrame:
    return _frame(
        [
            {
                "incident_id": i,
                "risk_id": pd.NA,
                "match_score": 0.0,
                "decision": "new",
                "candidates": "",
                "evidence": _no_evidence(),
                "decided_by": "score",
            }
            for i in ids
        ]
    )


def _concat(parts: Iterable[pd.DataFrame]) -> pd.DataFrame:
    parts = [p for p in parts if len(p)]
    if not parts:
        return _frame([])
    return pd.concat(parts, ignore_index=True)


def _normalise_incidents(incidents: pd.DataFrame) -> pd.DataFrame:
    if incidents is None:
        return pd.DataFrame({"incident_id": pd.Series([], dtype="string")})
    frame = incidents
    if "incident_id" not in frame.columns:
        if "id" in frame.columns:
            frame = frame.rename(columns={"id": "incident_id"})
        else:
            frame = frame.assign(incident_id=[str(i) for i in range(len(frame))])
    fields = _TEXT_FIELDS
    keep = ["incident_id", *[c for c in fields if c in frame.columns]]
    return frame[keep].reset_index(drop=True)


#: Incident fields the scores depend on: incidents equal in these score alike.
_TEXT_FIELDS = ("title", "root_cause", "impact", "category")


def _distinct_texts(incidents: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray | None]:
    """The first incident of each distinct text, and each incident's row in it.

    Backfills repeat texts (alerts of one rule, empty root causes); each distinct
    text is analysed and scored once. The codes are ``None`` when every text is
    distinct.
    """
    columns = [
        [_field_text(v) for v in incidents[f]]
        for f in _TEXT_FIELDS
        if f in incidents.columns
    ]
    keys = zip(*columns, strict=True) if columns else [()] * len(incidents)
    seen: dict[tuple[str, ...], int] = {}
    codes = np.fromiter(
        (seen.setdefault(key, len(seen)) for key in keys),
        dtype=np.int64,
        count=len(incidents),
    )
    if len(seen) == len(incidents):
        return incidents, None
    _, first = np.unique(codes, return_index=True)
    log.debug("%d incidents, %d distinct texts", len(incidents), len(seen))
    return incidents.iloc[first].reset_index(drop=True), codes


def _repeat_rows(
    result: pd.DataFrame, codes: np.ndarray | None, incident_ids: pd.Series
) -> pd.DataFrame:
    """Rows of the distinct texts' result, one per incident (see _distinct_texts)."""
    if codes is None:
        return result
    repeated = result.take(codes).reset_index(drop=True)
    repeated["incident_id"] = incident_ids.astype("string").reset_index(drop=True)
    # each incident owns its evidence (a later change to one leaves the others)
    repeated["evidence"] = [_copy_evidence(e) for e in repeated["evidence"]]
    return repeated


def _copy_evidence(evidence: dict[str, Any]) -> dict[str, Any]:
    return {
        key: [dict(v) for v in value]
        if key == "runner_ups"
        else (value.copy() if isinstance(value, (list, dict)) else value)
        for key, value in evidence.items()
    }


def _matcher_for(
    risks: pd.DataFrame,
    config: MatchingConfig | None,
    examples: Mapping[str, Sequence[str]] | None = None,
) -> Matcher:
    if config is None:
        from riskanalytics.config import MatchingConfig

        config = MatchingConfig()
    synonyms = load_synonyms(config.synonyms_path) if config.synonyms_path else None
    return Matcher(
        risks,
        matched_threshold=config.matched_threshold,
        review_threshold=config.review_threshold,
        top_k=config.top_k,
        synonyms=synonyms,
        examples=examples,
    )


def _match_dask(matcher: Matcher, incidents: pd.DataFrame, scheduler: str | None):
    from dask.distributed import Client, LocalCluster

    incidents = _normalise_incidents(incidents)
    unique, codes = _distinct_texts(incidents)
    chunks = [
        unique.iloc[i : i + matcher.chunk_size]
        for i in range(0, len(unique), matcher.chunk_size)
    ]
    cluster = None
    if scheduler is None:
        # A free port for the dashboard: 8787 may be held by another cluster.
        cluster = LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0"
        )
        scheduler = cluster.scheduler_address
    try:
        with Client(scheduler) as client:
            remote = client.scatter(matcher, broadcast=True)
            parts = client.scatter(chunks)
            futures = client.map(_run_chunk, [remote] * len(chunks), parts)
            parts = client.gather(futures)
    finally:
        if cluster is not None:
            cluster.close()
    log.info("Matched %d incidents on Dask in %d chunks", len(incidents), len(chunks))
    return _repeat_rows(_concat(parts), codes, incidents["incident_id"])


def _run_chunk(matcher: Matcher, chunk: pd.DataFrame) -> pd.DataFrame:
    return matcher._match_chunk(chunk)


def match_incidents(
    incidents: pd.DataFrame,
    risks: pd.DataFrame,
    config: MatchingConfig | None = None,
    decisions: Decisions | None = None,
    recorded: Mapping[str, str] | None = None,
) -> pd.DataFrame:
    """Match incidents to risks with the configured thresholds and engine.

    Parameters
    ----------
    incidents
        Incidents table (``schema.INCIDENT_COLUMNS``).
    risks
        Risks table (``schema.RISK_COLUMNS``).
    config
        ``MatchingConfig`` (thresholds on the 0 to 100 scale, ``top_k``,
        ``engine`` ``local`` or ``dask``, ``synonyms_path``); defaults when None.
        With ``engine: dask`` and no ``dask_scheduler``, a local cluster of
        worker processes is started for the call (scripts then need the usual
        ``if __name__ == "__main__":`` guard).
    decisions
        Analyst decisions to apply on top of the scores; confirmed pairs also
        enrich the risk profiles.
    recorded
        Incident id to the risk the register records it as realizing, for the
        decisions (see :func:`riskanalytics.decisions.apply_decisions`).

    Returns
    -------
    pandas.DataFrame
        One row per incident (see :meth:`Matcher.match`), ``decided_by``
        ``"analyst"`` where a decision applied.
    """
    examples = None
    if decisions is not None and len(decisions):
        examples = decisions.examples(incidents)
    matcher = _matcher_for(risks, config, examples)
    if config is not None and config.engine == "dask":
        result = _match_dask(matcher, incidents, config.dask_scheduler)
    else:
        result = matcher.match(incidents)
    if decisions is not None and len(decisions):
        from riskanalytics.decisions import apply_decisions

        known = set(matcher.risk_ids)
        for d in decisions:
            if d.risk_id is not None and d.risk_id not in known:
                log.warning(
                    "%s: decision for incident %s names risk %s, which is not in "
                    "the register",
                    decisions.path or "decisions",
                    d.incident_id,
                    d.risk_id,
                )

        result = apply_decisions(
            result,
            decisions,
            matched_threshold=matcher.matched_threshold,
            review_threshold=matcher.review_threshold,
            recorded=recorded,
        )
    return result
