"""Which threads a training run uses, chosen so that results never depend on the number of threads or cores.

OpenBLAS splits a matrix product among its threads, and the split changes which elements its edge kernels
compute, so a product's last bits depend on the thread count (measured: 64x3380x100 differs between 1 and 2
threads). cnn therefore runs every BLAS product single-threaded inside fit and predict and gets its
parallelism from its own split (cnn.parallel: two halves, chosen by the batch size alone). The exception is
the rank-1 SGD update at batch 1 (scipy's ger): it writes each weight once, in the same arithmetic whatever
the split, so it may use every core. Also, an idle OpenBLAS worker spins for a while after each call, so
two pools busy in turn on 2 cores starve each other: scipy's pool stays at one thread otherwise.
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
def blas_threads(batch_size: int | None = None) -> Iterator[None]:
    """The policy above while the block runs: every BLAS pool at one thread, except scipy's at batch 1
    (`batch_size` None: not training, e.g. predict)."""
    limit_scipy_blas()
    chosen = {lib: num_threads() if batch_size == 1 and _is_scipys(lib) else 1 for lib in _blas_libraries()}
    saved = {lib: lib.num_threads for lib in chosen}
    try:
        for lib, n in chosen.items():
            if n != saved[lib]:
                lib.set_num_threads(n)
        yield
    finally:
        for lib, n in saved.items():
            if lib.num_threads != n:
                lib.set_num_threads(n)
