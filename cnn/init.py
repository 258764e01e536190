"""Parameter initialisation. All randomness comes from one numpy Generator, drawn in layer order.

"normal" is the notebook's ``np.random.randn``: std 1 for weights and biases alike.
"xavier"/"glorot" (normal, std sqrt(2 / (fan_in + fan_out))) and "he" (normal, std sqrt(2 / fan_in)) scale the
weights and start the biases at zero. "glorot_uniform" is Keras's default: weights uniform in +-sqrt(6 / (fan_in
+ fan_out)), biases zero. "pytorch" is torch.nn.Conv2d's and Linear's default (kaiming_uniform with a = sqrt(5)):
weights and biases uniform in +-1 / sqrt(fan_in). fan_in = inputs per output unit (C*k*k for a convolution).
"""

from typing import Any

import numpy as np

INITIALIZERS = ("normal", "xavier", "glorot", "he", "glorot_uniform", "pytorch")


def check_init(init: str) -> None:
    if init not in INITIALIZERS:
        raise ValueError(f"unknown init {init!r}; choose one of {', '.join(INITIALIZERS)}")


def generator(init: str | None, rng: int | np.random.Generator | None) -> np.random.Generator | None:
    """The Generator to draw from: `rng` itself, or a new one seeded with it; None when init is None."""
    if init is None:
        return None
    check_init(init)
    return rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)


def weights(init: str | None, rng: np.random.Generator | None, shape: tuple, fan_in: int, fan_out: int, dtype: Any):
    """Weights of `shape`. Drawn in float64 then cast, so float32 and float64 nets start alike.
    rng None gives zeros (used when the values are about to be overwritten, e.g. by load)."""
    if rng is None:
        return np.zeros(shape, dtype=dtype)
    if init in ("glorot_uniform", "pytorch"):
        bound = np.sqrt(6.0 / (fan_in + fan_out)) if init == "glorot_uniform" else 1.0 / np.sqrt(fan_in)
        return rng.uniform(-bound, bound, shape).astype(dtype, copy=False)
    if init == "normal":
        std = 1.0
    elif init in ("xavier", "glorot"):
        std = np.sqrt(2.0 / (fan_in + fan_out))
    else:
        std = np.sqrt(2.0 / fan_in)
    w = rng.standard_normal(shape)
    if std != 1.0:
        w *= std
    return w.astype(dtype, copy=False)


def biases(init: str | None, rng: np.random.Generator | None, shape: tuple, fan_in: int, dtype: Any):
    """Biases of `shape`: std-1 normal for "normal" (the notebook's), uniform in +-1/sqrt(fan_in) for
    "pytorch", zeros otherwise."""
    if rng is not None and init == "pytorch":
        bound = 1.0 / np.sqrt(fan_in)
        return rng.uniform(-bound, bound, shape).astype(dtype, copy=False)
    if rng is None or init != "normal":
        return np.zeros(shape, dtype=dtype)
    return rng.standard_normal(shape).astype(dtype, copy=False)
