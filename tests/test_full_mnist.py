"""python -m benchmarks --full-mnist DIR: the PyTorch side trains as cnn's fit does (same batches, augmentation,
schedule, optimizer, network and initial values: the same parameters after two epochs in float64), the summary's
arithmetic, the flag's argument errors, and the whole flag end to end on a tiny fake MNIST the test writes."""

import hashlib
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import cnn
from benchmarks import full_mnist, report
from pipeline import idx
from tests.conftest import import_torch

REPO = Path(__file__).resolve().parent.parent

SPECS = [
    {"type": "conv", "depth": 3, "kernel_size": 3, "padding": 1, "stride": 2, "bias": "tied"},
    {"type": "batchnorm"},
    {"type": "relu"},
    {"type": "maxpool", "size": 2},
    {"type": "conv", "depth": 4, "kernel_size": 3, "padding": "same", "bias": "untied"},
    {"type": "tanh"},
    {"type": "avgpool", "size": 2},
    {"type": "flatten"},
    {"type": "dense", "units": 8},
    {"type": "batchnorm"},
    {"type": "sigmoid"},
    {"type": "dense"},
    {"type": "softmax"},
]
GLOBAL_SPECS = [
    {"type": "conv", "depth": 3, "kernel_size": 5, "bias": "tied"},
    {"type": "relu"},
    {"type": "global_avgpool"},
    {"type": "dense"},
    {"type": "softmax"},
]


def parameters(net: cnn.Sequential) -> list[np.ndarray]:
    return [p for layer in net.layers for p in cnn.serialize.arrays(layer).values()]


def torch_parameters(model) -> list[np.ndarray]:
    import torch

    tensors = [t for m in model.modules() for t in (*m.parameters(recurse=False), *m.buffers(recurse=False))]
    return [t.detach().numpy() for t in tensors if t.dtype != torch.int64]  # num_batches_tracked left out


@pytest.mark.parametrize(
    ("specs", "optimizer", "torch_args", "schedule", "augment"),
    [
        (SPECS, cnn.SGD(0.2, momentum=0.9, nesterov=True, weight_decay=0.01), ("sgd", 0.2, 0.9, True, 0.01), "step", 1),
        (SPECS, cnn.Adam(0.01, weight_decay=0.05), ("adam", 0.01, 0.0, False, 0.05), "onecycle", 2),
        (GLOBAL_SPECS, cnn.Adadelta(1.0, weight_decay=0.02), ("adadelta", 1.0, 0.0, False, 0.02), "cosine", 0),
    ],
)
def test_torch_trains_as_cnn_fit(specs, optimizer, torch_args, schedule, augment, torch):
    """Two epochs of 37 images in batches of 8 (the last one 5): every parameter and running statistic equal to
    1e-9 in float64, so the order, augmented images, rates, decay, loss and layers are all the same."""
    from benchmarks import torch_models

    rng = np.random.default_rng(7)
    x, labels = rng.random((37, 1, 12, 12)), rng.integers(0, 3, 37)
    net = cnn.Sequential(cnn.build(specs, input_shape=(1, 12, 12), n_classes=3), init="he", seed=3, dtype="float64")
    model = torch_models.twin(net, "categorical_cross_entropy")
    rule = cnn.make_schedule({"type": schedule}, torch_args[1], 2, 5)
    shift = cnn.make_augment({"shift": augment, "rotate": 15 * augment} if augment else None)
    torch.set_num_threads(1)
    torch_optimizer, decay = torch_models.make_optimizer(torch_args[0], list(model.parameters()), *torch_args[1:])
    trainer = torch_models.Trainer(model, torch_optimizer, "categorical_cross_entropy", 8, 5, rule, shift, decay)
    for _ in range(2):
        trainer.epoch(x, labels, 3)
    loss = cnn.CategoricalCrossEntropy()
    net.fit(x, cnn.one_hot(labels, 3), loss, optimizer, 2, 8, seed=5, schedule=rule, augment=shift)
    ours, theirs = parameters(net), torch_parameters(model)
    assert [a.shape for a in ours] == [b.shape for b in theirs]
    for a, b in zip(ours, theirs, strict=True):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-9)
    np.testing.assert_allclose(trainer.predict(x), net.predict(x), rtol=0, atol=1e-9)


def run_record(impl: str, preset: str, seed: int, accuracies: list[float], seconds: list[float]) -> dict:
    history = [
        {"epoch": i + 1, "train_seconds": s, "test_accuracy": a}
        for i, (a, s) in enumerate(zip(accuracies, seconds, strict=True))
    ]
    record = {"impl": impl, "preset": preset, "seed": seed, "epochs": len(history), "peak_rss_mib": 100.0 + seed}
    return record | full_mnist.outcome(history)


def test_summary_takes_medians_ranges_and_per_seed_ratios():
    runs = [
        run_record("cnn", "a", 0, [0.985, 0.991], [10, 20]),
        run_record("torch", "a", 0, [0.99, 0.992], [20, 40]),
        run_record("cnn", "a", 1, [0.98, 0.989], [12, 24]),
        run_record("torch", "a", 1, [0.98, 0.995], [15, 30]),
        run_record("cnn", "a", 2, [0.992, 0.993], [11, 22]),
        {"impl": "torch", "preset": "a", "seed": 2, "error": "RuntimeError: out of luck"},
    ]
    for record, other_cores in zip(runs[0:5:2], (0.5, 0.7, 3.0), strict=True):  # cnn: seed 2 is not timed
        record["other_cores"] = other_cores
    (row,) = full_mnist.summarize(runs, ("a",))
    assert row["cnn"]["other_cores"] == pytest.approx(0.6) and row["torch"]["other_cores"] is None
    assert row["cnn"]["accuracy"] == 0.991 and (row["cnn"]["accuracy_min"], row["cnn"]["accuracy_max"]) == (
        0.989,
        0.993,
    )
    assert row["cnn"]["train_seconds"] == 22 and row["torch"]["train_seconds"] == 35
    assert row["speed_vs_torch"] == pytest.approx((40 / 20 + 30 / 24) / 2)  # seed 2 has no PyTorch run
    # times over the seeds both trained (0 and 1): cnn reached 99.0% at seed 0 only (seed 2's 11 s is not paired)
    assert row["cnn"]["timed_seeds"] == [0, 1] and row["cnn"]["seeds"] == [0, 1, 2]
    assert row["cnn"]["seconds_to_target"] == 20 and row["cnn"]["reached_target"] == "1/2"
    assert row["torch"]["seconds_to_target"] == 25 and row["torch"]["peak_rss_mib"] == 101
    assert row["time_to_target_vs_torch"] == pytest.approx(20 / 25)
    (alone,) = full_mnist.summarize([r for r in runs if r["impl"] == "cnn"], ("a",))
    assert alone["cnn"]["timed_seeds"] == [0, 1, 2] and alone["cnn"]["seconds_to_target"] == 15.5  # 20 and 11
    assert row["errors"] == ["torch seed 2: RuntimeError: out of luck"]
    result = {
        "presets": [row],
        "runs": runs,
        "machine": {"cpu": "x", "vector_units": "v", "kernel": "k", "numerics": "n", "numpy": "2", "torch": None},
        "mnist_dir": "d",
        "started": "now",
        "threads": 2,
        "loadavg_start": (1.0, 1.0, 1.0),
        "loadavg_end": (2.0, 2.0, 2.0),
    }
    text = report.full_mnist(result)
    assert "| a | 2 | 99.10% (98.90%-99.30%) | - | 22.0 s | 99.35% (99.20%-99.50%) | 35.0 s | 1.62x |" in text
    assert "| 20.0 s (1/2 seeds) | 25.0 s | 102 / 101 MiB | 0.60 / - |" in text
    assert "error: a torch seed 2: RuntimeError: out of luck" in text


def stored_result(runs: list[dict], started: str, cpu: str = "x") -> dict:
    """A result as measure() writes it, around `runs`."""
    return {
        "runs": runs,
        "machine": {"cpu": cpu, "vector_units": "v", "kernel": "k", "numerics": "n", "numpy": "2", "torch": "t"},
        "mnist_dir": "d",
        "started": started,
        "threads": 2,
        "loadavg_start": [1.0, 1.0, 1.0],
        "loadavg_end": [2.0, 2.0, 2.0],
        "presets": [],
    }


def test_full_mnist_table_combines_results_the_later_run_replacing_the_earlier(tmp_path, capsys):
    """--full-mnist-table: seed 0 of preset a with PyTorch and an interrupted seed 1 (the first file), then seeds
    1 and 2 without PyTorch and seed 0's cnn run again (the second): one table over seeds 0-2, with the second
    file's cnn seed 0 and seed 1, not interrupted, speed from seed 0's pair."""
    from benchmarks.__main__ import main

    interrupted = {"impl": "cnn", "preset": "a", "seed": 1, "epochs": 0, "interrupted": True}
    first = [run_record("cnn", "a", 0, [0.9, 0.95], [10, 20]), run_record("torch", "a", 0, [0.99, 0.992], [20, 40])]
    second = [run_record("cnn", "a", s, [0.98, a], [12, 24]) for s, a in ((1, 0.989), (2, 0.993), (0, 0.991))]
    files = [tmp_path / "first.json", tmp_path / "second.json"]
    files[0].write_text(json.dumps(stored_result([*first, interrupted], "day 1")))
    files[1].write_text(json.dumps(stored_result(second, "day 2")))
    out = tmp_path / "combined.json"
    assert main(["--full-mnist-table", *map(str, files), "--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert "Full MNIST (d), day 1 to day 2:" in text
    assert "| a | 2 | 99.10% (98.90%-99.30%) | - | 24.0 s | 99.20% | 40.0 s | 1.67x |" in text
    assert "interrupted" not in text
    combined = json.loads(out.read_text())
    assert [(r["seed"], r["impl"], r["test_accuracy"]) for r in combined["runs"]] == [
        (0, "cnn", 0.991),
        (0, "torch", 0.992),
        (1, "cnn", 0.989),
        (2, "cnn", 0.993),
    ]
    third = tmp_path / "third.json"  # a combined file combined again: its span is the first start to the last end
    third.write_text(json.dumps(stored_result([run_record("cnn", "a", 2, [0.98, 0.994], [12, 24])], "day 3")))
    assert main(["--full-mnist-table", str(out), str(third), "--json", str(tmp_path / "again.json")]) == 0
    assert "Full MNIST (d), day 1 to day 3:" in capsys.readouterr().out
    files[1].write_text(json.dumps(stored_result(second, "day 2", cpu="another")))
    assert main(["--full-mnist-table", *map(str, files), "--json", str(out)]) == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        "error: --full-mnist-table: the results differ in machine: {'cpu': 'another', 'vector_units': 'v', "
        "'kernel': 'k', 'numerics': 'n', 'numpy': '2', 'torch': 't'} vs {'cpu': 'x', 'vector_units': 'v', "
        "'kernel': 'k', 'numerics': 'n', 'numpy': '2', 'torch': 't'}; combine one machine's"
    ]
    files[1].write_text("{not json")
    assert main(["--full-mnist-table", *map(str, files), "--json", str(out)]) == 2
    assert capsys.readouterr().err.startswith(f"error: --full-mnist-table: {files[1]} is not a result of --full-mnist")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--max-epochs", "2"], "--max-epochs and --torch-seeds go with --full-mnist DIR"),
        (["--torch-seeds", "0"], "--max-epochs and --torch-seeds go with --full-mnist DIR"),
        (["--full-mnist", ".", "--presets", "lenet"], "no preset 'lenet'; the presets are best, keras-convnet"),
        (["--full-mnist", "data"], "data has no SHA256SUMS"),
        (["--full-mnist", "data/sample", "--max-epochs", "0"], "--max-epochs must be >= 1, got 0"),
        (["--full-mnist-table", "no.json"], "--full-mnist-table: no file no.json; give result files that --full-"),
        (["--full-mnist-table", "a.json", "--full-mnist", "data"], "not allowed with argument"),
    ],
)
def test_flag_errors(argv, message, capsys):
    from benchmarks.__main__ import main

    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    assert message in " ".join(capsys.readouterr().err.split())  # argparse wraps its lines


def write_fake_mnist(folder: Path, train: int, test: int) -> None:
    """The four MNIST .gz files with `train` and `test` random images (every digit in each), and SHA256SUMS."""
    rng = np.random.default_rng(0)
    for prefix, n in (("train", train), ("t10k", test)):
        idx.write_idx(folder / f"{prefix}-images-idx3-ubyte.gz", rng.integers(0, 256, (n, 28, 28), dtype=np.uint8))
        idx.write_idx(folder / f"{prefix}-labels-idx1-ubyte.gz", (np.arange(n) % 10).astype(np.uint8))
    sums = [f"{hashlib.sha256(p.read_bytes()).hexdigest()}  {p.name}" for p in sorted(folder.glob("*.gz"))]
    (folder / "SHA256SUMS").write_text("\n".join(sums) + "\n")


@pytest.mark.slow
def test_full_mnist_flag_end_to_end(tmp_path):
    """The flag on a fake MNIST of 100 + 40 images, keras-convnet (10% held out), two epochs, seeds 1 and 2 with
    PyTorch on seed 1 only: the data go through the pipeline's download and preprocess, both implementations
    train, taking turns by epoch (who goes first alternates), and score all 40 test images after each epoch."""
    mnist = tmp_path / "mnist"
    mnist.mkdir()
    write_fake_mnist(mnist, 100, 40)
    out = tmp_path / "result.json"
    cmd = [sys.executable, "-m", "benchmarks", "--full-mnist", str(mnist), "--presets", "keras-convnet"]
    cmd += ["--seeds", "1", "2", "--torch-seeds", "1", "--max-epochs", "2", "--json", str(out)]
    done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr
    result = json.loads(out.read_text())
    impls = ["cnn", "torch"] if import_torch() else ["cnn"]
    assert [(run["impl"], run["seed"]) for run in result["runs"]] == [(impl, 1) for impl in impls] + [("cnn", 2)]
    for run in result["runs"]:
        assert (run["preset"], run["epochs"]) == ("keras-convnet", 2)
        assert (run["train_images"], run["test_images"], run["numerics"]) == (90, 40, "canonical")
        assert 0 <= run["test_accuracy"] <= 1 and run["train_seconds"] > 0 and run["peak_rss_mib"] > 50
        assert [e["epoch"] for e in run["history"]] == [1, 2]
        assert 0 < run["history"][0]["train_seconds"] < run["history"][1]["train_seconds"] == run["train_seconds"]
    turns = [line.split()[:2] for line in done.stderr.splitlines() if line.strip().split()[1:2] == ["epoch"]]
    expected = [["cnn", "epoch"], ["torch", "epoch"], ["torch", "epoch"], ["cnn", "epoch"]]
    seed_1 = expected if impls == ["cnn", "torch"] else expected[:1] + expected[3:]
    assert turns == [*seed_1, ["cnn", "epoch"], ["cnn", "epoch"]]
    assert "| keras-convnet | 2 |" in done.stdout and "99.1%" in done.stdout


FULL_MNIST = os.environ.get("MNIST_CNN_FULL_MNIST")


@pytest.mark.slow
@pytest.mark.skipif(not FULL_MNIST, reason="set MNIST_CNN_FULL_MNIST to a folder of the full MNIST (.gz, SHA256SUMS)")
def test_full_mnist_one_epoch_of_keras_convnet(tmp_path):
    """Opt-in: one epoch of keras-convnet on the real full MNIST: 54,000 training images (10% held out), all
    10,000 test images, and both implementations above 95% after that epoch."""
    out = tmp_path / "result.json"
    cmd = [sys.executable, "-m", "benchmarks", "--full-mnist", FULL_MNIST, "--presets", "keras-convnet"]
    cmd += ["--seeds", "0", "--max-epochs", "1", "--json", str(out)]
    done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=3600, check=False)
    assert done.returncode == 0, done.stderr
    for run in json.loads(out.read_text())["runs"]:
        assert (run["train_images"], run["test_images"]) == (54_000, 10_000)
        assert run["test_accuracy"] > 0.95, run["impl"]


@pytest.mark.slow
def test_interrupted_run_keeps_the_epochs_it_finished(tmp_path):
    """Ctrl-C after the first epochs: exit code 130, the runs stopped, and their finished epochs in the table and
    the JSON, marked interrupted."""
    mnist = tmp_path / "mnist"
    mnist.mkdir()
    write_fake_mnist(mnist, 100, 40)
    out = tmp_path / "result.json"
    cmd = [sys.executable, "-m", "benchmarks", "--full-mnist", str(mnist), "--presets", "lenet5", "keras-convnet"]
    cmd += ["--seeds", "0", "--max-epochs", "15", "--no-torch", "--json", str(out)]
    process = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    for line in process.stderr:
        if "cnn epoch 2/15" in line:
            process.send_signal(signal.SIGINT)
            break
    stdout, _ = process.communicate(timeout=300)
    assert process.returncode == 130
    result = json.loads(out.read_text())
    (run,) = result["runs"]  # keras-convnet never started
    assert run["preset"] == "lenet5" and run["interrupted"] and result["interrupted"]
    assert 2 <= run["epochs"] < 15 and [e["epoch"] for e in run["history"]] == list(range(1, run["epochs"] + 1))
    assert "| lenet5 (interrupted) |" in stdout and "| keras-convnet | - |" in stdout
