"""A queued experiment can be watched while it runs (real dvc queue, on a copy of the project).

`dvc exp show --json` reads the running worker's reports/train/live/metrics.json (dvclive), so it shows the
epoch the run has reached; the VS Code extension's signal file .dvc/tmp/exps/run/DVCLIVE_STEP_COMPLETED in
the project (not in the worker's copy) names each finished epoch and is removed at the end; the worker's
log (`dvc queue logs`) has one line per epoch.
"""

import json
import subprocess
import time

import pytest

from tests.dvc_project import BIN, Project

pytestmark = pytest.mark.slow
EPOCHS = 60


def running_epochs(shown: list) -> list[int]:
    """The live epoch of each running experiment in `dvc exp show --json` output."""
    found = []
    for baseline in shown:
        for experiment in baseline.get("experiments") or []:
            if (experiment.get("executor") or {}).get("state") != "running":
                continue
            for rev in experiment["revs"]:
                live = ((rev.get("data") or {}).get("metrics") or {}).get("reports/train/live/metrics.json")
                if live:
                    found.append(live["data"]["step"])
    return found


def test_a_queued_run_shows_its_latest_epoch_while_it_runs(tmp_path) -> None:
    project = Project.with_committed_run(tmp_path / "repo")
    signal_file = project.path / ".dvc/tmp/exps/run/DVCLIVE_STEP_COMPLETED"
    project.dvc("exp", "run", "--queue", "-n", "long", "-S", f"train.epochs={EPOCHS}")
    # the worker it starts outlives it and would hold captured pipes open until the queue is done
    subprocess.run(
        [str(BIN / "dvc"), "queue", "start", "-j", "1"],
        cwd=project.path,
        env=project.env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        check=True,
    )
    try:
        signalled: list[int] = []
        shown: list[int] = []
        last = ""
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            if signal_file.exists():
                try:
                    signalled.append(json.loads(signal_file.read_text())["step"])
                except (OSError, ValueError):  # dvclive writes it in place (caught mid-write) and removes it
                    pass
            if signalled and signalled[-1] >= 2 and not shown:
                last = project.dvc("exp", "show", "--json").stdout
                shown = running_epochs(json.loads(last))
            elif shown or not signalled:
                status = project.dvc("queue", "status").stdout
                if "Success" in status or "Failed" in status:
                    break
            time.sleep(0.1)
        assert "Success" in project.dvc("queue", "status").stdout
        assert shown and 2 <= shown[0] <= EPOCHS, last
        assert len(set(signalled)) >= 2 and signalled == sorted(signalled), signalled
        assert not signal_file.exists()  # dvclive's end() removes it
        log = project.dvc("queue", "logs", "long").stdout
        epoch_lines = [line for line in log.splitlines() if line.startswith("epoch ")]
        assert [line.split()[1] for line in epoch_lines] == [f"{k}/{EPOCHS}" for k in range(1, EPOCHS + 1)]
        assert all("images/s" in line and "ETA" in line for line in epoch_lines)
    finally:
        project.dvc("queue", "kill", "long", check=False)
        project.dvc("queue", "stop", check=False)
