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
    backward layer by layer, each layer's parameters updated as soon as its backward is done (the layers
    below never read them). A Dense layer's weights get the rank-1 update with ger once its input gradient
    (which needs the old weights) is computed, its biases the row dy[0] (the sum over a batch of one): its
    `grads` are not written. Other layers fill their grads and sgd.update applies them."""
    outputs[...] = net.forward(x)
    grad, start = loss_gradient.start(net, outputs, y, batch_rows=1)
    sgd.begin_step()
    for index in range(start, -1, -1):
        layer = net.layers[index]
        if isinstance(layer, Dense):
            dx = layer.input_gradient(grad)
            sgd.update_outer(layer.params["weights"], grad, layer.x)
            sgd.update((index, "biases"), layer.params["biases"], grad[0])
            grad = dx
        else:
            grad = layer.backward(grad)
            for name, param in layer.params.items():
                sgd.update((index, name), param, layer.grads[name])
