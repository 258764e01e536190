"""cnn.build: shapes inferred from specs, and one clear ArchitectureError per kind of mistake."""

from pathlib import Path

import pytest
import yaml

import cnn
from tests.conftest import NOTEBOOK_SPECS


def test_builds_the_notebook_network() -> None:
    layers = cnn.build(NOTEBOOK_SPECS)
    assert [type(layer).__name__ for layer in layers] == [
        "Convolutional", "Sigmoid", "Flatten", "Dense", "Sigmoid", "Dense", "Sigmoid",
    ]  # fmt: skip
    assert layers[0].output_shape == (5, 26, 26) and layers[0].bias == "untied"
    assert (layers[3].input_size, layers[3].output_size) == (3380, 100)
    assert (layers[5].input_size, layers[5].output_size) == (100, 2)


def test_builds_a_deeper_network_with_pooling_and_tied_bias() -> None:
    specs = [
        {"type": "conv", "depth": 8, "kernel_size": 5, "bias": "tied"},
        {"type": "relu"},
        {"type": "maxpool", "size": 2, "stride": 2},
        {"type": "conv", "depth": 4, "kernel_size": 3},
        {"type": "tanh"},
        {"type": "maxpool", "size": 3, "stride": 1},
        {"type": "reshape", "shape": [256]},
        {"type": "dense"},
        {"type": "softmax"},
    ]
    layers = cnn.build(specs, input_shape=(1, 28, 28), n_classes=10)
    assert [layer.output_shape for layer in layers if hasattr(layer, "config")][:7] == [
        (8, 24, 24), (8, 24, 24), (8, 12, 12), (4, 10, 10), (4, 10, 10), (4, 8, 8), (256,),
    ]  # fmt: skip
    net = cnn.Sequential(layers, init="he")
    assert net.output_shape == (10,)
    assert set(cnn.LAYER_TYPES) == {
        "conv",
        "maxpool",
        "avgpool",
        "global_avgpool",
        "dropout",
        "batchnorm",
        "standardize",
        "flatten",
        "reshape",
        "dense",
        "sigmoid",
        "tanh",
        "relu",
        "softmax",
    }


FLAT = [{"type": "flatten"}]
END = [{"type": "dense"}, {"type": "sigmoid"}]
ERRORS = [
    ("empty", [], r"train.layers must be a non-empty list"),
    ("not a mapping", ["conv", *END], r"train.layers\[0\]: expected a mapping with a 'type' key"),
    ("unknown type", [{"type": "lstm"}], r"train.layers\[0\]: unknown type 'lstm'; choose one of conv, maxpool"),
    ("missing key", [{"type": "conv", "depth": 3}], r"train.layers\[0\] \(conv\): missing kernel_size"),
    (
        "unknown key",
        [{"type": "dense", "unit": 5}],
        r"train.layers\[0\] \(dense\): unknown key\(s\) unit; allowed: units",
    ),
    ("bad depth", [{"type": "conv", "depth": 0, "kernel_size": 3}], r"depth must be a positive integer, got 0"),
    ("float kernel", [{"type": "conv", "depth": 2, "kernel_size": 2.5}], r"kernel_size must be a positive integer"),
    ("bad bias", [{"type": "conv", "depth": 2, "kernel_size": 3, "bias": "shared"}], r"bias must be untied or tied"),
    (
        "kernel too big",
        [{"type": "conv", "depth": 2, "kernel_size": 29}],
        r"kernel_size 29 is larger than the input \(1, 28, 28\)",
    ),
    (
        "dense on image",
        [{"type": "dense", "units": 10}],
        r"train.layers\[0\] \(dense\): expects a flat input, got \(1, 28, 28\); add \{type: flatten\} before it",
    ),
    (
        "conv on flat",
        [*FLAT, {"type": "conv", "depth": 2, "kernel_size": 3}],
        r"train.layers\[1\] \(conv\): expects an image input \(C, H, W\), got \(784,\)",
    ),
    (
        "pool too big",
        [{"type": "maxpool", "size": 30}],
        r"train.layers\[0\] \(maxpool\): size 30 is larger than the input",
    ),
    (
        "reshape size",
        [{"type": "reshape", "shape": [100]}],
        r"cannot reshape \(1, 28, 28\) \(784 values\) to \(100,\) \(100 values\)",
    ),
    ("softmax on image", [{"type": "softmax"}], r"train.layers\[0\] \(softmax\): expects a flat input"),
    (
        "wrong output",
        [*FLAT, {"type": "dense", "units": 7}, {"type": "sigmoid"}],
        r"train.layers\[2\] \(sigmoid\): the network ends with output shape \(7,\), but there are 2 classes",
    ),
]


@pytest.mark.parametrize(("specs", "message"), [e[1:] for e in ERRORS], ids=[e[0] for e in ERRORS])
def test_invalid_specs_raise_architecture_error(specs, message: str) -> None:
    with pytest.raises(cnn.ArchitectureError, match=message) as info:
        cnn.build(specs)
    assert isinstance(info.value, ValueError) and "\n" not in str(info.value)


def test_params_yaml_default_network_is_the_notebooks() -> None:
    params = yaml.safe_load((Path(__file__).resolve().parents[1] / "params.yaml").read_text())
    assert params["train"]["layers"] == cnn.NOTEBOOK_LAYERS
