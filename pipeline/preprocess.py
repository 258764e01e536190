"""preprocess stage: data/raw/*.gz (IDX) -> data/processed/{train,test}.npz for the chosen digits."""

from pathlib import Path

import numpy as np

from pipeline import dataset, idx
from pipeline.errors import UserError
from pipeline.params import DataParams

SPLITS = {"train": "train", "test": "t10k"}


def select(
    images: np.ndarray, labels: np.ndarray, digits: list[int], limit: int | None, rng: np.random.Generator | None
) -> dataset.Split:
    """The first `limit` images of each digit (in file order; None: all), shuffled by `rng` (None: kept in
    that order), scaled to [0, 1].

    images (N, 28, 28) uint8, labels (N,) -> Split with images (M, 1, 28, 28) float32, like the notebook.
    """
    keep = np.concatenate([np.flatnonzero(labels == d)[:limit] for d in digits])
    if rng is not None:
        keep = rng.permutation(keep)
    scaled = images[keep].reshape(-1, 1, 28, 28).astype(np.float32) / np.float32(255)
    return dataset.Split(scaled, labels[keep].astype(np.int64), np.array(digits, dtype=np.int64))


def run(params: DataParams, raw_dir: Path, out_dir: Path, warn=print) -> dict[str, dataset.Split]:
    """Parse, validate and select both splits; write them only when both are good."""
    rng = np.random.default_rng(params.seed)
    splits, short = {}, []
    for name, prefix in SPLITS.items():
        images, labels = idx.read_split(raw_dir, prefix)
        counts = {d: int(np.count_nonzero(labels == d)) for d in params.digits}
        empty = [d for d, n in counts.items() if n == 0]
        if empty:
            raise UserError(f"{raw_dir}: the {name} split has no images of digit {empty[0]}; change data.digits")
        short += [f"{name} {d}: {n}" for d, n in counts.items() if n < params.limit_per_class]
        splits[name] = select(images, labels, params.digits, params.limit_per_class, rng)
    if short:
        limit = params.limit_per_class
        warn(f"note: fewer images than data.limit_per_class={limit}, using all there are ({', '.join(short)})")
    for name, split in splits.items():
        dataset.save(out_dir / f"{name}.npz", split)
    return splits
