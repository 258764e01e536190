"""Run a command and measure it: exit code, output, wall time and the peak memory of that one process."""

import os
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

# Runs `python -m MODULE ARGS...` in this process and, at exit, writes its VmHWM (KiB) to the file named by
# TESTS_PEAK_FILE: the high-water mark of this process's own memory. Not the child's ru_maxrss from os.wait4:
# Linux carries the peak of the process that spawned it over exec (subprocess spawns by vfork: pytest's own peak,
# over 1 GiB late in a whole-suite run). stdout and stderr stay the command's own.
PEAK = (
    "import atexit, os, runpy, sys\n"
    "def peak():\n"
    "    status = open('/proc/self/status').read().split('VmHWM:')[1]\n"
    "    open(os.environ['TESTS_PEAK_FILE'], 'w').write(status.split()[0])\n"
    "atexit.register(peak)\n"
    "module = sys.argv.pop(1)\n"
    "runpy.run_module(module, run_name='__main__', alter_sys=True)\n"
)


@dataclass(frozen=True)
class Measured:
    returncode: int
    stdout: str
    stderr: str
    seconds: float
    peak_mib: float | None  # the command's own peak resident memory (VmHWM); None if it was killed


def run_measured(
    module: str, args: list[str], cwd: Path, env: dict | None = None, timeout: float = 120, preexec_fn=None
) -> Measured:
    """Run `python -m module *args` in `cwd`; kill it after `timeout` seconds (then returncode is -9)."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err, tempfile.TemporaryDirectory() as tmp:
        peak_file = Path(tmp) / "peak"
        env = (os.environ if env is None else env) | {"TESTS_PEAK_FILE": str(peak_file)}
        start = time.monotonic()
        cmd = [sys.executable, "-c", PEAK, module, *args]
        proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=out, stderr=err, preexec_fn=preexec_fn)
        timer = threading.Timer(timeout, proc.kill)
        timer.start()
        try:
            _, status, _ = os.wait4(proc.pid, 0)
        finally:
            timer.cancel()
        seconds = time.monotonic() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        return Measured(
            proc.returncode,
            out.read().decode(errors="replace"),
            err.read().decode(errors="replace"),
            seconds,
            int(peak_file.read_text()) / 1024 if peak_file.exists() else None,
        )
