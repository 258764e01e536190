"""Model files: round trip, deterministic bytes, atomic write, and a clear ModelFileError per bad file."""

import hashlib
import io
import json
import zipfile

import numpy as np
import pytest

import cnn

SPECS = [
    {"type": "conv", "depth": 2, "kernel_size": 3, "bias": "tied"},
    {"type": "relu"},
    {"type": "maxpool", "size": 2},
    {"type": "flatten"},
    {"type": "dense", "units": 4},
    {"type": "sigmoid"},
    {"type": "dense"},
    {"type": "sigmoid"},
]


def small_net(dtype: str = "float64", seed: int = 0) -> cnn.Sequential:
    net = cnn.Sequential(cnn.build(SPECS, input_shape=(1, 8, 8)), init="he", seed=seed, dtype=dtype)
    net.meta = {"classes": [3, 7]}
    return net


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_round_trip_predicts_identically(tmp_path, dtype: str) -> None:
    net = small_net(dtype)
    path = tmp_path / "model.npz"
    cnn.save(net, path)
    loaded = cnn.load(path)
    x = np.random.default_rng(0).random((5, 1, 8, 8))
    assert loaded.dtype == net.dtype and loaded.meta == {"classes": [3, 7]}
    assert [layer.config() for layer in loaded.layers] == [layer.config() for layer in net.layers]
    assert np.array_equal(loaded.predict(x), net.predict(x))
    assert not loaded.layers[0].needs_input_gradient


def test_same_weights_same_bytes_and_no_temp_files(tmp_path) -> None:
    a, b = tmp_path / "a.npz", tmp_path / "b.npz"
    cnn.save(small_net(), a)
    cnn.save(small_net(), b)
    assert hashlib.sha256(a.read_bytes()).digest() == hashlib.sha256(b.read_bytes()).digest()
    cnn.save(small_net(seed=1), b)  # overwrite in place
    assert a.read_bytes() != b.read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.npz", "b.npz"]


def rewrite(src, dst, drop=(), replace=None) -> None:
    """Copy an .npz member by member, dropping or replacing some (name -> array)."""
    replace = replace or {}
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for name in zin.namelist():
            key = name.removesuffix(".npy")
            if key in drop:
                continue
            if key in replace:
                buf = io.BytesIO()
                np.lib.format.write_array(buf, replace[key])
                zout.writestr(name, buf.getvalue())
            else:
                zout.writestr(name, zin.read(name))


def header_with(path, **changes) -> np.ndarray:
    with np.load(path) as npz:
        header = json.loads(npz["__model__"].tobytes())
    header.update(changes)
    return np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)


def make_bad(kind: str, good, bad) -> None:
    if kind == "missing":
        return
    if kind == "text":
        bad.write_text("epochs: 20\n")
    elif kind == "npy":
        with bad.open("wb") as f:
            np.save(f, np.zeros(3))
    elif kind == "truncated":
        bad.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    elif kind == "no_architecture":
        rewrite(good, bad, drop={"__model__"})
    elif kind == "bad_json":
        rewrite(good, bad, replace={"__model__": np.frombuffer(b"{not json", dtype=np.uint8)})
    elif kind == "unknown_layer":
        configs = [layer.config() for layer in small_net().layers[:-1]] + [{"type": "Swish"}]
        rewrite(good, bad, replace={"__model__": header_with(good, layers=configs)})
    elif kind == "wrong_shape":
        rewrite(good, bad, replace={"4.weights": np.zeros((4, 3))})
    elif kind == "missing_weights":
        rewrite(good, bad, drop={"6.biases"})
    elif kind == "other_format":
        rewrite(good, bad, replace={"__model__": header_with(good, format="keras/2")})


BAD_FILES = [
    ("missing", "no such model file"),
    ("text", "not a model file or truncated"),
    ("npy", r"not a model file \(a single .npy array"),
    ("truncated", "not a model file or truncated"),
    ("no_architecture", "without the '__model__' architecture entry"),
    ("bad_json", "unreadable architecture JSON"),
    ("unknown_layer", r"layers\[7\]: unknown layer type 'Swish'"),
    ("wrong_shape", r"weights 4.weights have shape \(4, 3\).*needs \(4, 18\)"),
    ("missing_weights", "weights 6.biases are missing"),
    ("other_format", "unknown model format 'keras/2'"),
]


@pytest.mark.parametrize(("kind", "message"), BAD_FILES, ids=[k for k, _ in BAD_FILES])
def test_bad_model_files_raise_model_file_error(tmp_path, kind: str, message: str) -> None:
    good, bad = tmp_path / "good.npz", tmp_path / "bad.npz"
    cnn.save(small_net(), good)
    make_bad(kind, good, bad)
    with pytest.raises(cnn.ModelFileError, match=message) as info:
        cnn.load(bad)
    text = str(info.value)
    assert str(bad) in text and "\n" not in text and "cnn.save" in text
