"""MNIST's IDX files: read (gzip or raw) with every header field checked, and write (deterministic gzip).

IDX layout: two zero bytes, a type byte (0x08 = unsigned byte, the only type MNIST uses), the number of
dimensions, then each dimension as a big-endian uint32, then the values in row-major (C) order.
"""

import gzip
import io
import os
import zlib
from pathlib import Path

import numpy as np

from pipeline.errors import UserError

GZIP_MAGIC = b"\x1f\x8b"
UBYTE = 0x08
MAX_PAYLOAD = 128 * 2**20  # MNIST's largest file holds 47 MB; a header claiming more is corrupt, not data to allocate
FIX = "re-run `dvc repro download` (or `python -m pipeline download`) and check data.sha256 in params.yaml"
SPLITS = ("train", "t10k")


def _fail(path: Path, what: str) -> UserError:
    return UserError(f"{path}: {what}; {FIX}")


def _read_exact(stream: io.BufferedIOBase, out: memoryview) -> int:
    """Fill `out` from `stream`; return how many bytes there were (fewer only at end of data)."""
    done = 0
    while done < len(out):
        chunk = stream.read(min(len(out) - done, 1 << 20))
        if not chunk:
            break
        out[done : done + len(chunk)] = chunk
        done += len(chunk)
    return done


def _parse(stream: io.BufferedIOBase, path: Path) -> np.ndarray:
    magic = stream.read(4)
    if len(magic) < 4 or magic[:2] != b"\x00\x00":
        raise _fail(path, f"not an IDX file (starts with {magic[:4]!r}, expected b'\\x00\\x00\\x08' then ndim)")
    if magic[2] != UBYTE:
        raise _fail(path, f"IDX type byte is 0x{magic[2]:02x}, only 0x08 (unsigned byte) is supported")
    ndim = magic[3]
    if ndim == 0:
        raise _fail(path, "IDX header declares 0 dimensions")
    header = stream.read(4 * ndim)
    if len(header) < 4 * ndim:
        raise _fail(path, f"IDX header ends after {len(header) // 4} of {ndim} dimensions")
    dims = tuple(int(d) for d in np.frombuffer(header, dtype=">u4"))
    size = int(np.prod(dims, dtype=object))
    if size > MAX_PAYLOAD:
        raise _fail(path, f"IDX dimensions {dims} claim {size} bytes, more than the {MAX_PAYLOAD >> 20} MiB limit")
    values = np.empty(size, dtype=np.uint8)
    got = _read_exact(stream, memoryview(values))
    if got < size:
        raise _fail(path, f"IDX dimensions {dims} need {size} bytes of data, the file holds {got}")
    extra = len(stream.read(1 << 20))
    if extra:
        raise _fail(path, f"{extra}{'+' if extra == 1 << 20 else ''} bytes after the {size} bytes that {dims} hold")
    return values.reshape(dims)


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read one IDX file of unsigned bytes, gzip-compressed or raw -> uint8 array of the declared dims.

    Raises UserError naming the file for a missing file, a broken or truncated gzip stream, a wrong magic
    or type byte, and a payload that does not match the dimensions (short or with trailing bytes).
    """
    path = Path(path)
    try:
        with open(path, "rb") as raw:
            compressed = raw.read(2) == GZIP_MAGIC
            raw.seek(0)
            if not compressed:
                return _parse(raw, path)
            with gzip.GzipFile(fileobj=raw, mode="rb") as stream:
                return _parse(stream, path)
    except FileNotFoundError:
        raise UserError(f"{path}: file missing; {FIX}") from None
    except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
        raise _fail(path, f"broken gzip data ({exc})") from None


def read_split(folder: str | os.PathLike, split: str) -> tuple[np.ndarray, np.ndarray]:
    """Read `<split>-images-idx3-ubyte.gz` and `<split>-labels-idx1-ubyte.gz` from `folder`.

    split: "train" or "t10k". Returns images uint8 (N, 28, 28) and labels uint8 (N,) with values 0..9.
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    folder = Path(folder)
    images_path = folder / f"{split}-images-idx3-ubyte.gz"
    labels_path = folder / f"{split}-labels-idx1-ubyte.gz"
    images, labels = read_idx(images_path), read_idx(labels_path)
    if images.ndim != 3 or images.shape[1:] != (28, 28):
        raise _fail(images_path, f"images must have shape (N, 28, 28), got {images.shape}")
    if labels.ndim != 1:
        raise _fail(labels_path, f"labels must have shape (N,), got {labels.shape}")
    if len(images) != len(labels):
        raise UserError(
            f"{folder}: the {split} split has {len(images)} images ({images_path.name}) but {len(labels)} labels "
            f"({labels_path.name}); {FIX}"
        )
    if labels.size and labels.max() > 9:
        bad = np.flatnonzero(labels > 9)
        raise _fail(
            labels_path, f"label {labels[bad[0]]} at index {bad[0]} is not a digit 0-9 ({len(bad)} such labels)"
        )
    return images, labels


def idx_bytes(array: np.ndarray) -> bytes:
    """Serialize a uint8 array as raw (uncompressed) IDX bytes."""
    array = np.asarray(array)
    if array.dtype != np.uint8 or array.ndim == 0:
        raise ValueError(f"IDX needs a uint8 array with at least one dimension, got {array.dtype} {array.shape}")
    header = bytes([0, 0, UBYTE, array.ndim]) + np.array(array.shape, dtype=">u4").tobytes()
    return header + np.ascontiguousarray(array).tobytes()


def write_idx(path: str | os.PathLike, array: np.ndarray, compress: bool = True) -> None:
    """Write `array` (uint8, any dims) as an IDX file: gzip with mtime 0 (same array -> same bytes) or raw."""
    payload = idx_bytes(array)
    with open(path, "wb") as raw:
        if not compress:
            raw.write(payload)
            return
        with gzip.GzipFile(fileobj=raw, mode="wb", mtime=0, filename="") as stream:
            stream.write(payload)
