"""Reproducible anywhere: a fresh copy's `dvc repro` reproduces the committed dvc.lock bit for bit, whatever
OpenBLAS kernel the environment asks for, whatever numpy's SIMD dispatch, thread count or cores.

Each variant runs in a fresh copy of the repository (what a new clone holds), then `git status` must be
empty: dvc.lock, metrics.json, the CSVs and platform.json all as committed.
"""

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.dvc_project import ROOT, Project

pytestmark = pytest.mark.slow

# name -> (environment changes: value None removes the variable, command prefix)
VARIANTS: dict[str, tuple[dict[str, str | None], list[str]]] = {
    "autodetect": ({"OPENBLAS_CORETYPE": None, "OPENBLAS_L2_SIZE": None}, []),
    "Haswell": ({"OPENBLAS_CORETYPE": "Haswell", "OPENBLAS_L2_SIZE": "512"}, []),
    "SkylakeX": ({"OPENBLAS_CORETYPE": "SkylakeX"}, []),
    "Zen": ({"OPENBLAS_CORETYPE": "Zen"}, []),
    "Sandybridge": ({"OPENBLAS_CORETYPE": "Sandybridge"}, []),
    "one BLAS thread": ({"OPENBLAS_NUM_THREADS": "1"}, []),
    "one core": ({}, ["taskset", "-c", "0"]),
    "no AVX-512 in numpy": ({"NPY_DISABLE_CPU_FEATURES": "X86_V4 AVX512_ICL"}, []),
}


def variant_env(base: dict[str, str], changes: dict[str, str | None]) -> dict[str, str]:
    """This host's environment without what a user's machine does not set: its OpenBLAS kernel, numerics and
    SIMD settings, and PYTHONDONTWRITEBYTECODE (a user's Python writes __pycache__ into cnn/ and pipeline/,
    which are stage deps), then `changes`."""
    env = {key: value for key, value in base.items() if key not in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")}
    for key in ("MNIST_CNN_NUMERICS", "NPY_DISABLE_CPU_FEATURES", "PYTHONDONTWRITEBYTECODE"):
        env.pop(key, None)
    for key, value in changes.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return env


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_fresh_copy_reproduces_the_committed_lock(variant: str, tmp_path: Path) -> None:
    changes, prefix = VARIANTS[variant]
    project = Project.create(tmp_path / "repo")
    project.env = variant_env(project.env, changes)
    committed_lock = yaml.safe_load((project.path / "dvc.lock").read_text())
    result = project.run(*prefix, str(Path(sys.executable).parent / "dvc"), "repro")
    assert "note: native numerics" not in result.stderr
    status = project.run("git", "status", "--porcelain").stdout
    assert status == "", f"{variant}: tracked files changed:\n{status}\n{project.run('git', 'diff').stdout[:3000]}"
    assert yaml.safe_load((project.path / "dvc.lock").read_text()) == committed_lock
    assert "up to date" in project.dvc("status").stdout
    assert (project.path / "reports/train/timing.json").is_file()  # written, and ignored: status was clean
    assert json.loads((project.path / "reports/train/platform.json").read_text())["numerics"] == "canonical"


BATCH_NORM_LAYERS = [
    {"type": "conv", "depth": 4, "kernel_size": 3, "padding": "same", "bias": "tied"},
    {"type": "batchnorm"},
    {"type": "relu"},
    {"type": "maxpool", "size": 2},
    {"type": "flatten"},
    {"type": "dense", "units": 16},
    {"type": "batchnorm"},
    {"type": "relu"},
    {"type": "dropout", "rate": 0.3},
    {"type": "dense"},
    {"type": "softmax"},
]
SPLIT_CONFIGS = {
    # batch 128 is trained as two halves on two threads (cnn.parallel); batch 32 is one unsplit product
    "float32 batch 128": {"batch_size": 128, "dtype": "float32", "learning_rate": 1.5},
    "float64 batch 32": {"batch_size": 32, "dtype": "float64", "learning_rate": 1.0},
    # halves normalised by the whole batch's statistics (synchronized batch norm), dropout drawn for the whole batch
    "float32 batch 128, batch norm, dropout, augmentation": {
        "batch_size": 128, "dtype": "float32", "optimizer": "adam", "learning_rate": 0.003, "init": "he",
        "loss": "categorical_cross_entropy", "augment": {"shift": 2, "rotate": 10}, "layers": BATCH_NORM_LAYERS,
    },
}  # fmt: skip


@pytest.fixture(scope="module")
def processed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """data/processed/train.npz of the default params, made by the pipeline's own stages."""
    folder = tmp_path_factory.mktemp("processed")
    for stage, out in (("download", "raw"), ("preprocess", "processed")):
        args = ["--out", str(folder / out)] + (["--raw", str(folder / "raw")] if stage == "preprocess" else [])
        subprocess.run([sys.executable, "-m", "pipeline", stage, *args], cwd=ROOT, check=True, capture_output=True)
    return folder / "processed" / "train.npz"


def train_digest(params: Path, data: Path, out: Path, changes: dict[str, str | None], prefix: list[str]) -> str:
    env = variant_env(dict(os.environ), changes)
    command = [sys.executable, "-m", "pipeline", "train", "--params", str(params), "--data", str(data)]
    command += ["--model", str(out / "model.npz"), "--reports", str(out / "reports")]
    result = subprocess.run([*prefix, *command], cwd=ROOT, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    return hashlib.sha256((out / "model.npz").read_bytes()).hexdigest()


@pytest.mark.parametrize("config", list(SPLIT_CONFIGS))
def test_batched_training_gives_the_same_model_in_every_variant(config: str, processed: Path, tmp_path: Path) -> None:
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["train"].update(SPLIT_CONFIGS[config], epochs=10)
    params_file = tmp_path / "params.yaml"
    params_file.write_text(yaml.safe_dump(params))
    digests = {
        name: train_digest(params_file, processed, tmp_path / name.replace(" ", "-"), *VARIANTS[name])
        for name in VARIANTS
    }
    assert len(set(digests.values())) == 1, digests


def fingerprint(env_changes: dict[str, str | None]) -> dict:
    code = "import json, pipeline.numerics as n; print(json.dumps(n.fingerprint('float64')))"
    env = variant_env(dict(os.environ), env_changes)
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_canonical_mode_overrides_the_kernel_the_environment_asks_for() -> None:
    found = fingerprint({"OPENBLAS_CORETYPE": "Sandybridge"})
    assert found["numerics"] == "canonical"
    assert all(lib.endswith(" Haswell") for lib in found["blas"]), found["blas"]
    assert found["numpy_simd"] == "X86_V3"


def test_native_opt_out_runs_the_kernel_the_environment_asks_for() -> None:
    found = fingerprint({"MNIST_CNN_NUMERICS": "native", "OPENBLAS_CORETYPE": "Sandybridge"})
    assert found["numerics"] == "native"
    assert all(lib.endswith(" Sandybridge") for lib in found["blas"]), found["blas"]


def test_native_run_says_its_numbers_are_not_canonical(processed: Path, tmp_path: Path) -> None:
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["train"]["epochs"] = 1
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    env = variant_env(dict(os.environ), {"MNIST_CNN_NUMERICS": "native"})
    command = [sys.executable, "-m", "pipeline", "train", "--params", str(tmp_path / "params.yaml")]
    command += ["--data", str(processed), "--model", str(tmp_path / "m.npz"), "--reports", str(tmp_path / "r")]
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    notes = [line for line in result.stderr.splitlines() if line.startswith("note: native numerics")]
    assert len(notes) == 1 and "MNIST_CNN_NUMERICS=native" in notes[0]
    assert json.loads((tmp_path / "r" / "platform.json").read_text())["numerics"] == "native"


def test_after_a_fresh_repro_plots_diff_shows_head_next_to_an_experiment(tmp_path: Path) -> None:
    """HEAD's images are cached outputs: a fresh clone has them only if its run reproduced HEAD's lock."""
    project = Project.create(tmp_path / "repo")
    project.dvc("repro")
    stage_metrics = ("metrics.json", "reports/train/metrics.json")  # the live file is in no commit
    assert json.loads(project.dvc("metrics", "diff", "--json", "--targets", *stage_metrics).stdout) == {}
    assert "metrics diff --targets metrics.json reports/train/metrics.json" in (ROOT / "README.md").read_text()
    project.dvc("exp", "run", "-S", "train.epochs=2", "-n", "short")
    result = project.dvc("plots", "diff", "HEAD", "short", "--json")
    plots = json.loads(result.stdout)
    assert not plots.get("errors"), plots.get("errors")
    images = [entry for entries in plots["data"].values() for entry in entries if entry["type"] == "image"]
    revisions = {rev for entry in images for rev in entry["revisions"]}
    assert revisions == {"HEAD", "short"}
    for entry in images:
        assert Path(entry["url"]).stat().st_size > 0
