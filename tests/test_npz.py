""".npz files (cnn.npz, cnn.zipstore): np.savez's bytes, under every Python.

np.savez's zip headers depend on the Python that runs it (Python 3.11.2, Debian 12's python3, writes other ones
than 3.11.7, 3.12 and 3.13: cnn/zipstore.py says which), so dvc.lock's hashes did. cnn.npz must write what np.savez
writes on 3.11.7+ (the bytes dvc.lock records), and the same bytes under Debian's python3, which packs the zip
here without numpy.
"""

import functools
import hashlib
import io
import os
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path
from typing import BinaryIO

import numpy as np
import pytest

import cnn
from cnn import npz, zipstore
from pipeline import dataset

ROOT = Path(__file__).resolve().parents[1]
DEBIAN_PYTHON = Path("/usr/bin/python3")  # Debian 12's Python 3.11.2, whose zipfile predates CPython gh-103861
REQUIRE_ALL_PYTHONS = "MNIST_CNN_REQUIRE_ALL_PYTHONS"  # CI's: a missing interpreter fails instead of skipping
SAVEZ_IS_REFERENCE = sys.version_info >= (3, 11, 7)
NOT_REFERENCE = (
    f"np.savez on Python {sys.version.split()[0]} is not the reference: zipfile before 3.11.7 may write other zip "
    "headers (CPython gh-103861); test_golden_digest and the Debian python3 test hold cnn.npz to the reference here"
)


def member_sets() -> dict[str, dict[str, np.ndarray]]:
    rng = np.random.default_rng(0)
    grid = rng.standard_normal((6, 9))
    return {
        "empty array": {"a": np.zeros((0, 3), np.float32)},
        "uint8 header": {"__model__": np.frombuffer(b'{"format":"x","layers":[]}', np.uint8), "0.weights": grid},
        "dtypes": {
            "f4": grid.astype(np.float32),
            "f8": grid,
            "i8": np.arange(7),
            "i4": np.arange(-3, 3, dtype=np.int32),
            "u1": np.arange(256, dtype=np.uint8),
            "bool": grid > 0,
            "big-endian": grid.astype(">f8"),
        },
        "0-d": {"scalar": np.array(2.5), "int": np.array(7, np.int64), "f4": np.float32(1.5)},
        # over 16 MiB: numpy writes it in several chunks, each through the member's CRC
        "large": {"images": rng.random((7000, 1, 28, 28), dtype=np.float32), "labels": rng.integers(0, 10, 7000)},
        "non-contiguous": {
            "strided": grid[::2, 1::3],
            "fortran": np.asfortranarray(grid),
            "transposed": grid.T,
            "reversed": grid[::-1],
        },
        "checkpoint names": {
            "header": np.frombuffer(b'{"epoch":1}', np.uint8),
            "optimizer/m": grid,
            "optimizer/v": grid**2,
        },
    }


SETS = member_sets()


def first_difference(a: bytes, b: bytes) -> int:
    return next((i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b)))


def savez_bytes(tmp_path: Path, members: dict[str, np.ndarray]) -> bytes:
    np.savez(tmp_path / "savez.npz", allow_pickle=False, **members)
    return (tmp_path / "savez.npz").read_bytes()


def npz_bytes(tmp_path: Path, members: dict[str, np.ndarray]) -> bytes:
    npz.write(tmp_path / "ours.npz", members)
    return (tmp_path / "ours.npz").read_bytes()


@pytest.mark.skipif(not SAVEZ_IS_REFERENCE, reason=NOT_REFERENCE)
@pytest.mark.parametrize("case", list(SETS))
def test_same_bytes_as_np_savez(tmp_path: Path, case: str) -> None:
    ours, reference = npz_bytes(tmp_path, SETS[case]), savez_bytes(tmp_path, SETS[case])
    assert ours == reference, f"first difference at byte {first_difference(ours, reference)}"


@pytest.mark.parametrize("case", list(SETS))
def test_np_load_and_zipfile_read_it_back(tmp_path: Path, case: str) -> None:
    members = SETS[case]
    path = tmp_path / "ours.npz"
    npz.write(path, members)
    with np.load(path, allow_pickle=False) as loaded:
        assert loaded.files == list(members)
        for name, array in members.items():
            assert loaded[name].dtype == np.asarray(array).dtype and loaded[name].shape == np.shape(array)
            assert np.array_equal(loaded[name], array)
    with zipfile.ZipFile(path) as archive:
        assert archive.testzip() is None
        infos = archive.infolist()
    assert [info.filename for info in infos] == [f"{name}.npy" for name in members]
    assert {(i.date_time, i.compress_type, i.create_system, i.extract_version) for i in infos} == {
        ((1980, 1, 1, 0, 0, 0), zipfile.ZIP_STORED, 3, 45)
    }


def test_golden_digest() -> None:
    """The bytes of one member set, as np.savez wrote them on Python 3.11.7 (numpy 2.4.6): cnn.npz gives them on
    any Python, also one whose np.savez writes others."""
    members = SETS["uint8 header"] | SETS["dtypes"] | SETS["0-d"]
    handle = io.BytesIO()
    npz.write(handle, members)
    assert hashlib.sha256(handle.getvalue()).hexdigest() == GOLDEN


GOLDEN = "66bb6b13fca56d985d36a40d19807e05b52932cc2f773c21f5a53da11f9b5418"


def test_a_handle_gets_the_bytes_a_path_gets(tmp_path: Path) -> None:
    handle = io.BytesIO()
    npz.write(handle, SETS["dtypes"])
    assert handle.getvalue() == npz_bytes(tmp_path, SETS["dtypes"])


def pack(packer: str, handle: BinaryIO, members: list[tuple[str, bytes]]) -> None:
    """Write `members` (name, bytes) into `handle` with np.savez's zipfile calls or with cnn.zipstore."""
    if packer == "zipfile":
        archive = zipfile.ZipFile(handle, "w", allowZip64=True)
        open_member = functools.partial(archive.open, mode="w", force_zip64=True)
    else:
        archive = zipstore.StoredZip(handle)
        open_member = archive.member
    with archive:
        for name, data in members:
            with open_member(name) as out:
                out.write(data)


def packed(packer: str, members: list[tuple[str, bytes]]) -> bytes:
    handle = io.BytesIO()
    pack(packer, handle, members)
    return handle.getvalue()


@pytest.mark.skipif(not SAVEZ_IS_REFERENCE, reason=NOT_REFERENCE)
def test_zip_layer_matches_zipfile_for_any_bytes_and_names() -> None:
    members = [("empty", b""), ("dir/a.bin", b"\x00\xff" * 1000), ("naïve-ünïcode.npy", b"x"), ("last", b"PK\x03\x04")]
    assert packed("zipstore", members) == packed("zipfile", members)


@pytest.mark.skipif(not SAVEZ_IS_REFERENCE, reason=NOT_REFERENCE)
def test_zip64_records_past_2_gib_match_zipfile(tmp_path: Path) -> None:
    """An archive starting past 2 GiB - 1 (in a sparse file): zip64 offsets in the central directory, the zip64
    end record and locator, as zipfile writes them."""
    start = 3 << 30
    members = [("a.npy", b"abc"), ("b.npy", b"")]
    paths = {"zipfile": tmp_path / "zipfile.bin", "zipstore": tmp_path / "zipstore.bin"}
    for which, path in paths.items():
        with open(path, "wb") as handle:
            handle.seek(start)
            pack(which, handle, members)
    tails = {}
    for which, path in paths.items():
        with open(path, "rb") as handle:
            handle.seek(start)
            tails[which] = handle.read()
    assert b"PK\x06\x06" in tails["zipstore"]
    assert tails["zipstore"] == tails["zipfile"]
    with zipfile.ZipFile(paths["zipstore"]) as archive:
        assert [archive.read(name) for name, _ in members] == [b"abc", b""]


@pytest.mark.skipif(not SAVEZ_IS_REFERENCE, reason=NOT_REFERENCE)
def test_more_members_than_the_end_record_counts_match_zipfile() -> None:
    members = [(f"{i}.npy", i.to_bytes(3, "little")) for i in range(zipstore.COUNT_LIMIT + 2)]
    assert packed("zipstore", members) == packed("zipfile", members)


def debian_python() -> Path:
    """/usr/bin/python3 (Debian 12's 3.11.2 here); where it is missing or older than the project supports, a skip
    saying why (a failure under CI's MNIST_CNN_REQUIRE_ALL_PYTHONS)."""
    why = f"{DEBIAN_PYTHON} is missing: the system Python (Debian 12's 3.11.2 writes other np.savez bytes) is not here"
    if DEBIAN_PYTHON.is_file() and os.access(DEBIAN_PYTHON, os.X_OK):
        check = [str(DEBIAN_PYTHON), "-I", "-c", "import sys; print(*sys.version_info[:3])"]
        version = tuple(map(int, subprocess.run(check, capture_output=True, text=True, check=True).stdout.split()))
        if version >= (3, 11):
            return DEBIAN_PYTHON
        why = f"{DEBIAN_PYTHON} is Python {'.'.join(map(str, version))}, older than the project's 3.11"
    if os.environ.get(REQUIRE_ALL_PYTHONS):
        pytest.fail(f"{why} ({REQUIRE_ALL_PYTHONS} is set: this run must not skip it)")
    pytest.skip(why)


# Runs under another Python, without numpy: packs its arguments' (member name, .npy file) pairs with cnn.zipstore,
# then reads the archive back with that Python's zipfile.
PACK = textwrap.dedent(
    """
    import sys, zipfile
    root, out, *pairs = sys.argv[1:]
    sys.path.insert(0, root)
    from cnn import zipstore
    with open(out, "wb") as handle, zipstore.StoredZip(handle) as archive:
        for name, npy in zip(pairs[::2], pairs[1::2]):
            with archive.member(name + ".npy") as member, open(npy, "rb") as source:
                member.write(source.read())
    with zipfile.ZipFile(out) as archive:
        print(sys.version.split()[0], archive.testzip(), "numpy" in sys.modules)
    """
)


def npy_files(folder: Path, members: dict[str, np.ndarray]) -> list[str]:
    """[name, path of its .npy bytes, ...]: what PACK takes."""
    folder.mkdir()
    pairs = []
    for i, (name, array) in enumerate(members.items()):
        path = folder / f"{i}.npy"
        with open(path, "wb") as handle:
            np.lib.format.write_array(handle, np.asanyarray(array), allow_pickle=False)
        pairs += [name, str(path)]
    return pairs


@pytest.mark.parametrize("case", list(SETS))
def test_debian_python_packs_the_same_bytes(tmp_path: Path, case: str) -> None:
    """The property that matters: Python 3.11.2 (no numpy) packs numpy's .npy bytes into the very bytes this
    interpreter's cnn.npz writes (= np.savez on 3.11.7+), and its zipfile reads them."""
    python = debian_python()
    pairs = npy_files(tmp_path / "npy", SETS[case])
    out = tmp_path / "debian.npz"
    result = subprocess.run(
        [str(python), "-I", "-B", "-c", PACK, str(ROOT), str(out), *pairs], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    version, bad_member, numpy_loaded = result.stdout.split()
    assert (bad_member, numpy_loaded) == ("None", "False"), result.stdout
    assert out.read_bytes() == npz_bytes(tmp_path, SETS[case]), f"Python {version} packed other bytes"


# Runs under Debian's python3: re-packs an .npz the way np.savez does there (its own zipfile), the layout of
# files written before cnn.npz by a user on that Python.
REPACK_WITH_ZIPFILE = textwrap.dedent(
    """
    import sys, zipfile
    source, out = sys.argv[1:]
    with zipfile.ZipFile(source) as zin, zipfile.ZipFile(out, "w", allowZip64=True) as zout:
        for info in zin.infolist():
            with zout.open(info.filename, "w", force_zip64=True) as member:
                member.write(zin.read(info))
    """
)


def test_files_np_savez_wrote_under_debian_python_still_load(tmp_path: Path, split_file) -> None:
    python = debian_python()
    net = cnn.Sequential(cnn.build(cnn.NOTEBOOK_LAYERS, input_shape=(1, 28, 28)), init="normal", seed=0)
    cnn.save(net, tmp_path / "model.npz")
    for name, source in (("model", tmp_path / "model.npz"), ("split", split_file(10))):
        result = subprocess.run(
            [str(python), "-I", "-B", "-c", REPACK_WITH_ZIPFILE, str(source), str(tmp_path / f"old-{name}.npz")],
            capture_output=True,
            text=True,
        )
        assert result.returncode == 0, result.stderr
    old = cnn.load(tmp_path / "old-model.npz")
    x = np.random.default_rng(1).random((3, 1, 28, 28))
    assert np.array_equal(old.predict(x), net.predict(x))
    split, fresh = dataset.load(tmp_path / "old-split.npz"), dataset.load(split_file(10))
    assert np.array_equal(split.images, fresh.images) and np.array_equal(split.labels, fresh.labels)


def test_bad_members_raise_and_keep_the_old_file(tmp_path: Path) -> None:
    target = tmp_path / "out.npz"
    target.write_bytes(b"old")
    with pytest.raises(ValueError, match="allow_pickle"):
        npz.write(target, {"a": np.zeros(2), "b": np.array([object()])})
    assert target.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.npz"]
    with pytest.raises(ValueError, match="NUL"):
        npz.write(io.BytesIO(), {"a\0b": np.zeros(2)})


def test_member_names_are_unique_and_the_file_seekable() -> None:
    with pytest.raises(ValueError, match="already in the archive"), zipstore.StoredZip(io.BytesIO()) as archive:
        for _ in range(2):
            with archive.member("a.npy") as out:
                out.write(b"x")

    class Pipe(io.RawIOBase):
        def writable(self) -> bool:
            return True

    with pytest.raises(ValueError, match="seekable"):
        npz.write(Pipe(), {"a": np.zeros(2)})
