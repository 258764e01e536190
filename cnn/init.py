"""Parameter initialisation. All randomness comes from the caller's numpy Generator.

"normal" is the notebook's ``np.random.randn``: std 1 for weights and biases alike.
"xavier"/"glorot" (std sqrt(2 / (fan_in + fan_out))) and "he" (std sqrt(2 / fan_in)) scale the weights
and start the biases at zero.
"""

import numpy as np

INITIALIZERS = ("normal", "xavier", "glorot", "he")


def check_init(init: str) -> None:
    if init not in INITIALIZERS:
        raise ValueError(f"unknown init {init!r}; choose one of {', '.join(INITIALIZERS)}")


def weights(init: str, rng: np.random.Generator | None, shape: tuple, fan_in: int, fan_out: int, dtype):
    """Weights of `shape`. Drawn in float64 then cast, so float32 and float64 nets start alike.

    rng=None gives zeros (used when the values are about to be overwritten, e.g. by load).
    """
    if rng is None:
        return np.zeros(shape, dtype=dtype)
    check_init(init)
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


def biases(init: str, rng: np.random.Generator | None, shape: tuple, dtype):
    """Biases of `shape`: std-1 normal for "normal" (the notebook's), zeros otherwise."""
    if rng is None or init != "normal":
        if rng is not None:
            check_init(init)
        return np.zeros(shape, dtype=dtype)
    return rng.standard_normal(shape).astype(dtype, copy=False)
