"""Measurements through the project's own commands, each a child process in a scratch folder, as a user runs
them: the recipes' test accuracy and a sweep's wall time.

Recipes: named changes to params.yaml, trained and scored by `python -m pipeline preprocess`, `train` and
`evaluate`, so that an accuracy the benchmark reports is the one `dvc repro` gives for the same params: the same
code, numerics (pinned by each command as it starts) and data. Each run's row: test accuracy and loss
(metrics.json), training seconds (reports/train/timing.json) and numerics mode (reports/train/platform.json), per
seed.

Sweep wall time (`python -m benchmarks --sweep-wall`): one 12-point sweep three ways, alternating in rounds:
`python -m pipeline sweep` on a local Dask cluster of 2 workers and of 1, and DVC's own queue (`dvc exp run
--queue` + `dvc queue start -j 2`). Each measurement starts from the same state, copied fresh: a clone of this
repository with the committed run's outputs, a bare git `origin` and a folder DVC remote (everything pushed).
Timed: from the first command to the ranked table (`python -m pipeline compare` for the queue), so both include
gathering the results."""

import json
import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from benchmarks import PARAMS, REPO, children, networks, timing
from tests.dvc_project import BIN, dvc_env


@dataclass(frozen=True)
class Recipe:
    """A params.yaml with `data` and `train` keys changed, and the test accuracy it must reach."""

    name: str
    train: dict[str, Any]
    goal: float
    data: dict[str, Any] = field(default_factory=dict)


# params.yaml's default (the notebook's recipe), the settings the README recommends for speed (lr scales with
# the batch: cnn averages the gradient over it), and the README's ten-digit configuration ("All ten digits").
RECIPES = [
    Recipe("notebook, batch 1 float64 (params.yaml)", {}, 0.99),
    Recipe("notebook, batch 1 float32", {"dtype": "float32"}, 0.99),
    Recipe(
        "notebook, batch 32 float32", {"batch_size": 32, "dtype": "float32", "learning_rate": 1.0, "epochs": 40}, 0.99
    ),
    Recipe(
        "notebook, batch 128 float32",
        {"batch_size": 128, "dtype": "float32", "learning_rate": 1.5, "epochs": 120},
        0.99,
    ),
    Recipe(
        "ten-digit",
        {
            "epochs": 12,
            "batch_size": 16,
            "learning_rate": networks.TEN_DIGIT.learning_rate,
            "optimizer": networks.TEN_DIGIT.optimizer,
            "loss": networks.TEN_DIGIT.loss,
            "init": networks.TEN_DIGIT.init,
            "dtype": "float32",
            "layers": networks.TEN_DIGIT.layers,
        },
        0.95,
        {"digits": list(networks.TEN_DIGIT.digits), "limit_per_class": 400},
    ),
]


def params_for(recipe: Recipe, seed: int, base: Path = PARAMS) -> dict:
    """`base` (the project's params.yaml) with the recipe's changes and train.seed = seed."""
    params = yaml.safe_load(base.read_text())
    params["data"].update(recipe.data)
    params["train"].update(recipe.train, seed=seed)
    return params


def run_recipe(recipe: Recipe, seeds: tuple[int, ...], raw_dir: Path = networks.SAMPLE_DIR, log=print) -> dict:
    """Preprocess the IDX files in `raw_dir` as the recipe's data section says, then train and evaluate once per
    seed. -> the recipe's row; "error" holds the first failing command's error line."""
    row: dict[str, Any] = {"recipe": recipe.name, "goal": recipe.goal, "seeds": list(seeds)}
    row |= {k: [] for k in ("accuracy", "loss", "train_seconds", "numerics")}
    with tempfile.TemporaryDirectory(prefix="recipe-") as scratch:
        work = Path(scratch)
        processed = work / "processed"
        for seed in seeds:
            params = params_for(recipe, seed)
            params_file, out = work / f"params-{seed}.yaml", work / f"seed-{seed}"
            params_file.write_text(yaml.safe_dump(params, sort_keys=False))
            p = ("--params", str(params_file))
            steps = [] if processed.exists() else [("preprocess", *p, "--raw", str(raw_dir), "--out", str(processed))]
            model, train_reports = str(out / "model.npz"), out / "train"
            steps.append(("train", *p, "--data", str(processed / "train.npz"), "--model", model))
            steps[-1] += ("--reports", str(train_reports))
            steps.append(("evaluate", "--model", model, "--data", str(processed / "test.npz")))
            steps[-1] += ("--metrics", str(out / "metrics.json"), "--reports", str(out / "evaluate"))
            for step in steps:
                if error := children.pipeline_command(*step):
                    return row | {"error": error, "met": False}
            metrics = json.loads((out / "metrics.json").read_text())
            row["accuracy"].append(metrics["accuracy"])
            row["loss"].append(metrics["loss"])
            row["train_seconds"].append(json.loads((train_reports / "timing.json").read_text())["train_seconds"])
            row["numerics"].append(json.loads((train_reports / "platform.json").read_text())["numerics"])
            log(f"  recipe {recipe.name}, seed {seed}: accuracy {metrics['accuracy']:.4f}")
        train = params["train"]
        row |= {k: train[k] for k in ("epochs", "batch_size", "dtype", "learning_rate", "optimizer")}
        row["train_images"] = json.loads((train_reports / "metrics.json").read_text())["train_images"]
        row |= {"test_images": metrics["test_images"], "met": row["accuracy"][0] >= recipe.goal}
    return row


GRID = ["-S", "train.learning_rate=0.05,0.1,0.2,0.3", "-S", "train.seed=0,1,2"]  # 12 points
POINTS = 12
SWEEP = [sys.executable, "-m", "pipeline", "sweep", *GRID]
SWEEP_BASE = "queue -j 2"


def sh(cwd: Path, env: dict[str, str], *args: str) -> str:
    """Run a command of the sweep measurement; -> its stdout. Stops the benchmark with the command's error line."""
    stdout, error = children.run(list(args), cwd=cwd, env=env)
    if error:
        raise SystemExit(f"{' '.join(args)} failed: {error}")
    return stdout


def sweep_state(folder: Path) -> Path:
    """folder/state: work (a clone with the committed run, remotes set and pushed), origin.git, store."""
    state = folder / "state"
    env = dvc_env(folder / "home")
    sh(folder, env, "git", "clone", "-q", str(REPO), str(state / "work"))
    work = state / "work"
    sh(folder, env, "git", "init", "-q", "--bare", "-b", "main", str(state / "origin.git"))
    sh(work, env, "git", "checkout", "-q", "-B", "main")
    sh(work, env, "git", "remote", "set-url", "origin", "../origin.git")
    sh(work, env, str(BIN / "dvc"), "remote", "add", "-d", "store", "../store")  # relative to work/
    sh(work, env, str(BIN / "dvc"), "repro", "-q")
    sh(work, env, "git", "add", "-A")
    sh(work, env, "git", "commit", "-q", "-m", "folder remote")
    sh(work, env, "git", "push", "-q", "origin", "main")
    sh(work, env, str(BIN / "dvc"), "push", "-q")
    return state


def fresh(state: Path, folder: Path) -> tuple[Path, dict[str, str]]:
    """A copy of the state in folder (replacing an earlier one), its DVC remote its own; -> (work, environment)."""
    if folder.exists():
        shutil.rmtree(folder)
    shutil.copytree(state, folder, symlinks=True)
    work, env = folder / "work", dvc_env(folder / "home")
    # a worker's clone resolves a relative remote path from its own folder: the copy's store, absolute
    sh(work, env, str(BIN / "dvc"), "remote", "modify", "store", "url", str(folder / "store"))
    sh(work, env, "git", "commit", "-q", "-am", "this copy's folder remote")
    sh(work, env, "git", "push", "-q", "origin", "main")
    return work, env


def finished(work: Path, env: dict[str, str]) -> list[str]:
    """The experiments' refs (refs/exps/<commit>/<name>), not the queue's own (refs/exps/celery/..., exec/...)."""
    refs = sh(work, env, "git", "for-each-ref", "--format=%(refname)", "refs/exps/").split()
    return [ref for ref in refs if len(ref.split("/")) == 5 and ref.split("/")[2] not in ("celery", "exec")]


def queue(work: Path, env: dict[str, str]) -> None:
    dvc = str(BIN / "dvc")
    sh(work, env, dvc, "exp", "run", "--queue", *GRID)
    sh(work, env, dvc, "queue", "start", "-j", "2")
    deadline = time.monotonic() + 3600
    while len(finished(work, env)) < POINTS:
        if time.monotonic() > deadline:
            raise SystemExit(f"the queue did not finish within an hour: {sh(work, env, dvc, 'queue', 'status')}")
        time.sleep(0.5)
    sh(work, env, sys.executable, "-m", "pipeline", "compare")


def sweep_wall(rounds: int, log=print) -> dict[str, Any]:
    """Seconds of the sweep each way, each round from a fresh copy, the order alternating between rounds; ->
    {"points", "rounds", "rows": timing.summary of the seconds against the queue's}."""
    methods = {
        SWEEP_BASE: queue,
        "sweep, 2 workers": lambda work, env: sh(work, env, *SWEEP, "--workers", "2"),
        "sweep, 1 worker": lambda work, env: sh(work, env, *SWEEP, "--workers", "1"),
    }
    with tempfile.TemporaryDirectory(prefix="sweep-wall-") as tmp:
        state = sweep_state(Path(tmp))

        def measure(name: str, round_: int) -> float:
            work, env = fresh(state, Path(tmp) / "run")
            load = os.getloadavg()[0]
            start = time.perf_counter()
            methods[name](work, env)
            seconds = time.perf_counter() - start
            log(f"round {round_ + 1}: {name:<17} {seconds:6.1f} s  (load before {load:.1f})")
            return seconds

        times = timing.alternating(measure, list(methods), rounds)
    return {"points": POINTS, "rounds": rounds, "rows": timing.summary(times, SWEEP_BASE, seconds=True)}
