"""python -m benchmarks --full-mnist DIR: every preset (presets/*.yaml) trained on the full MNIST with cnn, as the
pipeline's train stage trains it, and with the same recipe in PyTorch (benchmarks.torch_models.Trainer) on the same
processed arrays and batches, for a few seeds; test accuracy on the whole test split after every epoch.

DIR holds the four MNIST .gz files and their SHA256SUMS. They go through the pipeline's own commands, as for a
user with a local copy: `python -m pipeline download` with data.mirrors = [DIR] and data.sha256 from
DIR/SHA256SUMS, then `preprocess` (all ten digits), into a scratch folder. Each run (preset, seed, cnn or PyTorch)
is a child process, `python -m benchmarks.full_mnist run JOB` (the second half of this module), so its peak
resident memory is its own, with the pipeline's numerics (pinned on import, before numpy); cnn's and PyTorch's
runs of a preset and seed run at once and take turns by epoch (one trains while the other waits), so that both see
the same machine: a run trains one epoch per "go" read from stdin, then prints a line of text, a tab and that
epoch's record as JSON; at the end the run's record as JSON. Training seconds exclude the waiting and the test
evaluation after each epoch but include the validation pass a recipe with validation_fraction > 0 makes (Keras's
does both). The time to 99.0% is the training time up to the end of the first epoch whose test accuracy is
>= 99.0%. benchmarks.report.full_mnist prints the table.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from benchmarks import PARAMS, REPO, children, machine, numerics

GOALS = {"lenet5": 0.990, "keras-convnet": 0.991, "pytorch-example": 0.992, "best": 0.995}  # test accuracy to reach
IMPLS = ("cnn", "torch")
TARGET = 0.99  # the test accuracy whose time to reach is reported
# what a figure from this machine must name: CPU, vector units, kernel, numerics, library versions
MACHINE_KEYS = ("cpu", "vector_units", "kernel", "numerics", "python", "numpy", "scipy", "torch", "usable_cpus", "env")


@dataclass(frozen=True)
class Job:
    impl: str  # "cnn" or "torch"
    preset: str
    seed: int
    max_epochs: int | None
    data: str  # the processed folder (train.npz, test.npz)
    threads: int


# ------------------------------------------------------------------------------ the driver: data, turns, summary


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
        if error := children.pipeline_command(step[0], "--params", str(params_file), *step[1:]):
            raise RuntimeError(error)
    return processed


class Child:
    """One job in its own process (python -m benchmarks.full_mnist run JOB), trained one epoch per `turn()`."""

    def __init__(self, job: Job) -> None:
        self.job, self.record, self.history = job, None, []
        self.errors = tempfile.TemporaryFile("w+")
        cmd = [sys.executable, "-m", "benchmarks.full_mnist", "run", json.dumps(asdict(job))]
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
        tail = children.error_line(self.errors.read(), code)
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
        "machine": {k: v for k, v in machine.machine_info().items() if k in MACHINE_KEYS},
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


def combine(results: list[dict[str, Any]]) -> dict[str, Any]:
    """Earlier results of measure(), oldest first, as one: a later result's run of the same preset, seed and
    implementation replaces an earlier one's (e.g. a preset measured again after a change). They must come from one
    machine (the same machine summary) and thread count; raises ValueError naming the first that differs. "started"
    stays the first result's, "last_started" is when the last one's measurements began."""
    first = results[0]
    for key in ("machine", "threads"):
        for result in results[1:]:
            if result[key] != first[key]:
                raise ValueError(
                    f"the results differ in {key}: {result[key]!r} vs {first[key]!r}; combine one machine's"
                )
    runs: dict[tuple[str, int, str], dict[str, Any]] = {}
    for result in results:
        runs |= {(r["preset"], r["seed"], r["impl"]): r for r in result["runs"]}
    from pipeline import presets

    measured = {preset for preset, _, _ in runs}
    names = [name for name in presets.names() if name in measured] + sorted(measured - set(presets.names()))
    combined = first | {
        "last_started": results[-1].get("last_started", results[-1]["started"]),
        "loadavg_end": results[-1]["loadavg_end"],
        "runs": sorted(runs.values(), key=lambda r: (r["seed"], names.index(r["preset"]), IMPLS.index(r["impl"]))),
        "combined_from": len(results),
    }
    combined["interrupted"] = any(r.get("interrupted") for r in combined["runs"])
    combined["presets"] = summarize(combined["runs"], tuple(names))
    return combined


def describe(record: dict[str, Any]) -> str:
    """A run's record as one line of the log."""
    if "error" in record:
        return f"error: {record['error']}"
    if not record["history"]:
        return "interrupted before its first epoch ended"
    reached = record["seconds_to_target"]
    at = f"{TARGET:.1%} at {reached:.1f} s (epoch {record['epoch_to_target']})" if reached is not None else "no 99.0%"
    epochs = f"{record['epochs']} epoch" + ("s" if record["epochs"] != 1 else "")
    text = f"{record['test_accuracy']:.2%} after {epochs}, {record['train_seconds']:.1f} s, {at}"
    return f"interrupted: {text}" if record.get("interrupted") else f"{text}, peak {record['peak_rss_mib']:.0f} MiB"


def _median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def summarize(runs: list[dict[str, Any]], presets: tuple[str, ...]) -> list[dict[str, Any]]:
    """One row per preset: per implementation, the test accuracy's median and range over all its seeds, and the
    times (training time, time to 99.0% over the seeds that reached it) as medians over the timed seeds: those
    both implementations trained, side by side, or every seed where none was; the speed ratio (median over those
    seeds of PyTorch's training time / cnn's, over the epochs both finished). Interrupted runs count with the
    epochs they finished."""
    rows = []
    for preset in presets:
        row: dict[str, Any] = {"preset": preset, "goal": GOALS.get(preset)}
        by_impl = {impl: [r for r in runs if r["preset"] == preset and r["impl"] == impl] for impl in IMPLS}
        errors = [f"{r['impl']} seed {r['seed']}: {r['error']}" for rs in by_impl.values() for r in rs if "error" in r]
        if errors:
            row["errors"] = errors
        if any(r.get("interrupted") for rs in by_impl.values() for r in rs):
            row["interrupted"] = True
        good = {impl: [r for r in rs if "error" not in r and r["history"]] for impl, rs in by_impl.items()}
        paired = {r["seed"] for r in good["cnn"]} & {r["seed"] for r in good["torch"]}
        for impl, rs in good.items():
            timed = [r for r in rs if r["seed"] in paired] or rs
            accuracies = [r["test_accuracy"] for r in rs]
            reached = [r["seconds_to_target"] for r in timed if r["seconds_to_target"] is not None]
            row[impl] = {
                "seeds": [r["seed"] for r in rs],
                "timed_seeds": [r["seed"] for r in timed],
                "epochs": rs[0]["epochs"] if rs else None,
                "accuracy": _median(accuracies),
                "accuracy_min": min(accuracies, default=None),
                "accuracy_max": max(accuracies, default=None),
                "train_seconds": _median([r["train_seconds"] for r in timed]),
                "seconds_to_target": _median(reached),
                "reached_target": f"{len(reached)}/{len(timed)}",
                "peak_rss_mib": max((r["peak_rss_mib"] for r in rs if r.get("peak_rss_mib")), default=None),
                "other_cores": _median([r["other_cores"] for r in timed if r.get("other_cores") is not None]),
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


# -------------------------------------------------------------------------------- one run, in its own process


@dataclass
class Setup:
    """What both implementations train from: the pipeline's params, splits, network, loss, optimizer and options."""

    params: Any  # pipeline.params.TrainParams
    train: Any  # pipeline.dataset.Split
    val: Any  # Split or None
    test: Any  # Split
    net: Any  # cnn.Sequential, initialised as the train stage does
    loss: Any  # cnn.Loss
    optimizer: Any  # cnn.Optimizer
    options: Any  # cnn.FitOptions: epochs, batch size, seed, validation data, schedule, augmentation


def setup(job: Job) -> Setup:
    """The train stage's view of the recipe: params.yaml with train.preset = job.preset and train.seed = job.seed,
    checked by pipeline.params (at most job.max_epochs epochs); the training images less the held-out share
    (pipeline.train.hold_out), the network (build_network) and what fit takes besides the data (fit_arguments)."""
    from pipeline import dataset, params
    from pipeline import train as stage

    train_section = yaml.safe_load(PARAMS.read_text())["train"] | {"preset": job.preset, "seed": job.seed}
    checked = params.check_section(PARAMS, "train", {"train": train_section})
    if job.max_epochs is not None:
        checked = replace(checked, epochs=min(checked.epochs, job.max_epochs))
    split = dataset.load(Path(job.data) / "train.npz")
    train, val = stage.hold_out(split, checked.validation_fraction)
    test = dataset.load(Path(job.data) / "test.npz", classes=split.classes.tolist())
    net = stage.build_network(checked, split.images.shape[1:], split.classes.tolist())
    return Setup(checked, train, val, test, net, *stage.fit_arguments(checked, train, val, len(split.classes)))


def accuracy(outputs: np.ndarray, split: Any) -> float:
    """Share of the split's images whose highest output is their class (the evaluate stage's accuracy)."""
    return float(np.mean(outputs.argmax(axis=1) == split.class_index))


class Clock:
    """Training time and load: `lap()` at an epoch's end gives the training seconds so far, leaving out what ran
    through `exclude(work)` (the test evaluation, the other implementation's turn); `load()` gives the cores this
    process and other processes used while it trained (machine.LoadMeter over the training spans only)."""

    def __init__(self) -> None:
        self.start = time.perf_counter()
        self.excluded = 0.0
        self.spans: list[tuple[float, float, float | None]] = []  # (seconds, own cores, other cores)
        self._open()

    def _open(self) -> None:
        self._meter, self._since = machine.LoadMeter().__enter__(), time.perf_counter()

    def _close(self) -> None:
        self._meter.__exit__(None, None, None)
        self.spans.append((time.perf_counter() - self._since, self._meter.own_cores, self._meter.other_cores))

    def lap(self) -> float:
        return time.perf_counter() - self.start - self.excluded

    def exclude(self, work: Callable[[], Any]) -> Any:
        self._close()
        begin = time.perf_counter()
        try:
            return work()
        finally:
            self.excluded += time.perf_counter() - begin
            self._open()

    def load(self) -> dict[str, float | None]:
        """{"own_cores", "other_cores"}: means over the training spans so far, weighted by their length."""
        self._close()
        self._open()
        wall = sum(s for s, _, _ in self.spans)
        known = [(s, other) for s, _, other in self.spans if other is not None]
        return {
            "own_cores": sum(s * own for s, own, _ in self.spans) / wall if wall > 0 else None,
            "other_cores": sum(s * o for s, o in known) / sum(s for s, _ in known) if known and wall > 0 else None,
        }


def run_cnn(s: Setup, on_epoch: Callable[[dict], None]) -> None:
    """Train s.net as pipeline.train does: fit with the train stage's loss, optimizer and options."""
    import cnn

    options = replace(s.options, callback=lambda record: on_epoch({"loss": record["loss"]}))
    s.net.fit(s.train.images, cnn.one_hot(s.train.class_index, len(s.train.classes)), s.loss, s.optimizer, options)


def run_torch(s: Setup, threads: int, on_epoch: Callable[[dict], None], predict: list) -> None:
    """Train the recipe in PyTorch on the same batches; predict[0] becomes its predict."""
    import torch

    from benchmarks import torch_models

    torch.set_num_threads(threads)
    p = s.params
    model = torch_models.twin(s.net, p.loss)
    optimizer, decay = torch_models.make_optimizer(
        p.optimizer, list(model.parameters()), p.learning_rate, p.momentum, p.nesterov, p.weight_decay
    )
    schedule, augment = s.options.schedule, s.options.augment
    trainer = torch_models.Trainer(model, optimizer, p.loss, p.batch_size, p.seed, schedule, augment, decay)
    predict[0] = trainer.predict
    x = s.train.images.astype(p.dtype, copy=False)
    xv = s.val.images.astype(p.dtype, copy=False) if s.val is not None else None
    for _ in range(p.epochs):
        loss = trainer.epoch(x, s.train.class_index, len(s.train.classes))
        if xv is not None:
            trainer.predict(xv)  # the validation pass cnn's fit makes, inside the training time as there
        on_epoch({"loss": loss})


def run(job: Job) -> dict[str, Any]:
    """Train one job and score the test split after every epoch; -> its record (see the module docstring)."""
    from cnn import threads

    threads.set_num_threads(job.threads)
    if job.impl == "torch":
        import torch  # noqa: F401  (before the clock starts: importing is not training)
    s = setup(job)
    test_x = s.test.images.astype(s.params.dtype, copy=False)
    epochs: list[dict[str, Any]] = []
    predict: list[Callable[[np.ndarray], np.ndarray]] = [s.net.predict]

    def on_epoch(record: dict) -> None:
        seconds = clock.lap()
        score = clock.exclude(lambda: accuracy(predict[0](test_x), s.test))
        epochs.append({"epoch": len(epochs) + 1, "train_seconds": seconds, "test_accuracy": score} | record)
        text = f"epoch {len(epochs)}/{s.params.epochs}: test {score:.2%}, {seconds:.1f} s"
        print(text + "\t" + json.dumps(epochs[-1]), flush=True)  # the parent logs the text, keeps the record
        if len(epochs) < s.params.epochs:
            clock.exclude(wait_turn)  # the other implementation's turn

    clock = Clock()
    clock.exclude(wait_turn)
    if job.impl == "cnn":
        run_cnn(s, on_epoch)
    else:
        run_torch(s, job.threads, on_epoch, predict)
    return (
        asdict(job)
        | outcome(epochs)
        | {
            "epochs": s.params.epochs,
            "train_images": len(s.train.labels),
            "test_images": len(s.test.labels),
            "peak_rss_mib": children.peak_rss_mib(),
            "numerics": numerics.CURRENT.mode,
        }
        | clock.load()
    )


def wait_turn() -> None:
    """Block until the parent says "go"; end this process when the parent has gone."""
    if not sys.stdin.readline():
        raise SystemExit("the benchmark that started this run has ended")


def outcome(history: list[dict[str, Any]]) -> dict[str, Any]:
    """What a run's epoch records (epoch, train_seconds, test_accuracy) come to: the last epoch's time and
    accuracy, and the first epoch at TARGET."""
    reached = next((e for e in history if e["test_accuracy"] >= TARGET), None)
    return {
        "train_seconds": history[-1]["train_seconds"] if history else 0.0,
        "test_accuracy": history[-1]["test_accuracy"] if history else None,
        "seconds_to_target": reached["train_seconds"] if reached else None,
        "epoch_to_target": reached["epoch"] if reached else None,
        "history": history,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.full_mnist", description=__doc__)
    sub = parser.add_subparsers(dest="kind", required=True)
    sub.add_parser("run", help="train one job, epoch by epoch as the driver says").add_argument(
        "job", help="a Job as JSON"
    )
    job = Job(**json.loads(parser.parse_args(argv).job))
    try:
        record = run(job)
    except Exception as exc:  # one line to the parent, which reports it in the table
        print(f"{type(exc).__name__}: {exc}".splitlines()[0], file=sys.stderr)
        sys.exit(1)
    print(json.dumps(record))


if __name__ == "__main__":
    main()
