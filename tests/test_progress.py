"""The live status line: drawn only on a terminal, and a warning never shares its line."""

import io
from pathlib import Path

import yaml
from typer.testing import CliRunner

from pipeline import train
from pipeline.cli import app
from pipeline.progress import EpochTimer, Progress, duration

TRAIN = ["train", "--data", "train.npz", "--model", "m.npz", "--reports", "r"]


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_warning_on_a_terminal_clears_the_live_line_first() -> None:
    stream = Terminal()
    progress = Progress(stream)
    progress.update("epoch 3/20: loss 0.1", force=True)
    progress.message("warning: training saturated")
    progress.update("epoch 4/20: loss 0.09", force=True)
    progress.done()
    lines = stream.getvalue().split("\n")
    assert lines[0] == "\r\033[Kepoch 3/20: loss 0.1\r\033[Kwarning: training saturated"
    assert lines[0].rsplit("\r\033[K", 1)[1] == "warning: training saturated"  # alone on the cleared line
    assert lines[1] == "\r\033[Kepoch 4/20: loss 0.09\r\033[K"


def test_off_a_terminal_only_messages_are_written() -> None:
    stream = io.StringIO()
    progress = Progress(stream)
    progress.update("epoch 3/20: loss 0.1", force=True)
    progress.message("warning: training saturated")
    progress.done()
    assert stream.getvalue() == "warning: training saturated\n"


def test_each_epoch_line_gives_its_speed_and_the_time_left() -> None:
    timer = EpochTimer(epochs=10)
    assert timer(1, 6000, 2.0, 6000) == "3,000 images/s  epoch 2.0 s  ETA 18.0 s"
    assert timer(2, 6000, 4.0, 6000) == "1,500 images/s  epoch 4.0 s  ETA 24.0 s"  # 8 left at the mean of 3 s
    assert timer(10, 6000, 3.0, 6000).endswith("ETA 0.0 s")


def test_a_run_resumed_within_an_epoch_counts_whole_epochs_left() -> None:
    """Resumed at image 3000 of epoch 2 of 4 (a log shows no live line): the part of epoch 2 sets the speed,
    the two epochs left are of all 6000 images each."""
    resumed = EpochTimer(epochs=4)
    assert resumed(2, 3000, 5.0, 6000) == "600 images/s  epoch 5.0 s  ETA 20.0 s"
    assert resumed(3, 6000, 10.0, 6000) == "600 images/s  epoch 10.0 s  ETA 10.0 s"


def test_durations_read_as_seconds_minutes_or_hours() -> None:
    assert [duration(s) for s in (0.04, 59.9, 65, 3599, 7620)] == [
        "0.0 s",
        "59.9 s",
        "1 min 05 s",
        "59 min 59 s",
        "2 h 07 min",
    ]


def train_here(tmp_path: Path, monkeypatch, split_file, epochs: int) -> None:
    """tmp_path as the working folder of a train run: 40 training images in train.npz, params.yaml's train section
    with `epochs` epochs, and a live line due after every step."""
    split_file(40)
    settings = yaml.safe_load((Path(__file__).resolve().parents[1] / "params.yaml").read_text())
    settings["train"]["epochs"] = epochs
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(settings, sort_keys=False))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(train, "PROGRESS_SECONDS", 0.0)


def test_a_run_prints_one_line_per_epoch_in_logs(split_file, tmp_path, monkeypatch) -> None:
    """Off a terminal (a log, `dvc queue logs`) each epoch still gets its own line."""
    train_here(tmp_path, monkeypatch, split_file, epochs=3)
    result = CliRunner().invoke(app, TRAIN)
    assert result.exit_code == 0, result.output
    lines = [line for line in result.output.splitlines() if line.startswith("epoch ")]
    assert [line.split("  ")[0] for line in lines] == ["epoch 1/3", "epoch 2/3", "epoch 3/3"]
    assert all(" images/s  epoch " in line and "  ETA " in line for line in lines)
    assert "\r" not in result.output and "\033" not in result.output


def test_within_an_epoch_the_live_line_gives_speed_and_the_epochs_and_runs_time_left() -> None:
    timer = EpochTimer(epochs=4)
    assert timer.within(1, 1000, 6000, 1000, 2.0) == (
        "epoch 1/4  1,000/6,000 images  500 images/s  epoch ETA 10.0 s  run ETA 46.0 s"
    )
    timer(1, 6000, 10.0, 6000)  # epoch 1 ended: 600 images/s over the run
    assert timer.within(2, 3000, 6000, 3000, 5.0) == (
        "epoch 2/4  3,000/6,000 images  600 images/s  epoch ETA 5.0 s  run ETA 25.0 s"
    )
    resumed = EpochTimer(epochs=4)  # resumed at image 3000 of epoch 2: its speed is of this run's images
    assert resumed.within(2, 4000, 6000, 1000, 2.0).endswith("500 images/s  epoch ETA 4.0 s  run ETA 28.0 s")


def test_on_a_terminal_the_epochs_line_updates_within_it(split_file, tmp_path, monkeypatch) -> None:
    train_here(tmp_path, monkeypatch, split_file, epochs=2)
    plain_init = Progress.__init__

    def on_a_terminal(self, stream=None, interval=0.1) -> None:
        plain_init(self, stream, interval)
        self.enabled = True

    monkeypatch.setattr(Progress, "__init__", on_a_terminal)
    result = CliRunner().invoke(app, TRAIN)
    assert result.exit_code == 0, result.output
    drawn = [part for part in result.output.replace("\n", "\r\033[K").split("\r\033[K") if part]
    live = [part for part in drawn if " images  " in part]
    assert live[0].startswith("epoch 1/2  1/40 images  ") and live[-1].startswith("epoch 2/2  40/40 images  ")
    assert len(live) == 80 and all(" images/s  epoch ETA " in part and "  run ETA " in part for part in live)
    assert [part.split("  ")[0] for part in drawn if "loss" in part][:2] == ["epoch 1/2", "epoch 2/2"]
