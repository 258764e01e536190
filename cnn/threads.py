"""Which threads a training run uses. Three pools can compete for the cores: numpy's OpenBLAS, the second
OpenBLAS that scipy's wheels carry (scipy.linalg.blas: the in-place SGD updates), and cnn's own second
thread (cnn.parallel). An idle OpenBLAS worker spins for a while after each call, so two pools busy in
turn on 2 cores starve each other (measured: a training step 3-5x slower). The policy:

- scipy's pool has one thread (set once, on the first update), except
- at batch 1, while fit runs: its rank-1 updates are the only threaded work then (numpy's matrix-vector
  products are below OpenBLAS's threading threshold), and on all cores they are 1.2x faster in float64;
- batches that cnn.parallel splits in two run every BLAS call single-threaded, one per half.
"""

import os
from collections.abc import Iterator
from contextlib import contextmanager

_controller = None
_scipy_limited = False
_max_threads: int | None = None


def num_threads() -> int:
    """Cores cnn may keep busy: set_num_threads(n), else those this process may run on."""
    if _max_threads is not None:
        return _max_threads
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - macOS, Windows
        return os.cpu_count() or 1


def set_num_threads(n: int | None) -> None:
    """Let cnn use at most n threads (n >= 1) for its own work and scipy's updates; None: all cores.
    numpy's BLAS threads are not changed (threadpoolctl does that)."""
    global _max_threads
    if n is not None and int(n) < 1:
        raise ValueError(f"the number of threads must be >= 1, got {n}")
    _max_threads = None if n is None else int(n)


def _blas_libraries() -> list:
    global _controller
    if _controller is None:
        from threadpoolctl import ThreadpoolController

        _controller = ThreadpoolController()
    return [lib for lib in _controller.lib_controllers if lib.user_api == "blas"]


def _is_scipys(lib) -> bool:
    return "scipy.libs" in lib.filepath or "scipy/.dylibs" in lib.filepath


def limit_scipy_blas() -> None:
    """Give scipy's own OpenBLAS (not numpy's) one thread, once per process."""
    global _scipy_limited
    if not _scipy_limited:
        _scipy_limited = True
        for lib in _blas_libraries():
            if _is_scipys(lib):
                lib.set_num_threads(1)


@contextmanager
def training_threads(batch_size: int, split: bool) -> Iterator[None]:
    """The thread policy above for a fit at this batch size (`split`: cnn.parallel halves its batches)."""
    limit_scipy_blas()
    chosen = {}
    for lib in _blas_libraries():
        if split:
            chosen[lib] = 1
        elif batch_size == 1 and _is_scipys(lib):
            chosen[lib] = num_threads()
    saved = {lib: lib.num_threads for lib in chosen}
    try:
        for lib, n in chosen.items():
            lib.set_num_threads(n)
        yield
    finally:
        for lib, n in saved.items():
            lib.set_num_threads(n)
