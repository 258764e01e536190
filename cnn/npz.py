"""The one writer of the project's .npz files (processed splits, model files, checkpoints).

An .npz is a zip archive of .npy files, one per array ("<name>.npy", in the order given, uncompressed). The .npy
bytes come from numpy (np.lib.format.write_array, without pickles); the zip around them from cnn.zipstore, so a
file's bytes depend on its arrays and the pinned numpy alone, not on the Python that runs: they are exactly what
`np.savez(file, allow_pickle=False, **members)` writes on Python 3.11.7, 3.12 and 3.13 (whose bytes dvc.lock
records), also under Python 3.11.2, whose zipfile writes other zip headers (cnn/zipstore.py says which).
np.load and any zip reader read them, and read files written by np.savez on any Python.
"""

import os
from collections.abc import Mapping
from typing import BinaryIO

import numpy as np

from .atomic import atomic_open
from .zipstore import StoredZip


def write(target: str | os.PathLike | BinaryIO, members: Mapping[str, np.ndarray]) -> None:
    """Write `members` ({name: array}, any shape and numeric dtype) as an .npz file.

    `target` is a path, written atomically (cnn.atomic: the old file stays whole if writing fails, and a full
    disk raises an OSError naming the path), or a seekable binary file open for writing. The path is used as
    given (np.savez would append ".npz").
    """
    if isinstance(target, str | os.PathLike):
        with atomic_open(target, "wb") as handle:
            _pack(handle, members)
    else:
        _pack(target, members)


def _pack(handle: BinaryIO, members: Mapping[str, np.ndarray]) -> None:
    with StoredZip(handle) as archive:
        for name, value in members.items():
            with archive.member(f"{name}.npy") as out:
                np.lib.format.write_array(out, np.asanyarray(value), allow_pickle=False)
