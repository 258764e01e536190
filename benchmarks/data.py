"""The benchmark's data: the shipped MNIST sample (data/sample/*.gz, IDX), digits 0 and 1, read by pipeline.idx."""

from pathlib import Path

import numpy as np

from pipeline import idx, preprocess

SAMPLE_DIR = Path(__file__).resolve().parent.parent / "data" / "sample"


def read_split(split: str, directory: Path = SAMPLE_DIR) -> tuple[np.ndarray, np.ndarray]:
    """ "train" or "test" -> (images (N, 28, 28) uint8, labels (N,) uint8) in file order (pipeline.idx)."""
    return idx.read_split(directory, preprocess.SPLITS[split])


def select(
    images: np.ndarray, labels: np.ndarray, digits=(0, 1), limit: int | None = None, rng=None
) -> tuple[np.ndarray, np.ndarray]:
    """pipeline.preprocess.select -> x (M, 1, 28, 28) float32 in [0, 1], y (M,) int64 class index."""
    split = preprocess.select(images, labels, list(digits), limit, rng)
    return split.images, split.class_index


def training_images(digits=(0, 1)) -> tuple[np.ndarray, np.ndarray]:
    """Every train image of `digits` in the sample (800 for 0/1): x (N, 1, 28, 28) float32, y (N,) class index."""
    return select(*read_split("train"), digits)


def default_sample(seed: int = 42, limit: int = 100, digits=(0, 1)):
    """params.yaml's default data: the first `limit` per digit of each split, shuffled by one rng(seed)
    (train first, then test), as pipeline.preprocess does. -> (x_train, y_train), (x_test, y_test)."""
    rng = np.random.default_rng(seed)
    train = select(*read_split("train"), digits, limit, rng)
    test = select(*read_split("test"), digits, limit, rng)
    return train, test


def tile(x: np.ndarray, n: int) -> np.ndarray:
    """The first n rows of x repeated as often as needed (a contiguous copy)."""
    reps = -(-n // len(x))
    return np.ascontiguousarray(np.concatenate([x] * reps)[:n])
