"""Outputs appear whole or not at all, even when the writer is killed mid-write."""

import errno
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from pipeline import atomic
from tests.dvc_project import Project


def test_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "out.txt"
    atomic.write_text(target, "old")
    with pytest.raises(RuntimeError), atomic.atomic_open(target) as handle:
        handle.write("half of the new")
        raise RuntimeError("disk full")
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.txt"]


def test_successful_write_replaces_and_cleans_stale_temporaries(tmp_path: Path) -> None:
    target = tmp_path / "out.json"
    (tmp_path / ".out.json.abc123.tmp").write_text("torn")  # what a killed writer leaves
    atomic.write_json(target, {"a": 1})
    assert target.read_text() == '{\n  "a": 1\n}\n'
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.json"]


KILL_MID_WRITE = textwrap.dedent(
    """
    import os, signal, sys
    import numpy.lib.format as npy_format

    def write_then_die(fp, array, *args, **kwargs):
        fp.write(b"\\x93NUMPY" + b"x" * 100_000)  # part of the array, then the process dies
        fp.flush()
        os.kill(os.getpid(), signal.SIGKILL)

    npy_format.write_array = write_then_die
    sys.argv = ["pipeline", "preprocess"]
    from pipeline.cli import run
    run()
    """
)


@pytest.mark.slow
def test_sigkill_while_writing_the_largest_output_keeps_the_old_one(tmp_path: Path) -> None:
    project = Project.create(tmp_path / "repo")
    project.dvc("repro", "preprocess")
    largest = "data/processed/train.npz"
    before = project.sha256(largest)
    project.set_param("data.limit_per_class", "150")  # the stage must write something new
    result = subprocess.run([sys.executable, "-c", KILL_MID_WRITE], cwd=project.path, env=project.env)
    assert result.returncode == -signal.SIGKILL
    assert project.sha256(largest) == before  # the old output, whole
    project.dvc("repro")
    assert "up to date" in project.dvc("status").stdout
    assert not list((project.path / "data" / "processed").glob(".*.tmp"))
    assert os.path.getsize(project.path / largest) > 0


def test_outputs_get_the_usual_permissions_not_mkstemps_0600(tmp_path: Path) -> None:
    previous = os.umask(0o022)
    try:
        atomic.write_text(tmp_path / "out.txt", "x")
    finally:
        os.umask(previous)
    assert (tmp_path / "out.txt").stat().st_mode & 0o777 == 0o644


KILL_AT = textwrap.dedent(
    """
    import os, signal, sys
    from cnn import atomic

    target, when = sys.argv[1], sys.argv[2]
    real_fsync, real_replace = os.fsync, os.replace

    def die():
        os.kill(os.getpid(), signal.SIGKILL)

    def fsync(fd):
        if when == "fsync":
            die()
        real_fsync(fd)

    def replace(src, dst):
        if when == "before-rename":
            die()
        real_replace(src, dst)
        if when == "after-rename":
            die()

    atomic.os.fsync, atomic.os.replace = fsync, replace
    with atomic.atomic_open(target, "w") as handle:
        handle.write("new " * 100_000)
    """
)


@pytest.mark.parametrize(("when", "expected"), [("fsync", "old"), ("before-rename", "old"), ("after-rename", "new")])
def test_kill_during_fsync_or_rename_leaves_the_old_or_the_new_file(tmp_path: Path, when: str, expected: str) -> None:
    target = tmp_path / "out.txt"
    target.write_text("old " * 100_000)
    result = subprocess.run([sys.executable, "-c", KILL_AT, str(target), when], cwd=Path(__file__).parents[1])
    assert result.returncode == -signal.SIGKILL
    assert target.read_text() == f"{expected} " * 100_000  # whole, never a mix
    atomic.write_text(target, "next")  # the next writer removes what the killed one left
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.txt"]


@pytest.mark.parametrize(
    ("imports", "write", "limit"),
    [
        ("from pipeline import atomic", 'atomic.write_text(sys.argv[1], "x" * 5000)', 1000),
        (  # the .npz writer of splits, models and checkpoints goes through cnn.atomic too
            "import numpy as np; from cnn import npz",
            'npz.write(sys.argv[1], {"images": np.zeros((300, 1, 28, 28), np.float32)})',
            100_000,
        ),
    ],
)
def test_disk_full_error_names_the_target_and_keeps_it(tmp_path: Path, imports: str, write: str, limit: int) -> None:
    """A file-size limit (what a full disk looks like to a writer) smaller than the file: the OSError names the
    target, whose old bytes stay, and no temporary file is left."""
    target = tmp_path / "model.npz"
    target.write_bytes(b"old model")
    script = "\n".join(
        [
            "import resource, sys",
            imports,
            f"resource.setrlimit(resource.RLIMIT_FSIZE, ({limit}, {limit}))",
            "try:",
            f"    {write}",
            "except OSError as exc:",
            "    print(exc.errno, exc.filename)",
        ]
    )
    result = subprocess.run(
        [sys.executable, "-c", script, str(target)], cwd=Path(__file__).parents[1], capture_output=True, text=True
    )
    assert result.stdout.split() == [str(errno.EFBIG), str(target)], result.stderr
    assert target.read_bytes() == b"old model"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.npz"]
