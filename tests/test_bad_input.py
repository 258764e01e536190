"""Bad input, one row per case: exit code 2, one line on stderr naming the key or file, no traceback, and the
previous outputs left exactly as they were."""

import gzip
import hashlib
import io
import json
import math
import resource
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from tests.limits import run_measured

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


DENSE_BATCHNORM = [
    {"type": "flatten"},
    {"type": "dense", "units": 8},
    {"type": "batchnorm"},
    {"type": "relu"},
    {"type": "dense"},
    {"type": "sigmoid"},
]
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
        ["train.layers[1]", "swish", "sigmoid, tanh, relu, softmax"],
    ),
    "shapes do not fit": (
        "train",
        lambda w: with_params(w, "train", "layers", [{"type": "dense", "units": 10}, {"type": "dense"}]),
        ["train.layers[0]", "flatten", "got (1, 28, 28)"],
    ),
    "shapes do not fit, seen by check": (
        "check",
        lambda w: with_params(w, "train", "layers", [{"type": "dense", "units": 10}, {"type": "dense"}]),
        ["train.layers[0]", "flatten", "got (1, 28, 28)"],
    ),
    "unknown activation, seen by check": (
        "check",
        lambda w: with_params(w, "train", "layers", [{"type": "flatten"}, {"type": "swish"}, {"type": "dense"}]),
        ["train.layers[1]", "swish", "sigmoid, tanh, relu, softmax"],
    ),
    "dense batch norm on batches of one": (
        "train",  # params.yaml's batch_size is 1: batch statistics of one row are not defined
        lambda w: with_params(w, "train", "layers", DENSE_BATCHNORM),
        ["batch_size"],
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


# ------------------------------------------------------------------- hostile input (issue 15): bounded work

MAX_MIB = 400  # python + numpy + scipy + PIL take ~150 MiB; every refusal below must stay far from 1 GiB


def rewrite_model(work: Path, name: str, header=None, members: dict[str, bytes] | None = None) -> list[str]:
    """A copy of the workspace's model with its JSON header changed (`header(dict)` edits it in place) or
    some members' raw .npy bytes replaced."""
    members = dict(members or {})
    with zipfile.ZipFile(work / "models" / "model.npz") as zin:
        contents = {info.filename: zin.read(info) for info in zin.infolist()}
    if header is not None:
        with np.load(work / "models" / "model.npz") as npz:
            data = json.loads(npz["__model__"].tobytes())
        header(data)
        buf = io.BytesIO()
        np.lib.format.write_array(buf, np.frombuffer(json.dumps(data).encode(), dtype=np.uint8))
        members["__model__.npy"] = buf.getvalue()
    contents.update(members)
    path = work / name
    with zipfile.ZipFile(path, "w") as zout:
        for member, data in contents.items():
            zout.writestr(member, data)
    return ["--model", str(path)]


def huge_member(work: Path) -> list[str]:
    """0.kernels claims 2**27 float64 values (1 GiB) in its .npy header; the body holds a few bytes only."""
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "<f8", "fortran_order": False, "shape": (2**27,)})
    return rewrite_model(work, "huge.npz", members={"0.kernels.npy": header.getvalue() + b"\0" * 64})


def alias_bomb(work: Path) -> list[str]:
    lines = ["a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, 9)]
    text = (work / "params.yaml").read_text().replace("epochs: 2\n", "epochs: *a8\n")
    return ["--params", str(write(work, "bomb.yaml", "\n".join(lines) + "\n" + text))]


def not_utf8(work: Path) -> list[str]:
    path = work / "latin1.yaml"
    path.write_bytes((work / "params.yaml").read_bytes().replace(b"seed: 0", b"seed: 0 # r\xe9glage"))
    return ["--params", str(path)]


def huge_png(work: Path) -> list[str]:
    path = work / "huge.png"
    if not path.exists():
        Image.new("1", (9600, 9600), 1).save(path)  # 92 megapixels, a few kB on disk
    return [str(path)]


HOSTILE = {
    # case: (command, how to make the bad input, words the line must contain)
    "params not utf-8": ("train", not_utf8, ["latin1.yaml", "0xe9", "UTF-8"]),
    "alias bomb as train.epochs": ("train", alias_bomb, ["train.epochs = [[", "integer >= 1"]),
    "learning_rate 0": ("train", lambda w: with_params(w, "train", "learning_rate", 0), ["train.learning_rate = 0"]),
    "momentum 1": ("train", lambda w: with_params(w, "train", "momentum", 1), ["train.momentum = 1"]),
    "validation_fraction 1": ("train", lambda w: with_params(w, "train", "validation_fraction", 1), ["[0, 1)"]),
    "model meta without classes (evaluate)": (
        "evaluate",
        lambda w: rewrite_model(w, "nometa.npz", header=lambda h: h.update(meta={})),
        ["nometa.npz", "meta['classes']"],
    ),
    "model meta without classes (predict)": (
        "predict",
        lambda w: [*rewrite_model(w, "nometa.npz", header=lambda h: h.update(meta={})), str(w / "digit.png")],
        ["nometa.npz", "meta['classes']"],
    ),
    "model with 3 classes for 2 outputs (evaluate)": (
        "evaluate",
        lambda w: rewrite_model(w, "three.npz", header=lambda h: h["meta"].update(classes=[0, 1, 2])),
        ["three.npz", "3 classes but the network has 2 outputs"],
    ),
    "model with 3 classes for 2 outputs (predict)": (
        "predict",
        lambda w: [
            *rewrite_model(w, "three.npz", header=lambda h: h["meta"].update(classes=[0, 1, 2])),
            str(w / "digit.png"),
        ],
        ["three.npz", "3 classes but the network has 2 outputs"],
    ),
    "model member declaring 1 GiB": ("evaluate", huge_member, ["huge.npz", "more than 256 MiB", "0.kernels"]),
    "picture of 92 megapixels": ("predict", huge_png, ["huge.png", "9600x9600", "megapixel limit"]),
    "predict on a folder": ("predict", lambda w: [str(w / "models")], ["models", "a folder, not an image"]),
}


@pytest.fixture(scope="module")
def digit_png(workspace: Path) -> Path:
    with np.load(workspace / "data" / "processed" / "test.npz") as npz:
        image = npz["images"][0, 0]
    Image.fromarray((255 - image * 255).astype(np.uint8)).save(workspace / "digit.png")
    return workspace / "digit.png"


@pytest.mark.parametrize("case", list(HOSTILE))
def test_hostile_input_ends_in_one_line_with_bounded_memory_and_time(workspace: Path, digit_png: Path, case: str):
    command, make_bad, words = HOSTILE[case]
    args = make_bad(workspace)
    before = digest(workspace)
    result = run_measured("pipeline", [command, *args], workspace, timeout=60)
    assert result.returncode == 2, (result.returncode, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.stderr + result.stdout and "Warning" not in result.stderr
    for word in words:
        assert word in lines[0], (word, lines[0])
    assert len(lines[0]) < 400
    assert result.peak_mib is not None and result.peak_mib < MAX_MIB, result.peak_mib
    assert result.seconds < 30, result.seconds
    assert digest(workspace) == before


def test_saturated_training_says_so_in_one_line_and_still_finishes(workspace: Path) -> None:
    args = with_params(workspace, "train", "learning_rate", 100)
    out = ["--model", str(workspace / "lr100.npz"), "--reports", str(workspace / "lr100")]
    result = run_cli(workspace, "train", *args, *out)
    assert result.returncode == 0, result.stderr
    lines = [line for line in result.stderr.strip().splitlines() if not line.startswith("epoch ")]  # progress
    assert len(lines) == 1 and lines[0].startswith("warning: training saturated"), result.stderr
    assert "lower train.learning_rate (now 100)" in lines[0]


def test_slow_training_gets_no_saturation_warning(workspace: Path) -> None:
    """lr 1e-4: the loss starts ~5x above chance (the notebook's std-1 init) but falls: slow, not stuck."""
    args = with_params(workspace, "train", "learning_rate", 1e-4)
    out = ["--model", str(workspace / "slow.npz"), "--reports", str(workspace / "slow")]
    result = run_cli(workspace, "train", *args, *out)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 0 and [line.split("  ")[0] for line in lines] == ["epoch 1/2", "epoch 2/2"], lines
    losses = [float(line.split(",")[1]) for line in (workspace / "slow" / "loss.csv").read_text().split()[1:]]
    assert losses[-1] > 2 * math.log(2)  # far above chance: only the falling loss tells it from saturation


def test_disk_full_while_writing_the_model_keeps_the_old_one(workspace: Path) -> None:
    """A file-size limit (RLIMIT_FSIZE, what a full disk looks like to a writer) smaller than the model."""
    model = workspace / "models" / "model.npz"
    before = digest(workspace)
    limit = model.stat().st_size // 2

    def small_disk() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    result = run_measured(
        "pipeline", ["train", *with_params(workspace, "train", "seed", 5)], workspace, preexec_fn=small_disk
    )
    assert result.returncode == 1, result.stderr
    lines = [line for line in result.stderr.strip().splitlines() if not line.startswith("epoch ")]  # progress
    checkpoint = Path(".dvc/tmp/checkpoints/train.npz")
    assert lines[:-1] == [f"warning: no checkpoint in {checkpoint} (File too large); training goes on"], lines
    assert lines[-1].startswith(f"error: {Path('models/model.npz')}: could not be written (File too large)")
    assert "the previous file is unchanged" in lines[-1]
    assert digest(workspace) == before
    assert not list(model.parent.glob(".*.tmp"))
    assert not [p.name for p in (workspace / checkpoint).parent.iterdir() if p.name != "train.npz"]  # no scratch


def test_the_measured_peak_is_the_commands_own_not_that_of_the_process_that_spawned_it(tmp_path: Path) -> None:
    ballast = np.ones(600 * 2**20 // 8)  # 600 MiB resident in pytest: what os.wait4's ru_maxrss would carry over
    result = run_measured("pipeline", ["--help"], tmp_path)
    assert result.returncode == 0, result.stderr
    assert "download" in result.stdout
    assert result.peak_mib is not None and 10 < result.peak_mib < 300, result.peak_mib
    del ballast
