"""Data-parallel training step: a large batch split in two halves, each half's forward and backward run by
a replica of the network (the same parameter arrays, its own gradients and caches) in a thread of its own.

Why: at batch 128 about half of a step is element-wise work (sigmoids, im2col, the conv's small products)
that numpy runs on one core. numpy releases the GIL inside ufunc loops and BLAS calls, so two threads,
each on half of the batch with single-threaded BLAS (cnn.threads), keep both cores busy. Below SPLIT_FROM
the halves are too small to gain.

The halves' gradients are summed (first half + second half) into the network's grads, then the
optimizer applies the sum as usual. A split batch gives the same bits on any number of cores (one core
runs the halves one after the other); they differ in the last bits from an unsplit pass (another order of
summation), so whether a batch is split depends on its size alone.

Stochastic layers (dropout) never draw in the halves: before they run, each such layer of `net` draws the
whole batch's noise from its own generator in the calling thread and each replica gets its rows, so a split
batch gets exactly the noise an unsplit one would. A network with a layer that couples the samples of a
batch (batch normalization: `couples_batch`) cannot be split.
"""

from concurrent.futures import ThreadPoolExecutor

import numpy as np

from . import threads
from .optimizers import Optimizer
from .step import LossGradient, Network

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


class SplitStep:
    """A training step (see cnn.step.plain_step) on two replicas of `net`, one per half batch."""

    def __init__(self, net: Network) -> None:
        coupled = [type(layer).__name__ for layer in net.layers if layer.couples_batch]
        if coupled:
            raise ValueError(f"a batch cannot be split in halves for a network with {', '.join(coupled)}")
        self.net = net
        self.replicas = (net.replica(), net.replica())
        # (net's layer, first replica's, second replica's), for each layer with parameters
        self.layers = list(zip(*(r.param_layers for r in (net, *self.replicas)), strict=True))

    def __call__(
        self,
        net: Network,
        x: np.ndarray,
        y: np.ndarray,
        outputs: np.ndarray,
        loss_gradient: LossGradient,
        optimizer: Optimizer,
    ) -> None:
        """Like plain_step: outputs of x (N, ...) into `outputs`, the whole batch's gradient, one update."""
        n, half = len(x), len(x) // 2

        def forward_backward(replica: Network, part: slice) -> None:
            outputs[part] = replica.forward(x[part])
            loss_gradient.backward(replica, outputs[part], y[part], n)

        first, second = (self.replicas[0], slice(0, half)), (self.replicas[1], slice(half, n))
        self.share_noise(n, half, x.dtype)
        pool = _second_thread()
        if pool is None:
            forward_backward(*first)
            forward_backward(*second)
        else:
            pending = pool.submit(forward_backward, *second)
            forward_backward(*first)
            pending.result()
        for layer, a, b in self.layers:
            for name in layer.params:
                np.add(a.grads[name], b.grads[name], out=layer.grads[name])
        optimizer.step(net.param_layers)

    def share_noise(self, n: int, half: int, dtype: np.dtype) -> None:
        """The replicas follow net's training flags; each layer of net that draws noise (Layer.draw_noise) draws
        that of all n rows (here, in this thread), the first replica gets rows [0, half), the second the rest."""
        for layer, a, b in zip(self.net.layers, *(r.layers for r in self.replicas), strict=True):
            a.training = b.training = layer.training
            noise = layer.draw_noise(n, dtype)
            if noise is not None:
                a.use_noise(noise[:half])
                b.use_noise(noise[half:])
