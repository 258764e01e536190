"""Element-wise activations (and Softmax over the last axis). Shapes pass through unchanged."""

import numpy as np

from . import kernels
from .layers import Layer


class Activation(Layer):
    """Parameterless layer whose output shape is its input shape (set when connected)."""

    abstract = True
    caches = ("y",)
    keeps_shape = True


class Sigmoid(Activation):
    """y = 1 / (1 + exp(-x)), computed as 0.5 * tanh(x / 2) + 0.5; dy/dx = y * (1 - y).

    The same function, but it never overflows (exp(-x) does for x < -709 in float64, -88 in float32).
    """

    def forward(self, x: np.ndarray) -> np.ndarray:
        y = np.tanh(x * 0.5)
        y *= 0.5
        y += 0.5
        self.y = y
        return y

    def backward(self, output_gradient: np.ndarray) -> np.ndarray | None:
        if not self.needs_input_gradient:
            return None
        dx = 1 - self.y
        dx *= self.y
        dx *= output_gradient
        return dx


class Tanh(Activation):
    """y = tanh(x); dy/dx = 1 - y**2."""

    def forward(self, x: np.ndarray) -> np.ndarray:
        self.y = np.tanh(x)
        return self.y

    def backward(self, output_gradient: np.ndarray) -> np.ndarray | None:
        if not self.needs_input_gradient:
            return None
        return output_gradient * (1 - self.y**2)


class ReLU(Activation):
    """y = max(x, 0); gradient 1 where x > 0, else 0."""

    def __init__(self) -> None:
        super().__init__()
        self._zero = np.zeros(0)  # one sample of zeros, in the input's shape and dtype once forward has run

    def forward(self, x: np.ndarray) -> np.ndarray:
        # max against a zero sample broadcast over the batch, not the scalar 0 (docs/performance.md)
        if self._zero.shape != x.shape[1:] or self._zero.dtype != x.dtype:
            self._zero = np.zeros(x.shape[1:], dtype=x.dtype)
        self.y = np.maximum(x, self._zero)
        return self.y

    def backward(self, output_gradient: np.ndarray) -> np.ndarray | None:
        if not self.needs_input_gradient:
            return None
        if kernels.usable(self.y, output_gradient):
            return kernels.relu_backward(self.y, output_gradient)  # the same bits, in one pass
        return self.backward_numpy(output_gradient)

    def backward_numpy(self, output_gradient: np.ndarray) -> np.ndarray:
        # the mask as 0.0/1.0 in dy's dtype, not a bool array (docs/performance.md)
        return output_gradient * (self.y > 0).astype(output_gradient.dtype)


class Softmax(Activation):
    """y = exp(x - max x) / sum exp(x - max x) over the last axis (the shift avoids overflow).
    backward: dx = y * (dy - sum(dy * y)) over the last axis."""

    def forward(self, x: np.ndarray) -> np.ndarray:
        e = np.exp(x - x.max(axis=-1, keepdims=True))
        e /= e.sum(axis=-1, keepdims=True)
        self.y = e
        return e

    def backward(self, output_gradient: np.ndarray) -> np.ndarray | None:
        if not self.needs_input_gradient:
            return None
        y = self.y
        return y * (output_gradient - (output_gradient * y).sum(axis=-1, keepdims=True))
