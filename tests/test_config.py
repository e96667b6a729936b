from pathlib import Path

import pytest

from riskanalytics.config import load_config
from riskanalytics.exceptions import ConfigError

ROOT = Path(__file__).resolve().parent.parent


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_sample_config_loads_with_paths_resolved_against_its_folder():
    config = load_config(ROOT / "config.yaml")
    assert config.risk_register_path == ROOT / "learning" / "risk-register.md"
    assert config.incident_sources[0].path == ROOT / "learning" / "incidents"
    assert config.reviews_dir.is_absolute()
    assert config.escalation_score() == 17


def test_config_is_frozen():
    config = load_config(ROOT / "config.yaml")
    with pytest.raises(ValueError):
        config.review_deadline_days = 3


def test_every_wrong_key_is_reported_together(tmp_path):
    path = write(
        tmp_path,
        "risk_register_path: r.md\n"
        "incident_sources: [x]\n"
        "review_deadline_days: soon\n"
        "auto_create_risks: perhaps\n"
        "matching: {matched_threshold: 150}\n"
        "surprise: 1\n",
    )
    with pytest.raises(ConfigError) as info:
        load_config(path)
    keys = {key for key, _ in info.value.problems}
    assert {"review_deadline_days", "auto_create_risks", "surprise"} <= keys
    assert "matching.matched_threshold" in keys
    assert str(path) in str(info.value)


def test_missing_config_names_the_file(tmp_path):
    with pytest.raises(ConfigError, match="(?s)nope.yaml.*file not found"):
        load_config(tmp_path / "nope.yaml")


def test_broken_yaml_names_the_line(tmp_path):
    path = write(tmp_path, "risk_register_path: r.md\nincident_sources: [\n")
    with pytest.raises(ConfigError, match="line"):
        load_config(path)


def test_review_threshold_above_matched_threshold_is_refused(tmp_path):
    path = write(
        tmp_path,
        "risk_register_path: r.md\nincident_sources: [i]\n"
        "matching: {matched_threshold: 40, review_threshold: 60}\n",
    )
    with pytest.raises(ConfigError, match="review_threshold"):
        load_config(path)


def test_unknown_escalation_band_is_refused(tmp_path):
    path = write(
        tmp_path,
        "risk_register_path: r.md\nincident_sources: [i]\n"
        "risk_threshold_for_escalation: scary\n",
    )
    with pytest.raises(ConfigError, match="risk_threshold_for_escalation"):
        load_config(path)


def test_numeric_escalation_threshold_is_a_score(tmp_path):
    path = write(
        tmp_path,
        "risk_register_path: r.md\nincident_sources: [i]\n"
        "risk_threshold_for_escalation: 16\n",
    )
    assert load_config(path).escalation_score() == 16
