"""Matching speed and memory: riskanalytics against scoring every pair.

Usage::

    python benchmarks/matching_speed.py [--incidents 100000 --risks 5000
                                         --baseline-sample 500 --dask 2]

A large set is synthesized from the dev set's texts: incidents and risks are
recombined from the real sentences' words (seeded, so every run is the same).
Every synthesized incident text is distinct, so scoring each distinct text
once (as ``Matcher`` does) saves nothing here; real backfills repeat texts.
The baseline scores every incident-risk pair with rapidfuzz
``token_set_ratio`` (``process.cdist`` on all cores); it is run on a sample
of incidents and extrapolated linearly to the full set, and labelled so. The
sample is timed before and after riskanalytics's runs and the faster time is
the one compared (on a shared machine, the one less disturbed).
riskanalytics runs on the full set, first in one process
(``Matcher(workers=1)``; its spelling re-score uses every core), then with
the default ``Matcher()``, which uses one worker process per core for large
inputs (the baseline also uses every core), and, with ``--dask N``, on a
local Dask cluster; both results are checked against the one-process result.
Peak memory is the peak resident set size of this process after each phase
(the baseline sample runs first and is small). Worker processes' memory is not
counted (each holds the matcher and one chunk, as the one process does).
"""

from __future__ import annotations

import argparse
import os
import resource
import time
from pathlib import Path

import numpy as np
import pandas as pd
from rapidfuzz import fuzz, process

from riskanalytics.match import Matcher
from riskanalytics.register import read_register

DEV = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "match" / "dev"


def synthesize(n_incidents: int, n_risks: int, seed: int = 7):
    """Incidents and risks recombined from the dev set's words."""
    rng = np.random.default_rng(seed)
    dev_incidents = pd.read_json(DEV / "incidents.jsonl", lines=True, dtype=False)
    dev_risks = read_register(DEV / "risk-register.md").risks
    inc_words = np.array(" ".join(dev_incidents["root_cause"].fillna("")).split())
    risk_words = np.array(" ".join(dev_risks["description"]).split())
    mitigation_words = np.array(" ".join(dev_risks["mitigations"]).split())

    def sentence(words, low, high):
        n = int(rng.integers(low, high))
        start = int(rng.integers(0, len(words) - n))
        # a real run of words, with a few words from elsewhere
        picked = words[start : start + n].tolist()
        extra = words[rng.integers(0, len(words), size=max(1, n // 5))].tolist()
        return " ".join(picked + extra)

    incidents = pd.DataFrame(
        {
            "incident_id": [f"INC-{i:06d}" for i in range(n_incidents)],
            "title": [sentence(inc_words, 3, 8) for _ in range(n_incidents)],
            "root_cause": [sentence(inc_words, 10, 50) for _ in range(n_incidents)],
            "impact": [sentence(inc_words, 0, 10) for _ in range(n_incidents)],
        }
    )
    risks = pd.DataFrame(
        {
            "risk_id": [f"R-{i:05d}" for i in range(n_risks)],
            "description": [sentence(risk_words, 8, 20) for _ in range(n_risks)],
            "category": rng.choice(dev_risks["category"].tolist(), size=n_risks),
            "mitigations": [sentence(mitigation_words, 4, 10) for _ in range(n_risks)],
        }
    )
    return incidents, risks


def peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--incidents", type=int, default=100_000)
    parser.add_argument("--risks", type=int, default=5_000)
    parser.add_argument("--baseline-sample", type=int, default=500)
    parser.add_argument(
        "--dask", type=int, default=0, help="Dask worker processes (0: skip)"
    )
    args = parser.parse_args(argv)

    started = time.perf_counter()
    incidents, risks = synthesize(args.incidents, args.risks)
    distinct = len(incidents.drop_duplicates(["title", "root_cause", "impact"]))
    print(
        f"synthesized {len(incidents):,} incidents x {len(risks):,} risks "
        f"in {time.perf_counter() - started:.1f} s ({distinct:,} distinct texts)"
    )

    sample = incidents.head(args.baseline_sample)
    texts = (
        sample["title"] + " " + sample["root_cause"] + " " + sample["impact"]
    ).tolist()
    descriptions = risks["description"].tolist()

    def time_baseline() -> float:
        started = time.perf_counter()
        process.cdist(
            texts,
            descriptions,
            scorer=fuzz.token_set_ratio,
            processor=str.lower,
            workers=-1,
            dtype=np.uint8,
        )
        return time.perf_counter() - started

    pairs = len(sample) * len(risks)

    def report_baseline(sample_seconds: float, when: str) -> float:
        baseline = sample_seconds * len(incidents) / len(sample)
        print(
            f"baseline token_set_ratio, every pair, {when}: {pairs:,} pairs in "
            f"{sample_seconds:.2f} s ({pairs / sample_seconds / 1e6:.2f} M pairs/s);"
            f" EXTRAPOLATED to {len(incidents) * len(risks):,} pairs: "
            f"{baseline:,.0f} s; peak RSS {peak_mib():,.0f} MiB"
        )
        return baseline

    first = report_baseline(time_baseline(), "first")

    started = time.perf_counter()
    matcher = Matcher(risks, workers=1)
    build = time.perf_counter() - started
    result = matcher.match(incidents)
    ours = time.perf_counter() - started
    print(
        f"riskanalytics, one process, measured on the full set: {ours:,.1f} s "
        f"(profiles {build:.1f} s, {len(result):,} rows); "
        f"peak RSS {peak_mib():,.0f} MiB"
    )

    started = time.perf_counter()
    by_default = Matcher(risks).match(incidents)
    seconds = time.perf_counter() - started
    same = by_default.equals(result)
    print(
        f"riskanalytics, default Matcher() ({os.cpu_count()} worker processes, "
        f"one per core): {seconds:,.1f} s (identical to one process: {same})"
    )

    # the machine may be busier during one of the two: the faster one counts
    baseline = min(first, report_baseline(time_baseline(), "again"))
    print(
        f"speed-up against the faster baseline ({baseline:,.0f} s): "
        f"one process {baseline / ours:,.1f}x, default {baseline / seconds:,.1f}x"
    )

    if args.dask:
        from dask.distributed import LocalCluster

        from riskanalytics.match import _match_dask

        with LocalCluster(
            n_workers=args.dask, threads_per_worker=1, dashboard_address=None
        ) as cluster:
            started = time.perf_counter()
            on_dask = _match_dask(matcher, incidents, cluster.scheduler_address)
            seconds = time.perf_counter() - started
        same = on_dask.equals(result)
        print(
            f"riskanalytics on Dask, {args.dask} worker processes: {seconds:,.1f} s "
            f"(identical to one process: {same}); speed-up {baseline / seconds:,.1f}x"
        )


if __name__ == "__main__":
    main()
