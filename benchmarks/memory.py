"""Peak memory of training, measured in a fresh child process per scenario (numpy's BLAS buffers and
glibc's heap are invisible to tracemalloc). The child reports VmHWM, its own resident-set high-water mark.

Child: python -m benchmarks.memory --impl cnn --batch 32 --dtype float32 --images 12665 --threads 2 [--network lenet]
"""

import argparse
import json
import resource
import subprocess
import sys
from pathlib import Path

MIB = 1024 * 1024
REPO = Path(__file__).resolve().parent.parent


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


def measure(
    impl: str, batch_size: int, dtype: str, images: int, threads: int, network: str = "notebook", timeout: float = 900
) -> dict:
    """Run one training epoch over `images` images in a child; -> {"peak_rss_mib", "before_training_mib", ...}."""
    cmd = [sys.executable, "-m", "benchmarks.memory", "--impl", impl, "--batch", str(batch_size)]
    cmd += ["--dtype", dtype, "--images", str(images), "--threads", str(threads), "--network", network]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False, cwd=REPO)
    if done.returncode != 0:
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return {"error": f"memory child for {impl} b{batch_size} {dtype} failed: {tail}"}
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.memory", description=__doc__)
    parser.add_argument("--impl", required=True, choices=("notebook", "cnn", "torch"))
    parser.add_argument("--batch", type=int, required=True)
    parser.add_argument("--dtype", required=True, choices=("float64", "float32"))
    parser.add_argument("--images", type=int, required=True, help="train one epoch over this many images")
    parser.add_argument("--threads", type=int, required=True)
    parser.add_argument("--network", default="notebook", help="a key of benchmarks.networks.NETWORKS")
    args = parser.parse_args(argv)

    from benchmarks import runners, system

    system.limit_threads(args.threads, 1)
    runner = runners.make_runner(runners.Variant(args.impl, args.batch, args.dtype, args.network), args.threads)
    runner.prepare(args.images)
    before = peak_rss_mib()
    seconds = runner.run(args.images)
    result = {
        "impl": args.impl,
        "network": args.network,
        "batch_size": args.batch,
        "dtype": args.dtype,
        "images": args.images,
        "seconds": seconds,
        "before_training_mib": before,
        "peak_rss_mib": peak_rss_mib(),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
