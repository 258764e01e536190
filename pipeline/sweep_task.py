"""One point of a sweep, as a Dask task: clone, `dvc exp run`, push. Runs on a worker.

It imports only the standard library; a running task also imports `distributed` (the stop signal) and DVC's
experiment refs (a worker runs that DVC anyway). Like any Dask task's code, it must be importable where the
scheduler and workers run: install the project there (`pip install 'mnist-cnn-dvc[cluster]'`).

A task works in a fresh clone of the git remote at the swept commit, in a temporary folder that it removes.
Pushing is its last step and cannot leave half an experiment behind: first the outputs go to the DVC
remote (`dvc push`; objects named by their hash, harmless if nothing refers to them), then the experiment's
git ref (`dvc exp push --no-cache`, one atomic ref update). A ref on the remote therefore always has its
outputs there. A point whose ref already exists is skipped, so a rerun of the task (its worker died) or of
the whole sweep pushes each point once.
"""

import dataclasses
import fcntl
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

PUSHED, SKIPPED, FAILED, CANCELLED = "pushed", "skipped", "failed", "cancelled"
BLAS_VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "BLIS_NUM_THREADS")
POLL_SECONDS = 1.0

# The direct child of a task: pinned to one core, in a process group of its own that it kills when the
# task's thread dies (a worker killed with SIGKILL), so that no orphaned `dvc` or training runs on.
_GUARD = """
import ctypes, os, signal, subprocess, sys
signal.signal(signal.SIGTERM, lambda *_: os.killpg(0, signal.SIGKILL))
ctypes.CDLL(None).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
if os.getppid() != int(sys.argv[1]):
    os.killpg(0, signal.SIGKILL)
if sys.argv[2] != "-":
    os.sched_setaffinity(0, {int(sys.argv[2])})
sys.exit(subprocess.call(sys.argv[3:]))
"""


@dataclass(frozen=True)
class Job:
    """What a task needs: the point's experiment name and `-S` overrides, where the code and data live."""

    name: str
    overrides: tuple[str, ...]
    repo_url: str
    commit: str
    dvc_remote: str
    stop_event: str | None = None

    @property
    def ref(self) -> str:
        """The experiment's git ref, as `dvc exp push` names it."""
        from dvc.repo.experiments.refs import ExpRefInfo

        return str(ExpRefInfo(self.commit, self.name))


@dataclass(frozen=True)
class Outcome:
    """How a point ended: status (pushed, skipped, failed, cancelled), its one-line error, seconds, host."""

    name: str
    status: str
    seconds: float = 0.0
    error: str = ""
    host: str = ""


def remote_refs(repo_url: str, pattern: str, env: dict[str, str] | None = None) -> set[str]:
    """The refs of the git remote matching `pattern` (git ls-remote)."""
    listing = subprocess.run(
        ["git", "ls-remote", repo_url, pattern], capture_output=True, text=True, env=env, check=True, timeout=120
    )
    return {line.split("\t", 1)[1] for line in listing.stdout.splitlines() if "\t" in line}


def error_line(output: str) -> str:
    """The line that says why a command failed: the pipeline's `error:` line, else DVC's `ERROR:`, else the last."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    for prefix in ("error:", "ERROR:"):
        found = [i for i, line in enumerate(lines) if line.startswith(prefix)]
        if found:
            chosen = lines[found[-1] : found[-1] + 3] if lines[found[-1]].endswith(":") else [lines[found[-1]]]
            return " ".join(chosen)  # a message ending in a colon lists what it is about on the next lines
    return lines[-1] if lines else "no output"


def task_env(scratch: Path) -> dict[str, str]:
    """The worker's environment with one BLAS thread, DVC's site cache in `scratch`, its Python's bin on PATH
    (the stages start `python` by name)."""
    env = dict(os.environ)
    env.update(dict.fromkeys(BLAS_VARIABLES, "1"))
    env["DVC_SITE_CACHE_DIR"] = str(scratch / "dvc-site-cache")
    env["DVC_NO_ANALYTICS"] = "1"
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env.pop("DVC_EXP_GIT_REMOTE", None)
    return env


class CoreSlot:
    """One core of this machine for the task's lifetime, claimed by a lock file, so that the tasks running on
    one machine sit on different cores and cnn (which counts the cores it may use) runs one thread.
    None when every core is taken (more tasks than cores): then the task is not pinned."""

    def __init__(self) -> None:
        self.cpu: int | None = None
        self._file = None
        folder = Path(tempfile.gettempdir()) / f"mnist-cnn-sweep-cores-{os.getuid()}"
        folder.mkdir(exist_ok=True)
        for cpu in sorted(os.sched_getaffinity(0)):
            handle = open(folder / f"cpu{cpu}.lock", "w")  # held until release()
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.close()
                continue
            self.cpu, self._file = cpu, handle
            break

    def release(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


def _scratch_space() -> str | None:
    """The Dask worker's own folder, which Dask removes when the worker stops and purges when a killed
    worker's successor starts (so a killed task leaves no clone behind); the system's temp folder elsewhere."""
    try:
        from distributed import get_worker

        return get_worker().local_directory
    except (ImportError, ValueError):
        return None


def _stop_requested(name: str | None):
    """A function telling whether the driver asked the sweep to stop (a Dask Event), or never when no name."""
    if name is None:
        return lambda: False
    from distributed import Event, get_client

    event = Event(name, client=get_client())
    return event.is_set


def _run(args: list[str], cwd: Path, env: dict[str, str], cpu: int | None, stop) -> tuple[int, str] | None:
    """Run a command through the guard; (exit code, output), or None when stopped (the command killed)."""
    guard = [sys.executable, "-c", _GUARD, str(os.getpid()), "-" if cpu is None else str(cpu), *args]
    with tempfile.TemporaryFile(mode="w+") as out:
        process = subprocess.Popen(
            guard, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
        while True:
            try:
                code = process.wait(timeout=POLL_SECONDS)
                break
            except subprocess.TimeoutExpired:
                if stop():
                    os.killpg(process.pid, signal.SIGKILL)
                    process.wait()
                    return None
        out.seek(0)
        return code, out.read()


def run_point(job: Job) -> dict:
    """Run one point's experiment in a fresh clone and push it, unless its experiment is on the remote already.
    Returns the Outcome as a dict: plain data, whatever version of this module the worker has."""
    return dataclasses.asdict(_run_point(job))


def _run_point(job: Job) -> Outcome:
    import socket

    host, start = socket.gethostname(), time.monotonic()

    def outcome(status: str, error: str = "") -> Outcome:
        return Outcome(job.name, status, time.monotonic() - start, error, host)

    stop = _stop_requested(job.stop_event)
    if job.ref in remote_refs(job.repo_url, job.ref):
        return outcome(SKIPPED)
    slot = CoreSlot()
    try:
        with tempfile.TemporaryDirectory(prefix=f"mnist-cnn-{job.name}-", dir=_scratch_space()) as folder:
            scratch = Path(folder)
            env, clone = task_env(scratch), scratch / "repo"
            dvc = str(Path(sys.executable).parent / "dvc")
            sets = [arg for override in job.overrides for arg in ("-S", override)]
            steps = [
                (scratch, ["git", "clone", "-q", "--no-checkout", job.repo_url, str(clone)]),
                (clone, ["git", "checkout", "-q", "--detach", job.commit]),
                (clone, [dvc, "exp", "run", "--pull", "--allow-missing", "-n", job.name, *sets]),
                (clone, [dvc, "push"]),  # outputs first: a pushed ref always has them
            ]
            for cwd, args in steps:
                if stop():
                    return outcome(CANCELLED)
                result = _run(args, cwd, env, slot.cpu, stop)
                if result is None:
                    return outcome(CANCELLED)
                if result[0] != 0:
                    return outcome(FAILED, error_line(result[1]))
                if args[1] == "checkout":  # the sweep's DVC remote as the default, as `dvc remote default --local`
                    (clone / ".dvc" / "config.local").write_text(f"[core]\n    remote = {job.dvc_remote}\n")
            if job.ref in remote_refs(job.repo_url, job.ref, env):
                return outcome(SKIPPED)  # an earlier run of this task pushed it before its worker died
            code, output = _run(
                [dvc, "exp", "push", "--no-cache", "origin", job.name], clone, env, slot.cpu, lambda: False
            )
            if code != 0 and job.ref not in remote_refs(job.repo_url, job.ref, env):
                return outcome(FAILED, error_line(output))
            return outcome(PUSHED)
    finally:
        slot.release()
