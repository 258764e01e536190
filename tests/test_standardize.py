"""Standardize: y = (x - mean) / std and dx = dy / std in the input's dtype, subtract then divide (torchvision's
Normalize, the bits of torch's sub_().div_()), its spec refused with one line when bad, kept in the model file,
the same bits on one and two cores."""

import math

import numpy as np
import pytest

import cnn
from tests.layer_checks import assert_same_bits_on_one_and_two_cores, check_gradients, problem

MEAN, STD = 0.1307, 0.3081  # PyTorch's examples/mnist
PIXELS = (np.arange(256) / 255).reshape(1, 1, 16, 16)  # every value an MNIST image in [0, 1] takes


def by_hand(x: np.ndarray, scalar: type) -> np.ndarray:
    """(x - MEAN) / STD one element at a time in `scalar` arithmetic (Python floats: float64; np.float32: float32)."""
    mean, std = scalar(MEAN), scalar(STD)
    return np.array([(scalar(v) - mean) / std for v in x.ravel().tolist()]).reshape(x.shape)


@pytest.mark.parametrize(("dtype", "scalar"), [("float64", float), ("float32", np.float32)])
def test_forward_and_backward_by_hand(dtype: str, scalar: type) -> None:
    layer = cnn.Standardize((1, 16, 16), mean=MEAN, std=STD)
    x = PIXELS.astype(dtype)
    y = layer.forward(x)
    assert y.dtype == np.dtype(dtype) and y.shape == x.shape
    np.testing.assert_array_equal(y, by_hand(x, scalar).astype(dtype))
    assert y[0, 0, 0, 0] == scalar(-MEAN) / scalar(STD) and y[0, 0, -1, -1] == (1 - scalar(MEAN)) / scalar(STD)
    dy = np.random.default_rng(0).standard_normal(x.shape).astype(dtype)
    dx = layer.backward(dy)
    assert dx.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(dx, np.array([scalar(g) / scalar(STD) for g in dy.ravel().tolist()]).reshape(x.shape))


def test_any_shape_passes_through_and_the_input_is_left_alone() -> None:
    for shape in ((5,), (2, 3, 4), (3, 7, 7)):
        layer = cnn.Standardize(mean=-1, std=2)
        assert layer.connect(shape) == shape
        x = np.random.default_rng(1).standard_normal((4, *shape))
        before = x.copy()
        np.testing.assert_array_equal(layer.forward(x), (before + 1) / 2)
        np.testing.assert_array_equal(x, before)
    assert layer.params == {} and layer.buffers == {}


def test_gradient_check() -> None:
    layer = cnn.Standardize((3, 4), mean=MEAN, std=STD)
    check_gradients(layer, np.random.default_rng(2).standard_normal((2, 3, 4)))


def test_first_layer_returns_no_input_gradient() -> None:
    net = cnn.Sequential(cnn.build(SPECS, (1, 8, 8), 3), init="he")
    assert isinstance(net.layers[0], cnn.Standardize) and not net.layers[0].needs_input_gradient
    net.forward(np.zeros((2, 1, 8, 8)))
    assert net.layers[0].backward(np.ones((2, 1, 8, 8))) is None


END = [{"type": "flatten"}, {"type": "dense"}, {"type": "softmax"}]
BAD = [
    ({"mean": MEAN}, r"train.layers\[0\] \(standardize\): missing std$"),
    ({"std": STD}, r"train.layers\[0\] \(standardize\): missing mean$"),
    ({}, r"missing mean, std$"),
    ({"mean": MEAN, "std": STD, "eps": 1}, r"unknown key\(s\) eps; allowed: mean, std$"),
    ({"mean": MEAN, "std": 0}, r"\(standardize\): standardize std must be a finite number > 0 .*, got 0$"),
    ({"mean": MEAN, "std": -0.3}, r"standardize std must be a finite number > 0 .*, got -0.3$"),
    ({"mean": MEAN, "std": math.inf}, r"standardize std must be a finite number > 0 .*, got inf$"),
    ({"mean": MEAN, "std": True}, r"standardize std must be a finite number > 0 .*, got True$"),
    ({"mean": math.nan, "std": STD}, r"standardize mean must be a finite number .*, got nan$"),
    ({"mean": "0.1307", "std": STD}, r"standardize mean must be a finite number .*, got '0.1307'$"),
    ({"mean": [MEAN], "std": STD}, r"standardize mean must be a finite number .*, got \[0.1307\]$"),
]


@pytest.mark.parametrize(("keys", "message"), BAD, ids=[m for _, m in BAD])
def test_a_bad_spec_gets_one_line_naming_it(keys: dict, message: str) -> None:
    with pytest.raises(cnn.ArchitectureError, match=message) as error:
        cnn.build([{"type": "standardize", **keys}, *END])
    assert "\n" not in str(error.value)


SPECS = [{"type": "standardize", "mean": MEAN, "std": STD}, {"type": "conv", "depth": 3, "kernel_size": 3},
         {"type": "relu"}, {"type": "flatten"}, {"type": "dense"}, {"type": "softmax"}]  # fmt: skip


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_the_model_file_keeps_it_so_predict_takes_raw_images(tmp_path, dtype: str) -> None:
    net = cnn.Sequential(cnn.build(SPECS, (1, 8, 8), 3), init="he", seed=4, dtype=dtype)
    cnn.save(net, tmp_path / "model.npz")
    loaded = cnn.load(tmp_path / "model.npz")
    assert loaded.layers[0].config() == {"type": "Standardize", "mean": MEAN, "std": STD, "input_shape": [1, 8, 8]}
    raw = np.random.default_rng(3).random((6, 1, 8, 8)).astype(dtype)
    np.testing.assert_array_equal(loaded.predict(raw), net.predict(raw))
    by_layers = ((raw - MEAN) / STD).astype(dtype)  # the rest of the network on inputs standardised beforehand
    for layer in loaded.layers[1:]:
        by_layers = layer.forward(by_layers)
    np.testing.assert_array_equal(loaded.predict(raw), by_layers)
    net.layers[0].std = 0.0  # a model file whose spec is bad: refused on load, one line
    cnn.save(net, tmp_path / "bad.npz")
    with pytest.raises(cnn.ModelFileError, match=r"layers\[0\]: standardize std must be a finite number > 0"):
        cnn.load(tmp_path / "bad.npz")


def test_float32_bits_are_torchs_sub_div(torch) -> None:
    """torchvision's Normalize computes tensor.sub_(mean).div_(std): cnn gives the same bits."""
    x = np.concatenate([PIXELS.reshape(1, 1, 16, 16), np.random.default_rng(5).random((3, 1, 16, 16))]).astype("f4")
    want = torch.from_numpy(x.copy()).sub_(MEAN).div_(STD).numpy()
    np.testing.assert_array_equal(cnn.Standardize(mean=MEAN, std=STD).forward(x), want)


def test_training_gives_the_same_bits_on_one_and_two_cores(monkeypatch) -> None:
    x, y = problem(160)

    def make_net() -> cnn.Sequential:
        return cnn.Sequential(cnn.build(SPECS, (1, 8, 8), 3), init="he", seed=1, dtype="float32")

    assert_same_bits_on_one_and_two_cores(monkeypatch, make_net, x, y, batch_size=64)
