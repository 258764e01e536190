"""What the numbers depend on: the CPU and its vector units, the numerics mode, BLAS libraries and threads, the
environment, CPU load from other processes, the large-GEMM rate, and the notebook network's FLOPs per sample."""

import importlib.metadata
import os
import platform
import time

import numpy as np
from threadpoolctl import ThreadpoolController

import cnn.threads
from benchmarks import HOST_ENVIRONMENT
from pipeline import numerics

CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def blas_libraries() -> list[dict]:
    """threadpoolctl's view: one dict per loaded BLAS/OpenMP library (path, version, arch, threads)."""
    return ThreadpoolController().info()


def numpy_blas_threads() -> int:
    """Threads of the BLAS numpy itself links (numpy.libs); 1 if none is found."""
    for lib in blas_libraries():
        if lib.get("user_api") == "blas" and "numpy" in lib.get("filepath", ""):
            return int(lib["num_threads"])
    return 1


def limit_threads(numpy_threads: int | None, scipy_threads: int | None) -> list[str]:
    """Set numpy's BLAS pool and scipy's own bundled OpenBLAS pool (scipy.libs) to these thread counts
    (None: leave). scipy's pool spinning after a call can starve numpy's next product on 2 cores."""
    done = []
    if numpy_threads is not None:  # cnn's own threads (cnn.threads) follow numpy's
        cnn.threads.set_num_threads(numpy_threads)
        done.append(f"cnn: {numpy_threads} thread(s)")
    for lib in ThreadpoolController().lib_controllers:
        path = lib.filepath or ""
        if lib.user_api != "blas":
            continue
        target = numpy_threads if "numpy" in path else scipy_threads if "scipy" in path else None
        if target is not None:
            lib.set_num_threads(target)
            done.append(f"{os.path.basename(path)}: {target} thread(s)")
    return done


def _cpuinfo() -> dict[str, str]:
    """The first core's fields of /proc/cpuinfo ({} where there is none)."""
    fields: dict[str, str] = {}
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                key, _, value = line.partition(":")
                fields.setdefault(key.strip(), value.strip())
    except OSError:
        pass
    return fields


def cpu_model() -> str:
    """The model name with family and model number (they tell CPU generations of one name apart)."""
    fields = _cpuinfo()
    if "model name" not in fields:
        return platform.processor() or platform.machine()
    return f"{fields['model name']} (family {fields.get('cpu family', '?')}, model {fields.get('model', '?')})"


def vector_units() -> str:
    """The widest x86 vector extension the CPU reports: AVX-512, AVX2, AVX ("unknown" without /proc/cpuinfo)."""
    flags = set(_cpuinfo().get("flags", "").split())
    for name, flag in (("AVX-512", "avx512f"), ("AVX2", "avx2"), ("AVX", "avx")):
        if flag in flags:
            return name
    return "unknown" if not flags else "no AVX"


def torch_version() -> str | None:
    """The installed PyTorch's version (None without it), read from its metadata: torch is not imported."""
    try:
        return importlib.metadata.version("torch")
    except importlib.metadata.PackageNotFoundError:
        return None


def machine_info() -> dict:
    """Versions (PyTorch's: torch_version), CPU, kernel, BLAS pools and the environment variables that change BLAS
    speed."""
    import scipy

    info = {
        "python": platform.python_version(),
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "torch": torch_version(),
        "cpu": cpu_model(),
        "kernel": f"{platform.system()} {platform.release()}",
        "vector_units": vector_units(),
        "numerics": numerics.CURRENT.mode + (f" ({numerics.CURRENT.reason})" if numerics.CURRENT.reason else ""),
        "cpu_count": os.cpu_count(),
        "usable_cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "env": HOST_ENVIRONMENT,
        "loadavg_1min": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
    }
    info["blas"] = [
        {k: lib.get(k) for k in ("user_api", "internal_api", "version", "architecture", "num_threads", "filepath")}
        for lib in blas_libraries()
    ]
    return info


class LoadMeter:
    """CPU used by *other* processes during a span, in cores: (all busy time - this process's) / wall."""

    def __enter__(self) -> "LoadMeter":
        self._busy, self._own, self._wall = _busy_seconds(), _own_seconds(), time.perf_counter()
        return self

    def __exit__(self, *exc) -> None:
        wall = time.perf_counter() - self._wall
        busy, own = _busy_seconds(), _own_seconds()
        self.own_cores = (own - self._own) / wall if wall > 0 else 0.0
        self.other_cores = None if busy is None else max(0.0, (busy - self._busy - (own - self._own)) / wall)


def _busy_seconds() -> float | None:
    try:
        with open("/proc/stat") as handle:
            fields = [int(v) for v in handle.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return (sum(fields[:8]) - idle) / CLOCK_TICKS


def _own_seconds() -> float:
    t = os.times()
    return t.user + t.system


def gemm_gflops(dtype: str, n: int = 2048, repeats: int = 5) -> float:
    """Best rate of an (n, n) @ (n, n) product in `dtype` with numpy's current BLAS threads, GFLOP/s."""
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((n, n)).astype(dtype), rng.standard_normal((n, n)).astype(dtype)
    out = np.empty((n, n), dtype=dtype)
    np.matmul(a, b, out=out)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        np.matmul(a, b, out=out)
        best = min(best, time.perf_counter() - start)
    return 2 * n**3 / best / 1e9


# The notebook's network: Conv(C=1 -> D=5, k=3) on 28x28 -> (5, 26, 26), Dense(3380 -> 100), Dense(100 -> 2).
CONV = {"C": 1, "D": 5, "k": 3, "out": 26 * 26}
DENSE = [(3380, 100), (100, 2)]


def flops_per_sample() -> dict:
    """Multiply-add FLOPs (2 per MAC) of one sample's forward + backward, by layer. The first layer's input
    gradient is not needed (no one uses dLoss/dimage) and not counted; element-wise work (sigmoids, biases)
    is under 1% and left out. The SGD update is per step, not per sample: 2 FLOPs per parameter."""
    conv_macs = CONV["D"] * CONV["C"] * CONV["k"] ** 2 * CONV["out"]
    layers = {"conv forward": 2 * conv_macs, "conv kernel gradient": 2 * conv_macs}
    for i, (n_in, n_out) in enumerate(DENSE, start=1):
        layers[f"dense{i} forward"] = 2 * n_in * n_out
        layers[f"dense{i} weight gradient"] = 2 * n_in * n_out
        layers[f"dense{i} input gradient"] = 2 * n_in * n_out
    params = CONV["D"] * CONV["C"] * CONV["k"] ** 2 + CONV["D"] * CONV["out"]
    params += sum(n_in * n_out + n_out for n_in, n_out in DENSE)
    return {"per_sample": sum(layers.values()), "by_layer": layers, "update_per_step": 2 * params, "params": params}
