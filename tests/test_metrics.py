import math

import pandas as pd
import pytest

from riskanalytics.metrics import (
    calibration_table,
    compute_metrics,
    likelihood_probability,
    period_metrics,
    severity_band,
)
from riskanalytics.plots import save_all
from riskanalytics.report import metrics_headline
from tests.helpers import risks

MAPPING = {"rare": 0.05, "possible": 0.35, "likely": 0.65, "almost certain": 0.9}


def recon(*rows):
    frame = pd.DataFrame(
        [
            {
                "incident_id": f"i{n}",
                "started_at": pd.Timestamp(when, tz="UTC"),
                "outcome": outcome,
                "risk_id": risk,
                "mitigation_verdict": verdict,
                "severity": severity,
            }
            for n, (when, outcome, risk, verdict, severity) in enumerate(rows)
        ]
    )
    return frame


HISTORY = recon(
    ("2026-01-05", "realized", "R-1", "worked", "high"),
    ("2026-01-20", "new_risk", None, None, "low"),
    ("2026-03-02", "realized", "R-1", "failed", "high"),
    ("2026-03-10", "realized", "R-2", "unknown", "low"),
    ("2026-03-11", "needs_review", None, None, "low"),
)
RISKS = risks(
    {"risk_id": "R-1", "likelihood": "Likely"},
    {"risk_id": "R-2", "likelihood": "Rare"},
    {"risk_id": "R-3", "likelihood": "Almost certain"},
    {"risk_id": "R-4", "likelihood": "whenever", "likelihood_level": None},
)


@pytest.mark.parametrize(
    ("likelihood", "level", "p"),
    [("Likely", None, 0.65), ("10%", None, 0.10), ("1", None, 0.05), (None, 3, 0.65)],
)
def test_likelihood_maps_to_yearly_probability(likelihood, level, p):
    assert likelihood_probability(likelihood, level, MAPPING) == pytest.approx(p)


def test_monthly_trend_fills_empty_months_and_counts_outcomes():
    table = period_metrics(HISTORY, "month")
    assert list(table.index.strftime("%Y-%m")) == ["2026-01", "2026-02", "2026-03"]
    assert table.loc["2026-01-01", "predicted_share"] == 0.5
    assert table.loc["2026-02-01", "incidents"] == 0
    assert table.loc["2026-03-01", "needs_review"] == 1
    assert table.loc["2026-03-01", "mitigation_success_rate"] == 0.0
    assert table.loc["2026-03-01", "predicted_share_to_date"] == pytest.approx(3 / 4)


def test_headline_figures():
    metrics = compute_metrics(HISTORY, RISKS, likelihood_mapping=MAPPING)
    h = metrics.headline
    assert (h["predicted"], h["unpredicted"], h["needs_review"]) == (3, 1, 1)
    assert h["predicted_share"] == pytest.approx(0.75)
    assert h["mitigation_success_rate"] == pytest.approx(0.5)
    assert h["risks_realized"] == 2
    assert h["new_risks_created"] == 1
    by_severity = metrics.by_severity
    assert by_severity.loc["high", "predicted_share"] == 1.0


def test_a_short_history_warns_that_calibration_says_little():
    metrics = compute_metrics(HISTORY, RISKS, likelihood_mapping=MAPPING)
    span = (HISTORY["started_at"].max() - HISTORY["started_at"].min()).days
    assert span < 180
    assert any(f"span {span} day(s)" in note for note in metrics.notes)
    later = HISTORY.copy()
    later.loc[later.index[-1], "started_at"] = pd.Timestamp("2027-06-01", tz="UTC")
    long = compute_metrics(later, RISKS, likelihood_mapping=MAPPING)
    assert not any("say little" in note for note in long.notes)


def test_brier_score_of_a_known_window():
    start = pd.Timestamp("2026-01-01", tz="UTC")
    end = pd.Timestamp("2027-01-01", tz="UTC")
    table = calibration_table(HISTORY, RISKS, MAPPING, start=start, end=end)
    assert set(table["risk_id"]) == {"R-1", "R-2", "R-3"}  # R-4 cannot be mapped
    by_id = table.set_index("risk_id")
    assert by_id.loc["R-1", "occurrences"] == 2
    assert by_id.loc["R-3", "realized"] == 0
    years = (end - start).days / 365.25
    expected = [
        (1 - (1 - 0.65) ** years - 1) ** 2,
        (1 - (1 - 0.05) ** years - 1) ** 2,
        (1 - (1 - 0.9) ** years) ** 2,
    ]
    got = ((table["p_window"] - table["realized"]) ** 2).mean()
    assert got == pytest.approx(sum(expected) / 3)


def test_no_incidents_gives_empty_trends_not_an_error():
    metrics = compute_metrics(HISTORY.iloc[0:0], RISKS, likelihood_mapping=MAPPING)
    assert metrics.headline["incidents"] == 0
    assert math.isnan(metrics.headline["predicted_share"])


def test_charts_are_written_as_png(tmp_path):
    metrics = compute_metrics(HISTORY, RISKS, likelihood_mapping=MAPPING)
    paths = save_all(metrics, tmp_path)
    assert len(paths) == 5
    for path in paths.values():
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_near_miss_is_predicted_but_not_an_occurrence():
    history = recon(
        ("2026-01-05", "realized", "R-1", "worked", "high"),
        ("2026-02-10", "realized", "R-3", "worked", "low"),
    )
    history["near_miss"] = [False, True]
    metrics = compute_metrics(history, RISKS, likelihood_mapping=MAPPING)
    assert metrics.headline["predicted"] == 2
    assert metrics.headline["risks_realized"] == 1
    by_id = metrics.calibration.set_index("risk_id")
    assert by_id.loc["R-1", "realized"] == 1
    assert by_id.loc["R-3", "realized"] == 0
    assert list(metrics.by_period["risks_realized"]) == [1, 0]
    # its mitigation caught it: counted apart from mitigations of what happened
    assert metrics.headline["mitigations_worked"] == 1
    assert metrics.headline["near_misses_mitigated"] == 1
    assert list(metrics.by_period["mitigations_worked"]) == [1, 0]
    assert list(metrics.by_period["near_misses_mitigated"]) == [0, 1]
    assert list(metrics.by_period["near_misses"]) == [0, 1]
    # the tables count what happened as the run's summary does, near misses apart
    assert list(metrics.by_period["realized"]) == [1, 0]
    assert list(metrics.by_period["predicted_share"]) == [1.0, 1.0]
    assert list(metrics.by_period["predicted_share_to_date"]) == [1.0, 1.0]
    low = metrics.by_severity.loc["low"]
    assert (low["realized"], low["near_misses"], low["predicted_share"]) == (0, 1, 1)
    assert "1 worked, 0 failed, 0 unknown); they caught 1 near miss" in (
        metrics_headline(metrics)
    )


@pytest.mark.parametrize(
    ("given", "band"),
    [
        ("P1", "critical"),
        ("SEV-1", "critical"),
        ("critical", "critical"),
        ("Major", "high"),
        ("warning", "medium"),
        ("P4", "low"),
        (None, "unknown"),
        ("", "unknown"),
        ("Purple", "purple"),
    ],
)
def test_severities_of_every_source_fall_into_one_set_of_bands(given, band):
    assert severity_band(given) == band


def test_predicted_share_by_severity_merges_scales_most_severe_first():
    history = recon(
        ("2026-01-05", "realized", "R-1", "worked", "P1"),
        ("2026-01-06", "new_risk", None, None, "critical"),
        ("2026-01-07", "realized", "R-2", "worked", "low"),
        ("2026-01-08", "realized", "R-2", "worked", None),
        ("2026-01-09", "realized", "R-1", "worked", "sev2"),
    )
    by_severity = compute_metrics(
        history, RISKS, likelihood_mapping=MAPPING
    ).by_severity
    assert list(by_severity.index) == ["critical", "high", "low", "unknown"]
    assert by_severity.loc["critical", "incidents"] == 2
    assert by_severity.loc["critical", "predicted_share"] == pytest.approx(0.5)


def test_configured_severity_labels_join_a_band_or_make_a_new_one():
    extra = {"high": ["Sev-B"], "cosmetic": ["typo"]}
    assert severity_band("sev b", extra) == "high"
    assert severity_band("Typo", extra) == "cosmetic"
    history = recon(
        ("2026-01-05", "realized", "R-1", "worked", "typo"),
        ("2026-01-06", "realized", "R-1", "worked", "Sev-B"),
        ("2026-01-07", "realized", "R-1", "worked", None),
    )
    by_severity = compute_metrics(
        history, RISKS, likelihood_mapping=MAPPING, severity_bands=extra
    ).by_severity
    assert list(by_severity.index) == ["high", "cosmetic", "unknown"]
