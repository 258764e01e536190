"""Data-parallel steps (cnn.parallel): a batch of SPLIT_FROM or more samples is trained as two halves on two
threads. The update must be the one of the whole batch, the same on any number of cores, and seeded runs
must repeat bit for bit."""

import numpy as np
import pytest

import cnn
from cnn import parallel, threads
from cnn.step import LossGradient

SPECS = {
    "sigmoid+bce": ([{"type": "conv", "depth": 2, "kernel_size": 3}, {"type": "sigmoid"}, {"type": "flatten"},
                     {"type": "dense", "units": 6}, {"type": "sigmoid"}, {"type": "dense"}, {"type": "sigmoid"}],
                    cnn.BinaryCrossEntropy),
    "softmax+cce": ([{"type": "conv", "depth": 2, "kernel_size": 3, "bias": "tied"}, {"type": "relu"},
                     {"type": "maxpool"}, {"type": "flatten"}, {"type": "dense"}, {"type": "softmax"}],
                    cnn.CategoricalCrossEntropy),
    "tanh+mse": ([{"type": "conv", "depth": 2, "kernel_size": 3}, {"type": "tanh"}, {"type": "flatten"},
                  {"type": "dense"}, {"type": "tanh"}], cnn.MeanSquaredError),
}  # fmt: skip


def problem(n: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 1, 8, 8))
    labels = (x[:, 0, :4].sum(axis=(1, 2)) > 0).astype(np.int64)
    return x, cnn.one_hot(labels, 2)


def network(specs, seed: int = 0, dtype: str = "float64") -> cnn.Sequential:
    return cnn.Sequential(cnn.build(specs, input_shape=(1, 8, 8), n_classes=2), init="xavier", seed=seed, dtype=dtype)


def params(net: cnn.Sequential) -> list[np.ndarray]:
    return [p.copy() for layer in net.param_layers for p in layer.params.values()]


OPTIMIZERS = {
    "sgd": lambda: cnn.SGD(0.5),
    "momentum": lambda: cnn.SGD(0.5, momentum=0.9),
    "adam": lambda: cnn.Adam(0.01),
    "nesterov": lambda: cnn.SGD(0.5, momentum=0.9, nesterov=True),
    "adamw": lambda: cnn.Adam(0.01, weight_decay=0.1),
    "adadelta": lambda: cnn.Adadelta(weight_decay=0.05),
}


@pytest.mark.parametrize("optimizer", OPTIMIZERS)
@pytest.mark.parametrize("name", SPECS)
def test_a_split_step_applies_the_whole_batch_gradient(name: str, optimizer: str) -> None:
    specs, loss_class = SPECS[name]
    n = parallel.SPLIT_FROM + 5  # halves of 34 and 35 samples
    x, y = problem(n)
    split, whole = network(specs), network(specs)
    split.fit(x, y, loss_class(), OPTIMIZERS[optimizer](), epochs=1, batch_size=n, shuffle=False)
    out = whole.forward(x)  # the plain whole-batch step, by hand
    whole.backward(loss_class().gradient(y, out))
    OPTIMIZERS[optimizer]().step(whole.param_layers)
    moved = False
    for got, want, before in zip(params(split), params(whole), params(network(specs)), strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-13)
        moved |= not np.allclose(got, before)
    assert moved


@pytest.mark.parametrize("optimizer", OPTIMIZERS)
@pytest.mark.parametrize("update_in_parts", [False, True])
def test_split_steps_do_not_depend_on_the_number_of_cores(monkeypatch, optimizer: str, update_in_parts: bool) -> None:
    """On two cores the halves' gradients are summed and the update applied in two parts of a large parameter's
    elements, one per thread (here the dense layer's 432 weights count as large); on one core, whole."""
    x, y = problem(2 * parallel.SPLIT_FROM)
    specs, _ = SPECS["sigmoid+bce"]
    runs = []
    monkeypatch.setattr(parallel, "_pool", None)
    if update_in_parts:
        monkeypatch.setattr(parallel, "SPLIT_UPDATE_FROM", 400)
        monkeypatch.setattr(parallel, "CUT_MULTIPLE", 64)
    second_parts = []
    sum_and_update = parallel.SplitStep.sum_and_update
    monkeypatch.setattr(
        parallel.SplitStep,
        "sum_and_update",
        lambda self, opt, part: (second_parts.append(part), sum_and_update(self, opt, part))[1],
    )
    for cores in (1, 2):
        monkeypatch.setattr(threads, "_max_threads", cores)
        net = network(specs, dtype="float32")
        opt = OPTIMIZERS[optimizer]()
        net.fit(x, y, cnn.BinaryCrossEntropy(), opt, epochs=3, batch_size=parallel.SPLIT_FROM, seed=4)
        runs.append(params(net))
    assert parallel._pool is not None  # the second run did use a second thread
    assert second_parts.count(1) == (3 * 2 if update_in_parts else 0)  # updated in parts: 3 epochs of 2 batches
    for one_core, two_cores in zip(*runs, strict=True):
        np.testing.assert_array_equal(one_core, two_cores)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_split_training_repeats_bit_for_bit_and_learns(dtype: str) -> None:
    x, y = problem(512)
    specs, _ = SPECS["sigmoid+bce"]
    nets = [network(specs, seed=3, dtype=dtype) for _ in range(2)]
    histories = [
        net.fit(x, y, cnn.BinaryCrossEntropy(), cnn.SGD(3.0), epochs=40, batch_size=128, seed=1) for net in nets
    ]
    assert histories[0] == histories[1]
    for a, b in zip(params(nets[0]), params(nets[1]), strict=True):
        np.testing.assert_array_equal(a, b)
    assert histories[0][-1]["loss"] < 0.5 * histories[0][0]["loss"]
    assert np.mean(nets[0].predict(x).argmax(axis=1) == y.argmax(axis=1)) > 0.9


def test_a_replica_shares_parameters_but_not_gradients_or_caches() -> None:
    specs, _ = SPECS["sigmoid+bce"]
    net = network(specs)
    x, _ = problem(4)
    net.forward(x)
    twin = net.replica()
    for layer, copy in zip(net.layers, twin.layers, strict=True):
        assert type(copy) is type(layer)
        for name in layer.params:
            assert copy.params[name] is layer.params[name]
            assert copy.grads[name] is not layer.grads[name]
    twin.forward(x[:2])
    twin.backward(np.ones((2, 2)))
    assert net.layers[0].cols.shape[0] == 4  # the original's caches are untouched
    assert net.layers[3].x.shape[0] == 4
    assert not any(np.any(g) for layer in net.param_layers for g in layer.grads.values())


@pytest.mark.parametrize("batch_size", [1, 8, parallel.SPLIT_FROM])
def test_blas_threads_follow_the_policy_during_fit_and_are_restored(batch_size: int) -> None:
    from threadpoolctl import threadpool_info

    def blas_threads() -> list[int]:
        return [lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"]

    specs, _ = SPECS["sigmoid+bce"]
    x, y = problem(parallel.SPLIT_FROM)
    net = network(specs, dtype="float32")
    net.fit(x[:1], y[:1], cnn.BinaryCrossEntropy(), cnn.SGD(0.1), epochs=1)  # loads scipy's BLAS too
    before = blas_threads()
    assert before  # numpy's OpenBLAS, and scipy's own where its wheel carries one
    during = []

    class WatchingSGD(cnn.SGD):  # every step begins while the batches run
        def begin_step(self) -> None:
            during.append(blas_threads())

    after_epoch = []
    net.fit(
        x,
        y,
        cnn.BinaryCrossEntropy(),
        WatchingSGD(0.1),
        1,
        batch_size,
        callback=lambda _: after_epoch.append(blas_threads()),
    )
    assert blas_threads() == before  # restored after fit, and callbacks run outside the policy
    assert after_epoch == [before]
    assert during and all(counts == [1] * len(before) for counts in during)  # batch 1 included (cnn.threads)


class AddedNoise(cnn.Layer):
    """A stochastic layer that is not Dropout: y = x + noise, noise ~ N(0, 1) from self.rng in training."""

    stochastic = True
    abstract = True  # a test's layer: not one layer_from_config builds

    def __init__(self) -> None:
        super().__init__()
        self.input_shape = self.output_shape = (1, 8, 8)
        self.rng, self.given, self.noise = np.random.default_rng(0), None, None

    def draw_noise(self, rows: int, dtype) -> np.ndarray | None:
        return self.rng.standard_normal((rows, 1, 8, 8)).astype(dtype) if self.training else None

    def use_noise(self, noise: np.ndarray) -> None:
        self.given = noise

    def forward(self, x: np.ndarray) -> np.ndarray:
        self.noise, self.given = (self.draw_noise(len(x), x.dtype) if self.given is None else self.given), None
        return x if self.noise is None else x + self.noise

    def backward(self, output_gradient: np.ndarray) -> np.ndarray | None:
        return output_gradient


def test_a_split_batch_shares_the_noise_of_any_layer_with_the_noise_hook() -> None:
    """SplitStep relies on Layer.draw_noise/use_noise alone: a layer of its own kind gets, over the two halves,
    exactly the noise it draws for the whole batch, and training draws it where the unsplit run does."""
    specs, loss_class = SPECS["softmax+cce"]
    n = parallel.SPLIT_FROM + 5
    x, y = problem(n)

    def noisy() -> cnn.Sequential:
        return cnn.Sequential([AddedNoise(), *cnn.build(specs, (1, 8, 8), 2)], init="xavier", seed=0)

    split, whole = noisy(), noisy()
    for net in (split, whole):
        net.set_training(True)
        net.layers[0].rng = np.random.default_rng(7)
    step = parallel.SplitStep(split)
    step(split, x, y, np.empty_like(y), LossGradient.for_network(split, loss_class()), cnn.SGD(0.5))
    halves = [replica.layers[0].noise for replica in step.replicas]
    whole.forward(x)
    np.testing.assert_array_equal(np.concatenate(halves), whole.layers[0].noise)
    assert split.layers[0].rng.random() == whole.layers[0].rng.random()
    split.set_training(False)
    step(split, x, y, np.empty_like(y), LossGradient.for_network(split, loss_class()), cnn.SGD(0.5))
    assert all(replica.layers[0].noise is None for replica in step.replicas)  # inference: no noise drawn
