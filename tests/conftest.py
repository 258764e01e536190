"""Shared fixtures: the notebook's data set (digits 0 and 1, 100 per class) read from the shipped sample.

pipeline is imported first, before numpy and cnn, so every test runs the numerics the pipeline runs
(pipeline.numerics pins the canonical kernels; tests/test_numerics.py checks that it did).
"""

import pipeline  # noqa: F401

# isort: split
from pathlib import Path

import numpy as np
import pytest

import cnn
from pipeline import idx

SAMPLE = Path(__file__).resolve().parent.parent / "data" / "sample"

NOTEBOOK_SPECS = cnn.NOTEBOOK_LAYERS


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
