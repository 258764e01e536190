"""Data-parallel training step: a large batch split in two halves, each half's forward and backward run by
a replica of the network (the same parameter arrays, its own gradients and caches) in a thread of its own.

Why: at batch 128 about half of a step is element-wise work (sigmoids, im2col, the conv's small products)
that numpy runs on one core. numpy releases the GIL inside ufunc loops and BLAS calls, so two threads,
each on half of the batch with single-threaded BLAS (cnn.threads), keep both cores busy. Below SPLIT_FROM
the halves are too small to gain.

The halves' gradients are summed (first half + second half) into the network's grads, then the
optimizer applies the sum. With a parameter of SPLIT_UPDATE_FROM elements or more (a wide dense layer), both
are done in two parts of its elements, one per thread: every rule is element-wise (Optimizer.ELEMENTWISE), so
the parts give the bits of one whole update, which otherwise ran on one core while the other idled.

A split batch gives the same bits on any number of cores (one core runs the halves one after the other); they
differ in the last bits from an unsplit pass (another order of summation), so whether a batch is split depends
on its size alone.

Stochastic layers (dropout) never draw in the halves: before they run, each such layer of `net` draws the
whole batch's noise from its own generator in the calling thread and each replica gets its rows, so a split
batch gets exactly the noise an unsplit one would.

A layer that couples the samples of a batch (batch normalization: `couples_batch`) gets the whole batch's
statistics (synchronized batch norm): the halves run in lockstep, each paused at such a layer with its part's
statistics (forward) or gradient sums (backward); the calling thread combines them, first half then second, with
the layer's own rule (Layer's batch-coupling protocol), and both halves go on with the whole batch's. Between two
such layers each half runs alone; a network without one runs each half's forward and backward in one go.
"""

from collections.abc import Callable, Generator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from . import threads
from .layers import Layer
from .optimizers import Key, Optimizer, flat
from .step import LossGradient, Network

SPLIT_FROM = 64  # batches of at least this many samples are split in two halves
SPLIT_UPDATE_FROM = 1 << 16  # parameters of at least this many elements are summed and updated in two parts
CUT_MULTIPLE = 1 << 12  # where such a parameter is cut: see element_parts

_pool: ThreadPoolExecutor | None = None


def _second_thread() -> ThreadPoolExecutor | None:
    """The worker for second halves, or None when cnn may use one thread only (cnn.threads)."""
    global _pool
    if threads.num_threads() < 2:
        return None
    if _pool is None:
        _pool = ThreadPoolExecutor(1, thread_name_prefix="cnn")
    return _pool


# a half's pass: it yields (the whole batch's rule, its part) at each coupling layer, is sent the rule's result
HalfPass = Generator[tuple[Callable[[list], Any], Any], Any, None]


class SplitStep:
    """A training step (see cnn.step.plain_step) on two replicas of `net`, one per half batch."""

    def __init__(self, net: Network) -> None:
        self.net = net
        self.replicas = (net.replica(), net.replica())
        # per parameter: its optimizer key, its name, net's layer and the two replicas' (whose grads are summed), and
        # its elements in two parts (the second None for a small one)
        self.parameters: list[tuple[Key, str, tuple[Layer, Layer, Layer], tuple[slice, slice | None]]] = [
            ((i, name), name, layers, element_parts(param.size))
            for i, layers in enumerate(zip(*(r.param_layers for r in (net, *self.replicas)), strict=True))
            for name, param in layers[0].params.items()
        ]
        self.update_in_parts = any(parts[1] is not None for *_, parts in self.parameters)

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
        self.share_noise(n, half, x.dtype)
        halves = [
            self.half_pass(replica, x[rows], y[rows], outputs, rows, loss_gradient, n)
            for replica, rows in zip(self.replicas, (slice(0, half), slice(half, n)), strict=True)
        ]
        whole = None
        while (paused := _resume_both(halves, whole)) is not None:
            (combine, first), (_, second) = paused
            whole = combine([first, second])
        pool = _second_thread()
        if pool is None or not optimizer.ELEMENTWISE or not self.update_in_parts:
            for part in (0, 1):
                self.sum_gradients(part)
            optimizer.step(net.param_layers)
            return
        optimizer.begin_step()
        for key, name, (layer, _, _), _ in self.parameters:
            optimizer.slots(key, layer.params[name])  # made here: the two threads below only use them
        pending = pool.submit(self.sum_and_update, optimizer, 1)
        try:
            self.sum_and_update(optimizer, 0)
        finally:
            pending.result()

    def sum_gradients(self, part: int) -> None:
        """net's grads = first half's + second half's, on part 0 or 1 of each parameter's elements."""
        for _, name, (layer, a, b), parts in self.parameters:
            if (elements := parts[part]) is not None:
                grads = (flat(a.grads[name]), flat(b.grads[name]), flat(layer.grads[name]))
                np.add(grads[0][elements], grads[1][elements], out=grads[2][elements])

    def sum_and_update(self, optimizer: Optimizer, part: int) -> None:
        """sum_gradients(part), then the optimizer's update of the same elements (Optimizer.update; begin_step
        done and the state made). An element-wise rule on two parts gives the bits of one whole update."""
        self.sum_gradients(part)
        for key, name, (layer, _, _), parts in self.parameters:
            if (elements := parts[part]) is not None:
                optimizer.update(key, layer.params[name], layer.grads[name], elements)

    def half_pass(
        self,
        replica: Network,
        x: np.ndarray,
        y: np.ndarray,
        outputs: np.ndarray,
        rows: slice,
        loss_gradient: LossGradient,
        n: int,
    ) -> HalfPass:
        """Forward and backward of x (rows of the batch of n) on `replica`, outputs[rows] written; at each layer
        that couples the batch it yields (net's layer's rule for the whole batch, its part) and goes on with what
        it is sent back."""
        for whole, layer in zip(self.net.layers, replica.layers, strict=True):
            if layer.couples_batch:
                x = layer.forward_with(x, (yield whole.whole_statistics, layer.partial_statistics(x)))
            else:
                x = layer.forward(x)
        outputs[rows] = x
        grad, start = loss_gradient.start(replica, outputs[rows], y, n)
        for whole, layer in zip(self.net.layers[start::-1], replica.layers[start::-1], strict=True):
            if layer.couples_batch:
                grad = layer.backward_with(grad, (yield whole.whole_gradient_sums, layer.partial_gradient_sums(grad)))
            else:
                grad = layer.backward(grad)

    def share_noise(self, n: int, half: int, dtype: np.dtype) -> None:
        """The replicas follow net's training flags; each layer of net that draws noise (Layer.draw_noise) draws
        that of all n rows (here, in this thread), the first replica gets rows [0, half), the second the rest."""
        for layer, a, b in zip(self.net.layers, *(r.layers for r in self.replicas), strict=True):
            a.training = b.training = layer.training
            noise = layer.draw_noise(n, dtype)
            if noise is not None:
                a.use_noise(noise[:half])
                b.use_noise(noise[half:])


def element_parts(size: int) -> tuple[slice, slice | None]:
    """A parameter's flat elements in the parts two threads update: [0, cut) and [cut, size) for one of at least
    SPLIT_UPDATE_FROM elements, all of them in the first part otherwise. The cut is a multiple of CUT_MULTIPLE:
    OpenBLAS's axpy runs blocks of elements in its kernel and the last few past them in plain C, which may round
    otherwise; cut inside a block, a part would move some elements by other bits than one whole update does
    (tests/test_optimizers.py; cuts at multiples of 16 did)."""
    if size < SPLIT_UPDATE_FROM:
        return slice(0, size), None
    cut = size // 2 // CUT_MULTIPLE * CUT_MULTIPLE
    return slice(0, cut), slice(cut, size)


def _resume(half: HalfPass, value: Any) -> tuple | None:
    """Run `half` to its next pause: what it yields there, None when it has finished."""
    try:
        return half.send(value)
    except StopIteration:
        return None


def _resume_both(halves: list[HalfPass], value: Any) -> tuple[tuple, tuple] | None:
    """Resume both halves with `value`, the second on the second thread when there is one (the first always in
    this thread); their pauses, or None when both have finished."""
    pool = _second_thread()
    if pool is None:
        paused = _resume(halves[0], value), _resume(halves[1], value)
    else:
        pending = pool.submit(_resume, halves[1], value)
        try:
            first = _resume(halves[0], value)
        finally:
            second = pending.result()
        paused = first, second
    return None if paused[0] is None else paused  # the replicas' layers are the same: both pause or both end
