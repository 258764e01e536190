"""The timed measurements of one process: every variant in interleaved rounds and the ratios between them, the
batch-1 budget, cost against the number of images, depth and width, and an epoch of the full-data recipe."""

import dataclasses
import gc
import resource
import statistics
import time

import numpy as np

import cnn
from benchmarks import machine, networks, trainers
from cnn import blas, threads

RECIPE = trainers.Variant("cnn", 16, "float32", "ten-digit")  # README "All ten digits": full MNIST, batch 16, Adam
RECIPE_EPOCHS = 5
FULL_MNIST = 60_000  # the full MNIST training set, all ten digits
BATCH1_GOALS = {"float64": 4.0, "float32": 8.0}  # x the notebook's code


def spread(rates: list[float]) -> float:
    """How far apart the rounds of one variant are: (fastest - slowest) / median."""
    return (max(rates) - min(rates)) / statistics.median(rates)


def median_ratio(rates_a: list[float], rates_b: list[float]) -> float:
    """a's speed over b's from rounds that timed both: the median over rounds of a's rate over b's in the same
    round, so a machine that slows down or speeds up between rounds moves both sides of each ratio."""
    return statistics.median(a / b for a, b in zip(rates_a, rates_b, strict=True))


def by_variant(results: list[dict]) -> dict[tuple[str, str, int, str], dict]:
    """Result rows by (impl, network, batch_size, dtype)."""
    return {(r["impl"], r["network"], r["batch_size"], r["dtype"]): r for r in results}


def time_variants(variants: list[trainers.Variant], rounds: int, seconds: float, quick: bool, threads: int, log):
    """Round-robin over the variants for `rounds` rounds (each round starts one variant later); each measurement
    (about `seconds` long) follows an untimed lead-in of its own variant. -> one result row per variant."""
    images: dict = {}
    active = []
    for v in variants:
        runner = trainers.make_runner(v, threads, images)
        samples = trainers.calibrate(runner, seconds, quick)
        runner.prepare(samples)
        active.append((v, runner, samples, {"samples_per_s": [], "other_cores": []}))
        log(f"  calibrated {v.name}: {samples} samples ({samples // v.batch_size} steps) per measurement")
    for r in range(rounds):
        shift = r % len(active)
        for _, runner, samples, rec in active[shift:] + active[:shift]:
            gc.collect()
            runner.lead_in(samples)
            with machine.LoadMeter() as load:
                took = runner.run(samples)
            rec["samples_per_s"].append(samples / took)
            rec["other_cores"].append(load.other_cores)
        log(f"  round {r + 1}/{rounds} done")
    results = []
    for v, _, samples, rec in active:
        rates, other = rec["samples_per_s"], [c for c in rec["other_cores"] if c is not None]
        results.append(
            {
                **dataclasses.asdict(v),
                "name": v.name,
                "samples_per_measurement": samples,
                "samples_per_s": statistics.median(rates),
                "samples_per_s_all": rates,
                "spread": spread(rates),
                "other_cores_median": statistics.median(other) if other else None,
            }
        )
    return results


def paired_ratio(a: dict, b: dict) -> float:
    """a's speed over b's (result rows): median_ratio of their rounds; the ratio of the medians when per-round
    rates are missing (hand-made tables)."""
    rates_a, rates_b = a.get("samples_per_s_all"), b.get("samples_per_s_all")
    if rates_a and rates_b and len(rates_a) == len(rates_b):
        return median_ratio(rates_a, rates_b)
    return a["samples_per_s"] / b["samples_per_s"]


def add_ratios(results: list[dict], flops: dict, gemm: dict) -> None:
    """vs_notebook = paired_ratio(this, the notebook); vs_torch = paired_ratio(this, PyTorch for the same
    network, batch size and dtype) (None when absent); gemm_fraction (notebook network only) = samples/s x FLOPs
    per sample / the same dtype's large-GEMM rate."""
    rows = by_variant(results)
    notebook = rows.get(("notebook", "notebook", 1, "float64"))
    for r in results:
        network = r["network"]
        torch = rows.get(("torch", network, r["batch_size"], r["dtype"]))
        r["vs_notebook"] = paired_ratio(r, notebook) if notebook and network == "notebook" else None
        r["vs_torch"] = paired_ratio(r, torch) if torch and r["impl"] != "torch" else None
        rate = gemm[r["dtype"]] * 1e9
        r["gemm_fraction"] = r["samples_per_s"] * flops["per_sample"] / rate if network == "notebook" else None


def weight_passes_us(dtype: str, repeats: int = 2000, rounds: int = 5) -> float:
    """Microseconds of the three passes a batch-1 SGD step makes over the notebook network's 3380 x 100 Dense
    weights, with the very calls the step makes (cnn.fast.rank1_sgd_step: forward product, input gradient,
    rank-1 update; BLAS gemv, gemv, ger), best round's mean: their floor on this machine."""
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
    """Where the batch-1 goals stand against what a step cannot avoid: per dtype, cnn's and the notebook's
    measured step, the three weight passes alone, and the rest of the step (some twenty small numpy calls).
    A goal of g x the notebook leaves notebook_step / g per step; the rest's budget is that minus the passes.
    [] when the notebook or cnn's batch-1 variant was not timed."""
    rows = by_variant(results)
    notebook = rows.get(("notebook", "notebook", 1, "float64"))
    out = []
    for dtype, goal in BATCH1_GOALS.items():
        mine = rows.get(("cnn", "notebook", 1, dtype))
        if notebook is None or mine is None:
            continue
        step_us, notebook_us = 1e6 / mine["samples_per_s"], 1e6 / notebook["samples_per_s"]
        passes_us = weight_passes_us(dtype, repeats=200 if quick else 2000)
        out.append(
            {
                "dtype": dtype,
                "goal_x_notebook": goal,
                "notebook_step_us": notebook_us,
                "step_us": step_us,
                "weight_passes_us": passes_us,
                "rest_us": step_us - passes_us,
                "goal_step_us": notebook_us / goal,
                "rest_budget_us": notebook_us / goal - passes_us,
                "x_notebook_if_rest_were_free": notebook_us / passes_us,
            }
        )
    return out


def scaling(threads: int, quick: bool) -> list[dict]:
    """Seconds for one pass over n images (best of 3; of 2 for the ten-digit network): cost is linear in n at
    a fixed batch size."""
    rows = []
    small, large = ((100, 400), (64, 256)) if quick else ((250, 1000, 4000), (1000, 4000, 16000))
    cases = [(trainers.Variant("cnn", 1, "float64"), small, 3), (trainers.Variant("cnn", 32, "float32"), small, 3)]
    for variant, sizes, repeats in [*cases, (RECIPE, large, 2)]:
        runner = trainers.make_runner(variant, threads)
        runner.run(variant.batch_size)
        for n in sizes:
            best = min(runner.run(n) for _ in range(repeats))
            row = {"network": variant.network, "batch_size": variant.batch_size, "dtype": variant.dtype}
            rows.append({**row, "images": n, "seconds": best, "us_per_image": best / n * 1e6})
    return rows


def architectures(threads: int, quick: bool, use_torch: bool, log) -> list[dict]:
    """samples/s of cnn and (if `use_torch`) PyTorch at batch 64 float32 for networks of growing depth and width
    around the README's ten-digit network (one pass over 2,048 images, best of 2, interleaved)."""
    images, rows, cache = (128 if quick else 2048), [], {}
    impls = ("cnn", "torch") if use_torch else ("cnn",)
    for network in networks.ARCHITECTURES:
        variant = trainers.Variant("cnn", 64, "float32", network.key)
        runs = {i: trainers.make_runner(dataclasses.replace(variant, impl=i), threads, cache, network) for i in impls}
        rates: dict[str, list[float]] = {impl: [] for impl in impls}
        for runner in runs.values():
            runner.run(64)
        for _ in range(2):
            for impl, runner in runs.items():
                rates[impl].append(images / runner.run(images))
        row = {"network": network.key, "parameters": network.parameter_count()}
        row.update({f"{impl}_samples_per_s": max(r) for impl, r in rates.items()})
        row["vs_torch"] = row["cnn_samples_per_s"] / row["torch_samples_per_s"] if use_torch else None
        rows.append(row)
        log(f"  architecture {network.key}: {row['cnn_samples_per_s']:,.0f} samples/s")
    return rows


def full_data_recipe(threads: int, quick: bool, use_torch: bool, log) -> dict:
    """The README's full-MNIST recipe (RECIPE: ten-digit network, batch 16, Adam, float32): seconds per epoch
    over 60,000 images (the sample's 4,000 tiled), cnn and PyTorch alternating, best of 2 epochs each, with the
    minor page faults per step (fresh memory the allocator had to map)."""
    images = 512 if quick else FULL_MNIST
    impls = ("cnn", "torch") if use_torch else ("cnn",)
    runs = {impl: trainers.make_runner(dataclasses.replace(RECIPE, impl=impl), threads) for impl in impls}
    seconds: dict[str, list[float]] = {impl: [] for impl in impls}
    faults: dict[str, list[int]] = {impl: [] for impl in impls}
    for runner in runs.values():
        runner.prepare(images)
        runner.run(RECIPE.batch_size)
    for r in range(2):
        for impl, runner in runs.items():
            before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
            seconds[impl].append(runner.run(images))
            faults[impl].append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
            log(f"  full-data recipe: {impl} epoch {r + 1}: {seconds[impl][-1]:.1f} s")
    out: dict = {"images": images, "epochs": RECIPE_EPOCHS, **dataclasses.asdict(RECIPE)}
    del out["impl"]
    for impl in impls:
        best = min(seconds[impl])
        out[impl] = {
            "seconds_per_epoch": best,
            "all": seconds[impl],
            "samples_per_s": images / best,
            "recipe_seconds": best * RECIPE_EPOCHS,
            "minor_faults_per_step": min(faults[impl]) / (images / RECIPE.batch_size),
        }
    out["torch_over_cnn_time"] = (
        out["torch"]["seconds_per_epoch"] / out["cnn"]["seconds_per_epoch"] if use_torch else None
    )
    return out
