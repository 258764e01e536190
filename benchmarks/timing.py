"""The timed measurements of one process: every variant in interleaved rounds and the ratios between them, the
batch-1 budget, cost against the number of images, depth and width, an epoch of the full-data recipe, where a
training step's time goes (profile_step), the cost of train's per-batch hook (batch_hook), and cnn's split step
against the unsplit one (split_ab)."""

import dataclasses
import gc
import platform
import resource
import statistics
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

import numpy as np

import cnn
from benchmarks import PARAMS, machine, networks, trainers
from cnn import blas, fast, kernels, parallel, threads, training
from cnn import step as cnn_step
from pipeline import numerics

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


def alternating(measure: Callable[[str, int], float], names: list[str], rounds: int) -> dict[str, list[float]]:
    """measure(name, round) for every name in every round, in order in even rounds and in reverse in odd ones, so
    that a machine drifting within a round weighs on both ends alike; -> the values by name, round by round."""
    values: dict[str, list[float]] = {name: [] for name in names}
    for round_ in range(rounds):
        for name in names if round_ % 2 == 0 else names[::-1]:
            values[name].append(measure(name, round_))
    return values


def summary(values: dict[str, list[float]], base: str, seconds: bool = False) -> list[dict[str, Any]]:
    """Per name of `alternating`'s values: them ("all"), their median and spread, and the speed over base's
    ("ratio"), the median over rounds of the ratio within a round (of rates; of base's seconds over these)."""
    return [
        {
            "name": name,
            "all": v,
            "median": statistics.median(v),
            "spread": spread(v),
            "ratio": median_ratio(values[base], v) if seconds else median_ratio(v, values[base]),
        }
        for name, v in values.items()
    ]


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


def add_ratios(results: list[dict], flops: dict, gemm: dict) -> None:
    """vs_notebook = median_ratio of this row's rounds and the notebook's; vs_torch = the same against PyTorch for
    the same network, batch size and dtype (None when absent); gemm_fraction (notebook network only) = samples/s x FLOPs
    per sample / the same dtype's large-GEMM rate."""
    rows = by_variant(results)
    notebook = rows.get(("notebook", "notebook", 1, "float64"))
    for r in results:
        network = r["network"]
        torch = rows.get(("torch", network, r["batch_size"], r["dtype"]))
        rates = r["samples_per_s_all"]
        r["vs_notebook"] = (
            median_ratio(rates, notebook["samples_per_s_all"]) if notebook and network == "notebook" else None
        )
        r["vs_torch"] = median_ratio(rates, torch["samples_per_s_all"]) if torch and r["impl"] != "torch" else None
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


def profile_step(network: str, batch_size: int, dtype: str, steps: int, warmup: int = 3) -> dict:
    """Where a training step's time goes: cnn's step timed call by call on one thread, the mean microseconds per
    step of each call (batch indexing, every layer's forward and backward, the loss gradient where backward starts
    and the optimizer's updates; fit evaluates the loss once per epoch, not per step), with the minor page faults
    per step (fresh memory the allocator had to map). The step is the one fit runs on one thread: the batch-1 SGD
    step (cnn.fast.rank1_sgd_step) where it applies, else the plain step (cnn.step.plain_step; from 64 samples on
    fit splits it over two threads, cnn.parallel).
    -> {"network", "step", "batch_size", "dtype", "steps", "rows": [(call, us)], "total_us",
    "minor_faults_per_step"}."""
    spec = networks.NETWORKS[network]
    net, loss, optimizer = spec.build(dtype, trainers.SEED)
    loss_gradient = cnn_step.LossGradient.for_network(net, loss)
    x0, labels = networks.training_images(spec.digits)
    n = (steps + warmup) * batch_size
    x, y = networks.tile(x0.astype(dtype), n), networks.tile(cnn.one_hot(labels, spec.n_classes, dtype), n)
    order = np.random.default_rng(0).permutation(n)
    names = [f"{i} {type(layer).__name__}" for i, layer in enumerate(net.layers)]
    rank1 = training.choose_step(net, optimizer, batch_size) is fast.rank1_sgd_step
    totals: dict[str, float] = defaultdict(float)

    def timed(key: str, fn, *args):
        start = time.perf_counter()
        out = fn(*args)
        totals[key] += time.perf_counter() - start
        return out

    with threads.blas_threads():
        for step in range(steps + warmup):
            if step == warmup:
                totals.clear()
                faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
            idx = order[step * batch_size : (step + 1) * batch_size]
            xb, yb = timed("index batch", lambda i: (x[i], y[i]), idx)
            out = xb
            for name, layer in zip(names, net.layers, strict=True):
                out = timed(f"{name} forward", layer.forward, out)
            grad, start = timed("loss gradient", loss_gradient.start, net, out, yb, batch_size)
            if rank1:  # as fast.rank1_sgd_step runs it
                position = {id(layer): i for i, layer in enumerate(net.param_layers)}
                optimizer.begin_step()
                for name, layer in zip(names[start::-1], net.layers[start::-1], strict=True):
                    grad, factors = timed(f"{name} backward", layer.backward_rank1, grad)
                    for key, param in layer.params.items():
                        state_key = (position[id(layer)], key)
                        if key in factors:
                            timed(
                                f"{name} rank-1 {key} update", optimizer.update_outer, state_key, param, *factors[key]
                            )
                        else:
                            timed(f"{name} {key} update", optimizer.update, state_key, param, layer.grads[key])
                continue
            for name, layer in zip(names[start::-1], net.layers[start::-1], strict=True):
                grad = timed(f"{name} backward", layer.backward, grad)
            timed(f"{type(optimizer).__name__} step", optimizer.step, net.param_layers)
        faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults
    rows = [(key, seconds / steps * 1e6) for key, seconds in totals.items()]
    return {
        "network": network,
        "step": "rank1_sgd_step" if rank1 else "plain_step",
        "batch_size": batch_size,
        "dtype": dtype,
        "steps": steps,
        "rows": rows,
        "total_us": sum(r[1] for r in rows),
        "minor_faults_per_step": faults / steps,
    }


def batch_hook(rounds: int, epochs: int) -> dict[str, Any]:
    """The cost of train's per-batch hook (pipeline.train.BatchWatch, as a run with a checkpoint file installs it)
    on the default network at batch 1, the case with the most steps per second, trained on the images the default
    params select from the shipped sample (data/processed/train.npz's, read from data/sample): `epochs` epochs of
    fit without the hook and with it, alternating in `rounds` rounds; then the hook alone, called 200,000 times.
    -> {"epochs", "images", "rounds", "rows": summary of the steps/s against no hook, "us_per_call",
    "share_of_step"}."""
    from pipeline import params, train

    data, config = params.section(PARAMS, "data"), params.section(PARAMS, "train")
    x, labels = networks.training_images(data.digits, data.limit_per_class, data.seed)
    y = cnn.one_hot(labels, len(data.digits))
    variants = {
        "no hook": lambda: None,
        "BatchWatch, no checkpoint due": lambda: train.BatchWatch(lambda state: None, None, 300.0),
        "BatchWatch and live line": lambda: train.BatchWatch(lambda state: None, lambda *a: None, 300.0),
    }

    def steps_per_s(name: str, round_: int) -> float:
        net = train.build_network(config, x.shape[1:], list(data.digits))
        options = {"epochs": epochs, "batch_size": 1, "seed": 0, "on_batch_end": variants[name]()}
        start = time.perf_counter()
        net.fit(x, y, cnn.LOSSES[config.loss](), train.make_optimizer(config), **options)
        return epochs * len(y) / (time.perf_counter() - start)

    rates = alternating(steps_per_s, list(variants), rounds)
    progress = cnn.BatchProgress(200, 1, lambda: None)
    watch, calls = train.BatchWatch(lambda state: None, None, 300.0), 200_000
    start = time.perf_counter()
    for _ in range(calls):
        progress.batch += 1
        watch(progress)
    per_call = (time.perf_counter() - start) / calls
    share = per_call * statistics.median(rates["no hook"])
    return {
        "epochs": epochs,
        "images": len(y),
        "rounds": rounds,
        "rows": summary(rates, "no hook"),
        "us_per_call": per_call * 1e6,
        "share_of_step": share,
    }


SPLIT_STEPS = 8  # training steps of each variant per round of split_ab
SPLIT_MEASURES = ("wall clock", "CPU critical path", "CPU of all threads")
# the split step with its update in two parts on two threads, with the whole update in the calling thread, and with
# the layers' numpy formulation instead of cnn.kernels (MaxPool, ReLU backward)
SPLIT_VARIANTS = ("unsplit", "split", "whole update", "numpy layers")


@contextmanager
def half_phases() -> Iterator[list[tuple[bool, float]]]:
    """While the block runs, every resume of a half of cnn.parallel.SplitStep (a lockstep phase: up to the next
    batch-coupling layer, or the end) and every part of its update in two threads (SplitStep.sum_and_update, the
    last phase) appends (ran in the calling thread?, its thread CPU seconds) to the list."""
    phases: list[tuple[bool, float]] = []
    caller, resume, sum_and_update = threading.get_ident(), parallel._resume, parallel.SplitStep.sum_and_update

    def timed(work: Callable[..., Any]) -> Callable[..., Any]:
        def run(*args: Any) -> Any:
            start = time.thread_time()
            try:
                return work(*args)
            finally:
                phases.append((threading.get_ident() == caller, time.thread_time() - start))

        return run

    parallel._resume, parallel.SplitStep.sum_and_update = timed(resume), timed(sum_and_update)
    try:
        yield phases
    finally:
        parallel._resume, parallel.SplitStep.sum_and_update = resume, sum_and_update


def split_ab(preset: str, rounds: int, steps: int = SPLIT_STEPS, train_npz: Path | None = None) -> dict[str, Any]:
    """cnn.parallel.SplitStep against cnn.step.plain_step on preset's network (its layers, init, seed 0, dtype,
    optimizer; the pipeline's train.build_network and make_optimizer) at its batch size, in training mode; and the
    split step with its whole update in the calling thread ("whole update": what updating a large parameter in two
    parts on two threads gains); and the split step with cnn.kernels switched off ("numpy layers": what the compiled
    MaxPool, ReLU backward and BatchNorm gain). Four copies train `steps` batches with each step per round, alternating
    (`alternating`), after an untimed round each.
    Images: the shipped sample's training images of all ten digits (data/sample), or those of `train_npz` (a
    processed split, pipeline.dataset), tiled to batch x steps. Seconds per step three ways:
    - wall clock;
    - CPU critical path: the calling thread's CPU time with each lockstep phase of the split counted as its slower
      half's (what two idle cores would take, thread handoffs and shared caches aside: an upper bound of the gain;
      other load disturbs it far less than the wall clock); for the unsplit step, its CPU time;
    - CPU of all threads: the work the split adds.
    With one cnn thread (cnn.threads) the halves run one after the other: what the split itself costs.
    -> {"preset", "batch_size", "dtype", "steps", "rounds", "threads", "images", "kernel", "numerics",
    "other_cores", "rows": per measure {"measure", "unsplit", "split", "whole_update" (medians, s/step),
    "unsplit_all", "split_all", "whole_update_all", "numpy_layers", "numpy_layers_all", "ratio" (median over rounds of
    unsplit / split), "ratio_min", "ratio_max", "update_ratio" (median over rounds of whole update / split),
    "kernels_ratio" (median over rounds of numpy layers / split)}}. Raises
    pipeline.errors.UserError for a preset or train_npz that cannot be used."""
    from pipeline import dataset, params, train
    from pipeline.errors import UserError

    config = params.check_section(PARAMS, "train", {"train": {"seed": 0, "preset": preset}})
    batch = config.batch_size
    if batch < parallel.SPLIT_FROM:
        raise UserError(
            f"preset {preset} trains at batch {batch}: fit splits batches of {parallel.SPLIT_FROM} or more; "
            "choose another preset"
        )
    if train_npz is None:
        x, labels = networks.training_images(tuple(range(10)))
        classes, source = list(range(10)), f"{len(x):,} training images of the sample (data/sample)"
    else:
        split = dataset.load(train_npz)
        x, labels, classes = split.images, split.class_index, split.classes.tolist()
        source = f"{len(x):,} images of {train_npz}"
    n = batch * steps
    images = networks.tile(x.astype(config.dtype), n)
    targets = networks.tile(cnn.one_hot(labels, len(classes), dtype=config.dtype), n)
    nets = {name: train.build_network(config, images.shape[1:], classes) for name in SPLIT_VARIANTS}
    for net in nets.values():
        net.set_training(True)
    steps_of = {name: parallel.SplitStep(net) for name, net in nets.items()} | {"unsplit": cnn_step.plain_step}
    optimizers = {name: train.make_optimizer(config) for name in nets}
    optimizers["whole update"].ELEMENTWISE = False  # the split step then sums and updates in the calling thread
    loss = cnn_step.LossGradient.for_network(nets["split"], cnn.LOSSES[config.loss]())
    outputs = np.empty((batch, len(classes)), dtype=config.dtype)
    seconds: dict[str, dict[str, list[float]]] = {measure: {name: [] for name in nets} for measure in SPLIT_MEASURES}

    def run(name: str) -> tuple[float, float, float]:
        phases.clear()
        start, cpu = time.perf_counter(), time.thread_time()
        with kernels.disabled() if name == "numpy layers" else nullcontext():
            for i in range(0, n, batch):
                rows = slice(i, i + batch)
                steps_of[name](nets[name], images[rows], targets[rows], outputs, loss, optimizers[name])
        wall, cpu = time.perf_counter() - start, time.thread_time() - cpu
        if threads.num_threads() < 2:  # the halves in turn in this thread: first, second, first, second...
            pairs = zip([t for _, t in phases[0::2]], [t for _, t in phases[1::2]], strict=True)
        else:
            pairs = zip(*([t for mine, t in phases if mine == side] for side in (True, False)), strict=True)
        in_caller = sum(t for mine, t in phases if mine)
        elsewhere = sum(t for mine, t in phases if not mine)
        critical = cpu - in_caller + sum(max(pair) for pair in pairs)
        return wall / steps, critical / steps, (cpu + elsewhere) / steps

    def measure(name: str, round_: int) -> float:
        for kind, value in zip(SPLIT_MEASURES, run(name), strict=True):
            seconds[kind][name].append(value)
        return seconds["wall clock"][name][-1]

    with threads.blas_threads(), half_phases() as phases:
        for name in nets:
            run(name)  # warm-up: caches, the second thread, the optimizer's state
        with machine.LoadMeter() as load:
            alternating(measure, list(nets), rounds)
    rows = []
    for kind, values in seconds.items():
        ratios = [a / b for a, b in zip(values["unsplit"], values["split"], strict=True)]
        rows.append(
            {
                "measure": kind,
                "unsplit": statistics.median(values["unsplit"]),
                "split": statistics.median(values["split"]),
                "whole_update": statistics.median(values["whole update"]),
                "unsplit_all": values["unsplit"],
                "split_all": values["split"],
                "whole_update_all": values["whole update"],
                "numpy_layers": statistics.median(values["numpy layers"]),
                "numpy_layers_all": values["numpy layers"],
                "ratio": median_ratio(values["unsplit"], values["split"]),
                "ratio_min": min(ratios),
                "ratio_max": max(ratios),
                "update_ratio": median_ratio(values["whole update"], values["split"]),
                "kernels_ratio": median_ratio(values["numpy layers"], values["split"]),
            }
        )
    return {
        "preset": preset,
        "batch_size": batch,
        "dtype": config.dtype,
        "steps": steps,
        "rounds": rounds,
        "threads": threads.num_threads(),
        "images": source,
        "kernel": platform.release(),
        "numerics": numerics.CURRENT.mode,
        "other_cores": load.other_cores,
        "rows": rows,
    }
