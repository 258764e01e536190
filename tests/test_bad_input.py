"""Bad input, one row per case: exit code 2, one line on stderr naming the key or file, no traceback, and the
previous outputs left exactly as they were."""

import gzip
import hashlib
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
OUTPUTS = ("data/processed/train.npz", "data/processed/test.npz", "models/model.npz", "metrics.json")


def run_cli(workdir: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "pipeline", *args], cwd=workdir, capture_output=True, text=True, timeout=120
    )


def digest(workdir: Path) -> dict[str, str]:
    return {name: hashlib.sha256((workdir / name).read_bytes()).hexdigest() for name in OUTPUTS}


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A project folder with every stage's outputs from a quick run (2 epochs)."""
    work = tmp_path_factory.mktemp("work")
    shutil.copytree(ROOT / "data" / "sample", work / "data" / "sample")
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["train"]["epochs"] = 2
    (work / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    shutil.copytree(ROOT / "data" / "sample", work / "data" / "raw", ignore=shutil.ignore_patterns("*.py", "*.md"))
    for stage in ("preprocess", "train", "evaluate"):
        result = run_cli(work, stage)
        assert result.returncode == 0, result.stderr
    return work


def with_params(work: Path, section: str, key: str, value, remove: bool = False) -> list[str]:
    params = yaml.safe_load((work / "params.yaml").read_text())
    if remove:
        del params[section][key]
    else:
        params[section][key] = value
    path = work / "bad-params.yaml"
    path.write_text(yaml.safe_dump(params, sort_keys=False))
    return ["--params", str(path)]


def corrupt_raw(work: Path, name: str, payload: bytes, compress: bool = True) -> list[str]:
    bad = work / "bad-raw"
    shutil.rmtree(bad, ignore_errors=True)
    shutil.copytree(work / "data" / "raw", bad)
    (bad / name).write_bytes(gzip.compress(payload, mtime=0) if compress else payload)
    return ["--raw", str(bad)]


def raw_payload(work: Path, name: str) -> bytes:
    return gzip.decompress((work / "data" / "raw" / name).read_bytes())


def fewer_labels(work: Path, count: int) -> tuple[str, bytes]:
    """A train labels file that is valid on its own but holds fewer labels than there are images."""
    name = "train-labels-idx1-ubyte.gz"
    payload = raw_payload(work, name)
    return name, payload[:4] + count.to_bytes(4, "big") + payload[8 : 8 + count]


def bad_npz(work: Path, **arrays) -> list[str]:
    with np.load(work / "data" / "processed" / "test.npz") as npz:
        contents = {key: npz[key] for key in npz.files}
    contents.update(arrays)
    contents = {key: value for key, value in contents.items() if value is not None}
    path = work / "bad.npz"
    np.savez(path, **contents)
    return ["--data", str(path)]


def bad_model(work: Path, how: str) -> list[str]:
    data = (work / "models" / "model.npz").read_bytes()
    path = work / "bad-model.npz"
    if how == "garbage":
        path.write_bytes(b"this is not a model at all" * 10)
    elif how == "truncated":
        path.write_bytes(data[: len(data) // 2])
    else:
        with np.load(work / "models" / "model.npz", allow_pickle=False) as npz:
            arrays = {key: npz[key] for key in npz.files}
        weights = next(key for key in arrays if arrays[key].ndim == 2)
        arrays[weights] = arrays[weights][:, :-1]
        np.savez(path, **arrays)
    return ["--model", str(path)]


CASES = {
    # case id: (stage, how to make the bad input, words the message must contain)
    "params file missing": ("train", lambda w: ["--params", str(w / "nope.yaml")], ["nope.yaml"]),
    "params not yaml": ("train", lambda w: ["--params", str(write(w, "x.yaml", "train: [oops"))], ["x.yaml", "YAML"]),
    "key missing": ("train", lambda w: with_params(w, "train", "epochs", None, remove=True), ["train.epochs"]),
    "unknown key": ("train", lambda w: with_params(w, "train", "epoch", 3), ["train.epoch"]),
    "wrong type": ("train", lambda w: with_params(w, "train", "learning_rate", "fast"), ["train.learning_rate"]),
    "limit_per_class < 1": ("preprocess", lambda w: with_params(w, "data", "limit_per_class", 0), ["limit_per_class"]),
    "epochs < 1": ("train", lambda w: with_params(w, "train", "epochs", 0), ["train.epochs", ">= 1"]),
    "batch_size < 1": ("train", lambda w: with_params(w, "train", "batch_size", 0), ["train.batch_size"]),
    "learning rate <= 0": ("train", lambda w: with_params(w, "train", "learning_rate", -0.1), ["learning_rate"]),
    "digit outside 0-9": ("preprocess", lambda w: with_params(w, "data", "digits", [0, 12]), ["data.digits"]),
    "digit repeated": ("preprocess", lambda w: with_params(w, "data", "digits", [1, 1]), ["data.digits"]),
    "one digit": ("preprocess", lambda w: with_params(w, "data", "digits", [3]), ["data.digits"]),
    "unknown source": ("download", lambda w: with_params(w, "data", "source", "kaggle"), ["data.source", "sample"]),
    "unknown optimizer": ("train", lambda w: with_params(w, "train", "optimizer", "rmsprop"), ["train.optimizer"]),
    "unknown init": ("train", lambda w: with_params(w, "train", "init", "zeros"), ["train.init", "normal"]),
    "unknown loss": ("train", lambda w: with_params(w, "train", "loss", "hinge"), ["train.loss"]),
    "unknown activation": (
        "train",
        lambda w: with_params(w, "train", "layers", [{"type": "flatten"}, {"type": "swish"}, {"type": "dense"}]),
        ["train.layers[1]", "swish"],
    ),
    "shapes do not fit": (
        "train",
        lambda w: with_params(w, "train", "layers", [{"type": "dense", "units": 10}, {"type": "dense"}]),
        ["train.layers[0]", "flatten"],
    ),
    "idx wrong magic": (
        "preprocess",
        lambda w: corrupt_raw(
            w, "t10k-labels-idx1-ubyte.gz", b"\x00\x00\x0c\x01" + raw_payload(w, "t10k-labels-idx1-ubyte.gz")[4:]
        ),
        ["t10k-labels-idx1-ubyte.gz"],
    ),
    "idx counts disagree": ("preprocess", lambda w: corrupt_raw(w, *fewer_labels(w, 3995)), ["train", "3995"]),
    "idx truncated gzip": (
        "preprocess",
        lambda w: corrupt_raw(
            w, "train-images-idx3-ubyte.gz", (w / "data/raw/train-images-idx3-ubyte.gz").read_bytes()[:5000], False
        ),
        ["train-images-idx3-ubyte.gz"],
    ),
    "idx not gzip": (
        "preprocess",
        lambda w: corrupt_raw(w, "t10k-images-idx3-ubyte.gz", b"<html>not found</html>", compress=False),
        ["t10k-images-idx3-ubyte.gz"],
    ),
    "npz missing key": ("evaluate", lambda w: bad_npz(w, labels=None), ["bad.npz", "labels"]),
    "npz wrong shape": (
        "evaluate",
        lambda w: bad_npz(w, images=np.zeros((200, 28, 28), np.float32)),
        ["bad.npz", "(N, 1, 28, 28)"],
    ),
    "npz wrong dtype": ("evaluate", lambda w: bad_npz(w, images=np.zeros((200, 1, 28, 28), np.uint8)), ["bad.npz"]),
    "labels outside classes": (
        "evaluate",
        lambda w: bad_npz(w, labels=np.full(200, 7), classes=np.array([0, 7])),
        ["bad.npz", "7"],
    ),
    "model not a model": ("evaluate", lambda w: bad_model(w, "garbage"), ["bad-model.npz"]),
    "model truncated": ("evaluate", lambda w: bad_model(w, "truncated"), ["bad-model.npz"]),
    "model weights do not fit": ("evaluate", lambda w: bad_model(w, "shape"), ["bad-model.npz"]),
}


def write(work: Path, name: str, text: str) -> Path:
    (work / name).write_text(text)
    return work / name


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_fails_cleanly(workspace: Path, case: str) -> None:
    stage, make_bad, words = CASES[case]
    args = make_bad(workspace)
    before = digest(workspace)
    result = run_cli(workspace, stage, *args)
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    assert "Traceback" not in result.stderr + result.stdout
    for word in words:
        assert word in lines[0], (word, lines[0])
    assert digest(workspace) == before


def test_debug_shows_the_traceback(workspace: Path) -> None:
    result = run_cli(workspace, "--debug", "train", *with_params(workspace, "train", "epochs", 0))
    assert result.returncode != 0
    assert "Traceback" in result.stderr


def test_limit_larger_than_split_uses_what_there_is(workspace: Path) -> None:
    args = with_params(workspace, "data", "limit_per_class", 450)
    result = run_cli(workspace, "preprocess", *args, "--out", str(workspace / "big"))
    assert result.returncode == 0, result.stderr
    assert (
        result.stderr.count("fewer images than data.limit_per_class") == 1
    )  # said once: the test split has 100 per digit
    with np.load(workspace / "big" / "train.npz") as train, np.load(workspace / "big" / "test.npz") as test:
        assert len(train["labels"]) == 800 and len(test["labels"]) == 200
