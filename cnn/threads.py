"""Which threads cnn uses, chosen so that results never depend on the number of threads or cores.

OpenBLAS splits a matrix product among its threads, and the split changes which elements its edge kernels
compute, so a product's last bits depend on the thread count (64x3380x100 differs between 1 and 2
threads). So inside fit and predict every BLAS pool (numpy's OpenBLAS and the second one scipy's wheels
carry) runs one thread, and cnn gets its parallelism from a split of its own (cnn.parallel: two halves,
chosen by the batch size alone). Batch 1 too: its matrix-vector products and rank-1 updates would give the
same bits on more threads, but they last tens of microseconds, and threaded they wait for a second core at
every call, which any other load keeps busy (measurements: docs/performance.md).
"""

import os
from collections.abc import Iterator
from contextlib import contextmanager

_controller = None
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
    """Let cnn use at most n threads (n >= 1); None: all cores this process may run on."""
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


@contextmanager
def blas_threads() -> Iterator[None]:
    """Every BLAS pool at one thread while the block runs; restored after."""
    saved = {lib: lib.num_threads for lib in _blas_libraries()}
    try:
        for lib, n in saved.items():
            if n != 1:
                lib.set_num_threads(1)
        yield
    finally:
        for lib, n in saved.items():
            if lib.num_threads != n:
                lib.set_num_threads(n)
