"""python -m benchmarks --full-mnist DIR: every preset (presets/*.yaml) trained on the full MNIST with cnn, as the
pipeline's train stage trains it, and with the same recipe in PyTorch (benchmarks.torch_models.Trainer) on the same
processed arrays and batches, for a few seeds; test accuracy on the whole test split after every epoch.

DIR holds the four MNIST .gz files and their SHA256SUMS. They go through the pipeline's own commands, as for a
user with a local copy: `python -m pipeline download` with data.mirrors = [DIR] and data.sha256 from
DIR/SHA256SUMS, then `preprocess` (all ten digits), into a scratch folder. Each run (preset, seed, cnn or PyTorch)
is a child process (`python -m benchmarks.full_mnist_run JOB`), so its peak resident memory is its own, with
the pipeline's numerics (pinned on import, before numpy); cnn's and PyTorch's runs of a preset and seed run at once
and take turns by epoch (one trains while the other waits), so that both see the same machine. Training seconds
exclude the waiting and the test evaluation after each epoch but include the validation pass a recipe with
validation_fraction > 0 makes (Keras's does both). The time to 99.0% is the training time up to the
end of the first epoch whose test accuracy is >= 99.0%.
"""

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from benchmarks import PARAMS, REPO, children, machine, recipes, report
from benchmarks.full_mnist_run import TARGET, Job, outcome

GOALS = {"lenet5": 0.990, "keras-convnet": 0.991, "pytorch-example": 0.992, "best": 0.995}  # test accuracy to reach
IMPLS = ("cnn", "torch")


# ------------------------------------------------------------------------------------------------- data


def data_params(mnist_dir: Path) -> dict[str, Any]:
    """params.yaml with its data section pointing at the local copy in mnist_dir: all ten digits, all images."""
    from pipeline import sources

    params = yaml.safe_load(PARAMS.read_text())
    params["data"] |= {
        "source": "mnist",
        "mirrors": [str(mnist_dir.resolve())],
        "sha256": sources.sample_checksums(mnist_dir),
        "digits": list(range(10)),
        "limit_per_class": 100_000,
    }
    return params


def prepare(mnist_dir: Path, scratch: Path) -> Path:
    """Download (verify and copy) and preprocess the MNIST in mnist_dir into scratch; -> the processed folder."""
    params_file = scratch / "params.yaml"
    params_file.write_text(yaml.safe_dump(data_params(mnist_dir), sort_keys=False))
    raw, processed = scratch / "raw", scratch / "processed"
    for step in (("download", "--out", str(raw)), ("preprocess", "--raw", str(raw), "--out", str(processed))):
        if error := recipes.pipeline_command(step[0], "--params", str(params_file), *step[1:]):
            raise RuntimeError(error)
    return processed


# ------------------------------------------------------------------------------------------- all runs


class Child:
    """One job in its own process (python -m benchmarks.full_mnist_run JOB), trained one epoch per `turn()`."""

    def __init__(self, job: Job) -> None:
        self.job, self.record, self.history = job, None, []
        self.errors = tempfile.TemporaryFile("w+")
        cmd = [sys.executable, "-m", "benchmarks.full_mnist_run", json.dumps(asdict(job))]
        self.process = subprocess.Popen(
            cmd,
            cwd=REPO,
            env=children.shell_environment(),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.errors,
            text=True,
            start_new_session=True,  # Ctrl-C reaches this process only, which then stops the runs
        )

    def turn(self) -> str | None:
        """Let the child train its next epoch; -> its line for that epoch, or None when it has finished."""
        try:
            self.process.stdin.write("go\n")
            self.process.stdin.flush()
        except BrokenPipeError:  # it has finished (or failed)
            pass
        line = self.process.stdout.readline()
        if line.startswith("epoch "):
            text, _, record = line.rstrip().partition("\t")
            self.history.append(json.loads(record))
            return text
        self.record = self._finish(line)
        return None

    def stop(self) -> None:
        """End the process; the record is the epochs it finished, marked interrupted."""
        self.process.kill()
        self.process.wait()
        self.errors.close()
        self.record = asdict(self.job) | outcome(self.history) | {"epochs": len(self.history), "interrupted": True}

    def _finish(self, line: str) -> dict[str, Any]:
        self.process.stdout.read()
        code = self.process.wait()
        self.errors.seek(0)
        tail = (self.errors.read().strip().splitlines() or [f"exit code {code}"])[-1]
        self.errors.close()
        if code != 0 or not line.strip():
            return asdict(self.job) | {"error": tail if code != 0 else "the run printed no result"}
        return json.loads(line)


def side_by_side(jobs: list[Job], log: Callable[[str], None] = print) -> list[dict[str, Any]]:
    """Train the jobs (cnn and PyTorch, one preset and seed) in their own processes at once, taking turns by epoch
    (who goes first alternates), so that both see the machine as it is during those minutes; -> their records.
    Interrupted (Ctrl-C), the unfinished runs' records hold the epochs they finished, marked "interrupted"."""
    started = [Child(job) for job in jobs]
    running = list(started)
    turn = 0
    try:
        while running:
            first = turn % len(running)
            for child in running[first:] + running[:first]:
                line = child.turn()
                if line is None:
                    running.remove(child)
                else:
                    log(f"    {child.job.impl} {line}")
            turn += 1
    except KeyboardInterrupt:
        for child in running:
            child.stop()
    return [child.record for child in started]


@dataclass(frozen=True)
class Options:
    presets: tuple[str, ...]
    seeds: tuple[int, ...] = (0, 1, 2)
    max_epochs: int | None = None
    threads: int = 2
    torch_seeds: tuple[int, ...] | None = None  # the seeds PyTorch trains too (None: every seed; (): none)


def measure(mnist_dir: Path, opts: Options, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Prepare the data in a scratch folder, then every (preset, seed) with cnn and (for opts.torch_seeds) PyTorch,
    one child each; seed by seed, so that a run cut short has every preset at the first seeds."""
    result: dict[str, Any] = {
        "started": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "mnist_dir": str(mnist_dir),
        "threads": opts.threads,
        "max_epochs": opts.max_epochs,
        "loadavg_start": os.getloadavg(),
        "machine": machine_summary(),
        "runs": [],
    }
    with tempfile.TemporaryDirectory(prefix="full-mnist-") as scratch:
        processed = prepare(mnist_dir, Path(scratch))
        log(f"full MNIST: processed into {processed}")
        for seed, preset in [(seed, preset) for seed in opts.seeds for preset in opts.presets]:
            with_torch = opts.torch_seeds is None or seed in opts.torch_seeds
            impls = IMPLS if with_torch else IMPLS[:1]
            jobs = [Job(impl, preset, seed, opts.max_epochs, str(processed), opts.threads) for impl in impls]
            for record in side_by_side(jobs, log):
                result["runs"].append(record)
                log(f"  {preset} seed {seed} {record['impl']}: " + describe(record))
            if any(record.get("interrupted") for record in result["runs"]):
                result["interrupted"] = True
                break
    result["loadavg_end"] = os.getloadavg()
    result["presets"] = summarize(result["runs"], opts.presets)
    return result


def machine_summary() -> dict[str, Any]:
    """What a figure from this machine must name: CPU, vector units, kernel, numerics, library versions."""
    info = machine.machine_info()
    keys = ("cpu", "vector_units", "kernel", "numerics", "python", "numpy", "scipy", "torch", "usable_cpus", "env")
    return {k: info[k] for k in keys}


def describe(record: dict[str, Any]) -> str:
    if "error" in record:
        return f"error: {record['error']}"
    reached = record["seconds_to_target"]
    at = f"{TARGET:.1%} at {reached:.1f} s (epoch {record['epoch_to_target']})" if reached is not None else "no 99.0%"
    epochs = f"{record['epochs']} epoch" + ("s" if record["epochs"] != 1 else "")
    if record.get("interrupted"):
        if not record["history"]:
            return "interrupted before its first epoch ended"
        return f"interrupted: {record['test_accuracy']:.2%} after {epochs}, {record['train_seconds']:.1f} s, {at}"
    return (
        f"{record['test_accuracy']:.2%} after {epochs}, {record['train_seconds']:.1f} s, {at}, "
        f"peak {record['peak_rss_mib']:.0f} MiB"
    )


def other_load(runs: list[dict[str, Any]]) -> str:
    """The median over runs of the cores other processes used while a run trained, as text."""
    loads = [r["other_cores"] for r in runs if r.get("other_cores") is not None]
    return f"{statistics.median(loads):.2f}" if loads else "-"


def _median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def summarize(runs: list[dict[str, Any]], presets: tuple[str, ...]) -> list[dict[str, Any]]:
    """One row per preset: medians and ranges over seeds per implementation, the speed ratio (median over seeds
    of PyTorch's training time / cnn's, over the epochs both finished) and the times to 99.0% (median over the
    seeds that reached it). Interrupted runs count with the epochs they finished."""
    rows = []
    for preset in presets:
        row: dict[str, Any] = {"preset": preset, "goal": GOALS.get(preset)}
        by_impl = {impl: [r for r in runs if r["preset"] == preset and r["impl"] == impl] for impl in IMPLS}
        errors = [f"{r['impl']} seed {r['seed']}: {r['error']}" for rs in by_impl.values() for r in rs if "error" in r]
        if errors:
            row["errors"] = errors
        if any(r.get("interrupted") for rs in by_impl.values() for r in rs):
            row["interrupted"] = True
        for impl, rs in by_impl.items():
            good = [r for r in rs if "error" not in r and r["history"]]
            accuracies = [r["test_accuracy"] for r in good]
            reached = [r["seconds_to_target"] for r in good if r["seconds_to_target"] is not None]
            row[impl] = {
                "seeds": [r["seed"] for r in good],
                "epochs": good[0]["epochs"] if good else None,
                "accuracy": _median(accuracies),
                "accuracy_min": min(accuracies, default=None),
                "accuracy_max": max(accuracies, default=None),
                "train_seconds": _median([r["train_seconds"] for r in good]),
                "seconds_to_target": _median(reached),
                "reached_target": f"{len(reached)}/{len(good)}",
                "peak_rss_mib": max((r["peak_rss_mib"] for r in good if r.get("peak_rss_mib")), default=None),
            }
        pairs = []  # (PyTorch's seconds, cnn's) over the epochs both runs of a seed finished
        for c in by_impl["cnn"]:
            for t in by_impl["torch"]:
                if c["seed"] == t["seed"] and "error" not in c and "error" not in t:
                    k = min(len(c["history"]), len(t["history"]))
                    if k:
                        pairs.append((t["history"][k - 1]["train_seconds"], c["history"][k - 1]["train_seconds"]))
        row["speed_vs_torch"] = _median([torch_s / cnn_s for torch_s, cnn_s in pairs if cnn_s > 0])
        c99, t99 = row["cnn"]["seconds_to_target"], row["torch"]["seconds_to_target"]
        row["time_to_target_vs_torch"] = c99 / t99 if c99 is not None and t99 else None
        rows.append(row)
    return rows


def _accuracy_cell(stats: dict[str, Any]) -> str | None:
    if stats["accuracy"] is None:
        return None
    low, high = stats["accuracy_min"], stats["accuracy_max"]
    return f"{stats['accuracy']:.2%} ({low:.2%}-{high:.2%})" if len(stats["seeds"]) > 1 else f"{stats['accuracy']:.2%}"


def _seconds(value: float | None) -> str | None:
    return None if value is None else f"{value:,.1f} s"


def _to_target(stats: dict[str, Any]) -> str | None:
    """The median time to the target, with how many seeds reached it when not all did."""
    reached, runs = stats["reached_target"].split("/")
    if runs == "0":
        return None
    if reached == "0":
        return "not reached"
    return _seconds(stats["seconds_to_target"]) + ("" if reached == runs else f" ({reached}/{runs} seeds)")


def _memory(row: dict[str, Any]) -> str | None:
    cells = [row[impl]["peak_rss_mib"] for impl in IMPLS]
    return None if cells == [None, None] else " / ".join("-" if c is None else f"{c:,.0f}" for c in cells) + " MiB"


def table(result: dict[str, Any]) -> str:
    """The per-preset table (Markdown) with a header naming the machine, threads and load."""
    rows = result["presets"]
    frame = pd.DataFrame(
        {
            "preset": [r["preset"] + (" (interrupted)" if r.get("interrupted") else "") for r in rows],
            "epochs": [r["cnn"]["epochs"] or r["torch"]["epochs"] for r in rows],
            "cnn test accuracy (median, range)": [_accuracy_cell(r["cnn"]) for r in rows],
            "goal": [r["goal"] for r in rows],
            "cnn training": [_seconds(r["cnn"]["train_seconds"]) for r in rows],
            "PyTorch test accuracy": [_accuracy_cell(r["torch"]) for r in rows],
            "PyTorch training": [_seconds(r["torch"]["train_seconds"]) for r in rows],
            "speed vs PyTorch": [r["speed_vs_torch"] for r in rows],
            "cnn to 99.0%": [_to_target(r["cnn"]) for r in rows],
            "PyTorch to 99.0%": [_to_target(r["torch"]) for r in rows],
            "peak RSS cnn / PyTorch": [_memory(r) for r in rows],
        }
    )
    formats = {"epochs": "{:.0f}", "goal": "{:.1%}", "speed vs PyTorch": "{:.2f}x"}
    m = result["machine"]
    lines = [
        f"Full MNIST ({result['mnist_dir']}), {result['started']}: {m['cpu']} ({m['vector_units']}), kernel "
        f"{m['kernel']}, numerics {m['numerics']}, numpy {m['numpy']}, torch {m['torch']}; {result['threads']} "
        f"threads (cnn and torch); load average {result['loadavg_start'][0]:.2f} at start, "
        f"{result['loadavg_end'][0]:.2f} at end; other processes used {other_load(result['runs'])} cores during "
        "training (median over runs)",
        report.markdown(frame, formats),
        f"(medians over seeds {', '.join(map(str, sorted({r['seed'] for r in result['runs']})))}; training time "
        "without the per-epoch test evaluation; speed: PyTorch's time / cnn's, median over seeds; to 99.0%: "
        "training time to the end of the first epoch at >= 99.0% test accuracy, median over the seeds that got "
        "there; peak RSS: largest over seeds, each run its own process)",
    ]
    if result.get("interrupted"):
        lines.append("interrupted: a row marked so counts the epochs its runs had finished; later runs did not start")
    for row in rows:
        lines += [f"error: {row['preset']} {e}" for e in row.get("errors", [])]
    return "\n".join(lines)
