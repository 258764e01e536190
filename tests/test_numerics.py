"""The tests run the numerics the pipeline runs, and the "numpy imported first" guard of pipeline.numerics holds."""

import subprocess
import sys

from threadpoolctl import threadpool_info

from pipeline import numerics


def test_the_suite_runs_canonical_numerics_where_the_machine_can() -> None:
    import scipy.linalg.blas  # noqa: F401  loads scipy's OpenBLAS too

    reason = numerics._unavailable()
    if reason is not None:  # another architecture, or no AVX2/FMA: native, and saying why
        assert numerics.CURRENT.mode == "native" and numerics.CURRENT.reason == reason
        return
    assert numerics.CURRENT.canonical, numerics.CURRENT.reason
    cores = {lib.get("architecture") for lib in threadpool_info() if lib["internal_api"] == "openblas"}
    assert cores == {numerics.BLAS_CORE}


def run(code: str) -> str:
    env = {"PATH": "/usr/bin:/bin", "HOME": "/tmp"}  # without this host's OPENBLAS_CORETYPE or numerics choice
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    return result.stdout.strip()


def test_numpy_imported_before_the_pipeline_is_reported_native() -> None:
    assert numerics.configure({}, numpy_imported=True).mode == "native" or numerics._unavailable() is not None
    found = run(
        "import numpy, pipeline.numerics as n\n"
        "from threadpoolctl import threadpool_info\n"
        "print(n.CURRENT.mode, n.CURRENT.reason, sep='|')"
    )
    mode, reason = found.split("|")
    assert mode == "native"
    if numerics._unavailable() is None:
        assert reason == "numpy was imported before the pipeline could pin its kernels"
