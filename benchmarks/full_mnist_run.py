"""One run of the full-MNIST benchmark (benchmarks.full_mnist), in its own process:
`python -m benchmarks.full_mnist_run JOB` trains one preset with one seed, with cnn as the pipeline's train stage
does or with the same recipe in PyTorch (benchmarks.torch_models), one epoch per "go" read from stdin, and scores
the whole test split after every epoch. After each epoch it prints a line of text, a tab and that epoch's record
as JSON; at the end the run's record as JSON. Importing the benchmarks package pins the pipeline's numerics
before numpy loads.
"""

import argparse
import json
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from benchmarks import PARAMS, children, machine, numerics

TARGET = 0.99  # the test accuracy whose time to reach is reported


@dataclass(frozen=True)
class Job:
    impl: str  # "cnn" or "torch"
    preset: str
    seed: int
    max_epochs: int | None
    data: str  # the processed folder (train.npz, test.npz)
    threads: int


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
    parser = argparse.ArgumentParser(prog="python -m benchmarks.full_mnist_run", description=__doc__)
    parser.add_argument("job", help="the Job as JSON")
    job = Job(**json.loads(parser.parse_args(argv).job))
    try:
        record = run(job)
    except Exception as exc:  # one line to the parent, which reports it in the table
        print(f"{type(exc).__name__}: {exc}".splitlines()[0], file=sys.stderr)
        sys.exit(1)
    print(json.dumps(record))


if __name__ == "__main__":
    main()
