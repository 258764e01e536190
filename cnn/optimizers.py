"""Optimizers own the update rule: step(layers) applies each layer's grads to its params, in place.

Every optimizer takes `weight_decay` (decoupled, as AdamW / torch.optim.AdamW): before its own update each
parameter shrinks by p *= 1 - lr * weight_decay, apart from the gradient (no L2 term in the loss). The state
of a run (moments, velocities, step count, rate) is exported by state_dict() as a flat dict of numbers and
numpy arrays and restored by load_state_dict(), so a checkpointed run continues bit for bit.
"""

import math
from collections.abc import Iterable
from typing import Any, ClassVar

import numpy as np

from . import blas
from .layers import Layer

Key = tuple[int, str]  # (position among the layers with parameters, parameter name), as step() numbers them


class Optimizer:
    """Base: step(layers) calls update(key, param, grad) for every parameter; key names it for state.

    A subclass names its exported per-parameter arrays in SLOTS and implements apply(param, grad, state), state
    being the parameter's arrays (SLOTS, then SCRATCH: space reused by every update and never exported).

    Every rule here is element-wise: an element of a parameter moves by its own gradient and state alone. So
    update() may apply a rule to a part of a parameter's elements (cnn.parallel updates the two halves of a
    large parameter on two threads) with the bits of a whole update. A rule that is not (one that takes a norm
    of the whole parameter, say) sets ELEMENTWISE = False and is always applied whole.
    """

    ELEMENTWISE: ClassVar[bool] = True

    SLOTS: ClassVar[tuple[str, ...]] = ()
    SCRATCH: ClassVar[int] = 0

    def __init__(self, learning_rate: float, weight_decay: float = 0.0) -> None:
        if not learning_rate > 0:
            raise ValueError(f"learning_rate must be > 0, got {learning_rate}")
        if not weight_decay >= 0:
            raise ValueError(f"weight_decay must be >= 0, got {weight_decay}")
        self.learning_rate = float(learning_rate)
        self.weight_decay = float(weight_decay)
        self.t = 0  # steps begun
        self._state: dict[Key, tuple[np.ndarray, ...]] = {}

    def step(self, layers: Iterable[Layer]) -> None:
        self.begin_step()
        for i, layer in enumerate(layers):
            for name, param in layer.params.items():
                self.update((i, name), param, layer.grads[name])

    def begin_step(self) -> None:
        """Called once per step, before the updates (counts the steps, for Adam's bias correction)."""
        self.t += 1

    def update(self, key: Key, param: np.ndarray, grad: np.ndarray, part: slice | None = None) -> None:
        """Decay (if any), then this optimizer's rule, in place; on the elements `part` of the flattened param
        only (its state made whole first: `slots`), or on all of them (None)."""
        state = self.slots(key, param)
        if part is not None:
            param, grad = flat(param)[part], flat(grad)[part]
            state = tuple(flat(array)[part] for array in state)
        if self.weight_decay:
            param *= 1 - self.learning_rate * self.weight_decay
        self.apply(param, grad, state)

    @property
    def factored_update(self) -> bool:
        """Whether update_outer applies a gradient's factors without forming the gradient (then the batch-1 step
        cnn.fast.rank1_sgd_step is worth taking): False here, True for SGD without momentum or decay."""
        return False

    def update_outer(self, key: Key, param: np.ndarray, g: np.ndarray, x: np.ndarray) -> None:
        """update() for a gradient given by its factors, g.T @ x with g (1, P), x (1, Q) (cnn.fast); this
        forms the gradient, an optimizer whose factored_update is True applies the factors instead."""
        self.update(key, param, g.T @ x)

    def apply(self, param: np.ndarray, grad: np.ndarray, state: tuple[np.ndarray, ...]) -> None:
        raise NotImplementedError

    def slots(self, key: Key, param: np.ndarray) -> tuple[np.ndarray, ...]:
        """This parameter's state arrays (SLOTS then SCRATCH), zeros on its first update."""
        state = self._state.get(key)
        if state is None:
            state = self._state[key] = tuple(np.zeros_like(param) for _ in range(len(self.SLOTS) + self.SCRATCH))
        return state

    def state_dict(self) -> dict[str, Any]:
        """{"learning_rate": float, "t": int, "state/<layer>/<param>/<slot>": array copy, ...}."""
        d: dict[str, Any] = {"learning_rate": self.learning_rate, "t": self.t}
        for (i, name), arrays in sorted(self._state.items()):
            for slot, array in zip(self.SLOTS, arrays, strict=False):
                d[f"state/{i}/{name}/{slot}"] = array.copy()
        return d

    def load_state_dict(self, d: dict[str, Any]) -> None:
        """Restore what state_dict() exported (copies; scratch space is made afresh)."""
        slots: dict[Key, dict[str, np.ndarray]] = {}
        for k, value in d.items():
            if not k.startswith("state/"):
                continue
            _, i, name, slot = k.split("/")
            if slot not in self.SLOTS:
                raise ValueError(f"{type(self).__name__} has no state {slot!r} ({k!r}): another optimizer's?")
            slots.setdefault((int(i), name), {})[slot] = np.array(value)
        state = {}
        for key, arrays in slots.items():
            if set(arrays) != set(self.SLOTS):
                raise ValueError(f"optimizer state for {key} has {sorted(arrays)}, expected {list(self.SLOTS)}")
            first = arrays[self.SLOTS[0]]
            state[key] = (*(arrays[s] for s in self.SLOTS), *(np.zeros_like(first) for _ in range(self.SCRATCH)))
        self.learning_rate, self.t, self._state = float(d["learning_rate"]), int(d["t"]), state


class SGD(Optimizer):
    """Stochastic gradient descent as torch.optim.SGD (dampening 0), decay decoupled:

    plain      p -= lr * g                          (the notebook's rule)
    momentum   b = m b + g  (b = g at step 1);  p -= lr * b
    nesterov   b = m b + g;                     p -= lr * (g + m b)
    """

    def __init__(
        self, learning_rate: float, momentum: float = 0.0, nesterov: bool = False, weight_decay: float = 0.0
    ) -> None:
        super().__init__(learning_rate, weight_decay)
        if not 0 <= momentum < 1:
            raise ValueError(f"momentum must be in [0, 1), got {momentum}")
        if nesterov and momentum == 0:
            raise ValueError("nesterov needs momentum > 0")
        self.momentum, self.nesterov = float(momentum), bool(nesterov)
        if self.momentum:
            self.SLOTS, self.SCRATCH = ("momentum_buffer",), int(self.nesterov)

    def apply(self, param: np.ndarray, grad: np.ndarray, state: tuple[np.ndarray, ...]) -> None:
        if self.momentum == 0.0:
            blas.axpy(param, grad, -self.learning_rate)  # p -= lr * g, in one pass
            return
        buf, *scratch = state
        buf *= self.momentum  # zeros at step 1, so b = g
        buf += grad
        if self.nesterov:
            (d,) = scratch
            np.multiply(buf, self.momentum, out=d)
            d += grad
            blas.axpy(param, d, -self.learning_rate)
        else:
            blas.axpy(param, buf, -self.learning_rate)

    @property
    def factored_update(self) -> bool:
        """Plain SGD (no momentum, no weight decay): p -= lr * g.T @ x is one BLAS rank-1 update (cnn.blas.ger)."""
        return self.momentum == 0.0 and self.weight_decay == 0.0

    def update_outer(self, key: Key, param: np.ndarray, g: np.ndarray, x: np.ndarray) -> None:
        if self.factored_update:  # p -= lr * g.T @ x without forming the (P, Q) gradient
            blas.ger(param, g, x, -self.learning_rate)
        else:
            super().update_outer(key, param, g, x)


class Adam(Optimizer):
    """Adam (Kingma & Ba 2015) with bias-corrected moments; with weight_decay it is AdamW (Loshchilov & Hutter 2019):
    p *= 1 - lr wd;  m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g**2;  p -= lr * m_hat / (sqrt(v_hat) + eps),
    m_hat = m / (1 - b1**t), v_hat = v / (1 - b2**t); computed in the equivalent form
    p -= lr_t * m / (sqrt(v) + eps * sqrt(1 - b2**t)) with lr_t = lr * sqrt(1 - b2**t) / (1 - b1**t).

    Every pass runs in place in the parameter's dtype: the state of a parameter is m, v and two scratch
    arrays of its shape, allocated on its first update and reused by every later one.
    """

    SLOTS = ("exp_avg", "exp_avg_sq")
    SCRATCH = 2

    def __init__(
        self,
        learning_rate: float = 0.001,
        beta1: float = 0.9,
        beta2: float = 0.999,
        epsilon: float = 1e-8,
        weight_decay: float = 0.0,
    ) -> None:
        super().__init__(learning_rate, weight_decay)
        if not (0 <= beta1 < 1 and 0 <= beta2 < 1 and epsilon > 0):
            raise ValueError(f"need 0 <= beta1, beta2 < 1 and epsilon > 0, got {beta1}, {beta2}, {epsilon}")
        self.beta1, self.beta2, self.epsilon = float(beta1), float(beta2), float(epsilon)

    def apply(self, param: np.ndarray, grad: np.ndarray, state: tuple[np.ndarray, ...]) -> None:
        m, v, a, b = state
        m *= self.beta1
        m += np.multiply(grad, 1 - self.beta1, out=a)
        v *= self.beta2
        np.square(grad, out=a)
        v += np.multiply(a, 1 - self.beta2, out=a)
        correction = math.sqrt(1 - self.beta2**self.t)
        step = self.learning_rate * correction / (1 - self.beta1**self.t)
        denominator = np.sqrt(v, out=a)
        denominator += self.epsilon * correction
        param -= np.divide(np.multiply(m, step, out=b), denominator, out=b)


class Adadelta(Optimizer):
    """Adadelta (Zeiler 2012) as torch.optim.Adadelta, decay decoupled:

        s = rho s + (1 - rho) g**2                       (running mean of squared gradients)
        d = sqrt(u + eps) / sqrt(s + eps) * g            (the step, in the units of p)
        u = rho u + (1 - rho) d**2                       (running mean of squared steps)
        p -= lr * d

    Defaults lr 1.0, rho 0.9, eps 1e-6 (torch's). In place: s, u and two scratch arrays per parameter.
    """

    SLOTS = ("square_avg", "acc_delta")
    SCRATCH = 2

    def __init__(
        self, learning_rate: float = 1.0, rho: float = 0.9, epsilon: float = 1e-6, weight_decay: float = 0.0
    ) -> None:
        super().__init__(learning_rate, weight_decay)
        if not (0 <= rho <= 1 and epsilon > 0):
            raise ValueError(f"need 0 <= rho <= 1 and epsilon > 0, got {rho}, {epsilon}")
        self.rho, self.epsilon = float(rho), float(epsilon)

    def apply(self, param: np.ndarray, grad: np.ndarray, state: tuple[np.ndarray, ...]) -> None:
        s, u, a, d = state
        s *= self.rho
        np.square(grad, out=a)
        s += np.multiply(a, 1 - self.rho, out=a)
        np.add(u, self.epsilon, out=d)
        np.sqrt(d, out=d)
        np.add(s, self.epsilon, out=a)
        np.sqrt(a, out=a)
        d /= a
        d *= grad
        u *= self.rho
        np.square(d, out=a)
        u += np.multiply(a, 1 - self.rho, out=a)
        blas.axpy(param, d, -self.learning_rate)


def flat(array: np.ndarray) -> np.ndarray:
    """The elements of a C-contiguous array as a 1-d view (an update of the view updates the array)."""
    if not array.flags.c_contiguous:
        raise ValueError(f"an optimizer updates C-contiguous arrays in parts, got one of strides {array.strides}")
    return array.reshape(-1)


OPTIMIZERS: dict[str, type[Optimizer]] = {"sgd": SGD, "adam": Adam, "adadelta": Adadelta}
