"""Batch normalization: batch statistics and torch's running-statistics update in training, running statistics
in inference, gradient checks in both, the running statistics saved and loaded; a batch in parts (cnn.parallel's
halves) normalised with the whole batch's statistics, the same bits on one and two cores."""

import json
import zipfile

import numpy as np
import pytest

import cnn
from cnn import parallel, training
from cnn.step import LossGradient, plain_step
from tests.layer_checks import assert_same_bits_on_one_and_two_cores, check_gradients, problem, start_training
from tests.test_layers import numerical_gradient, rel_error
from tests.test_parallel import OPTIMIZERS


def test_dense_features_by_hand() -> None:
    bn = cnn.BatchNorm((2,), momentum=0.1, eps=0.0 + 1e-12)
    bn.training = True
    x = np.array([[1.0, 10.0], [3.0, 10.0], [5.0, 16.0]])  # means 3, 12; biased variances 8/3, 8
    y = bn.forward(x)
    np.testing.assert_allclose(y[:, 0], np.array([-2, 0, 2]) / np.sqrt(8 / 3), rtol=1e-10)
    np.testing.assert_allclose(y[:, 1], np.array([-2, -2, 4]) / np.sqrt(8), rtol=1e-10)
    # running += 0.1 * (batch - running), the variance unbiased (m / (m - 1) = 3 / 2): 4 and 12
    np.testing.assert_allclose(bn.buffers["running_mean"], [0.3, 1.2])
    np.testing.assert_allclose(bn.buffers["running_var"], [0.9 + 0.4, 0.9 + 1.2])
    bn.params["gamma"][...] = [2.0, 3.0]
    bn.params["beta"][...] = [1.0, -1.0]
    bn.training = False
    # inference: the running statistics, whatever the batch
    np.testing.assert_allclose(bn.forward(np.array([[0.3, 1.2]])), [[1.0, -1.0]], atol=1e-12)
    np.testing.assert_allclose(bn.forward(np.array([[0.3 + np.sqrt(1.3), 1.2]]))[0, 0], 3.0, rtol=1e-9)


def test_conv_feature_maps_are_normalised_per_channel_over_batch_and_positions() -> None:
    rng = np.random.default_rng(0)
    x = (
        rng.standard_normal((4, 3, 5, 6)) * np.array([1.0, 5.0, 0.1])[:, None, None]
        + np.array([0, 3, -2])[:, None, None]
    )
    bn = cnn.BatchNorm((3, 5, 6))
    bn.training = True
    y = bn.forward(x)
    np.testing.assert_allclose(y.mean(axis=(0, 2, 3)), 0, atol=1e-12)
    np.testing.assert_allclose(y.var(axis=(0, 2, 3)), 1 / (1 + 1e-5 / x.var(axis=(0, 2, 3))), rtol=1e-10)
    np.testing.assert_allclose(bn.buffers["running_mean"], 0.1 * x.mean(axis=(0, 2, 3)), rtol=1e-12)
    np.testing.assert_allclose(bn.buffers["running_var"], 0.9 + 0.1 * x.var(axis=(0, 2, 3), ddof=1), rtol=1e-12)


@pytest.mark.parametrize("shape", [(3,), (2, 4, 3)])
@pytest.mark.parametrize("training", [True, False])
def test_gradients_match_finite_differences(shape, training: bool) -> None:
    rng = np.random.default_rng(1)
    bn = cnn.BatchNorm(shape)
    bn.params["gamma"][...] = rng.uniform(0.5, 2, shape[0])
    bn.params["beta"][...] = rng.standard_normal(shape[0])
    bn.buffers["running_mean"][...] = rng.standard_normal(shape[0])
    bn.buffers["running_var"][...] = rng.uniform(0.5, 2, shape[0])
    bn.training = training
    check_gradients(bn, rng.standard_normal((5, *shape)) * 2 + 1)


def test_one_value_per_channel_in_training_is_refused() -> None:
    bn = cnn.BatchNorm((4,))
    bn.training = True
    with pytest.raises(ValueError, match="BatchNorm needs more than one value per channel in training"):
        bn.forward(np.ones((1, 4)))
    bn.training = False
    assert bn.forward(np.ones((1, 4))).shape == (1, 4)


@pytest.mark.parametrize(("rows", "batch_size", "fix"), [(9, 4, "e.g. 3"), (13, 4, "e.g. 5"), (6, 1, "e.g. 2")])
def test_a_batch_of_one_row_for_dense_batch_norm_is_refused_before_the_first_step(rows, batch_size, fix) -> None:
    """One ValueError naming batch_size and one that works, before any step (the last batch of 1 would otherwise
    fail at the end of epoch 1); the batch_size it names trains; a conv batch norm takes a batch of one row."""
    net = cnn.Sequential(cnn.build(SPECS, (1, 8, 8), 3), init="he", seed=0)
    before = [p.copy() for layer in net.layers for p in layer.params.values()]
    x, y = problem(rows)
    steps = []
    with pytest.raises(ValueError, match=rf"BatchNorm \(layers\[6\]\) .* one row .*; choose a batch_size .*{fix}$"):
        net.fit(x, y, cnn.CategoricalCrossEntropy(), cnn.SGD(0.1), epochs=2, batch_size=batch_size,
                on_batch_end=lambda progress: steps.append(progress.batch))  # fmt: skip
    assert steps == [] and not net.layers[6].training
    for a, b in zip(before, (p for layer in net.layers for p in layer.params.values()), strict=True):
        np.testing.assert_array_equal(a, b)
    good = int(fix.removeprefix("e.g. "))
    assert rows % good != 1 and abs(good - batch_size) == 1
    net.fit(x, y, cnn.CategoricalCrossEntropy(), cnn.SGD(0.1), epochs=1, batch_size=good)
    conv_only = cnn.Sequential(cnn.build(SPECS[:6] + SPECS[7:], (1, 8, 8), 3), init="he", seed=0)
    conv_only.fit(x, y, cnn.CategoricalCrossEntropy(), cnn.SGD(0.1), epochs=1, batch_size=batch_size)
    assert net.fit(x[:1], y[:1], cnn.CategoricalCrossEntropy(), cnn.SGD(0.1), epochs=0) == []  # no step, no refusal
    with pytest.raises(ValueError, match="train on more than one row"):
        net.fit(x[:1], y[:1], cnn.CategoricalCrossEntropy(), cnn.SGD(0.1), epochs=1, batch_size=4)


def test_builder_config_and_errors() -> None:
    layers = cnn.build([{"type": "batchnorm", "momentum": 0.2, "eps": 0.001}, {"type": "flatten"},
                        {"type": "batchnorm"}, {"type": "dense"}], (2, 3, 3))  # fmt: skip
    assert (layers[0].momentum, layers[0].eps, layers[0].axes, layers[2].axes) == (0.2, 0.001, (0, 2, 3), (0,))
    again = cnn.layer_from_config(layers[0].config())
    assert again.config() == layers[0].config() == {
        "type": "BatchNorm", "input_shape": [2, 3, 3], "momentum": 0.2, "eps": 0.001,
    }  # fmt: skip
    with pytest.raises(cnn.ArchitectureError, match=r"train.layers\[0\] \(batchnorm\): batchnorm momentum must be"):
        cnn.build([{"type": "batchnorm", "momentum": 2}])
    with pytest.raises(cnn.ArchitectureError, match=r"train.layers\[0\] \(batchnorm\): batchnorm eps must be"):
        cnn.build([{"type": "batchnorm", "eps": 0}])
    with pytest.raises(cnn.ArchitectureError, match=r"train.layers\[1\] \(batchnorm\): expects an input \(C,\) or"):
        cnn.build([{"type": "reshape", "shape": [28, 28]}, {"type": "batchnorm"}])


SPECS = [{"type": "conv", "depth": 4, "kernel_size": 3, "padding": "same", "bias": "tied"}, {"type": "batchnorm"},
         {"type": "relu"}, {"type": "maxpool"}, {"type": "flatten"}, {"type": "dense", "units": 8},
         {"type": "batchnorm"}, {"type": "relu"}, {"type": "dense"}, {"type": "softmax"}]  # fmt: skip


def trained_net(dtype: str = "float64") -> cnn.Sequential:
    net = cnn.Sequential(cnn.build(SPECS, (1, 8, 8), 3), init="he", seed=0, dtype=dtype)
    x, y = problem(48)
    start_training(net, seed=0)
    net.fit(x, y, cnn.CategoricalCrossEntropy(), cnn.Adam(0.01), epochs=2, batch_size=16)
    for layer in net.layers:
        layer.training = False
    return net


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_save_and_load_round_trip_the_running_statistics(tmp_path, dtype: str) -> None:
    net = trained_net(dtype)
    assert not np.all(net.layers[1].buffers["running_mean"] == 0)  # training moved them
    cnn.save(net, tmp_path / "model.npz")
    loaded = cnn.load(tmp_path / "model.npz")
    for i in (1, 6):
        for name in ("running_mean", "running_var"):
            np.testing.assert_array_equal(loaded.layers[i].buffers[name], net.layers[i].buffers[name])
            assert loaded.layers[i].buffers[name].dtype == np.dtype(dtype)
    x, _ = problem(10, seed=1)
    np.testing.assert_array_equal(loaded.predict(x), net.predict(x))
    with zipfile.ZipFile(tmp_path / "model.npz") as zf:
        assert {"1.running_mean.npy", "6.running_var.npy"} <= set(zf.namelist())
        assert json.loads(np.load(zf.open("__model__.npy")).tobytes())["format"] == "mnist-cnn-dvc/model/2"


def test_a_network_without_buffers_keeps_format_1(tmp_path) -> None:
    net = cnn.Sequential(cnn.build([{"type": "flatten"}, {"type": "dropout"}, {"type": "dense"}], (1, 4, 4)))
    cnn.save(net, tmp_path / "model.npz")
    with zipfile.ZipFile(tmp_path / "model.npz") as zf:
        assert json.loads(np.load(zf.open("__model__.npy")).tobytes())["format"] == "mnist-cnn-dvc/model/1"
    assert repr(cnn.load(tmp_path / "model.npz")) == repr(net)


def test_a_file_missing_its_running_statistics_is_refused(tmp_path) -> None:
    net = trained_net()
    cnn.save(net, tmp_path / "model.npz")
    with np.load(tmp_path / "model.npz") as data:
        members = {k: data[k] for k in data.files if k != "6.running_var"}
    np.savez(tmp_path / "cut.npz", **members)
    with pytest.raises(cnn.ModelFileError, match=r"cut.npz: weights 6.running_var are missing"):
        cnn.load(tmp_path / "cut.npz")


def random_batch_norm(shape: tuple[int, ...], seed: int = 1) -> cnn.BatchNorm:
    rng = np.random.default_rng(seed)
    bn = cnn.BatchNorm(shape)
    bn.params["gamma"][...] = rng.uniform(0.5, 2, shape[0])
    bn.params["beta"][...] = rng.standard_normal(shape[0])
    bn.training = True
    return bn


def in_parts(bn: cnn.BatchNorm, x: np.ndarray, dy: np.ndarray, cuts: list[int]):
    """y and dx of x (N, ...) and dy computed as the parts x[cuts[i]:cuts[i + 1]] through the batch-coupling
    protocol (as cnn.parallel does with two), each part on a replica; and the replicas' grads added in order."""
    rows = [slice(a, b) for a, b in zip([0, *cuts], [*cuts, len(x)], strict=True)]
    replicas = [bn.replica() for _ in rows]
    stats = bn.whole_statistics([r.partial_statistics(x[part]) for r, part in zip(replicas, rows, strict=True)])
    y = np.concatenate([r.forward_with(x[part], stats) for r, part in zip(replicas, rows, strict=True)])
    sums = bn.whole_gradient_sums([r.partial_gradient_sums(dy[part]) for r, part in zip(replicas, rows, strict=True)])
    dx = np.concatenate([r.backward_with(dy[part], sums) for r, part in zip(replicas, rows, strict=True)])
    grads = {name: sum(r.grads[name] for r in replicas) for name in bn.params}
    return y, dx, grads, sums


@pytest.mark.parametrize("shape", [(5,), (3, 4, 5)])
@pytest.mark.parametrize("cuts", [[6], [4, 9]])
def test_a_batch_in_parts_gets_the_statistics_and_gradients_of_the_whole_batch(shape, cuts) -> None:
    """Parts of 6 + 7 or 4 + 5 + 4 rows: outputs, dx and gradients as the unsplit batch's to rounding, the running
    statistics moved once by the whole batch's; the parts' grads add up to the whole batch's gradient sums."""
    rng = np.random.default_rng(2)
    x = rng.standard_normal((13, *shape)) * rng.uniform(0.5, 3, (shape[0], *[1] * (len(shape) - 1))) + 2
    dy = rng.standard_normal(x.shape)
    whole, parted = random_batch_norm(shape), random_batch_norm(shape)
    y_want, dx_want = whole.forward(x), whole.backward(dy)
    y, dx, grads, sums = in_parts(parted, x, dy, cuts)
    np.testing.assert_allclose(y, y_want, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(dx, dx_want, rtol=1e-12, atol=1e-12)
    for name in ("running_mean", "running_var"):
        np.testing.assert_allclose(parted.buffers[name], whole.buffers[name], rtol=1e-13)
    for name, total in zip(("gamma", "beta"), sums, strict=True):
        np.testing.assert_allclose(grads[name], whole.grads[name], rtol=1e-12, atol=1e-12)
        if len(cuts) == 1:  # two parts: the replicas' grads added are the sums dx used, bit for bit
            np.testing.assert_array_equal(grads[name], total)
    parted.training = whole.training = False  # inference: the running statistics, which stay where they are
    running = {name: value.copy() for name, value in parted.buffers.items()}
    y, dx, _, _ = in_parts(parted, x, dy, cuts)
    np.testing.assert_allclose(y, whole.forward(x), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(dx, whole.backward(dy), rtol=1e-12, atol=1e-12)
    for name, value in running.items():
        np.testing.assert_array_equal(parted.buffers[name], value)


def test_parts_combine_without_cancellation_in_float32() -> None:
    """A channel far from zero (mean 1000, std 0.1): Chan's rule on the parts' deviations keeps float32's
    precision where sum-of-squares arithmetic (E[x^2] - E[x]^2, 1e6 - 1e6) would lose every digit of the variance."""
    rng = np.random.default_rng(3)
    x = (1000 + 0.1 * rng.standard_normal((64, 2, 6, 6))).astype(np.float32)
    bn = cnn.BatchNorm((2, 6, 6))
    bn.initialize("he", None, "float32")
    bn.training = True
    m, mean, var = bn.whole_statistics([bn.partial_statistics(x[:32]), bn.partial_statistics(x[32:])])
    assert m == 64 * 36 and mean.dtype == var.dtype == np.float32
    np.testing.assert_allclose(var, x.astype(np.float64).var(axis=(0, 2, 3)), rtol=1e-4)


@pytest.mark.parametrize("shape", [(3,), (2, 4, 3)])
def test_gradients_of_a_batch_in_two_parts_match_finite_differences(shape) -> None:
    """dx and the parameters' gradients of the two-part protocol against central differences of the unsplit
    forward (the function the parts compute)."""
    rng = np.random.default_rng(4)
    bn = random_batch_norm(shape)
    x = rng.standard_normal((7, *shape)) * 2 + 1
    w = rng.standard_normal(x.shape)

    def loss() -> float:
        return float(np.sum(w * bn.forward(x)))

    _, dx, grads, _ = in_parts(bn, x, w, [3])
    assert rel_error(dx, numerical_gradient(loss, x)) < 1e-6
    for name, param in bn.params.items():
        assert rel_error(grads[name], numerical_gradient(loss, param)) < 1e-6, name


SPLIT_SPECS = [*SPECS[:7], {"type": "dropout", "rate": 0.25}, *SPECS[7:]]  # conv and dense batch norm, dropout


@pytest.mark.parametrize("optimizer", OPTIMIZERS)
def test_a_split_step_with_batch_norm_is_the_whole_batch_step(optimizer: str) -> None:
    """SplitStep on conv and dense batch norm (synchronized: the whole batch's statistics) against the plain step:
    outputs, gradients, running statistics and parameters to rounding; dropout's masks those of the whole batch,
    drawn in the calling thread; in inference the running statistics, unmoved."""
    n = parallel.SPLIT_FROM + 5  # halves of 34 and 35 rows
    x, y = problem(n)
    x, y = x.astype(np.float64) * 2 + 0.5, y.astype(np.float64)
    whole, split = (cnn.Sequential(cnn.build(SPLIT_SPECS, (1, 8, 8), 3), init="he", seed=2) for _ in range(2))
    for net in (whole, split):
        start_training(net, seed=5)
    loss = LossGradient.for_network(whole, cnn.CategoricalCrossEntropy())
    outputs = {"whole": np.empty_like(y), "split": np.empty_like(y)}
    plain_step(whole, x, y, outputs["whole"], loss, OPTIMIZERS[optimizer]())
    step = training.choose_step(split, OPTIMIZERS[optimizer](), n)
    assert isinstance(step, parallel.SplitStep)
    step(split, x, y, outputs["split"], loss, OPTIMIZERS[optimizer]())
    np.testing.assert_allclose(outputs["split"], outputs["whole"], rtol=1e-10, atol=1e-13)
    for a, b in zip(split.layers, whole.layers, strict=True):
        for name in a.params:
            # atol: a bias followed by batch norm has a gradient of zero plus rounding (~1e-11), which Adam and
            # Adadelta scale up
            np.testing.assert_allclose(a.grads[name], b.grads[name], rtol=1e-9, atol=1e-10)
            np.testing.assert_allclose(a.params[name], b.params[name], rtol=1e-10, atol=1e-9)
        for name in a.buffers:
            np.testing.assert_allclose(a.buffers[name], b.buffers[name], rtol=1e-12, atol=1e-15)
    masks = [replica.layers[7].mask for replica in step.replicas]
    np.testing.assert_array_equal(np.concatenate(masks), whole.layers[7].mask)
    assert split.layers[7].rng.random() == whole.layers[7].rng.random()
    assert not np.array_equal(whole.layers[6].buffers["running_mean"], 0)
    predicted = split.predict(x)  # inference mode from here
    running = [p.copy() for layer in split.layers for p in layer.buffers.values()]
    step(split, x, y, outputs["split"], loss, cnn.SGD(1e-12))
    np.testing.assert_allclose(outputs["split"], predicted, rtol=1e-12, atol=1e-15)
    for a, b in zip(running, (p for layer in split.layers for p in layer.buffers.values()), strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("batch_size", [32, parallel.SPLIT_FROM])
def test_training_gives_the_same_bits_on_one_and_two_cores(monkeypatch, batch_size: int) -> None:
    """Batches of 32 unsplit; of 64 (and the epoch's last, 32) split in halves on two threads or one after the
    other on one: the same bits."""
    x, y = problem(160)

    def make_net() -> cnn.Sequential:
        return cnn.Sequential(cnn.build(SPECS, (1, 8, 8), 3), init="he", seed=1, dtype="float32")

    assert_same_bits_on_one_and_two_cores(monkeypatch, make_net, x, y, batch_size=batch_size)
