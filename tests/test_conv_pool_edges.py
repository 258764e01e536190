"""Max pooling where the shipped networks do not go: windows that tile one side of the input but not the other.
(A convolution's fan-in over many input channels: tests/test_init.py; a max pooling stride other than its size
through save and load: tests/test_pooling.py.)"""

import numpy as np
import pytest

import cnn


@pytest.mark.parametrize(("shape", "size", "stride"), [((2, 4, 5), 2, 2), ((2, 5, 4), 2, 2), ((1, 7, 6), 3, 3)])
def test_maxpool_backward_where_windows_tile_one_side_only(shape, size, stride) -> None:
    """Rows or columns no window reaches get exactly zero gradient; the rest equals a loop over the windows."""
    pool = cnn.MaxPool(shape, size=size, stride=stride)
    rng = np.random.default_rng(1)
    x = rng.standard_normal((3, *shape))
    y = pool.forward(x)
    dy = rng.standard_normal(y.shape)
    np.full((3, *shape), 7.0).sum()  # leave non-zero memory behind for an uninitialised gradient to pick up
    dx = pool.backward(dy)
    expected = np.zeros_like(x)
    _, Ho, Wo = pool.output_shape
    for h in range(Ho):
        for w in range(Wo):
            window = x[:, :, h * stride : h * stride + size, w * stride : w * stride + size].reshape(3, shape[0], -1)
            first = window.argmax(axis=2)
            i, j = np.divmod(first, size)
            n, c = np.indices(first.shape)
            expected[n, c, h * stride + i, w * stride + j] += dy[:, :, h, w]
    np.testing.assert_array_equal(dx, expected)
