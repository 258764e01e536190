"""evaluate reports digits, not output indices: a model of digits [3, 7], where the two differ."""

import csv
import json
from pathlib import Path

import numpy as np

import cnn
from pipeline import dataset, evaluate, idx

SAMPLE = Path(__file__).resolve().parent.parent / "data" / "sample"


def split(prefix: str) -> dataset.Split:
    images, labels = idx.read_split(SAMPLE, prefix)
    keep = np.flatnonzero((labels == 3) | (labels == 7))
    images = images[keep].reshape(-1, 1, 28, 28).astype(np.float32) / 255
    return dataset.Split(images, labels[keep].astype(np.int64), np.array([3, 7]))


def test_evaluate_scores_a_3_versus_7_model_by_its_digits(tmp_path: Path) -> None:
    train, test = split("train"), split("t10k")
    assert len(test.labels) >= 20 and set(test.labels.tolist()) == {3, 7}
    net = cnn.Sequential([cnn.Flatten((1, 28, 28)), cnn.Dense(784, 2), cnn.Softmax()], init="xavier", seed=0)
    net.meta.update(classes=[3, 7], loss="categorical_cross_entropy")
    net.fit(train.images, cnn.one_hot(train.class_index, 2), cnn.CategoricalCrossEntropy(), cnn.Adam(0.01), 5, 16)
    cnn.save(net, tmp_path / "model.npz")
    dataset.save(tmp_path / "test.npz", test)

    summary = evaluate.run(tmp_path / "model.npz", tmp_path / "test.npz", tmp_path / "metrics.json", tmp_path / "r")

    expected = np.array([3, 7])[net.predict(test.images).argmax(axis=1)]
    with open(tmp_path / "r" / "predictions.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert [int(r["predicted"]) for r in rows] == expected.tolist()
    assert [int(r["actual"]) for r in rows] == test.labels.tolist()
    accuracy = float(np.mean(expected == test.labels))
    assert accuracy > 0.8
    assert summary["accuracy"] == json.loads((tmp_path / "metrics.json").read_text())["accuracy"]
    assert abs(summary["accuracy"] - accuracy) < 1e-6
