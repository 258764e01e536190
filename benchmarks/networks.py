"""The networks the benchmark trains: the notebook's (digits 0/1, sigmoids, binary cross-entropy, SGD) and two
ten-digit networks (ReLU, max pooling, softmax with categorical cross-entropy, Adam), the README's and a
LeNet-style one. One definition serves cnn, PyTorch, the profile, the memory children and the accuracy check."""

from dataclasses import dataclass, field
from typing import Any

import numpy as np

import cnn

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
    """A layer list (cnn.build specs) with the data, init, loss and optimizer it is trained with."""

    key: str
    layers: list[dict[str, Any]] = field(hash=False)
    digits: tuple[int, ...]
    init: str
    loss: str  # a cnn.LOSSES name
    optimizer: str  # sgd | adam
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


NOTEBOOK = Network("notebook", cnn.NOTEBOOK_LAYERS, (0, 1), "normal", "binary_cross_entropy", "sgd", 0.1)
TEN_DIGIT = Network("ten-digit", TEN_DIGIT_LAYERS, tuple(range(10)), "he", "categorical_cross_entropy", "adam", 0.001)
LENET = Network("lenet", LENET_LAYERS, tuple(range(10)), "he", "categorical_cross_entropy", "adam", 0.001)
NETWORKS = {n.key: n for n in (NOTEBOOK, TEN_DIGIT, LENET)}


def variant_of(base: Network, key: str, **changes: Any) -> Network:
    """`base` with some layer specs changed: changes maps a layer index to the keys to replace."""
    layers = [dict(spec) for spec in base.layers]
    for index, update in changes.items():
        layers[int(index.removeprefix("layer"))].update(update)
    return Network(key, layers, base.digits, base.init, base.loss, base.optimizer, base.learning_rate)


# Depth and width around the README's ten-digit network, for the scaling table.
ARCHITECTURES = [
    TEN_DIGIT,
    variant_of(TEN_DIGIT, "conv 32", layer0={"depth": 32}),
    variant_of(TEN_DIGIT, "dense 256", layer4={"units": 256}),
    LENET,
    variant_of(LENET, "lenet conv 16/32", layer0={"depth": 16}, layer3={"depth": 32}),
]
