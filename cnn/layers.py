"""Layer base class, Dense, Reshape and Flatten. Batch dimension first everywhere.

Every layer: forward(x) -> y caches what backward needs; backward(dy) -> dx fills ``grads`` and returns
dLoss/dx. A layer with parameters holds them in ``params`` and the gradients of its last backward in
``grads``: plain arrays, same names and shapes. ``buffers``: arrays by name that are saved with the model
(cnn.serialize) but not trained, such as batch norm's running statistics; empty for most layers. A layer works
on its own: a constructor's draw of params waits for their first use (initialize_on_use), and Sequential,
which initializes every layer from its own generator, pre-empts it, so weights are drawn once.
An optimizer applies the gradients. ``needs_input_gradient = False`` (Sequential sets it on the first
layer, whose input is the data) lets backward skip dx and return None. One step does not write every grads
array: cnn.fast.rank1_sgd_step (batch 1, plain SGD) applies a Dense layer's weight gradient as the factors
that backward_rank1 returns, so ``grads["weights"]`` of a Dense layer is left as it was.

What the training loop (cnn.training) reads of a layer, besides forward/backward/params/grads:
- ``training``: True while fit runs its steps, False in validation and predict (Sequential.set_training).
- ``stochastic = True`` and an attribute ``rng`` (np.random.Generator): fit gives such a layer
  np.random.default_rng([seed, 1, index]) at its start (index: its position in net.layers).
- ``draw_noise(rows, dtype)`` and ``use_noise(noise)``, for a stochastic layer: the noise (rows first) its next
  forward of `rows` samples would draw from ``rng``, None when it would draw none (the default: no noise), and
  the way to make its next forward use given rows of such noise instead. A batch split in halves
  (cnn.parallel) has the whole batch's noise drawn once and each half its rows: the noise of the unsplit batch.
- ``couples_batch = True``: its forward and backward mix the samples of a batch (batch norm). Such a layer
  computes a batch given in parts (rows, in order: cnn.parallel's halves) with the whole batch's arithmetic
  through its batch-coupling protocol, each pass in three steps: per part, what it needs of the batch
  (``partial_statistics(x)``, ``partial_gradient_sums(dy)``); once, the whole batch's from the parts' in
  order (``whole_statistics(parts)``, ``whole_gradient_sums(parts)``: where state such as running statistics
  moves, once per batch); per part again, its output (``forward_with(x, whole)``, ``backward_with(dy, whole)``).
  Its forward(x) and backward(dy) are those steps with one part.
"""

import copy
import math
from typing import Any, ClassVar

import numpy as np

from . import init as initializers
from .errors import ArchitectureError

LAYER_CLASSES: dict[str, type["Layer"]] = {}
Seed = int | np.random.Generator


class Layer:
    """Base layer. Shapes are per sample (no batch dimension); None means "any" until connected."""

    input_shape: tuple[int, ...] | None = None
    output_shape: tuple[int, ...] | None = None
    needs_input_gradient: bool = True
    training: bool = False  # set by Sequential.set_training: True while fit steps, False in predict
    stochastic: ClassVar[bool] = False  # True: forward draws from self.rng in training (fit seeds it)
    couples_batch: ClassVar[bool] = False  # True: forward mixes samples; split batches need the protocol below
    abstract: ClassVar[bool] = False  # a base class that cnn.builder.layer_from_config must not build
    caches: ClassVar[tuple[str, ...]] = ()  # attributes forward keeps for backward (forget_caches drops them)
    keeps_shape: ClassVar[bool] = False  # True: the output shape is the input shape, whatever connect is given

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if not cls.__dict__.get("abstract", False):
            LAYER_CLASSES[cls.__name__] = cls

    _deferred: tuple[str | None, int | None, Any] | None = None  # a constructor's draw not made yet

    def __init__(self) -> None:
        self._params: dict[str, np.ndarray] = {}
        self._grads: dict[str, np.ndarray] = {}
        self.buffers: dict[str, np.ndarray] = {}  # saved, not trained

    @property
    def params(self) -> dict[str, np.ndarray]:
        if self._deferred is not None:
            self.initialize(*self._deferred)
        return self._params

    @property
    def grads(self) -> dict[str, np.ndarray]:
        if self._deferred is not None:
            self.initialize(*self._deferred)
        return self._grads

    def initialize_on_use(self, init: str | None, rng: Seed | None, dtype: Any) -> None:
        """For constructors: initialize(init, rng, dtype), put off until params or grads are first used, so a
        layer that Sequential initializes from its own generator draws its weights once. A Generator is drawn
        from at once (the caller's stream keeps its order); a seed or None waits."""
        if init is not None:
            initializers.check_init(init)
        if isinstance(rng, np.random.Generator):
            self.initialize(init, rng, dtype)
        else:
            self._deferred = (init, rng, dtype)

    def connect(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        """Check that this layer accepts per-sample `input_shape`; return its per-sample output shape (a layer
        that keeps_shape takes any shape the first time: its input and output shape from then on)."""
        input_shape = tuple(input_shape)
        if self.input_shape is not None and input_shape != self.input_shape:
            raise ArchitectureError(
                f"{type(self).__name__} expects input of shape {self.input_shape}, got {input_shape}"
            )
        if self.keeps_shape:
            self.input_shape = self.output_shape = input_shape
        return self.output_shape

    def initialize(self, init: str | None, rng: Seed | None, dtype: Any) -> None:
        """(Re)create params in `dtype` from `rng` (a Generator, or a seed) and zero grads; init=None gives
        zeros (values about to be loaded). Parameterless layers have nothing to do."""

    def _set_params(self, **arrays: np.ndarray) -> None:
        self._deferred = None
        self._params = dict(arrays)
        self._grads = {name: np.zeros_like(value) for name, value in arrays.items()}

    def replica(self) -> "Layer":
        """A twin for data-parallel training: it shares this layer's `params` (the very arrays) and has
        zeroed `grads` of its own; every other attribute is its own as soon as its forward rebinds it (a
        layer's forward and backward bind new arrays to their caches, never write into old ones)."""
        params = self.params  # makes a deferred draw first, so that the twin shares its arrays
        twin = copy.copy(self)
        twin._grads = {name: np.zeros_like(value) for name, value in params.items()}
        return twin

    def draw_noise(self, rows: int, dtype: Any) -> np.ndarray | None:
        """The noise (rows, ...) in `dtype` that forward would draw now for `rows` samples, from self.rng; None
        when it would draw none (this default: a layer without noise)."""
        return None

    def use_noise(self, noise: np.ndarray) -> None:
        """Make the next forward use `noise` (rows of what draw_noise returned) instead of drawing its own."""
        raise NotImplementedError(f"{type(self).__name__} draws no noise")

    def forward(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def backward(self, output_gradient: np.ndarray) -> np.ndarray | None:
        raise NotImplementedError

    def forget_caches(self) -> None:
        """Drop what forward kept for backward (the attributes named in `caches`) when no backward follows
        (Sequential.predict)."""
        for name in self.caches:
            setattr(self, name, None)

    def partial_statistics(self, x: np.ndarray) -> Any:
        """For couples_batch: what the forward of this part of a batch contributes to the whole batch's."""
        raise NotImplementedError(f"{type(self).__name__} does not couple the samples of a batch")

    def whole_statistics(self, parts: list) -> Any:
        """For couples_batch: the whole batch's statistics from its parts' partial_statistics, in order."""
        raise NotImplementedError(f"{type(self).__name__} does not couple the samples of a batch")

    def forward_with(self, x: np.ndarray, whole: Any) -> np.ndarray:
        """For couples_batch: forward of this part of a batch, given whole_statistics."""
        raise NotImplementedError(f"{type(self).__name__} does not couple the samples of a batch")

    def partial_gradient_sums(self, output_gradient: np.ndarray) -> Any:
        """For couples_batch: what the backward of this part contributes (its grads are this part's)."""
        raise NotImplementedError(f"{type(self).__name__} does not couple the samples of a batch")

    def whole_gradient_sums(self, parts: list) -> Any:
        """For couples_batch: the whole batch's from the parts' partial_gradient_sums, in order."""
        raise NotImplementedError(f"{type(self).__name__} does not couple the samples of a batch")

    def backward_with(self, output_gradient: np.ndarray, whole: Any) -> np.ndarray | None:
        """For couples_batch: dLoss/dx of this part of a batch, given whole_gradient_sums."""
        raise NotImplementedError(f"{type(self).__name__} does not couple the samples of a batch")

    def backward_rank1(
        self, output_gradient: np.ndarray
    ) -> tuple[np.ndarray | None, dict[str, tuple[np.ndarray, np.ndarray]]]:
        """backward for a batch of one sample, for cnn.fast: (dx, factors), where factors[name] = (g (1, P), x (1, Q))
        gives a gradient that is an outer product g.T @ x instead of writing it to grads[name]. Default: backward,
        nothing factored."""
        return self.backward(output_gradient), {}

    def config(self) -> dict[str, Any]:
        """JSON-able constructor arguments plus the class name under "type"."""
        return {"type": type(self).__name__}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.config().items() if k != "type")
        return f"{type(self).__name__}({args})"


class Dense(Layer):
    """Fully connected: y = x @ W.T + b.

    x (N, input_size) -> y (N, output_size); weights W (output_size, input_size), like the notebook's W in
    y = W x; biases b (output_size,).
    backward(dy): dW = dy.T @ x, db = sum of dy over the batch, dx = dy @ W.
    """

    caches = ("x",)

    def __init__(
        self, input_size: int, output_size: int, init: str = "normal", rng: Seed = 0, dtype: Any = "float64"
    ) -> None:
        super().__init__()
        self.input_size, self.output_size = int(input_size), int(output_size)
        if self.input_size < 1 or self.output_size < 1:
            raise ArchitectureError(f"Dense needs sizes >= 1, got {self.input_size} -> {self.output_size}")
        self.input_shape, self.output_shape = (self.input_size,), (self.output_size,)
        self.initialize_on_use(init, rng, dtype)

    def initialize(self, init: str | None, rng: Seed | None, dtype: Any) -> None:
        rng = initializers.generator(init, rng)
        shape = (self.output_size, self.input_size)
        weights = initializers.weights(init, rng, shape, self.input_size, self.output_size, dtype)
        biases = initializers.biases(init, rng, (self.output_size,), self.input_size, dtype)
        self._set_params(weights=weights, biases=biases)

    def forward(self, x: np.ndarray) -> np.ndarray:
        self.x = x
        return x @ self.params["weights"].T + self.params["biases"]

    def backward(self, output_gradient: np.ndarray) -> np.ndarray | None:
        np.matmul(output_gradient.T, self.x, out=self.grads["weights"])
        np.sum(output_gradient, axis=0, out=self.grads["biases"])
        return self.input_gradient(output_gradient)

    def backward_rank1(
        self, output_gradient: np.ndarray
    ) -> tuple[np.ndarray | None, dict[str, tuple[np.ndarray, np.ndarray]]]:
        """At batch 1, dW = dy.T @ x is returned as its factors (dy, x); grads["weights"] is not written."""
        self.grads["biases"][...] = output_gradient[0]  # the sum over a batch of one
        return self.input_gradient(output_gradient), {"weights": (output_gradient, self.x)}

    def input_gradient(self, output_gradient: np.ndarray) -> np.ndarray | None:
        """dLoss/dx = dy @ W, (N, input_size); None when not needed."""
        return output_gradient @ self.params["weights"] if self.needs_input_gradient else None

    def config(self) -> dict[str, Any]:
        return {"type": "Dense", "input_size": self.input_size, "output_size": self.output_size}


class Reshape(Layer):
    """(N, *input_shape) -> (N, *output_shape); the batch dimension passes through."""

    def __init__(self, input_shape: tuple[int, ...], output_shape: tuple[int, ...]) -> None:
        super().__init__()
        self.input_shape = tuple(int(d) for d in input_shape)
        self.output_shape = tuple(int(d) for d in output_shape)
        if math.prod(self.input_shape) != math.prod(self.output_shape):
            raise ArchitectureError(
                f"cannot reshape {self.input_shape} ({math.prod(self.input_shape)} values) to "
                f"{self.output_shape} ({math.prod(self.output_shape)} values)"
            )

    def forward(self, x: np.ndarray) -> np.ndarray:
        return x.reshape((x.shape[0], *self.output_shape))

    def backward(self, output_gradient: np.ndarray) -> np.ndarray | None:
        if not self.needs_input_gradient:
            return None
        return output_gradient.reshape((output_gradient.shape[0], *self.input_shape))

    def config(self) -> dict[str, Any]:
        return {"type": "Reshape", "input_shape": list(self.input_shape), "output_shape": list(self.output_shape)}


class Flatten(Reshape):
    """(N, *input_shape) -> (N, prod(input_shape))."""

    def __init__(self, input_shape: tuple[int, ...]) -> None:
        super().__init__(input_shape, (math.prod(tuple(input_shape)),))

    def config(self) -> dict[str, Any]:
        return {"type": "Flatten", "input_shape": list(self.input_shape)}
