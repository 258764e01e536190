"""Wall time of one sweep three ways, alternating in rounds: `python -m pipeline sweep` on a local Dask cluster
of 2 workers and of 1, and DVC's own queue (`dvc exp run --queue` + `dvc queue start -j 2`).

    python -m benchmarks.sweep_wall [--rounds 3]

Each measurement starts from the same state, copied fresh: a clone of this repository with the committed
run's outputs, a bare git `origin` and a folder DVC remote (everything pushed). Timed: from the first command
to the ranked table (`python -m pipeline compare` for the queue), so both include gathering the results.
"""

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks import REPO, timing
from tests.dvc_project import BIN, dvc_env

GRID = ["-S", "train.learning_rate=0.05,0.1,0.2,0.3", "-S", "train.seed=0,1,2"]  # 12 points
POINTS = 12


def sh(cwd: Path, env: dict[str, str], *args: str) -> str:
    result = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result.stdout


def prepare(folder: Path) -> Path:
    """folder/state: work (a clone with the committed run, remotes set and pushed), origin.git, store."""
    state = folder / "state"
    env = dvc_env(folder / "home")
    sh(folder, env, "git", "clone", "-q", str(REPO), str(state / "work"))
    work = state / "work"
    sh(folder, env, "git", "init", "-q", "--bare", "-b", "main", str(state / "origin.git"))
    sh(work, env, "git", "checkout", "-q", "-B", "main")
    sh(work, env, "git", "remote", "set-url", "origin", "../origin.git")
    sh(work, env, str(BIN / "dvc"), "remote", "add", "-d", "store", "../store")  # relative to work/
    sh(work, env, str(BIN / "dvc"), "repro", "-q")
    sh(work, env, "git", "add", "-A")
    sh(work, env, "git", "commit", "-q", "-m", "folder remote")
    sh(work, env, "git", "push", "-q", "origin", "main")
    sh(work, env, str(BIN / "dvc"), "push", "-q")
    return state


def fresh(state: Path, folder: Path) -> tuple[Path, dict[str, str]]:
    if folder.exists():
        shutil.rmtree(folder)
    shutil.copytree(state, folder, symlinks=True)
    work, env = folder / "work", dvc_env(folder / "home")
    # a worker's clone resolves a relative remote path from its own folder: the copy's store, absolute
    sh(work, env, str(BIN / "dvc"), "remote", "modify", "store", "url", str(folder / "store"))
    sh(work, env, "git", "commit", "-q", "-am", "this copy's folder remote")
    sh(work, env, "git", "push", "-q", "origin", "main")
    return work, env


def sweep(work: Path, env: dict[str, str], workers: int) -> None:
    sh(work, env, sys.executable, "-m", "pipeline", "sweep", *GRID, "--workers", str(workers))


def finished(work: Path, env: dict[str, str]) -> list[str]:
    """The experiments' refs (refs/exps/<commit>/<name>), not the queue's own (refs/exps/celery/..., exec/...)."""
    refs = sh(work, env, "git", "for-each-ref", "--format=%(refname)", "refs/exps/").split()
    return [ref for ref in refs if len(ref.split("/")) == 5 and ref.split("/")[2] not in ("celery", "exec")]


def queue(work: Path, env: dict[str, str]) -> None:
    dvc = str(BIN / "dvc")
    sh(work, env, dvc, "exp", "run", "--queue", *GRID)
    sh(work, env, dvc, "queue", "start", "-j", "2")
    deadline = time.monotonic() + 3600
    while len(finished(work, env)) < POINTS:
        if time.monotonic() > deadline:
            raise SystemExit(f"the queue did not finish within an hour: {sh(work, env, dvc, 'queue', 'status')}")
        time.sleep(0.5)
    sh(work, env, sys.executable, "-m", "pipeline", "compare")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    rounds = parser.parse_args().rounds
    methods = {
        "queue -j 2": queue,
        "sweep, 2 workers": lambda work, env: sweep(work, env, 2),
        "sweep, 1 worker": lambda work, env: sweep(work, env, 1),
    }
    times: dict[str, list[float]] = {name: [] for name in methods}
    with tempfile.TemporaryDirectory(prefix="sweep-wall-") as tmp:
        state = prepare(Path(tmp))
        for round_ in range(rounds):
            order = list(methods) if round_ % 2 == 0 else list(reversed(methods))
            for name in order:
                work, env = fresh(state, Path(tmp) / "run")
                load = os.getloadavg()[0]
                start = time.perf_counter()
                methods[name](work, env)
                seconds = time.perf_counter() - start
                times[name].append(seconds)
                print(f"round {round_ + 1}: {name:<17} {seconds:6.1f} s  (load before {load:.1f})", flush=True)
    print(f"\n{POINTS} points, {rounds} rounds, alternating; median (min-max), spread, and the speed over the")
    print("queue's: the median over rounds of the queue's time over this one's in the same round")
    speeds = {name: [1 / t for t in values] for name, values in times.items()}
    for name, values in times.items():
        ratio = timing.median_ratio(speeds[name], speeds["queue -j 2"])
        print(
            f"  {name:<17} {statistics.median(values):6.1f} s ({min(values):.1f}-{max(values):.1f})"
            f"  spread {timing.spread(values):.0%}  {ratio:.2f}x the queue's speed"
        )


if __name__ == "__main__":
    main()
