"""Data-parallel training steps: a large batch split in two halves, each half's forward and backward run by
a replica of the network (the same parameter arrays, its own gradients and caches) in a thread of its own.

Why: at batch 128 about half of a step is element-wise work (sigmoids, im2col, the conv's small products)
that numpy runs on one core, and OpenBLAS's two threads run these small products at well under twice the
speed of one. numpy releases the GIL inside ufunc loops and BLAS calls, so two threads, each on half of the
batch with single-threaded BLAS, keep both cores busy for the whole step. At batch 32 the halves are too
small to gain (the Python overhead of a step is paid twice), hence SPLIT_FROM.

The halves' gradients are summed (first half + second half), then the optimizer applies the sum as usual.
A split batch gives the same bits on any number of cores (one core runs the halves one after the other);
they differ in the last bits from an unsplit pass (another order of summation), so whether a batch is
split depends on its size alone.
"""

from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

import numpy as np

from . import threads

if TYPE_CHECKING:
    from .network import Sequential

SPLIT_FROM = 64  # batches of at least this many samples are split in two halves

_pool: ThreadPoolExecutor | None = None


def _second_thread() -> ThreadPoolExecutor | None:
    """The worker for second halves, or None when cnn may use one thread only (cnn.threads)."""
    global _pool
    if threads.num_threads() < 2:
        return None
    if _pool is None:
        _pool = ThreadPoolExecutor(1, thread_name_prefix="cnn")
    return _pool


class DataParallel:
    """Forward and backward of a batch as two halves on two replicas of `net`; their grads summed into net's."""

    def __init__(self, net: "Sequential") -> None:
        self.net = net
        self.replicas = (net.replica(), net.replica())
        # (net's layer, first replica's, second replica's), for each layer with parameters
        self._layers = list(zip(*(r.param_layers for r in (net, *self.replicas)), strict=True))

    def forward_backward(self, x: np.ndarray, y: np.ndarray, outputs: np.ndarray, loss: Any, fused: Any) -> None:
        """What net._forward_backward(x, y, outputs, loss, fused, len(x)) does, on two threads."""
        n, half = len(x), len(x) // 2

        def run(i: int, part: slice) -> None:
            self.replicas[i]._forward_backward(x[part], y[part], outputs[part], loss, fused, n)
            for layers in self._layers:
                for name in layers[i + 1].params:
                    layers[i + 1].grads[name]  # computes a pending product (Dense's g.T @ x) here, in this thread

        first, second = (0, slice(0, half)), (1, slice(half, n))
        pool = _second_thread()
        if pool is None:
            run(*first)
            run(*second)
        else:
            pending = pool.submit(run, *second)
            run(*first)
            pending.result()
        for layer, a, b in self._layers:
            layer.grads.discard_products()
            for name in layer.params:
                np.add(a.grads[name], b.grads[name], out=layer.grads[name])
