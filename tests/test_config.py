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


def test_range_and_cross_key_problems_are_reported_with_type_errors(tmp_path):
    path = write(
        tmp_path,
        "risk_register_path: r.md\nincident_sources: [i]\n"
        "review_deadline_days: soon\n"
        "matching: {matched_threshold: 20, top_k: 0}\n"
        "likelihood_probability: {rare: 1.5, unlikely: -0.2, likely: 0.6}\n"
        "risk_threshold_for_escalation: scary\n",
    )
    with pytest.raises(ConfigError) as info:
        load_config(path)
    keys = [key for key, _ in info.value.problems]
    assert set(keys) == {
        "review_deadline_days",
        "matching.top_k",
        "likelihood_probability.rare",
        "likelihood_probability.unlikely",
        "risk_threshold_for_escalation",
        "matching.review_threshold",
    }
    assert "<file>" not in keys


def test_key_set_twice_is_refused_naming_both_lines(tmp_path):
    path = write(
        tmp_path,
        "risk_register_path: r.md\nincident_sources: [i]\n"
        "review_deadline_days: 7\n"
        "matching:\n  top_k: 2\n  top_k: 5\n"
        "review_deadline_days: 14\n",
    )
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert info.value.problems == [
        ("top_k", "set twice, on line 5 and line 6; keep one"),
        ("review_deadline_days", "set twice, on line 3 and line 7; keep one"),
    ]


def test_rating_band_outside_the_rating_scale_is_refused(tmp_path):
    path = write(
        tmp_path,
        "risk_register_path: r.md\nincident_sources: [i]\n"
        "rating_bands: {low: 1, medium: 30, high: 10, critical: 17}\n",
    )
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert info.value.problems == [("rating_bands.medium", "30 is not a score 1 to 25")]


def test_notification_url_apprise_cannot_load_is_refused_by_key_and_index(tmp_path):
    path = write(
        tmp_path,
        "risk_register_path: r.md\nincident_sources: [i]\n"
        "notifications:\n"
        "  enabled: true\n"
        "  owners:\n"
        "    dba-team: ['json://127.0.0.1:${RA_PORT}/dba', 'slak://${A}/${B}/${C}']\n"
        "  default: ['json://hooks.example.com/owners', 'json://']\n"
        "  escalation: ['not a url']\n",
    )
    with pytest.raises(ConfigError) as info:
        load_config(path)
    problems = dict(info.value.problems)
    assert set(problems) == {
        "notifications.owners.dba-team.1",
        "notifications.default.1",
        "notifications.escalation.0",
    }
    assert "no service for slak://" in problems["notifications.owners.dba-team.1"]
    assert "cannot load" in problems["notifications.default.1"]


def test_notification_urls_are_checked_with_placeholders_filled(tmp_path, monkeypatch):
    monkeypatch.delenv("RA_SMTP_PASSWORD", raising=False)
    path = write(
        tmp_path,
        "risk_register_path: r.md\nincident_sources: [i]\n"
        "notifications:\n"
        "  enabled: true\n"
        "  default:\n"
        "    - 'mailto://riskbot:${RA_SMTP_PASSWORD}@127.0.0.1:${RA_SMTP_PORT}"
        "?mode=insecure&from=riskbot@example.com&to=sre@example.com'\n"
        "    - 'slack://${SLACK_A}/${SLACK_B}/${SLACK_C}/#dba'\n",
    )
    assert len(load_config(path).notifications.default) == 2


def test_notification_urls_are_not_checked_while_notifications_are_off(tmp_path):
    path = write(
        tmp_path,
        "risk_register_path: r.md\nincident_sources: [i]\n"
        "notifications: {enabled: false, default: ['slak://x']}\n",
    )
    assert load_config(path).notifications.default == ["slak://x"]


def test_key_set_twice_on_one_line_is_refused(tmp_path):
    assert problems_of(
        tmp_path,
        "risk_register_path: r.md\nincident_sources: [i]\n"
        "matching: {top_k: 2, top_k: 5}\n",
    ) == [("top_k", "set twice, on line 3; keep one")]


def problems_of(tmp_path, text: str) -> list[tuple[str, str]]:
    """The problems that refuse a config.yaml of ``text``."""
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, text))
    return info.value.problems
