"""The training loop's contract (cnn.training): modes, seeded stochastic layers, schedules, augmentation,
resumable state and the step rule for batch-coupled layers, with small stand-in layers and callables."""

import dataclasses

import numpy as np
import pytest

import cnn
from cnn import parallel, step, training


class StandInNoise(cnn.Layer):
    """A stochastic stand-in (inverted dropout of rate 0.25): draws its mask from self.rng in training only."""

    abstract = True  # not a layer type of model files
    stochastic = True

    def __init__(self, shape: tuple[int, ...]) -> None:
        super().__init__()
        self.input_shape = self.output_shape = shape
        self.seen: list[bool] = []

    def forward(self, x: np.ndarray) -> np.ndarray:
        self.seen.append(self.training)
        self.mask = (self.rng.random(x.shape) >= 0.25) / 0.75 if self.training else np.ones_like(x)
        return x * self.mask

    def backward(self, output_gradient: np.ndarray) -> np.ndarray | None:
        return output_gradient * self.mask


def problem(n: int = 40):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((n, 1, 4, 4))
    labels = (x[:, 0, :2].sum(axis=(1, 2)) > 0).astype(np.int64)
    return x, cnn.one_hot(labels, 2)


def network(seed: int = 0) -> cnn.Sequential:
    layers = [cnn.Flatten((1, 4, 4)), cnn.Dense(16, 8), cnn.Tanh(), StandInNoise((8,)), cnn.Dense(8, 2), cnn.Softmax()]
    return cnn.Sequential(layers, init="xavier", seed=seed)


def params(net: cnn.Sequential) -> list[np.ndarray]:
    return [p.copy() for layer in net.param_layers for p in layer.params.values()]


def restore(net: cnn.Sequential, saved: list[np.ndarray]) -> None:
    """Copy `saved` (params(another net of the same layers)) into net's parameters, in place."""
    for target, array in zip((p for layer in net.param_layers for p in layer.params.values()), saved, strict=True):
        target[...] = array


def shift(batch: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return batch + rng.normal(0.0, 0.1, size=(len(batch), 1, 1, 1))


def test_steps_run_in_training_mode_validation_and_predict_in_inference() -> None:
    x, y = problem()
    net = network()
    noise = net.layers[3]
    modes_at_validation = []
    net.fit(
        x, y, cnn.CategoricalCrossEntropy(), cnn.SGD(0.1), epochs=2, batch_size=8,
        validation_data=(x[:5], y[:5]), callback=lambda _: modes_at_validation.append(noise.seen[-1]),
    )  # fmt: skip
    assert noise.seen.count(True) == 2 * 5  # every step's forward
    assert noise.seen.count(False) == 2  # one validation predict per epoch
    assert modes_at_validation == [False, False]
    assert not any(layer.training for layer in net.layers)
    net.set_training(True)
    assert all(layer.training for layer in net.layers)
    out = net.predict(x)
    assert not noise.training
    np.testing.assert_array_equal(out, net.predict(x))  # no draws in inference


def test_stochastic_layers_get_their_seeded_generator_and_shuffling_keeps_its_own() -> None:
    x, y = problem(8)
    net = network()
    rows_seen = []
    first = net.layers[1]
    forward = first.forward
    first.forward = lambda xb: (rows_seen.append(xb.copy()), forward(xb))[1]
    net.fit(x, y, cnn.CategoricalCrossEntropy(), cnn.SGD(0.1), epochs=1, batch_size=8, seed=7)
    expected_mask = (np.random.default_rng([7, 1, 3]).random((8, 8)) >= 0.25) / 0.75
    np.testing.assert_array_equal(net.layers[3].mask, expected_mask)
    order = np.random.default_rng(7).permutation(8)
    np.testing.assert_array_equal(rows_seen[0], x[order].reshape(8, 16))


def test_the_schedule_sets_the_rate_before_every_step() -> None:
    x, y = problem(20)
    rates = []

    class Recording(cnn.SGD):
        def begin_step(self) -> None:
            super().begin_step()
            rates.append(self.learning_rate)

    opt = Recording(0.5)
    net = network()
    net.fit(x, y, cnn.CategoricalCrossEntropy(), opt, epochs=3, batch_size=8, schedule=lambda s: 0.1 / (1 + s))
    assert rates == [0.1 / (1 + s) for s in range(3 * 3)]  # 3 batches (8, 8, 4) per epoch
    rates.clear()
    network().fit(x, y, cnn.CategoricalCrossEntropy(), opt, epochs=1, batch_size=8)
    assert rates == [0.1 / 9] * 3  # no schedule: the optimizer's rate stays


def test_augment_applies_to_training_batches_only_with_the_runs_generator() -> None:
    x, y = problem(16)
    calls = []

    def augment(batch: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        calls.append((batch.shape, rng.bit_generator.state))
        return np.zeros_like(batch)

    net = network()
    history = net.fit(
        x, y, cnn.CategoricalCrossEntropy(), cnn.SGD(0.1), epochs=1, batch_size=8, seed=3, augment=augment,
        validation_data=(x, y),
    )  # fmt: skip
    assert [shape for shape, _ in calls] == [(8, 1, 4, 4), (8, 1, 4, 4)]
    assert calls[0][1] == np.random.default_rng([3, 2]).bit_generator.state
    assert history[0]["val_loss"] != history[0]["loss"]  # validation saw the real images
    zero = network()
    zero.fit(np.zeros_like(x), y, cnn.CategoricalCrossEntropy(), cnn.SGD(0.1), epochs=1, batch_size=8, seed=3)
    for a, b in zip(params(net), params(zero), strict=True):
        np.testing.assert_array_equal(a, b)  # the steps trained on the augmented (zero) batches


OPTIMIZERS = {
    "sgd": lambda: cnn.SGD(0.1),
    "momentum": lambda: cnn.SGD(0.1, momentum=0.9),
    "adam": lambda: cnn.Adam(0.01, weight_decay=0.01),
    "adadelta": lambda: cnn.Adadelta(),
}


@pytest.mark.parametrize("batch_size", [1, 8])
@pytest.mark.parametrize("optimizer", OPTIMIZERS)
def test_four_epochs_equal_two_and_a_resumed_two(optimizer: str, batch_size: int) -> None:
    x, y = problem(24)
    loss = cnn.CategoricalCrossEntropy()
    options = {"batch_size": batch_size, "seed": 5, "augment": shift, "schedule": lambda s: 0.05 * 0.99**s}
    whole = network()
    history = whole.fit(x, y, loss, OPTIMIZERS[optimizer](), epochs=4, **options)

    states: list[cnn.TrainingState] = []
    first = network()
    first.fit(x, y, loss, OPTIMIZERS[optimizer](), epochs=2, on_epoch_end=states.append, **options)
    assert [s.epoch for s in states] == [1, 2] and states[1].step == 2 * (24 // batch_size)
    saved = params(first)
    resumed = network(seed=99)  # other weights, replaced by the checkpoint's
    restore(resumed, saved)
    resumed_history = resumed.fit(x, y, loss, OPTIMIZERS[optimizer](), epochs=4, resume=states[1], **options)
    assert resumed_history == history
    for a, b in zip(params(resumed), params(whole), strict=True):
        np.testing.assert_array_equal(a, b)


def test_fit_options_are_one_declared_thing() -> None:
    x, y = problem(16)
    a, b = network(), network()
    ha = a.fit(x, y, cnn.CategoricalCrossEntropy(), cnn.SGD(0.1), 2, batch_size=4, seed=2)
    hb = b.fit(x, y, cnn.CategoricalCrossEntropy(), cnn.SGD(0.1), training.FitOptions(2, batch_size=4, seed=2))
    assert ha == hb
    with pytest.raises(TypeError, match="unexpected keyword argument 'batchsize'"):
        a.fit(x, y, cnn.CategoricalCrossEntropy(), cnn.SGD(0.1), 2, batchsize=4)
    with pytest.raises(ValueError, match="cannot resume after epoch 3"):
        training.FitOptions(2, resume=training.TrainingState(3, 0, {}, {}, {}))


def test_whether_a_batch_is_split_depends_on_its_size_alone() -> None:
    """From SPLIT_FROM rows on, batch norm included (cnn.parallel gives its halves the whole batch's statistics)."""
    coupled = cnn.Sequential([cnn.Flatten((1, 4, 4)), cnn.BatchNorm((16,)), cnn.Dense(16, 2), cnn.Softmax()])
    for net in (coupled, network()):
        assert training.choose_step(net, cnn.SGD(0.1), parallel.SPLIT_FROM - 1) is step.plain_step
        assert isinstance(training.choose_step(net, cnn.SGD(0.1), parallel.SPLIT_FROM), parallel.SplitStep)


SPECS = [
    {"type": "conv", "depth": 3, "kernel_size": 3, "padding": 1},
    {"type": "batchnorm"},
    {"type": "relu"},
    {"type": "maxpool"},
    {"type": "flatten"},
    {"type": "dropout", "rate": 0.3},
    {"type": "dense"},
    {"type": "softmax"},
]


@pytest.mark.parametrize("batchnorm", [True, False], ids=["batchnorm", "no-batchnorm"])
@pytest.mark.parametrize("batch_size", [8, parallel.SPLIT_FROM])
def test_a_run_resumed_from_a_model_file_and_its_state_continues_bit_for_bit(tmp_path, batch_size, batchnorm) -> None:
    """The real layers: dropout (split batches draw in the parent), batch norm (its running statistics travel in
    the model file), Adadelta with decay, a schedule and an augmentation; checkpoints as issue 22 would make them."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2 * parallel.SPLIT_FROM, 1, 6, 6)).astype("float32")
    y = cnn.one_hot((x[:, 0, :3].sum(axis=(1, 2)) > 0).astype(np.int64), 2, "float32")

    specs = SPECS if batchnorm else [spec for spec in SPECS if spec["type"] != "batchnorm"]

    def net() -> cnn.Sequential:
        return cnn.Sequential(cnn.build(specs, input_shape=(1, 6, 6), n_classes=2), "he", seed=1, dtype="float32")

    options = {"batch_size": batch_size, "seed": 4, "augment": shift, "schedule": lambda s: 0.9**s}
    loss = cnn.CategoricalCrossEntropy()
    whole = net()
    history = whole.fit(x, y, loss, cnn.Adadelta(weight_decay=0.01), epochs=3, **options)

    def checkpoint(state: cnn.TrainingState) -> None:
        if state.epoch == 1:
            cnn.save(first, tmp_path / "model.npz")
            saved.append(state)

    saved: list[cnn.TrainingState] = []
    first = net()
    first.fit(x, y, loss, cnn.Adadelta(weight_decay=0.01), epochs=3, on_epoch_end=checkpoint, **options)
    resumed = cnn.load(tmp_path / "model.npz")
    again = resumed.fit(x, y, loss, cnn.Adadelta(weight_decay=0.01), epochs=3, resume=saved[0], **options)
    assert again == history
    for a, b in zip(params(resumed), params(whole), strict=True):
        np.testing.assert_array_equal(a, b)
    if batchnorm:
        np.testing.assert_array_equal(resumed.layers[1].buffers["running_var"], whole.layers[1].buffers["running_var"])
    assert isinstance(training.choose_step(whole, cnn.Adadelta(), batch_size), parallel.SplitStep) == (
        batch_size >= parallel.SPLIT_FROM
    )


def test_each_epoch_records_the_training_accuracy_of_the_outputs_it_trained_on() -> None:
    rng = np.random.default_rng(5)
    x = rng.standard_normal((64, 6))
    labels = rng.integers(0, 3, 64)
    net = cnn.Sequential([cnn.Dense(6, 3), cnn.Softmax()], init="he", seed=2)
    before = float(np.mean(net.predict(x).argmax(axis=1) == labels))
    history = net.fit(x, cnn.one_hot(labels, 3), cnn.CategoricalCrossEntropy(), cnn.SGD(1e-12), epochs=1, batch_size=64)
    assert history[0]["accuracy"] == before  # one batch at a rate too small to move an argmax
    trained = net.fit(x, cnn.one_hot(labels, 3), cnn.CategoricalCrossEntropy(), cnn.Adam(0.05), epochs=30)
    assert trained[-1]["accuracy"] > before


class StopError(Exception):
    pass


@pytest.mark.parametrize(("batch_size", "stop_after"), [(7, 3), (parallel.SPLIT_FROM, 1), (parallel.SPLIT_FROM, 3)])
def test_a_run_stopped_within_epoch_2_resumes_from_its_batch_state_bit_for_bit(batch_size, stop_after) -> None:
    """Dropout, augmentation, Adam with decay, a schedule, 150 images (no batch size here divides them; 64 runs
    the split step, 3 is the epoch's short last batch): stopped after batch `stop_after` of epoch 2 with the
    state on_batch_end gives there, resumed in a fresh network, the run ends as an uninterrupted one."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((150, 1, 6, 6))
    y = cnn.one_hot((x[:, 0, :3].sum(axis=(1, 2)) > 0).astype(np.int64), 2)
    specs = [spec for spec in SPECS if spec["type"] != "batchnorm"]
    assert any(spec["type"] == "dropout" for spec in specs)

    def net(seed: int = 1) -> cnn.Sequential:
        return cnn.Sequential(cnn.build(specs, input_shape=(1, 6, 6), n_classes=2), "he", seed=seed)

    options = {"batch_size": batch_size, "seed": 4, "augment": shift, "schedule": lambda s: 0.01 * 0.97**s}
    loss = cnn.CategoricalCrossEntropy()
    ends: dict[str, list[cnn.TrainingState]] = {"whole": [], "resumed": []}
    whole = net()
    seen: list[tuple[int, int, int, int]] = []
    history = whole.fit(
        x,
        y,
        loss,
        cnn.Adam(0.01, weight_decay=0.01),
        epochs=3,
        on_epoch_end=ends["whole"].append,
        on_batch_end=lambda p: seen.append((p.epoch, p.batch, p.batches, p.images)),
        **options,
    )
    batches = -(-150 // batch_size)
    assert seen[:batches] == [(1, b, batches, min(b * batch_size, 150)) for b in range(1, batches + 1)]
    assert len(seen) == 3 * batches
    plain = net()
    assert plain.fit(x, y, loss, cnn.Adam(0.01, weight_decay=0.01), epochs=3, **options) == history  # the hook's no-op

    stopped: list[tuple[cnn.TrainingState, list[np.ndarray]]] = []

    def stop(progress: cnn.BatchProgress) -> None:
        if progress.epoch == 2 and progress.batch == stop_after:
            stopped.append((progress.state(), params(first)))
            raise StopError

    first = net()
    with pytest.raises(StopError):
        first.fit(x, y, loss, cnn.Adam(0.01, weight_decay=0.01), epochs=3, on_batch_end=stop, **options)
    state, saved = stopped[0]
    assert (state.epoch, state.batch, state.step, len(state.history)) == (1, stop_after, batches + stop_after, 1)
    assert state.outputs.shape == (min(stop_after * batch_size, 150), 2)
    resumed = net(seed=99)
    restore(resumed, saved)
    again = resumed.fit(
        x,
        y,
        loss,
        cnn.Adam(0.01, weight_decay=0.01),
        epochs=3,
        resume=state,
        on_epoch_end=ends["resumed"].append,
        **options,
    )
    assert again == history
    for a, b in zip(params(resumed), params(whole), strict=True):
        np.testing.assert_array_equal(a, b)
    last, last_whole = ends["resumed"][-1], ends["whole"][-1]
    assert [s.epoch for s in ends["resumed"]] == [2, 3]
    for name in ("step", "shuffle_rng", "augment_rng", "layer_rngs", "history", "batch"):
        assert getattr(last, name) == getattr(last_whole, name), name
    assert last.optimizer.keys() == last_whole.optimizer.keys()
    for key, value in last.optimizer.items():
        np.testing.assert_array_equal(value, last_whole.optimizer[key])


def test_a_state_at_an_epochs_last_batch_resumes_and_a_bad_one_is_refused() -> None:
    x, y = problem(24)
    loss = cnn.CategoricalCrossEntropy()
    options = {"batch_size": 5, "seed": 2, "augment": shift}
    whole = network()
    history = whole.fit(x, y, loss, cnn.Adam(0.01), epochs=2, **options)
    states: list[tuple[cnn.TrainingState, list[np.ndarray]]] = []
    first = network()

    def keep(progress: cnn.BatchProgress) -> None:
        if progress.epoch == 1 and progress.batch == progress.batches:
            states.append((progress.state(), params(first)))

    first.fit(x, y, loss, cnn.Adam(0.01), epochs=2, on_batch_end=keep, **options)
    state, saved = states[0]
    assert (state.epoch, state.batch, state.outputs.shape) == (0, 5, (24, 2))
    resumed = network()
    restore(resumed, saved)
    assert resumed.fit(x, y, loss, cnn.Adam(0.01), epochs=2, resume=state, **options) == history
    for a, b in zip(params(resumed), params(whole), strict=True):
        np.testing.assert_array_equal(a, b)
    for batch, message in [(2, "needs outputs of 10 rows, got \\(24, 2\\)"), (6, "after batch 6 of an epoch of 5")]:
        with pytest.raises(ValueError, match=message):
            bad = dataclasses.replace(state, batch=batch)
            network().fit(x, y, loss, cnn.Adam(0.01), epochs=2, resume=bad, **options)
