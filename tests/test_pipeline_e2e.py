"""The pipeline as users run it: real `dvc` commands on a copy of the project with its own git repo."""

import json
import shutil
from pathlib import Path

import pytest

from tests.dvc_project import Project

pytestmark = pytest.mark.slow
OUTPUTS = ("data/raw/train-images-idx3-ubyte.gz", "data/processed/train.npz", "models/model.npz", "metrics.json")


def stages_run(output: str) -> list[str]:
    return [line.split("'")[1] for line in output.splitlines() if line.startswith("Running stage")]


def restore(project: Project) -> None:
    """Back to the committed run: params, lock and metrics from git, the outputs from DVC's cache."""
    project.run("git", "checkout", "--", ".")
    project.dvc("checkout", "-f")


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Project:
    """The project after one `dvc repro` on the default params, committed with its dvc.lock."""
    project = Project.create(tmp_path_factory.mktemp("e2e") / "repo")
    result = project.dvc("repro")
    # evaluate's outputs are all in git (cache: false) and train rebuilds the committed model bit for bit,
    # so DVC finds evaluate up to date and does not run it
    assert stages_run(result.stdout) == ["check", "download", "preprocess", "train"]
    project.commit("default run")
    return project


def test_default_repro_reaches_the_notebooks_accuracy(project: Project) -> None:
    metrics = json.loads((project.path / "metrics.json").read_text())
    assert metrics["accuracy"] >= 0.98  # the notebook gets every test image it prints right
    assert metrics["test_images"] == 200
    assert (project.path / "reports/evaluate/per_class.csv").read_text().splitlines()[1:] != []


def test_second_repro_runs_nothing(project: Project) -> None:
    result = project.dvc("repro")
    assert stages_run(result.stdout) == []
    assert "up to date" in project.dvc("status").stdout


def test_changing_epochs_reruns_train_and_evaluate_only(project: Project) -> None:
    project.set_param("train.epochs", "3")
    try:
        result = project.dvc("repro")
        assert stages_run(result.stdout) == ["check", "train", "evaluate"]  # check re-runs, its stamp does not change
        diff = json.loads(project.dvc("metrics", "diff", "--json").stdout)
        assert "metrics.json" in diff and "loss" in diff["metrics.json"]
        assert diff["metrics.json"]["loss"]["diff"] != 0
        params = json.loads(project.dvc("params", "diff", "--json").stdout)
        change = params["params.yaml"]["train.epochs"]
        assert (change["old"], change["new"]) == (20, 3)
    finally:
        restore(project)
    assert "up to date" in project.dvc("status").stdout


def test_exp_run_with_a_set_param_is_listed_with_its_metrics(project: Project) -> None:
    project.dvc("exp", "run", "-S", "train.learning_rate=0.05", "--name", "lr-005")
    rows = json.loads(project.dvc("exp", "show", "--json").stdout)
    found = [
        exp
        for row in rows
        for exp in (row.get("experiments") or [])
        for rev in exp.get("revs", [])
        if rev.get("name") == "lr-005"
    ]
    assert found, rows
    data = found[0]["revs"][0]["data"]
    assert data["params"]["params.yaml"]["data"]["train"]["learning_rate"] == 0.05
    assert data["metrics"]["metrics.json"]["data"]["accuracy"] >= 0.9
    restore(project)


def test_push_then_pull_restores_identical_files(project: Project, tmp_path: Path) -> None:
    project.dvc("remote", "add", "--local", "-f", "store", str(tmp_path / "remote"))
    project.dvc("push", "-r", "store")
    before = {name: project.sha256(name) for name in OUTPUTS}
    for folder in ("data/raw", "data/processed", "models", ".dvc/cache"):
        shutil.rmtree(project.path / folder)
    project.dvc("pull", "-r", "store")
    assert {name: project.sha256(name) for name in OUTPUTS} == before
    assert "up to date" in project.dvc("status").stdout


def test_stages_by_hand_give_the_same_files_as_dvc(project: Project) -> None:
    expected = {name: project.sha256(name) for name in OUTPUTS}
    for folder in ("data/raw", "data/processed", "models"):
        shutil.rmtree(project.path / folder)
    for stage in ("download", "preprocess", "train", "evaluate"):
        project.run("python", "-m", "pipeline", stage)
    assert {name: project.sha256(name) for name in OUTPUTS} == expected


def test_forced_repro_is_bit_reproducible(project: Project) -> None:
    expected = {name: project.sha256(name) for name in ("models/model.npz", "metrics.json")}
    project.dvc("repro", "--force")
    assert {name: project.sha256(name) for name in expected} == expected
