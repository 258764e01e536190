"""The side-by-side benchmark: interleaved timing of every variant, ratios, GEMM-limit fractions, peak memory,
scaling, accuracy and the issue's targets; -> one JSON-able dict (format_report prints it as tables)."""

import gc
import statistics
import time
from dataclasses import dataclass

from benchmarks import data, memory, runners, system

TARGET_IMAGES = 12_665  # the full MNIST 0/1 training set
TARGET_MIB = 500


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
    extras: bool = True  # scaling, profile and accuracy (off with --quick unless asked for)
    accuracy: bool = True


def calibrate(runner: runners.Runner, opts: Options) -> int:
    """Warm up, then pick the samples per measurement that take about opts.seconds (whole batches)."""
    b = runner.variant.batch_size
    cap = opts.notebook_max_samples if runner.variant.impl == "notebook" else 1 << 20
    runner.run(b)  # warm-up: first-call allocations, BLAS thread start
    if opts.quick:
        return min(5 if b == 1 else 3 * b, cap)
    samples = b
    while True:
        seconds = runner.run(samples)
        if seconds >= opts.seconds / 8 or samples >= cap:
            break
        samples = min(samples * 4, cap)
    seconds = min(seconds, runner.run(samples), runner.run(samples))  # the least disturbed of three
    steps = max(1, round(opts.seconds * samples / max(seconds, 1e-9) / b))
    return min(steps * b, max(cap // b, 1) * b)


def time_variants(variant_list: list[runners.Variant], opts: Options, threads: int, log=print) -> list[dict]:
    """Round-robin over the variants for opts.rounds rounds (each round starts one variant later); each
    measurement follows an untimed lead-in of its own variant."""
    x, labels = data.training_images()
    active = []
    for v in variant_list:
        runner = runners.make_runner(v, x, labels, threads)
        samples = calibrate(runner, opts)
        runner.prepare(samples)
        active.append((v, runner, samples, {"samples_per_s": [], "other_cores": []}))
        log(f"  calibrated {v.name}: {samples} samples ({samples // v.batch_size} steps) per measurement")
    for r in range(opts.rounds):
        shift = r % len(active)
        for v, runner, samples, rec in active[shift:] + active[:shift]:
            gc.collect()
            # untimed lead-in of the same variant (a quarter of a measurement): the previous variant's BLAS or
            # OpenMP workers spin for a while after their last call, and would slow this one's first steps
            runner.run(max(v.batch_size, samples // 4 // v.batch_size * v.batch_size))
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
                "batch_size": v.batch_size,
                "dtype": v.dtype,
                "samples_per_measurement": samples,
                "samples_per_s": statistics.median(rates),
                "samples_per_s_all": rates,
                "other_cores_median": statistics.median(other) if other else None,
            }
        )
    return results


def add_ratios(results: list[dict], flops: dict, gemm: dict) -> None:
    """vs_notebook / vs_torch = this median / the reference's median (None when absent); gemm_fraction =
    samples/s x FLOPs per sample / the same dtype's large-GEMM rate."""
    by_key = {(r["impl"], r["batch_size"], r["dtype"]): r for r in results}
    notebook = by_key.get(("notebook", 1, "float64"))
    for r in results:
        torch = by_key.get(("torch", r["batch_size"], r["dtype"]))
        r["vs_notebook"] = r["samples_per_s"] / notebook["samples_per_s"] if notebook else None
        r["vs_torch"] = r["samples_per_s"] / torch["samples_per_s"] if torch and r["impl"] != "torch" else None
        rate = gemm[r["dtype"]] * 1e9
        r["gemm_fraction"] = r["samples_per_s"] * flops["per_sample"] / rate


def add_memory(results: list[dict], opts: Options, threads: int, log=print) -> dict:
    """Peak RSS per variant (a child process each) and the issue's 12,665-image batch-32 scenario."""
    for r in results:
        images = max(8, 3 * r["batch_size"]) if opts.quick else max(200, 20 * r["batch_size"])
        res = memory.measure(r["impl"], r["batch_size"], r["dtype"], images, threads)
        r["peak_rss_mib"], r["memory"] = res.get("peak_rss_mib"), res
        if "error" in res:
            log(f"  {res['error']}")
    scenarios = [("cnn", "float32")] + ([("torch", "float32")] if opts.torch and not opts.quick else [])
    target = {}
    for impl, dtype in scenarios:
        log(f"  memory: {impl} training {TARGET_IMAGES:,} images at batch 32 {dtype}")
        target[f"{impl} b32 {dtype}"] = memory.measure(impl, 32, dtype, TARGET_IMAGES, threads)
    return target


def scaling(threads: int, quick: bool) -> list[dict]:
    """Seconds for one pass over n images (best of 3): cost is linear in n at a fixed batch size."""
    x, labels = data.training_images()
    sizes = (100, 400) if quick else (250, 1000, 4000)
    rows = []
    for batch_size, dtype in ((1, "float64"), (32, "float32")):
        runner = runners.make_runner(runners.Variant("cnn", batch_size, dtype), x, labels, threads)
        runner.run(batch_size)
        for n in sizes:
            best = min(runner.run(n) for _ in range(3))
            rows.append(
                {"batch_size": batch_size, "dtype": dtype, "images": n, "seconds": best, "us_per_image": best / n * 1e6}
            )
    return rows


def targets(results: list[dict], memory_target: dict, accuracy: list[dict] | None) -> list[dict]:
    """The issue's targets with the measured value, the goal and whether it is met (None: not measured)."""
    by_key = {(r["impl"], r["batch_size"], r["dtype"]): r for r in results}

    def get(impl, b, dtype, field):
        r = by_key.get((impl, b, dtype))
        return None if r is None else r.get(field)

    rows = [
        ("batch 1 f32 vs notebook", get("cnn", 1, "float32", "vs_notebook"), ">=", 8.0),
        ("batch 1 f64 vs notebook", get("cnn", 1, "float64", "vs_notebook"), ">=", 4.0),
        ("batch 32 f32 vs PyTorch", get("cnn", 32, "float32", "vs_torch"), ">=", 1.5),
        ("batch 128 f32 vs PyTorch", get("cnn", 128, "float32", "vs_torch"), ">=", 1.2),
        ("batch 128 f32 fraction of GEMM limit", get("cnn", 128, "float32", "gemm_fraction"), ">=", 0.35),
        (
            f"peak RSS, {TARGET_IMAGES:,} images batch 32 f32 (MiB)",
            memory_target.get("cnn b32 float32", {}).get("peak_rss_mib"),
            "<",
            float(TARGET_MIB),
        ),
    ]
    if accuracy is not None:
        for a in accuracy:
            name = (
                f"test accuracy (seed {a['seeds'][0]}), batch {a['batch_size']} {a['dtype']} lr {a['learning_rate']:g}"
                f" {a['epochs']} epochs"
            )
            rows.append((name, a["default_seed_accuracy"], ">=", 0.99))
    out = []
    for name, value, op, goal in rows:
        met = None if value is None else (value >= goal if op == ">=" else value < goal)
        out.append({"target": name, "value": value, "goal": f"{op} {goal:g}", "met": met})
    return out


def run(opts: Options, log=print) -> dict:
    """The whole benchmark in this process (memory in child processes); -> the JSON-able result."""
    from benchmarks import accuracy as accuracy_check
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
    gemm = {d: max(rate, system.gemm_gflops(d, n)) for d, rate in gemm.items()}  # peak: the better of two
    add_ratios(results, flops, gemm)
    memory_target = add_memory(results, opts, threads, log) if opts.memory else {}
    out = {
        "machine": info,
        "options": {"rounds": opts.rounds, "seconds": opts.seconds, "quick": opts.quick},
        "gemm_gflops": gemm,
        "gemm_size": n,
        "flops": flops,
        "compute_limit_samples_per_s": {d: gemm[d] * 1e9 / flops["per_sample"] for d in gemm},
        "variants": results,
        "memory_target": memory_target,
    }
    acc = None
    if opts.extras:
        log("  scaling with the number of images")
        out["scaling"] = scaling(threads, opts.quick)
        log("  profiling cnn steps")
        out["profile"] = [
            profile.profile_step(b, d, 200 if b == 1 else 30) for b in (1, 128) for d in ("float64", "float32")
        ]
    if opts.accuracy:
        log(f"  accuracy check (seeds {list(opts.accuracy_seeds)})")
        acc = accuracy_check.check(seeds=opts.accuracy_seeds)
        out["accuracy"] = acc
    out["targets"] = targets(results, memory_target, acc)
    out["machine"]["loadavg_1min_end"] = system.machine_info()["loadavg_1min"]
    out["elapsed_seconds"] = time.time() - started
    return out
