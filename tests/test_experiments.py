"""Experiments at scale, the DVC way: ten digits, and a queued sweep with two workers ranked by `pipeline compare`.

(Sharing experiments between clones through a remote: tests/test_remote_s3.py.)"""

import json
import re
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

from tests.dvc_project import Project, readme_block

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


def apply_params(project: Project, overrides: dict) -> None:
    params = yaml.safe_load((project.path / "params.yaml").read_text())
    for section, values in overrides.items():
        params[section].update(values)
    (project.path / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def test_ten_digit_configuration_from_the_readme_reaches_95_percent(tmp_path: Path) -> None:
    project = Project.create(tmp_path / "repo")
    apply_params(project, yaml.safe_load(readme_block("ten-digits", "yaml")))
    project.dvc("repro")
    metrics = json.loads((project.path / "metrics.json").read_text())
    per_class = pd.read_csv(project.path / "reports" / "evaluate" / "per_class.csv")
    assert per_class["digit"].tolist() == list(range(10))
    assert per_class["support"].sum() == metrics["test_images"] == 1000
    assert metrics["accuracy"] >= 0.95
    table = project.dvc("metrics", "show", "metrics.json").stdout  # ten digits: still one short line
    assert max(map(len, table.splitlines())) <= 120, table
    assert {"accuracy", "loss", "roc_auc"} <= set(table.split())


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
        assert data["metrics"]["reports/train/metrics.json"]["data"]["parameters"] == NOTEBOOK_PARAMETERS
    # A queued worker runs in its own copy with its own threads: the run with the committed params must give
    # the metrics a plain `dvc repro` of the same commit gives, to the last digit.
    project.dvc("repro")
    workspace = json.loads((project.path / "metrics.json").read_text())
    assert found["lr-0.1"]["metrics"]["metrics.json"]["data"] == workspace
    assert workspace["accuracy"] >= 0.95  # 3 epochs of the notebook's network on 0 and 1

    report = project.run(sys.executable, "-m", "pipeline", "compare", "--out", "sweep.md").stdout
    assert report == (project.path / "sweep.md").read_text()
    rows = [line.strip("|").split("|") for line in report.splitlines()[2:]]
    header = [cell.strip() for cell in report.splitlines()[0].strip("|").split("|")]
    assert header[:2] == ["rank", "experiment"] and header[-3:] == ["accuracy", "loss", "roc_auc"]
    assert "train.learning_rate" in header and "train.epochs" not in header  # only the params that differ
    ranked = {row[1].strip(): row for row in rows}
    assert {f"lr-{rate}" for rate in rates} <= set(ranked)
    by_accuracy = sorted(  # independent ranking from `dvc exp show --json`: accuracy down, ties in any order
        (found[f"lr-{rate}"]["metrics"]["metrics.json"]["data"]["accuracy"] for rate in rates), reverse=True
    )
    accuracy_column = header.index("accuracy")
    shown = [float(ranked[f"lr-{rate}"][accuracy_column]) for rate in rates]
    listed = [float(row[accuracy_column]) for row in rows if row[1].strip() in {f"lr-{r}" for r in rates}]
    assert listed == by_accuracy and sorted(shown, reverse=True) == by_accuracy
    for rate in rates:
        assert float(ranked[f"lr-{rate}"][header.index("train.learning_rate")]) == float(rate)
