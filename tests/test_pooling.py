"""Average pooling and global average pooling: hand-computed cases, gradient checks, configs (every
constructor argument, MaxPool's too) and builder specs, same bits on one and two cores."""

import numpy as np
import pytest

import cnn
from tests.layer_checks import assert_same_bits_on_one_and_two_cores, check_gradients, problem

X = np.arange(16.0).reshape(1, 1, 4, 4)  # rows 0..3, 4..7, 8..11, 12..15


def test_avgpool_by_hand() -> None:
    pool = cnn.AvgPool((1, 4, 4), 2)
    np.testing.assert_array_equal(pool.forward(X)[0, 0], [[2.5, 4.5], [10.5, 12.5]])
    dx = pool.backward(np.array([[[[4.0, 8.0], [12.0, 16.0]]]]))
    np.testing.assert_array_equal(dx[0, 0], [[1, 1, 2, 2], [1, 1, 2, 2], [3, 3, 4, 4], [3, 3, 4, 4]])
    overlapping = cnn.AvgPool((1, 4, 4), 2, stride=1)
    assert overlapping.output_shape == (1, 3, 3)
    np.testing.assert_array_equal(overlapping.forward(X)[0, 0], [[2.5, 3.5, 4.5], [6.5, 7.5, 8.5], [10.5, 11.5, 12.5]])
    # the centre pixels belong to 4 windows, the corners to 1
    dx = overlapping.backward(np.full((1, 1, 3, 3), 4.0))
    np.testing.assert_array_equal(dx[0, 0], [[1, 2, 2, 1], [2, 4, 4, 2], [2, 4, 4, 2], [1, 2, 2, 1]])
    uncovered = cnn.AvgPool((1, 5, 5), 2)  # the last row and column are in no window
    uncovered.forward(np.ones((1, 1, 5, 5)))
    dx = uncovered.backward(np.ones((1, 1, 2, 2)))
    assert np.all(dx[0, 0, 4] == 0) and np.all(dx[0, 0, :, 4] == 0) and np.all(dx[0, 0, :4, :4] == 0.25)


@pytest.mark.parametrize(("shape", "size", "stride"), [((2, 8, 8), 2, 2), ((2, 7, 8), 2, 2), ((1, 9, 9), 2, 3),
                                                       ((2, 7, 7), 3, 1), ((2, 9, 8), 3, 2)])  # fmt: skip
def test_avgpool_backward_equals_the_plain_sum_over_window_offsets(shape, size, stride) -> None:
    """Tiled, one side untiled, gaps between windows, overlapping: the same bits as adding dy / size^2 into
    zeros at every window offset, whether the layer assigns (windows apart) or adds (windows overlapping)."""
    pool = cnn.AvgPool(shape, size, stride)
    dy = np.random.default_rng(2).standard_normal((3, *pool.output_shape))
    np.full((3, *shape), 7.0).sum()  # leave non-zero memory behind for an uninitialised gradient to pick up
    dx = pool.backward(dy)
    expected, share = np.zeros((3, *shape)), dy * (1.0 / size**2)
    _, Ho, Wo = pool.output_shape
    for i in range(size):
        for j in range(size):
            expected[:, :, i : i + stride * Ho : stride, j : j + stride * Wo : stride][:, :, :Ho, :Wo] += share
    np.testing.assert_array_equal(dx, expected)


def test_global_avgpool_by_hand() -> None:
    pool = cnn.GlobalAvgPool((2, 4, 4))
    x = np.concatenate([X, -2 * X], axis=1)
    np.testing.assert_array_equal(pool.forward(x), [[7.5, -15.0]])
    assert pool.output_shape == (2,)
    dx = pool.backward(np.array([[16.0, 32.0]]))
    assert dx.shape == (1, 2, 4, 4) and np.all(dx[0, 0] == 1) and np.all(dx[0, 1] == 2)


@pytest.mark.parametrize("make", [lambda: cnn.AvgPool((2, 6, 6), 2), lambda: cnn.AvgPool((1, 7, 6), 3, stride=2),
                                  lambda: cnn.GlobalAvgPool((3, 5, 4))])  # fmt: skip
def test_gradients_match_finite_differences(make) -> None:
    layer = make()
    check_gradients(layer, np.random.default_rng(0).standard_normal((2, *layer.input_shape)))


def test_float32_stays_float32() -> None:
    x = np.ones((2, 3, 6, 6), dtype=np.float32)
    for layer in (cnn.AvgPool((3, 6, 6), 3, stride=1), cnn.GlobalAvgPool((3, 6, 6))):
        y = layer.forward(x)
        assert y.dtype == np.float32 and layer.backward(np.ones_like(y)).dtype == np.float32


@pytest.mark.parametrize("layer", [cnn.MaxPool((2, 9, 9), 3, stride=2), cnn.AvgPool((2, 9, 9), 3, stride=2),
                                   cnn.AvgPool((1, 8, 8)), cnn.GlobalAvgPool((4, 3, 3))], ids=repr)  # fmt: skip
def test_config_carries_every_argument_and_a_saved_model_loads(tmp_path, layer) -> None:
    again = cnn.layer_from_config(layer.config())
    assert type(again) is type(layer) and again.config() == layer.config()
    assert again.output_shape == layer.output_shape
    net = cnn.Sequential([layer, cnn.Flatten(layer.output_shape), cnn.Dense(int(np.prod(layer.output_shape)), 2)])
    cnn.save(net, tmp_path / "model.npz")
    loaded = cnn.load(tmp_path / "model.npz")
    x = np.random.default_rng(0).standard_normal((3, *layer.input_shape))
    np.testing.assert_array_equal(loaded.predict(x), net.predict(x))
    assert repr(loaded) == repr(net)


def test_builder_specs_and_errors() -> None:
    layers = cnn.build([{"type": "avgpool", "size": 3, "stride": 1}, {"type": "avgpool"}, {"type": "global_avgpool"},
                        {"type": "dense"}, {"type": "softmax"}], input_shape=(2, 8, 8), n_classes=2)  # fmt: skip
    assert [layer.output_shape for layer in layers[:3]] == [(2, 6, 6), (2, 3, 3), (2,)]
    with pytest.raises(cnn.ArchitectureError, match=r"train.layers\[0\] \(avgpool\): size 9 is larger than the input"):
        cnn.build([{"type": "avgpool", "size": 9}], input_shape=(1, 8, 8))
    with pytest.raises(cnn.ArchitectureError, match=r"train.layers\[1\] \(global_avgpool\): expects an image input"):
        cnn.build([{"type": "flatten"}, {"type": "global_avgpool"}], input_shape=(1, 8, 8))
    with pytest.raises(cnn.ArchitectureError, match=r"train.layers\[0\] \(global_avgpool\): unknown key\(s\) size"):
        cnn.build([{"type": "global_avgpool", "size": 2}], input_shape=(1, 8, 8))


def test_training_gives_the_same_bits_on_one_and_two_cores(monkeypatch) -> None:
    specs = [{"type": "conv", "depth": 4, "kernel_size": 3, "padding": 1, "bias": "tied"}, {"type": "relu"},
             {"type": "avgpool"}, {"type": "conv", "depth": 6, "kernel_size": 3, "bias": "tied"}, {"type": "relu"},
             {"type": "global_avgpool"}, {"type": "dense"}, {"type": "softmax"}]  # fmt: skip
    x, y = problem(160)

    def make_net() -> cnn.Sequential:
        return cnn.Sequential(cnn.build(specs, (1, 8, 8), 3), init="he", seed=1, dtype="float32")

    assert_same_bits_on_one_and_two_cores(monkeypatch, make_net, x, y, batch_size=64)
