"""PyTorch twins of cnn networks, for the side-by-side benchmark. Only imported when PyTorch is installed.

`twin(net)` turns each layer of a built cnn network (cnn.build: the specs the pipeline reads from train.layers)
into the PyTorch module that computes the same function, with the same initial values: Convolutional ->
Conv2d with its padding and stride (a tied bias is Conv2d's own; an untied one a parameter per output position),
MaxPool, AvgPool, GlobalAvgPool, Dropout (its own random masks), BatchNorm (with its running statistics),
Standardize (x.sub(mean).div(std), torchvision's Normalize), Flatten and Reshape, Dense -> Linear, and the
activations. A new cnn layer needs one entry in LAYERS. The last activation is left to the loss, as cnn does:
softmax + categorical cross-entropy is functional.cross_entropy on the logits, sigmoid + binary cross-entropy
binary_cross_entropy_with_logits (the same value and gradient).

`Trainer` trains a twin as cnn's fit trains its network (for the speed benchmark, benchmarks.trainers, and the
full-MNIST benchmark, benchmarks.full_mnist). What is the same, by construction:
- the batches: the order np.random.default_rng(seed).permutation per epoch and each batch augmented by the
  recipe's cnn augmenter with the generator np.random.default_rng([seed, 2]) (cnn.training's), so every step
  sees the same images; the last batch of an epoch is the smaller rest, as in cnn;
- the optimizer: torch.optim.Adam, AdamW (Adam with decoupled weight decay: the same p *= 1 - lr * wd),
  Adadelta, SGD with momentum / nesterov (dampening 0), with cnn's defaults (Adam betas 0.9, 0.999, eps 1e-8;
  Adadelta rho 0.9, eps 1e-6); for SGD and Adadelta torch's weight_decay is an L2 term in the gradient, not
  cnn's decoupled decay, so the decay is applied by hand before each step (p *= 1 - lr * wd), as cnn does;
- the learning rate: the cnn schedule itself sets the rate before each step (cnn.schedules states which torch
  scheduler each one equals).
What differs: dropout's masks come from torch's generator (torch.manual_seed(seed)): the same rate, other draws.
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


class Standardize(nn.Module):
    """(x - mean) / std, as torchvision's transforms.Normalize computes it (tensor.sub_(mean).div_(std))."""

    def __init__(self, mean: float, std: float) -> None:
        super().__init__()
        self.mean, self.std = mean, std

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.sub(self.mean).div(self.std)


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
    "Standardize": lambda layer, config: [Standardize(config["mean"], config["std"])],
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


def make_optimizer(
    name: str,
    parameters: list[nn.Parameter],
    learning_rate: float,
    momentum: float = 0.0,
    nesterov: bool = False,
    weight_decay: float = 0.0,
) -> tuple[torch.optim.Optimizer, float]:
    """The torch optimizer for a cnn optimizer name (cnn.OPTIMIZERS), and the decoupled decay left to apply by
    hand (0 for Adam, whose decay AdamW applies)."""
    if name == "adam":
        if weight_decay:
            return torch.optim.AdamW(parameters, lr=learning_rate, weight_decay=weight_decay, eps=1e-8), 0.0
        return torch.optim.Adam(parameters, lr=learning_rate, eps=1e-8), 0.0
    if name == "adadelta":
        return torch.optim.Adadelta(parameters, lr=learning_rate, rho=0.9, eps=1e-6), weight_decay
    if name == "sgd":
        return torch.optim.SGD(parameters, lr=learning_rate, momentum=momentum, nesterov=nesterov), weight_decay
    raise ValueError(f"no PyTorch optimizer for {name!r}")


class Trainer:
    """Train `model` (x -> logits, `twin`) as cnn's fit trains its network, step for step on the batches fit
    draws (module docstring): `epoch(x, labels, n_classes)` runs one epoch, `predict(x)` gives the probabilities
    cnn's predict would."""

    def __init__(
        self,
        model: nn.Module,
        optimizer: torch.optim.Optimizer | None,
        loss: str,
        batch_size: int,
        seed: int,
        schedule: Callable[[int], float] | None = None,
        augment: Callable[[np.ndarray, np.random.Generator], np.ndarray] | None = None,
        decay: float = 0.0,
    ) -> None:
        self.model, self.optimizer, self.loss_name = model, optimizer, loss
        self.batch_size, self.schedule, self.augment, self.decay = batch_size, schedule, augment, decay
        self.shuffle_rng = np.random.default_rng(seed)
        self.augment_rng = np.random.default_rng([seed, 2])
        self.step = 0
        torch.manual_seed(seed)

    @classmethod
    def like(cls, network: Network, dtype: str, threads: int, batch_size: int, seed: int = 0) -> "Trainer":
        """`network` as cnn builds it from `seed`, in PyTorch, with `threads` threads, the network's loss and
        optimizer (make_optimizer) at its learning rate, in batches of `batch_size`."""
        torch.set_num_threads(threads)
        model = twin(network.build(dtype, seed)[0], network.loss)
        optimizer, decay = make_optimizer(network.optimizer, list(model.parameters()), network.learning_rate)
        return cls(model, optimizer, network.loss, batch_size, seed, decay=decay)

    def loss(self, logits: torch.Tensor, labels: torch.Tensor, n_classes: int) -> torch.Tensor:
        """The loss of `logits` (N, n_classes) for class indices `labels` (N,)."""
        if self.loss_name == "categorical_cross_entropy":
            return functional.cross_entropy(logits, labels)
        target = functional.one_hot(labels, n_classes).to(logits.dtype)
        return functional.binary_cross_entropy_with_logits(logits, target)

    def epoch(self, x: np.ndarray, labels: np.ndarray, n_classes: int) -> float:
        """One epoch over x (N, C, H, W) in the model's dtype with class indices `labels` (N,): mean loss."""
        order = self.shuffle_rng.permutation(len(x))
        targets = torch.from_numpy(labels[order])
        self.model.train()
        total = 0.0
        for start in range(0, len(x), self.batch_size):
            xb = x[order[start : start + self.batch_size]]
            if self.augment is not None:
                xb = np.asarray(self.augment(xb, self.augment_rng), dtype=x.dtype)
            if self.schedule is not None:
                rate = float(self.schedule(self.step))
                for group in self.optimizer.param_groups:
                    group["lr"] = rate
            self.optimizer.zero_grad(set_to_none=True)
            yb = targets[start : start + self.batch_size]
            loss = self.loss(self.model(torch.from_numpy(xb)), yb, n_classes)
            loss.backward()
            if self.decay:
                with torch.no_grad():
                    for group in self.optimizer.param_groups:
                        for p in group["params"]:
                            p.mul_(1 - group["lr"] * self.decay)
            self.optimizer.step()
            total += loss.item() * len(yb)
            self.step += 1
        self.model.eval()
        return total / max(len(x), 1)

    @torch.no_grad()
    def predict(self, x: np.ndarray, batch_size: int = 1000) -> np.ndarray:
        """Probabilities (N, K) for x in inference mode (dropout off, batch norm's running statistics), computed
        batch_size images at a time."""
        self.model.eval()
        logits = torch.cat([self.model(torch.from_numpy(x[i : i + batch_size])) for i in range(0, len(x), batch_size)])
        categorical = self.loss_name == "categorical_cross_entropy"
        return (torch.softmax(logits, 1) if categorical else torch.sigmoid(logits)).numpy()
