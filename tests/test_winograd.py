"""Winograd's F(2x2, 3x3) (cnn.winograd, Convolutional(algorithm="winograd")) against the plain im2col layer: the
same forward, kernel, bias and input gradients (float64 to rounding, float32 within a bound of float32's own
rounding), finite differences, odd and even output sizes, padding, the split step's bits on one and two cores,
the model file, the layer spec and its errors."""

import copy
from pathlib import Path

import numpy as np
import pytest

import cnn
from cnn import winograd
from pipeline import params
from pipeline.errors import UserError
from tests.layer_checks import assert_same_bits_on_one_and_two_cores, check_gradients, problem
from tests.test_params import DEFAULTS, write


def pair(shape, depth, dtype="float64", seed=0, **kwargs) -> tuple[cnn.Convolutional, cnn.Convolutional]:
    """An im2col layer and a winograd layer with the same kernels and biases."""
    plain = cnn.Convolutional(shape, 3, depth, dtype=dtype, **kwargs)
    plain.initialize("he", np.random.default_rng(seed), dtype)
    biases = plain.params["biases"]
    biases[...] = np.random.default_rng(seed + 1).standard_normal(biases.shape)
    fast = cnn.Convolutional(shape, 3, depth, dtype=dtype, algorithm="winograd", **kwargs)
    fast.initialize(None, None, dtype)
    for name, value in plain.params.items():
        fast.params[name][...] = value
    return plain, fast


def relative(a: np.ndarray, b: np.ndarray) -> float:
    """The largest difference relative to the largest value of b."""
    return float(np.max(np.abs(a - b)) / np.max(np.abs(b)))


def passes(layer: cnn.Convolutional, x: np.ndarray, dy: np.ndarray) -> dict[str, np.ndarray]:
    y = layer.forward(x)
    dx = layer.backward(dy)
    return {"y": y, "dx": dx, **{f"d{name}": g.copy() for name, g in layer.grads.items()}}


# (input (C, H, W), filters, padding, bias, batch): even and odd outputs both ways, padding 0 / 1 / "same",
# batch 1, one channel, wide channels, the smallest map (4x4 -> 2x2: one tile)
CASES = [
    ((3, 10, 10), 4, 0, "tied", 2),  # 8x8: whole tiles
    ((2, 9, 8), 3, 0, "untied", 3),  # 7x6: odd rows
    ((2, 8, 11), 3, 0, "tied", 2),  # 6x9: odd columns
    ((3, 7, 9), 5, 1, "untied", 2),  # 7x9 padded
    ((2, 7, 6), 3, "same", "tied", 2),
    ((4, 6, 6), 2, 2, "tied", 1),  # batch 1, padding 2
    ((1, 28, 28), 8, 0, "untied", 4),  # one channel: a first layer on MNIST
    ((64, 5, 5), 32, 0, "tied", 3),  # wide: 64 channels in, 32 filters
    ((2, 4, 4), 3, 0, "tied", 2),  # one tile
]
IDS = ["even", "odd-rows", "odd-cols", "pad1", "same", "batch1", "C1", "wide", "one-tile"]


@pytest.mark.parametrize(("shape", "depth", "padding", "bias", "n"), CASES, ids=IDS)
def test_float64_equals_im2col_to_rounding(shape, depth, padding, bias, n) -> None:
    plain, fast = pair(shape, depth, padding=padding, bias=bias)
    assert fast.output_shape == plain.output_shape
    rng = np.random.default_rng(3)
    x = rng.standard_normal((n, *shape))
    dy = rng.standard_normal((n, *plain.output_shape))
    want, got = passes(plain, x, dy), passes(fast, x, dy)
    assert got.keys() == want.keys() == {"y", "dx", "dkernels", "dbiases"}
    for name in want:
        assert got[name].shape == want[name].shape and got[name].dtype == np.float64
        assert relative(got[name], want[name]) < 1e-12, name


def test_float32_stays_within_a_few_roundings_of_im2col() -> None:
    """Both float32 paths against float64 im2col. F(2x2, 3x3) rounds more often than im2col: its transforms add
    up to 4 (input), 9 (output) and 9 (kernel, times 1/4) terms around each product, each sum rounding by up to
    half an ulp, so its error bound is a small multiple of the direct product's. Allowed: 8x the float32 im2col
    error and 2e-6 relative to the largest value (float32's epsilon is 1.2e-7); measured here: 0.4-2.7x im2col's,
    at most 7e-7 (the kernel gradient, a sum over 784 tiles)."""
    shape, n = (32, 14, 14), 4
    exact = passes(pair(shape, 64, padding=1, bias="tied")[0], *inputs(shape, (64, 14, 14), n))
    plain, fast = pair(shape, 64, dtype="float32", padding=1, bias="tied")
    x, dy = (a.astype(np.float32) for a in inputs(shape, (64, 14, 14), n))
    want, got = passes(plain, x, dy), passes(fast, x, dy)
    for name in exact:
        assert got[name].dtype == np.float32, name
        mine, theirs = relative(got[name], exact[name]), relative(want[name], exact[name])
        assert mine < max(8 * theirs, 1e-7) and mine < 2e-6, (name, mine, theirs)


def inputs(shape, output_shape, n):
    rng = np.random.default_rng(4)
    return rng.standard_normal((n, *shape)), rng.standard_normal((n, *output_shape))


def test_one_dimensional_f23_is_the_correlation() -> None:
    """The 1-D core: A^T [(G g) * (B^T d)] = [d0 g0 + d1 g1 + d2 g2, d1 g0 + d2 g1 + d3 g2]."""
    rng = np.random.default_rng(5)
    d, g = rng.standard_normal(4), rng.standard_normal(3)
    np.testing.assert_allclose(winograd.AT @ ((winograd.G @ g) * (winograd.BT @ d)), [d[:3] @ g, d[1:] @ g])


@pytest.mark.parametrize(("shape", "padding", "bias"), [((2, 7, 6), 1, "untied"), ((3, 6, 5), 0, "tied")])
def test_gradients_match_finite_differences(shape, padding, bias) -> None:
    _, layer = pair(shape, 3, padding=padding, bias=bias)
    check_gradients(layer, np.random.default_rng(6).standard_normal((2, *shape)))


def test_first_layer_skips_the_input_gradient_and_backward_frees_the_tiles() -> None:
    plain, fast = pair((2, 9, 9), 3, padding=1)
    x, dy = inputs((2, 9, 9), plain.output_shape, 2)
    plain.forward(x), fast.forward(x)
    assert fast.tiles.shape == (16, 2, 2 * 5 * 5) and fast.cols is None and plain.tiles is None
    fast.needs_input_gradient = plain.needs_input_gradient = False
    assert fast.backward(dy) is None and plain.backward(dy) is None
    assert fast.tiles is None
    assert relative(fast.grads["kernels"], plain.grads["kernels"]) < 1e-12


def test_a_trained_network_is_im2col_s_to_rounding_and_its_model_file_keeps_the_algorithm(tmp_path: Path) -> None:
    specs = [{"type": "conv", "depth": 4, "kernel_size": 3, "padding": "same", "bias": "tied"}, {"type": "relu"},
             {"type": "conv", "depth": 6, "kernel_size": 3}, {"type": "relu"}, {"type": "maxpool"},
             {"type": "flatten"}, {"type": "dense"}, {"type": "softmax"}]  # fmt: skip
    wino = [{**s, "algorithm": "winograd"} if s["type"] == "conv" else s for s in specs]
    x, y = problem(40, shape=(1, 9, 9))
    nets = [cnn.Sequential(cnn.build(s, (1, 9, 9), 3), init="he", seed=2) for s in (specs, wino)]
    for net in nets:
        net.fit(x, y, cnn.CategoricalCrossEntropy(), cnn.Adam(0.01), epochs=3, batch_size=8, seed=1)
    for a, b in zip(*(net.param_layers for net in nets), strict=True):
        for name in a.params:
            assert relative(b.params[name], a.params[name]) < 1e-9
    path = tmp_path / "model.npz"
    cnn.save(nets[1], path)
    again = cnn.load(path)
    assert [getattr(layer, "algorithm", None) for layer in again.layers[:3]] == ["winograd", None, "winograd"]
    np.testing.assert_array_equal(again.predict(x), nets[1].predict(x))
    assert "algorithm" not in nets[0].layers[0].config()  # im2col, the default: model files keep their bytes
    assert nets[1].layers[0].config()["algorithm"] == "winograd"


def test_training_gives_the_same_bits_on_one_and_two_cores(monkeypatch) -> None:
    specs = [{"type": "conv", "depth": 4, "kernel_size": 3, "padding": 1, "bias": "tied", "algorithm": "winograd"},
             {"type": "relu"}, {"type": "conv", "depth": 6, "kernel_size": 3, "algorithm": "winograd"},
             {"type": "relu"}, {"type": "flatten"}, {"type": "dense"}, {"type": "softmax"}]  # fmt: skip
    x, y = problem(160, shape=(2, 9, 9))

    def make_net() -> cnn.Sequential:
        return cnn.Sequential(cnn.build(specs, (2, 9, 9), 3), init="he", seed=1, dtype="float32")

    assert_same_bits_on_one_and_two_cores(monkeypatch, make_net, x, y, batch_size=64)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"kernel_size": 5}, "algorithm winograd computes 3x3 kernels at stride 1, got kernel_size 5, stride 1; use "
         "algorithm im2col"),
        ({"stride": 2}, "algorithm winograd computes 3x3 kernels at stride 1, got kernel_size 3, stride 2; use "
         "algorithm im2col"),
        ({"algorithm": "fft"}, "algorithm must be im2col or winograd, got 'fft'"),
    ],
)  # fmt: skip
def test_wrong_use_is_one_line_saying_what_to_use(kwargs, message: str) -> None:
    spec = {"type": "conv", "depth": 2, "kernel_size": 3, "algorithm": "winograd", **kwargs}
    with pytest.raises(cnn.ArchitectureError) as info:
        cnn.build([spec, {"type": "flatten"}, {"type": "dense"}])
    assert str(info.value) == f"train.layers[0] (conv): {message}"


def test_check_accepts_the_algorithm_and_refuses_a_wrong_one(tmp_path: Path) -> None:
    data = copy.deepcopy(DEFAULTS)
    data["train"]["layers"] = [{"type": "conv", "depth": 2, "kernel_size": 3, "algorithm": "winograd"},
                               {"type": "flatten"}, {"type": "dense"}, {"type": "softmax"}]  # fmt: skip
    checked = params.check_all(write(tmp_path, data))[1]
    assert checked.layers[0]["algorithm"] == "winograd"
    data["train"]["layers"][0]["algorithm"] = "Winograd"
    with pytest.raises(UserError) as info:
        params.check_all(write(tmp_path, data))
    message = str(info.value)
    assert "train.layers" in message and "algorithm must be im2col or winograd, got 'Winograd'" in message
    assert "\n" not in message
