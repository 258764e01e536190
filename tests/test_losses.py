"""Losses: finite-difference gradients, stability at outputs of exactly 0 and 1, fused gradients."""

import warnings

import numpy as np
import pytest

import cnn
from cnn import step
from tests.test_layers import numerical_gradient, rel_error


def targets(name: str, rng: np.random.Generator) -> np.ndarray:
    if name == "mse":
        return rng.standard_normal((3, 4))
    return cnn.one_hot(rng.integers(0, 4, 3), 4)


@pytest.mark.parametrize("name", sorted(cnn.LOSSES))
def test_gradient_matches_finite_differences(name: str) -> None:
    rng = np.random.default_rng(0)
    loss = cnn.LOSSES[name]()
    y = targets(name, rng)
    p = rng.uniform(0.05, 0.95, y.shape)
    numeric = numerical_gradient(lambda: loss.value(y, p), p)
    assert rel_error(loss.gradient(y, p), numeric) < 1e-6


def test_values_match_their_formulas() -> None:
    y = np.array([[1.0, 0.0], [0.0, 1.0]])
    p = np.array([[0.8, 0.3], [0.4, 0.9]])
    bce = -np.mean(y * np.log(p) + (1 - y) * np.log(1 - p))  # the notebook's
    assert cnn.BinaryCrossEntropy().value(y, p) == pytest.approx(bce, rel=1e-14)
    assert cnn.MeanSquaredError().value(y, p) == pytest.approx(np.mean((p - y) ** 2), rel=1e-14)
    assert cnn.CategoricalCrossEntropy().value(y, p) == pytest.approx(-(np.log(0.8) + np.log(0.9)) / 2)


@pytest.mark.parametrize("name", sorted(cnn.LOSSES))
def test_outputs_of_exactly_0_and_1_stay_finite_in_float32(name: str) -> None:
    loss = cnn.LOSSES[name]()
    y = np.array([[1, 0], [0, 1], [1, 0]], dtype=np.float32)
    p = np.array([[0, 1], [1, 0], [1, 0]], dtype=np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        value, grad = loss.value(y, p), loss.gradient(y, p)
    assert np.isfinite(value) and value > 0
    assert grad.dtype == np.float32 and np.all(np.isfinite(grad))


@pytest.mark.parametrize(
    ("activation", "loss"), [(cnn.Sigmoid, cnn.BinaryCrossEntropy), (cnn.Softmax, cnn.CategoricalCrossEntropy)]
)
def test_the_loss_gradient_shortcut_equals_the_chain_rule(activation, loss) -> None:
    """step.LossGradient starts backward below a sigmoid/softmax output with (a - y) / n: the chain
    rule through the activation gives the same, for a whole batch and for part of one."""
    rng = np.random.default_rng(1)
    net = cnn.Sequential([cnn.Dense(4, 3), activation()], init="xavier", seed=0)
    x, y = rng.standard_normal((5, 4)), cnn.one_hot(rng.integers(0, 3, 5), 3)
    out = net.forward(x)
    chained = net.layers[1].backward(loss().gradient(y, out))
    shortcut = step.LossGradient.for_network(net, loss())
    grad, start = shortcut.start(net, out, y, batch_rows=5)
    assert start == 0  # below the activation
    np.testing.assert_allclose(grad, chained, rtol=1e-10, atol=1e-15)
    part, _ = shortcut.start(net, out[:2], y[:2], batch_rows=5)  # the first half of a split batch
    np.testing.assert_allclose(part, chained[:2], rtol=1e-10, atol=1e-15)


def test_without_a_matching_output_backward_starts_at_the_last_layer() -> None:
    net = cnn.Sequential([cnn.Dense(4, 3), cnn.Sigmoid()], init="xavier", seed=0)
    out = net.forward(np.ones((2, 4)))
    y = cnn.one_hot(np.array([0, 2]), 3)
    grad, start = step.LossGradient.for_network(net, cnn.MeanSquaredError()).start(net, out, y, 2)
    assert start == 1
    np.testing.assert_allclose(grad, cnn.MeanSquaredError().gradient(y, out))
