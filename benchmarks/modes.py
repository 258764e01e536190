"""Canonical and native numerics side by side (pipeline.numerics): cnn's variants timed in two child
processes, one per mode, since the mode is fixed before numpy loads; the rounds alternate between the two
children (only one computes at a time), so both see the same machine.

canonical: what every pipeline command runs (OpenBLAS Haswell kernels, numpy's dispatch up to AVX2).
native: MNIST_CNN_NUMERICS=native with OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE removed, i.e. the kernels
OpenBLAS and numpy pick for this CPU.

Child: python -m benchmarks.modes --mode canonical --threads 2 --seconds 0.4 --variants '[["cnn", 1, "float64",
"notebook"]]'
It prints one JSON line when calibrated, then times every variant once per line read from stdin and answers
with one JSON line {variant name: samples/s}.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

from benchmarks import stats
from pipeline import numerics  # imported before numpy: in a child, this pins (or not) the kernels

REPO = Path(__file__).resolve().parent.parent
MODES = ("canonical", "native")


def child_environment(mode: str) -> dict[str, str]:
    env = dict(os.environ)
    if mode == "native":
        env["MNIST_CNN_NUMERICS"] = "native"
        env.pop("OPENBLAS_CORETYPE", None)
        env.pop("OPENBLAS_L2_SIZE", None)
    else:
        env.pop("MNIST_CNN_NUMERICS", None)
    return env


def compare(variants: list, threads: int, rounds: int, seconds: float, quick: bool, log=print) -> dict:
    """Median samples/s of each cnn variant in each mode, and native / canonical per variant."""
    spec = json.dumps([[v.impl, v.batch_size, v.dtype, v.network] for v in variants])
    children = {}
    for mode in MODES:
        cmd = [sys.executable, "-m", "benchmarks.modes", "--mode", mode, "--threads", str(threads)]
        cmd += ["--seconds", str(seconds), "--variants", spec] + (["--quick"] if quick else [])
        children[mode] = subprocess.Popen(
            cmd, cwd=REPO, env=child_environment(mode), stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
    try:
        info = {mode: json.loads(child.stdout.readline()) for mode, child in children.items()}
        rates: dict[str, dict[str, list[float]]] = {mode: {} for mode in MODES}
        for r in range(rounds):
            for mode in MODES[r % 2 :] + MODES[: r % 2]:
                children[mode].stdin.write("round\n")
                children[mode].stdin.flush()
                for name, rate in json.loads(children[mode].stdout.readline()).items():
                    rates[mode].setdefault(name, []).append(rate)
            log(f"  numerics modes: round {r + 1}/{rounds} done")
    finally:
        for child in children.values():
            child.stdin.close()
            child.wait(timeout=60)
    rows = []
    for v in variants:
        median = {mode: statistics.median(rates[mode][v.name]) for mode in MODES}
        rows.append(
            {
                "name": v.name,
                "canonical_samples_per_s": median["canonical"],
                "native_samples_per_s": median["native"],
                "native_over_canonical": stats.median_ratio(rates["native"][v.name], rates["canonical"][v.name]),
                "canonical_all": rates["canonical"][v.name],
                "native_all": rates["native"][v.name],
            }
        )
    return {"modes": info, "variants": rows}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.modes", description=__doc__)
    parser.add_argument("--mode", required=True, choices=MODES)
    parser.add_argument("--threads", type=int, required=True)
    parser.add_argument("--seconds", type=float, required=True)
    parser.add_argument("--variants", required=True, help="JSON list of [impl, batch, dtype, network]")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)

    from benchmarks import runners, system

    system.limit_threads(args.threads, 1)
    active, images = [], {}
    for impl, batch, dtype, network in json.loads(args.variants):
        runner = runners.make_runner(runners.Variant(impl, batch, dtype, network), args.threads, images)
        samples = runners.calibrate(runner, args.seconds, args.quick)
        runner.prepare(samples)
        active.append((runner, samples))
    libraries = system.blas_libraries()
    blas = [f"{lib['internal_api']} {lib['architecture']}" for lib in libraries if lib["user_api"] == "blas"]
    print(json.dumps({"mode": numerics.CURRENT.mode, "reason": numerics.CURRENT.reason, "blas": blas}), flush=True)
    for _ in sys.stdin:
        out = {}
        for runner, samples in active:
            runner.lead_in(samples)
            out[runner.variant.name] = samples / runner.run(samples)
        print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
