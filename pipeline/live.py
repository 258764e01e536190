"""Live training metrics through dvclive, where DVC users look while a run goes on.

After every epoch: `<dir>/metrics.json` (the latest epoch; dvc.yaml lists it under `metrics:`, so `dvc exp show`
shows a running experiment's epoch, in the workspace or the queue), `<dir>/plots/metrics/**.tsv` (one row per
epoch), the VS Code extension's signal file `.dvc/tmp/exps/run/DVCLIVE_STEP_COMPLETED` (dvclive writes it
under `dvc exp run`), and a live update to DVC Studio when DVC_STUDIO_TOKEN is set.

The folder is not a tracked output (it is gitignored): an interrupted run leaves it as the run's own record,
never a changed tracked file. dvclive's options are all given here: no dvc.yaml written (it stays
hand-written), no experiment saved (DVC does that under `dvc exp run`), no timestamps and no report, so the
files hold the same bytes on every run of the same params.
"""

import os
import warnings
from typing import Any

# What a record of cnn's fit names each metric, and the name dvclive logs it under.
NAMES = {"loss": "train/loss", "accuracy": "train/accuracy", "val_loss": "val/loss", "val_accuracy": "val/accuracy"}


class LiveMetrics:
    """One dvclive step per epoch, numbered by the epoch (1, 2, ...). `log(record, learning_rate)` after each
    epoch; `end()` when the run has finished (Studio's "done", the signal file removed)."""

    def __init__(self, directory: str | os.PathLike) -> None:
        with warnings.catch_warnings():  # pynvml, a dependency of dvclive's GPU monitor, warns on import
            warnings.simplefilter("ignore", FutureWarning)
            from dvclive import Live

        self.live = Live(
            dir=os.fspath(directory),
            resume=False,  # a resumed run replays its checkpoint's epochs instead: the folder matches the run
            report=None,
            save_dvc_exp=False,
            dvcyaml=None,
            cache_images=False,
            monitor_system=False,
        )

    def log(self, record: dict[str, Any], learning_rate: float) -> None:
        self.live.step = int(record["epoch"])
        for key, name in NAMES.items():
            if key in record:
                self.live.log_metric(name, float(record[key]), timestamp=False)
        self.live.log_metric("learning_rate", float(learning_rate), timestamp=False)
        self.live.next_step()

    def end(self) -> None:
        self.live.end()
