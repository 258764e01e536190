"""Shared fixtures: the notebook's data set (digits 0 and 1, 100 per class) read from the shipped sample, and
split_file to save part of it as a processed split; train_params, params.yaml's train section with changes; PyTorch
for the tests that compare with it (skipped without it, failed instead under MNIST_CNN_REQUIRE_TORCH=1, as CI's
.ci/run sets for its Python 3.11 run).

pipeline is imported first, before numpy and cnn, so every test runs the numerics the pipeline runs
(pipeline.numerics pins the canonical kernels; tests/test_numerics.py checks that it did).
"""

import pipeline  # noqa: F401

# isort: split
import dataclasses
import os
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

import cnn
from pipeline import dataset, idx, params

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "data" / "sample"

NOTEBOOK_SPECS = cnn.NOTEBOOK_LAYERS
REQUIRE_TORCH = "MNIST_CNN_REQUIRE_TORCH"
TORCH_MISSING = "PyTorch is not installed (pip install torch==2.13.0, or pip install -e '.[bench]')"


def _digits01(prefix: str, per_class: int) -> tuple[np.ndarray, np.ndarray]:
    images, labels = idx.read_split(SAMPLE, prefix)
    keep = np.concatenate([np.flatnonzero(labels == d)[:per_class] for d in (0, 1)])
    return images[keep].reshape(-1, 1, 28, 28).astype(np.float32) / 255, labels[keep].astype(np.int64)


@pytest.fixture(scope="session")
def notebook_data():
    """(x_train, y_train, x_test, y_test): 100 + 100 images of 0 and 1 each, train shuffled once like the
    notebook's np.random.permutation."""
    x_train, y_train = _digits01("train", 100)
    x_test, y_test = _digits01("t10k", 100)
    order = np.random.default_rng(42).permutation(len(x_train))
    return x_train[order], y_train[order], x_test, y_test


@pytest.fixture
def split_file(notebook_data, tmp_path: Path):
    """make(n=None, name="train.npz", part="train") -> tmp_path / name, a processed split (pipeline.dataset) of the
    first n (None: all) of notebook_data's training images, or with part="test" its test images."""

    def make(n: int | None = None, name: str = "train.npz", part: str = "train") -> Path:
        x_train, y_train, x_test, y_test = notebook_data
        x, y = (x_train, y_train) if part == "train" else (x_test, y_test)
        path = tmp_path / name
        dataset.save(path, dataset.Split(x[:n], y[:n], np.array([0, 1])))
        return path

    return make


def train_params(**changes) -> params.TrainParams:
    """params.yaml's train section, 4 epochs, with `changes` (field=value)."""
    return dataclasses.replace(params.section(ROOT / "params.yaml", "train"), **{"epochs": 4, **changes})


def import_torch() -> ModuleType | None:
    """torch, or None where it is not installed; under MNIST_CNN_REQUIRE_TORCH=1 a missing torch fails the test."""
    try:
        import torch
    except ImportError:
        if os.environ.get(REQUIRE_TORCH) == "1":
            pytest.fail(f"{TORCH_MISSING} ({REQUIRE_TORCH}=1: this run must not skip the PyTorch tests)")
        return None
    return torch


@pytest.fixture(scope="session")
def torch() -> ModuleType:
    """The torch module; skips the test without it (fails it under MNIST_CNN_REQUIRE_TORCH=1)."""
    module = import_torch()
    if module is None:
        pytest.skip(TORCH_MISSING)
    return module
