"""The processed splits: data/processed/{train,test}.npz, written by preprocess, read by train and evaluate.

Each file holds "images" float32 (N, 1, 28, 28) in [0, 1], "labels" int64 (N,) digit labels, and
"classes" int64 (K,) the digits the model tells apart, in output order.
"""

import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cnn import npz
from pipeline.errors import UserError

KEYS = ("images", "labels", "classes")
FIX = "re-run `dvc repro preprocess` (or `python -m pipeline preprocess`)"


@dataclass(frozen=True)
class Split:
    images: np.ndarray  # (N, 1, 28, 28) float32 in [0, 1]
    labels: np.ndarray  # (N,) int64 digits
    classes: np.ndarray  # (K,) int64 digits, the model's output order

    @property
    def class_index(self) -> np.ndarray:
        """(N,) int64: the position of each label in `classes`, i.e. the index of its output unit."""
        lookup = np.full(10, -1, dtype=np.int64)
        lookup[self.classes] = np.arange(len(self.classes))
        return lookup[self.labels]


def save(path: Path, split: Split) -> None:
    """Write a split atomically, with the same bytes on any Python (cnn.npz)."""
    npz.write(path, {"images": split.images, "labels": split.labels, "classes": split.classes})


def load(path: Path, classes: list[int] | None = None) -> Split:
    """Read and check a split; `classes`, when given, are the model's (labels must be among them)."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as npz:
            missing = [k for k in KEYS if k not in npz.files]
            if missing:
                raise UserError(f"{path}: missing array '{missing[0]}' (has {sorted(npz.files)}); {FIX}")
            images, labels, stored = (npz[k] for k in KEYS)
    except FileNotFoundError:
        raise UserError(f"{path}: not found; {FIX}") from None
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as exc:
        raise UserError(f"{path}: not a readable .npz file ({type(exc).__name__}); {FIX}") from None
    if images.ndim != 4 or images.shape[1:] != (1, 28, 28) or images.dtype != np.float32:
        raise UserError(
            f"{path}: images must be float32 of shape (N, 1, 28, 28), got {images.dtype} {images.shape}; {FIX}"
        )
    if labels.shape != (len(images),) or labels.dtype.kind not in "iu":
        raise UserError(f"{path}: labels must be {len(images)} integers, got {labels.dtype} {labels.shape}; {FIX}")
    if stored.ndim != 1 or stored.dtype.kind not in "iu" or len(stored) < 2:
        raise UserError(f"{path}: classes must be a list of at least two digits, got {stored.tolist()}; {FIX}")
    expected = np.asarray(stored if classes is None else classes, dtype=np.int64)
    outside = np.setdiff1d(labels, expected)
    if outside.size:
        raise UserError(
            f"{path}: label {int(outside[0])} is not one of the model's classes {expected.tolist()}; "
            "train the model on the same data.digits, or re-run the whole pipeline"
        )
    return Split(images, labels.astype(np.int64), expected)
