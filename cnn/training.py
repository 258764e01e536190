"""Training: the epoch and batch loop behind Sequential.fit.

One step is forward, backward, update:

    outputs = net.forward(x)
    net.backward(dLoss/d outputs)          # fills every layer's grads
    optimizer.step(net.param_layers)       # applies them

`plain_step` is exactly that. Two faster steps compute the same update and are tested against it:
cnn.fast.rank1_sgd_step (batch 1, plain SGD) and cnn.parallel.SplitStep (batches of SPLIT_FROM or more,
two halves on two threads). `choose_step` picks one from the batch size and optimizer alone, so a given
configuration always runs the same arithmetic.
"""

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from . import fast
from .activations import Sigmoid, Softmax
from .errors import TrainingDivergedError
from .losses import BinaryCrossEntropy, CategoricalCrossEntropy, Loss
from .optimizers import SGD, Optimizer
from .parallel import SPLIT_FROM, SplitStep
from .threads import blas_threads

if TYPE_CHECKING:
    from .network import Sequential

Step = Callable[["Sequential", np.ndarray, np.ndarray, np.ndarray, "LossGradient", Optimizer], None]


@dataclass(frozen=True)
class LossGradient:
    """Where backward starts, and with which gradient, for the mean loss of a batch of `batch_rows` rows.

    A sigmoid output with binary cross-entropy, or a softmax output with categorical cross-entropy, has
    the simple gradient dLoss/dz = (a - y) / n with respect to z, the input of that last activation
    (n = rows * K for BCE's mean over every element, n = rows for CCE's mean over samples). It is exact
    and stays finite where a saturates to 0 or 1, so backward then starts below the activation
    (`logits_divisor` K or 1). Otherwise it starts at the last layer with loss.gradient.
    """

    loss: Loss
    logits_divisor: int | None

    @classmethod
    def for_network(cls, net: "Sequential", loss: Loss) -> "LossGradient":
        last = net.layers[-1] if len(net.layers) >= 2 else None
        if isinstance(last, Sigmoid) and isinstance(loss, BinaryCrossEntropy):
            return cls(loss, math.prod(net.output_shape))
        if isinstance(last, Softmax) and isinstance(loss, CategoricalCrossEntropy):
            return cls(loss, 1)
        return cls(loss, None)

    def start(self, net: "Sequential", outputs: np.ndarray, y: np.ndarray, batch_rows: int) -> tuple[np.ndarray, int]:
        """(gradient, index of the layer backward starts at) for outputs/targets (n, K), n rows of a batch
        of batch_rows (n < batch_rows for one half of a split batch)."""
        if self.logits_divisor is not None:
            return (outputs - y) / (batch_rows * self.logits_divisor), len(net.layers) - 2
        grad = self.loss.gradient(y, outputs)  # normalised by this part's rows
        if len(y) != batch_rows:
            grad *= len(y) / batch_rows
        return grad, len(net.layers) - 1

    def backward(self, net: "Sequential", outputs: np.ndarray, y: np.ndarray, batch_rows: int) -> None:
        net.backward(*self.start(net, outputs, y, batch_rows))


def plain_step(
    net: "Sequential",
    x: np.ndarray,
    y: np.ndarray,
    outputs: np.ndarray,
    loss_gradient: LossGradient,
    optimizer: Optimizer,
) -> None:
    """Forward x (N, ...), keep the outputs (N, K) in `outputs`, backward, update."""
    outputs[...] = net.forward(x)
    loss_gradient.backward(net, outputs, y, len(x))
    optimizer.step(net.param_layers)


def choose_step(net: "Sequential", optimizer: Optimizer, batch_size: int) -> Step:
    """The step for this configuration: the rank-1 SGD step at batch 1 with plain SGD, the two-thread
    split from SPLIT_FROM samples on, the plain step otherwise."""
    if batch_size == 1 and isinstance(optimizer, SGD) and optimizer.momentum == 0.0:
        return fast.rank1_sgd_step
    if batch_size >= SPLIT_FROM:
        return SplitStep(net)
    return plain_step


def fit(
    net: "Sequential",
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
        with blas_threads(batch_size):
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
            record["val_loss"] = loss.value(validation_data[1], net.predict(validation_data[0]))
        history.append(record)
        if callback is not None:
            callback(record)
    return history


def run_epoch(
    net: "Sequential",
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
