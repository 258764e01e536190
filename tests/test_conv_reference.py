"""The vectorized convolution equals the notebook's loops over scipy.signal (tests/reference/notebook.py)."""

import numpy as np
import pytest

import cnn
from tests.reference import notebook


@pytest.mark.parametrize(("channels", "kernel", "depth"), [(1, 3, 5), (3, 3, 2), (1, 5, 3), (3, 5, 4)])
def test_matches_notebook_loops(channels: int, kernel: int, depth: int) -> None:
    shape, n, lr = (channels, 9, 8), 3, 0.5
    rng = np.random.default_rng(channels * 10 + kernel)
    ours = cnn.Convolutional(shape, kernel, depth)
    ours.initialize("normal", np.random.default_rng(0), np.float64)
    x = rng.standard_normal((n, *shape))
    y = ours.forward(x)
    g = rng.standard_normal(y.shape)
    dx = ours.backward(g)

    kernels_sum = np.zeros_like(ours.params["kernels"])
    biases_sum = np.zeros_like(ours.params["biases"])
    for i in range(n):
        ref = notebook.Convolutional(shape, kernel, depth, np.random.default_rng(0))
        np.testing.assert_array_equal(ref.kernels, ours.params["kernels"])  # same draw order
        np.testing.assert_array_equal(ref.biases, ours.params["biases"])
        np.testing.assert_allclose(y[i], ref.forward(x[i]), rtol=0, atol=1e-10)
        np.testing.assert_allclose(dx[i], ref.backward(g[i], lr), rtol=0, atol=1e-10)
        kernels_sum += ref.kernels_gradient
        biases_sum += ref.biases_gradient
    np.testing.assert_allclose(ours.grads["kernels"], kernels_sum, rtol=0, atol=1e-10)
    np.testing.assert_allclose(ours.grads["biases"], biases_sum, rtol=0, atol=1e-10)


def test_tied_bias_is_one_value_per_filter() -> None:
    untied = cnn.Convolutional((2, 6, 6), 3, 4)
    tied = cnn.Convolutional((2, 6, 6), 3, 4, bias="tied")
    untied.initialize("normal", np.random.default_rng(0), np.float64)
    tied.initialize("normal", np.random.default_rng(0), np.float64)
    assert tied.params["biases"].shape == (4,)
    untied.params["biases"][...] = tied.params["biases"][:, None, None]
    x = np.random.default_rng(1).standard_normal((2, 2, 6, 6))
    np.testing.assert_allclose(tied.forward(x), untied.forward(x), rtol=1e-14)
    g = np.ones((2, 4, 4, 4))
    tied.backward(g)
    np.testing.assert_allclose(tied.grads["biases"], np.full(4, 2 * 16.0))
