"""Checks every new layer goes through: a float64 finite-difference gradient check, and training that gives the
same bits on one core and on two (cnn.threads, the split of cnn.parallel)."""

from collections.abc import Callable

import numpy as np

import cnn
from cnn import parallel, threads
from tests.test_layers import numerical_gradient, rel_error


def check_gradients(layer: cnn.Layer, x: np.ndarray, before_forward: Callable[[], None] = lambda: None) -> None:
    """dx and every param's gradient of loss = sum(w * layer(x)) against central differences (float64).
    `before_forward` runs before every forward (e.g. to re-seed a stochastic layer)."""
    before_forward()
    w = np.random.default_rng(11).standard_normal(layer.forward(x).shape)

    def loss() -> float:
        before_forward()
        return float(np.sum(w * layer.forward(x)))

    loss()
    dx = layer.backward(w.copy())
    assert dx.shape == x.shape
    assert rel_error(dx, numerical_gradient(loss, x)) < 1e-6
    for name, param in layer.params.items():
        loss()
        layer.backward(w.copy())
        analytic = layer.grads[name].copy()
        assert rel_error(analytic, numerical_gradient(loss, param)) < 1e-6, name


def start_training(net: cnn.Sequential, seed: int) -> None:
    """What fit does before its first step (cnn.Sequential.set_training(True), each stochastic layer's rng
    seeded with [seed, 1, index]); done here too so these tests run the same with or without it."""
    for index, layer in enumerate(net.layers):
        layer.training = True
        if layer.stochastic:
            layer.rng = np.random.default_rng([seed, 1, index])


def fit_on_cores(monkeypatch, make_net: Callable[[], cnn.Sequential], x, y, batch_size: int, cores: int):
    """Params after 2 epochs of Adam with cnn limited to `cores` threads."""
    monkeypatch.setattr(parallel, "_pool", None)
    monkeypatch.setattr(threads, "_max_threads", cores)
    net = make_net()
    start_training(net, seed=3)
    net.fit(x, y, cnn.CategoricalCrossEntropy(), cnn.Adam(0.01), epochs=2, batch_size=batch_size, seed=3)
    # two cores: the halves ran on two threads
    assert (parallel._pool is not None) == (batch_size >= parallel.SPLIT_FROM and cores == 2)
    return [p.copy() for layer in net.layers for p in cnn.serialize.arrays(layer).values()]


def assert_same_bits_on_one_and_two_cores(monkeypatch, make_net, x, y, batch_size: int) -> None:
    one, two = (fit_on_cores(monkeypatch, make_net, x, y, batch_size, cores) for cores in (1, 2))
    for a, b in zip(one, two, strict=True):
        np.testing.assert_array_equal(a, b)


def problem(n: int, shape: tuple[int, ...] = (1, 8, 8), classes: int = 3, seed: int = 0):
    """x (n, *shape) float32 and one-hot targets that depend on x."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, *shape)).astype(np.float32)
    labels = (x.reshape(n, -1)[:, : classes * 4].reshape(n, classes, 4).sum(axis=2)).argmax(axis=1)
    return x, cnn.one_hot(labels, classes, dtype="float32")
