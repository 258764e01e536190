"""What the benchmark trains, and on what: networks as cnn.build layer specs (the pipeline's train.layers) with
the data, init, loss and optimizer they are trained with, one definition for cnn, PyTorch, the profile and the
child processes; and the shipped MNIST sample's training images (data/sample), selected as the pipeline does."""

from dataclasses import dataclass, field
from typing import Any

import numpy as np

import cnn
from benchmarks import REPO
from pipeline import idx, preprocess

SAMPLE_DIR = REPO / "data" / "sample"

TEN_DIGIT_LAYERS = [
    {"type": "conv", "depth": 16, "kernel_size": 3, "bias": "tied"},
    {"type": "relu"},
    {"type": "maxpool", "size": 2, "stride": 2},
    {"type": "flatten"},
    {"type": "dense", "units": 64},
    {"type": "relu"},
    {"type": "dense"},
    {"type": "softmax"},
]
# LeNet-style: one more conv block (8 filters) in front of the ten-digit network
LENET_LAYERS = [
    {"type": "conv", "depth": 8, "kernel_size": 3, "bias": "tied"},
    {"type": "relu"},
    {"type": "maxpool", "size": 2, "stride": 2},
    *TEN_DIGIT_LAYERS,
]


@dataclass(frozen=True)
class Network:
    """A layer list (cnn.build specs) with the digits, init, loss and optimizer it is trained with."""

    key: str
    layers: list[dict[str, Any]] = field(hash=False)
    digits: tuple[int, ...]
    init: str
    loss: str  # a cnn.LOSSES name
    optimizer: str  # a cnn.OPTIMIZERS name
    learning_rate: float

    @property
    def n_classes(self) -> int:
        return len(self.digits)

    def build(self, dtype: str, seed: int = 0) -> tuple[cnn.Sequential, cnn.Loss, cnn.Optimizer]:
        """(network, loss, optimizer) for training this network in cnn."""
        net = cnn.Sequential(cnn.build(self.layers, n_classes=self.n_classes), init=self.init, seed=seed, dtype=dtype)
        return net, cnn.LOSSES[self.loss](), cnn.OPTIMIZERS[self.optimizer](self.learning_rate)

    def parameter_count(self) -> int:
        net = self.build("float32")[0]
        return sum(int(np.prod(p.shape)) for layer in net.param_layers for p in layer.params.values())

    def changed(self, key: str, **changes: dict[str, Any]) -> "Network":
        """This network with some layer specs changed: layer3={"depth": 32} updates layer 3's spec."""
        layers = [dict(spec) for spec in self.layers]
        for index, update in changes.items():
            layers[int(index.removeprefix("layer"))].update(update)
        return Network(key, layers, self.digits, self.init, self.loss, self.optimizer, self.learning_rate)


NOTEBOOK = Network("notebook", cnn.NOTEBOOK_LAYERS, (0, 1), "normal", "binary_cross_entropy", "sgd", 0.1)
TEN_DIGIT = Network("ten-digit", TEN_DIGIT_LAYERS, tuple(range(10)), "he", "categorical_cross_entropy", "adam", 0.001)
LENET = Network("lenet", LENET_LAYERS, tuple(range(10)), "he", "categorical_cross_entropy", "adam", 0.001)
NETWORKS = {n.key: n for n in (NOTEBOOK, TEN_DIGIT, LENET)}
TEN_DIGIT_NETWORKS = ("ten-digit", "lenet")

# Depth and width around the README's ten-digit network, for the architectures table.
ARCHITECTURES = [
    TEN_DIGIT,
    TEN_DIGIT.changed("conv 32", layer0={"depth": 32}),
    TEN_DIGIT.changed("dense 256", layer4={"units": 256}),
    LENET,
    LENET.changed("lenet conv 16/32", layer0={"depth": 16}, layer3={"depth": 32}),
]


def training_images(digits=(0, 1), limit: int | None = None, seed: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The training images of `digits` in the sample through pipeline.preprocess.select: every one in file order
    (800 for 0/1), or, with the data params' limit_per_class and seed, the preprocess stage's selection (its
    data/processed/train.npz when data.source is sample): x (N, 1, 28, 28) float32 in [0, 1], y (N,) int64 class
    index."""
    images, labels = idx.read_split(SAMPLE_DIR, preprocess.SPLITS["train"])
    rng = None if seed is None else np.random.default_rng(seed)
    split = preprocess.select(images, labels, list(digits), limit, rng)
    return split.images, split.class_index


def tile(x: np.ndarray, n: int) -> np.ndarray:
    """The first n rows of x repeated as often as needed (a contiguous copy)."""
    reps = -(-n // len(x))
    return np.ascontiguousarray(np.concatenate([x] * reps)[:n])
