"""Compiled kernels (numba) for MaxPool forward/backward, ReLU backward and BatchNorm of conv feature maps: speed
apart from the plain math.

The layers (cnn/pool.py, cnn/activations.py, cnn/norm.py) keep their numpy formulation as the reference and call
these for float32/float64 C-contiguous arrays. Each kernel does the numpy code's operations in fewer passes: MaxPool
and ReLU's are exact (comparisons, selections, products with 0.0/1.0); BatchNorm's round, so its kernels do every
product and sum in the numpy code's order, numpy's pairwise summation included. Their results are the same bits
(tests/test_kernels.py; NaNs aside in BatchNorm: which NaN a sum of two NaNs gives follows operand order).
numba is imported, and a kernel compiled (or loaded from its on-disk cache), on first use: `import cnn` and
networks without these layers never pay for it.

    enabled = False                 # every layer takes its numpy path (tests, A/B timings)
    with kernels.disabled(): ...    # the same, for a block
"""

import contextlib
import threading
from collections.abc import Callable, Iterator
from types import ModuleType
from typing import Any

import numpy as np

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
    _batchnorm()[0](planes, x.dtype.type(x.size // C), *_row(planes), mean, m2)
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
    _batchnorm()[2](planes, _planes(xhat), *_row(planes), dgamma, dbeta)


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


def _row(planes: np.ndarray) -> tuple[np.ndarray, Any]:
    """A scratch row of one plane's length and the zero a sum starts from, in the planes' dtype."""
    return np.empty(planes.shape[2], dtype=planes.dtype), planes.dtype.type(0.0)


def _batchnorm_kernels() -> tuple[Callable, ...]:
    """BatchNorm's statistics, normalisation, gradient sums and input gradient over (N, C, H*W) planes."""
    jit = _numba().njit(cache=True, nogil=True)

    @jit
    def pairwise(a, start, n, zero):
        # numpy's pairwise_sum of a[start:start + n] (numpy/_core/src/umath/loops_utils.h.src): below 8 terms in
        # order from zero; up to 128, eight running sums over every eighth term, combined as a tree, then the
        # rest in order; above, the halves (the first a multiple of 8 long) summed apart and added
        if n < 8:
            res = zero
            for i in range(n):
                res += a[start + i]
            return res
        if n <= 128:
            r0, r1, r2, r3 = a[start], a[start + 1], a[start + 2], a[start + 3]
            r4, r5, r6, r7 = a[start + 4], a[start + 5], a[start + 6], a[start + 7]
            i = 8
            while i < n - n % 8:
                k = start + i
                r0 += a[k]
                r1 += a[k + 1]
                r2 += a[k + 2]
                r3 += a[k + 3]
                r4 += a[k + 4]
                r5 += a[k + 5]
                r6 += a[k + 6]
                r7 += a[k + 7]
                i += 8
            res = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
            while i < n:
                res += a[start + i]
                i += 1
            return res
        half = n // 2
        half -= half % 8
        return pairwise(a, start, half, zero) + pairwise(a, start + half, n - half, zero)

    def statistics(x, m, row, zero, mean, m2):
        # np.sum over (0, 2, 3) is zero plus each plane's pairwise sum, planes in sample order; mean = sum / m
        N, C, P = x.shape
        for c in range(C):
            total = zero
            for n in range(N):
                total += pairwise(x[n, c], 0, P, zero)
            mu = total / m
            total = zero
            for n in range(N):
                plane = x[n, c]
                for i in range(P):
                    d = plane[i] - mu
                    row[i] = d * d
                total += pairwise(row, 0, P, zero)
            mean[c], m2[c] = mu, total

    def normalize(x, mean, inv_std, gamma, beta, xhat, y):
        N, C, P = x.shape
        for n in range(N):
            for c in range(C):
                mu, inv, g, b = mean[c], inv_std[c], gamma[c], beta[c]
                xp, hp, yp = x[n, c], xhat[n, c], y[n, c]
                for i in range(P):
                    h = (xp[i] - mu) * inv
                    hp[i] = h
                    yp[i] = h * g + b

    def gradient_sums(dy, xhat, row, zero, dgamma, dbeta):
        N, C, P = dy.shape
        for c in range(C):
            sum_g, sum_b = zero, zero
            for n in range(N):
                gp, hp = dy[n, c], xhat[n, c]
                for i in range(P):
                    row[i] = gp[i] * hp[i]
                sum_g += pairwise(row, 0, P, zero)
                sum_b += pairwise(gp, 0, P, zero)
            dgamma[c], dbeta[c] = sum_g, sum_b

    def input_gradient(dy, xhat, m, dbeta, dgamma, scale_over_m, dx):
        N, C, P = dy.shape
        for n in range(N):
            for c in range(C):
                b, g, s = dbeta[c], dgamma[c], scale_over_m[c]
                gp, hp, xp = dy[n, c], xhat[n, c], dx[n, c]
                for i in range(P):
                    xp[i] = ((gp[i] * m - b) - hp[i] * g) * s

    return jit(statistics), jit(normalize), jit(gradient_sums), jit(input_gradient)


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
    """BatchNorm's (statistics, normalize, gradient_sums, input_gradient) kernels."""
    return _build(("batchnorm",), _batchnorm_kernels)


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
