"""Winograd's minimal filtering F(2x2, 3x3) (Lavin & Gray 2016, "Fast Algorithms for Convolutional Neural
Networks"): the 3x3 stride-1 convolution of ``Convolutional(..., algorithm="winograd")``, a speed path apart from
the plain im2col math (cnn.conv) and tested against it (tests/test_winograd.py).

A 2x2 block of outputs (a tile) of one (filter, channel) pair takes 16 multiplies instead of 36. With

    B^T = [1  0 -1  0]     G = [ 1    0    0 ]     A^T = [1  1  1  0]
          [0  1  1  0]         [1/2  1/2  1/2]           [0  1 -1 -1]
          [0 -1  1  0]         [1/2 -1/2  1/2]
          [0  1  0 -1]         [ 0    0    1 ]

a 3x3 kernel g and the 4x4 input tile d under a tile's outputs give them as y = A^T [(G g G^T) * (B^T d B)] A
(* elementwise). Summed over the channels, a tile's 16 elementwise products become 16 matrix products over
the whole batch (T: tiles of every image, N * ceil(H'/2) * ceil(W'/2); tiles start every 2 pixels, so they
overlap by 2):
  forward   U = G g G^T                   kernels (D, C, 3, 3) -> (16, D, C)
            V = B^T d B                   input tiles (4, 4, C, T) -> (16, C, T)
            M = U @ V                     one batched product over the 16 positions -> (16, D, T)
            y = A^T M A                   (2, 2, D, T) -> (N, D, H', W')
  backward  dM = A dy A^T                 dy's tiles (2, 2, D, T) -> (16, D, T)
            dU = dM @ V^T                 (16, D, C), summed over the tiles inside the product
            dkernels = G^T dU G           (D, C, 3, 3)
            dV = U^T @ dM                 (16, C, T)
            dx = sum over the tiles of B dV B^T added at the tile's pixels (16 adds, one per tile offset)
An odd H' (or W') gets one more row (column) of zeros below (right of) the padded input, so that whole tiles
cover it; the extra outputs are cut, and their gradient is zero. backward is the exact adjoint of forward.
"""

import numpy as np

BT = np.array([[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]], dtype=np.float64)
G = np.array([[1, 0, 0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0, 0, 1]], dtype=np.float64)
AT = np.array([[1, 1, 1, 0], [0, 1, -1, -1]], dtype=np.float64)


def sandwich(m: np.ndarray, t: np.ndarray) -> np.ndarray:
    """m t m^T for every trailing index: m (p, a), t (a, a, ...) -> (p, p, ...), out[i, j] = sum_kl m[i, k]
    t[k, l] m[j, l]. Two products: m over the first axis, then m over the second, batched over the first."""
    p, a, rest = len(m), t.shape[0], t.shape[2:]
    m = m.astype(t.dtype, copy=False)
    first = (m @ t.reshape(a, -1)).reshape(p, a, -1)  # (p, a, R)
    return (m @ first).reshape(p, p, *rest)  # (p, p, R)


def tiles_of(size: int, padding: int) -> int:
    """Tiles along an axis of `size` pixels with `padding` zeros each side: ceil(H' / 2), H' = size + 2p - 2."""
    return (size + 2 * padding - 1) // 2


def kernel_transform(kernels: np.ndarray) -> np.ndarray:
    """U = G g G^T of every kernel: (D, C, 3, 3) -> (16, D, C)."""
    D, C = kernels.shape[:2]
    return sandwich(G, kernels.transpose(2, 3, 0, 1)).reshape(16, D, C)


def input_tiles(x: np.ndarray, padding: int) -> np.ndarray:
    """The 4x4 tiles d of x (N, C, H, W) with `padding` zeros around (one more row and column of zeros where the
    output size is odd): (4, 4, C, N, th, tw), d[i, j, c, n, a, b] = xp[n, c, 2a + i, 2b + j]. A strided view
    of the padded input made contiguous."""
    N, C, H, W = x.shape
    th, tw = tiles_of(H, padding), tiles_of(W, padding)
    if padding == 0 and (H, W) == (2 * th + 2, 2 * tw + 2):
        xp = np.ascontiguousarray(x)
    else:
        xp = np.zeros((N, C, 2 * th + 2, 2 * tw + 2), dtype=x.dtype)
        xp[:, :, padding : padding + H, padding : padding + W] = x
    s = xp.strides
    view = np.ndarray((4, 4, C, N, th, tw), xp.dtype, xp, 0, (s[2], s[3], s[1], s[0], 2 * s[2], 2 * s[3]))
    return np.ascontiguousarray(view)


def forward(x: np.ndarray, kernels: np.ndarray, padding: int) -> tuple[np.ndarray, np.ndarray]:
    """y (N, D, H', W') = the correlation of x (N, C, H, W), zero-padded by `padding`, with kernels (D, C, 3, 3),
    without bias; and V (16, C, T), the transformed input tiles backward needs."""
    N, C, H, W = x.shape
    D = len(kernels)
    Ho, Wo = H + 2 * padding - 2, W + 2 * padding - 2
    d = input_tiles(x, padding)
    th, tw = d.shape[4:]
    T = N * th * tw
    V = sandwich(BT, d.reshape(4, 4, C, T)).reshape(16, C, T)
    del d
    M = kernel_transform(kernels) @ V  # (16, D, T)
    Y = sandwich(AT, M.reshape(4, 4, D, T)).reshape(2, 2, D, N, th, tw)
    y = Y.transpose(3, 2, 4, 0, 5, 1).reshape(N, D, 2 * th, 2 * tw)  # y[n, d, 2a + i, 2b + j] = Y[i, j, d, n, a, b]
    if (2 * th, 2 * tw) != (Ho, Wo):
        y = np.ascontiguousarray(y[:, :, :Ho, :Wo])
    return y, V


def output_gradient_tiles(dy: np.ndarray, padding: int) -> np.ndarray:
    """dM = A dy A^T of dy's 2x2 tiles: dy (N, D, H', W') -> (16, D, T). An odd H' or W' gets the zero gradient
    of the outputs forward cut."""
    N, D, Ho, Wo = dy.shape
    th, tw = (Ho + 1) // 2, (Wo + 1) // 2
    if (2 * th, 2 * tw) != (Ho, Wo):
        whole = np.zeros((N, D, 2 * th, 2 * tw), dtype=dy.dtype)
        whole[:, :, :Ho, :Wo] = dy
        dy = whole
    dY = np.ascontiguousarray(dy.reshape(N, D, th, 2, tw, 2).transpose(3, 5, 1, 0, 2, 4))  # (2, 2, D, N, th, tw)
    return sandwich(AT.T, dY.reshape(2, 2, D, -1)).reshape(16, D, -1)


def kernel_gradient(dM: np.ndarray, V: np.ndarray, out: np.ndarray) -> None:
    """dkernels = G^T (dM @ V^T) G for dM (16, D, T) and forward's V (16, C, T), written into out (D, C, 3, 3)."""
    D, C = dM.shape[1], V.shape[1]
    dU = dM @ V.transpose(0, 2, 1)  # (16, D, C)
    out[...] = sandwich(G.T, dU.reshape(4, 4, D, C)).transpose(2, 3, 0, 1)


def input_gradient(
    dM: np.ndarray, kernels: np.ndarray, input_shape: tuple[int, int, int, int], padding: int
) -> np.ndarray:
    """dx (N, C, H, W) for input_shape from dM (16, D, T): dV = U^T @ dM, dd = B dV B^T of every tile, each
    tile's dd added at its pixels of the padded input (the adjoint of input_tiles: one strided add per tile
    offset (i, j), over every tile at once, channels first as dd has them), the padding cut."""
    N, C, H, W = input_shape
    T = dM.shape[2]
    th, tw = tiles_of(H, padding), tiles_of(W, padding)
    dV = kernel_transform(kernels).transpose(0, 2, 1) @ dM  # (16, C, T)
    dd = sandwich(BT.T, dV.reshape(4, 4, C, T)).reshape(4, 4, C, N, th, tw)
    del dV
    dxp = np.zeros((C, N, 2 * th + 2, 2 * tw + 2), dtype=dd.dtype)
    for i in range(4):
        for j in range(4):
            dxp[:, :, i : i + 2 * th : 2, j : j + 2 * tw : 2] += dd[i, j]
    return np.ascontiguousarray(dxp[:, :, padding : padding + H, padding : padding + W].transpose(1, 0, 2, 3))
