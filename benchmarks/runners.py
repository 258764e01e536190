"""One trainer per benchmark variant, behind one interface: prepare(samples) outside the clock, then
run(samples) -> seconds to train one pass (steps of forward + backward + SGD update) of the notebook's network.

Variants: the notebook's own formulation (benchmarks/notebook.py, batch 1, float64), this project
(cnn.Sequential.fit) and PyTorch (benchmarks/torch_net.py) at any batch size, float64 or float32.
"""

import importlib.util
import time
import warnings
from dataclasses import dataclass

import numpy as np

import cnn
from benchmarks import data

LEARNING_RATE = 0.1
SEED = 0
NOTEBOOK_LAYERS = cnn.NOTEBOOK_LAYERS
IMPLS = ("notebook", "cnn", "torch")


def torch_available() -> bool:
    return importlib.util.find_spec("torch") is not None


@dataclass(frozen=True)
class Variant:
    impl: str  # notebook | cnn | torch
    batch_size: int
    dtype: str  # float64 | float32

    @property
    def name(self) -> str:
        return f"{self.impl} b{self.batch_size} {'f64' if self.dtype == 'float64' else 'f32'}"


def variants(batch_sizes=(1, 32, 128), dtypes=("float64", "float32"), torch: bool = True) -> list[Variant]:
    """The notebook (batch 1 f64), then cnn and (if `torch`) torch for every batch size x dtype."""
    out = [Variant("notebook", 1, "float64")]
    for impl in ("cnn", "torch") if torch else ("cnn",):
        out += [Variant(impl, b, d) for b in batch_sizes for d in dtypes]
    return out


class Runner:
    """Trains one variant's network on the sample's images, cycled to whatever length a run needs."""

    def __init__(self, variant: Variant, x: np.ndarray, labels: np.ndarray, threads: int) -> None:
        self.variant, self.threads = variant, threads
        self._x0, self._y0 = x.astype(variant.dtype), data.one_hot(labels, 2, variant.dtype)
        self._x, self._y = self._x0, self._y0
        self.calls = 0

    def prepare(self, samples: int) -> None:
        """Make sure `samples` samples are ready in the variant's dtype (outside the clock)."""
        if len(self._x) < samples:
            self._x, self._y = data.tile(self._x0, samples), data.tile(self._y0, samples)

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
    def __init__(self, variant: Variant, x: np.ndarray, labels: np.ndarray, threads: int) -> None:
        if variant.batch_size != 1 or variant.dtype != "float64":
            raise ValueError(f"the notebook's formulation is batch 1 float64 only, not {variant.name}")
        super().__init__(variant, x, labels, threads)
        from benchmarks import notebook

        self._notebook = notebook
        self.network = notebook.notebook_network(np.random.default_rng(SEED))

    def _train(self, x: np.ndarray, y: np.ndarray) -> None:
        with warnings.catch_warnings(), np.errstate(all="ignore"):  # its BCE can log(0) once saturated
            warnings.simplefilter("ignore")
            self._notebook.train(x, y, 1, LEARNING_RATE, None, network=self.network)


class CnnRunner(Runner):
    def __init__(self, variant: Variant, x: np.ndarray, labels: np.ndarray, threads: int) -> None:
        super().__init__(variant, x, labels, threads)

        self.net = cnn.Sequential(cnn.build(NOTEBOOK_LAYERS), init="normal", seed=SEED, dtype=variant.dtype)
        self.loss, self.optimizer = cnn.BinaryCrossEntropy(), cnn.SGD(LEARNING_RATE)

    def _train(self, x: np.ndarray, y: np.ndarray) -> None:
        self.net.fit(x, y, self.loss, self.optimizer, epochs=1, batch_size=self.variant.batch_size, seed=self.calls)


class TorchRunner(Runner):
    def __init__(self, variant: Variant, x: np.ndarray, labels: np.ndarray, threads: int) -> None:
        super().__init__(variant, x, labels, threads)
        from benchmarks.torch_net import TorchTrainer

        self.trainer = TorchTrainer(variant.dtype, threads, LEARNING_RATE, SEED)

    def _train(self, x: np.ndarray, y: np.ndarray) -> None:
        self.trainer.fit(x, y, self.variant.batch_size)


RUNNERS: dict[str, type[Runner]] = {"notebook": NotebookRunner, "cnn": CnnRunner, "torch": TorchRunner}


def make_runner(variant: Variant, x: np.ndarray, labels: np.ndarray, threads: int) -> Runner:
    return RUNNERS[variant.impl](variant, x, labels, threads)
