"""Sequential network: forward/backward through a list of layers, mini-batch training, batched predict."""

import copy
import dataclasses
from collections.abc import Sequence
from typing import Any

import numpy as np

from . import training
from .errors import ArchitectureError
from .init import check_init
from .layers import Layer
from .losses import Loss
from .optimizers import Optimizer
from .threads import blas_threads

DTYPES = ("float32", "float64")


def one_hot(labels: np.ndarray, n_classes: int, dtype: Any = "float64") -> np.ndarray:
    """Integer labels (N,) in [0, n_classes) -> one-hot rows (N, n_classes)."""
    labels = np.asarray(labels)
    if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"labels must be a 1-d integer array, got shape {labels.shape} dtype {labels.dtype}")
    if labels.size and (labels.min() < 0 or labels.max() >= n_classes):
        raise ValueError(f"labels must lie in [0, {n_classes}), got {labels.min()}..{labels.max()}")
    out = np.zeros((labels.size, n_classes), dtype=dtype)
    out[np.arange(labels.size), labels] = 1
    return out


class Sequential:
    """Layers applied in order. Parameters are created here, in layer order, from one
    np.random.default_rng(seed), so the same (layers, init, seed, dtype) gives the same network.

    net.input_shape / net.output_shape are per-sample shapes; net.meta is free JSON-able metadata
    saved with the model (e.g. {"classes": [0, 1]}).
    """

    def __init__(self, layers: Sequence[Layer], init: str = "normal", seed: int = 0, dtype: str = "float64") -> None:
        if not layers:
            raise ArchitectureError("a network needs at least one layer")
        if str(dtype) not in DTYPES:
            raise ValueError(f"dtype must be one of {', '.join(DTYPES)}, got {dtype!r}")
        if init is not None:
            check_init(init)
        self.layers = list(layers)
        self.dtype = np.dtype(dtype)
        self.meta: dict[str, Any] = {}
        if self.layers[0].input_shape is None:
            raise ArchitectureError(f"the first layer ({type(self.layers[0]).__name__}) must fix the input shape")
        shape = self.layers[0].input_shape
        for i, layer in enumerate(self.layers):
            try:
                shape = layer.connect(shape)
            except ArchitectureError as exc:
                raise ArchitectureError(f"layers[{i}]: {exc}") from None
        self.input_shape, self.output_shape = self.layers[0].input_shape, shape
        rng = None if init is None else np.random.default_rng(seed)  # init=None: zeros, to be loaded
        for layer in self.layers:
            layer.initialize(init, rng, self.dtype)
            layer.needs_input_gradient = True
        self.layers[0].needs_input_gradient = False  # nobody uses dLoss/dx of the data

    def replica(self) -> "Sequential":
        """The same network (shared parameter arrays) with its own gradients and caches (Layer.replica)."""
        twin = copy.copy(self)
        twin.layers = [layer.replica() for layer in self.layers]
        return twin

    @property
    def param_layers(self) -> list[Layer]:
        return [layer for layer in self.layers if layer.params]

    def forward(self, x: np.ndarray) -> np.ndarray:
        """x (N, *input_shape) in net.dtype -> (N, *output_shape); caches what backward needs."""
        for layer in self.layers:
            x = layer.forward(x)
        return x

    def backward(self, output_gradient: np.ndarray, start: int | None = None) -> None:
        """Fill every layer's grads from dLoss/d(output of layers[start]) (default: the last layer)."""
        grad = output_gradient
        stop = len(self.layers) - 1 if start is None else start
        for layer in self.layers[stop::-1]:
            grad = layer.backward(grad)

    def predict(self, x: np.ndarray, batch_size: int = 256) -> np.ndarray:
        """x (N, *input_shape) -> outputs (N, *output_shape), computed batch_size samples at a time, in
        inference mode (set_training(False))."""
        x = self._check_x(x)
        self.set_training(False)
        if len(x) == 0:
            return np.zeros((0, *self.output_shape), dtype=self.dtype)
        outputs = []
        with blas_threads():
            for i in range(0, len(x), batch_size):
                batch = x[i : i + batch_size]
                for layer in self.layers:  # forward without backward: each layer's caches go once it is done
                    batch = layer.forward(batch)
                    layer.forget_caches()
                outputs.append(batch)
        return np.concatenate(outputs)

    def set_training(self, flag: bool) -> None:
        """Training mode (True: stochastic layers draw, batch statistics) or inference mode on every layer."""
        for layer in self.layers:
            layer.training = bool(flag)

    def fit(
        self,
        x: np.ndarray,
        y: np.ndarray,
        loss: Loss,
        optimizer: Optimizer,
        *args: Any,
        **options: Any,
    ) -> list[dict[str, Any]]:
        """Train on x (N, *input_shape) with targets y (N, *output_shape): `args` and `options` are the fields
        of cnn.training.FitOptions (epochs first), positional or keyword, or one FitOptions.

        Returns one record per epoch {"epoch", "loss" (mean over the epoch's samples) and "accuracy" (share of
        the epoch's rows whose highest output was the target's, as trained: with dropout and augmentation), and
        with validation_data "val_loss" and "val_accuracy" (in inference mode)};
        `callback(record)` is called after each epoch. Steps run in training mode, validation and the net
        afterwards in inference mode. Raises TrainingDivergedError when the loss becomes nan or inf, and
        ArchitectureError before the first step when a batch of one row would meet batch norm over dense
        features. The same arguments give the same bits on any number of cores.
        """
        if args and isinstance(args[0], training.FitOptions):
            if len(args) > 1 or options:
                raise TypeError("pass one FitOptions or its fields, not both")
            fit_options = args[0]
        else:
            fit_options = training.FitOptions(*args, **options)
        x, y = self._check_x(x), self._check_y(y, len(x))
        if fit_options.validation_data is not None:
            xv = self._check_x(fit_options.validation_data[0])
            validation_data = (xv, self._check_y(fit_options.validation_data[1], len(xv)))
            fit_options = dataclasses.replace(fit_options, validation_data=validation_data)
        return training.fit(self, x, y, loss, optimizer, fit_options)

    def _check_x(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x)
        if x.shape[1:] != self.input_shape:
            raise ValueError(f"inputs must have shape (N, {', '.join(map(str, self.input_shape))}), got {x.shape}")
        return x.astype(self.dtype, copy=False)

    def _check_y(self, y: np.ndarray, n: int) -> np.ndarray:
        y = np.asarray(y)
        if y.shape != (n, *self.output_shape):
            raise ValueError(
                f"targets must have shape {(n, *self.output_shape)} (one-hot: cnn.one_hot(labels, "
                f"n_classes)), got {y.shape}"
            )
        return y.astype(self.dtype, copy=False)

    def __repr__(self) -> str:
        inner = ",\n  ".join(repr(layer) for layer in self.layers)
        return f"Sequential([\n  {inner}\n], dtype={self.dtype})"
