"""Compiled kernels (numba) for MaxPool forward/backward and ReLU backward: speed apart from the plain math.

The layers (cnn/pool.py, cnn/activations.py) keep their numpy formulation as the reference and call these for
float32/float64 C-contiguous arrays. Each kernel does the numpy code's exact operations (comparisons, copies,
products with 0.0/1.0, sums in the same order) in one pass instead of several, so its results are the same bits
(tests/test_kernels.py). numba is imported, and a kernel compiled (or loaded from its on-disk cache), on first
use: `import cnn` and networks without MaxPool/ReLU never pay for it.

    enabled = False                 # every layer takes its numpy path (tests, A/B timings)
    with kernels.disabled(): ...    # the same, for a block
"""

import contextlib
import threading
from collections.abc import Iterator
from types import SimpleNamespace

import numpy as np

enabled = True  # the one switch: False sends MaxPool and ReLU down their numpy paths

_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))
_lock = threading.Lock()
_compiled: SimpleNamespace | None = None


@contextlib.contextmanager
def disabled() -> Iterator[None]:
    """Within the block, the layers use their numpy formulation (the flag restored afterwards)."""
    global enabled
    before, enabled = enabled, False
    try:
        yield
    finally:
        enabled = before


def usable(*arrays: np.ndarray) -> bool:
    """Whether the kernels take these arrays: switched on, one float dtype (float32/float64), C-contiguous."""
    dtype = arrays[0].dtype
    return enabled and dtype in _FLOATS and all(a.dtype == dtype and a.flags.c_contiguous for a in arrays)


def maxpool_forward(x: np.ndarray, size: int, stride: int, out_hw: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """x (N, C, H, W) -> y (N, C, H', W') and winner (N, C, H', W'): MaxPool.forward_numpy's bits."""
    N, C = x.shape[:2]
    y = np.empty((N, C, *out_hw), dtype=x.dtype)
    winner = np.empty((N, C, *out_hw), dtype=np.min_scalar_type(size * size))
    _kernels().maxpool_forward(x, size, stride, y, winner)
    return y, winner


def maxpool_backward(winner: np.ndarray, dy: np.ndarray, size: int, stride: int, in_hw: tuple[int, int]) -> np.ndarray:
    """dy (N, C, H', W') routed to each window's winner -> dx (N, C, H, W): MaxPool's numpy backward's bits.

    Windows apart only (stride >= size). Overlapping windows stay with numpy: there a pixel's gradient is a sum,
    and of two NaNs the sum's bits depend on the order of its operands, which LLVM may swap.
    """
    if stride < size:
        raise ValueError(f"maxpool_backward takes windows apart (stride >= size), got size {size}, stride {stride}")
    (N, C, Ho, Wo), (H, W) = dy.shape, in_hw
    tiled = stride == size and H == Ho * size and W == Wo * size  # every pixel written once: no zeros needed
    dx = (np.empty if tiled else np.zeros)((N, C, H, W), dtype=dy.dtype)
    one, zero = dy.dtype.type(1.0), dy.dtype.type(0.0)
    _kernels().maxpool_backward(winner, dy, size, stride, one, zero, dx)
    return dx


def relu_backward(y: np.ndarray, dy: np.ndarray) -> np.ndarray:
    """dx = dy * (1.0 if y > 0 else 0.0), element by element (so 0.0 * dy: -0.0 for dy < 0, NaN for dy = inf/NaN)."""
    dx = np.empty_like(dy)
    one, zero = dy.dtype.type(1.0), dy.dtype.type(0.0)
    _kernels().relu_backward(y.reshape(-1), dy.reshape(-1), one, zero, dx.reshape(-1))
    return dx


def _maxpool_forward(x, size, stride, y, winner):
    # per window: m = maximum(...maximum(maximum(x_0, x_1), x_2)..., x_{K-1}) over its offsets in row-major order,
    # with np.maximum's rules (the first NaN wins; of equal values, the later one: maximum(0.0, -0.0) = -0.0);
    # winner = the first offset equal to m, K - 1 if none is (m NaN), as the numpy code's product gives
    N, C, Ho, Wo = y.shape
    last = size * size - 1
    for n in range(N):
        for c in range(C):
            for ho in range(Ho):
                for wo in range(Wo):
                    h0, w0 = ho * stride, wo * stride
                    m = x[n, c, h0, w0]
                    for o in range(1, last + 1):
                        v = x[n, c, h0 + o // size, w0 + o % size]
                        if m == m and not m > v:
                            m = v
                    k = last
                    for o in range(last):
                        if x[n, c, h0 + o // size, w0 + o % size] == m:
                            k = o
                            break
                    y[n, c, ho, wo] = m
                    winner[n, c, ho, wo] = k


def _maxpool_backward(winner, dy, size, stride, one, zero, dx):
    # windows apart (stride >= size): each pixel of a window gets dy * (1.0 if it is the winner else 0.0), once
    N, C, Ho, Wo = dy.shape
    for n in range(N):
        for c in range(C):
            for ho in range(Ho):
                for wo in range(Wo):
                    g, k = dy[n, c, ho, wo], winner[n, c, ho, wo]
                    for o in range(size * size):
                        dx[n, c, ho * stride + o // size, wo * stride + o % size] = g * (one if k == o else zero)


def _relu_backward(y, dy, one, zero, dx):
    for k in range(dy.size):
        dx[k] = dy[k] * (one if y[k] > 0 else zero)


def _kernels() -> SimpleNamespace:
    """The compiled kernels, numba imported on first use (once, whichever thread gets here first)."""
    global _compiled
    if _compiled is None:
        with _lock:
            if _compiled is None:
                import numba

                jit = numba.njit(cache=True, nogil=True)
                _compiled = SimpleNamespace(
                    maxpool_forward=jit(_maxpool_forward),
                    maxpool_backward=jit(_maxpool_backward),
                    relu_backward=jit(_relu_backward),
                )
    return _compiled
