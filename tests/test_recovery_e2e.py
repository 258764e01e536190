"""A bad param never costs the last good outputs, with real `dvc repro` on a copy of the project.

DVC removes a stage's outputs before it runs the stage's command. The `check` stage, upstream of every
other stage, validates params.yaml first, so a bad value stops `dvc repro` (exit 255) with every output in
place. A failure only training can find (here: a validation split that leaves no training images) leaves
train's outputs too: they are `persist` in dvc.yaml and train writes them only when it has finished. The
README's line `git checkout -- params.yaml dvc.lock reports metrics.json && dvc checkout` brings back the last
committed good run (git holds the params, the lock and the uncached metrics and plot tables, DVC's cache the
rest) after an experiment. A bad value set by `dvc exp run -S` gets the way back in its error line, and the
commands there work.
"""

import re
import subprocess

import pytest

from tests.dvc_project import BIN, ROOT, Project, readme_block

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


def shell(project: Project, line: str) -> None:
    done = subprocess.run(line, shell=True, cwd=project.path, env=project.env, capture_output=True, text=True)
    assert done.returncode == 0, f"{line}:\n{done.stdout}\n{done.stderr}"


def clean(project: Project) -> None:
    """Everything as committed: `git status` shows nothing, `dvc status` nothing to run."""
    assert project.run("git", "status", "--porcelain").stdout == ""
    assert "up to date" in project.dvc("status").stdout


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


def test_failure_inside_train_leaves_its_previous_outputs(project: Project) -> None:
    before = hashes(project)
    project.set_param("train.validation_fraction", "0.9999")
    try:
        result = project.dvc("repro", check=False)
        assert result.returncode == 255, result.stdout + result.stderr
        assert "leaves no training images" in result.stdout + result.stderr
        assert hashes(project) == before  # persist: DVC did not remove them, and train wrote none
        changed = project.run("git", "status", "--porcelain").stdout.split("\n")
        assert sorted(line for line in changed if line.strip()) == [" M dvc.lock", " M params.yaml"]  # check ran
        lock = project.run("git", "diff", "--", "dvc.lock").stdout
        assert "validation_fraction: 0.9999" in lock and "md5" not in lock  # only check's params entry moved
    finally:
        project.run("git", "checkout", "--", "params.yaml", "dvc.lock")
    clean(project)


def test_the_readmes_recovery_line_undoes_an_experiment_without_training(project: Project) -> None:
    before = hashes(project)
    project.dvc("exp", "run", "-n", "lr-005", "-S", "train.learning_rate=0.05")
    assert hashes(project) != before
    shell(project, readme_block("recovery").strip())
    assert hashes(project) == before
    clean(project)


def test_a_bad_value_from_exp_run_set_says_the_way_back_and_it_works(project: Project) -> None:
    before = hashes(project)
    result = project.dvc("exp", "run", "-S", "train.learning_rate=abc", check=False)
    assert result.returncode == 255
    ours = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(ours) == 1 and ours[0].startswith("error: params.yaml: train.learning_rate = 'abc' is not allowed")
    assert "learning_rate: abc" in (project.path / "params.yaml").read_text()
    assert not (project.path / "data" / "params.checked").exists()  # DVC removed it before running check
    commands = re.findall(r"`([^`]+)`", ours[0].split("left this value in params.yaml", 1)[1])
    ways_back = [c for c in commands if c.startswith(("git show", "dvc repro"))]
    assert [c.split()[:2] for c in ways_back] == [["git", "show"], ["dvc", "repro"]], ours[0]
    for line in ways_back:
        shell(project, line)
    assert hashes(project) == before
    assert (project.path / "data" / "params.checked").exists()
    clean(project)


def test_a_yaml_syntax_error_stops_dvc_before_any_stage(project: Project) -> None:
    before = hashes(project)
    text = (project.path / "params.yaml").read_text()
    (project.path / "params.yaml").write_text(text.replace("  epochs: 2", "  epochs: [2", 1))
    try:
        result = project.dvc("repro", check=False)
        assert result.returncode == 255
        assert "Running stage" not in result.stdout and "Traceback" not in result.stderr
        first = result.stderr.splitlines()[0]
        assert first.startswith("ERROR: unable to read: 'params.yaml', YAML file structure is corrupted")
        assert first in (ROOT / "README.md").read_text()  # the README quotes what DVC says
        ours = project.run(str(BIN / "python"), "-m", "pipeline", "check", check=False)
        assert ours.returncode == 2 and ours.stderr.count("\n") == 1
        after = text.splitlines().index("  epochs: 2") + 2  # the parser stops at the line after the open list
        assert ours.stderr.startswith(f"error: params.yaml: not valid YAML at line {after}, column 13")
        assert hashes(project) == before
    finally:
        project.run("git", "checkout", "--", "params.yaml")
    shell(project, "dvc repro")  # the stamp again (DVC's run cache); nothing else runs
    clean(project)
