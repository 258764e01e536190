"""Convolutional layer: valid cross-correlation, stride 1, computed by im2col and one matrix product."""

from typing import Any

import numpy as np

from . import init as initializers
from .errors import ArchitectureError
from .layers import Layer, Seed

BIAS_MODES = ("untied", "tied")


def im2col(x: np.ndarray, k: int) -> np.ndarray:
    """x (N, C, H, W) -> cols (N, C*k*k, H'*W'), cols[n, (c, i, j), (h, w)] = x[n, c, h + i, w + j].

    A strided view of the windows (no copy) made contiguous: one pass over the input.
    """
    N, C, H, W = x.shape
    Ho, Wo = H - k + 1, W - k + 1
    x = np.ascontiguousarray(x)
    s = x.strides
    # as_strided without its per-call overhead; ndarray checks that the windows stay inside x's buffer
    windows = np.ndarray((N, C, k, k, Ho, Wo), x.dtype, x, 0, (*s, s[2], s[3]))
    return windows.reshape(N, C * k * k, Ho * Wo)


def col2im(cols: np.ndarray, input_shape: tuple[int, int, int, int], k: int) -> np.ndarray:
    """The adjoint of im2col: cols (N, C*k*k, H'*W') -> (N, C, H, W), each entry added to its pixel."""
    N, C, H, W = input_shape
    Ho, Wo = H - k + 1, W - k + 1
    cols = cols.reshape(N, C, k, k, Ho, Wo)
    x = np.zeros(input_shape, dtype=cols.dtype)
    for i in range(k):
        for j in range(k):
            x[:, :, i : i + Ho, j : j + Wo] += cols[:, :, i, j]
    return x


def input_gradient(kernels: np.ndarray, dy: np.ndarray, input_shape: tuple[int, int, int, int]) -> np.ndarray:
    """dx = col2im(K.T @ dy) for kernels (D, C, k, k) and dy (N, D, H', W') -> (N, C, H, W), computed with the
    batch side by side: dy is padded to whole input images and laid out as (D, N*H*W), so the columns of
    K.T @ dy for kernel offset (i, j) belong to the input pixels i*W + j further on. col2im is then k*k adds,
    each one contiguous run over the whole batch per channel, instead of short strided rows."""
    N, C, H, W = input_shape
    D, k = kernels.shape[0], kernels.shape[2]
    Ho, Wo = H - k + 1, W - k + 1
    size = N * H * W
    dy_images = np.zeros((D, N, H, W), dtype=dy.dtype)
    dy_images[:, :, :Ho, :Wo] = dy.transpose(1, 0, 2, 3)
    cols = (kernels.reshape(D, -1).T @ dy_images.reshape(D, size)).reshape(C, k * k, size)
    flat = np.zeros((C, size + (k - 1) * (W + 1)), dtype=dy.dtype)  # + the reach of the last offset
    for offset in range(k * k):
        i, j = divmod(offset, k)
        flat[:, i * W + j : i * W + j + size] += cols[:, offset]
    return flat[:, :size].reshape(C, N, H, W).transpose(1, 0, 2, 3).copy()


class Convolutional(Layer):
    """y[n, d] = biases[d] + sum_c correlate_valid(x[n, c], kernels[d, c]).

    x (N, C, H, W) -> y (N, D, H', W') with H' = H - k + 1, W' = W - k + 1.
    kernels (D, C, k, k); biases (D, H', W') when "untied" (the notebook's: one per output position) or
    (D,) when "tied" (one per filter).
    With K = kernels as a (D, C*k*k) matrix and cols = im2col(x):
      forward   y = K @ cols + b                 (per sample, one batched product)
      backward  dK = sum_n dy[n] @ cols[n].T,  db = sum of dy over n (and positions, if tied),
                dx = col2im(K.T @ dy)
    """

    def __init__(
        self,
        input_shape: tuple[int, int, int],
        kernel_size: int,
        depth: int,
        bias: str = "untied",
        init: str = "normal",
        rng: Seed = 0,
        dtype: Any = "float64",
    ) -> None:
        super().__init__()
        if len(tuple(input_shape)) != 3:
            raise ArchitectureError(f"Convolutional expects input_shape (C, H, W), got {tuple(input_shape)}")
        C, H, W = (int(d) for d in input_shape)
        k, D = int(kernel_size), int(depth)
        if not 1 <= k <= min(H, W):
            raise ArchitectureError(f"kernel_size {k} is larger than the input {(C, H, W)}; use 1..{min(H, W)}")
        if D < 1:
            raise ArchitectureError(f"depth must be >= 1, got {D}")
        if bias not in BIAS_MODES:
            raise ArchitectureError(f"bias must be untied or tied, got {bias!r}")
        self.input_shape, self.kernel_size, self.depth, self.bias = (C, H, W), k, D, bias
        self.output_shape = (D, H - k + 1, W - k + 1)
        self.initialize(init, rng, dtype)

    def initialize(self, init: str | None, rng: Seed | None, dtype: Any) -> None:
        rng = initializers.generator(init, rng)
        C, k, D = self.input_shape[0], self.kernel_size, self.depth
        kernels = initializers.weights(init, rng, (D, C, k, k), C * k * k, D * k * k, dtype)
        bias_shape = self.output_shape if self.bias == "untied" else (D,)
        self._set_params(kernels=kernels, biases=initializers.biases(init, rng, bias_shape, dtype))

    def _kernel_matrix(self) -> np.ndarray:
        return self.params["kernels"].reshape(self.depth, -1)

    def forward(self, x: np.ndarray) -> np.ndarray:
        self.cols = im2col(x, self.kernel_size)
        y = (self._kernel_matrix() @ self.cols).reshape(len(x), *self.output_shape)
        b = self.params["biases"]
        y += b if self.bias == "untied" else b[:, None, None]
        return y

    def backward(self, output_gradient: np.ndarray) -> np.ndarray | None:
        N, D = len(output_gradient), self.depth
        dy = output_gradient.reshape(N, D, -1)
        np.sum(dy @ self.cols.transpose(0, 2, 1), axis=0, out=self.grads["kernels"].reshape(D, -1))
        if self.bias == "untied":
            np.sum(output_gradient, axis=0, out=self.grads["biases"])
        else:  # a product with ones sums over the positions; np.sum over axes (0, 2, 3) takes ~3x longer
            np.sum(dy @ np.ones(dy.shape[2], dtype=dy.dtype), axis=0, out=self.grads["biases"])
        if not self.needs_input_gradient:
            return None
        return input_gradient(self.params["kernels"], output_gradient, (N, *self.input_shape))

    def config(self) -> dict[str, Any]:
        return {
            "type": "Convolutional",
            "input_shape": list(self.input_shape),
            "kernel_size": self.kernel_size,
            "depth": self.depth,
            "bias": self.bias,
        }
