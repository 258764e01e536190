"""Compiled kernels (numba) for MaxPool forward/backward and ReLU backward: speed apart from the plain math.

The layers (cnn/pool.py, cnn/activations.py) keep their numpy formulation as the reference and call these for
float32/float64 C-contiguous arrays. Each kernel does the numpy code's exact operations (comparisons, selections,
products with 0.0/1.0; nothing rounds) in one pass instead of several, so its results are the same bits
(tests/test_kernels.py). numba is imported, and a kernel compiled (or loaded from its on-disk cache), on first
use: `import cnn` and networks without MaxPool/ReLU never pay for it.

    enabled = False                 # every layer takes its numpy path (tests, A/B timings)
    with kernels.disabled(): ...    # the same, for a block
"""

import contextlib
import threading
from collections.abc import Callable, Iterator
from types import ModuleType
from typing import Any

import numpy as np

enabled = True  # the one switch: False sends MaxPool and ReLU down their numpy paths

_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))
_lock = threading.Lock()
_built: dict[Any, Any] = {}  # compiled kernels by key: ("relu",), ("pool", size)


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
    _pool(size)[0](x, stride, y, winner)
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
    _pool(size)[1](winner, dy, stride, np.eye(size * size, dtype=dy.dtype), dx)
    return dx


def relu_backward(y: np.ndarray, dy: np.ndarray) -> np.ndarray:
    """dx = dy * (1.0 if y > 0 else 0.0), element by element (so 0.0 * dy: -0.0 for dy < 0, NaN for dy = inf/NaN)."""
    dx = np.empty_like(dy)
    one, zero = dy.dtype.type(1.0), dy.dtype.type(0.0)
    _relu()(y.reshape(-1), dy.reshape(-1), one, zero, dx.reshape(-1))
    return dx


def _relu_backward(y, dy, one, zero, dx):
    for k in range(dy.size):
        dx[k] = dy[k] * (one if y[k] > 0 else zero)


def _maxpool_kernels(size: int) -> tuple[Callable, Callable]:
    """Forward and backward for size x size windows: size is a constant of the compiled code (its loops unrolled)."""
    last = size * size - 1

    def forward(x, stride, y, winner):
        # per window, offsets o in row-major order: m = maximum(...maximum(x_0, x_1)..., x_last) with np.maximum's
        # rules (the first NaN wins; of equal values the later: maximum(0.0, -0.0) = -0.0, as numpy's SIMD loops);
        # winner = the first offset equal to m (= the last offset where m strictly grew), last if m is NaN, as
        # the numpy code's product of (plane != y) gives. Branch-free selects: random data mispredicts branches.
        N, C, Ho, Wo = y.shape
        H, W = x.shape[2], x.shape[3]
        xs, ys, ws = x.reshape(N * C, H * W), y.reshape(N * C, Ho * Wo), winner.reshape(N * C, Ho * Wo)
        for plane in range(N * C):
            xp, yp, wp = xs[plane], ys[plane], ws[plane]
            for ho in range(Ho):
                for wo in range(Wo):
                    corner = ho * stride * W + wo * stride
                    m, k, o = xp[corner], 0, 0
                    for i in range(size):
                        for j in range(size):
                            v = xp[corner + i * W + j]
                            k = o if v > m else k
                            m = m if (m > v or m != m) else v
                            o += 1
                    yp[ho * Wo + wo] = m
                    wp[ho * Wo + wo] = last if m != m else k

    def backward(winner, dy, stride, eye, dx):
        # windows apart (stride >= size): each pixel of a window gets dy * (1.0 if it is the winner else 0.0),
        # once; the 1.0/0.0 read from eye[winner, offset] (a select there compiles to a branch, mispredicted)
        N, C, Ho, Wo = dy.shape
        H, W = dx.shape[2], dx.shape[3]
        ws, dys, dxs = winner.reshape(N * C, Ho * Wo), dy.reshape(N * C, Ho * Wo), dx.reshape(N * C, H * W)
        for plane in range(N * C):
            wp, dyp, dxp = ws[plane], dys[plane], dxs[plane]
            for ho in range(Ho):
                for wo in range(Wo):
                    corner = ho * stride * W + wo * stride
                    g, k, o = dyp[ho * Wo + wo], wp[ho * Wo + wo], 0
                    for i in range(size):
                        for j in range(size):
                            dxp[corner + i * W + j] = g * eye[k, o]
                            o += 1

    jit = _numba().njit(cache=True, nogil=True)
    return jit(forward), jit(backward)


def _pool(size: int) -> tuple[Callable, Callable]:
    """The (forward, backward) kernels of one window size."""
    return _build(("pool", size), lambda: _maxpool_kernels(size))


def _relu() -> Callable:
    """The compiled ReLU backward."""
    return _build(("relu",), lambda: _numba().njit(cache=True, nogil=True)(_relu_backward))


def _build(key: Any, make: Callable[[], Any]) -> Any:
    """_built[key], made by make() on first use (once, whichever thread asks first)."""
    if key not in _built:
        with _lock:
            if key not in _built:
                _built[key] = make()
    return _built[key]


def _numba() -> ModuleType:
    import numba  # here, not at the top: `import cnn` and networks without MaxPool/ReLU never load it

    return numba
