"""Standardize: inputs shifted and scaled by two fixed numbers, as torchvision's transforms.Normalize((mean,), (std,))
does to every image (PyTorch's examples/mnist: mean 0.1307, std 0.3081, the training images' own). As a layer,
the model file keeps them, so predict and evaluate take raw images in [0, 1] like training did."""

from typing import Any

import numpy as np

from .errors import ArchitectureError
from .layers import Layer
from .specs import number


class Standardize(Layer):
    """x (N, *shape) -> y (N, *shape); mean and std are numbers fixed by the spec, not learned.

    forward   y = (x - mean) / std
    backward  dx = dy / std

    In x's dtype, subtract then divide (mean and std rounded to it), as torch's x.sub_(mean).div_(std): the
    same bits. Not x * (1 / std), which rounds differently.
    """

    keeps_shape = True

    def __init__(self, input_shape: tuple[int, ...] | None = None, *, mean: float, std: float) -> None:
        super().__init__()
        self.mean = _number("mean", mean, "a finite number (the inputs' mean: 0.1307 for MNIST in [0, 1])")
        self.std = _number("std", std, "a finite number > 0 (the inputs' standard deviation: 0.3081 for MNIST)")
        if input_shape is not None:
            self.input_shape = self.output_shape = tuple(int(d) for d in input_shape)

    def forward(self, x: np.ndarray) -> np.ndarray:
        y = x - self.mean
        y /= self.std
        return y

    def backward(self, output_gradient: np.ndarray) -> np.ndarray | None:
        if not self.needs_input_gradient:
            return None
        return output_gradient / self.std

    def config(self) -> dict[str, Any]:
        config: dict[str, Any] = {"type": "Standardize", "mean": self.mean, "std": self.std}
        if self.input_shape is not None:
            config["input_shape"] = list(self.input_shape)
        return config


def _number(key: str, value: Any, allowed: str) -> float:
    """`value` as a float if it is a finite number (specs.number; > 0 for std), else an ArchitectureError saying
    `allowed`."""
    try:
        ok = number(key, value) > 0 or key != "std"
    except ValueError:
        ok = False
    if not ok:
        raise ArchitectureError(f"standardize {key} must be {allowed}, got {value!r}")
    return float(value)
