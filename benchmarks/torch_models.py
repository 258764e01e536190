"""PyTorch twins of cnn networks, for the side-by-side benchmark. Only imported when PyTorch is installed.

`twin(net)` turns each layer of a built cnn network (cnn.build: the specs the pipeline reads from train.layers)
into the PyTorch module that computes the same function, with the same initial values: Convolutional ->
Conv2d with its padding and stride (a tied bias is Conv2d's own; an untied one a parameter per output position),
MaxPool, AvgPool, GlobalAvgPool, Dropout (its own random masks), BatchNorm (with its running statistics),
Flatten and Reshape, Dense -> Linear, and the activations. A new cnn layer needs one entry in LAYERS. The last
activation is left to the loss, as cnn does: softmax + categorical cross-entropy is functional.cross_entropy on
the logits, sigmoid + binary cross-entropy binary_cross_entropy_with_logits (the same value and gradient).
"""

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional

import cnn
from benchmarks.networks import Network

FINAL = {"categorical_cross_entropy": "Softmax", "binary_cross_entropy": "Sigmoid"}  # loss -> last activation


class UntiedBias(nn.Module):
    """x + a bias per output position (D, H, W), the notebook's convolution bias."""

    def __init__(self, bias: torch.Tensor) -> None:
        super().__init__()
        self.bias = nn.Parameter(bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.bias


class Reshape(nn.Module):
    def __init__(self, shape: tuple[int, ...]) -> None:
        super().__init__()
        self.shape = shape

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.reshape(len(x), *self.shape)


def _tensor(array: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.array(array))  # a copy: training one never moves the other


def _conv(layer: cnn.Convolutional, config: dict[str, Any]) -> list[nn.Module]:
    kernels, biases = layer.params["kernels"], layer.params["biases"]
    tied = config["bias"] == "tied"
    stride, padding = config.get("stride", 1), config.get("padding", 0)
    conv = nn.Conv2d(kernels.shape[1], kernels.shape[0], kernels.shape[2], stride, padding, bias=tied)
    conv.weight = nn.Parameter(_tensor(kernels))
    if tied:
        conv.bias = nn.Parameter(_tensor(biases))
        return [conv]
    return [conv, UntiedBias(_tensor(biases))]


def _dense(layer: cnn.Dense, config: dict[str, Any]) -> list[nn.Module]:
    linear = nn.Linear(config["input_size"], config["output_size"])
    linear.weight = nn.Parameter(_tensor(layer.params["weights"]))
    linear.bias = nn.Parameter(_tensor(layer.params["biases"]))
    return [linear]


def _pool(kind: type[nn.Module]) -> Callable[[Any, dict[str, Any]], list[nn.Module]]:
    return lambda layer, config: [kind(config["size"], config.get("stride") or config["size"])]


def _batchnorm(layer: Any, config: dict[str, Any]) -> list[nn.Module]:
    shape = config["input_shape"]
    kind = nn.BatchNorm1d if len(shape) == 1 else nn.BatchNorm2d
    norm = kind(shape[0], eps=config["eps"], momentum=config["momentum"])
    norm.weight, norm.bias = nn.Parameter(_tensor(layer.params["gamma"])), nn.Parameter(_tensor(layer.params["beta"]))
    norm.running_mean, norm.running_var = _tensor(layer.buffers["running_mean"]), _tensor(layer.buffers["running_var"])
    return [norm]


LAYERS: dict[str, Callable[[Any, dict[str, Any]], list[nn.Module]]] = {
    "Convolutional": _conv,
    "Dense": _dense,
    "MaxPool": _pool(nn.MaxPool2d),
    "AvgPool": _pool(nn.AvgPool2d),
    "GlobalAvgPool": lambda layer, config: [nn.AdaptiveAvgPool2d(1), nn.Flatten()],
    "Dropout": lambda layer, config: [nn.Dropout(config["rate"])],
    "BatchNorm": _batchnorm,
    "Flatten": lambda layer, config: [nn.Flatten()],
    "Reshape": lambda layer, config: [Reshape(tuple(config["output_shape"]))],
    "ReLU": lambda layer, config: [nn.ReLU()],
    "Sigmoid": lambda layer, config: [nn.Sigmoid()],
    "Tanh": lambda layer, config: [nn.Tanh()],
}


def twin(net: cnn.Sequential, loss: str) -> nn.Sequential:
    """`net` (trained with `loss`, a cnn.LOSSES name) as x (N, C, H, W) -> logits, without its last activation,
    with net's current parameter values in net's dtype."""
    config = net.layers[-1].config()
    if FINAL.get(loss) != config["type"]:
        raise ValueError(f"no PyTorch twin for a network ending in {config['type']} trained with {loss}")
    modules = []
    for layer in net.layers[:-1]:
        config = layer.config()
        if config["type"] not in LAYERS:
            raise ValueError(f"no PyTorch twin for cnn layer {config['type']}; add one to LAYERS")
        modules += LAYERS[config["type"]](layer, config)
    return nn.Sequential(*modules)


class Trainer:
    """Per-step training of a PyTorch `model` (x -> logits) with `optimizer` on the logits' loss;
    categorical: softmax + cross-entropy, else sigmoid + binary cross-entropy. Shuffled every epoch like cnn's
    fit (with torch's own generator, so not in cnn's order)."""

    def __init__(self, model: nn.Module, optimizer: torch.optim.Optimizer, categorical: bool, seed: int = 0) -> None:
        self.model, self.optimizer, self.categorical = model, optimizer, categorical
        self.generator = torch.Generator().manual_seed(seed)

    @classmethod
    def like(cls, network: Network, dtype: str, threads: int, seed: int = 0) -> "Trainer":
        """`network` as cnn builds it from `seed`, in PyTorch, with `threads` threads, the network's loss and
        its optimizer (Adam, or SGD without momentum) at its learning rate."""
        torch.set_num_threads(threads)
        model = twin(network.build(dtype, seed)[0], network.loss)
        optimizer = {"adam": torch.optim.Adam, "sgd": torch.optim.SGD}[network.optimizer]
        categorical = network.loss == "categorical_cross_entropy"
        return cls(model, optimizer(model.parameters(), lr=network.learning_rate), categorical, seed)

    def loss(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if self.categorical:
            return functional.cross_entropy(logits, y)
        return functional.binary_cross_entropy_with_logits(logits, y)

    def fit(self, x: np.ndarray, y: np.ndarray, batch_size: int, epochs: int = 1) -> list[float]:
        """x (N, 1, 28, 28), y (N, K) one-hot, in the model's dtype. -> mean loss per epoch."""
        xt, yt = torch.from_numpy(x), torch.from_numpy(y)
        self.model.train()
        history = []
        for _ in range(epochs):
            order = torch.randperm(len(xt), generator=self.generator)
            total = 0.0
            for start in range(0, len(xt), batch_size):
                idx = order[start : start + batch_size]
                self.optimizer.zero_grad(set_to_none=True)
                loss = self.loss(self.model(xt[idx]), yt[idx])
                loss.backward()
                self.optimizer.step()
                total += loss.item() * len(idx)
            history.append(total / max(len(xt), 1))
        return history

    @torch.no_grad()
    def predict(self, x: np.ndarray) -> np.ndarray:
        """Class probabilities (N, K), as cnn's predict gives them (dropout off, batch norm's running statistics)."""
        self.model.eval()
        logits = self.model(torch.from_numpy(x))
        return (torch.softmax(logits, 1) if self.categorical else torch.sigmoid(logits)).numpy()
