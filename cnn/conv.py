"""Convolutional layer: cross-correlation with zero padding and a stride, computed by im2col and one matrix product."""

from typing import Any

import numpy as np

from . import init as initializers
from .errors import ArchitectureError
from .layers import Layer, Seed

BIAS_MODES = ("untied", "tied")


def output_size(size: int, k: int, padding: int = 0, stride: int = 1) -> int:
    """Positions of a k-wide window moved by `stride` over `size` pixels with `padding` zeros on each side."""
    return (size + 2 * padding - k) // stride + 1


def pad(x: np.ndarray, padding: int) -> np.ndarray:
    """x (N, C, H, W) -> (N, C, H + 2p, W + 2p), zeros around; x itself for p = 0."""
    if padding == 0:
        return x
    N, C, H, W = x.shape
    padded = np.zeros((N, C, H + 2 * padding, W + 2 * padding), dtype=x.dtype)
    padded[:, :, padding : padding + H, padding : padding + W] = x
    return padded


def im2col(x: np.ndarray, k: int, padding: int = 0, stride: int = 1) -> np.ndarray:
    """x (N, C, H, W) -> cols (N, C*k*k, H'*W'), cols[n, (c, i, j), (h, w)] = xp[n, c, h*s + i, w*s + j]
    where xp is x with `padding` zeros around and s the stride.

    A strided view of the windows (no copy) made contiguous: one pass over the (padded) input.
    """
    x = np.ascontiguousarray(pad(x, padding))
    N, C, H, W = x.shape
    Ho, Wo = output_size(H, k, 0, stride), output_size(W, k, 0, stride)
    s = x.strides
    # as_strided without its per-call overhead; ndarray checks that the windows stay inside x's buffer
    windows = np.ndarray((N, C, k, k, Ho, Wo), x.dtype, x, 0, (*s, s[2] * stride, s[3] * stride))
    return windows.reshape(N, C * k * k, Ho * Wo)


def col2im(
    cols: np.ndarray, input_shape: tuple[int, int, int, int], k: int, padding: int = 0, stride: int = 1
) -> np.ndarray:
    """The adjoint of im2col: cols (N, C*k*k, H'*W') -> (N, C, H, W), each entry added to its pixel
    (entries that fall on the padding are dropped)."""
    N, C, H, W = input_shape
    Hp, Wp = H + 2 * padding, W + 2 * padding
    Ho, Wo = output_size(H, k, padding, stride), output_size(W, k, padding, stride)
    cols = cols.reshape(N, C, k, k, Ho, Wo)
    x = np.zeros((N, C, Hp, Wp), dtype=cols.dtype)
    reach_h, reach_w = stride * (Ho - 1) + 1, stride * (Wo - 1) + 1
    for i in range(k):
        for j in range(k):
            x[:, :, i : i + reach_h : stride, j : j + reach_w : stride] += cols[:, :, i, j]
    return x[:, :, padding : padding + H, padding : padding + W]


def input_gradient(
    kernels: np.ndarray, dy: np.ndarray, input_shape: tuple[int, int, int, int], padding: int = 0
) -> np.ndarray:
    """dx = col2im(K.T @ dy) at stride 1 for kernels (D, C, k, k) and dy (N, D, H', W') -> (N, C, H, W),
    computed with the batch side by side: dy is padded to whole (padded) input images and laid out as
    (D, N*Hp*Wp), so the columns of K.T @ dy for kernel offset (i, j) belong to the input pixels i*Wp + j
    further on. col2im is then k*k adds, each one contiguous run over the whole batch per channel, instead of
    short strided rows. With padding, the gradient of the padded input is cut to the input."""
    N, C, H, W = input_shape
    H, W = H + 2 * padding, W + 2 * padding
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
    dx = flat[:, :size].reshape(C, N, H, W).transpose(1, 0, 2, 3)
    if padding:
        dx = dx[:, :, padding : H - padding, padding : W - padding]
    return dx.copy()


class Convolutional(Layer):
    """y[n, d] = biases[d] + sum_c correlate(pad(x[n, c]), kernels[d, c]) taken every `stride` pixels.

    x (N, C, H, W) -> y (N, D, H', W') with H' = (H + 2p - k) // s + 1 (likewise W'); padding p zeros on
    each side ("same": p = (k - 1) // 2 for odd k at stride 1, so H' = H), stride s.
    kernels (D, C, k, k); biases (D, H', W') when "untied" (the notebook's: one per output position) or
    (D,) when "tied" (one per filter).
    With K = kernels as a (D, C*k*k) matrix and cols = im2col(x, k, p, s):
      forward   y = K @ cols + b                 (per sample, one batched product)
      backward  dK = sum_n dy[n] @ cols[n].T,  db = sum of dy over n (and positions, if tied),
                dx = col2im(K.T @ dy)            (input_gradient: the same, faster, at stride 1)
    backward frees cols (the largest array a step makes) once dK has used them: one backward per forward.
    """

    caches = ("cols",)

    def __init__(
        self,
        input_shape: tuple[int, int, int],
        kernel_size: int,
        depth: int,
        bias: str = "untied",
        init: str = "normal",
        rng: Seed = 0,
        dtype: Any = "float64",
        padding: int | str = 0,
        stride: int = 1,
    ) -> None:
        super().__init__()
        if len(tuple(input_shape)) != 3:
            raise ArchitectureError(f"Convolutional expects input_shape (C, H, W), got {tuple(input_shape)}")
        C, H, W = (int(d) for d in input_shape)
        k, D = int(kernel_size), int(depth)
        if isinstance(stride, bool) or not isinstance(stride, int) or stride < 1:
            raise ArchitectureError(f"stride must be a positive integer, got {stride!r}")
        if padding == "same":
            if k % 2 == 0 or stride != 1:
                raise ArchitectureError(
                    f'padding "same" needs an odd kernel_size and stride 1, got kernel_size {k}, stride {stride}; '
                    f"give padding as an integer"
                )
            padding = (k - 1) // 2
        if isinstance(padding, bool) or not isinstance(padding, int) or padding < 0:
            raise ArchitectureError(f'padding must be an integer >= 0 or "same", got {padding!r}')
        if not 1 <= k <= min(H, W) + 2 * padding:
            padded = f" with padding {padding}" if padding else ""
            raise ArchitectureError(
                f"kernel_size {k} is larger than the input {(C, H, W)}{padded}; use 1..{min(H, W) + 2 * padding}"
            )
        if D < 1:
            raise ArchitectureError(f"depth must be >= 1, got {D}")
        if bias not in BIAS_MODES:
            raise ArchitectureError(f"bias must be untied or tied, got {bias!r}")
        self.input_shape, self.kernel_size, self.depth, self.bias = (C, H, W), k, D, bias
        self.padding, self.stride = padding, stride
        self.output_shape = (D, output_size(H, k, padding, stride), output_size(W, k, padding, stride))
        self.initialize_on_use(init, rng, dtype)

    def initialize(self, init: str | None, rng: Seed | None, dtype: Any) -> None:
        rng = initializers.generator(init, rng)
        C, k, D = self.input_shape[0], self.kernel_size, self.depth
        kernels = initializers.weights(init, rng, (D, C, k, k), C * k * k, D * k * k, dtype)
        bias_shape = self.output_shape if self.bias == "untied" else (D,)
        self._set_params(kernels=kernels, biases=initializers.biases(init, rng, bias_shape, C * k * k, dtype))

    def _kernel_matrix(self) -> np.ndarray:
        return self.params["kernels"].reshape(self.depth, -1)

    def forward(self, x: np.ndarray) -> np.ndarray:
        self.cols = im2col(x, self.kernel_size, self.padding, self.stride)
        y = (self._kernel_matrix() @ self.cols).reshape(len(x), *self.output_shape)
        b = self.params["biases"]
        y += b if self.bias == "untied" else b[:, None, None]
        return y

    def backward(self, output_gradient: np.ndarray) -> np.ndarray | None:
        N, D = len(output_gradient), self.depth
        dy = output_gradient.reshape(N, D, -1)
        cols, self.cols = self.cols, None  # dK is their last use: freed before dx needs memory of its own
        np.sum(dy @ cols.transpose(0, 2, 1), axis=0, out=self.grads["kernels"].reshape(D, -1))
        del cols
        if self.bias == "untied":
            np.sum(output_gradient, axis=0, out=self.grads["biases"])
        else:  # a product with ones sums over the positions, not np.sum over axes (0, 2, 3) (docs/performance.md)
            np.sum(dy @ np.ones(dy.shape[2], dtype=dy.dtype), axis=0, out=self.grads["biases"])
        if not self.needs_input_gradient:
            return None
        input_shape = (N, *self.input_shape)
        if self.stride == 1:
            return input_gradient(self.params["kernels"], output_gradient, input_shape, self.padding)
        return col2im(self._kernel_matrix().T @ dy, input_shape, self.kernel_size, self.padding, self.stride)

    def config(self) -> dict[str, Any]:
        """Every architecture argument; padding and stride only when not the defaults (0, 1), so a model file
        of a network without them keeps its bytes."""
        config: dict[str, Any] = {
            "type": "Convolutional",
            "input_shape": list(self.input_shape),
            "kernel_size": self.kernel_size,
            "depth": self.depth,
            "bias": self.bias,
        }
        if self.padding != 0:
            config["padding"] = self.padding
        if self.stride != 1:
            config["stride"] = self.stride
        return config
