"""Shared fixtures: a copy of the sample project in a temporary folder."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest
from hypothesis import settings

# CI runs the same generated examples every time (HYPOTHESIS_PROFILE=ci in
# .ci/run), so that a run cannot fail on examples no earlier run tried; on
# developers' machines every run explores new ones.
settings.register_profile("ci", derandomize=True, database=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))

ROOT = Path(__file__).resolve().parent.parent

#: What a run writes into learning/ and what people add there by hand.
_LOCAL = ("reviews", ".risk-register-backups", "*.lock", "match-decisions.yaml")


def copy_sample(target: Path, root: Path = ROOT) -> Path:
    """Copy config.yaml and learning/ of ``root`` as committed into ``target``.

    ``make run`` records the sample incidents in ``learning/risk-register.md``
    and writes reviews beside it, so the working copy is the sample after a run,
    not the sample itself. In a git checkout the files come from ``HEAD``;
    otherwise (an unpacked source archive) from the folder, without what runs
    write.
    """
    target.mkdir(parents=True, exist_ok=True)
    archive = subprocess.run(
        ["git", "-C", str(root), "archive", "--format=tar", "HEAD"]
        + ["config.yaml", "learning"],
        capture_output=True,
        check=False,
    )
    if archive.returncode == 0:
        with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
            tar.extractall(target, filter="data")
        return target
    shutil.copy(root / "config.yaml", target / "config.yaml")
    shutil.copytree(
        root / "learning",
        target / "learning",
        ignore=shutil.ignore_patterns(*_LOCAL),
    )
    return target


@pytest.fixture
def sample_project(tmp_path: Path) -> Path:
    """A copy of config.yaml and learning/ that a test may change freely."""
    return copy_sample(tmp_path)
