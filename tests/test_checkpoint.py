"""Checkpoint files: a round trip keeps every bit; other params, data or code, and corrupt files, are ignored
with one line."""

import dataclasses
import os
import signal
import subprocess
import sys
import textwrap
import time
import types
from pathlib import Path

import numpy as np
import pytest
import yaml

import cnn
from pipeline import checkpoint, params, train
from tests.checkpoints import RESUME_TRAIN, checkpoint_header
from tests.conftest import train_params

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def config() -> params.TrainParams:
    return train_params()


@pytest.fixture
def data(tmp_path: Path) -> Path:
    path = tmp_path / "train.npz"
    path.write_bytes(b"the training split's bytes")
    return path


def a_state(batch: int = 0) -> dict:
    """After epoch 2, or `batch` batches of 4 into epoch 3."""
    shuffle, augment = np.random.default_rng(0), np.random.default_rng([0, 2])
    shuffle.permutation(10)  # advanced: not the state a fresh generator has
    return {
        "epoch": 2,
        "step": 400,
        "optimizer": {
            "learning_rate": 0.001,
            "t": 400,
            "state/0/weights/m": np.random.default_rng(1).normal(size=(5, 1, 3, 3)),
            "state/0/weights/v": np.random.default_rng(2).random((5, 1, 3, 3)),
        },
        "shuffle_rng": shuffle.bit_generator.state,
        "augment_rng": augment.bit_generator.state,
        "layer_rngs": {3: np.random.default_rng([0, 1, 3]).bit_generator.state},
        "history": ({"epoch": 1, "loss": 0.5}, {"epoch": 2, "loss": 1 / 3}),
        "batch": batch,
        "outputs": np.random.default_rng(3).random((4 * batch, 2)) / 3 if batch else None,
    }


@pytest.mark.parametrize("batch", [0, 3], ids=["after an epoch", "within an epoch"])
def test_a_checkpoint_gives_back_every_bit(config, data, tmp_path, batch) -> None:
    net = train.build_network(config, (1, 28, 28), [0, 1])
    path, mark = tmp_path / "ck" / "train.npz", checkpoint.fingerprint(config, data)
    state = a_state(batch)
    checkpoint.save(path, mark, net, state)
    lines: list[str] = []
    loaded = checkpoint.load(path, mark, lines.append)
    assert lines == [] and loaded is not None and (loaded.epoch, loaded.batch, loaded.images) == (2, batch, 4 * batch)
    if batch:
        assert loaded.state["outputs"].dtype == np.float64
        np.testing.assert_array_equal(loaded.state["outputs"], state["outputs"])
    else:
        assert loaded.state["outputs"] is None
    for mine, theirs in zip(net.layers, loaded.net.layers, strict=True):
        assert mine.config() == theirs.config()
        for name, value in cnn.serialize.arrays(mine).items():
            assert (
                np.array_equal(value, cnn.serialize.arrays(theirs)[name]) and value.dtype == theirs.params[name].dtype
            )
    got = loaded.state
    for key in ("learning_rate", "t"):
        assert got["optimizer"][key] == state["optimizer"][key]
    for key in ("state/0/weights/m", "state/0/weights/v"):
        assert np.array_equal(got["optimizer"][key], state["optimizer"][key])
    assert got["shuffle_rng"] == state["shuffle_rng"] and got["augment_rng"] == state["augment_rng"]
    assert got["layer_rngs"] == state["layer_rngs"] and got["history"] == state["history"]
    resumed = np.random.default_rng()
    resumed.bit_generator.state = got["shuffle_rng"]
    original = np.random.default_rng(0)
    original.permutation(10)
    assert np.array_equal(resumed.permutation(100), original.permutation(100))
    assert [p.name for p in path.parent.iterdir()] == ["train.npz"]  # no scratch left


def test_the_fingerprint_follows_params_data_and_code(config, data, tmp_path, monkeypatch) -> None:
    code = tmp_path / "code"
    (code / "sub").mkdir(parents=True)
    (code / "sub" / "a.py").write_text("x = 1\n")
    (code / "sub" / "unused.py").write_text("y = 1\n")
    module = types.ModuleType("code_sub_a")
    module.__file__ = str(code / "sub" / "a.py")
    monkeypatch.setitem(sys.modules, module.__name__, module)  # loaded, as the run's own modules are
    base = checkpoint.fingerprint(config, data, (code,))
    (code / "sub" / "unused.py").write_text("y = 2\n")
    assert checkpoint.fingerprint(config, data, (code,)) == base  # a module the run never loaded
    assert checkpoint.fingerprint(config, data, (code,)) == base
    assert checkpoint.fingerprint(dataclasses.replace(config, epochs=5), data, (code,)) != base
    assert checkpoint.fingerprint(dataclasses.replace(config, seed=1), data, (code,)) != base
    (code / "sub" / "a.py").write_text("x = 2\n")
    assert checkpoint.fingerprint(config, data, (code,)) != base
    (code / "sub" / "a.py").write_text("x = 1\n")
    data.write_bytes(b"other training data")
    assert checkpoint.fingerprint(config, data, (code,)) != base


def test_the_fingerprint_covers_the_modules_training_loads_and_no_other(split_file, tmp_path) -> None:
    """In a fresh interpreter that runs what `python -m pipeline train` runs, up to the fingerprint: every module of
    cnn/ (the train stage's dep; cnn loads a module on its first use, so one that training first used after the
    fingerprint, as the first checkpoint uses the model file code, would escape it) and the train stage's code, not
    the sweep or compare modules (editing them keeps an hours-old checkpoint)."""
    script = textwrap.dedent(
        """
        import sys
        from pathlib import Path

        import pipeline.cli
        from pipeline import checkpoint, params, train

        def fingerprint(*args, **kwargs):
            print(*[name for name, _ in checkpoint.code_files()])
            raise SystemExit(0)

        checkpoint.fingerprint = fingerprint
        out = Path(sys.argv[2])
        train.run(params.section(Path("params.yaml"), "train"), Path(sys.argv[1]), out / "model.npz", out,
                  checkpoint_path=out / "train.npz")
        """
    )
    args = [sys.executable, "-c", script, str(split_file(20)), str(tmp_path / "out")]
    names = set(subprocess.run(args, cwd=ROOT, capture_output=True, text=True, check=True).stdout.split())
    assert {f"cnn/{path.name}" for path in (ROOT / "cnn").glob("*.py")} <= names, sorted(names)
    assert {"pipeline/train.py", "pipeline/checkpoint.py", "pipeline/cli.py"} <= names
    assert not {"pipeline/sweep.py", "pipeline/sweep_task.py", "pipeline/compare.py"} & names, sorted(names)


def test_a_checkpoint_of_other_params_is_ignored_with_one_line(config, data, tmp_path) -> None:
    path = tmp_path / "train.npz"
    net = train.build_network(config, (1, 28, 28), [0, 1])
    checkpoint.save(path, checkpoint.fingerprint(dataclasses.replace(config, learning_rate=0.2), data), net, a_state())
    lines: list[str] = []
    assert checkpoint.load(path, checkpoint.fingerprint(config, data), lines.append) is None
    assert lines == [f"train: ignoring checkpoint {path}: written for other params, data or code; starting at epoch 1"]


@pytest.mark.parametrize(
    "damage",
    [
        lambda b: b[: len(b) // 2],  # truncated by a full disk
        lambda b: b"not a checkpoint at all",
        lambda b: b"",
        lambda b: b[:100] + bytes(200) + b[300:],  # bytes zeroed inside the zip
    ],
)
def test_a_corrupt_checkpoint_is_ignored_with_one_line(config, data, tmp_path, damage) -> None:
    path = tmp_path / "train.npz"
    mark = checkpoint.fingerprint(config, data)
    checkpoint.save(path, mark, train.build_network(config, (1, 28, 28), [0, 1]), a_state())
    path.write_bytes(damage(path.read_bytes()))
    lines: list[str] = []
    assert checkpoint.load(path, mark, lines.append) is None
    assert len(lines) == 1 and lines[0].startswith(f"train: ignoring checkpoint {path}: not a readable checkpoint (")
    assert "\n" not in lines[0] and lines[0].endswith("; starting at epoch 1")


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"batch": 3, "outputs": None}, "batch 3 without outputs"),
        ({"outputs": np.zeros((4, 2))}, "batch 0 with outputs"),
        ({"batch": -1}, "batch -1 without outputs"),
    ],
)
def test_a_checkpoint_with_an_inconsistent_batch_is_ignored_with_one_line(config, data, tmp_path, change, reason):
    path = tmp_path / "train.npz"
    mark = checkpoint.fingerprint(config, data)
    checkpoint.save(path, mark, train.build_network(config, (1, 28, 28), [0, 1]), {**a_state(), **change})
    lines: list[str] = []
    assert checkpoint.load(path, mark, lines.append) is None
    assert lines == [f"train: ignoring checkpoint {path}: not a readable checkpoint ({reason}); starting at epoch 1"]


def test_a_checkpoint_of_format_1_is_ignored_with_one_line(config, data, tmp_path, monkeypatch) -> None:
    path = tmp_path / "train.npz"
    mark = checkpoint.fingerprint(config, data)
    monkeypatch.setattr(checkpoint, "FORMAT", 1)
    checkpoint.save(path, mark, train.build_network(config, (1, 28, 28), [0, 1]), a_state())
    monkeypatch.undo()
    lines: list[str] = []
    assert checkpoint.load(path, mark, lines.append) is None
    assert lines == [
        f"train: ignoring checkpoint {path}: not a readable checkpoint (format 1, not 2); starting at epoch 1"
    ]


def test_a_foreign_npz_is_ignored_with_one_line(config, data, tmp_path) -> None:
    path = tmp_path / "train.npz"
    np.savez(path, weights=np.zeros(3))
    lines: list[str] = []
    assert checkpoint.load(path, checkpoint.fingerprint(config, data), lines.append) is None
    reason = "'header is not a file in the archive'"
    assert lines == [f"train: ignoring checkpoint {path}: not a readable checkpoint ({reason}); starting at epoch 1"]


def test_no_checkpoint_says_nothing(config, data, tmp_path) -> None:
    lines: list[str] = []
    assert checkpoint.load(tmp_path / "none.npz", checkpoint.fingerprint(config, data), lines.append) is None
    assert lines == []


LAYERS = [
    {"type": "conv", "depth": 3, "kernel_size": 3},
    {"type": "relu"},
    {"type": "flatten"},
    {"type": "dropout", "rate": 0.3},
    {"type": "dense"},
    {"type": "sigmoid"},
]


@pytest.fixture
def split(split_file) -> Path:
    return split_file(48, "split.npz")


def adam_with_dropout(config: params.TrainParams) -> params.TrainParams:
    return dataclasses.replace(
        config,
        optimizer="adam",
        learning_rate=0.01,
        batch_size=4,
        validation_fraction=0.25,
        layers=LAYERS,
        schedule={"type": "onecycle", "max_lr": 0.01},
        augment={"shift": 2, "rotate": 10},
    )


def outputs(folder: Path) -> dict[str, bytes]:
    files = [p for p in sorted(folder.rglob("*")) if p.is_file() and p.name != "timing.json" and p.suffix != ".tmp"]
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in files}


def test_a_run_stopped_after_epoch_2_of_4_resumes_to_the_same_bits(config, split, tmp_path, monkeypatch) -> None:
    """Dropout (a layer generator), Adam (moments, step count), a one-cycle schedule (its step), augmentation
    (its generator), shuffling, a validation split: the run stopped in epoch 3 and resumed ends with the model,
    tables and live files (learning rate per epoch too) of the uninterrupted run."""
    monkeypatch.chdir(tmp_path)
    config = adam_with_dropout(config)
    train.run(config, split, tmp_path / "whole" / "model.npz", tmp_path / "whole")
    ck = tmp_path / "ck" / "train.npz"

    def stop_in_epoch_3(record: dict, images: int, seconds: float, of: int) -> None:
        if record["epoch"] == 3:  # before epoch 3's checkpoint: the file holds epoch 2
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train.run(config, split, tmp_path / "cut" / "model.npz", tmp_path / "cut", stop_in_epoch_3, checkpoint_path=ck)
    assert not (tmp_path / "cut" / "model.npz").exists()
    lines: list[str] = []
    seen: list[int] = []
    result = train.run(
        config,
        split,
        tmp_path / "cut" / "model.npz",
        tmp_path / "cut",
        lambda record, images, seconds, of: seen.append(record["epoch"]),
        lines.append,
        checkpoint_path=ck,
    )
    assert lines == [f"train: resuming from {ck} after epoch 2 of 4"]
    assert seen == [3, 4] and [r["epoch"] for r in result.history] == [1, 2, 3, 4]
    assert outputs(tmp_path / "cut") == outputs(tmp_path / "whole")
    assert not ck.exists()  # a finished run leaves no checkpoint


@pytest.mark.parametrize("kind", ["other params", "corrupt"])
def test_a_run_ignores_a_stale_or_corrupt_checkpoint_and_starts_at_epoch_1(config, split, tmp_path, monkeypatch, kind):
    monkeypatch.chdir(tmp_path)
    config = adam_with_dropout(config)
    train.run(config, split, tmp_path / "whole" / "model.npz", tmp_path / "whole")
    ck = tmp_path / "ck" / "train.npz"
    other = dataclasses.replace(config, learning_rate=0.02)

    def stop(record: dict, images: int, seconds: float, of: int) -> None:
        if record["epoch"] == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train.run(other, split, tmp_path / "o" / "model.npz", tmp_path / "o", stop, checkpoint_path=ck)
    if kind == "corrupt":
        ck.write_bytes(ck.read_bytes()[:-200])
    lines: list[str] = []
    seen: list[int] = []
    train.run(
        config,
        split,
        tmp_path / "new" / "model.npz",
        tmp_path / "new",
        lambda record, images, seconds, of: seen.append(record["epoch"]),
        lines.append,
        checkpoint_path=ck,
    )
    assert len(lines) == 1 and lines[0].startswith(f"train: ignoring checkpoint {ck}: ")
    assert ("other params" in lines[0]) == (kind == "other params")
    assert seen == [1, 2, 3, 4]
    assert outputs(tmp_path / "new") == outputs(tmp_path / "whole")


def test_a_run_stopped_within_epoch_3_resumes_there_to_the_same_bits(config, split, tmp_path, monkeypatch) -> None:
    """A checkpoint after every batch (checkpoint_seconds 0): the run stopped at image 20 of epoch 3 holds the
    state after image 16; the next run says so in one line, trains the rest of epoch 3 and ends with the bits
    of the uninterrupted run. The live line gets every batch (PROGRESS_SECONDS 0)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(train, "PROGRESS_SECONDS", 0.0)
    config = adam_with_dropout(config)
    train.run(config, split, tmp_path / "whole" / "model.npz", tmp_path / "whole")
    ck = tmp_path / "ck" / "train.npz"
    seen: list[tuple[int, int, int, int]] = []

    def stop_at_image_20_of_epoch_3(epoch: int, done: int, of: int, images: int, seconds: float) -> None:
        seen.append((epoch, done, of, images))
        if (epoch, done) == (3, 20):
            raise KeyboardInterrupt

    cut = tmp_path / "cut"
    with pytest.raises(KeyboardInterrupt):
        train.run(
            config, split, cut / "model.npz", cut, checkpoint_path=ck, checkpoint_seconds=0.0,
            on_batch=stop_at_image_20_of_epoch_3,
        )  # fmt: skip
    assert seen[:3] == [(1, 4, 36, 4), (1, 8, 36, 8), (1, 12, 36, 12)] and seen[-1] == (3, 20, 36, 20)
    assert not (cut / "model.npz").exists()
    lines: list[str] = []
    epochs: list[tuple[int, int]] = []
    sizes: list[int] = []
    seen.clear()
    result = train.run(
        config,
        split,
        cut / "model.npz",
        cut,
        lambda record, images, seconds, of: (epochs.append((record["epoch"], images)), sizes.append(of)),
        lines.append,
        checkpoint_path=ck,
        checkpoint_seconds=0.0,
        on_batch=lambda epoch, done, of, images, seconds: seen.append((epoch, done, of, images)),
    )
    assert lines == [f"train: resuming from {ck} in epoch 3 of 4, at image 16 of 36"]
    assert seen[0] == (3, 20, 36, 4)  # images: this run's part of the epoch
    assert epochs == [(3, 20), (4, 36)] and [r["epoch"] for r in result.history] == [1, 2, 3, 4]
    assert sizes == [36, 36]  # the epoch's size, also for the resumed part of one
    assert outputs(cut) == outputs(tmp_path / "whole")
    assert not ck.exists()


def test_without_a_due_checkpoint_a_run_saves_only_after_epochs(config, split, tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    config = adam_with_dropout(config)
    ck = tmp_path / "ck" / "train.npz"
    saved: list[tuple[int, int]] = []
    real_save = checkpoint.save
    monkeypatch.setattr(checkpoint, "save", lambda *a: (saved.append((a[3]["epoch"], a[3]["batch"])), real_save(*a))[1])
    train.run(config, split, tmp_path / "m.npz", tmp_path / "r", checkpoint_path=ck)
    assert saved == [(1, 0), (2, 0), (3, 0), (4, 0)]
    saved.clear()
    train.run(config, split, tmp_path / "m.npz", tmp_path / "r", checkpoint_path=ck, checkpoint_seconds=0.0)
    every_batch = [(epoch, batch) for epoch in range(4) for batch in range(1, 10)]  # the 9th: the epoch's end
    assert saved == sorted([*every_batch, (1, 0), (2, 0), (3, 0), (4, 0)])


def test_a_train_killed_within_an_epoch_resumes_there_to_the_same_bytes(split_file, tmp_path) -> None:
    """`python -m pipeline train` with a checkpoint after every batch (MNIST_CNN_CHECKPOINT_SECONDS=0), 180
    images in batches of 2, SIGKILLed inside epoch 2: the next run resumes at the image the checkpoint holds,
    says so in one line, and writes the bytes of an uninterrupted run."""
    split_file()
    settings = yaml.safe_load((ROOT / "params.yaml").read_text())
    settings["train"].update(RESUME_TRAIN, layers=LAYERS)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(settings, sort_keys=False))
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MNIST_CNN_CHECKPOINT_SECONDS": "0"}

    def command(name: str) -> list[str]:
        return [sys.executable, "-m", "pipeline", "train", "--data", "train.npz", "--model", f"{name}/model.npz",
                "--reports", name, "--checkpoint", "ck/train.npz"]  # fmt: skip

    whole = subprocess.run(command("whole"), cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert whole.returncode == 0 and "resuming" not in whole.stderr, whole.stderr
    killed = subprocess.Popen(command("cut"), cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and killed.poll() is None:
        header = checkpoint_header(tmp_path / "ck" / "train.npz")
        if header.get("epoch") == 1 and 2 <= header.get("batch", 0) <= 60:
            break
        time.sleep(0.005)
    assert killed.poll() is None, "train ended before it was killed"
    killed.send_signal(signal.SIGKILL)
    killed.communicate(timeout=60)
    header = checkpoint_header(tmp_path / "ck" / "train.npz")
    assert header["epoch"] == 1 and header["batch"] > 0, header  # inside epoch 2
    assert not (tmp_path / "cut" / "model.npz").exists()
    resumed = subprocess.run(command("cut"), cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr
    lines = [line for line in resumed.stderr.splitlines() if "resuming" in line]
    assert lines == [f"train: resuming from ck/train.npz in epoch 2 of 4, at image {2 * header['batch']} of 180"]
    assert "epoch 1/4 " not in resumed.stderr and "epoch 2/4 " in resumed.stderr
    assert outputs(tmp_path / "cut") == outputs(tmp_path / "whole")
    assert not (tmp_path / "ck" / "train.npz").exists()
