"""The sample project the tests start from is the one committed, not a run's."""

import subprocess

from tests.conftest import copy_sample


def git(root, *args):
    subprocess.run(["git", "-C", str(root), *args], check=True, capture_output=True)


def test_sample_project_is_the_committed_sample_after_make_run(tmp_path):
    root = tmp_path / "checkout"
    (root / "learning" / "incidents").mkdir(parents=True)
    (root / "config.yaml").write_text("risk_register_path: learning/r.md\n")
    register = root / "learning" / "r.md"
    register.write_text("| ID | Risk |\n|---|---|\n| R-001 | Disk full |\n")
    (root / "learning" / "incidents" / "a.csv").write_text("incident_id\nA\n")
    git(root, "init", "-q")
    git(root, "add", ".")
    git(root, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "s")
    committed = register.read_text()
    # what a run leaves behind: a changed register, reviews, a decisions file
    register.write_text(committed + "\n## Risk history\n")
    (root / "learning" / "reviews").mkdir()
    (root / "learning" / "reviews" / "review-A.md").write_text("---\n")
    (root / "learning" / "match-decisions.yaml").write_text("[]\n")

    project = copy_sample(tmp_path / "project", root)

    assert (project / "learning" / "r.md").read_text() == committed
    assert (project / "learning" / "incidents" / "a.csv").exists()
    assert not (project / "learning" / "reviews").exists()
    assert not (project / "learning" / "match-decisions.yaml").exists()


def test_sample_project_outside_git_leaves_out_what_runs_write(tmp_path):
    root = tmp_path / "unpacked"
    (root / "learning" / "reviews").mkdir(parents=True)
    (root / "config.yaml").write_text("reports_dir: reports\n")
    (root / "learning" / "r.md").write_text("| ID |\n|---|\n")
    (root / "learning" / "reviews" / "review-A.md").write_text("---\n")

    project = copy_sample(tmp_path / "project", root)

    assert (project / "learning" / "r.md").exists()
    assert not (project / "learning" / "reviews").exists()
