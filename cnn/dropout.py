"""Dropout, inverted: in training each unit is kept with probability 1 - rate and scaled by 1 / (1 - rate),
so inference (training = False) is the identity and needs no rescaling."""

from typing import Any

import numpy as np

from .errors import ArchitectureError
from .layers import Layer


class Dropout(Layer):
    """x (N, *shape) -> y (N, *shape).

    training   keep = (u >= rate) with u ~ U[0, 1) drawn from self.rng, one per entry of x
               y = x * keep / (1 - rate),      dx = dy * keep / (1 - rate)
    inference  y = x,                          dx = dy

    The mask, keep / (1 - rate), is the layer's noise (Layer.draw_noise): it comes from `self.rng` (fit seeds it
    per layer); a caller that splits a batch (cnn.parallel) draws the whole batch's mask with `draw_noise` and
    hands each part its rows through `use_noise`, so a split batch gets the masks an unsplit one would.
    """

    stochastic = True
    keeps_shape = True

    def __init__(self, input_shape: tuple[int, ...] | None = None, rate: float = 0.5) -> None:
        super().__init__()
        if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0 <= rate < 1:
            raise ArchitectureError(f"dropout rate must be a number in [0, 1), got {rate!r}")
        self.rate = float(rate)
        if input_shape is not None:
            self.input_shape = self.output_shape = tuple(int(d) for d in input_shape)
        self.rng = np.random.default_rng(0)
        self.next_mask: np.ndarray | None = None

    def active(self) -> bool:
        """Whether forward drops units (training, rate > 0)."""
        return self.training and self.rate > 0

    def draw_noise(self, rows: int, dtype: Any) -> np.ndarray | None:
        """The multiplier keep / (1 - rate) for `rows` samples, (rows, *input_shape) in `dtype`, from self.rng;
        None when forward drops nothing (not active)."""
        if not self.active():
            return None
        keep = self.rng.random((rows, *self.input_shape)) >= self.rate
        return keep.astype(dtype) * np.asarray(1 / (1 - self.rate), dtype=dtype)

    def use_noise(self, noise: np.ndarray) -> None:
        self.next_mask = noise

    def forward(self, x: np.ndarray) -> np.ndarray:
        if not self.active():
            self.mask = None
            return x
        mask, self.next_mask = self.next_mask, None
        if mask is None:
            if self.input_shape is None:
                self.input_shape = self.output_shape = x.shape[1:]
            mask = self.draw_noise(len(x), x.dtype)
        self.mask = mask
        return x * mask

    def backward(self, output_gradient: np.ndarray) -> np.ndarray | None:
        if not self.needs_input_gradient:
            return None
        return output_gradient if self.mask is None else output_gradient * self.mask

    def config(self) -> dict[str, Any]:
        config: dict[str, Any] = {"type": "Dropout", "rate": self.rate}
        if self.input_shape is not None:
            config["input_shape"] = list(self.input_shape)
        return config
