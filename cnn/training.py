"""Training: the epoch and batch loop behind Sequential.fit, its options, its resumable state, the choice of step.

A step is forward, backward, update (cnn.step.plain_step). Two faster steps compute the same update and are
tested against it: cnn.fast.rank1_sgd_step (batch 1, plain SGD) and cnn.parallel.SplitStep (batches of
SPLIT_FROM or more, two halves on two threads). `choose_step` picks one from the network's layer kinds, the
batch size and the optimizer alone, so a given configuration always runs the same arithmetic.

Randomness of a run, all from FitOptions.seed: the shuffle np.random.default_rng(seed); each stochastic layer
(Layer.stochastic) np.random.default_rng([seed, 1, index]), index its position in net.layers; the augmentation
np.random.default_rng([seed, 2]). A TrainingState holds what continuing a run needs besides the parameters.
"""

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from . import fast
from .errors import ArchitectureError, TrainingDivergedError
from .losses import Loss
from .optimizers import Optimizer
from .parallel import SPLIT_FROM, SplitStep
from .schedules import Schedule
from .step import LossGradient, Network, plain_step
from .threads import blas_threads

Step = Callable[[Network, np.ndarray, np.ndarray, np.ndarray, LossGradient, Optimizer], None]
AugmentFn = Callable[[np.ndarray, np.random.Generator], np.ndarray]  # batch (N, *input_shape), rng -> same shape


@dataclass(frozen=True)
class TrainingState:
    """Where a run stands after `epoch` epochs and `batch` batches of the next (`step` steps in all): what a
    checkpoint holds besides the parameters.

    optimizer: Optimizer.state_dict(); shuffle_rng: bit_generator.state of the shuffle generator before the
    permutation of epoch `epoch` + 1; augment_rng: the augmentation's generator's state; layer_rngs: {index in
    net.layers: bit_generator.state} of the stochastic layers; history: the finished epochs' records.
    batch: batches of epoch `epoch` + 1 already run (0 at an epoch's end); outputs: (rows, K) the network's
    outputs for those batches' rows in that epoch's order (None when batch is 0), for the epoch's loss.
    """

    epoch: int
    step: int
    optimizer: dict[str, Any]
    shuffle_rng: dict[str, Any]
    augment_rng: dict[str, Any]
    layer_rngs: dict[int, dict[str, Any]] = field(default_factory=dict)
    history: tuple[dict[str, Any], ...] = ()
    batch: int = 0
    outputs: np.ndarray | None = None


@dataclass(frozen=True)
class FitOptions:
    """Everything fit takes besides the data, loss and optimizer.

    epochs: the run's total number of epochs (with `resume`, the epochs after state.epoch are run).
    batch_size: rows per step; the last batch of an epoch may be smaller. shuffle: a new order every epoch.
    seed: seeds every generator of the run (module docstring). validation_data: (x, y) evaluated after each
    epoch in inference mode, never augmented. callback(record): after each epoch.
    schedule(step) -> learning rate, set on the optimizer before each step (step: 0-based, counted over epochs);
    None keeps the optimizer's rate. augment(batch, rng) -> batch: applied to each training batch after its
    rows are gathered. on_epoch_end(state): after each epoch's callback, with the TrainingState to checkpoint.
    on_batch_end(progress): after every step, with a BatchProgress (reused: read it, do not keep it); its
    state() is the TrainingState to checkpoint mid-epoch (it copies the run's state: call it only to save).
    resume: a TrainingState to continue from (the network must hold the parameters saved with it).
    """

    epochs: int
    batch_size: int = 1
    shuffle: bool = True
    seed: int = 0
    validation_data: tuple[np.ndarray, np.ndarray] | None = None
    callback: Callable[[dict[str, Any]], None] | None = None
    schedule: Schedule | None = None
    augment: AugmentFn | None = None
    on_epoch_end: Callable[[TrainingState], None] | None = None
    on_batch_end: Callable[["BatchProgress"], None] | None = None
    resume: TrainingState | None = None

    def __post_init__(self) -> None:
        if self.batch_size < 1 or self.epochs < 0:
            raise ValueError(f"need batch_size >= 1 and epochs >= 0, got {self.batch_size} and {self.epochs}")
        if self.resume is not None and self.resume.epoch + (self.resume.batch > 0) > self.epochs:
            raise ValueError(f"cannot resume after epoch {self.resume.epoch} of a run of {self.epochs} epochs")


def choose_step(net: Network, optimizer: Optimizer, batch_size: int) -> Step:
    """The step for this configuration: the rank-1 step at batch 1 with an optimizer that applies a gradient's
    factors without forming it (Optimizer.factored_update: plain SGD), the two-thread split from SPLIT_FROM
    samples on (batch norm included: cnn.parallel), the plain step otherwise."""
    if batch_size == 1 and optimizer.factored_update:
        return fast.rank1_sgd_step
    if batch_size >= SPLIT_FROM:
        return SplitStep(net)
    return plain_step


@dataclass
class _Run:
    """The mutable parts of a run: its generators, the global step count and epoch_shuffle, the shuffle
    generator's state at the start of the current epoch (before its permutation)."""

    shuffle_rng: np.random.Generator
    augment_rng: np.random.Generator
    step: int = 0
    epoch_shuffle: dict[str, Any] = field(default_factory=dict)

    def state(
        self, net: Network, optimizer: Optimizer, history: list, batch: int = 0, outputs: np.ndarray | None = None
    ) -> TrainingState:
        """After len(history) epochs and `batch` batches of the next, whose outputs are `outputs` (rows, K)
        (batch 0, outputs None: at an epoch's end)."""
        return TrainingState(
            epoch=len(history),
            step=self.step,
            optimizer=optimizer.state_dict(),
            shuffle_rng=self.epoch_shuffle if batch else self.shuffle_rng.bit_generator.state,
            augment_rng=self.augment_rng.bit_generator.state,
            layer_rngs={i: layer.rng.bit_generator.state for i, layer in enumerate(net.layers) if layer.stochastic},
            history=tuple(history),
            batch=batch,
            outputs=None if outputs is None else outputs.copy(),
        )


class BatchProgress:
    """Where fit stands, for on_batch_end: epoch (1-based), batch (batches of it done), batches (in an epoch),
    images (of it done), images_per_epoch; state() the TrainingState to resume right here."""

    __slots__ = ("_state", "batch", "batch_size", "batches", "epoch", "images_per_epoch")

    def __init__(self, images_per_epoch: int, batch_size: int, state: Callable[[], TrainingState]):
        self.epoch, self.batch = 0, 0
        self.images_per_epoch, self.batch_size = images_per_epoch, batch_size
        self.batches = math.ceil(images_per_epoch / batch_size)
        self._state = state

    @property
    def images(self) -> int:
        return min(self.batch * self.batch_size, self.images_per_epoch)

    def state(self) -> TrainingState:
        return self._state()


def start_run(
    net: Network, optimizer: Optimizer, options: FitOptions, rows: int
) -> tuple[_Run, int, list[dict[str, Any]]]:
    """Refuse a run of `rows` training rows that cannot finish (refuse_one_row_batches); seed (or restore) the
    run's generators, the stochastic layers' and the optimizer's state: (run, first epoch, history so far)."""
    first_epoch = 1 if options.resume is None else options.resume.epoch + 1
    if first_epoch <= options.epochs:
        refuse_one_row_batches(net, rows, options.batch_size)
    seed = options.seed
    run = _Run(np.random.default_rng(seed), np.random.default_rng([seed, 2]))
    for i, layer in enumerate(net.layers):
        if layer.stochastic:
            layer.rng = np.random.default_rng([seed, 1, i])
    state = options.resume
    if state is None:
        return run, first_epoch, []
    optimizer.load_state_dict(state.optimizer)
    run.shuffle_rng.bit_generator.state = state.shuffle_rng
    run.augment_rng.bit_generator.state = state.augment_rng
    for i, layer_state in state.layer_rngs.items():
        net.layers[int(i)].rng.bit_generator.state = layer_state
    run.step = state.step
    return run, first_epoch, list(state.history)


def refuse_one_row_batches(net: Network, rows: int, batch_size: int) -> None:
    """ArchitectureError, before any step, when an epoch of `rows` rows in batches of `batch_size` has a batch of
    one row and a layer couples the samples of a batch over flat features (batch norm over dense features: one
    row has no variance), naming the nearest batch_size that leaves no such batch."""
    if rows == 0 or (rows % batch_size or batch_size) != 1:
        return
    coupled = [
        f"{type(layer).__name__} (layers[{i}])"
        for i, layer in enumerate(net.layers)
        if layer.couples_batch and layer.input_shape is not None and len(layer.input_shape) == 1
    ]
    if not coupled:
        return
    why = "batch_size 1" if batch_size == 1 else f"{rows} rows in batches of {batch_size} leave a last batch of 1"
    if rows == 1:
        fix = "train on more than one row"
    else:
        nearest = min((b for b in range(2, rows + 1) if rows % b != 1), key=lambda b: (abs(b - batch_size), b))
        fix = f"choose a batch_size that leaves none, e.g. {nearest}"
    raise ArchitectureError(
        f"{', '.join(coupled)} normalises dense features over a batch and cannot train on a batch of one row "
        f"({why}); {fix}"
    )


def resumed_outputs(state: TrainingState | None, outputs: np.ndarray, batch_size: int) -> int:
    """Put a mid-epoch state's outputs at the head of `outputs`; the batch to continue from (0: none)."""
    if state is None or state.batch == 0:
        return 0
    rows = min(state.batch * batch_size, len(outputs))
    if state.batch > math.ceil(len(outputs) / batch_size):
        raise ValueError(f"a state after batch {state.batch} of an epoch of {math.ceil(len(outputs) / batch_size)}")
    if state.outputs is None or np.shape(state.outputs) != (rows, *outputs.shape[1:]):
        shape = None if state.outputs is None else np.shape(state.outputs)
        raise ValueError(f"a state after batch {state.batch} needs outputs of {rows} rows, got {shape}")
    outputs[:rows] = state.outputs
    return state.batch


def fit(
    net: Network, x: np.ndarray, y: np.ndarray, loss: Loss, optimizer: Optimizer, options: FitOptions
) -> list[dict[str, Any]]:
    """See Sequential.fit (which checks x and y); returns the history, with a resumed run's earlier epochs."""
    loss_gradient = LossGradient.for_network(net, loss)
    step_for = functools.cache(lambda rows: choose_step(net, optimizer, rows))
    run, first_epoch, history = start_run(net, optimizer, options, len(x))
    outputs = np.empty(y.shape, dtype=net.dtype)  # the epoch's outputs, for one loss evaluation per epoch
    first_batch = resumed_outputs(options.resume, outputs, options.batch_size)
    progress = BatchProgress(
        len(x),
        options.batch_size,
        lambda: run.state(net, optimizer, history, progress.batch, outputs[: progress.images]),
    )
    try:
        for epoch in range(first_epoch, options.epochs + 1):
            run.epoch_shuffle = run.shuffle_rng.bit_generator.state
            progress.epoch, progress.batch = epoch, first_batch
            order = run.shuffle_rng.permutation(len(x)) if options.shuffle else np.arange(len(x))
            targets = y[order]
            net.set_training(True)
            with blas_threads():
                run_epoch(net, x, order, targets, outputs, loss_gradient, optimizer, options, step_for, run, progress)
            first_batch = 0
            net.set_training(False)
            epoch_loss = loss.value(targets, outputs) if len(x) else 0.0
            if not math.isfinite(epoch_loss):
                raise TrainingDivergedError(
                    f"training diverged in epoch {epoch} (loss {epoch_loss}, first in batch "
                    f"{first_bad_batch(loss, targets, outputs, options.batch_size)}); "
                    f"lower the learning rate (now {optimizer.learning_rate:g})"
                )
            record: dict[str, Any] = {"epoch": epoch, "loss": epoch_loss, "accuracy": accuracy(targets, outputs)}
            if options.validation_data is not None:
                xv, yv = options.validation_data
                predicted = net.predict(xv)
                record["val_loss"] = loss.value(yv, predicted)
                record["val_accuracy"] = accuracy(yv, predicted)
            history.append(record)
            if options.callback is not None:
                options.callback(record)
            if options.on_epoch_end is not None:
                options.on_epoch_end(run.state(net, optimizer, history))
    finally:
        net.set_training(False)
    return history


def run_epoch(
    net: Network,
    x: np.ndarray,
    order: np.ndarray,
    targets: np.ndarray,
    outputs: np.ndarray,
    loss_gradient: LossGradient,
    optimizer: Optimizer,
    options: FitOptions,
    step_for: Callable[[int], Step],
    run: _Run,
    progress: BatchProgress,
) -> None:
    """One pass over x in `order` (targets already in that order) from batch progress.batch, a step per batch;
    the last batch may be smaller and gets the step for its own size (`step_for(rows)`). After each step,
    progress.batch counts it and options.on_batch_end, if set, is called with progress."""
    batch_size, schedule, augment = options.batch_size, options.schedule, options.augment
    on_batch_end = options.on_batch_end
    for start in range(progress.batch * batch_size, len(x), batch_size):
        rows = order[start : start + batch_size]
        xb = x[rows] if batch_size > 1 else x[rows[0] : rows[0] + 1]  # batch 1: a view, no copy
        if augment is not None:
            xb = np.asarray(augment(xb, run.augment_rng), dtype=net.dtype)
        if schedule is not None:
            optimizer.learning_rate = float(schedule(run.step))
        step = step_for(len(rows))
        step(
            net, xb, targets[start : start + batch_size], outputs[start : start + batch_size], loss_gradient, optimizer
        )
        run.step += 1
        progress.batch += 1
        if on_batch_end is not None:
            on_batch_end(progress)


def accuracy(targets: np.ndarray, outputs: np.ndarray) -> float:
    """Share of rows (N, K) whose highest output is the target's (0.0 for no rows)."""
    return float(np.mean(outputs.argmax(axis=1) == targets.argmax(axis=1))) if len(targets) else 0.0


def first_bad_batch(loss: Loss, targets: np.ndarray, outputs: np.ndarray, batch_size: int) -> int:
    """1-based number of the first batch whose loss is nan or inf (losses are evaluated per epoch)."""
    for start in range(0, len(targets), batch_size):
        if not math.isfinite(loss.value(targets[start : start + batch_size], outputs[start : start + batch_size])):
            return start // batch_size + 1
    return len(targets) // batch_size + 1
