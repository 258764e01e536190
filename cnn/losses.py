"""Losses as value + gradient pairs. y_true and y_pred have the same shape, (N, K).

Probabilities are clipped to [eps, 1 - eps] (eps = the dtype's machine epsilon) before any log or
division, so outputs of exactly 0 or 1 (float32 sigmoids saturate above x ~ 17) give finite values.
"""

import numpy as np


def _clip(p: np.ndarray) -> np.ndarray:
    eps = np.finfo(p.dtype).eps if np.issubdtype(p.dtype, np.floating) else np.finfo(np.float64).eps
    return np.clip(p, eps, 1 - eps)


class Loss:
    name = ""

    def value(self, y_true: np.ndarray, y_pred: np.ndarray) -> float:
        raise NotImplementedError

    def gradient(self, y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
        raise NotImplementedError


class BinaryCrossEntropy(Loss):
    """-mean(y log p + (1 - y) log(1 - p)) over all elements (the notebook's)."""

    name = "binary_cross_entropy"

    def value(self, y_true: np.ndarray, y_pred: np.ndarray) -> float:
        p = _clip(y_pred)
        return float(-np.mean(y_true * np.log(p) + (1 - y_true) * np.log1p(-p)))

    def gradient(self, y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
        p = _clip(y_pred)
        return ((1 - y_true) / (1 - p) - y_true / p) / y_true.size


class MeanSquaredError(Loss):
    """mean((p - y)**2) over all elements."""

    name = "mse"

    def value(self, y_true: np.ndarray, y_pred: np.ndarray) -> float:
        return float(np.mean(np.square(y_pred - y_true)))

    def gradient(self, y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
        return (y_pred - y_true) * (2 / y_true.size)


class CategoricalCrossEntropy(Loss):
    """-sum_k y_k log p_k, averaged over the N samples (not over the K classes).

    The usual definition, so its value is comparable with other libraries' (ln K for a uniform guess).
    """

    name = "categorical_cross_entropy"

    def value(self, y_true: np.ndarray, y_pred: np.ndarray) -> float:
        return float(-np.sum(y_true * np.log(_clip(y_pred))) / y_true.shape[0])

    def gradient(self, y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
        return -y_true / _clip(y_pred) / y_true.shape[0]


LOSSES: dict[str, type[Loss]] = {
    cls.name: cls for cls in (BinaryCrossEntropy, MeanSquaredError, CategoricalCrossEntropy)
}
