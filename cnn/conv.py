"""Convolutional layer: valid cross-correlation, stride 1, computed by im2col and one matrix product."""

from typing import Any

import numpy as np

from . import init as initializers
from .buffers import reuse
from .errors import ArchitectureError
from .layers import Layer

BIAS_MODES = ("untied", "tied")


class Convolutional(Layer):
    """y[n, d] = biases[d] + sum_c correlate_valid(x[n, c], kernels[d, c]).

    x (N, C, H, W) -> y (N, D, H', W') with H' = H - k + 1, W' = W - k + 1.
    kernels (D, C, k, k); biases (D, H', W') when "untied" (the notebook's: one per output position) or
    (D,) when "tied" (one per filter).
    im2col: cols (N, C*k*k, H'*W') is a contiguous copy of a strided view of the windows (a buffer kept
    while the batch size holds); y = kernels @ cols, one small product per sample: measured faster than
    one (N*H'*W', C*k*k) GEMM plus a transpose-copy, whose inner dimensions (k*k, depth) are too small.
    """

    param_names = ("kernels", "biases")
    _y: np.ndarray | None = None

    def __init__(self, input_shape: tuple[int, int, int], kernel_size: int, depth: int, bias: str = "untied") -> None:
        super().__init__()
        if len(tuple(input_shape)) != 3:
            raise ArchitectureError(f"Convolutional expects input_shape (C, H, W), got {tuple(input_shape)}")
        C, H, W = (int(d) for d in input_shape)
        k, D = int(kernel_size), int(depth)
        if not 1 <= k <= min(H, W):
            raise ArchitectureError(f"kernel_size {k} does not fit input ({C}, {H}, {W}); use 1..{min(H, W)}")
        if D < 1:
            raise ArchitectureError(f"depth must be >= 1, got {D}")
        if bias not in BIAS_MODES:
            raise ArchitectureError(f"bias must be 'untied' or 'tied', got {bias!r}")
        self.input_shape, self.kernel_size, self.depth, self.bias = (C, H, W), k, D, bias
        self.output_shape = (D, H - k + 1, W - k + 1)

    def initialize(self, init: str, rng: np.random.Generator | None, dtype: Any) -> None:
        C, k, D = self.input_shape[0], self.kernel_size, self.depth
        kernels = initializers.weights(init, rng, (D, C, k, k), C * k * k, D * k * k, dtype)
        bias_shape = self.output_shape if self.bias == "untied" else (D,)
        self._set_params(kernels=kernels, biases=initializers.biases(init, rng, bias_shape, dtype))

    def forward(self, x: np.ndarray) -> np.ndarray:
        N, C, k = x.shape[0], self.input_shape[0], self.kernel_size
        D, Ho, Wo = self.output_shape
        x = np.ascontiguousarray(x)
        s = x.strides  # windows[n, c, i, j, h, w] = x[n, c, h + i, w + j]: what sliding_window_view builds,
        windows = np.ndarray((N, C, k, k, Ho, Wo), x.dtype, x, 0, (*s, s[2], s[3]))  # without its 20 us
        cols = getattr(self, "_cols", None)
        if cols is None or cols.shape[0] != N or cols.dtype != x.dtype:  # reused while the batch size holds
            cols = np.empty((N, C * k * k, Ho * Wo), dtype=x.dtype)
        np.copyto(cols.reshape(N, C, k, k, Ho, Wo), windows)
        self._cols = cols
        kernels = self.params["kernels"].reshape(D, C * k * k)
        y = self._y = reuse(self._y, (N, D, Ho, Wo), np.result_type(kernels, cols))
        np.matmul(kernels, cols, out=y.reshape(N, D, Ho * Wo))
        b = self.params["biases"]
        y += b if self.bias == "untied" else b[:, None, None]
        return y

    def backward(self, output_gradient: np.ndarray) -> np.ndarray | None:
        N, (C, H, W), k = output_gradient.shape[0], self.input_shape, self.kernel_size
        D, Ho, Wo = self.output_shape
        g = output_gradient.reshape(N, D, Ho * Wo)
        dk = self.grads["kernels"].reshape(D, C * k * k)  # a view: results land in grads
        if N == 1:
            np.matmul(g[0], self._cols[0].T, out=dk)
        else:
            np.matmul(g, self._cols.transpose(0, 2, 1)).sum(axis=0, out=dk)
        np.add.reduce(output_gradient, axis=0 if self.bias == "untied" else (0, 2, 3), out=self.grads["biases"])
        if not self.needs_input_gradient:
            return None
        # col2im: scatter each column entry back to its pixel; one vectorized add per kernel offset.
        dcols = np.matmul(self.params["kernels"].reshape(D, C * k * k).T, g).reshape(N, C, k, k, Ho, Wo)
        dx = np.zeros((N, C, H, W), dtype=dcols.dtype)
        for i in range(k):
            for j in range(k):
                dx[:, :, i : i + Ho, j : j + Wo] += dcols[:, :, i, j]
        return dx

    def config(self) -> dict[str, Any]:
        return {
            "type": "Convolutional",
            "input_shape": list(self.input_shape),
            "kernel_size": self.kernel_size,
            "depth": self.depth,
            "bias": self.bias,
        }
