"""The side-by-side benchmark: interleaved timing of every variant, ratios, GEMM-limit fractions, peak memory,
scaling, accuracy and the issue's targets; -> one JSON-able dict (format_report prints it as tables)."""

import dataclasses
import gc
import resource
import statistics
import time
from dataclasses import dataclass

from benchmarks import accuracy as accuracy_check
from benchmarks import budget, memory, modes, networks, runners, stats, system

TARGET_IMAGES = 12_665  # the full MNIST 0/1 training set
TARGET_MIB = 500
FULL_MNIST = 60_000  # the full MNIST training set, all ten digits
FULL_MNIST_MIB = 1024
TEN_DIGIT_VS_TORCH = 1.2
BATCH1_SPREAD = 0.15
RECIPE = runners.Variant("cnn", 16, "float32", "ten-digit")  # README: full MNIST, ten-digit network, batch 16, Adam
RECIPE_EPOCHS = 5


@dataclass
class Options:
    rounds: int = 5
    seconds: float = 0.4  # wall time of one measurement of one variant
    quick: bool = False
    torch: bool = True
    threads: int | None = None  # None: numpy's current BLAS threads
    scipy_threads: int = 1
    notebook_max_samples: int = 400
    accuracy_seeds: tuple[int, ...] = (0, 1, 2)
    memory: bool = True
    extras: bool = True  # full-data recipe, scaling, profile (off with --quick)
    accuracy: bool = True
    modes: bool = True  # canonical vs native numerics, in two child processes


def time_variants(variant_list: list[runners.Variant], opts: Options, threads: int, log=print) -> list[dict]:
    """Round-robin over the variants for opts.rounds rounds (each round starts one variant later); each
    measurement follows an untimed lead-in of its own variant."""
    images: dict = {}
    active = []
    for v in variant_list:
        runner = runners.make_runner(v, threads, images)
        samples = runners.calibrate(runner, opts.seconds, opts.quick, opts.notebook_max_samples)
        runner.prepare(samples)
        active.append((v, runner, samples, {"samples_per_s": [], "other_cores": []}))
        log(f"  calibrated {v.name}: {samples} samples ({samples // v.batch_size} steps) per measurement")
    for r in range(opts.rounds):
        shift = r % len(active)
        for _, runner, samples, rec in active[shift:] + active[:shift]:
            gc.collect()
            runner.lead_in(samples)
            with system.LoadMeter() as load:
                seconds = runner.run(samples)
            rec["samples_per_s"].append(samples / seconds)
            rec["other_cores"].append(load.other_cores)
        log(f"  round {r + 1}/{opts.rounds} done")
    results = []
    for v, _, samples, rec in active:
        rates = rec["samples_per_s"]
        other = [c for c in rec["other_cores"] if c is not None]
        results.append(
            {
                "name": v.name,
                "impl": v.impl,
                "network": v.network,
                "batch_size": v.batch_size,
                "dtype": v.dtype,
                "samples_per_measurement": samples,
                "samples_per_s": statistics.median(rates),
                "samples_per_s_all": rates,
                "spread": stats.spread(rates),
                "other_cores_median": statistics.median(other) if other else None,
            }
        )
    return results


def paired_ratio(a: dict, b: dict) -> float:
    """a's speed over b's (result rows): stats.median_ratio of their rounds; the ratio of the medians when
    per-round rates are missing (hand-made tables)."""
    rates_a, rates_b = a.get("samples_per_s_all"), b.get("samples_per_s_all")
    if rates_a and rates_b and len(rates_a) == len(rates_b):
        return stats.median_ratio(rates_a, rates_b)
    return a["samples_per_s"] / b["samples_per_s"]


def add_ratios(results: list[dict], flops: dict, gemm: dict) -> None:
    """vs_notebook = paired_ratio(this, the notebook); vs_torch = paired_ratio(this, PyTorch for the same
    network, batch size and dtype) (None when absent); gemm_fraction (notebook network only) = samples/s x FLOPs
    per sample / the same dtype's large-GEMM rate."""
    by_key = stats.by_variant(results)
    notebook = by_key.get(("notebook", "notebook", 1, "float64"))
    for r in results:
        network = r["network"]
        torch = by_key.get(("torch", network, r["batch_size"], r["dtype"]))
        r["vs_notebook"] = paired_ratio(r, notebook) if notebook and network == "notebook" else None
        r["vs_torch"] = paired_ratio(r, torch) if torch and r["impl"] != "torch" else None
        rate = gemm[r["dtype"]] * 1e9
        r["gemm_fraction"] = r["samples_per_s"] * flops["per_sample"] / rate if network == "notebook" else None


def add_memory(results: list[dict], opts: Options, threads: int, log=print) -> dict:
    """Peak RSS per variant (a child process each), the issue's 12,665-image batch-32 scenario and the full
    MNIST's 60,000 images with the ten-digit network at batch 64."""
    for r in results:
        images = max(8, 3 * r["batch_size"]) if opts.quick else max(200, 20 * r["batch_size"])
        res = memory.measure(r["impl"], r["batch_size"], r["dtype"], images, threads, r["network"])
        r["peak_rss_mib"], r["memory"] = res.get("peak_rss_mib"), res
        if "error" in res:
            log(f"  {res['error']}")
    impls = ["cnn"] + (["torch"] if opts.torch and not opts.quick else [])
    full = 2 * 64 if opts.quick else FULL_MNIST
    target = {}
    for impl in impls:
        log(f"  memory: {impl} training {TARGET_IMAGES:,} images at batch 32 float32")
        target[f"{impl} b32 float32"] = memory.measure(impl, 32, "float32", TARGET_IMAGES, threads)
        log(f"  memory: {impl} training {full:,} images, ten-digit network, batch 64 float32")
        target[f"{impl} b64 float32 ten-digit"] = memory.measure(impl, 64, "float32", full, threads, "ten-digit")
    return target


def scaling(threads: int, quick: bool) -> list[dict]:
    """Seconds for one pass over n images (best of 3; of 2 for the ten-digit network): cost is linear in n at
    a fixed batch size."""
    rows = []
    cases = [(runners.Variant("cnn", 1, "float64"), (100, 400) if quick else (250, 1000, 4000), 3)]
    cases.append((runners.Variant("cnn", 32, "float32"), (100, 400) if quick else (250, 1000, 4000), 3))
    cases.append((RECIPE, (64, 256) if quick else (1000, 4000, 16000), 2))
    for variant, sizes, repeats in cases:
        runner = runners.make_runner(variant, threads)
        runner.run(variant.batch_size)
        for n in sizes:
            best = min(runner.run(n) for _ in range(repeats))
            rows.append(
                {
                    "network": variant.network,
                    "batch_size": variant.batch_size,
                    "dtype": variant.dtype,
                    "images": n,
                    "seconds": best,
                    "us_per_image": best / n * 1e6,
                }
            )
    return rows


def architectures(threads: int, quick: bool, use_torch: bool, log=print) -> list[dict]:
    """samples/s of cnn and (if installed) PyTorch at batch 64 float32 for networks of growing depth and
    width around the README's ten-digit network (one pass over 2,048 images, best of 2, interleaved)."""
    images, rows, cache = (128 if quick else 2048), [], {}
    impls = ("cnn", "torch") if use_torch else ("cnn",)
    for network in networks.ARCHITECTURES:
        trainers = {
            impl: runners.make_runner(runners.Variant(impl, 64, "float32", network.key), threads, cache, network)
            for impl in impls
        }
        rates: dict[str, list[float]] = {impl: [] for impl in impls}
        for runner in trainers.values():
            runner.run(64)
        for _ in range(2):
            for impl, runner in trainers.items():
                rates[impl].append(images / runner.run(images))
        row = {"network": network.key, "parameters": network.parameter_count()}
        row.update({f"{impl}_samples_per_s": max(r) for impl, r in rates.items()})
        row["vs_torch"] = row["cnn_samples_per_s"] / row["torch_samples_per_s"] if "torch" in impls else None
        rows.append(row)
        log(f"  architecture {network.key}: {row['cnn_samples_per_s']:,.0f} samples/s")
    return rows


def full_data_recipe(threads: int, quick: bool, use_torch: bool, log=print) -> dict:
    """The README's full-MNIST recipe (RECIPE: ten-digit network, batch 16, Adam, float32): seconds per epoch
    over 60,000 images (the sample's 4,000 tiled), cnn and PyTorch alternating, best of 2 epochs each."""
    images = 512 if quick else FULL_MNIST
    impls = ("cnn", "torch") if use_torch else ("cnn",)
    trainers = {impl: runners.make_runner(dataclasses.replace(RECIPE, impl=impl), threads) for impl in impls}
    seconds: dict[str, list[float]] = {impl: [] for impl in impls}
    for runner in trainers.values():
        runner.prepare(images)
        runner.run(RECIPE.batch_size)
    faults = {impl: [] for impl in impls}
    for r in range(2):
        for impl, runner in trainers.items():
            before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
            seconds[impl].append(runner.run(images))
            faults[impl].append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
            log(f"  full-data recipe: {impl} epoch {r + 1}: {seconds[impl][-1]:.1f} s")
    out = {
        "images": images,
        "epochs": RECIPE_EPOCHS,
        "batch_size": RECIPE.batch_size,
        "dtype": RECIPE.dtype,
        "network": RECIPE.network,
    }
    for impl in impls:
        best = min(seconds[impl])
        out[impl] = {"seconds_per_epoch": best, "all": seconds[impl], "samples_per_s": images / best}
        out[impl]["recipe_seconds"] = best * RECIPE_EPOCHS
        out[impl]["minor_faults_per_step"] = min(faults[impl]) / (images / RECIPE.batch_size)
    out["torch_over_cnn_time"] = (
        out["torch"]["seconds_per_epoch"] / out["cnn"]["seconds_per_epoch"] if use_torch else None
    )
    return out


def targets(
    results: list[dict],
    memory_target: dict,
    accuracy: list[dict] | None,
    recipe: dict | None = None,
    ten_digit_accuracy: dict | None = None,
) -> list[dict]:
    """The issues' targets with the measured value, the goal and whether it is met (None: not measured)."""
    by_key = stats.by_variant(results)

    def get(impl, b, dtype, field, network="notebook"):
        r = by_key.get((impl, network, b, dtype))
        return None if r is None else r.get(field)

    rows = [
        ("batch 1 f32 vs notebook", get("cnn", 1, "float32", "vs_notebook"), ">=", budget.BATCH1_GOALS["float32"]),
        ("batch 1 f64 vs notebook", get("cnn", 1, "float64", "vs_notebook"), ">=", budget.BATCH1_GOALS["float64"]),
        ("batch 1 f32 spread between rounds", get("cnn", 1, "float32", "spread"), "<=", BATCH1_SPREAD),
        ("batch 1 f64 spread between rounds", get("cnn", 1, "float64", "spread"), "<=", BATCH1_SPREAD),
        ("batch 32 f32 vs PyTorch", get("cnn", 32, "float32", "vs_torch"), ">=", 1.5),
        ("batch 128 f32 vs PyTorch", get("cnn", 128, "float32", "vs_torch"), ">=", 1.2),
        ("batch 128 f32 fraction of GEMM limit", get("cnn", 128, "float32", "gemm_fraction"), ">=", 0.35),
    ]
    for network in runners.TEN_DIGIT_NETWORKS:
        for b in sorted({r["batch_size"] for r in results if r["network"] == network}):
            value = get("cnn", b, "float32", "vs_torch", network)
            rows.append((f"{network} b{b} f32 vs PyTorch", value, ">=", TEN_DIGIT_VS_TORCH))
    rows.append(
        (
            f"peak RSS, {TARGET_IMAGES:,} images batch 32 f32 (MiB)",
            memory_target.get("cnn b32 float32", {}).get("peak_rss_mib"),
            "<",
            float(TARGET_MIB),
        )
    )
    full = memory_target.get("cnn b64 float32 ten-digit", {})
    rows.append(
        (
            f"peak RSS, {full.get('images', FULL_MNIST):,} images ten-digit batch 64 f32 (MiB)",
            full.get("peak_rss_mib"),
            "<",
            float(FULL_MNIST_MIB),
        )
    )
    if recipe is not None:
        value = recipe.get("torch_over_cnn_time")
        rows.append(("full-data recipe: PyTorch epoch time / cnn epoch time", value, ">=", 1.0))
    if accuracy is not None:
        for a in accuracy:
            name = (
                f"test accuracy (seed {a['seeds'][0]}), batch {a['batch_size']} {a['dtype']} lr {a['learning_rate']:g}"
                f" {a['epochs']} epochs"
            )
            rows.append((name, a["default_seed_accuracy"], ">=", accuracy_check.THRESHOLD))
    if ten_digit_accuracy is not None:
        a = ten_digit_accuracy
        name = f"test accuracy, README ten-digit configuration on the sample ({a['epochs']} epochs)"
        rows.append((name, a["accuracy"], ">=", accuracy_check.TEN_DIGIT_THRESHOLD))
    return [target_row(*row) for row in rows]


def target_row(name: str, value: float | None, op: str, goal: float) -> dict:
    """One target: met is None when not measured, else whether `value op goal` holds."""
    compare = {">=": lambda v: v >= goal, "<=": lambda v: v <= goal, "<": lambda v: v < goal}[op]
    return {"target": name, "value": value, "goal": f"{op} {goal:g}", "met": None if value is None else compare(value)}


def run(opts: Options, log=print) -> dict:
    """The whole benchmark in this process (memory in child processes); -> the JSON-able result."""
    from benchmarks import profile

    threads = opts.threads or system.numpy_blas_threads()
    limited = system.limit_threads(threads, opts.scipy_threads)
    use_torch = opts.torch and runners.torch_available()
    started = time.time()
    info = system.machine_info()
    info["threads"] = threads
    info["thread_limits_applied"] = limited
    if use_torch:
        import torch

        torch.set_num_threads(threads)
        info["torch"] = torch.__version__
        info["torch_threads"] = torch.get_num_threads()
    else:
        info["torch"] = "not installed" if opts.torch else "skipped (--no-torch)"
    log(f"BLAS threads: {threads}; torch: {info['torch']}")
    n = 1024 if opts.quick else 2048
    gemm = {d: system.gemm_gflops(d, n) for d in ("float32", "float64")}
    flops = system.flops_per_sample()
    log(
        f"GEMM {n}x{n}: {gemm['float32']:.0f} GFLOP/s f32, {gemm['float64']:.0f} f64; "
        f"{flops['per_sample']:,} FLOP/sample"
    )

    results = time_variants(runners.variants(torch=use_torch), opts, threads, log)
    if opts.modes:
        log("  canonical vs native numerics (two child processes)")
        cnn_variants = [v for v in runners.variants(torch=False) if v.impl == "cnn"]
        numerics_modes = modes.compare(cnn_variants, threads, opts.rounds, opts.seconds, opts.quick, log)
    gemm = {d: max(rate, system.gemm_gflops(d, n)) for d, rate in gemm.items()}  # peak: the better of two
    add_ratios(results, flops, gemm)
    batch1_budget = budget.batch1_budget(results, opts.quick)
    memory_target = add_memory(results, opts, threads, log) if opts.memory else {}
    out = {
        "machine": info,
        "options": {"rounds": opts.rounds, "seconds": opts.seconds, "quick": opts.quick},
        "gemm_gflops": gemm,
        "gemm_size": n,
        "flops": flops,
        "compute_limit_samples_per_s": {d: gemm[d] * 1e9 / flops["per_sample"] for d in gemm},
        "variants": results,
        "batch1_budget": batch1_budget,
        "memory_target": memory_target,
    }
    if opts.modes:
        out["numerics_modes"] = numerics_modes
    acc = recipe = ten_digit = None
    if opts.extras:
        log("  full-data recipe (60,000 images)")
        recipe = out["full_data_recipe"] = full_data_recipe(threads, opts.quick, use_torch, log)
        log("  scaling with the number of images, depth and width")
        out["scaling"] = scaling(threads, opts.quick)
        out["architectures"] = architectures(threads, opts.quick, use_torch, log)
        log("  profiling cnn steps")
        cases = [("notebook", b, d) for b in (1, 128) for d in ("float64", "float32")]
        cases += [(network, b, "float32") for network in runners.TEN_DIGIT_NETWORKS for b in (16, 64)]
        out["profile"] = [profile.profile_step(net, b, d, 200 if b == 1 else 30) for net, b, d in cases]
    if opts.accuracy:
        log(f"  accuracy check (seeds {list(opts.accuracy_seeds)})")
        acc = accuracy_check.check(seeds=opts.accuracy_seeds)
        out["accuracy"] = acc
        ten_digit = out["ten_digit_accuracy"] = accuracy_check.ten_digit_check()
    out["targets"] = targets(results, memory_target, acc, recipe, ten_digit)
    out["machine"]["loadavg_1min_end"] = system.machine_info()["loadavg_1min"]
    out["elapsed_seconds"] = time.time() - started
    return out
