"""An interrupted `dvc repro` of train changes no tracked output (real dvc, on a copy of the project).

dvc.yaml marks train's outputs `persist`, so DVC does not delete them before running the stage, and train
writes them only when it has finished. Killed (SIGKILL, as by the OOM killer) or stopped (SIGINT, Ctrl-C)
after its second epoch, the previous run's model, metrics, loss table and plots keep their bytes and
`git status` shows nothing but the params change that started the run. The next `dvc repro` resumes from the
checkpoint train wrote after its last finished epoch and ends with the bits of an uninterrupted run.
"""

import json
import os
import signal
import subprocess
import time

import pytest
import yaml

from tests.checkpoints import RESUME_TRAIN, checkpoint_header
from tests.dvc_project import BIN, Project

pytestmark = pytest.mark.slow
OUTPUTS = (
    "models/model.npz",
    "reports/train/loss.csv",
    "reports/train/loss.png",
    "reports/train/metrics.json",
    "reports/train/platform.json",
    "metrics.json",
    "dvc.lock",
)


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Project:
    return Project.with_committed_run(tmp_path_factory.mktemp("interrupt") / "repo")


def live_epoch(project: Project) -> int:
    try:
        return json.loads((project.path / "reports/train/live/metrics.json").read_text())["step"]
    except (OSError, ValueError, KeyError):
        return 0


@pytest.mark.parametrize("signum", [signal.SIGKILL, signal.SIGINT])
def test_interrupted_repro_leaves_every_tracked_output(project: Project, signum: int) -> None:
    before = {name: project.sha256(name) for name in OUTPUTS}
    project.set_param("train.epochs", "50")
    try:
        repro = project.start(str(BIN / "dvc"), "repro", stderr=subprocess.STDOUT)  # os.killpg: dvc and train
        deadline = time.monotonic() + 300
        while live_epoch(project) < 2 and repro.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert live_epoch(project) >= 2 and repro.poll() is None, "train did not reach epoch 2"
        os.killpg(repro.pid, signum)
        output, _ = repro.communicate(timeout=120)
        assert repro.returncode != 0, output
        assert "Traceback" not in output
        assert {name: project.sha256(name) for name in OUTPUTS} == before
        changed = [line for line in project.run("git", "status", "--porcelain").stdout.split("\n") if line.strip()]
        assert changed == [" M params.yaml"]
    finally:
        project.run("git", "checkout", "--", "params.yaml")
    assert "up to date" in project.dvc("status").stdout


LAYERS = [
    {"type": "conv", "depth": 5, "kernel_size": 3},
    {"type": "relu"},
    {"type": "flatten"},
    {"type": "dense", "units": 100},
    {"type": "relu"},
    {"type": "dropout", "rate": 0.3},
    {"type": "dense"},
    {"type": "sigmoid"},
]
CHECKPOINT = ".dvc/tmp/checkpoints/train.npz"


def checkpoint_epoch(project: Project) -> int:
    return checkpoint_header(project.path / CHECKPOINT).get("epoch", 0)


def train_lock(project: Project) -> dict:
    return yaml.safe_load((project.path / "dvc.lock").read_text())["stages"]["train"]


def train_outputs(project: Project) -> dict[str, str]:
    outs = {out["path"]: out.get("md5") for out in train_lock(project)["outs"]}
    return outs | {name: project.sha256(name) for name in OUTPUTS if name != "dvc.lock"}


@pytest.mark.parametrize(("signum", "after"), [(signal.SIGKILL, 2), (signal.SIGINT, 1)])
def test_the_next_repro_resumes_an_interrupted_run_to_the_same_bits(project: Project, signum: int, after: int) -> None:
    """Adam, a one-cycle schedule, dropout, augmentation and a validation split, 4 epochs: stopped once the
    checkpoint holds epoch `after` (SIGKILL between epochs 2 and 3, SIGINT within epoch 2), the next `dvc repro`
    resumes there and its dvc.lock outputs equal those of an uninterrupted run of the same params (run with the
    checkpoint removed)."""
    before = {name: project.sha256(name) for name in OUTPUTS if name != "dvc.lock"} | {"lock": train_lock(project)}
    params = yaml.safe_load((project.path / "params.yaml").read_text())
    params["train"].update(RESUME_TRAIN, layers=LAYERS)
    (project.path / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    try:
        repro = project.start(str(BIN / "dvc"), "repro", stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 300
        while checkpoint_epoch(project) < after and repro.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        stopped_after = checkpoint_epoch(project)
        assert repro.poll() is None and after <= stopped_after < 4, "train did not stop in time"
        os.killpg(repro.pid, signum)
        repro.communicate(timeout=120)
        assert {name: project.sha256(name) for name in OUTPUTS if name != "dvc.lock"} | {
            "lock": train_lock(project)
        } == before
        changed = [line for line in project.run("git", "status", "--porcelain").stdout.split("\n") if line.strip()]
        assert set(changed) <= {" M params.yaml", " M dvc.lock"}  # dvc.lock: check's new params, if it ran

        resumed = project.dvc("repro")
        stopped_after = checkpoint_epoch(project) or stopped_after
        lines = [line for line in (resumed.stdout + resumed.stderr).splitlines() if "resuming" in line]
        assert lines == [f"train: resuming from {CHECKPOINT} after epoch {stopped_after} of 4"]
        assert not (project.path / CHECKPOINT).exists()
        assert f"epoch {stopped_after}/4 " not in resumed.stderr and "epoch 4/4 " in resumed.stderr
        resumed_outputs = train_outputs(project)

        whole = project.dvc("repro", "-f", "-s", "train")  # no checkpoint now: all four epochs
        assert [line for line in (whole.stdout + whole.stderr).splitlines() if "resuming" in line] == []
        assert "epoch 1/4" in whole.stderr
        assert train_outputs(project) == resumed_outputs
    finally:
        project.run("git", "checkout", "--", "params.yaml", "dvc.lock", "reports", "metrics.json")
        project.dvc("checkout", "-f")
    assert {name: project.sha256(name) for name in OUTPUTS if name != "dvc.lock"} | {
        "lock": train_lock(project)
    } == before
