"""Training: the epoch and batch loop behind Sequential.fit, and the choice of step.

A step is forward, backward, update (cnn.step.plain_step). Two faster steps compute the same update and are
tested against it: cnn.fast.rank1_sgd_step (batch 1, plain SGD) and cnn.parallel.SplitStep (batches of
SPLIT_FROM or more, two halves on two threads). `choose_step` picks one from the batch size and optimizer
alone, so a given configuration always runs the same arithmetic.
"""

import functools
import math
from collections.abc import Callable
from typing import Any

import numpy as np

from . import fast
from .errors import TrainingDivergedError
from .losses import Loss
from .optimizers import SGD, Optimizer
from .parallel import SPLIT_FROM, SplitStep
from .step import LossGradient, Network, plain_step
from .threads import blas_threads

Step = Callable[[Network, np.ndarray, np.ndarray, np.ndarray, LossGradient, Optimizer], None]


def choose_step(net: Network, optimizer: Optimizer, batch_size: int) -> Step:
    """The step for this configuration: the rank-1 SGD step at batch 1 with plain SGD, the two-thread
    split from SPLIT_FROM samples on, the plain step otherwise."""
    if batch_size == 1 and isinstance(optimizer, SGD) and optimizer.momentum == 0.0:
        return fast.rank1_sgd_step
    if batch_size >= SPLIT_FROM:
        return SplitStep(net)
    return plain_step


def fit(
    net: Network,
    x: np.ndarray,
    y: np.ndarray,
    loss: Loss,
    optimizer: Optimizer,
    epochs: int,
    batch_size: int = 1,
    shuffle: bool = True,
    seed: int = 0,
    validation_data: tuple[np.ndarray, np.ndarray] | None = None,
    callback: Callable[[dict[str, Any]], None] | None = None,
) -> list[dict[str, Any]]:
    """See Sequential.fit."""
    if batch_size < 1 or epochs < 0:
        raise ValueError(f"need batch_size >= 1 and epochs >= 0, got {batch_size} and {epochs}")
    loss_gradient = LossGradient.for_network(net, loss)
    step_for = functools.cache(lambda rows: choose_step(net, optimizer, rows))
    rng = np.random.default_rng(seed)
    outputs = np.empty(y.shape, dtype=net.dtype)  # the epoch's outputs, for one loss evaluation per epoch
    history = []
    for epoch in range(1, epochs + 1):
        order = rng.permutation(len(x)) if shuffle else np.arange(len(x))
        targets = y[order]
        with blas_threads():
            run_epoch(net, x, order, targets, outputs, loss_gradient, optimizer, batch_size, step_for)
        epoch_loss = loss.value(targets, outputs) if len(x) else 0.0
        if not math.isfinite(epoch_loss):
            raise TrainingDivergedError(
                f"training diverged in epoch {epoch} (loss {epoch_loss}, first in batch "
                f"{first_bad_batch(loss, targets, outputs, batch_size)}); "
                f"lower the learning rate (now {optimizer.learning_rate:g})"
            )
        record: dict[str, Any] = {"epoch": epoch, "loss": epoch_loss}
        if validation_data is not None:
            xv, yv = validation_data
            predicted = net.predict(xv)
            record["val_loss"] = loss.value(yv, predicted)
            record["val_accuracy"] = float(np.mean(predicted.argmax(axis=1) == yv.argmax(axis=1)))
        history.append(record)
        if callback is not None:
            callback(record)
    return history


def run_epoch(
    net: Network,
    x: np.ndarray,
    order: np.ndarray,
    targets: np.ndarray,
    outputs: np.ndarray,
    loss_gradient: LossGradient,
    optimizer: Optimizer,
    batch_size: int,
    step_for: Callable[[int], Step],
) -> None:
    """One pass over x in `order` (targets already in that order), a step per batch; the last batch may be
    smaller and gets the step for its own size (`step_for(rows)`)."""
    for start in range(0, len(x), batch_size):
        rows = order[start : start + batch_size]
        xb = x[rows] if batch_size > 1 else x[rows[0] : rows[0] + 1]  # batch 1: a view, no copy
        step = step_for(len(rows))
        step(
            net, xb, targets[start : start + batch_size], outputs[start : start + batch_size], loss_gradient, optimizer
        )


def first_bad_batch(loss: Loss, targets: np.ndarray, outputs: np.ndarray, batch_size: int) -> int:
    """1-based number of the first batch whose loss is nan or inf (losses are evaluated per epoch)."""
    for start in range(0, len(targets), batch_size):
        if not math.isfinite(loss.value(targets[start : start + batch_size], outputs[start : start + batch_size])):
            return start // batch_size + 1
    return len(targets) // batch_size + 1
