"""Fast paths, apart from the plain math and tested against it (tests/test_fast.py).

Each one computes what the plain code computes, up to rounding, and pays for itself in the benchmark
(`python -m benchmarks`; docs/performance.md says what each is worth):

- axpy(param, grad, a): param += a * grad in one pass through BLAS, where numpy would write a temporary
  the size of the weights and read it back.
- ger(param, g, x, a): param += a * g.T @ x for single rows g, x (a rank-1 update, BLAS ger), without
  forming the outer product.
- rank1_sgd_step: a whole training step at batch 1 with plain SGD. A Dense weight gradient at batch 1 is
  the outer product dy.T @ x, as large as the weights (3380 x 100 in the notebook's network); the plain
  step writes it, reads it back and updates the weights (three passes over that memory), this step
  updates the weights with ger directly (one pass).
"""

from typing import TYPE_CHECKING

import numpy as np
from scipy.linalg import blas

from .layers import Dense

if TYPE_CHECKING:
    from .network import Sequential
    from .optimizers import SGD
    from .training import LossGradient

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


def rank1_sgd_step(
    net: "Sequential", x: np.ndarray, y: np.ndarray, outputs: np.ndarray, loss_gradient: "LossGradient", sgd: "SGD"
) -> None:
    """training.plain_step for one sample (x (1, ...), y (1, K)) and SGD without momentum: forward, then
    backward layer by layer where each Dense layer's weights are updated with ger as soon as its input
    gradient (which needs the old weights) is computed; the other parameters by sgd.update after."""
    outputs[...] = net.forward(x)
    grad, start = loss_gradient.start(net, outputs, y, batch_rows=1)
    updated = set()
    for index in range(start, -1, -1):
        layer = net.layers[index]
        if isinstance(layer, Dense):
            np.sum(grad, axis=0, out=layer.grads["biases"])
            dx = layer.input_gradient(grad)
            sgd.update_outer(layer.params["weights"], grad, layer.x)
            updated.add(id(layer))
            grad = dx
        else:
            grad = layer.backward(grad)
    sgd.begin_step()
    for i, layer in enumerate(net.param_layers):
        for name, param in layer.params.items():
            if not (name == "weights" and id(layer) in updated):
                sgd.update((i, name), param, layer.grads[name])
