"""Batch normalization, per channel of conv feature maps or per feature of dense activations."""

from typing import Any

import numpy as np

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
    """

    couples_batch = True  # a sample's output depends on the whole batch: never split (cnn.parallel)

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
        if self.training:
            m = x.size // self.input_shape[0]
            if m < 2:
                raise ValueError(f"BatchNorm needs more than one value per channel in training, got input {x.shape}")
            mean = x.mean(axis=self.axes)
            centred = x - self._per_channel(mean)
            var = np.mean(centred * centred, axis=self.axes)
            running = self.buffers
            running["running_mean"] += self.momentum * (mean - running["running_mean"])
            running["running_var"] += self.momentum * (var * (m / (m - 1)) - running["running_var"])
        else:
            mean, var = self.buffers["running_mean"], self.buffers["running_var"]
            centred = x - self._per_channel(mean)
        self.inv_std = 1 / np.sqrt(var + np.asarray(self.eps, dtype=x.dtype))
        self.xhat = centred * self._per_channel(self.inv_std)
        self.batch_statistics = self.training
        return self.xhat * self._per_channel(self.params["gamma"]) + self._per_channel(self.params["beta"])

    def backward(self, output_gradient: np.ndarray) -> np.ndarray | None:
        dy = output_gradient
        np.sum(dy * self.xhat, axis=self.axes, out=self.grads["gamma"])
        np.sum(dy, axis=self.axes, out=self.grads["beta"])
        if not self.needs_input_gradient:
            return None
        scale = self._per_channel(self.params["gamma"] * self.inv_std)
        if not self.batch_statistics:
            return dy * scale
        m = dy.size // self.input_shape[0]
        dgamma, dbeta = self._per_channel(self.grads["gamma"]), self._per_channel(self.grads["beta"])
        dx = dy * m
        dx -= dbeta
        dx -= self.xhat * dgamma
        dx *= scale / m
        return dx

    def config(self) -> dict[str, Any]:
        return {"type": "BatchNorm", "input_shape": list(self.input_shape), "momentum": self.momentum, "eps": self.eps}
