"""One trainer per benchmark variant, behind one interface: prepare(samples) outside the clock, then
run(samples) -> seconds to train one pass (steps of forward + backward + update) over that many samples.

Variants: the notebook's own code (tests/reference/notebook.py: batch 1, float64, its network only), this
project (cnn.Sequential.fit) and PyTorch (benchmarks.torch_models: the same network, built from the same cnn
layers with the same initial values) at any batch size, float64 or float32, for each network of
benchmarks.networks.
"""

import functools
import time
import warnings
from dataclasses import dataclass

import numpy as np

import cnn
from benchmarks import networks

SEED = 0


@functools.cache
def torch_available() -> bool:
    """Whether PyTorch imports (asked once; the answer is the same for the whole run)."""
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


@dataclass(frozen=True)
class Variant:
    impl: str  # notebook | cnn | torch
    batch_size: int
    dtype: str  # float64 | float32
    network: str = "notebook"  # a key of networks.NETWORKS

    @property
    def name(self) -> str:
        name = f"{self.impl} b{self.batch_size} {'f64' if self.dtype == 'float64' else 'f32'}"
        return name if self.network == "notebook" else f"{name} {self.network}"


def variants(
    torch: bool, batch_sizes=(1, 32, 128), dtypes=("float64", "float32"), ten_digit_batches=(16, 64)
) -> list[Variant]:
    """The notebook (batch 1 f64); cnn and (if `torch`) PyTorch for every batch size x dtype of the notebook's
    network; then both for each ten-digit network at `ten_digit_batches`, float32."""
    impls = ("cnn", "torch") if torch else ("cnn",)
    out = [Variant("notebook", 1, "float64")]
    for impl in impls:
        out += [Variant(impl, b, d) for b in batch_sizes for d in dtypes]
    for network in networks.TEN_DIGIT_NETWORKS:
        out += [Variant(impl, b, "float32", network) for b in ten_digit_batches for impl in impls]
    return out


class Runner:
    """Trains one variant's network on the sample's images, cycled to whatever length a run needs."""

    def __init__(
        self, variant: Variant, x: np.ndarray, labels: np.ndarray, network: networks.Network, threads: int
    ) -> None:
        self.variant, self.network, self.threads = variant, network, threads
        self._x0, self._labels0 = x.astype(variant.dtype), labels
        self._y0 = cnn.one_hot(labels, network.n_classes, variant.dtype)
        self._x, self._y, self._labels = self._x0, self._y0, self._labels0
        self.calls = 0
        self._setup()

    def _setup(self) -> None:
        """Build the network (subclasses)."""

    def prepare(self, samples: int) -> None:
        """Make sure `samples` samples are ready in the variant's dtype (outside the clock)."""
        if len(self._x) < samples:
            self._x, self._y = networks.tile(self._x0, samples), networks.tile(self._y0, samples)
            self._labels = networks.tile(self._labels0, samples)

    def lead_in(self, samples: int) -> None:
        """An untimed quarter of a measurement of `samples` (whole batches) before timing it: the previous
        variant's BLAS or OpenMP workers spin for a while after their last call, and would slow this one's
        first steps."""
        b = self.variant.batch_size
        self.run(max(b, samples // 4 // b * b))

    def run(self, samples: int) -> float:
        """Train one pass over `samples` samples (steps of batch_size, the last one partial); -> seconds."""
        self.prepare(samples)
        x, y = self._x[:samples], self._y[:samples]
        self.calls += 1
        start = time.perf_counter()
        self._train(x, y)
        return time.perf_counter() - start

    def _train(self, x: np.ndarray, y: np.ndarray) -> None:
        raise NotImplementedError


class NotebookRunner(Runner):
    def _setup(self) -> None:
        v = self.variant
        if (v.batch_size, v.dtype, v.network) != (1, "float64", "notebook"):
            raise ValueError(f"the notebook's code trains its network at batch 1 in float64 only, not {v.name}")
        from tests.reference import notebook

        self._notebook = notebook
        self.layers = notebook.notebook_network(np.random.default_rng(SEED))

    def _train(self, x: np.ndarray, y: np.ndarray) -> None:
        with warnings.catch_warnings(), np.errstate(all="ignore"):  # its BCE can log(0) once saturated
            warnings.simplefilter("ignore")
            self._notebook.train(x, y, 1, self.network.learning_rate, None, network=self.layers)


class CnnRunner(Runner):
    def _setup(self) -> None:
        self.net, self.loss, self.optimizer = self.network.build(self.variant.dtype, SEED)

    def _train(self, x: np.ndarray, y: np.ndarray) -> None:
        self.net.fit(x, y, self.loss, self.optimizer, epochs=1, batch_size=self.variant.batch_size, seed=self.calls)


class TorchRunner(Runner):
    def _setup(self) -> None:
        from benchmarks import torch_models

        v = self.variant
        self.trainer = torch_models.Trainer.like(self.network, v.dtype, self.threads, v.batch_size, SEED)

    def _train(self, x: np.ndarray, y: np.ndarray) -> None:
        self.trainer.epoch(x, self._labels[: len(x)], self.network.n_classes)


RUNNERS: dict[str, type[Runner]] = {"notebook": NotebookRunner, "cnn": CnnRunner, "torch": TorchRunner}


def make_runner(
    variant: Variant, threads: int, images: dict | None = None, network: networks.Network | None = None
) -> Runner:
    """The runner of `variant` (of `network`, default: the one variant.network names) with `threads` PyTorch
    threads, on the sample's training images of the network's digits (`images`: a cache digits -> (x, labels),
    shared between runners)."""
    network = network or networks.NETWORKS[variant.network]
    images = {} if images is None else images
    if network.digits not in images:
        images[network.digits] = networks.training_images(network.digits)
    return RUNNERS[variant.impl](variant, *images[network.digits], network, threads)


def calibrate(runner: Runner, seconds: float, quick: bool = False, notebook_max_samples: int = 400) -> int:
    """Warm up, then pick the samples per measurement that take about `seconds` (whole batches); the
    notebook's slow code at most notebook_max_samples; --quick: a few steps."""
    b = runner.variant.batch_size
    cap = notebook_max_samples if runner.variant.impl == "notebook" else 1 << 20
    runner.run(b)  # warm-up: first-call allocations, BLAS thread start
    if quick:
        return min(5 if b == 1 else 3 * b, cap)
    samples = b
    while True:
        took = runner.run(samples)
        if took >= seconds / 8 or samples >= cap:
            break
        samples = min(samples * 4, cap)
    took = min(took, runner.run(samples), runner.run(samples))  # the least disturbed of three
    steps = max(1, round(seconds * samples / max(took, 1e-9) / b))
    return min(steps * b, max(cap // b, 1) * b)
