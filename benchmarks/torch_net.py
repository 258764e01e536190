"""The notebook's network in PyTorch (CPU), for the side-by-side benchmark. torch is optional: only the
benchmark imports this module, and only when torch is installed.

Conv2d(1->5, 3x3, no bias) + an untied bias (5, 26, 26) like the notebook's -> Sigmoid -> Flatten ->
Linear(3380->100) -> Sigmoid -> Linear(100->2) -> Sigmoid. The loss is the notebook's binary cross-entropy
(mean over all elements), computed from the last pre-activation (binary_cross_entropy_with_logits: the same
value, and the same fused (a - y) / n gradient this project uses). SGD, no momentum.
"""

import numpy as np
import torch
from torch import nn

from benchmarks.torch_layers import Trainer


def notebook_parameters(seed: int = 0, dtype="float64") -> list[np.ndarray]:
    """Std-1 normal draws in the notebook's order: kernels (5,1,3,3), biases (5,26,26), W1 (100,3380), b1 (100,),
    W2 (2,100), b2 (2,)."""
    rng = np.random.default_rng(seed)
    shapes = [(5, 1, 3, 3), (5, 26, 26), (100, 3380), (100,), (2, 100), (2,)]
    return [rng.standard_normal(s).astype(dtype) for s in shapes]


class NotebookNet(nn.Module):
    """x (N, 1, 28, 28) -> logits (N, 2); apply torch.sigmoid for the network's outputs."""

    def __init__(self, params: list[np.ndarray]) -> None:
        super().__init__()
        kernels, conv_bias, w1, b1, w2, b2 = (torch.from_numpy(np.ascontiguousarray(p)) for p in params)
        self.conv = nn.Conv2d(1, 5, 3, bias=False, dtype=kernels.dtype)
        self.conv_bias = nn.Parameter(conv_bias.clone())
        self.fc1 = nn.Linear(3380, 100, dtype=kernels.dtype)
        self.fc2 = nn.Linear(100, 2, dtype=kernels.dtype)
        targets = (self.conv.weight, self.fc1.weight, self.fc1.bias, self.fc2.weight, self.fc2.bias)
        with torch.no_grad():
            for param, value in zip(targets, (kernels, w1, b1, w2, b2), strict=True):
                param.copy_(value)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.sigmoid(self.conv(x) + self.conv_bias)
        h = torch.sigmoid(self.fc1(h.flatten(1)))
        return self.fc2(h)


class TorchTrainer(Trainer):
    """Per-step training of NotebookNet with the same batch size, dtype, thread count, loss and SGD."""

    def __init__(self, dtype: str, threads: int, learning_rate: float = 0.1, seed: int = 0) -> None:
        torch.set_num_threads(threads)
        model = NotebookNet(notebook_parameters(seed, dtype))
        super().__init__(model, torch.optim.SGD(model.parameters(), lr=learning_rate), categorical=False, seed=seed)
