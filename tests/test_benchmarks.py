"""The benchmark: a smoke run of `python -m benchmarks --quick` without PyTorch measures every variant, both
numerics modes and the memory scenarios and says once that PyTorch is absent; its recipes' accuracy is the
pipeline's; PyTorch's twin of a network computes what cnn computes; ratios and targets are right for hand-made
tables; paired rounds alternate and pair within a round; the step profile covers every call of the step fit runs;
--batch-hook and --split-ab print their tables; the flags' errors. No timing assertions."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

import cnn
from benchmarks import bench, children, commands, networks, report, timing
from pipeline import numerics
from tests.dvc_project import readme_block

REPO = Path(__file__).resolve().parent.parent
NOTEBOOK_VARIANTS = {"notebook b1 f64"} | {f"cnn b{b} {d}" for b in (1, 32, 128) for d in ("f64", "f32")}
TEN_DIGIT_VARIANTS = {f"cnn b{b} f32 {net}" for b in (16, 64) for net in ("ten-digit", "lenet")}


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory) -> tuple[dict, str, str]:
    """`python -m benchmarks --quick` where PyTorch cannot be imported (a torch package that raises ImportError
    first on the path), one BLAS thread: on a shared 2-core machine two can stall for seconds."""
    tmp = tmp_path_factory.mktemp("bench")
    (tmp / "torch").mkdir()
    (tmp / "torch" / "__init__.py").write_text("raise ImportError(\"No module named 'torch'\")\n")
    out = tmp / "result.json"
    cmd = [sys.executable, "-m", "benchmarks", "--quick", "--threads", "1", "--json", str(out)]
    env = children.shell_environment() | {"PYTHONPATH": str(tmp)}
    done = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(out.read_text()), done.stdout, done.stderr


@pytest.fixture(scope="module")
def quick_result(quick_run) -> dict:
    return quick_run[0]


def test_without_pytorch_it_says_so_once_and_leaves_its_rows_out(quick_run):
    result, stdout, stderr = quick_run
    assert stderr.count("PyTorch: not installed") == 1
    assert "failed" not in stdout + stderr and "Error" not in stdout + stderr
    assert result["machine"]["torch"] == "not installed"
    assert all(v["impl"] != "torch" for v in result["variants"])
    assert set(result["memory"]) == {"cnn b32 float32", "cnn b64 float32 ten-digit"}
    assert "Training throughput" in stdout and "Canonical vs native" in stdout and "Batch 1 against" in stdout


def test_every_variant_is_timed_in_every_round(quick_result):
    variants = {v["name"]: v for v in quick_result["variants"]}
    assert set(variants) == NOTEBOOK_VARIANTS | TEN_DIGIT_VARIANTS
    for v in variants.values():
        assert len(v["samples_per_s_all"]) == quick_result["options"]["rounds"] == 2
        assert all(rate > 0 for rate in v["samples_per_s_all"])
        assert v["peak_rss_mib"] > 0
        assert v["vs_torch"] is None


def test_the_benchmark_computes_with_the_pipelines_numerics(quick_result):
    canonical_possible = numerics._unavailable() is None
    assert quick_result["machine"]["numerics"].startswith("canonical" if canonical_possible else "native")


def test_both_numerics_modes_run_every_cnn_variant(quick_result):
    modes = quick_result["numerics_modes"]
    assert modes["modes"]["native"]["mode"] == "native"
    canonical_possible = numerics._unavailable() is None
    assert modes["modes"]["canonical"]["mode"] == ("canonical" if canonical_possible else "native")
    if canonical_possible:
        assert all("Haswell" in lib for lib in modes["modes"]["canonical"]["blas"])
    rows = {v["name"]: v for v in modes["variants"]}
    assert set(rows) == (NOTEBOOK_VARIANTS - {"notebook b1 f64"}) | TEN_DIGIT_VARIANTS
    for row in rows.values():
        assert len(row["canonical_all"]) == len(row["native_all"]) == 2
        assert row["canonical_samples_per_s"] > 0 and row["native_samples_per_s"] > 0


def test_children_get_the_shells_environment(monkeypatch):
    """This process pinned its kernels (OPENBLAS_CORETYPE, NPY_DISABLE_CPU_FEATURES); a native child must not
    inherit the pins, a canonical one pins them itself."""
    monkeypatch.setattr(children, "HOST_ENVIRONMENT", {"OPENBLAS_NUM_THREADS": "1"})
    monkeypatch.setenv("OPENBLAS_CORETYPE", "Haswell")
    monkeypatch.setenv("NPY_DISABLE_CPU_FEATURES", numerics.NUMPY_DISABLED_FEATURES)
    native, canonical = children.shell_environment("native"), children.shell_environment("canonical")
    for env in (native, canonical):
        assert "OPENBLAS_CORETYPE" not in env and "NPY_DISABLE_CPU_FEATURES" not in env
        assert env["OPENBLAS_NUM_THREADS"] == "1"
    assert native[numerics.OPT_OUT_VARIABLE] == "native" and numerics.OPT_OUT_VARIABLE not in canonical


def test_memory_children_train_the_ten_digit_network(quick_result):
    full = quick_result["memory"]["cnn b64 float32 ten-digit"]
    assert full["network"] == "ten-digit" and full["images"] == 256  # --quick: four batches of 64
    assert full["peak_rss_mib"] >= full["before_training_mib"] > 0 and full["seconds"] > 0
    assert quick_result["memory"]["cnn b32 float32"]["images"] == 128


def test_flops_of_the_notebook_network(quick_result):
    flops = quick_result["flops"]
    # Dense(3380 -> 100): forward, weight gradient and input gradient, 2 FLOPs per multiply-add each.
    assert flops["by_layer"]["dense1 forward"] == 2 * 3380 * 100
    assert 0.9 < 3 * 2 * 3380 * 100 / flops["per_sample"] < 0.96  # the dense layer is ~93% of the work


def test_batch1_budget_splits_the_measured_step(quick_result):
    """The budget's step is the timed batch-1 variant's, the three passes were timed in this run and are part of
    it, and the goal's step is the notebook's over the goal."""
    variants = {v["name"]: v for v in quick_result["variants"]}
    notebook_us = 1e6 / variants["notebook b1 f64"]["samples_per_s"]
    rows = {b["dtype"]: b for b in quick_result["batch1_budget"]}
    assert set(rows) == {"float64", "float32"}
    for dtype, short in (("float64", "f64"), ("float32", "f32")):
        b = rows[dtype]
        assert b["step_us"] == pytest.approx(1e6 / variants[f"cnn b1 {short}"]["samples_per_s"])
        assert b["notebook_step_us"] == pytest.approx(notebook_us)
        assert 0 < b["weight_passes_us"] < b["step_us"]
        assert b["rest_us"] == pytest.approx(b["step_us"] - b["weight_passes_us"])
        assert b["goal_step_us"] == pytest.approx(notebook_us / b["goal_x_notebook"])
        assert b["rest_budget_us"] == pytest.approx(b["goal_step_us"] - b["weight_passes_us"])
    assert rows["float64"]["goal_x_notebook"] == 4 and rows["float32"]["goal_x_notebook"] == 8


def test_the_default_recipe_is_params_yaml():
    assert commands.params_for(commands.RECIPES[0], 0) == yaml.safe_load((REPO / "params.yaml").read_text())


def test_recipe_accuracy_is_the_pipelines(monkeypatch):
    """The default recipe trained by the benchmark gives the committed metrics.json (what `dvc repro` gives for
    params.yaml, bit for bit), even when the benchmark's own process computes natively."""
    monkeypatch.setenv(numerics.OPT_OUT_VARIABLE, "native")  # the children read the shell's environment instead
    monkeypatch.setattr(children, "HOST_ENVIRONMENT", {})
    row = commands.run_recipe(commands.RECIPES[0], (0,), log=lambda _: None)
    committed = json.loads((REPO / "metrics.json").read_text())
    assert "error" not in row
    assert (row["accuracy"], row["loss"]) == ([committed["accuracy"]], [committed["loss"]])
    assert row["test_images"] == committed["test_images"] and row["met"] is True
    assert row["numerics"] == ["canonical" if numerics._unavailable() is None else "native"]


def test_a_failing_recipe_reports_the_pipelines_error_line():
    bad = commands.Recipe("bad", {"layers": [{"type": "flatten"}, {"type": "dense", "units": 3}]}, 0.99)
    row = commands.run_recipe(bad, (0,), log=lambda _: None)
    assert row["met"] is False and row["error"].startswith("train: ")
    assert "Traceback" not in row["error"] and "output shape" in row["error"]


def row(impl: str, batch: int, dtype: str, rate: float, network: str = "notebook") -> dict:
    """A variant's result row of one round at `rate` samples/s."""
    return {"impl": impl, "network": network, "batch_size": batch, "dtype": dtype} | {
        "samples_per_s": rate,
        "samples_per_s_all": [rate],
    }


def test_ratios_of_a_crafted_table():
    results = [
        row("notebook", 1, "float64", 200.0),
        row("cnn", 1, "float64", 900.0),
        row("cnn", 32, "float32", 5000.0),
        row("torch", 32, "float32", 4000.0),
        row("cnn", 16, "float32", 1300.0, "ten-digit"),
        row("torch", 16, "float32", 1000.0, "ten-digit"),
        row("torch", 16, "float32", 9999.0, "lenet"),  # another network: never the reference of ten-digit
    ]
    timing.add_ratios(results, {"per_sample": 2_000_000}, {"float32": 100.0, "float64": 50.0})
    cnn_b1, cnn_b32, ten, torch_ten = results[1], results[2], results[4], results[5]
    assert cnn_b1["vs_notebook"] == pytest.approx(4.5)  # 900 / 200
    assert cnn_b1["vs_torch"] is None  # no PyTorch at batch 1 in this table
    assert cnn_b32["vs_torch"] == pytest.approx(1.25)  # 5000 / 4000
    assert cnn_b32["gemm_fraction"] == pytest.approx(0.1)  # 5000 samples/s x 2 MFLOP / 100 GFLOP/s
    assert cnn_b1["gemm_fraction"] == pytest.approx(0.036)  # 900 x 2e6 / 50e9
    assert ten["vs_torch"] == pytest.approx(1.3)  # 1300 / 1000
    assert ten["vs_notebook"] is None and ten["gemm_fraction"] is None  # other network, other FLOPs
    assert torch_ten["vs_torch"] is None


def test_spread_is_the_range_over_the_median():
    assert timing.spread([90.0, 100.0, 120.0]) == pytest.approx(0.3)  # (120 - 90) / 100
    assert timing.spread([5.0, 5.0]) == 0.0


def test_ratios_pair_the_rounds_that_timed_both():
    """The machine slowed down in the middle round: per-round ratios say 2x throughout, while the medians of
    the two variants' rates would say 1.5x."""
    mine = {**row("cnn", 32, "float32", 300.0), "samples_per_s_all": [400.0, 100.0, 300.0]}
    torch = {**row("torch", 32, "float32", 200.0), "samples_per_s_all": [200.0, 50.0, 150.0]}
    assert timing.median_ratio(mine["samples_per_s_all"], torch["samples_per_s_all"]) == pytest.approx(2.0)
    timing.add_ratios([mine, torch], {"per_sample": 1}, {"float32": 1.0, "float64": 1.0})
    assert mine["vs_torch"] == pytest.approx(2.0)


def test_alternating_rounds_reverse_the_order_every_other_round():
    calls = []
    values = timing.alternating(lambda name, r: calls.append((r, name)) or len(calls), ["a", "b", "c"], 3)
    assert calls == [(0, "a"), (0, "b"), (0, "c"), (1, "c"), (1, "b"), (1, "a"), (2, "a"), (2, "b"), (2, "c")]
    assert values == {"a": [1, 6, 7], "b": [2, 5, 8], "c": [3, 4, 9]}


def test_summary_pairs_rates_and_seconds_within_rounds():
    """The machine halved its speed in the second round: within each round b is 2x a's rate (and takes half its
    seconds), which the paired ratio says and the ratio of medians would not."""
    rates = {"a": [100.0, 50.0, 90.0], "b": [200.0, 100.0, 180.0]}
    rows = {row["name"]: row for row in timing.summary(rates, "a")}
    assert rows["b"]["ratio"] == pytest.approx(2.0) and rows["a"]["ratio"] == 1.0
    assert rows["b"]["median"] == 180.0 and rows["b"]["spread"] == pytest.approx(100 / 180)
    seconds = {"a": [1.0, 2.0, 1.1], "b": [0.5, 1.0, 0.55]}
    assert timing.summary(seconds, "a", seconds=True)[1]["ratio"] == pytest.approx(2.0)


def test_step_profile_times_every_call_of_the_step_fit_runs():
    """Batch 1 with SGD profiles the rank-1 step (a Dense layer's weights updated as an outer product), batch 32
    with Adam the plain step; every layer's forward is a row, the backward passes start below the last activation
    (folded into the loss gradient), and the rows add up to the total."""
    rank1 = timing.profile_step("notebook", 1, "float64", steps=4)
    plain = timing.profile_step("ten-digit", 32, "float32", steps=2)
    assert (rank1["step"], plain["step"]) == ("rank1_sgd_step", "plain_step")
    for profile, network, update in (
        (rank1, networks.NOTEBOOK, "5 Dense rank-1 weights update"),
        (plain, networks.TEN_DIGIT, "Adam step"),
    ):
        calls = [call for call, _ in profile["rows"]]
        layers = [f"{i} {type(layer).__name__}" for i, layer in enumerate(network.build("float32")[0].layers)]
        assert [call for call in calls if call.endswith(" forward")] == [f"{name} forward" for name in layers]
        assert [call for call in calls if call.endswith(" backward")] == [f"{n} backward" for n in layers[-2::-1]]
        assert update in calls and "loss gradient" in calls
        assert all(us > 0 for _, us in profile["rows"])
        assert profile["total_us"] == pytest.approx(sum(us for _, us in profile["rows"]))
    assert report.profile(plain).startswith("### cnn step profile (plain_step), ten-digit network, batch 32")


def test_batch_hook_flag_prints_the_three_fits_and_the_hook_alone():
    cmd = [sys.executable, "-m", "benchmarks", "--batch-hook", "--rounds", "2", "--epochs", "1"]
    done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    lines = done.stdout.splitlines()
    assert (
        lines[0] == "### train's per-batch hook: default network, batch 1, 1 epochs of 200 images, 2 alternating rounds"
    )
    rows = [line.split(" | ")[0].strip("| ") for line in lines if line.startswith("| ") and "steps/s" not in line]
    assert rows == ["no hook", "BatchWatch, no checkpoint due", "BatchWatch and live line"]
    assert "| no hook |" in done.stdout and " | 1.000 |" in done.stdout  # its own ratio
    assert lines[-1].startswith("the hook alone: ")


SPLIT_MEASURES = ["wall clock", "CPU critical path", "CPU of all threads"]


def table_rows(stdout: str) -> list[list[str]]:
    """The cells of a printed Markdown table's body rows."""
    lines = [line for line in stdout.splitlines() if line.startswith("| ")][1:]
    return [[cell.strip() for cell in line.strip("|").split("|")] for line in lines]


def test_split_ab_flag_prints_three_measures_per_preset():
    cmd = [sys.executable, "-m", "benchmarks", "--split-ab", "--rounds", "1", "--steps", "1"]
    cmd += ["--presets", "keras-convnet", "best"]
    done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.startswith("### cnn's split step (two halves, cnn.parallel) against the unsplit step: ")
    assert "1 alternating rounds of 1 step each, cnn threads " in done.stdout.splitlines()[0]
    rows = table_rows(done.stdout)
    assert [row[:4] for row in rows] == [
        [preset, "128", "float32", measure] for preset in ("keras-convnet", "best") for measure in SPLIT_MEASURES
    ]
    assert all(row[6].endswith("x") and float(row[4]) > 0 and float(row[5]) > 0 for row in rows)
    assert all(float(row[8]) > 0 and row[9].endswith("x") for row in rows)  # the split step with its whole update
    assert all(float(row[10]) > 0 and row[11].endswith("x") for row in rows)  # and without cnn.kernels
    assert "images: 4,000 training images of the sample (data/sample)" in done.stdout


def test_split_ab_measures_and_restores_the_split(tmp_path):
    """On one cnn thread the halves run in turn; the critical path counts the slower half of each phase, so it
    lies between half the split's CPU time and all of it; the unsplit step's critical path is its CPU time. A
    processed split with two classes trains a two-class network, its images tiled to batch x steps. The split's
    resume and update are cnn's own again afterwards."""
    from cnn import kernels, parallel, threads
    from pipeline import dataset

    npz = tmp_path / "train.npz"
    rng = np.random.default_rng(0)
    images = rng.random((100, 1, 28, 28), dtype=np.float32)
    dataset.save(npz, dataset.Split(images, rng.integers(0, 2, 100) * 7, np.array([0, 7])))
    resume, sum_and_update = parallel._resume, parallel.SplitStep.sum_and_update
    threads.set_num_threads(1)
    try:
        result = timing.split_ab("keras-convnet", rounds=2, steps=2, train_npz=npz)
    finally:
        threads.set_num_threads(None)
    assert parallel._resume is resume and parallel.SplitStep.sum_and_update is sum_and_update and kernels.enabled
    assert (result["threads"], result["batch_size"], result["images"]) == (1, 128, f"100 images of {npz}")
    rows = {row["measure"]: row for row in result["rows"]}
    assert list(rows) == SPLIT_MEASURES
    critical, cpu = rows["CPU critical path"], rows["CPU of all threads"]
    assert critical["unsplit_all"] == cpu["unsplit_all"]
    for path, total in zip(critical["split_all"], cpu["split_all"], strict=True):
        assert total / 2 <= path <= total
    for row in rows.values():
        assert len(row["unsplit_all"]) == len(row["split_all"]) == len(row["whole_update_all"]) == 2
        assert len(row["numpy_layers_all"]) == 2 and row["kernels_ratio"] > 0
        assert row["ratio_min"] <= row["ratio"] <= row["ratio_max"]
        assert row["update_ratio"] > 0


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--split-ab", "--train-npz", "nowhere.npz"], "--train-npz: no file nowhere.npz; give a train.npz"),
        (["--split-ab", "--presets", "nope"], "--presets: no preset 'nope'; the presets are best,"),
        (["--split-ab", "--steps", "0"], "--steps must be >= 1, got 0"),
        (["--steps", "3"], "--steps and --train-npz go with --split-ab"),
        (["--train-npz", "x.npz"], "--steps and --train-npz go with --split-ab"),
        (["--presets", "best"], "--presets goes with --full-mnist DIR or --split-ab"),
        (["--split-ab", "--max-epochs", "2"], "--max-epochs and --torch-seeds go with --full-mnist DIR"),
        (["--split-ab", "--batch-hook"], "argument --batch-hook: not allowed with argument --split-ab"),
        (["--sweep-wall", "--split-ab"], "argument --split-ab: not allowed with argument --sweep-wall"),
    ],
)
def test_split_ab_flag_errors(argv, message, capsys):
    from benchmarks.__main__ import main

    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    assert message in " ".join(capsys.readouterr().err.split())


def test_split_ab_refuses_an_unreadable_train_npz(tmp_path):
    bad = tmp_path / "train.npz"
    np.savez(bad, images=np.zeros((4, 1, 28, 28), dtype=np.float32))
    cmd = [sys.executable, "-m", "benchmarks", "--split-ab", "--presets", "keras-convnet", "--train-npz", str(bad)]
    done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.splitlines()[-1] == (
        f"error: {bad}: missing array 'labels' (has ['images']); re-run `dvc repro preprocess` "
        "(or `python -m pipeline preprocess`)"
    )
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--epochs", "3"], "--epochs goes with --batch-hook"),
        (["--batch-hook", "--epochs", "0"], "--epochs must be >= 1, got 0"),
        (["--batch-hook", "--sweep-wall"], "argument --sweep-wall: not allowed with argument --batch-hook"),
        (["--accuracy", "--batch-hook"], "argument --batch-hook: not allowed with argument --accuracy"),
        (["--rounds", "0"], "--rounds must be >= 1, got 0"),
    ],
)
def test_flag_errors(argv, message, capsys):
    from benchmarks.__main__ import main

    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    assert message in " ".join(capsys.readouterr().err.split())


def test_targets_carry_their_goals():
    results = [
        {**row("cnn", 1, "float64", 1.0), "vs_notebook": 4.2, "spread": 0.30},
        {**row("cnn", 16, "float32", 1.0, "ten-digit"), "vs_torch": 1.3},
        {**row("cnn", 64, "float32", 1.0, "lenet"), "vs_torch": 1.1},
    ]
    memory = {"cnn b64 float32 ten-digit": {"images": 60_000, "peak_rss_mib": 700.0}}
    recipe_rows = [{"recipe": "ten-digit", "seeds": [0, 1], "accuracy": [0.94, 0.97], "goal": 0.95}]
    got = {t["target"]: t for t in bench.targets(results, memory, recipe_rows, {"torch_over_cnn_time": 1.4})}
    assert got["batch 1 f64 vs notebook"] == {
        "target": "batch 1 f64 vs notebook",
        "value": 4.2,
        "goal": ">= 4",
        "met": 1,
    }
    assert got["batch 1 f64 spread between rounds"]["goal"] == "<= 0.15"
    assert got["batch 1 f64 spread between rounds"]["met"] is False
    assert got["batch 1 f32 vs notebook"]["met"] is None  # not measured
    assert got["ten-digit b16 f32 vs PyTorch"]["goal"] == ">= 1.2" and got["ten-digit b16 f32 vs PyTorch"]["met"]
    assert got["lenet b64 f32 vs PyTorch"]["met"] is False
    assert got["peak RSS, 60,000 images ten-digit batch 64 f32 (MiB)"]["goal"] == "< 1024"
    assert got["peak RSS, 60,000 images ten-digit batch 64 f32 (MiB)"]["met"] is True
    assert got["full-data recipe: PyTorch epoch time / cnn epoch time"]["met"] is True
    accuracy = got["test accuracy, ten-digit (seed 0)"]  # the first seed decides
    assert accuracy["value"] == 0.94 and accuracy["goal"] == ">= 0.95" and accuracy["met"] is False


def test_markdown_tables_align_numbers_and_mark_missing_values():
    import pandas as pd

    frame = pd.DataFrame({"name": ["a", "b"], "rate": [1234.5, None], "n": [3, 4]})
    assert report.markdown(frame, {"rate": "{:,.0f}"}).splitlines() == [
        "| name | rate | n |",
        "|---|---:|---:|",
        "| a | 1,234 | 3 |",
        "| b | - | 4 |",
    ]


def test_the_ten_digit_networks_and_recipe_match_the_readme():
    block = yaml.safe_load(readme_block("ten-digits", "yaml"))
    recipe = next(r for r in commands.RECIPES if r.name == "ten-digit")
    assert recipe.data == block["data"] and recipe.train == block["train"]
    assert block["train"]["layers"] == networks.TEN_DIGIT.layers
    assert (block["train"]["optimizer"], block["train"]["learning_rate"], block["train"]["init"]) == (
        networks.TEN_DIGIT.optimizer,
        networks.TEN_DIGIT.learning_rate,
        networks.TEN_DIGIT.init,
    )
    assert networks.TEN_DIGIT.parameter_count() == 16 * 9 + 16 + 16 * 13 * 13 * 64 + 64 + 64 * 10 + 10
    assert [spec["depth"] for spec in networks.LENET.layers if spec["type"] == "conv"] == [8, 16]


@pytest.mark.parametrize("network", list(networks.NETWORKS.values()), ids=lambda n: n.key)
def test_pytorch_twin_computes_what_cnn_computes(network, torch):
    """Built from the same cnn layers with the same initial values, PyTorch's network gives cnn's outputs and
    loss (the last activation folded into the loss, as in training)."""
    from benchmarks import torch_models

    net, loss, _ = network.build("float64", seed=3)
    trainer = torch_models.Trainer.like(network, "float64", threads=1, batch_size=5, seed=3)
    x = np.random.default_rng(0).random((5, 1, 28, 28))
    labels = np.arange(5) % network.n_classes
    y = cnn.one_hot(labels, network.n_classes)
    np.testing.assert_allclose(trainer.predict(x), net.predict(x), rtol=0, atol=1e-12)
    twin_loss = trainer.loss(trainer.model(torch.from_numpy(x)), torch.from_numpy(labels), network.n_classes).item()
    assert twin_loss == pytest.approx(loss.value(y, net.predict(x)), rel=1e-9)


def test_pytorch_twin_of_padding_stride_pooling_dropout_and_batchnorm(torch):
    """The layers that came with the full-MNIST presets: cnn's predict (dropout off, batch norm's running
    statistics, here moved off their initial values by one training forward pass) is the twin's."""
    from benchmarks import torch_models

    layers = [
        {"type": "standardize", "mean": 0.1307, "std": 0.3081},
        {"type": "conv", "depth": 4, "kernel_size": 3, "padding": "same", "bias": "tied"},
        {"type": "batchnorm"},
        {"type": "relu"},
        {"type": "avgpool", "size": 2, "stride": 2},
        {"type": "conv", "depth": 6, "kernel_size": 3, "stride": 2, "padding": 1},
        {"type": "maxpool", "size": 2, "stride": 1},
        {"type": "global_avgpool"},
        {"type": "dropout", "rate": 0.5},
        {"type": "dense", "units": 8},
        {"type": "batchnorm"},
        {"type": "tanh"},
        {"type": "dense"},
        {"type": "softmax"},
    ]
    net = cnn.Sequential(cnn.build(layers, n_classes=3), init="he", seed=1)
    x = np.random.default_rng(2).random((6, 1, 28, 28))
    norms = [layer for layer in net.layers if isinstance(layer, cnn.BatchNorm)]
    for layer in norms:
        layer.training = True
    net.forward(x)
    for layer in norms:
        layer.training = False
    assert not np.allclose(norms[0].buffers["running_mean"], 0)
    model = torch_models.twin(net, "categorical_cross_entropy")
    trainer = torch_models.Trainer(model, None, "categorical_cross_entropy", batch_size=6, seed=0)
    np.testing.assert_allclose(trainer.predict(x), net.predict(x), rtol=0, atol=1e-10)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_pytorch_twin_of_standardize_gives_the_same_bits_forward_and_backward(torch, dtype):
    """Standardize's twin is torchvision's Normalize arithmetic (x.sub(mean).div(std)): its output and, through
    autograd, its input gradient are cnn's bit for bit."""
    from benchmarks import torch_models

    layer = cnn.Standardize((1, 28, 28), mean=0.1307, std=0.3081)
    (twin,) = torch_models.LAYERS["Standardize"](layer, layer.config())
    rng = np.random.default_rng(6)
    x = (rng.integers(0, 256, (4, 1, 28, 28)) / 255).astype(dtype)
    dy = rng.standard_normal(x.shape).astype(dtype)
    tx = torch.from_numpy(x.copy()).requires_grad_()
    ty = twin(tx)
    ty.backward(torch.from_numpy(dy))
    np.testing.assert_array_equal(ty.detach().numpy(), layer.forward(x))
    np.testing.assert_array_equal(tx.grad.numpy(), layer.backward(dy))


def test_pytorch_tests_skip_with_a_reason_and_fail_when_ci_requires_them(tmp_path):
    """Where torch does not import (a torch package that raises ImportError first on the path), a test taking the
    conftest's torch fixture skips and says how to install it; under MNIST_CNN_REQUIRE_TORCH=1 (CI) it fails."""
    (tmp_path / "torch").mkdir()
    (tmp_path / "torch" / "__init__.py").write_text("raise ImportError(\"No module named 'torch'\")\n")
    base = children.shell_environment() | {"PYTHONPATH": str(tmp_path)}
    base.pop("MNIST_CNN_REQUIRE_TORCH", None)
    command = [sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", __file__, "-k", "refuses"]
    skipped = subprocess.run(command, cwd=REPO, env=base, capture_output=True, text=True, timeout=120)
    assert skipped.returncode == 0, skipped.stdout[-2000:]
    assert "1 skipped" in skipped.stdout and "pip install torch==2.13.0" in skipped.stdout
    required = base | {"MNIST_CNN_REQUIRE_TORCH": "1"}
    failed = subprocess.run(command, cwd=REPO, env=required, capture_output=True, text=True, timeout=120)
    assert failed.returncode == 1, failed.stdout[-2000:]
    assert "must not skip the PyTorch tests" in failed.stdout


def test_pytorch_twin_refuses_what_it_cannot_copy(torch):
    from benchmarks import torch_models

    net = networks.NOTEBOOK.build("float64")[0]
    with pytest.raises(ValueError, match="ending in Sigmoid trained with categorical_cross_entropy"):
        torch_models.twin(net, "categorical_cross_entropy")
