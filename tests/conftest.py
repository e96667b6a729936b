"""Shared fixtures: a copy of the sample project in a temporary folder."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def sample_project(tmp_path: Path) -> Path:
    """A copy of config.yaml and learning/ that a test may change freely."""
    shutil.copy(ROOT / "config.yaml", tmp_path / "config.yaml")
    shutil.copytree(
        ROOT / "learning",
        tmp_path / "learning",
        ignore=shutil.ignore_patterns("reviews", ".risk-register-backups", "*.lock"),
    )
    return tmp_path
