"""A training recipe (a preset's `train:` mapping) in PyTorch, step for step on the batches cnn's fit draws, for the
full-MNIST benchmark (benchmarks.full_mnist). Only imported when PyTorch is installed.

What is the same as cnn's run of the recipe, by construction:
- the network: benchmarks.torch_models.twin of the cnn network the train stage builds from the layer specs, with
  its initial values; the last activation goes into the loss: softmax + categorical cross-entropy is
  cross_entropy on the logits (log_softmax + NLL), sigmoid + binary cross-entropy
  binary_cross_entropy_with_logits;
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

import numpy as np
import torch
from torch import nn
from torch.nn import functional


def make_optimizer(
    name: str,
    parameters: list[nn.Parameter],
    learning_rate: float,
    momentum: float = 0.0,
    nesterov: bool = False,
    weight_decay: float = 0.0,
) -> tuple[torch.optim.Optimizer, float]:
    """The torch optimizer for a cnn optimizer name, and the decoupled decay left to apply by hand (0 for Adam,
    whose decay AdamW applies)."""
    if name == "adam":
        if weight_decay:
            return torch.optim.AdamW(parameters, lr=learning_rate, weight_decay=weight_decay, eps=1e-8), 0.0
        return torch.optim.Adam(parameters, lr=learning_rate, eps=1e-8), 0.0
    if name == "adadelta":
        return torch.optim.Adadelta(parameters, lr=learning_rate, rho=0.9, eps=1e-6), weight_decay
    if name == "sgd":
        return torch.optim.SGD(parameters, lr=learning_rate, momentum=momentum, nesterov=nesterov), weight_decay
    raise ValueError(f"no PyTorch optimizer for {name!r}")


class RecipeTrainer:
    """Train `model` (x -> logits, torch_models.twin) as cnn's fit trains its network (module docstring):
    `epoch(x, labels, n_classes)` runs one epoch, `predict(x)` gives the probabilities cnn's predict would."""

    def __init__(
        self,
        model: nn.Module,
        optimizer: torch.optim.Optimizer,
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

    def loss(self, logits: torch.Tensor, labels: torch.Tensor, n_classes: int) -> torch.Tensor:
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
