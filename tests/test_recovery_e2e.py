"""A bad param never costs the last good outputs, with real `dvc repro` on a copy of the project.

DVC removes a stage's outputs before it runs the stage's command. The `check` stage, upstream of every
other stage, validates params.yaml first, so a bad value stops `dvc repro` (exit 255) with every output in
place. A failure only training can find (here: a validation split that leaves no training images) does
lose the stage's outputs; `git checkout -- dvc.lock reports metrics.json && dvc checkout` brings back the
last committed good run (git holds the lock and the uncached metrics and plot tables, DVC's cache the rest).
"""

import pytest

from tests.dvc_project import Project

pytestmark = pytest.mark.slow
OUTPUTS = (
    "data/processed/train.npz",
    "models/model.npz",
    "reports/train/loss.csv",
    "reports/train/metrics.json",
    "metrics.json",
    "reports/evaluate/predictions.csv",
)


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Project:
    return Project.with_committed_run(tmp_path_factory.mktemp("recovery") / "repo")


def hashes(project: Project) -> dict[str, str]:
    return {name: project.sha256(name) for name in OUTPUTS}


def test_bad_value_stops_dvc_repro_before_any_output_is_removed(project: Project) -> None:
    before = hashes(project)
    project.set_param("train.epochs", "ten")
    try:
        result = project.dvc("repro", check=False)
        output = result.stdout + result.stderr
        assert result.returncode == 255, output
        ours = [line for line in output.splitlines() if line.startswith("error: ")]
        assert ours == ["error: params.yaml: train.epochs = 'ten' is not allowed; it must be an integer >= 1"]
        assert "Running stage 'train'" not in output and "Traceback" not in output
        assert hashes(project) == before
        changed = project.run("git", "status", "--porcelain").stdout.split("\n")
        assert [line for line in changed if line.strip()] == [" M params.yaml"]
    finally:
        project.run("git", "checkout", "--", "params.yaml")
    assert "up to date" in project.dvc("repro").stdout + project.dvc("status").stdout


def test_failure_inside_a_stage_is_undone_by_dvc_checkout(project: Project) -> None:
    before = hashes(project)
    project.set_param("train.validation_fraction", "0.9999")
    try:
        result = project.dvc("repro", check=False)
        assert result.returncode == 255, result.stdout + result.stderr
        assert "leaves no training images" in result.stdout + result.stderr
        assert not (project.path / "models" / "model.npz").exists()  # DVC removed it before running train
        # the README's restore line: git has the uncached metrics and plots, DVC's cache has the rest
        project.run("git", "checkout", "--", "dvc.lock", "reports", "metrics.json")
        project.dvc("checkout")
        assert hashes(project) == before
    finally:
        project.run("git", "checkout", "--", "params.yaml", "dvc.lock")
    assert "up to date" in project.dvc("status").stdout
