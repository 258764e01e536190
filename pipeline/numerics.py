"""Canonical numerics: the same params give the same bits on any x86-64 machine with AVX2 and FMA.

Two things pick the order in which a processor sums floating-point numbers, and so the last bits of
every product: OpenBLAS chooses its kernel per CPU (SkylakeX, Haswell, Zen, ...; some hosts also force one
through OPENBLAS_CORETYPE), and numpy dispatches its ufunc loops per instruction set (AVX-512 or AVX2).
Per-sample SGD turns last-bit differences into another model. So before numpy is first imported (the
pipeline package does this on import), `configure` pins both to what every current x86-64 server runs:
OpenBLAS's Haswell kernels (AVX2 + FMA), for numpy's and scipy's bundled OpenBLAS alike, and numpy's loops
up to AVX2. Thread counts need no pinning: cnn runs its matrix products single-threaded, in a split it
decides from the batch size alone (cnn.threads).

MNIST_CNN_NUMERICS=native opts out (the CPU's own kernels; faster on some machines, other bits). Where the
canonical kernels cannot run (another architecture, no AVX2/FMA) or numpy was imported first, the run is
native too, and says why. This module imports only the standard library.
"""

import os
import platform
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

OPT_OUT_VARIABLE = "MNIST_CNN_NUMERICS"
BLAS_CORE = "Haswell"
NUMPY_DISABLED_FEATURES = "X86_V4 AVX512_ICL AVX512_SPR"  # numpy's dispatch targets above AVX2
REQUIRED_CPU_FLAGS = ("avx2", "fma")


@dataclass(frozen=True)
class Numerics:
    """How this process computes: mode "canonical" or "native"; `reason` says why native ("" if canonical)."""

    mode: str
    reason: str = ""

    @property
    def canonical(self) -> bool:
        return self.mode == "canonical"

    def note(self) -> str | None:
        """One line for a run whose numbers are not the canonical ones, else None."""
        if self.canonical:
            return None
        return (
            f"note: native numerics ({self.reason}): models and metrics may differ in the last bits from the "
            f"committed dvc.lock and from other machines; see README 'Reproducibility'"
        )


def _cpu_flags() -> set[str] | None:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith("flags"):
            return set(line.partition(":")[2].split())
    return None


def _unavailable() -> str | None:
    """Why the canonical kernels cannot run on this machine, or None when they can."""
    machine = platform.machine().lower()
    if machine not in ("x86_64", "amd64"):
        return f"canonical kernels need x86-64, this is {machine or 'unknown'}"
    flags = _cpu_flags()
    if flags is None:
        return "cannot read the CPU's features from /proc/cpuinfo"
    missing = [flag for flag in REQUIRED_CPU_FLAGS if flag not in flags]
    if missing:
        return f"this CPU lacks {', '.join(missing)}"
    return None


def configure(environ: dict[str, str] | None = None, numpy_imported: bool | None = None) -> Numerics:
    """Pin the canonical kernels in `environ` (default: this process's) unless opted out or impossible."""
    environ = os.environ if environ is None else environ
    numpy_imported = "numpy" in sys.modules if numpy_imported is None else numpy_imported
    requested = environ.get(OPT_OUT_VARIABLE, "canonical").strip().lower() or "canonical"
    if requested == "native":
        return Numerics("native", f"{OPT_OUT_VARIABLE}=native")
    if requested != "canonical":
        return Numerics("native", f"{OPT_OUT_VARIABLE}={requested!r} is not 'canonical' or 'native'")
    reason = _unavailable()
    if reason is not None:
        return Numerics("native", reason)
    if numpy_imported:
        return Numerics("native", "numpy was imported before the pipeline could pin its kernels")
    environ["OPENBLAS_CORETYPE"] = BLAS_CORE
    environ.pop("OPENBLAS_L2_SIZE", None)
    environ["NPY_DISABLE_CPU_FEATURES"] = NUMPY_DISABLED_FEATURES
    return Numerics("canonical")


CURRENT = configure()


def fingerprint(dtype: str) -> dict[str, Any]:
    """What decides this run's bits, the same on every machine that computes them alike: numerics mode,
    BLAS kernels, the numpy SIMD level, library versions and dtype (no thread counts or timings)."""
    import numpy as np
    import scipy
    import scipy.linalg.blas  # loads scipy's OpenBLAS, so threadpoolctl lists both)
    from numpy._core._multiarray_umath import __cpu_dispatch__, __cpu_features__
    from threadpoolctl import threadpool_info

    blas = sorted(
        {f"{lib.get('internal_api')} {lib.get('version')} {lib.get('architecture')}" for lib in threadpool_info()}
    )
    simd = [name for name in __cpu_dispatch__ if __cpu_features__.get(name)]
    return {
        "numerics": CURRENT.mode,
        "blas": blas,
        "numpy_simd": simd[-1] if simd else "baseline",
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "machine": platform.machine(),
        "dtype": str(dtype),
    }
