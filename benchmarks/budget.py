"""Where the batch-1 goals (x notebook) stand against what a step cannot avoid.

A batch-1 SGD step of the notebook's network makes three passes over the 3380 x 100 weights of its large
Dense layer: the forward product, the input gradient and the rank-1 update (BLAS gemv, gemv, ger; see
cnn.fast.rank1_sgd_step). They are timed here alone, with the very calls a step makes, best of several
repeats: their floor on this machine. Everything else in a step (some twenty small numpy calls: the
convolution, the sigmoids, the small Dense layer, the loss gradient, the small updates) is the rest.
A goal of g x the notebook leaves notebook_step / g microseconds per step: the budget for the rest is that
minus the three passes.
"""

import time

import numpy as np

import cnn
from benchmarks import stats
from cnn import blas, threads

BATCH1_GOALS = {"float64": 4.0, "float32": 8.0}


def weight_passes_us(dtype: str, repeats: int = 2000, rounds: int = 5) -> float:
    """Microseconds of the three passes over a 3380 x 100 Dense layer at batch 1 (best round's mean)."""
    dense = cnn.Dense(3380, 100, rng=0, dtype=dtype)
    rng = np.random.default_rng(0)
    x = rng.random((1, 3380)).astype(dtype)
    dy = (rng.standard_normal((1, 100)) * 1e-3).astype(dtype)
    best = float("inf")
    with threads.blas_threads():
        for _ in range(rounds):
            start = time.perf_counter()
            for _ in range(repeats):
                dense.forward(x)
                dense.input_gradient(dy)
                blas.ger(dense.params["weights"], dy, x, -1e-3)
            best = min(best, (time.perf_counter() - start) / repeats)
    return best * 1e6


def batch1_budget(results: list[dict], quick: bool = False) -> list[dict]:
    """One row per dtype with cnn's and the notebook's measured step, the three passes alone, and what the
    goal leaves for the rest of the step; [] when the notebook or cnn's batch-1 variant was not timed."""
    by_key = stats.by_variant(results)
    notebook = by_key.get(("notebook", "notebook", 1, "float64"))
    rows = []
    for dtype, goal in BATCH1_GOALS.items():
        mine = by_key.get(("cnn", "notebook", 1, dtype))
        if notebook is None or mine is None:
            continue
        step_us = 1e6 / mine["samples_per_s"]
        notebook_us = 1e6 / notebook["samples_per_s"]
        passes_us = weight_passes_us(dtype, repeats=200 if quick else 2000)
        goal_step_us = notebook_us / goal
        rows.append(
            {
                "dtype": dtype,
                "goal_x_notebook": goal,
                "notebook_step_us": notebook_us,
                "step_us": step_us,
                "weight_passes_us": passes_us,
                "rest_us": step_us - passes_us,
                "goal_step_us": goal_step_us,
                "rest_budget_us": goal_step_us - passes_us,
                "x_notebook_if_rest_were_free": notebook_us / passes_us,
            }
        )
    return rows
