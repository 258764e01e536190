"""DVC as a user drives it: readable tables, minimal params diffs, plots of HEAD next to an experiment in a
fresh clone, and the model registry entry (`dvc artifacts get`, `dvc ls`)."""

import hashlib
import json
import re
import shlex
import time
from pathlib import Path

import pytest

from tests.dvc_project import ROOT, Project, readme_block

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Project:
    """A copy of the project with a 2-epoch run committed."""
    return Project.with_committed_run(tmp_path_factory.mktemp("experience") / "repo")


def test_exp_run_set_changes_only_that_line_of_params_yaml(project: Project) -> None:
    project.dvc("exp", "run", "-S", "train.learning_rate=0.05", "--name", "lr-005")
    diff = project.run("git", "diff", "-U0", "params.yaml").stdout
    changed = [line for line in diff.splitlines() if line[:1] in "+-" and not line.startswith(("+++", "---"))]
    assert changed == ["-  learning_rate: 0.1", "+  learning_rate: 0.05"], diff
    project.dvc("exp", "run", "-S", "data.digits=[0,1,7]", "--name", "three-digits")
    diff = project.run("git", "diff", "-U0", "params.yaml").stdout
    added = [line for line in diff.splitlines() if line.startswith("+") and not line.startswith("+++")]
    assert "+  - 7" in added and len(added) == 2, diff  # the new list item, and the learning rate kept from before


def test_the_readmes_tables_fit_a_120_column_terminal(project: Project) -> None:
    project.dvc("exp", "run", "-S", "train.learning_rate=0.2", "--name", "lr-02")
    metrics = project.dvc("metrics", "show", "metrics.json").stdout  # the README's short form
    assert max(map(len, metrics.splitlines())) <= 120, metrics
    assert "dvc metrics show metrics.json" in (ROOT / "README.md").read_text()
    command = shlex.split(readme_block("exp-show"))
    assert command[:3] == ["dvc", "exp", "show"]
    table = project.run("env", "COLUMNS=120", project.env["PATH"].split(":")[0] + "/dvc", *command[1:]).stdout
    assert max(map(len, table.splitlines())) <= 120, table
    header = next(line for line in table.splitlines() if "Experiment" in line).split()
    assert {"accuracy", "loss", "roc_auc", "train.learning_rate"} <= set(header), header
    assert "…" not in table
    assert "[lr-02]" in table, table


def test_plots_diff_of_head_and_an_experiment_in_a_fresh_clone(project: Project, tmp_path: Path) -> None:
    clone = Project(tmp_path / "clone", project.env)
    project.run("git", "clone", "-q", str(project.path), str(clone.path))
    clone.dvc("exp", "run", "-S", "train.epochs=1", "--name", "one-epoch")
    result = clone.dvc("plots", "diff", "HEAD", "one-epoch", "--json")
    charts = json.loads(result.stdout)["data"]
    for name in ("Loss per epoch", "Confusion matrix", "ROC", "Precision-recall", "F1 per digit"):
        revisions = {rev for plot in charts[name] for rev in plot["revisions"]}
        assert revisions == {"HEAD", "one-epoch"}, (name, revisions)  # the CSVs of HEAD come from git
    assert not json.loads(result.stdout).get("errors"), result.stdout[-2000:]
    pictures = [p for name, plots in charts.items() if name.endswith(".png") for p in plots]
    assert {p["revisions"][0] for p in pictures} == {"HEAD", "one-epoch"}  # so do its figures


def test_model_registry_entry_gets_the_model_by_name(project: Project, tmp_path: Path) -> None:
    listing = project.dvc("ls", str(project.path), "models", "--dvc-only").stdout.split()
    assert listing == ["model.npz"]
    project.run("git", "tag", "-a", "mnist-cnn@v1.0.0", "-m", "Registering artifact mnist-cnn version 1.0.0")
    gets = [line for line in readme_block("registry").splitlines() if line.startswith("dvc artifacts get")]
    assert len(gets) == 2
    user = Project(tmp_path / "user", project.env)
    user.path.mkdir()
    for line in gets:  # in order, in one folder, as a user pastes them
        user.run(*shlex.split(line.replace("<repo-url>", str(project.path))))
    files = sorted(user.path.iterdir())
    assert len(files) == 2, files
    for got in files:
        assert _dir_entry_has(project, hashlib.md5(got.read_bytes()).hexdigest())  # the model of the tagged commit


def _dir_entry_has(project: Project, digest: str) -> bool:
    """True when the committed `models` directory listing (DVC's .dir object) names a file of this md5."""
    lock = project.run("git", "show", "HEAD:dvc.lock").stdout
    dir_md5 = re.search(r"path: models\n\s+hash: md5\n\s+md5: (\w+)\.dir", lock)
    assert dir_md5, lock
    listing = project.path / ".dvc" / "cache" / "files" / "md5" / dir_md5.group(1)[:2] / f"{dir_md5.group(1)[2:]}.dir"
    return any(entry["md5"] == digest and entry["relpath"] == "model.npz" for entry in json.loads(listing.read_text()))


def test_the_readmes_exp_show_fits_120_columns_after_the_readmes_sweep(tmp_path: Path) -> None:
    project = Project.with_committed_run(tmp_path / "repo")
    queue = next(line for line in readme_block("sweep").splitlines() if line.startswith("dvc exp run --queue"))
    project.run(*shlex.split(queue))
    project.dvc("queue", "start", "-j", "2")
    deadline = time.monotonic() + 900
    try:
        while re.search(r"\b(Queued|Running)\b", status := project.dvc("queue", "status").stdout):
            assert time.monotonic() < deadline, status
            time.sleep(3)
    finally:
        project.dvc("queue", "stop", "--kill", check=False)
    assert status.count("Success") == 9, status
    command = shlex.split(readme_block("exp-show"))
    table = project.run("env", "COLUMNS=200", project.env["PATH"].split(":")[0] + "/dvc", *command[1:]).stdout
    rows = table.splitlines()
    assert len([row for row in rows if re.search(r"[├└]── \w{7} \[", row)]) == 9, table
    assert max(len(row.rstrip()) for row in rows) <= 120, table
    header = next(row for row in rows if "Experiment" in row).split()
    assert {"accuracy", "train.learning_rate", "train.batch_size"} <= set(header), header
