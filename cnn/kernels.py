"""Compiled kernels (numba) for MaxPool forward/backward, ReLU backward and BatchNorm of conv feature maps: speed
apart from the plain math.

The layers (cnn/pool.py, cnn/activations.py, cnn/norm.py) keep their numpy formulation as the reference and call
these for float32/float64 C-contiguous arrays. Each kernel does the numpy code's operations in fewer passes:
MaxPool and ReLU's are exact (comparisons, selections, products with 0.0/1.0); BatchNorm's round, so its kernels
(their bodies in cnn/batchnorm_kernels.py) do every product and sum in the numpy code's order, numpy's pairwise
summation included. Their results are the same bits (tests/test_kernels.py; NaNs aside in BatchNorm: which NaN a
sum of two NaNs gives follows operand order). numba is imported, and a kernel compiled (or loaded from its
on-disk cache), on first use: `import cnn` and networks without these layers never pay for it.

    enabled = False                 # every layer takes its numpy path (tests, A/B timings)
    with kernels.disabled(): ...    # the same, for a block
"""

import contextlib
import functools
import threading
from collections.abc import Callable, Iterator
from types import ModuleType
from typing import Any

import numpy as np

from . import batchnorm_kernels

enabled = True  # the one switch: False sends MaxPool, ReLU and BatchNorm down their numpy paths

_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))
_lock = threading.Lock()
_built: dict[Any, Any] = {}  # compiled kernels by key: ("relu",), ("pool", size), ("batchnorm",)


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


def batchnorm_statistics(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """x (N, C, H, W) -> per channel the mean and the sum of squared deviations from it, (C,) each: the bits of
    BatchNorm's numpy code, x.mean(axis=(0, 2, 3)) and np.sum((x - mean) ** 2, axis=(0, 2, 3)).

    numpy reduces those axes as: zero, plus each sample's plane sum in sample order, every plane summed by numpy's
    pairwise summation; with one channel the planes lie end to end, and numpy sums them as one (_planes).
    The kernel adds the same numbers in the same order."""
    C, planes = x.shape[1], _planes(x)
    mean, m2 = np.empty(C, dtype=x.dtype), np.empty(C, dtype=x.dtype)
    _batchnorm()[0](planes, x.dtype.type(x.size // C), *_sum_args(planes), mean, m2)
    return mean, m2


def batchnorm_normalize(
    x: np.ndarray, mean: np.ndarray, inv_std: np.ndarray, gamma: np.ndarray, beta: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """xhat = (x - mean) * inv_std and y = xhat * gamma + beta per channel of x (N, C, H, W), every product and
    sum rounded as the numpy code rounds it -> (xhat, y). All in x's dtype."""
    xhat, y = np.empty_like(x), np.empty_like(x)
    _batchnorm()[1](_planes(x), mean, inv_std, gamma, beta, _planes(xhat), _planes(y))
    return xhat, y


def batchnorm_gradient_sums(dy: np.ndarray, xhat: np.ndarray, dgamma: np.ndarray, dbeta: np.ndarray) -> None:
    """dgamma = sum(dy * xhat), dbeta = sum(dy) over (N, H, W) per channel of dy (N, C, H, W), written into
    dgamma and dbeta (C,): np.sum's bits, as in batchnorm_statistics."""
    planes = _planes(dy)
    _batchnorm()[2](planes, _planes(xhat), *_sum_args(planes), dgamma, dbeta)


def batchnorm_input_gradient(
    dy: np.ndarray, xhat: np.ndarray, m: int, dbeta: np.ndarray, dgamma: np.ndarray, scale_over_m: np.ndarray
) -> np.ndarray:
    """dx = ((dy * m - dbeta) - xhat * dgamma) * scale_over_m per channel of dy (N, C, H, W), each step rounded
    as the numpy code rounds it. All in dy's dtype."""
    dx = np.empty_like(dy)
    _batchnorm()[3](_planes(dy), _planes(xhat), dy.dtype.type(m), dbeta, dgamma, scale_over_m, _planes(dx))
    return dx


def _planes(x: np.ndarray) -> np.ndarray:
    """x (N, C, H, W) as the (N, C, P) planes numpy's sum over (0, 2, 3) adds pairwise: (N, C, H*W), or for C = 1,
    where numpy's iterator joins the contiguous planes into one, (1, 1, N*H*W)."""
    N, C, H, W = x.shape
    return x.reshape(1, 1, -1) if C == 1 else x.reshape(N, C, H * W)


def _sum_args(planes: np.ndarray) -> tuple[np.ndarray, np.ndarray, Any, np.ndarray]:
    """What the sums over planes take besides them: pairwise_plan of a plane's length, a scratch row of that
    length, the zero a sum starts from and scratch for the pending halves' sums (the planes' dtype)."""
    length, dtype = planes.shape[2], planes.dtype
    return pairwise_plan(length), np.empty(length, dtype), dtype.type(0.0), np.empty(64, dtype)


@functools.cache
def pairwise_plan(n: int) -> np.ndarray:
    """numpy's pairwise summation of n terms written out: rows (0, start, length) sum a block of at most 128 terms,
    rows (1, 0, 0) add the last two sums, (ops, 3) int64 in the order numpy's recursion evaluates them. Made once
    per length (read-only): every batch-norm step asks for the same few."""
    plan = _plan(n)
    plan.flags.writeable = False
    return plan


def _plan(n: int) -> np.ndarray:
    if n <= 128:
        return np.array([[0, 0, n]], dtype=np.int64)
    half = n // 2 - (n // 2) % 8
    second = _plan(n - half)
    second[second[:, 0] == 0, 1] += half
    return np.concatenate([_plan(half), second, [[1, 0, 0]]])


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


def _batchnorm() -> tuple[Callable, ...]:
    """BatchNorm's (statistics, normalize, gradient_sums, input_gradient) kernels (cnn/batchnorm_kernels.py)."""
    return _build(("batchnorm",), batchnorm_kernels.compiled)


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
