"""One training step, the plain way: forward, backward, update.

    outputs = net.forward(x)
    net.backward(dLoss/d outputs)          # fills every layer's grads
    optimizer.step(net.param_layers)       # applies them

`plain_step` is exactly that; `LossGradient` says where backward starts and with which gradient. The fast
steps (cnn.fast.rank1_sgd_step, cnn.parallel.SplitStep) compute the same update and are tested against it.
"""

import math
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from .activations import Sigmoid, Softmax
from .layers import Layer
from .losses import BinaryCrossEntropy, CategoricalCrossEntropy, Loss
from .optimizers import Optimizer


class Network(Protocol):
    """What a step and the training loop (cnn.training.fit) need of a network (cnn.Sequential is one)."""

    layers: list[Layer]
    output_shape: tuple[int, ...]
    dtype: np.dtype

    @property
    def param_layers(self) -> list[Layer]: ...

    def forward(self, x: np.ndarray) -> np.ndarray: ...

    def backward(self, output_gradient: np.ndarray, start: int | None = None) -> None: ...

    def replica(self) -> "Network": ...

    def predict(self, x: np.ndarray, batch_size: int = 256) -> np.ndarray: ...

    def set_training(self, flag: bool) -> None: ...


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
    def for_network(cls, net: Network, loss: Loss) -> "LossGradient":
        last = net.layers[-1] if len(net.layers) >= 2 else None
        if isinstance(last, Sigmoid) and isinstance(loss, BinaryCrossEntropy):
            return cls(loss, math.prod(net.output_shape))
        if isinstance(last, Softmax) and isinstance(loss, CategoricalCrossEntropy):
            return cls(loss, 1)
        return cls(loss, None)

    def start(self, net: Network, outputs: np.ndarray, y: np.ndarray, batch_rows: int) -> tuple[np.ndarray, int]:
        """(gradient, index of the layer backward starts at) for outputs/targets (n, K), n rows of a batch
        of batch_rows (n < batch_rows for one half of a split batch)."""
        if self.logits_divisor is not None:
            return (outputs - y) / (batch_rows * self.logits_divisor), len(net.layers) - 2
        grad = self.loss.gradient(y, outputs)  # normalised by this part's rows
        if len(y) != batch_rows:
            grad *= len(y) / batch_rows
        return grad, len(net.layers) - 1

    def backward(self, net: Network, outputs: np.ndarray, y: np.ndarray, batch_rows: int) -> None:
        net.backward(*self.start(net, outputs, y, batch_rows))


def plain_step(
    net: Network,
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
