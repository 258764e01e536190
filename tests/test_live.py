"""Live training metrics through dvclive, and outputs that appear only when a run has finished.

While train runs, reports/train/live/ (dvclive, gitignored) holds every finished epoch; the tracked outputs
(model, loss.csv, loss.png, metrics.json, platform.json) keep the previous run's bytes until the end.
"""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import numpy as np
import pandas as pd
import pytest

from pipeline import train
from tests.conftest import train_params

ROOT = Path(__file__).resolve().parents[1]
OUTPUTS = ("model.npz", "reports/loss.csv", "reports/loss.png", "reports/metrics.json", "reports/platform.json")


@pytest.fixture
def small_split(split_file) -> Path:
    return split_file(60)


def tsv(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, sep="\t")


def snapshot(folder: Path) -> dict[str, bytes | None]:
    return {name: (folder / name).read_bytes() if (folder / name).exists() else None for name in OUTPUTS}


@pytest.mark.parametrize("fraction", [0.0, 0.25])
def test_live_files_follow_each_epoch_while_the_outputs_wait_for_the_end(small_split, tmp_path, monkeypatch, fraction):
    monkeypatch.chdir(tmp_path)
    reports, live = tmp_path / "reports", tmp_path / "reports" / "live"
    train.run(train_params(epochs=2), small_split, tmp_path / "model.npz", reports)  # the "previous run"
    previous = snapshot(tmp_path)
    seen: list[dict] = []

    def watch(
        record: dict, images: int, seconds: float, of: int
    ) -> None:  # what `dvc exp show` and an editor read at this moment
        seen.append(json.loads((live / "metrics.json").read_text()))
        assert tsv(live / "plots/metrics/train/loss.tsv")["step"].tolist() == list(range(1, record["epoch"] + 1))
        assert snapshot(tmp_path) == previous  # no tracked output changes before the run ends
        assert images == 45 if fraction else images == 60
        assert 0 < seconds < 60

    result = train.run(train_params(validation_fraction=fraction), small_split, tmp_path / "model.npz", reports, watch)

    assert [summary["step"] for summary in seen] == [1, 2, 3, 4]
    assert [summary["train"]["loss"] for summary in seen] == [r["loss"] for r in result.history]
    assert all(summary["learning_rate"] == 0.1 for summary in seen)
    final = pd.read_csv(reports / "loss.csv")
    assert list(final.columns) == ["epoch", "loss", "val_loss", "val_accuracy"]
    assert final["epoch"].tolist() == [1, 2, 3, 4]
    assert final["loss"].to_numpy() == pytest.approx([r["loss"] for r in result.history], rel=1e-9)
    assert tsv(live / "plots/metrics/train/loss.tsv")["loss"].tolist() == [r["loss"] for r in result.history]
    if fraction:
        assert tsv(live / "plots/metrics/val/loss.tsv")["loss"].tolist() == [r["val_loss"] for r in result.history]
        accuracy = tsv(live / "plots/metrics/val/accuracy.tsv")["accuracy"]
        assert accuracy.tolist() == [r["val_accuracy"] for r in result.history]
        assert final["val_accuracy"].between(0, 1).all() and final["val_accuracy"].notna().all()
    else:
        assert final[["val_loss", "val_accuracy"]].isna().all().all()  # same columns, left empty
        assert not (live / "plots/metrics/val").exists()
    assert [p.name for p in tmp_path.rglob("*.tmp")] == []
    assert all(snapshot(tmp_path).values())


def test_live_files_and_outputs_are_the_same_bytes_on_every_run(small_split, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    runs = []
    for name in ("a", "b"):
        train.run(train_params(validation_fraction=0.25), small_split, tmp_path / name / "model.npz", tmp_path / name)
        files = sorted(p for p in (tmp_path / name).rglob("*") if p.is_file() and p.name != "timing.json")
        runs.append({p.relative_to(tmp_path / name).as_posix(): p.read_bytes() for p in files})
    assert "live/metrics.json" in runs[0] and "live/plots/metrics/val/accuracy.tsv" in runs[0]
    assert runs[0] == runs[1]


def test_a_failed_run_leaves_the_previous_outputs(small_split, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    reports = tmp_path / "reports"
    train.run(train_params(epochs=2), small_split, tmp_path / "model.npz", reports)
    previous = snapshot(tmp_path)

    def stop(record: dict, images: int, seconds: float, of: int) -> None:
        if record["epoch"] == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train.run(train_params(), small_split, tmp_path / "model.npz", reports, stop)
    assert snapshot(tmp_path) == previous
    assert json.loads((reports / "live" / "metrics.json").read_text())["step"] == 3  # the interrupted run's own


def test_val_accuracy_is_the_share_of_held_out_images_predicted_right(small_split, tmp_path, monkeypatch):
    """Recomputed independently from the saved model and the held-out tail of the training split."""
    import cnn

    monkeypatch.chdir(tmp_path)
    reports = tmp_path / "reports"
    train.run(train_params(validation_fraction=0.25, epochs=2), small_split, tmp_path / "m.npz", reports)
    net = cnn.load(tmp_path / "m.npz")
    data = np.load(small_split)
    held_images, held_labels = data["images"][45:], data["labels"][45:]  # the last quarter of 60
    predicted = np.asarray(net.meta["classes"])[net.predict(held_images).argmax(axis=1)]
    expected = np.mean(predicted == held_labels)
    assert pd.read_csv(reports / "loss.csv")["val_accuracy"].iloc[-1] == pytest.approx(expected)
    assert json.loads((reports / "live" / "metrics.json").read_text())["val"]["accuracy"] == pytest.approx(expected)


def test_floats_are_written_at_twelve_significant_digits(small_split, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = train.run(train_params(epochs=1), small_split, tmp_path / "m.npz", tmp_path / "reports")
    row = (tmp_path / "reports" / "loss.csv").read_text().splitlines()[1]
    assert row == f"1,{result.history[0]['loss']:.12g},,"


class Studio(BaseHTTPRequestHandler):
    """Stands in for DVC Studio's live-metrics endpoint: records each JSON body, answers 200."""

    received: ClassVar[list[dict]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.received.append({"path": self.path, "auth": self.headers["Authorization"], **json.loads(body)})
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args) -> None:
        pass


def test_studio_gets_a_live_update_per_epoch_when_a_token_is_set(small_split, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Studio.received = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), Studio)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv("DVC_STUDIO_TOKEN", "test-token")
    monkeypatch.setenv("DVC_STUDIO_URL", f"http://127.0.0.1:{server.server_address[1]}")
    monkeypatch.setenv("DVC_STUDIO_REPO_URL", "https://example.org/mnist-cnn-dvc.git")
    try:
        result = train.run(train_params(epochs=3), small_split, tmp_path / "m.npz", tmp_path / "reports")
    finally:
        server.shutdown()
    events = [body["type"] for body in Studio.received]
    assert events[0] == "start" and events[-1] == "done", events
    data = [body for body in Studio.received if body["type"] == "data"]
    assert sorted({body["step"] for body in data}) == [1, 2, 3]  # dvc-studio-client may split a step in two posts
    assert {body["auth"] for body in Studio.received} == {"token test-token"}
    assert {body["repo_url"] for body in Studio.received} == {"https://example.org/mnist-cnn-dvc.git"}
    for body in data:
        for metrics in body.get("metrics", {}).values():
            assert metrics["data"]["train"]["loss"] == result.history[body["step"] - 1]["loss"]
    assert any(body.get("metrics") for body in data if body["step"] == 3)
    points = [point for body in data for plot in body.get("plots", {}).values() for point in plot.get("data", [])]
    assert [point["loss"] for point in points if "loss" in point] == [r["loss"] for r in result.history]
