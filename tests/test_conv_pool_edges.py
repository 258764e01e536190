"""Convolution and max pooling where the shipped networks do not go: many input channels, a stride other than the
size, windows that tile one side of the input but not the other."""

import numpy as np
import pytest

import cnn


@pytest.mark.parametrize("init", ["xavier", "glorot", "he"])
def test_convolution_inits_count_the_input_channels_in_the_fan_in(init: str) -> None:
    C, D, k = 64, 32, 3
    conv = cnn.Convolutional((C, 8, 8), k, D, bias="tied")
    conv.initialize(init, np.random.default_rng(0), np.float64)
    fan_in, fan_out = C * k * k, D * k * k
    expected = np.sqrt(2 / fan_in) if init == "he" else np.sqrt(2 / (fan_in + fan_out))
    assert abs(conv.params["kernels"].std() / expected - 1) < 0.02


def test_a_maxpool_with_its_own_stride_survives_save_and_load(tmp_path) -> None:
    layers = [cnn.MaxPool((1, 9, 9), size=3, stride=2), cnn.Flatten((1, 4, 4)), cnn.Dense(16, 2), cnn.Softmax()]
    net = cnn.Sequential(layers, init="xavier", seed=0)
    assert net.layers[0].config()["stride"] == 2
    cnn.save(net, tmp_path / "m.npz")
    loaded = cnn.load(tmp_path / "m.npz")
    assert (loaded.layers[0].size, loaded.layers[0].stride) == (3, 2)
    x = np.random.default_rng(0).standard_normal((3, 1, 9, 9))
    np.testing.assert_array_equal(loaded.predict(x), net.predict(x))


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
