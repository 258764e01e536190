"""Convolution padding and stride: hand-computed cases, the padded input's plain convolution, the strided
subsampling, gradient checks, the fast input gradient against col2im, and same bits on any thread count."""

import numpy as np
import pytest

import cnn
from cnn.conv import col2im, im2col, input_gradient
from tests.layer_checks import assert_same_bits_on_one_and_two_cores, check_gradients, problem


def conv(shape, k, depth, **kwargs) -> cnn.Convolutional:
    layer = cnn.Convolutional(shape, k, depth, **kwargs)
    layer.initialize("normal", np.random.default_rng(5), np.float64)
    return layer


def reference(x: np.ndarray, kernels: np.ndarray, padding: int, stride: int) -> np.ndarray:
    """Loops over every output pixel of the zero-padded input: the definition."""
    N, C, H, W = x.shape
    D, _, k, _ = kernels.shape
    xp = np.zeros((N, C, H + 2 * padding, W + 2 * padding))
    xp[:, :, padding : padding + H, padding : padding + W] = x
    Ho, Wo = (H + 2 * padding - k) // stride + 1, (W + 2 * padding - k) // stride + 1
    y = np.zeros((N, D, Ho, Wo))
    for n in range(N):
        for d in range(D):
            for h in range(Ho):
                for w in range(Wo):
                    window = xp[n, :, h * stride : h * stride + k, w * stride : w * stride + k]
                    y[n, d, h, w] = np.sum(window * kernels[d])
    return y


def test_hand_computed_padding_and_stride() -> None:
    x = np.arange(1.0, 10.0).reshape(1, 1, 3, 3)  # 1 2 3 / 4 5 6 / 7 8 9
    layer = cnn.Convolutional((1, 3, 3), 3, 1, bias="tied", padding="same")
    layer.params["kernels"][...] = 1.0
    layer.params["biases"][...] = 0.0
    # each output: the sum of the pixel's 3x3 neighbourhood inside the image
    np.testing.assert_array_equal(layer.forward(x)[0, 0], [[12, 21, 16], [27, 45, 33], [24, 39, 28]])
    strided = cnn.Convolutional((1, 3, 3), 3, 1, bias="tied", padding=1, stride=2)
    strided.params["kernels"][...] = 1.0
    strided.params["biases"][...] = 0.0
    np.testing.assert_array_equal(strided.forward(x)[0, 0], [[12, 16], [24, 28]])
    assert strided.output_shape == (1, 2, 2)
    two = cnn.Convolutional((1, 3, 3), 2, 1, bias="tied", stride=2)  # windows at (0, 0) only: 1 + 2 + 4 + 5
    two.params["kernels"][...] = 1.0
    two.params["biases"][...] = 0.0
    np.testing.assert_array_equal(two.forward(x)[0, 0], [[12]])


@pytest.mark.parametrize(("shape", "k", "padding", "stride"), [
    ((2, 7, 6), 3, 1, 1), ((2, 7, 6), 3, 2, 2), ((1, 8, 8), 5, "same", 1), ((3, 9, 7), 2, 0, 3), ((2, 5, 5), 3, 0, 2),
])  # fmt: skip
def test_forward_is_the_definition(shape, k, padding, stride) -> None:
    x = np.random.default_rng(0).standard_normal((2, *shape))
    layer = conv(shape, k, 3, bias="tied", padding=padding, stride=stride)
    p = (k - 1) // 2 if padding == "same" else padding
    want = reference(x, layer.params["kernels"], p, stride) + layer.params["biases"][:, None, None]
    np.testing.assert_allclose(layer.forward(x), want, rtol=1e-12, atol=1e-12)
    if padding == "same":
        assert layer.output_shape[1:] == shape[1:]


def test_padding_is_the_plain_convolution_of_the_zero_padded_input() -> None:
    x = np.random.default_rng(1).standard_normal((3, 2, 6, 5))
    padded_layer = conv((2, 6, 5), 3, 4, bias="tied", padding=2)
    plain = conv((2, 10, 9), 3, 4, bias="tied")
    xp = np.pad(x, ((0, 0), (0, 0), (2, 2), (2, 2)))
    np.testing.assert_array_equal(padded_layer.forward(x), plain.forward(xp))  # the same columns, the same product


@pytest.mark.parametrize(("padding", "stride", "bias"), [(1, 1, "untied"), (2, 1, "tied"), (1, 2, "untied"),
                                                          (0, 3, "tied"), ("same", 1, "tied")])  # fmt: skip
def test_gradients_match_finite_differences(padding, stride, bias) -> None:
    layer = conv((2, 7, 6), 3, 3, bias=bias, padding=padding, stride=stride)
    check_gradients(layer, np.random.default_rng(2).standard_normal((2, 2, 7, 6)))


@pytest.mark.parametrize(("shape", "k", "padding"), [((3, 8, 7), 3, 1), ((2, 6, 6), 5, 2), ((1, 5, 9), 3, 4)])
def test_fast_input_gradient_is_col2im(shape, k, padding) -> None:
    rng = np.random.default_rng(3)
    layer = conv(shape, k, 4, padding=padding)
    dy = rng.standard_normal((5, *layer.output_shape))
    kernels = layer.params["kernels"]
    plain = col2im(kernels.reshape(4, -1).T @ dy.reshape(5, 4, -1), (5, *shape), k, padding)
    np.testing.assert_allclose(input_gradient(kernels, dy, (5, *shape), padding), plain, rtol=1e-12, atol=1e-12)


def test_col2im_is_the_adjoint_of_im2col() -> None:
    rng = np.random.default_rng(4)
    x = rng.standard_normal((2, 3, 7, 8))
    for padding, stride in [(0, 1), (1, 2), (2, 3)]:
        cols = im2col(x, 3, padding, stride)
        c = rng.standard_normal(cols.shape)
        # <im2col(x), c> = <x, col2im(c)>
        assert np.isclose(np.sum(cols * c), np.sum(x * col2im(c, x.shape, 3, padding, stride)), rtol=1e-12)


def test_bad_padding_and_stride_are_refused() -> None:
    with pytest.raises(cnn.ArchitectureError, match='padding "same" needs an odd kernel_size and stride 1'):
        cnn.Convolutional((1, 8, 8), 2, 3, padding="same")
    with pytest.raises(cnn.ArchitectureError, match='padding "same" needs an odd kernel_size and stride 1'):
        cnn.Convolutional((1, 8, 8), 3, 3, padding="same", stride=2)
    with pytest.raises(cnn.ArchitectureError, match='padding must be an integer >= 0 or "same", got -1'):
        cnn.Convolutional((1, 8, 8), 3, 3, padding=-1)
    with pytest.raises(cnn.ArchitectureError, match="stride must be a positive integer, got 0"):
        cnn.Convolutional((1, 8, 8), 3, 3, stride=0)
    with pytest.raises(cnn.ArchitectureError, match=r"kernel_size 9 is larger than the input \(1, 3, 3\) with pad"):
        cnn.Convolutional((1, 3, 3), 9, 3, padding=2)


def test_config_round_trip_and_defaults_keep_the_old_config() -> None:
    layer = cnn.Convolutional((1, 8, 8), 3, 2, bias="tied", padding="same", stride=1)
    again = cnn.layer_from_config(layer.config())
    assert (again.padding, again.stride, again.output_shape) == (1, 1, (2, 8, 8))
    strided = cnn.layer_from_config(cnn.Convolutional((1, 8, 8), 3, 2, padding=2, stride=3).config())
    assert (strided.padding, strided.stride, strided.output_shape) == (2, 3, (2, 4, 4))
    assert cnn.Convolutional((1, 8, 8), 3, 2).config() == {
        "type": "Convolutional", "input_shape": [1, 8, 8], "kernel_size": 3, "depth": 2, "bias": "untied",
    }  # fmt: skip


def test_builder_specs() -> None:
    layers = cnn.build(
        [{"type": "conv", "depth": 4, "kernel_size": 3, "padding": "same", "bias": "tied"},
         {"type": "conv", "depth": 2, "kernel_size": 3, "padding": 1, "stride": 2}, {"type": "flatten"},
         {"type": "dense"}, {"type": "softmax"}], input_shape=(1, 8, 8), n_classes=3,
    )  # fmt: skip
    assert [layer.output_shape for layer in layers[:2]] == [(4, 8, 8), (2, 4, 4)]
    for spec, message in [
        ({"padding": "valid"}, r'train.layers\[0\] \(conv\): padding must be an integer >= 0 or "same", got \'valid\''),
        ({"stride": 0}, r"train.layers\[0\] \(conv\): stride must be a positive integer, got 0"),
        ({"kernel_size": 4, "padding": "same"}, r'train.layers\[0\] \(conv\): padding "same" needs an odd kernel'),
    ]:
        with pytest.raises(cnn.ArchitectureError, match=message):
            cnn.build([{"type": "conv", "depth": 2, "kernel_size": 3, **spec}, {"type": "flatten"}, {"type": "dense"}])


def test_training_gives_the_same_bits_on_one_and_two_cores(monkeypatch) -> None:
    specs = [{"type": "conv", "depth": 4, "kernel_size": 3, "padding": "same", "bias": "tied"}, {"type": "relu"},
             {"type": "conv", "depth": 4, "kernel_size": 3, "padding": 1, "stride": 2}, {"type": "relu"},
             {"type": "flatten"}, {"type": "dense"}, {"type": "softmax"}]  # fmt: skip
    x, y = problem(160)

    def make_net() -> cnn.Sequential:
        return cnn.Sequential(cnn.build(specs, (1, 8, 8), 3), init="he", seed=1, dtype="float32")

    assert_same_bits_on_one_and_two_cores(monkeypatch, make_net, x, y, batch_size=64)


def test_float32_stays_float32() -> None:
    layer = cnn.Convolutional((2, 7, 7), 3, 3, padding=1, stride=2, dtype="float32")
    x = np.ones((2, 2, 7, 7), dtype=np.float32)
    y = layer.forward(x)
    assert y.dtype == np.float32 and layer.backward(np.ones_like(y)).dtype == np.float32
    assert all(g.dtype == np.float32 for g in layer.grads.values())
