"""Learning-rate schedules: lr = schedule(step), step = 0-based global step (epochs x batches so far).

The training loop sets optimizer.learning_rate = schedule(step) before each step. A schedule is a frozen
function object of the step alone, so a run resumed at step s gets the rates it would have had.
T = total steps of the run (epochs x steps_per_epoch), E = steps_per_epoch, e = step // E (the epoch, 0-based).

    ConstantLR(lr)                          lr
    StepDecayLR(lr, E, gamma, step_size)    lr * gamma ** (e // step_size)
        = torch StepLR(step_size, gamma) stepped once per epoch (PyTorch's MNIST example: gamma 0.7, size 1)
    CosineLR(lr, T, min_lr)                 min_lr + (lr - min_lr) * (1 + cos(pi * min(step, T) / T)) / 2
        = torch CosineAnnealingLR(T_max=T, eta_min=min_lr) stepped once per batch; the floor is reached at
          step T, just after the run; past T it stays there (torch's would climb back up)
    OneCycleLR(max_lr, T, pct_start, div_factor, final_div_factor, warmup)
        lr0 = max_lr / div_factor, lr_end = lr0 / final_div_factor, P = pct_start * T - 1 (the peak step)
        step <= P:   lr0 + (max_lr - lr0) * w(step / P)             warm-up, w(p) = p (linear, the default)
                                                                      or (1 - cos(pi p)) / 2 (warmup="cos")
        step > P:    lr_end + (max_lr - lr_end) * (1 + cos(pi * q)) / 2,  q = min(1, (step - P) / (T - 1 - P))
        = torch OneCycleLR(max_lr, total_steps=T) with its defaults (pct_start 0.3, div_factor 25,
          final_div_factor 1e4, cosine annealing) when warmup="cos". Where this differs: the warm-up is
          linear by default (torch's default anneals both phases by cosine; its anneal_strategy="linear" makes
          both linear); no momentum cycling (torch's cycle_momentum); past T it stays at lr_end (torch raises).
"""

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .specs import no_unknown_keys, number

Schedule = Callable[[int], float]


def _check(ok: bool, message: str) -> None:
    if not ok:
        raise ValueError(message)


@dataclass(frozen=True)
class ConstantLR:
    """lr at every step."""

    lr: float

    def __post_init__(self) -> None:
        _check(self.lr > 0, f"lr must be > 0, got {self.lr}")

    def __call__(self, step: int) -> float:
        return float(self.lr)


@dataclass(frozen=True)
class StepDecayLR:
    """lr * gamma ** (epoch // step_size), epoch = step // steps_per_epoch."""

    lr: float
    steps_per_epoch: int
    gamma: float = 0.1
    step_size: int = 1

    def __post_init__(self) -> None:
        _check(self.lr > 0, f"lr must be > 0, got {self.lr}")
        _check(self.steps_per_epoch >= 1, f"steps_per_epoch must be >= 1, got {self.steps_per_epoch}")
        _check(0 < self.gamma <= 1, f"gamma must be in (0, 1], got {self.gamma}")
        _check(self.step_size >= 1, f"step_size must be a whole number of epochs >= 1, got {self.step_size}")

    def __call__(self, step: int) -> float:
        epoch = step // self.steps_per_epoch
        return float(self.lr * self.gamma ** (epoch // self.step_size))


@dataclass(frozen=True)
class CosineLR:
    """Cosine annealing from lr at step 0 to min_lr at step total_steps (one half cosine over the run)."""

    lr: float
    total_steps: int
    min_lr: float = 0.0

    def __post_init__(self) -> None:
        _check(self.lr > 0, f"lr must be > 0, got {self.lr}")
        _check(self.total_steps >= 1, f"total_steps must be >= 1, got {self.total_steps}")
        _check(0 <= self.min_lr <= self.lr, f"min_lr must be in [0, lr={self.lr}], got {self.min_lr}")

    def __call__(self, step: int) -> float:
        t = min(step, self.total_steps)
        return float(self.min_lr + (self.lr - self.min_lr) * (1 + math.cos(math.pi * t / self.total_steps)) / 2)


@dataclass(frozen=True)
class OneCycleLR:
    """Warm-up from max_lr / div_factor to max_lr over the first pct_start of the run, then cosine annealing
    to max_lr / div_factor / final_div_factor at the last step (Smith & Topin 2017, as torch's OneCycleLR)."""

    max_lr: float
    total_steps: int
    pct_start: float = 0.3
    div_factor: float = 25.0
    final_div_factor: float = 1e4
    warmup: str = "linear"

    def __post_init__(self) -> None:
        _check(self.max_lr > 0, f"max_lr must be > 0, got {self.max_lr}")
        _check(self.total_steps >= 1, f"total_steps must be >= 1, got {self.total_steps}")
        _check(0 < self.pct_start < 1, f"pct_start must be in (0, 1), got {self.pct_start}")
        _check(self.div_factor >= 1, f"div_factor must be >= 1, got {self.div_factor}")
        _check(self.final_div_factor >= 1, f"final_div_factor must be >= 1, got {self.final_div_factor}")
        _check(self.warmup in ("linear", "cos"), f"warmup must be linear or cos, got {self.warmup!r}")

    def __call__(self, step: int) -> float:
        initial = self.max_lr / self.div_factor
        final = initial / self.final_div_factor
        peak = self.pct_start * self.total_steps - 1  # a float, as in torch
        last = self.total_steps - 1
        if step <= peak:
            p = step / peak if peak > 0 else 1.0
            w = p if self.warmup == "linear" else (1 - math.cos(math.pi * p)) / 2
            return float(initial + (self.max_lr - initial) * w)
        q = min(1.0, (step - peak) / (last - peak)) if last > peak else 1.0
        return float(final + (self.max_lr - final) * (1 + math.cos(math.pi * q)) / 2)


# type -> {spec key: default}; the ranges are checked by the classes.
_SPECS: dict[str, dict[str, Any]] = {
    "constant": {},
    "step": {"gamma": 0.1, "step_size": 1},
    "cosine": {"min_lr": 0.0},
    "onecycle": {"max_lr": None, "pct_start": 0.3, "div_factor": 25.0, "final_div_factor": 1e4, "warmup": "linear"},
}


def make_schedule(spec: dict[str, Any] | None, base_lr: float, epochs: int, steps_per_epoch: int) -> Schedule | None:
    """The schedule a params-style spec describes, or None for no spec (the optimizer's rate stays as is).

    spec: {type: constant} | {type: step, gamma: 0.7, step_size: 1} | {type: cosine, min_lr: 0}
          | {type: onecycle, max_lr: 0.01, pct_start: 0.3, div_factor: 25, final_div_factor: 1e4, warmup: linear}
    Omitted keys take the defaults shown (onecycle's max_lr defaults to base_lr). base_lr is the optimizer's
    learning rate (the start of step and cosine); total steps T = epochs x steps_per_epoch (at least 1).
    Raises ValueError with one line naming the bad key or value and what is allowed.
    """
    if spec is None:
        return None
    if not isinstance(spec, dict):
        raise ValueError(f"schedule must be a mapping with a type, e.g. {{type: cosine}}, got {spec!r}")
    kind = spec.get("type")
    if not isinstance(kind, str) or kind not in _SPECS:
        raise ValueError(f"schedule.type must be one of {', '.join(_SPECS)}, got {kind!r}")
    allowed = _SPECS[kind]
    no_unknown_keys(f"schedule ({kind})", spec, tuple(allowed), ignore=("type",))
    values = {key: spec.get(key, default) for key, default in allowed.items()}
    for key, value in values.items():
        if key != "warmup" and not (key == "max_lr" and value is None):
            number(f"schedule.{key}", value)
    if kind == "step" and values["step_size"] != int(values["step_size"]):
        raise ValueError(f"schedule.step_size must be a whole number of epochs, got {values['step_size']!r}")
    total = max(1, epochs * steps_per_epoch)
    try:
        if kind == "constant":
            return ConstantLR(base_lr)
        if kind == "step":
            return StepDecayLR(base_lr, steps_per_epoch, float(values["gamma"]), int(values["step_size"]))
        if kind == "cosine":
            return CosineLR(base_lr, total, float(values["min_lr"]))
        max_lr = base_lr if values["max_lr"] is None else float(values["max_lr"])
        rest = {k: values[k] for k in ("pct_start", "div_factor", "final_div_factor", "warmup")}
        return OneCycleLR(max_lr, total, **rest)
    except ValueError as error:
        raise ValueError(f"schedule ({kind}): {error}") from None
