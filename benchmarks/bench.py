"""The whole benchmark, section by section, into one JSON-able dict (benchmarks.report prints it as tables),
and the goals each figure is held to."""

import os
import time
from dataclasses import dataclass

from benchmarks import children, commands, machine, networks, timing, trainers

TARGET_IMAGES = 12_665  # the full MNIST 0/1 training set
TARGET_MIB = 500
FULL_MNIST_MIB = 1024
TEN_DIGIT_VS_TORCH = 1.2
BATCH1_SPREAD = 0.15


@dataclass
class Options:
    rounds: int = 5
    seconds: float = 0.4  # wall time of one measurement of one variant
    quick: bool = False  # a few steps per variant, small memory scenarios
    torch: bool = True  # PyTorch where it is installed
    threads: int | None = None  # None: numpy's current BLAS threads
    seeds: tuple[int, ...] = (0, 1, 2)  # of the recipes' accuracy
    memory: bool = True
    extras: bool = True  # full-data recipe, scaling, architectures, profiles
    recipes: bool = True  # accuracy of the recipes, through the pipeline's commands
    modes: bool = True  # canonical vs native numerics, in two child processes


def memory(results: list[dict], use_torch: bool, quick: bool, threads: int, log) -> dict:
    """Peak RSS per variant (a child process each: it goes into the variant's row), and of the scenarios the
    targets name: the full MNIST 0/1 set at batch 32 and all 60,000 images with the ten-digit network at batch 64
    (--quick: four batches each)."""
    for r in results:
        images = max(8, 3 * r["batch_size"]) if quick else max(200, 20 * r["batch_size"])
        res = children.memory(r["impl"], r["batch_size"], r["dtype"], images, threads, r["network"])
        r["peak_rss_mib"], r["memory"] = res.get("peak_rss_mib"), res
        if "error" in res:
            log(f"  {res['error']}")
    scenarios = {}
    for impl in ("cnn", "torch") if use_torch else ("cnn",):
        for batch, images, network in ((32, TARGET_IMAGES, "notebook"), (64, timing.FULL_MNIST, "ten-digit")):
            images = 4 * batch if quick else images
            name = f"{impl} b{batch} float32" + ("" if network == "notebook" else f" {network}")
            log(f"  memory: {name}, {images:,} images")
            scenarios[name] = children.memory(impl, batch, "float32", images, threads, network)
    return scenarios


def target(name: str, value: float | None, op: str, goal: float) -> dict:
    """One target: met is None when not measured, else whether `value op goal` holds."""
    compare = {">=": lambda v: v >= goal, "<=": lambda v: v <= goal, "<": lambda v: v < goal}[op]
    return {"target": name, "value": value, "goal": f"{op} {goal:g}", "met": None if value is None else compare(value)}


def targets(results: list[dict], scenarios: dict, recipe_rows: list[dict] | None, full_data: dict | None) -> list:
    """Each goal with the measured value and whether it is met (None: not measured)."""
    rows = timing.by_variant(results)

    def get(impl, b, dtype, key, network="notebook"):
        return rows.get((impl, network, b, dtype), {}).get(key)

    out = []
    for dtype, short in (("float32", "f32"), ("float64", "f64")):
        goal = timing.BATCH1_GOALS[dtype]
        out.append(target(f"batch 1 {short} vs notebook", get("cnn", 1, dtype, "vs_notebook"), ">=", goal))
    for dtype, short in (("float32", "f32"), ("float64", "f64")):
        out.append(
            target(f"batch 1 {short} spread between rounds", get("cnn", 1, dtype, "spread"), "<=", BATCH1_SPREAD)
        )
    out.append(target("batch 32 f32 vs PyTorch", get("cnn", 32, "float32", "vs_torch"), ">=", 1.5))
    out.append(target("batch 128 f32 vs PyTorch", get("cnn", 128, "float32", "vs_torch"), ">=", 1.2))
    out.append(target("batch 128 f32 fraction of GEMM limit", get("cnn", 128, "float32", "gemm_fraction"), ">=", 0.35))
    for network in networks.TEN_DIGIT_NETWORKS:
        for b in sorted({r["batch_size"] for r in results if r["network"] == network}):
            value = get("cnn", b, "float32", "vs_torch", network)
            out.append(target(f"{network} b{b} f32 vs PyTorch", value, ">=", TEN_DIGIT_VS_TORCH))
    small, full = scenarios.get("cnn b32 float32", {}), scenarios.get("cnn b64 float32 ten-digit", {})
    name = f"peak RSS, {small.get('images', TARGET_IMAGES):,} images batch 32 f32 (MiB)"
    out.append(target(name, small.get("peak_rss_mib"), "<", TARGET_MIB))
    name = f"peak RSS, {full.get('images', timing.FULL_MNIST):,} images ten-digit batch 64 f32 (MiB)"
    out.append(target(name, full.get("peak_rss_mib"), "<", FULL_MNIST_MIB))
    if full_data is not None:
        value = full_data.get("torch_over_cnn_time")
        out.append(target("full-data recipe: PyTorch epoch time / cnn epoch time", value, ">=", 1.0))
    for row in recipe_rows or []:
        value = row["accuracy"][0] if row["accuracy"] else None
        out.append(target(f"test accuracy, {row['recipe']} (seed {row['seeds'][0]})", value, ">=", row["goal"]))
    return out


def run(opts: Options, log=print) -> dict:
    """The whole benchmark in this process (memory, numerics modes and recipes in child processes)."""
    threads = opts.threads or machine.numpy_blas_threads()
    limited = machine.limit_threads(threads, 1)
    use_torch = opts.torch and trainers.torch_available()
    started = time.time()
    info = machine.machine_info() | {"threads": threads, "thread_limits_applied": limited}
    if use_torch:
        import torch

        torch.set_num_threads(threads)
        info["torch_threads"] = torch.get_num_threads()
    else:
        info["torch"] = "not installed" if opts.torch else "left out (--no-torch)"
    absent = "" if use_torch or not opts.torch else " (no PyTorch rows; to compare: pip install -e '.[bench]')"
    log(f"BLAS threads: {threads}; numerics: {info['numerics']}; PyTorch: {info['torch']}{absent}")
    n = 1024 if opts.quick else 2048
    gemm = {d: machine.gemm_gflops(d, n) for d in ("float32", "float64")}
    flops = machine.flops_per_sample()
    log(f"GEMM {n}x{n}: {gemm['float32']:.0f} GFLOP/s f32, {gemm['float64']:.0f} f64")

    variants = trainers.variants(torch=use_torch)
    results = timing.time_variants(variants, opts.rounds, opts.seconds, opts.quick, threads, log)
    out = {"machine": info, "options": {"rounds": opts.rounds, "seconds": opts.seconds, "quick": opts.quick}}
    if opts.modes:
        log("  canonical vs native numerics (two child processes)")
        mine = [v for v in variants if v.impl == "cnn"]
        out["numerics_modes"] = children.modes(mine, threads, opts.rounds, opts.seconds, opts.quick, log)
    gemm = {d: max(rate, machine.gemm_gflops(d, n)) for d, rate in gemm.items()}  # peak: the better of two
    timing.add_ratios(results, flops, gemm)
    out |= {"gemm_gflops": gemm, "gemm_size": n, "flops": flops}
    out["compute_limit_samples_per_s"] = {d: gemm[d] * 1e9 / flops["per_sample"] for d in gemm}
    out["batch1_budget"] = timing.batch1_budget(results, opts.quick)
    out["memory"] = memory(results, use_torch, opts.quick, threads, log) if opts.memory else {}
    out["variants"] = results
    if opts.extras:
        log("  full-data recipe (60,000 images)")
        out["full_data_recipe"] = timing.full_data_recipe(threads, opts.quick, use_torch, log)
        log("  scaling with the number of images, depth and width")
        out["scaling"] = timing.scaling(threads, opts.quick)
        out["architectures"] = timing.architectures(threads, opts.quick, use_torch, log)
        log("  profiling cnn steps")
        cases = [("notebook", b, d) for b in (1, 128) for d in ("float64", "float32")]
        cases += [(network, b, "float32") for network in networks.TEN_DIGIT_NETWORKS for b in (16, 64)]
        out["profile"] = [timing.profile_step(net, b, d, 200 if b == 1 else 30) for net, b, d in cases]
    if opts.recipes:
        log(f"  recipes through the pipeline's commands (seeds {list(opts.seeds)})")
        out["recipes"] = [commands.run_recipe(recipe, opts.seeds, log=log) for recipe in commands.RECIPES]
    out["targets"] = targets(results, out["memory"], out.get("recipes"), out.get("full_data_recipe"))
    out["machine"]["loadavg_1min_end"] = os.getloadavg()[0]
    out["elapsed_seconds"] = time.time() - started
    return out
