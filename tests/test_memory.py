"""Resource sanity: preprocess and evaluate handle a full-size MNIST (70,000 images) within 1 GiB; a convolution
keeps its im2col columns no longer than its backward needs them (the largest arrays of a training step)."""

import tracemalloc
from pathlib import Path

import numpy as np
import pytest
import yaml

import cnn
from cnn import parallel
from cnn.conv import Convolutional
from cnn.step import LossGradient
from pipeline import idx
from tests.limits import run_measured

ROOT = Path(__file__).resolve().parents[1]
GIB_IN_KIB = 1024 * 1024


def peak_kib(workdir: Path, *args: str) -> int:
    """The peak resident memory (KiB) of `python -m pipeline *args` run in workdir: its own (tests.limits)."""
    result = run_measured("pipeline", list(args), workdir, timeout=600)
    assert "error" not in result.stderr and result.peak_mib is not None, result.stderr
    return round(result.peak_mib * 1024)


@pytest.mark.slow
def test_full_size_mnist_preprocess_and_evaluate_stay_under_1_gib(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    raw = tmp_path / "data" / "raw"
    raw.mkdir(parents=True)
    for prefix, count in (("train", 60_000), ("t10k", 10_000)):
        images = np.zeros((count, 28, 28), np.uint8)
        images[:, 8:20, 8:20] = rng.integers(0, 256, (count, 12, 12), dtype=np.uint8)
        idx.write_idx(raw / f"{prefix}-images-idx3-ubyte.gz", images)
        idx.write_idx(raw / f"{prefix}-labels-idx1-ubyte.gz", (np.arange(count) % 10).astype(np.uint8))
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["data"].update(digits=list(range(10)), limit_per_class=100_000)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))

    assert peak_kib(tmp_path, "preprocess") < GIB_IN_KIB
    with np.load(tmp_path / "data" / "processed" / "train.npz") as train:
        assert train["images"].shape == (60_000, 1, 28, 28)

    net = cnn.Sequential(cnn.build([*cnn.NOTEBOOK_LAYERS[:-1], {"type": "softmax"}], n_classes=10), seed=0)
    net.meta = {"classes": list(range(10)), "loss": "categorical_cross_entropy"}
    (tmp_path / "models").mkdir()
    cnn.save(net, tmp_path / "models" / "model.npz")
    assert peak_kib(tmp_path, "evaluate") < GIB_IN_KIB
    assert (tmp_path / "metrics.json").exists()


CONV_NET = [
    {"type": "conv", "depth": 4, "kernel_size": 3, "bias": "tied"},
    {"type": "relu"},
    {"type": "conv", "depth": 8, "kernel_size": 3, "bias": "tied"},
    {"type": "relu"},
    {"type": "flatten"},
    {"type": "dense"},
    {"type": "softmax"},
]


def conv_network() -> cnn.Sequential:
    return cnn.Sequential(cnn.build(CONV_NET, input_shape=(1, 12, 12), n_classes=3), init="he", seed=0)


def conv_layers(net: cnn.Sequential) -> list[Convolutional]:
    return [layer for layer in net.layers if isinstance(layer, Convolutional)]


def test_no_convolution_holds_its_columns_after_a_training_step_and_no_layer_its_caches_after_predict() -> None:
    net = conv_network()
    rng = np.random.default_rng(0)
    n = parallel.SPLIT_FROM
    x, y = rng.standard_normal((n, 1, 12, 12)), cnn.one_hot(rng.integers(0, 3, n), 3)
    loss = cnn.CategoricalCrossEntropy()
    net.fit(x[:8], y[:8], loss, cnn.SGD(0.1), cnn.FitOptions(epochs=1, batch_size=8))  # the plain step
    assert all(layer.cols is None for layer in conv_layers(net))
    split = parallel.SplitStep(net)
    net.set_training(True)
    split(net, x, y, np.empty_like(y), LossGradient.for_network(net, loss), cnn.SGD(0.1))
    assert all(layer.cols is None for replica in split.replicas for layer in conv_layers(replica))
    net.predict(x, batch_size=16)
    assert all(getattr(layer, name) is None for layer in net.layers for name in layer.caches)
    assert {name for layer in net.layers for name in layer.caches} == {"cols", "y", "x"}


def test_conv_backward_frees_its_columns_before_the_input_gradient_needs_memory() -> None:
    """The traced peak of one conv backward is the input gradient's own arrays (dy laid out as whole padded
    images, K.T @ dy, the col2im sum, dx), not those and the forward's columns on top."""
    N, C, H, D, k = 16, 8, 12, 16, 3
    layer = Convolutional((C, H, H), k, D, bias="tied", init="he", rng=0)
    rng = np.random.default_rng(0)
    y = layer.forward(rng.standard_normal((N, C, H, H)))
    dy = rng.standard_normal(y.shape)
    columns = layer.cols.nbytes
    item, pixels = dy.itemsize, N * H * H
    input_gradient = (D + C * k * k + 2 * C) * pixels * item + C * (k - 1) * (H + 1) * item
    tracemalloc.start()
    try:
        start = tracemalloc.get_traced_memory()[0]
        layer.backward(dy)
        peak = tracemalloc.get_traced_memory()[1] - start
    finally:
        tracemalloc.stop()
    assert layer.cols is None
    assert peak < input_gradient + columns / 2, (peak, columns, input_gradient)
