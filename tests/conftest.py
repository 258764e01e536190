"""Shared fixtures: the notebook's data set (digits 0 and 1, 100 per class) read from the shipped sample."""

import gzip
from pathlib import Path

import numpy as np
import pytest

SAMPLE = Path(__file__).resolve().parent.parent / "data" / "sample"

NOTEBOOK_SPECS = [
    {"type": "conv", "depth": 5, "kernel_size": 3},
    {"type": "sigmoid"},
    {"type": "flatten"},
    {"type": "dense", "units": 100},
    {"type": "sigmoid"},
    {"type": "dense"},
    {"type": "sigmoid"},
]


def read_idx(path: Path) -> np.ndarray:
    """IDX gzip: big-endian magic 0x0803 (images) / 0x0801 (labels), the dims, then uint8 data."""
    raw = gzip.decompress(path.read_bytes())
    magic = int.from_bytes(raw[:4], "big")
    assert magic in (0x0801, 0x0803), f"{path}: bad IDX magic {magic:#x}"
    ndim = magic & 0xFF
    dims = np.frombuffer(raw[4 : 4 + 4 * ndim], dtype=">u4").astype(int)
    return np.frombuffer(raw[4 + 4 * ndim :], dtype=np.uint8).reshape(dims)


def _digits01(prefix: str, per_class: int) -> tuple[np.ndarray, np.ndarray]:
    images = read_idx(SAMPLE / f"{prefix}-images-idx3-ubyte.gz")
    labels = read_idx(SAMPLE / f"{prefix}-labels-idx1-ubyte.gz")
    idx = np.concatenate([np.flatnonzero(labels == d)[:per_class] for d in (0, 1)])
    return images[idx].reshape(-1, 1, 28, 28).astype(np.float32) / 255, labels[idx].astype(np.int64)


@pytest.fixture(scope="session")
def notebook_data():
    """(x_train, y_train, x_test, y_test): 100 + 100 images of 0 and 1 each, train shuffled once like the
    notebook's np.random.permutation."""
    x_train, y_train = _digits01("train", 100)
    x_test, y_test = _digits01("t10k", 100)
    order = np.random.default_rng(42).permutation(len(x_train))
    return x_train[order], y_train[order], x_test, y_test
