"""Recipes: named changes to params.yaml, trained and scored by the pipeline's own commands (`python -m pipeline
preprocess`, `train`, `evaluate`, each a child process, in a scratch folder), so that an accuracy the benchmark
reports is the one `dvc repro` gives for the same params: the same code, numerics (pinned by each command as it
starts) and data. Each run's row: test accuracy and loss (metrics.json), training seconds
(reports/train/timing.json) and numerics mode (reports/train/platform.json), per seed."""

import json
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from benchmarks import PARAMS, REPO, children, networks


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


def pipeline_command(command: str, *args: str) -> str | None:
    """Run one pipeline command as `dvc repro` would; -> None, or its error line."""
    cmd = [sys.executable, "-m", "pipeline", command, *args]
    done = subprocess.run(cmd, cwd=REPO, env=children.shell_environment(), capture_output=True, text=True, check=False)
    if done.returncode == 0:
        return None
    return f"{command}: " + (done.stderr.strip().splitlines() or [f"exit code {done.returncode}"])[-1]


def run(recipe: Recipe, seeds: tuple[int, ...], raw_dir: Path = networks.SAMPLE_DIR, log=print) -> dict:
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
                if error := pipeline_command(*step):
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
