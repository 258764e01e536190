"""Batch normalization, per channel of conv feature maps or per feature of dense activations."""

from typing import Any

import numpy as np

from . import kernels
from .errors import ArchitectureError
from .layers import Layer, Seed


class BatchNorm(Layer):
    """x (N, C, H, W) normalised per channel c over (N, H, W), or x (N, C) per feature over N; y has x's shape.

    training   mean, var = mean and biased variance of x over those m = N*H*W (or N) values
               xhat = (x - mean) / sqrt(var + eps),   y = gamma * xhat + beta
               running_mean += momentum * (mean - running_mean)
               running_var  += momentum * (var * m / (m - 1) - running_var)     (unbiased, as torch)
               dgamma = sum(dy * xhat),  dbeta = sum(dy)
               dx = gamma / sqrt(var + eps) / m * (m * dy - dbeta - xhat * dgamma)
    inference  xhat = (x - running_mean) / sqrt(running_var + eps), y = gamma * xhat + beta
               dx = dy * gamma / sqrt(running_var + eps);  dgamma, dbeta as above
    gamma, beta (C,) are params; running_mean, running_var (C,) are buffers (saved, not trained).

    A batch in parts (rows of x, in order; cnn.parallel), the batch-coupling protocol of Layer:
    forward    each part (m_p, mean_p, M2_p = sum of (x - mean_p)**2)  -> whole: Chan et al.'s pairwise rule,
               mean = mean_a + d * m_b / m,  M2 = M2_a + M2_b + d**2 * m_a * m_b / m  (d = mean_b - mean_a,
               m = m_a + m_b), folded in part order; var = M2 / m; running statistics moved once, by the whole
    backward   each part (sum(dy * xhat), sum(dy)) over its rows -> whole: their sums in part order
    forward(x) and backward(dy) are that with x or dy as the only part.
    Conv feature maps in float32/float64 take cnn.kernels' compiled passes: the same sums in numpy's order, so the
    same bits (NaNs aside: which NaN a sum of NaNs gives depends on operand order).
    """

    caches = ("xhat",)

    couples_batch = True  # a sample's output depends on the whole batch: split in parts by the protocol below

    def __init__(self, input_shape: tuple[int, ...], momentum: float = 0.1, eps: float = 1e-5) -> None:
        super().__init__()
        shape = tuple(int(d) for d in input_shape)
        if len(shape) not in (1, 3):
            raise ArchitectureError(f"expects an input (C,) or (C, H, W), got {shape}")
        if isinstance(momentum, bool) or not isinstance(momentum, (int, float)) or not 0 <= momentum <= 1:
            raise ArchitectureError(f"batchnorm momentum must be a number in [0, 1], got {momentum!r}")
        if isinstance(eps, bool) or not isinstance(eps, (int, float)) or not eps > 0:
            raise ArchitectureError(f"batchnorm eps must be a number > 0, got {eps!r}")
        self.input_shape = self.output_shape = shape
        self.momentum, self.eps = float(momentum), float(eps)
        self.axes = (0,) if len(shape) == 1 else (0, 2, 3)
        self.initialize("normal", None, "float64")

    def initialize(self, init: str | None, rng: Seed | None, dtype: Any) -> None:
        """gamma = 1, beta = 0, running mean 0 and variance 1 (all zero for init=None: values to be loaded);
        `rng` is not used."""
        C = self.input_shape[0]
        fill = np.zeros if init is None else np.ones
        self._set_params(gamma=fill(C, dtype=dtype), beta=np.zeros(C, dtype=dtype))
        self.buffers = {"running_mean": np.zeros(C, dtype=dtype), "running_var": fill(C, dtype=dtype)}

    def _per_channel(self, v: np.ndarray) -> np.ndarray:
        return v if len(self.input_shape) == 1 else v[:, None, None]

    def forward(self, x: np.ndarray) -> np.ndarray:
        return self.forward_with(x, self.whole_statistics([self.partial_statistics(x)]))

    def partial_statistics(self, x: np.ndarray) -> tuple[int, np.ndarray, np.ndarray] | None:
        """(m, mean (C,), M2 (C,)) of this part's values per channel in training; None in inference."""
        if not self.training:
            return None
        if self._compiled(x):  # the same bits in two passes (cnn.kernels)
            return x.size // self.input_shape[0], *kernels.batchnorm_statistics(x)
        mean = x.mean(axis=self.axes)
        centred = x - self._per_channel(mean)
        return x.size // self.input_shape[0], mean, np.sum(centred * centred, axis=self.axes)

    def whole_statistics(self, parts: list) -> tuple[int, np.ndarray, np.ndarray] | None:
        """(m, mean, biased var) of the whole batch from its parts' partial_statistics, in order; moves the
        running statistics (once per batch). None in inference."""
        if parts[0] is None:
            return None
        m, mean, m2 = parts[0]
        for m_b, mean_b, m2_b in parts[1:]:
            d, total = mean_b - mean, m + m_b
            mean, m2, m = mean + d * (m_b / total), m2 + m2_b + d * d * (m * m_b / total), total
        if m < 2:
            raise ValueError(f"BatchNorm needs more than one value per channel in training, got {m}")
        var = m2 / m
        running = self.buffers
        running["running_mean"] += self.momentum * (mean - running["running_mean"])
        running["running_var"] += self.momentum * (var * (m / (m - 1)) - running["running_var"])
        return m, mean, var

    def forward_with(self, x: np.ndarray, whole: tuple[int, np.ndarray, np.ndarray] | None) -> np.ndarray:
        """y of this part, normalised by the whole batch's statistics (the running ones for None)."""
        self.batch_statistics = whole is not None
        if whole is None:
            mean, var = self.buffers["running_mean"], self.buffers["running_var"]
        else:
            self.m, mean, var = whole
        self.inv_std = 1 / np.sqrt(var + np.asarray(self.eps, dtype=x.dtype))
        gamma, beta = self.params["gamma"], self.params["beta"]
        if self._compiled(x, mean, self.inv_std, gamma, beta):
            self.xhat, y = kernels.batchnorm_normalize(x, mean, self.inv_std, gamma, beta)
            return y
        self.xhat = x - self._per_channel(mean)
        self.xhat *= self._per_channel(self.inv_std)
        return self.xhat * self._per_channel(self.params["gamma"]) + self._per_channel(self.params["beta"])

    def backward(self, output_gradient: np.ndarray) -> np.ndarray | None:
        dy = output_gradient
        return self.backward_with(dy, self.whole_gradient_sums([self.partial_gradient_sums(dy)]))

    def partial_gradient_sums(self, dy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(dgamma, dbeta) of this part, written to grads too (cnn.parallel adds the parts' grads)."""
        if self._compiled(dy, self.xhat, self.grads["gamma"], self.grads["beta"]):
            kernels.batchnorm_gradient_sums(dy, self.xhat, self.grads["gamma"], self.grads["beta"])
            return self.grads["gamma"], self.grads["beta"]
        np.sum(dy * self.xhat, axis=self.axes, out=self.grads["gamma"])
        np.sum(dy, axis=self.axes, out=self.grads["beta"])
        return self.grads["gamma"], self.grads["beta"]

    def whole_gradient_sums(self, parts: list) -> tuple[np.ndarray, np.ndarray]:
        """(dgamma, dbeta) of the whole batch: the parts' summed in order."""
        dgamma, dbeta = parts[0]
        for dgamma_b, dbeta_b in parts[1:]:
            dgamma, dbeta = dgamma + dgamma_b, dbeta + dbeta_b
        return dgamma, dbeta

    def backward_with(self, dy: np.ndarray, whole: tuple[np.ndarray, np.ndarray]) -> np.ndarray | None:
        """dx of this part, from the whole batch's (dgamma, dbeta); None when not needed."""
        if not self.needs_input_gradient:
            return None
        scale = self._per_channel(self.params["gamma"] * self.inv_std)
        if not self.batch_statistics:
            return dy * scale
        if self._compiled(dy, self.xhat, *whole, scale):
            dgamma, dbeta = whole
            return kernels.batchnorm_input_gradient(dy, self.xhat, self.m, dbeta, dgamma, scale.reshape(-1) / self.m)
        dgamma, dbeta = (self._per_channel(v) for v in whole)
        dx = dy * self.m
        dx -= dbeta
        dx -= self.xhat * dgamma
        dx *= scale / self.m
        return dx

    def _compiled(self, *arrays: np.ndarray) -> bool:
        """Whether these arrays of a conv layer's BatchNorm go through cnn.kernels (float, one dtype, C order)."""
        return len(self.input_shape) == 3 and kernels.usable(*arrays)

    def config(self) -> dict[str, Any]:
        return {"type": "BatchNorm", "input_shape": list(self.input_shape), "momentum": self.momentum, "eps": self.eps}
