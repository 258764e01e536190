"""Optimizers own the update rule: step(layers) applies each layer's grads to its params, in place."""

import math
from collections.abc import Iterable

import numpy as np

from . import blas
from .layers import Layer


class Optimizer:
    """Base: step(layers) calls update(key, param, grad) for every parameter; key names it for state."""

    def __init__(self, learning_rate: float) -> None:
        if not learning_rate > 0:
            raise ValueError(f"learning_rate must be > 0, got {learning_rate}")
        self.learning_rate = float(learning_rate)
        self._state: dict[tuple[int, str], tuple[np.ndarray, ...]] = {}

    def step(self, layers: Iterable[Layer]) -> None:
        self.begin_step()
        for i, layer in enumerate(layers):
            for name, param in layer.params.items():
                self.update((i, name), param, layer.grads[name])

    def begin_step(self) -> None:
        """Called once per step, before the updates (Adam counts its steps here)."""

    def update(self, key: tuple[int, str], param: np.ndarray, grad: np.ndarray) -> None:
        raise NotImplementedError


class SGD(Optimizer):
    """p -= lr * g (the notebook's rule); with momentum m: v = m v - lr g; p += v."""

    def __init__(self, learning_rate: float, momentum: float = 0.0) -> None:
        super().__init__(learning_rate)
        if not 0 <= momentum < 1:
            raise ValueError(f"momentum must be in [0, 1), got {momentum}")
        self.momentum = float(momentum)

    def update(self, key: tuple[int, str], param: np.ndarray, grad: np.ndarray) -> None:
        if self.momentum == 0.0:
            blas.axpy(param, grad, -self.learning_rate)  # p -= lr * g, in one pass
            return
        if key not in self._state:
            self._state[key] = (np.zeros_like(param),)
        (v,) = self._state[key]
        v *= self.momentum
        v -= self.learning_rate * grad
        param += v

    def update_outer(self, param: np.ndarray, g: np.ndarray, x: np.ndarray) -> None:
        """p -= lr * g.T @ x for a gradient given by its factors g (1, P), x (1, Q): a rank-1 update that
        never forms the (P, Q) gradient (plain SGD only; cnn.fast.rank1_sgd_step uses it)."""
        if self.momentum != 0.0:
            raise ValueError("update_outer applies plain SGD; momentum needs the gradient itself")
        blas.ger(param, g, x, -self.learning_rate)


class Adam(Optimizer):
    """Adam (Kingma & Ba 2015) with bias-corrected moments:
    m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g**2;  p -= lr * m_hat / (sqrt(v_hat) + eps),
    m_hat = m / (1 - b1**t), v_hat = v / (1 - b2**t); computed in the equivalent form
    p -= lr_t * m / (sqrt(v) + eps * sqrt(1 - b2**t)) with lr_t = lr * sqrt(1 - b2**t) / (1 - b1**t).

    Every pass runs in place in the parameter's dtype: the state of a parameter is m, v and two scratch
    arrays of its shape, allocated on its first update and reused by every later one.
    """

    def __init__(
        self, learning_rate: float = 0.001, beta1: float = 0.9, beta2: float = 0.999, epsilon: float = 1e-8
    ) -> None:
        super().__init__(learning_rate)
        if not (0 <= beta1 < 1 and 0 <= beta2 < 1 and epsilon > 0):
            raise ValueError(f"need 0 <= beta1, beta2 < 1 and epsilon > 0, got {beta1}, {beta2}, {epsilon}")
        self.beta1, self.beta2, self.epsilon = float(beta1), float(beta2), float(epsilon)
        self.t = 0

    def begin_step(self) -> None:
        self.t += 1

    def update(self, key: tuple[int, str], param: np.ndarray, grad: np.ndarray) -> None:
        if key not in self._state:
            self._state[key] = tuple(np.zeros_like(param) for _ in range(4))
        m, v, a, b = self._state[key]
        m *= self.beta1
        m += np.multiply(grad, 1 - self.beta1, out=a)
        v *= self.beta2
        np.square(grad, out=a)
        v += np.multiply(a, 1 - self.beta2, out=a)
        correction = math.sqrt(1 - self.beta2**self.t)
        step = self.learning_rate * correction / (1 - self.beta1**self.t)
        denominator = np.sqrt(v, out=a)
        denominator += self.epsilon * correction
        param -= np.divide(np.multiply(m, step, out=b), denominator, out=b)


OPTIMIZERS: dict[str, type[Optimizer]] = {"sgd": SGD, "adam": Adam}
