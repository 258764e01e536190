"""Dropout: inverted scaling in training, identity in inference, masks from the layer's seeded generator, and a
split batch (cnn.parallel) gets exactly the masks of the unsplit batch on any number of cores."""

import numpy as np
import pytest

import cnn
from cnn import parallel
from cnn.step import LossGradient, plain_step
from tests.layer_checks import assert_same_bits_on_one_and_two_cores, check_gradients, problem, start_training


def test_inverted_dropout_by_hand() -> None:
    layer = cnn.Dropout((2, 3), rate=0.5)
    layer.training = True
    layer.rng = np.random.default_rng(0)
    u = np.random.default_rng(0).random((1, 2, 3))  # the draws the layer makes
    x = np.arange(1.0, 7.0).reshape(1, 2, 3)
    want = np.where(u >= 0.5, 2 * x, 0.0)
    y = layer.forward(x)
    np.testing.assert_array_equal(y, want)
    assert 0 < np.count_nonzero(y) < 6
    np.testing.assert_array_equal(layer.backward(np.ones_like(x)), np.where(u >= 0.5, 2.0, 0.0))


def test_inference_is_the_identity() -> None:
    layer = cnn.Dropout((4,), rate=0.9)
    x = np.random.default_rng(1).standard_normal((3, 4))
    assert layer.training is False
    assert layer.forward(x) is x
    g = np.ones((3, 4))
    assert layer.backward(g) is g


def test_expected_value_is_kept_and_rate_is_the_share_dropped() -> None:
    layer = cnn.Dropout((1000,), rate=0.25)
    layer.training = True
    y = layer.forward(np.ones((100, 1000)))
    assert set(np.unique(y)) == {0.0, 1 / 0.75}
    assert abs(np.mean(y == 0) - 0.25) < 0.005
    assert abs(y.mean() - 1) < 0.01


def test_gradient_check_with_a_fixed_mask() -> None:
    layer = cnn.Dropout((3, 4), rate=0.3)
    layer.training = True

    def reseed() -> None:
        layer.rng = np.random.default_rng(9)

    check_gradients(layer, np.random.default_rng(2).standard_normal((2, 3, 4)), reseed)


def test_masks_come_from_the_seeded_generator() -> None:
    def masks(seed: int) -> np.ndarray:
        layer = cnn.Dropout((5,), rate=0.5)
        layer.training = True
        layer.rng = np.random.default_rng(seed)
        return np.stack([layer.forward(np.ones((4, 5))) for _ in range(3)])

    np.testing.assert_array_equal(masks(1), masks(1))
    assert not np.array_equal(masks(1), masks(2))
    first = masks(1)
    assert not np.array_equal(first[0], first[1])  # a new mask every step


def test_bad_rate_is_refused() -> None:
    for rate in (1.0, -0.1, "half", True):
        with pytest.raises(cnn.ArchitectureError, match="dropout rate must be a number in"):
            cnn.Dropout(rate=rate)
    with pytest.raises(cnn.ArchitectureError, match=r"train.layers\[1\] \(dropout\): dropout rate must be a number"):
        cnn.build([{"type": "flatten"}, {"type": "dropout", "rate": 1.5}, {"type": "dense"}])


SPECS = [{"type": "conv", "depth": 3, "kernel_size": 3, "bias": "tied"}, {"type": "relu"},
         {"type": "dropout", "rate": 0.25}, {"type": "flatten"}, {"type": "dense", "units": 8}, {"type": "relu"},
         {"type": "dropout"}, {"type": "dense"}, {"type": "softmax"}]  # fmt: skip


def net(seed: int = 0) -> cnn.Sequential:
    return cnn.Sequential(cnn.build(SPECS, (1, 8, 8), 3), init="he", seed=seed, dtype="float64")


def test_config_and_builder() -> None:
    layers = cnn.build(SPECS, (1, 8, 8), 3)
    assert (layers[2].rate, layers[2].output_shape, layers[6].rate, layers[6].output_shape) == (
        0.25,
        (3, 6, 6),
        0.5,
        (8,),
    )
    again = cnn.layer_from_config(layers[2].config())
    assert (again.rate, again.input_shape) == (0.25, (3, 6, 6))


def test_a_split_batch_gets_the_masks_of_the_whole_batch() -> None:
    n = parallel.SPLIT_FROM + 5
    x, y = problem(n, classes=3)
    x, y = x.astype(np.float64), y.astype(np.float64)
    whole, split = net(), net()
    start_training(whole, seed=5)
    start_training(split, seed=5)
    loss = LossGradient.for_network(whole, cnn.CategoricalCrossEntropy())
    plain_step(whole, x, y, np.empty_like(y), loss, cnn.SGD(0.1))
    step = parallel.SplitStep(split)
    step(split, x, y, np.empty_like(y), loss, cnn.SGD(0.1))
    for index in (2, 6):
        halves = [replica.layers[index].mask for replica in step.replicas]
        assert all(half is not None for half in halves)
        np.testing.assert_array_equal(np.concatenate(halves), whole.layers[index].mask)
        # the parent drew the batch: its generator is where the unsplit one's is
        assert split.layers[index].rng.random() == whole.layers[index].rng.random()
    for a, b in zip(whole.param_layers, split.param_layers, strict=True):
        for name in a.params:
            np.testing.assert_allclose(a.params[name], b.params[name], rtol=1e-10, atol=1e-13)


def test_training_gives_the_same_bits_on_one_and_two_cores(monkeypatch) -> None:
    x, y = problem(160)

    def make_net() -> cnn.Sequential:
        return cnn.Sequential(cnn.build(SPECS, (1, 8, 8), 3), init="he", seed=1, dtype="float32")

    assert_same_bits_on_one_and_two_cores(monkeypatch, make_net, x, y, batch_size=64)
