"""Paired A/B of cnn.parallel.SplitStep against cnn.step.plain_step on a preset's network, in one process.

    python tools/ab_split.py [--preset best] [--batch 128] [--steps 8] [--rounds 7] [--data train.npz] [--threads N]

Two copies of the preset's network (its layers, init, dtype; Adam) train `steps` batches with each step per
round, the two alternating (benchmarks.timing.alternating); prints the median seconds per step of each and the
median ratio unsplit / split, three ways: by the wall clock; by the CPU-time critical path (the calling thread's
CPU time with each lockstep phase of the split counted as its slower half's: what two idle cores would take,
thread handoffs and shared caches aside, so an upper bound of the gain; other load disturbs it far less than the
wall clock); by the CPU time of all threads (the work the split adds).
--data: an .npz with `images` (N, 1, 28, 28) (e.g. a processed full-MNIST split); by default random images of
that shape (the time of a step does not depend on the pixel values). --threads 1 runs the halves one after the
other: what the split itself costs.
"""

import argparse
import statistics
import sys
import threading
import time
from pathlib import Path

import numpy as np
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import cnn
from benchmarks import timing
from cnn import parallel, threads
from cnn.step import LossGradient, plain_step
from cnn.threads import blas_threads


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="best")
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--data", type=Path)
    parser.add_argument("--threads", type=int, help="cnn.threads.set_num_threads (default: every core)")
    args = parser.parse_args()
    threads.set_num_threads(args.threads)
    root = Path(__file__).resolve().parents[1]
    recipe = yaml.safe_load((root / "presets" / f"{args.preset}.yaml").read_text())["train"]
    dtype = recipe.get("dtype", "float64")
    rng = np.random.default_rng(0)
    if args.data:
        images = np.load(args.data)["images"][: args.batch * args.steps].astype(dtype)
    else:
        images = rng.random((args.batch * args.steps, 1, 28, 28)).astype(dtype)
    targets = cnn.one_hot(rng.integers(0, 10, len(images)), 10, dtype=dtype)

    def network() -> cnn.Sequential:
        net = cnn.Sequential(cnn.build(recipe["layers"], (1, 28, 28), 10), recipe.get("init", "he"), 0, dtype)
        net.set_training(True)
        return net

    nets = {"unsplit": network(), "split": network()}
    steps = {"unsplit": plain_step, "split": parallel.SplitStep(nets["split"])}
    optimizers = {name: cnn.Adam(1e-3) for name in nets}
    loss = LossGradient.for_network(nets["split"], cnn.CategoricalCrossEntropy())
    outputs = np.empty((args.batch, 10), dtype=dtype)

    phases: list[tuple[bool, float]] = []  # (in the calling thread?, CPU seconds) of each resume of a half
    caller, resume = threading.get_ident(), parallel._resume

    def timed_resume(half: parallel.HalfPass, value: object) -> tuple | None:
        start = time.thread_time()
        try:
            return resume(half, value)
        finally:
            phases.append((threading.get_ident() == caller, time.thread_time() - start))

    parallel._resume = timed_resume

    def run(name: str) -> tuple[float, float, float]:
        """(wall seconds, CPU-seconds critical path, CPU seconds of all threads) per step: the critical path is the
        calling thread's CPU time with each lockstep phase counted as the longer of the two halves' (what two idle
        cores would take, handoffs aside); for the unsplit step, its CPU time."""
        phases.clear()
        start, cpu = time.perf_counter(), time.thread_time()
        for i in range(0, len(images), args.batch):
            rows = slice(i, i + args.batch)
            steps[name](nets[name], images[rows], targets[rows], outputs, loss, optimizers[name])
        wall, cpu = time.perf_counter() - start, time.thread_time() - cpu
        if threads.num_threads() < 2:
            pairs = list(zip([t for _, t in phases[0::2]], [t for _, t in phases[1::2]], strict=True))
        else:
            pairs = list(zip(*([t for mine, t in phases if mine == side] for side in (True, False)), strict=True))
        in_caller = sum(t for mine, t in phases if mine)
        elsewhere = sum(t for mine, t in phases if not mine)
        critical = cpu - in_caller + sum(max(pair) for pair in pairs)
        return wall / args.steps, critical / args.steps, (cpu + elsewhere) / args.steps

    print(f"{args.preset}: batch {args.batch}, {dtype}, {args.steps} steps a round, threads {threads.num_threads()}")
    kinds = ("wall clock", "CPU critical path", "CPU of all threads")
    seconds: dict[str, dict[str, list[float]]] = {kind: {name: [] for name in nets} for kind in kinds}

    def measure(name: str, round_: int) -> float:
        for kind, value in zip(kinds, run(name), strict=True):
            seconds[kind][name].append(value)
        return seconds["wall clock"][name][-1]

    with blas_threads():
        for name in nets:
            run(name)  # warm-up: caches, the second thread, Adam's state
        timing.alternating(measure, list(nets), args.rounds)
    for kind, values in seconds.items():
        ratios = [a / b for a, b in zip(values["unsplit"], values["split"], strict=True)]
        print(f"{kind}: s/step unsplit {statistics.median(values['unsplit']):.3f}, split "
              f"{statistics.median(values['split']):.3f}; median ratio unsplit / split "
              f"{timing.median_ratio(values['unsplit'], values['split']):.2f}x (rounds {min(ratios):.2f}-"
              f"{max(ratios):.2f})")  # fmt: skip


if __name__ == "__main__":
    main()
