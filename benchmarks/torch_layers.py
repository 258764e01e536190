"""Any benchmark network (benchmarks.networks) as a PyTorch module with the same layers, for the side-by-side
ten-digit variants. Only imported when torch is installed.

Layer by layer: conv -> Conv2d (a tied bias is Conv2d's own bias; an untied one a parameter per output
position), relu/sigmoid/tanh, maxpool -> MaxPool2d, flatten, dense -> Linear. The last activation is left to
the loss, as cnn does: softmax + categorical cross-entropy is functional.cross_entropy on the logits, sigmoid
+ binary cross-entropy binary_cross_entropy_with_logits. PyTorch's default initialisation (speed does not
depend on it); Adam or SGD with the network's learning rate.
"""

import numpy as np
import torch
from torch import nn
from torch.nn import functional

from benchmarks.networks import Network

ACTIVATIONS = {"relu": nn.ReLU, "sigmoid": nn.Sigmoid, "tanh": nn.Tanh}


class UntiedBias(nn.Module):
    def __init__(self, shape: tuple[int, ...], dtype: torch.dtype) -> None:
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(shape, dtype=dtype))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.bias


def build(network: Network, dtype: torch.dtype) -> nn.Sequential:
    """The network without its last activation: x (N, 1, 28, 28) -> logits (N, n_classes)."""
    channels, size, features = 1, 28, None
    modules: list[nn.Module] = []
    for spec in network.layers[:-1]:
        kind = spec["type"]
        if kind == "conv":
            k, depth, tied = spec["kernel_size"], spec["depth"], spec.get("bias", "untied") == "tied"
            modules.append(nn.Conv2d(channels, depth, k, bias=tied, dtype=dtype))
            channels, size = depth, size - k + 1
            if not tied:
                modules.append(UntiedBias((depth, size, size), dtype))
        elif kind == "maxpool":
            s = spec.get("size", 2)
            stride = spec.get("stride", s)
            modules.append(nn.MaxPool2d(s, stride))
            size = (size - s) // stride + 1
        elif kind == "flatten":
            modules.append(nn.Flatten())
            features = channels * size * size
        elif kind == "dense":
            units = spec.get("units", network.n_classes)
            modules.append(nn.Linear(features, units, dtype=dtype))
            features = units
        else:
            modules.append(ACTIVATIONS[kind]())
    return nn.Sequential(*modules)


class Trainer:
    """Per-step training of a PyTorch `model` (x -> logits) with `optimizer`; categorical: softmax +
    cross-entropy on the logits, else sigmoid + binary cross-entropy. Shuffled every epoch like cnn's fit."""

    def __init__(self, model: nn.Module, optimizer: torch.optim.Optimizer, categorical: bool, seed: int = 0) -> None:
        self.model, self.optimizer, self.categorical = model, optimizer, categorical
        self.generator = torch.Generator().manual_seed(seed)

    def loss(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if self.categorical:
            return functional.cross_entropy(logits, y)
        return functional.binary_cross_entropy_with_logits(logits, y)

    def fit(self, x: np.ndarray, y: np.ndarray, batch_size: int, epochs: int = 1) -> list[float]:
        """x (N, 1, 28, 28), y (N, K) one-hot, in the model's dtype; shuffled every epoch. -> mean loss per epoch."""
        xt, yt = torch.from_numpy(x), torch.from_numpy(y)
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
        logits = self.model(torch.from_numpy(x))
        return (torch.softmax(logits, 1) if self.categorical else torch.sigmoid(logits)).numpy()


class NetworkTrainer(Trainer):
    """`network` in PyTorch with the same batch size, dtype, threads, loss and optimizer."""

    def __init__(self, network: Network, dtype: str, threads: int, seed: int = 0) -> None:
        torch.set_num_threads(threads)
        torch.manual_seed(seed)
        model = build(network, getattr(torch, dtype))
        optimizer = torch.optim.Adam if network.optimizer == "adam" else torch.optim.SGD
        categorical = network.loss == "categorical_cross_entropy"
        super().__init__(model, optimizer(model.parameters(), lr=network.learning_rate), categorical, seed)
