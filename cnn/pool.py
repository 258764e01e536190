"""Pooling: max and average over square windows, and global average pooling."""

from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np

from . import kernels
from .errors import ArchitectureError
from .layers import Layer


class WindowPool(Layer):
    """Square size x size windows moved by stride (default: size, i.e. non-overlapping) over each channel.

    x (N, C, H, W) -> y (N, C, H', W') with H' = (H - size) // stride + 1; rows/columns that no window
    reaches get zero gradient. Window offset (i, j) of every window at once is the strided view
    x[:, :, i::stride, j::stride] (cut to H' x W'), so a pool works on size*size whole-batch planes.
    """

    abstract = True

    def __init__(self, input_shape: tuple[int, int, int], size: int = 2, stride: int | None = None) -> None:
        super().__init__()
        name = type(self).__name__
        if len(tuple(input_shape)) != 3:
            raise ArchitectureError(f"{name} expects input_shape (C, H, W), got {tuple(input_shape)}")
        C, H, W = (int(d) for d in input_shape)
        size = int(size)
        stride = size if stride is None else int(stride)
        if not 1 <= size <= min(H, W):
            raise ArchitectureError(f"size {size} is larger than the input {(C, H, W)}; use 1..{min(H, W)}")
        if stride < 1:
            raise ArchitectureError(f"stride must be >= 1, got {stride}")
        self.input_shape, self.size, self.stride = (C, H, W), size, stride
        self.output_shape = (C, (H - size) // stride + 1, (W - size) // stride + 1)

    def _offset_views(self, a: np.ndarray) -> list[np.ndarray]:
        """For each window offset (i, j), row-major: the (N, C, H', W') view of a at that offset of every window."""
        st, (_, Ho, Wo) = self.stride, self.output_shape
        reach_h, reach_w = st * (Ho - 1) + 1, st * (Wo - 1) + 1
        return [a[:, :, i : i + reach_h : st, j : j + reach_w : st] for i in range(self.size) for j in range(self.size)]

    def _tiled(self) -> bool:
        """Whether the windows cover every input pixel exactly once."""
        (_, H, W), (_, Ho, Wo) = self.input_shape, self.output_shape
        return self.stride == self.size and H == Ho * self.size and W == Wo * self.size

    def _scatter(self, parts: Iterable[np.ndarray], rows: int, dtype: Any) -> np.ndarray:
        """dx (rows, C, H, W) = the sum over offsets o of parts[o] placed on view_o(dx), pixels in no window 0.

        Windows that do not overlap (stride >= size) each write their pixels once: assigned, not added, into
        np.empty when they also tile the input (np.zeros otherwise, for the pixels no window reaches).
        """
        overlapping = self.stride < self.size
        empty = np.empty if self._tiled() else np.zeros
        dx = empty((rows, *self.input_shape), dtype=dtype)
        for view, part in zip(self._offset_views(dx), parts, strict=True):
            if overlapping:
                view += part
            else:
                view[...] = part
        return dx

    def config(self) -> dict[str, Any]:
        return {
            "type": type(self).__name__,
            "input_shape": list(self.input_shape),
            "size": self.size,
            "stride": self.stride,
        }


class MaxPool(WindowPool):
    """Max over size x size windows moved by stride (WindowPool). The gradient goes to the first maximum of
    each window (in row-major order of the window's size*size offsets): forward is a maximum over the
    size*size offset planes, backward routes dy to the view of each window's winning offset.
    Float arrays go through the same operations compiled (cnn.kernels: the same bits, in one pass; backward
    only for windows apart, stride >= size).
    """

    caches = ("winner",)

    def forward(self, x: np.ndarray) -> np.ndarray:
        if kernels.usable(x):
            y, self.winner = kernels.maxpool_forward(x, self.size, self.stride, self.output_shape[1:])
            return y
        return self.forward_numpy(x)

    def forward_numpy(self, x: np.ndarray) -> np.ndarray:
        # one copy of the strided views into contiguous planes (size*size, N, C, H', W'): every later pass over
        # them is one long contiguous loop, where passes over the views themselves run short strided rows
        planes = np.stack(self._offset_views(x))
        y = planes.max(axis=0)
        # winner = index of the first offset whose value equals the maximum:
        # n_0 * (1 + n_1 * (1 + ... (1 + n_{K-2}))) with n_o = (plane_o != y)
        winner = np.zeros(y.shape, dtype=np.min_scalar_type(len(planes)))
        for plane in planes[-2::-1]:
            winner += 1
            winner *= plane != y
        self.winner = winner
        return y

    def backward(self, output_gradient: np.ndarray) -> np.ndarray | None:
        if not self.needs_input_gradient:
            return None
        if kernels.usable(output_gradient) and self.stride >= self.size:
            return kernels.maxpool_backward(self.winner, output_gradient, self.size, self.stride, self.input_shape[1:])
        return self.backward_numpy(output_gradient)

    def backward_numpy(self, output_gradient: np.ndarray) -> np.ndarray:
        return self._scatter(self._routed(output_gradient), len(output_gradient), output_gradient.dtype)

    def _routed(self, output_gradient: np.ndarray) -> Iterator[np.ndarray]:
        """For each offset: dy where that offset won its window, 0 elsewhere (N, C, H', W')."""
        # routed in a contiguous array first: a product written straight into the strided view, or taken
        # with a bool mask (converted element by element), is slower
        for offset in range(self.size * self.size):
            routed = (self.winner == offset).astype(output_gradient.dtype)
            routed *= output_gradient
            yield routed


class AvgPool(WindowPool):
    """Mean over size x size windows moved by stride (WindowPool).

    forward   y = sum over the size*size offsets o of view_o(x) / size^2
    backward  view_o(dx) += dy / size^2 for every offset o (WindowPool._scatter)
    """

    def forward(self, x: np.ndarray) -> np.ndarray:
        views = self._offset_views(x)
        y = views[0].copy()
        for view in views[1:]:
            y += view
        y *= 1.0 / self.size**2
        return y

    def backward(self, output_gradient: np.ndarray) -> np.ndarray | None:
        if not self.needs_input_gradient:
            return None
        share = output_gradient * (1.0 / self.size**2)
        return self._scatter([share] * self.size**2, len(share), share.dtype)


class GlobalAvgPool(Layer):
    """Mean of each channel over all positions: x (N, C, H, W) -> y (N, C).

    forward   y[n, c] = sum_{h, w} x[n, c, h, w] / (H W)
    backward  dx[n, c, h, w] = dy[n, c] / (H W)
    """

    def __init__(self, input_shape: tuple[int, int, int]) -> None:
        super().__init__()
        if len(tuple(input_shape)) != 3:
            raise ArchitectureError(f"GlobalAvgPool expects input_shape (C, H, W), got {tuple(input_shape)}")
        self.input_shape = tuple(int(d) for d in input_shape)
        self.output_shape = (self.input_shape[0],)

    def forward(self, x: np.ndarray) -> np.ndarray:
        return x.mean(axis=(2, 3))

    def backward(self, output_gradient: np.ndarray) -> np.ndarray | None:
        if not self.needs_input_gradient:
            return None
        C, H, W = self.input_shape
        share = output_gradient * (1.0 / (H * W))
        return np.broadcast_to(share[:, :, None, None], (len(share), C, H, W)).copy()

    def config(self) -> dict[str, Any]:
        return {"type": "GlobalAvgPool", "input_shape": list(self.input_shape)}
