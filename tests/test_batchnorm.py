"""Batch normalization: batch statistics and torch's running-statistics update in training, running statistics
in inference, gradient checks in both, the running statistics saved and loaded, same bits on one and two cores."""

import json
import zipfile

import numpy as np
import pytest

import cnn
from cnn import parallel
from tests.layer_checks import assert_same_bits_on_one_and_two_cores, check_gradients, problem, start_training


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


def test_a_batch_norm_network_is_never_split() -> None:
    with pytest.raises(ValueError, match="a batch cannot be split in halves for a network with BatchNorm"):
        parallel.SplitStep(cnn.Sequential(cnn.build(SPECS, (1, 8, 8), 3)))


def test_training_gives_the_same_bits_on_one_and_two_cores(monkeypatch) -> None:
    x, y = problem(96)

    def make_net() -> cnn.Sequential:
        return cnn.Sequential(cnn.build(SPECS, (1, 8, 8), 3), init="he", seed=1, dtype="float32")

    assert_same_bits_on_one_and_two_cores(monkeypatch, make_net, x, y, batch_size=32)
