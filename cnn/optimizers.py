"""Optimizers own the update rule: step(layers) applies each layer's grads to its params in place."""

from collections.abc import Iterable

import numpy as np
from scipy.linalg import blas

from .layers import Layer

_scipy_blas_limited = False


def _limit_scipy_blas_threads() -> None:
    """Give scipy's own OpenBLAS (not numpy's) one thread, once per process.

    scipy wheels carry a second OpenBLAS with its own pool; on 2 cores its spinning threads starve
    numpy's next matrix product (measured: the training step became 3-5x slower).
    """
    global _scipy_blas_limited
    _scipy_blas_limited = True
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:  # pragma: no cover - threadpoolctl is a declared dependency
        return
    for lib in ThreadpoolController().lib_controllers:
        if "scipy.libs" in lib.filepath or "scipy/.dylibs" in lib.filepath:
            lib.set_num_threads(1)


def axpy(param: np.ndarray, grad: np.ndarray, a: float) -> None:
    """param += a * grad in place, in one pass (BLAS axpy) when both are contiguous and alike.

    The numpy form writes a temporary the size of the weights and reads it back: 2-4x slower at batch 1,
    where the update of Dense(3380, 100) is a large part of the step.
    """
    if param.dtype == grad.dtype and param.flags.c_contiguous and grad.flags.c_contiguous:
        if not _scipy_blas_limited:
            _limit_scipy_blas_threads()
        if param.dtype == np.float64:
            blas.daxpy(grad.reshape(-1), param.reshape(-1), a=a)
            return
        if param.dtype == np.float32:
            blas.saxpy(grad.reshape(-1), param.reshape(-1), a=a)
            return
    param += a * grad


class Optimizer:
    def __init__(self, learning_rate: float) -> None:
        if not learning_rate > 0:
            raise ValueError(f"learning_rate must be > 0, got {learning_rate}")
        self.learning_rate = float(learning_rate)
        self._state: dict[tuple[int, str], tuple[np.ndarray, ...]] = {}

    def step(self, layers: Iterable[Layer]) -> None:
        for i, layer in enumerate(layers):
            for name, param in layer.params.items():
                self._update((i, name), param, layer.grads[name])

    def _update(self, key: tuple[int, str], param: np.ndarray, grad: np.ndarray) -> None:
        raise NotImplementedError


class SGD(Optimizer):
    """p -= lr * g (the notebook's rule); with momentum m: v = m v - lr g; p += v."""

    def __init__(self, learning_rate: float, momentum: float = 0.0) -> None:
        super().__init__(learning_rate)
        if not 0 <= momentum < 1:
            raise ValueError(f"momentum must be in [0, 1), got {momentum}")
        self.momentum = float(momentum)

    def _update(self, key: tuple[int, str], param: np.ndarray, grad: np.ndarray) -> None:
        if self.momentum == 0.0:
            axpy(param, grad, -self.learning_rate)
            return
        if key not in self._state:
            self._state[key] = (np.zeros_like(param),)
        (v,) = self._state[key]
        v *= self.momentum
        v -= self.learning_rate * grad
        param += v


class Adam(Optimizer):
    """Adam (Kingma & Ba 2015) with bias-corrected first and second moment estimates."""

    def __init__(
        self, learning_rate: float = 0.001, beta1: float = 0.9, beta2: float = 0.999, epsilon: float = 1e-8
    ) -> None:
        super().__init__(learning_rate)
        if not (0 <= beta1 < 1 and 0 <= beta2 < 1 and epsilon > 0):
            raise ValueError(f"need 0 <= beta1, beta2 < 1 and epsilon > 0, got {beta1}, {beta2}, {epsilon}")
        self.beta1, self.beta2, self.epsilon = float(beta1), float(beta2), float(epsilon)
        self.t = 0

    def step(self, layers: Iterable[Layer]) -> None:
        self.t += 1
        super().step(layers)

    def _update(self, key: tuple[int, str], param: np.ndarray, grad: np.ndarray) -> None:
        if key not in self._state:
            self._state[key] = (np.zeros_like(param), np.zeros_like(param))
        m, v = self._state[key]
        m *= self.beta1
        m += (1 - self.beta1) * grad
        v *= self.beta2
        v += (1 - self.beta2) * np.square(grad)
        step = self.learning_rate * np.sqrt(1 - self.beta2**self.t) / (1 - self.beta1**self.t)
        param -= step * m / (np.sqrt(v) + self.epsilon * np.sqrt(1 - self.beta2**self.t))


OPTIMIZERS: dict[str, type[Optimizer]] = {"sgd": SGD, "adam": Adam}
