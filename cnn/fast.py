"""The batch-1 fast path, apart from the plain step and tested against it (tests/test_fast.py).

rank1_sgd_step is a whole training step at batch 1 with plain SGD. A Dense weight gradient at batch 1 is
the outer product dy.T @ x, as large as the weights (3380 x 100 in the notebook's network): the plain step
writes it, reads it back and updates the weights (three passes over that memory); this step updates the
weights with a BLAS rank-1 update (cnn.blas.ger) directly, one pass. docs/performance.md lists every fast
path and what it is worth.
"""

import numpy as np

from .layers import Dense
from .optimizers import SGD
from .step import LossGradient, Network


def rank1_sgd_step(
    net: Network, x: np.ndarray, y: np.ndarray, outputs: np.ndarray, loss_gradient: LossGradient, sgd: SGD
) -> None:
    """step.plain_step for one sample (x (1, ...), y (1, K)) and SGD without momentum: forward, then
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
