"""The batch-1 fast path, apart from the plain step and tested against it (tests/test_fast.py).

rank1_sgd_step is a whole training step at batch 1 with plain SGD. A Dense weight gradient at batch 1 is
the outer product dy.T @ x, as large as the weights (3380 x 100 in the notebook's network): the plain step
writes it, reads it back and updates the weights (three passes over that memory); this step takes it as its
factors (Layer.backward_rank1) and the optimizer applies them (Optimizer.update_outer; SGD: a BLAS rank-1
update, cnn.blas.ger, one pass). docs/performance.md lists every fast path and what it is worth.
"""

import numpy as np

from .optimizers import Optimizer
from .step import LossGradient, Network


def rank1_sgd_step(
    net: Network, x: np.ndarray, y: np.ndarray, outputs: np.ndarray, loss_gradient: LossGradient, sgd: Optimizer
) -> None:
    """step.plain_step for one sample (x (1, ...), y (1, K)): forward, then backward layer by layer, each
    layer's parameters updated as soon as its backward is done (the layers below never read them). A
    gradient a layer gives as factors (Dense's weights) is applied by update_outer and not written to the
    layer's grads; every other gradient is in grads as after plain_step. State keys are Optimizer.step's."""
    outputs[...] = net.forward(x)
    grad, start = loss_gradient.start(net, outputs, y, batch_rows=1)
    position = {id(layer): i for i, layer in enumerate(net.param_layers)}
    sgd.begin_step()
    for layer in net.layers[start::-1]:
        grad, factors = layer.backward_rank1(grad)
        for name, param in layer.params.items():
            key = (position[id(layer)], name)
            if name in factors:
                sgd.update_outer(key, param, *factors[name])
            else:
                sgd.update(key, param, layer.grads[name])
