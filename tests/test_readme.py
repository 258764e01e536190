"""The README's promises, run rather than grepped: its quick start, its library example, the pipeline it
draws, its params reference and the figures it quotes from the committed run."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from tests.dvc_project import Project

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
BIN = Path(sys.executable).parent


def test_library_example_trains_the_notebook_network(notebook_data, tmp_path: Path, monkeypatch) -> None:
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
    assert len(blocks) >= 2, "README.md lost its python examples (a layer on its own, the notebook's network)"
    x_train, y_train, x_test, y_test = notebook_data
    monkeypatch.chdir(tmp_path)
    scope = {"x_train": x_train, "y_train": y_train, "x_test": x_test, "y_test": y_test}
    for block in blocks:  # in order, in one namespace, as a reader would type them
        exec(compile(block, "README.md", "exec"), scope)
    assert scope["y"].shape == (3, 4) and scope["dx"].shape == (3, 5)  # the shapes the first example states
    assert scope["accuracy"] >= 0.98  # the notebook's result, with a margin of 3 of its 200 test images
    assert np.array_equal(scope["same"].predict(x_test), scope["net"].predict(x_test))


@pytest.mark.slow
def test_quick_start_make_repro_reproduces_the_committed_run(tmp_path: Path) -> None:
    """`make repro` in a fresh copy (with this environment's venv, so no install): the pipeline runs, prints
    the metrics, and leaves every tracked file as committed."""
    assert "make repro" in README.read_text()
    project = Project.create(tmp_path / "repo")
    venv = BIN.parent
    os.utime(BIN / "dvc")  # newer than the copy's pyproject.toml: `make setup` has nothing to do
    result = project.run("make", "repro", f"VENV={venv}", timeout=900)
    assert "Running stage 'train'" in result.stdout  # evaluate's outputs, all in git, are already up to date
    assert re.search(r"^metrics\.json\s+0\.\d+", result.stdout, re.M), result.stdout  # `dvc metrics show`
    assert project.run("git", "status", "--porcelain").stdout == ""


def test_the_quoted_result_is_the_committed_runs() -> None:
    text = README.read_text()
    right, total = map(int, re.search(r"gets (\d+) of the (\d+) held-out test images", text).groups())
    predictions = pd.read_csv(ROOT / "reports" / "evaluate" / "predictions.csv")
    assert total == len(predictions)
    assert right == int((predictions["actual"] == predictions["predicted"]).sum())
    quoted = float(re.search(r"`metrics\.json`: accuracy ([\d.]+)", text).group(1))
    assert quoted == json.loads((ROOT / "metrics.json").read_text())["accuracy"] == right / total


def test_the_pipeline_drawn_is_dvc_dag() -> None:
    dag = subprocess.run(
        [str(BIN / "dvc"), "dag"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        env=os.environ | {"COLUMNS": "80"},
    ).stdout
    drawn = re.search(r"`dvc dag` draws.*?```\n(.*?)```", README.read_text(), re.S).group(1)
    assert [line.rstrip() for line in drawn.strip("\n").splitlines()] == [
        line.rstrip() for line in dag.strip("\n").splitlines()
    ]


def test_params_reference_lists_every_key_of_params_yaml() -> None:
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    keys = {f"{section}.{key}" for section, values in params.items() for key in values}
    reference = re.search(r"### `params.yaml` reference\n(.*?)\n#", README.read_text(), re.S).group(1)
    listed = set(re.findall(r"^\| `(\w+\.\w+)` \|", reference, re.M))
    assert listed == keys
