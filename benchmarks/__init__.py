"""The side-by-side benchmark (python -m benchmarks). Importing the package pins the pipeline's numerics before
numpy loads (pipeline.numerics), so what it times and trains computes as every pipeline command does; the
BLAS and numerics variables as the shell set them are kept in HOST_ENVIRONMENT, since pinning changes some.
REPO is the repository the benchmarks run in, PARAMS its params.yaml."""

import os
from pathlib import Path

ENV_PREFIXES = ("OPENBLAS_", "OMP_", "MKL_", "GOTO", "BLIS_", "MALLOC_", "NPY_", "MNIST_CNN_")
HOST_ENVIRONMENT = {k: v for k, v in sorted(os.environ.items()) if k.startswith(ENV_PREFIXES)}
REPO = Path(__file__).resolve().parent.parent
PARAMS = REPO / "params.yaml"

from pipeline import numerics as numerics  # noqa: E402  (after reading the environment, before numpy)
