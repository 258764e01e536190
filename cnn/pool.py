"""Max pooling over square windows."""

from typing import Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from .errors import ArchitectureError
from .layers import Layer


class MaxPool(Layer):
    """Max over size x size windows moved by stride (default: size, i.e. non-overlapping).

    x (N, C, H, W) -> y (N, C, H', W') with H' = (H - size) // stride + 1; rows/columns that no
    window reaches get zero gradient. The gradient goes to the first maximum of each window.
    """

    def __init__(self, input_shape: tuple[int, int, int], size: int = 2, stride: int | None = None) -> None:
        super().__init__()
        if len(tuple(input_shape)) != 3:
            raise ArchitectureError(f"MaxPool expects input_shape (C, H, W), got {tuple(input_shape)}")
        C, H, W = (int(d) for d in input_shape)
        size = int(size)
        stride = size if stride is None else int(stride)
        if not 1 <= size <= min(H, W):
            raise ArchitectureError(f"size {size} is larger than the input {(C, H, W)}; use 1..{min(H, W)}")
        if stride < 1:
            raise ArchitectureError(f"stride must be >= 1, got {stride}")
        self.input_shape, self.size, self.stride = (C, H, W), size, stride
        self.output_shape = (C, (H - size) // stride + 1, (W - size) // stride + 1)

    def forward(self, x: np.ndarray) -> np.ndarray:
        s, st = self.size, self.stride
        N, (C, Ho, Wo) = x.shape[0], self.output_shape
        windows = sliding_window_view(x, (s, s), axis=(2, 3))[:, :, ::st, ::st]  # (N, C, H', W', s, s)
        windows = windows.reshape(N, C, Ho, Wo, s * s)
        self.argmax = windows.argmax(axis=-1)
        return np.take_along_axis(windows, self.argmax[..., None], axis=-1)[..., 0]

    def backward(self, output_gradient: np.ndarray) -> np.ndarray | None:
        if not self.needs_input_gradient:
            return None
        s, st = self.size, self.stride
        _, Ho, Wo = self.output_shape
        dx = np.zeros((output_gradient.shape[0], *self.input_shape), dtype=output_gradient.dtype)
        for offset in range(s * s):  # loop over window positions only (s*s is tiny)
            i, j = divmod(offset, s)
            rows, cols = slice(i, i + st * (Ho - 1) + 1, st), slice(j, j + st * (Wo - 1) + 1, st)
            dx[:, :, rows, cols] += np.where(self.argmax == offset, output_gradient, 0)
        return dx

    def config(self) -> dict[str, Any]:
        return {"type": "MaxPool", "input_shape": list(self.input_shape), "size": self.size, "stride": self.stride}
