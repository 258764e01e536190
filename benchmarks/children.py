"""Child processes: the environment they get (the shell's, not this process's pinned numerics), running one to
its end with its error line (`run`; `pipeline_command` for the pipeline's commands), and the measurements that
need a fresh process: peak memory (numpy's BLAS buffers and glibc's heap are invisible to tracemalloc; a child
reports VmHWM, its own resident-set high-water mark) and canonical against native numerics (the mode is fixed
before numpy loads: one child per mode, rounds alternating between the two, only one computing at a time, so both
see the same machine).

canonical: what every pipeline command runs (OpenBLAS's Haswell kernels, numpy's dispatch up to AVX2).
native: MNIST_CNN_NUMERICS=native with OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE removed: the kernels OpenBLAS
and numpy pick for this CPU.

  python -m benchmarks.children memory --impl cnn --batch 32 --dtype float32 --images 12665 --threads 2
  python -m benchmarks.children modes --threads 1 --seconds 0.4 --variants '[["cnn", 1, "float64", "notebook"]]'
A memory child prints one JSON line. A modes child prints one JSON line when calibrated, then times every
variant once per line read from stdin and answers with one JSON line {variant name: samples/s}.
"""

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
from pathlib import Path

from benchmarks import ENV_PREFIXES, HOST_ENVIRONMENT, REPO, numerics

MIB = 1024 * 1024
MODES = ("canonical", "native")


def shell_environment(mode: str | None = None) -> dict[str, str]:
    """This process's environment with the BLAS and numerics variables as the shell set them (this process's
    numerics pinned some); mode "native" or "canonical" asks the child's pipeline.numerics for that mode."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(ENV_PREFIXES)} | HOST_ENVIRONMENT
    if mode == "native":
        env[numerics.OPT_OUT_VARIABLE] = "native"
        env.pop("OPENBLAS_CORETYPE", None)
        env.pop("OPENBLAS_L2_SIZE", None)
    elif mode == "canonical":
        env.pop(numerics.OPT_OUT_VARIABLE, None)
    return env


def peak_rss_mib() -> float:
    """This process's peak resident set, MiB (VmHWM; ru_maxrss can carry the parent's peak over exec)."""
    try:
        with open("/proc/self/status") as handle:
            for line in handle:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024 / MIB
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / MIB


def error_line(stderr: str, code: int) -> str:
    """What a failed child said last on stderr (its one-line error), or its exit code."""
    return (stderr.strip().splitlines() or [f"exit code {code}"])[-1]


def run(
    cmd: list[str], cwd: Path = REPO, env: dict[str, str] | None = None, timeout: float | None = None
) -> tuple[str, str | None]:
    """Run cmd to its end in cwd, with the shell's environment unless env is given; -> (its stdout, None), or
    (its stdout, error_line) when it failed."""
    env = shell_environment() if env is None else env
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False)
    return done.stdout, None if done.returncode == 0 else error_line(done.stderr, done.returncode)


def pipeline_command(command: str, *args: str) -> str | None:
    """Run one pipeline command as `dvc repro` would; -> None, or its error line."""
    error = run([sys.executable, "-m", "pipeline", command, *args])[1]
    return None if error is None else f"{command}: {error}"


def memory(impl: str, batch_size: int, dtype: str, images: int, threads: int, network: str = "notebook") -> dict:
    """Train one epoch over `images` images in a child; -> {"peak_rss_mib", "before_training_mib", ...} or
    {"error": one line}."""
    cmd = [sys.executable, "-m", "benchmarks.children", "memory", "--impl", impl, "--batch", str(batch_size)]
    cmd += ["--dtype", dtype, "--images", str(images), "--threads", str(threads), "--network", network]
    stdout, error = run(cmd, timeout=900)
    if error:
        return {"error": f"memory child for {impl} b{batch_size} {dtype} {network} failed: {error}"}
    return json.loads(stdout.strip().splitlines()[-1])


def modes(variants: list, threads: int, rounds: int, seconds: float, quick: bool, log) -> dict:
    """Median samples/s of each cnn variant in each numerics mode, and native / canonical per variant (the
    median over rounds of the ratio within a round)."""
    from benchmarks import timing

    spec = json.dumps([[v.impl, v.batch_size, v.dtype, v.network] for v in variants])
    children = {}
    for mode in MODES:
        cmd = [sys.executable, "-m", "benchmarks.children", "modes", "--threads", str(threads)]
        cmd += ["--seconds", str(seconds), "--variants", spec] + (["--quick"] if quick else [])
        children[mode] = subprocess.Popen(
            cmd, cwd=REPO, env=shell_environment(mode), stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
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
        canonical, native = rates["canonical"][v.name], rates["native"][v.name]
        rows.append(
            {
                "name": v.name,
                "canonical_samples_per_s": statistics.median(canonical),
                "native_samples_per_s": statistics.median(native),
                "native_over_canonical": timing.median_ratio(native, canonical),
                "canonical_all": canonical,
                "native_all": native,
            }
        )
    return {"modes": info, "variants": rows}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.children", description=__doc__)
    sub = parser.add_subparsers(dest="kind", required=True)
    mem = sub.add_parser("memory", help="peak memory of one training epoch")
    mem.add_argument("--impl", required=True, choices=("notebook", "cnn", "torch"))
    mem.add_argument("--batch", type=int, required=True)
    mem.add_argument("--dtype", required=True, choices=("float64", "float32"))
    mem.add_argument("--images", type=int, required=True, help="train one epoch over this many images")
    mem.add_argument("--network", default="notebook", help="a key of benchmarks.networks.NETWORKS")
    mode = sub.add_parser("modes", help="time cnn variants in this process's numerics mode, one round per line")
    mode.add_argument("--seconds", type=float, required=True)
    mode.add_argument("--variants", required=True, help="JSON list of [impl, batch, dtype, network]")
    mode.add_argument("--quick", action="store_true")
    for p in (mem, mode):
        p.add_argument("--threads", type=int, required=True)
    args = parser.parse_args(argv)

    from benchmarks import machine, trainers

    machine.limit_threads(args.threads, 1)
    if args.kind == "memory":
        variant = trainers.Variant(args.impl, args.batch, args.dtype, args.network)
        runner = trainers.make_runner(variant, args.threads)
        runner.prepare(args.images)
        before = peak_rss_mib()
        seconds = runner.run(args.images)
        result = {"impl": args.impl, "network": args.network, "batch_size": args.batch, "dtype": args.dtype}
        result |= {"images": args.images, "seconds": seconds, "before_training_mib": before}
        print(json.dumps(result | {"peak_rss_mib": peak_rss_mib()}))
        return
    active, images = [], {}
    for impl, batch, dtype, network in json.loads(args.variants):
        runner = trainers.make_runner(trainers.Variant(impl, batch, dtype, network), args.threads, images)
        samples = trainers.calibrate(runner, args.seconds, args.quick)
        runner.prepare(samples)
        active.append((runner, samples))
    libraries = machine.blas_libraries()
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
