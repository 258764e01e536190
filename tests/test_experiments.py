"""Experiments at scale, the DVC way: a queued sweep with two workers, and experiments shared between clones."""

import json
import re
import time
from pathlib import Path

import pytest
import yaml

from tests.dvc_project import ROOT, Project

pytestmark = pytest.mark.slow
# kernels + untied biases, Dense(3380->100) weights + biases, Dense(100->2) weights + biases
NOTEBOOK_PARAMETERS = 5 * 3 * 3 + 5 * 26 * 26 + 3380 * 100 + 100 + 100 * 2 + 2


def experiments(project: Project) -> dict[str, dict]:
    """{experiment name: its data (params, metrics)} from `dvc exp show --json`."""
    rows = json.loads(project.dvc("exp", "show", "--json").stdout)
    found = {}
    for row in rows:
        for exp in row.get("experiments") or []:
            for rev in exp.get("revs", []):
                if rev.get("name"):
                    found[rev["name"]] = rev.get("data", {})
    return found


def readme_yaml(marker: str) -> dict:
    """The YAML block that follows `<!-- marker -->` in README.md, so the tests keep the README true."""
    text = (ROOT / "README.md").read_text()
    match = re.search(rf"<!-- {marker} -->\s*```yaml\n(.*?)```", text, re.S)
    assert match, f"README.md has no yaml block after <!-- {marker} -->"
    return yaml.safe_load(match.group(1))


def apply_params(project: Project, overrides: dict) -> None:
    params = yaml.safe_load((project.path / "params.yaml").read_text())
    for section, values in overrides.items():
        params[section].update(values)
    (project.path / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def test_ten_digit_configuration_from_the_readme_reaches_95_percent(tmp_path: Path) -> None:
    project = Project.create(tmp_path / "repo")
    apply_params(project, readme_yaml("ten-digits"))
    project.dvc("repro")
    metrics = json.loads((project.path / "metrics.json").read_text())
    assert len(metrics["per_class"]) == 10
    assert metrics["test_images"] == 1000
    assert metrics["accuracy"] >= 0.95


def test_queued_sweep_runs_with_two_workers(tmp_path: Path) -> None:
    project = Project.create(tmp_path / "repo")
    project.set_param("train.epochs", "3")
    project.commit("short runs")  # queued experiments see only committed (or staged) files
    rates = ("0.05", "0.1", "0.2")
    for rate in rates:
        project.dvc("exp", "run", "--queue", "-S", f"train.learning_rate={rate}", "--name", f"lr-{rate}")
    project.dvc("queue", "start", "-j", "2")
    deadline = time.monotonic() + 480
    while time.monotonic() < deadline:
        status = project.dvc("queue", "status").stdout
        if not re.search(r"\b(Queued|Running)\b", status):
            break
        time.sleep(3)
    project.dvc("queue", "stop", "--kill", check=False)
    found = experiments(project)
    assert {f"lr-{rate}" for rate in rates} <= set(found), (found.keys(), status)
    for rate in rates:
        data = found[f"lr-{rate}"]
        assert data["params"]["params.yaml"]["data"]["train"]["learning_rate"] == float(rate)
        assert 0 <= data["metrics"]["metrics.json"]["data"]["accuracy"] <= 1
        assert data["metrics"]["reports/train/metrics.json"]["data"]["parameters"] == NOTEBOOK_PARAMETERS


def test_experiment_pushed_from_one_clone_is_pulled_and_reproduced_by_another(tmp_path: Path) -> None:
    origin = tmp_path / "origin.git"
    first = Project.create(tmp_path / "first")
    first.run("git", "init", "-q", "--bare", "-b", "main", str(origin))
    first.dvc("remote", "add", "-d", "shared", str(tmp_path / "dvc-store"))
    first.set_param("train.epochs", "3")
    first.dvc("repro")
    first.commit("baseline with a shared DVC remote")
    first.run("git", "remote", "add", "origin", str(origin))
    first.run("git", "push", "-q", "origin", "main")
    first.dvc("push")
    first.dvc("exp", "run", "-S", "train.learning_rate=0.05", "--name", "shared-exp")
    pushed = experiments(first)["shared-exp"]["metrics"]["metrics.json"]["data"]
    first.dvc("exp", "push", "origin", "shared-exp")

    second = Project(tmp_path / "second", first.env)
    first.run("git", "clone", "-q", str(origin), str(second.path))
    second.dvc("exp", "pull", "origin", "shared-exp")
    assert experiments(second)["shared-exp"]["metrics"]["metrics.json"]["data"] == pushed
    second.dvc("exp", "apply", "shared-exp")
    second.dvc("pull")
    assert json.loads((second.path / "metrics.json").read_text()) == pushed
    result = second.dvc("repro")
    assert "Running stage" not in result.stdout  # its outputs came from the remote: nothing re-trained
