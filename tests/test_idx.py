"""pipeline.idx: the shipped sample reads back as 4000/1000 images, and each kind of bad file is one
UserError naming the file, what is wrong and how to fix it."""

import gzip
from pathlib import Path

import numpy as np
import pytest

from pipeline import idx
from pipeline.errors import UserError

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "sample"
RNG = np.random.default_rng(3)
IMAGES = RNG.integers(0, 256, (12, 28, 28), dtype=np.uint8)
LABELS = (np.arange(12) % 10).astype(np.uint8)
HEADER = bytes([0, 0, 8, 3, 0, 0, 0, 12, 0, 0, 0, 28, 0, 0, 0, 28])  # (12, 28, 28) unsigned bytes


def gz(payload: bytes) -> bytes:
    return gzip.compress(payload, mtime=0)


GOOD = idx.idx_bytes(IMAGES)
GOOD_GZ = gz(GOOD)
CRC_BROKEN = GOOD_GZ[:-8] + bytes([GOOD_GZ[-8] ^ 0xFF]) + GOOD_GZ[-7:]

BAD_FILES = {
    # case: (file bytes, words the message must contain)
    "wrong magic": (gz(b"\x08\x00\x08\x03" + GOOD[4:]), "not an IDX file"),
    "float type byte": (gz(b"\x00\x00\x0d\x03" + GOOD[4:]), "type byte is 0x0d"),
    "int type byte": (gz(b"\x00\x00\x0c\x03" + GOOD[4:]), "type byte is 0x0c"),
    "zero dimensions": (gz(b"\x00\x00\x08\x00"), "0 dimensions"),
    "header cut short": (gz(HEADER[:10]), "header ends after 1 of 3 dimensions"),
    "payload short of dims": (gz(GOOD[:-784]), "need 9408 bytes of data, the file holds 8624"),
    "dims larger than payload": (gz(HEADER[:7] + b"\x0d" + GOOD[8:]), "need 10192 bytes"),
    "trailing bytes": (gz(GOOD + b"\x00\x01\x02"), "3 bytes after the 9408 bytes"),
    "absurd dims": (gz(b"\x00\x00\x08\x03" + b"\xff\xff\xff\xff" * 3), "more than the 128 MiB limit"),
    # 171197 x 28 x 28 bytes: the first image count past the 128 MiB cap
    "just past the cap": (gz(b"\x00\x00\x08\x03" + (171197).to_bytes(4, "big") + HEADER[8:]), "claim 134218448 bytes"),
    "truncated gzip": (GOOD_GZ[: len(GOOD_GZ) // 2], "broken gzip data"),
    "gzip crc broken": (CRC_BROKEN, "broken gzip data"),
    "gzip header only": (GOOD_GZ[:10], "broken gzip data"),
    "not gzip, html": (b"<html><body>404 Not Found</body></html>", "not an IDX file"),
    "empty file": (b"", "not an IDX file"),
    "raw idx truncated": (GOOD[:5000], "need 9408 bytes of data, the file holds 4984"),
}


def assert_one_line_naming(error: UserError, path: Path, words: str) -> None:
    message = str(error)
    assert "\n" not in message
    assert str(path) in message
    assert words in message
    assert "dvc repro download" in message


@pytest.mark.parametrize("case", BAD_FILES)
def test_bad_idx_file_is_a_user_error_naming_the_file(tmp_path, case):
    content, words = BAD_FILES[case]
    path = tmp_path / "train-images-idx3-ubyte.gz"
    path.write_bytes(content)
    with pytest.raises(UserError) as error:
        idx.read_idx(path)
    assert_one_line_naming(error.value, path, words)


def test_missing_file_is_a_user_error(tmp_path):
    with pytest.raises(UserError) as error:
        idx.read_idx(tmp_path / "t10k-labels-idx1-ubyte.gz")
    assert_one_line_naming(error.value, tmp_path / "t10k-labels-idx1-ubyte.gz", "file missing")


def write_split(folder: Path, split: str, images: np.ndarray, labels: np.ndarray) -> None:
    folder.mkdir(exist_ok=True)
    idx.write_idx(folder / f"{split}-images-idx3-ubyte.gz", images)
    idx.write_idx(folder / f"{split}-labels-idx1-ubyte.gz", labels)


BAD_SPLITS = {
    # case: (images, labels, file named in the message (None: the folder), words)
    "counts disagree": (IMAGES, LABELS[:9], None, "the train split has 12 images (train-images-idx3-ubyte.gz) but 9"),
    "label 11": (IMAGES, np.where(LABELS == 4, 11, LABELS).astype(np.uint8), "labels", "label 11 at index 4"),
    "images flat": (IMAGES.reshape(12, 784), LABELS, "images", "shape (N, 28, 28), got (12, 784)"),
    "images 32x32": (np.zeros((12, 32, 32), np.uint8), LABELS, "images", "got (12, 32, 32)"),
    "labels 2-D": (IMAGES, LABELS.reshape(12, 1), "labels", "shape (N,), got (12, 1)"),
}


@pytest.mark.parametrize("case", BAD_SPLITS)
def test_bad_split_is_a_user_error_naming_the_file(tmp_path, case):
    images, labels, named, words = BAD_SPLITS[case]
    write_split(tmp_path / "raw", "train", images, labels)
    with pytest.raises(UserError) as error:
        idx.read_split(tmp_path / "raw", "train")
    path = (
        tmp_path / "raw"
        if named is None
        else tmp_path / "raw" / f"train-{named}-idx{3 if named == 'images' else 1}-ubyte.gz"
    )
    assert_one_line_naming(error.value, path, words)


def test_read_split_rejects_an_unknown_split_name(tmp_path):
    with pytest.raises(ValueError, match="t10k"):
        idx.read_split(tmp_path, "test")


def test_round_trip_gzip_and_raw(tmp_path):
    for compress, name in ((True, "a.gz"), (False, "a.idx")):
        idx.write_idx(tmp_path / name, IMAGES, compress=compress)
        back = idx.read_idx(tmp_path / name)
        assert back.dtype == np.uint8 and back.flags.writeable
        np.testing.assert_array_equal(back, IMAGES)
    assert (tmp_path / "a.idx").read_bytes() == GOOD
    cube = RNG.integers(0, 256, (2, 3, 4, 5), dtype=np.uint8)
    idx.write_idx(tmp_path / "b.gz", cube)
    np.testing.assert_array_equal(idx.read_idx(tmp_path / "b.gz"), cube)


def test_write_idx_is_deterministic_and_uint8_only(tmp_path):
    idx.write_idx(tmp_path / "1.gz", LABELS)
    idx.write_idx(tmp_path / "2.gz", LABELS)
    data = (tmp_path / "1.gz").read_bytes()
    assert data == (tmp_path / "2.gz").read_bytes()
    assert data[4:8] == b"\0\0\0\0"  # gzip mtime
    with pytest.raises(ValueError, match="uint8"):
        idx.write_idx(tmp_path / "3.gz", LABELS.astype(np.int64))


def test_shipped_sample_has_400_and_100_images_per_digit(tmp_path):
    counts = {}
    for split in ("train", "t10k"):
        images, labels = idx.read_split(SAMPLE, split)
        assert images.dtype == labels.dtype == np.uint8
        assert images.shape == (len(labels), 28, 28)
        counts[split] = np.bincount(labels, minlength=10).tolist()
        assert 0 < images.mean() < 255
    assert counts == {"train": [400] * 10, "t10k": [100] * 10}
    # write_idx reproduces the shipped content: the same IDX bytes inside the gzip (the gzip bytes
    # themselves depend on the zlib build, so they are not compared)
    name = "t10k-labels-idx1-ubyte.gz"
    idx.write_idx(tmp_path / name, idx.read_idx(SAMPLE / name))
    assert gzip.decompress((tmp_path / name).read_bytes()) == gzip.decompress((SAMPLE / name).read_bytes())
