"""In-place parameter updates through BLAS (scipy's bindings), in one pass over the parameter.

numpy's `param += a * grad` writes a temporary the size of the parameter and reads it back; `axpy` does
not. `ger` applies a gradient given as an outer product g.T @ x (Dense at batch 1) without forming it.
"""

import numpy as np
from scipy.linalg import blas

_AXPY = {np.dtype(np.float64): blas.daxpy, np.dtype(np.float32): blas.saxpy}
_GER = {np.dtype(np.float64): blas.dger, np.dtype(np.float32): blas.sger}


def _blas_ready(*arrays: np.ndarray) -> bool:
    """True when BLAS can update arrays[0] in place: one float dtype, all C-contiguous."""
    dtype = arrays[0].dtype
    return dtype in _AXPY and all(a.dtype == dtype and a.flags.c_contiguous for a in arrays)


def axpy(param: np.ndarray, grad: np.ndarray, a: float) -> None:
    """param += a * grad, in place."""
    if _blas_ready(param, grad):
        _AXPY[param.dtype](grad.reshape(-1), param.reshape(-1), a=a)
    else:
        param += a * grad


def ger(param: np.ndarray, g: np.ndarray, x: np.ndarray, a: float) -> None:
    """param += a * g.T @ x, in place; param (P, Q), g (1, P), x (1, Q)."""
    if len(g) == 1 and _blas_ready(param, g, x):
        # param.T is the Fortran-ordered (Q, P) matrix BLAS updates in place: param.T += a * x[0] g[0]^T
        _GER[param.dtype](a, x[0], g[0], a=param.T, overwrite_a=True)
    else:
        param += a * (g.T @ x)
