"""The initialisers' spreads: the scaled normal ones (xavier = glorot, he) and the uniform ones (Keras's
glorot_uniform, PyTorch's default) for dense and conv layers, with the convolution's fan-in counting its input
channels."""

import numpy as np
import pytest

import cnn


def _layer(kind: str, init: str) -> cnn.Layer:
    if kind == "dense":
        layer, fan_in, fan_out = cnn.Dense(300, 200), 300, 200
    else:  # 64 input channels: a fan-in without them would be 64x too small
        layer, fan_in, fan_out = cnn.Convolutional((64, 8, 8), 3, 32, bias="tied"), 64 * 9, 32 * 9
    layer.initialize(init, np.random.default_rng(0), np.float64)
    return layer, fan_in, fan_out


@pytest.mark.parametrize("init", ["xavier", "glorot", "he"])
@pytest.mark.parametrize("kind", ["dense", "conv"])
def test_scaled_normal_inits_have_the_right_spread_and_zero_biases(kind, init):
    layer, fan_in, fan_out = _layer(kind, init)
    weights = layer.params[next(iter(layer.params))]
    expected = np.sqrt(2 / fan_in) if init == "he" else np.sqrt(2 / (fan_in + fan_out))
    assert abs(weights.std() / expected - 1) < 0.02
    assert not layer.params["biases"].any()


@pytest.mark.parametrize("kind", ["dense", "conv"])
def test_glorot_uniform_is_uniform_within_kerass_limit_with_zero_biases(kind):
    layer, fan_in, fan_out = _layer(kind, "glorot_uniform")
    weights, biases = layer.params[next(iter(layer.params))], layer.params["biases"]
    limit = np.sqrt(6 / (fan_in + fan_out))
    assert np.abs(weights).max() <= limit
    assert np.abs(weights).max() > 0.97 * limit  # fills the interval: uniform, not a narrower normal
    assert np.std(weights) == pytest.approx(limit / np.sqrt(3), rel=0.03)
    assert not biases.any()


@pytest.mark.parametrize("kind", ["dense", "conv"])
def test_pytorch_init_draws_weights_and_biases_within_one_over_root_fan_in(kind):
    layer, fan_in, _ = _layer(kind, "pytorch")
    weights, biases = layer.params[next(iter(layer.params))], layer.params["biases"]
    bound = 1 / np.sqrt(fan_in)
    assert np.abs(weights).max() <= bound
    assert np.std(weights) == pytest.approx(bound / np.sqrt(3), rel=0.03)
    assert np.abs(biases).max() <= bound and biases.std() > 0


def test_pytorch_init_matches_torchs_default_bounds(torch):
    conv = torch.nn.Conv2d(64, 32, 3)
    dense = torch.nn.Linear(300, 200)
    ours_conv, _, _ = _layer("conv", "pytorch")
    ours_dense, _, _ = _layer("dense", "pytorch")
    for theirs, ours in ((conv, ours_conv), (dense, ours_dense)):
        w_bound = float(theirs.weight.detach().abs().max())
        b_bound = float(theirs.bias.detach().abs().max())
        w_ours = np.abs(next(iter(ours.params.values()))).max()
        assert w_ours == pytest.approx(w_bound, rel=0.05)
        assert np.abs(ours.params["biases"]).max() == pytest.approx(b_bound, rel=0.1)


@pytest.mark.parametrize("init", ["glorot_uniform", "pytorch"])
def test_uniform_inits_give_the_same_start_in_float32_and_float64(init):
    nets = [cnn.Sequential(cnn.build(cnn.NOTEBOOK_LAYERS), init=init, seed=3, dtype=dtype) for dtype in cnn.DTYPES]
    for a, b in zip(nets[0].layers, nets[1].layers, strict=True):
        for name in a.params:
            np.testing.assert_array_equal(a.params[name], b.params[name].astype(np.float32))
