"""Live training metrics: reports/train/loss.csv holds every finished epoch while the train stage still runs."""

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipeline import dataset, live, params, train
from pipeline.dataset import Split

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def small_split(notebook_data, tmp_path: Path) -> Path:
    x_train, y_train, _, _ = notebook_data
    path = tmp_path / "train.npz"
    dataset.save(path, Split(x_train[:60], y_train[:60], np.array([0, 1])))
    return path


def train_params(**changes) -> params.TrainParams:
    config = params.section(ROOT / "params.yaml", "train")
    return dataclasses.replace(config, **{"epochs": 4, **changes})


@pytest.mark.parametrize("fraction", [0.0, 0.25])
def test_loss_csv_holds_each_epoch_as_soon_as_it_ends(small_split, tmp_path, fraction):
    reports = tmp_path / "reports"
    seen: list[pd.DataFrame] = []

    def watch(record: dict) -> None:  # what `dvc plots show` would read at this moment
        seen.append(pd.read_csv(reports / "loss.csv"))
        assert [p.name for p in reports.iterdir() if p.name.endswith(".tmp")] == []

    result = train.run(train_params(validation_fraction=fraction), small_split, tmp_path / "m.npz", reports, watch)

    assert [len(table) for table in seen] == [1, 2, 3, 4]
    final = pd.read_csv(reports / "loss.csv")
    assert list(final.columns) == ["epoch", "loss", "val_loss", "val_accuracy"]
    assert final["epoch"].tolist() == [1, 2, 3, 4]
    assert final["loss"].to_numpy() == pytest.approx([r["loss"] for r in result.history], rel=1e-9)
    for i, table in enumerate(seen):  # a reader mid-run sees exactly the epochs finished so far
        pd.testing.assert_frame_equal(table, final.iloc[: i + 1], check_dtype=False)
    if fraction:
        assert final["val_loss"].to_numpy() == pytest.approx([r["val_loss"] for r in result.history], rel=1e-9)
        assert final["val_accuracy"].between(0, 1).all() and final["val_accuracy"].notna().all()
    else:
        assert final[["val_loss", "val_accuracy"]].isna().all().all()  # same columns, left empty


def test_val_accuracy_is_the_share_of_held_out_images_predicted_right(small_split, tmp_path):
    """Recomputed independently from the saved model and the held-out tail of the training split."""
    import cnn

    reports = tmp_path / "reports"
    train.run(train_params(validation_fraction=0.25, epochs=2), small_split, tmp_path / "m.npz", reports)
    net = cnn.load(tmp_path / "m.npz")
    data = np.load(small_split)
    held_images, held_labels = data["images"][45:], data["labels"][45:]  # the last quarter of 60
    predicted = np.asarray(net.meta["classes"])[net.predict(held_images).argmax(axis=1)]
    expected = np.mean(predicted == held_labels)
    assert pd.read_csv(reports / "loss.csv")["val_accuracy"].iloc[-1] == pytest.approx(expected)


def test_a_new_log_empties_the_file_of_an_earlier_run(tmp_path):
    path = tmp_path / "loss.csv"
    path.write_text("epoch,loss\n1,0.5\n2,0.4\n3,0.3\n")
    log = live.EpochLog(path)
    assert pd.read_csv(path).empty
    log({"epoch": 1, "loss": 0.25})
    assert pd.read_csv(path)[["epoch", "loss"]].values.tolist() == [[1, 0.25]]


def test_floats_are_written_at_twelve_significant_digits(tmp_path):
    path = tmp_path / "loss.csv"
    log = live.EpochLog(path)
    log({"epoch": 1, "loss": 0.1234567890123456789, "val_loss": 1 / 3})
    assert path.read_text().splitlines()[1] == "1,0.123456789012,0.333333333333,"
