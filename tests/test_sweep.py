"""`python -m pipeline sweep` on real processes: a `dask scheduler` and `dask worker`s on 127.0.0.1, a bare git
repository as origin, a moto S3 server as the DVC remote. Nothing of Dask, DVC or git is mocked."""

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipeline import sweep
from pipeline.errors import UserError
from tests.dvc_project import BIN, ROOT, Project
from tests.test_remote_s3 import BUCKET, CREDENTIALS, experiments, moto_bucket

GRID = ["-S", "train.learning_rate=0.05,0.2", "--seeds", "0,1"]


# ---- the grid (no processes) ------------------------------------------------------------------------------


def test_grid_is_the_product_of_the_values_last_key_fastest() -> None:
    assert sweep.grid(["train.learning_rate=0.05,0.2"], "0,1") == [
        ("train.learning_rate=0.05", "train.seed=0"),
        ("train.learning_rate=0.05", "train.seed=1"),
        ("train.learning_rate=0.2", "train.seed=0"),
        ("train.learning_rate=0.2", "train.seed=1"),
    ]
    assert sweep.grid(["data.digits=[0,1],[0,1,7]"]) == [("data.digits=[0,1]",), ("data.digits=[0,1,7]",)]


def test_dvc_splits_the_values_as_for_a_queued_sweep() -> None:
    assert sweep.grid(["train.seed=range(0,3)"]) == [("train.seed=0",), ("train.seed=1",), ("train.seed=2",)]
    assert sweep.grid(["train.optimizer=choice(adam,sgd)", "train.learning_rate=0.01,0.1"]) == [
        ("train.optimizer=adam", "train.learning_rate=0.01"),
        ("train.optimizer=adam", "train.learning_rate=0.1"),
        ("train.optimizer=sgd", "train.learning_rate=0.01"),
        ("train.optimizer=sgd", "train.learning_rate=0.1"),
    ]
    assert sweep.grid(["params.yaml:train.seed=range(1,5,2)"]) == [("train.seed=1",), ("train.seed=3",)]
    assert sweep.grid(["train.optimizer='sgd,x'"]) == [("train.optimizer='sgd,x'",)]  # a quoted comma is no split


@pytest.mark.parametrize(
    ("sets", "seeds", "message"),
    [
        ([], None, "nothing to sweep"),
        (["train.learning_rate"], None, "is not KEY=VALUE"),
        (["train.learning_rate=0.1,,0.2"], None, "empty value"),
        (["train.seed=1", "train.seed=2"], None, "given twice"),
        (["train.seed=1", "params.yaml:train.seed=2"], None, "given twice"),
        (["train.seed=range(0,3"], None, "-S 'train.seed=range\\(0,3'"),
        (["train.seed=glob(*)"], None, "not supported"),
        (["train.seed=1"], "0", "both --seeds and -S train.seed"),
        ([], "0,x", "integers"),
    ],
)
def test_bad_grids_are_refused(sets: list[str], seeds: str | None, message: str) -> None:
    with pytest.raises(UserError, match=message):
        sweep.grid(sets, seeds)


def test_experiment_names_depend_on_the_params_alone() -> None:
    name = sweep.experiment_name(("train.learning_rate=0.05", "train.seed=0"))
    assert name == sweep.experiment_name(("train.seed=0", "train.learning_rate=0.05"))
    assert name != sweep.experiment_name(("train.learning_rate=0.05", "train.seed=1"))
    assert name.startswith("sweep-") and len(name) == len("sweep-") + 10


def test_the_progress_line_counts_points_and_gives_the_time_left() -> None:
    tally = sweep.Tally(4, started=time.monotonic() - 90)
    assert tally.line(running=2) == "sweep: 0/4 done, 2 running, 0 failed, ETA --"
    tally.outcomes += [sweep.Outcome("a", sweep.PUSHED), sweep.Outcome("b", sweep.SKIPPED)]
    assert tally.line(running=1) == "sweep: 2/4 done, 1 running, 0 failed, ETA 3 min 00 s"  # 90 s a point run, 2 left


# ---- real processes ---------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


class Cluster:
    """A `dask scheduler` and `dask worker --nthreads 1` processes on 127.0.0.1, each stopped by close()."""

    def __init__(self, folder: Path, env: dict[str, str], workers: int) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.folder, self.processes = folder, []
        self.env = {**env, "PYTHONPATH": str(ROOT)}  # the code under test, as `pip install` puts it on a worker
        self.address = f"tcp://127.0.0.1:{free_port()}"
        self.scheduler = self._start(
            "scheduler", "--host", "127.0.0.1", "--port", self.address.rsplit(":", 1)[1], "--no-dashboard"
        )
        self.workers = [self.add_worker(f"w{i}") for i in range(workers)]
        self.wait_for(workers)

    def _start(self, *args: str) -> subprocess.Popen:
        log = open(self.folder / f"{args[0]}-{len(self.processes)}.log", "w")  # the process writes it
        process = subprocess.Popen(
            [str(BIN / "dask"), *args], cwd=self.folder, env=self.env, stdout=log, stderr=subprocess.STDOUT
        )
        self.processes.append(process)
        return process

    def add_worker(self, name: str) -> subprocess.Popen:
        return self._start(
            "worker", self.address, "--nthreads", "1", "--no-nanny", "--no-dashboard", "--name", name,
            "--local-directory", str(self.folder / name),
        )  # fmt: skip

    def wait_for(self, workers: int) -> None:
        from distributed import Client

        with Client(self.address, timeout=60) as client:
            client.wait_for_workers(workers, timeout=120)

    def close(self) -> None:
        for process in reversed(self.processes):
            stop(process)


@pytest.fixture(scope="module")
def s3() -> Iterator[str]:
    """An empty bucket on a moto S3 server on 127.0.0.1 for the module; yields the endpoint URL."""
    with pytest.MonkeyPatch.context() as patch:
        for name, value in CREDENTIALS.items():
            patch.setenv(name, value)
        with moto_bucket() as endpoint:
            yield endpoint


def driver_project(path: Path, endpoint: str, prefix: str) -> Project:
    """A copy of the project after a committed 2-epoch run, with a bare `origin` and an S3 default remote
    (committed), everything pushed: what a user has before a sweep."""
    pytest.importorskip("distributed")
    project = Project.create(path)
    project.env.update(CREDENTIALS)
    origin = path.parent / f"{path.name}-origin.git"
    project.run("git", "init", "-q", "--bare", "-b", "main", str(origin))
    project.run("git", "remote", "add", "origin", str(origin))
    project.dvc("remote", "add", "-d", "store", f"s3://{BUCKET}/{prefix}")
    project.dvc("remote", "modify", "store", "endpointurl", endpoint)
    project.set_param("train.epochs", "2")
    project.dvc("repro")
    project.commit("2-epoch run with an S3 remote")
    project.run("git", "push", "-q", "origin", "main")
    project.dvc("push")
    return project


@pytest.fixture(scope="module")
def driver(tmp_path_factory: pytest.TempPathFactory, s3: str) -> Project:
    return driver_project(tmp_path_factory.mktemp("sweep") / "driver", s3, "driver")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory, driver: Project) -> Iterator[Cluster]:
    cluster = Cluster(tmp_path_factory.mktemp("cluster"), driver.env, workers=2)
    try:
        yield cluster
    finally:
        cluster.close()


def run_sweep(project: Project, *args: str, timeout: float = 900) -> subprocess.CompletedProcess:
    return project.run(sys.executable, "-m", "pipeline", "sweep", *args, check=False, timeout=timeout)


def pushed_refs(project: Project) -> list[str]:
    listing = project.run("git", "ls-remote", "origin", "refs/exps/*").stdout
    return [line.split("\t")[1] for line in listing.splitlines()]


def names_of(grid: list[str]) -> set[str]:
    sets = [grid[i + 1] for i, flag in enumerate(grid) if flag == "-S"]
    seeds = grid[grid.index("--seeds") + 1] if "--seeds" in grid else None
    return {sweep.experiment_name(point) for point in sweep.grid(sets, seeds)}


@pytest.mark.slow
def test_a_grid_on_two_workers_equals_local_runs_bit_for_bit(driver: Project, cluster: Cluster) -> None:
    result = run_sweep(driver, *GRID, "--scheduler", cluster.address)
    assert result.returncode == 0, result.stderr
    names = names_of(GRID)
    assert names <= set(experiments(driver))  # all four in the driver's `dvc exp show`, after its exp pull
    assert sorted(ref.rsplit("/", 1)[1] for ref in pushed_refs(driver)) == sorted(names)
    assert all(name in result.stdout for name in names)  # the ranked table
    assert result.stderr.count("pushed  sweep-") == 4  # one line per finished point

    point = ("train.learning_rate=0.2", "train.seed=1")
    driver.dvc("exp", "run", "-n", "local", "-S", point[0], "-S", point[1])
    files = ["models/model.npz", "metrics.json", "reports/train/loss.csv", "reports/evaluate/predictions.csv"]
    local = {name: (driver.path / name).read_bytes() for name in files}
    driver.dvc("exp", "apply", sweep.experiment_name(point))
    assert {name: (driver.path / name).read_bytes() for name in files} == local
    driver.run("git", "checkout", "--", ".")
    driver.dvc("checkout", "--force")

    again = run_sweep(driver, *GRID, "--scheduler", cluster.address)
    assert again.returncode == 0, again.stderr
    assert again.stderr.count(": already on origin") == 4 and "pushed  sweep-" not in again.stderr
    assert len(pushed_refs(driver)) == 4


@pytest.mark.slow
def test_ctrl_c_stops_every_task_in_one_line_and_a_rerun_finishes(driver: Project) -> None:
    grid = ["-S", "train.learning_rate=0.3,0.4,0.5"]
    sweeper = driver.start(sys.executable, "-m", "pipeline", "sweep", *grid, "--workers", "2")
    deadline = time.monotonic() + 300
    while not training(descendants(sweeper.pid)):
        assert time.monotonic() < deadline and sweeper.poll() is None, "no experiment ever trained"
        time.sleep(0.2)
    running = descendants(sweeper.pid)
    os.killpg(sweeper.pid, signal.SIGINT)  # what Ctrl-C in a terminal sends: the driver and its local cluster
    stdout, stderr = sweeper.communicate(timeout=120)
    lines = [line for line in stderr.splitlines() if not line.startswith("pushed ")]
    assert sweeper.returncode == 130 and not stdout, stderr
    assert len(lines) == 1 and lines[0].startswith("error: sweep: interrupted; "), stderr
    time.sleep(2)
    assert not [pid for pid in running if Path(f"/proc/{pid}").exists()]  # nothing trains on, nothing pushes

    again = run_sweep(driver, *grid, "--workers", "2")
    assert again.returncode == 0, again.stderr  # its `dvc exp pull` finds every pushed ref's outputs in S3
    assert names_of(grid) <= set(experiments(driver))


@pytest.mark.slow
def test_a_bad_point_fails_alone_on_the_local_cluster(driver: Project) -> None:
    result = run_sweep(driver, "-S", "train.optimizer=adam,bogus", "--workers", "2")
    assert result.returncode == 1
    bad = sweep.experiment_name(("train.optimizer=bogus",))
    good = sweep.experiment_name(("train.optimizer=adam",))
    failures = [line for line in result.stderr.splitlines() if line.startswith("failed") and bad in line]
    assert len(failures) == 2  # as it finished and in the summary
    assert "optimizer" in failures[-1] and "bogus" in failures[-1]
    assert result.stderr.strip().splitlines()[-1].startswith("error: sweep: 1 of 2 points failed")
    assert good in result.stdout and bad not in result.stdout
    assert good in experiments(driver)


def descendants(pid: int) -> set[int]:
    """Every process below `pid` (from /proc)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(parent, []).append(int(entry.name))
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def training(pids: set[int]) -> bool:
    for pid in pids:
        try:
            if b"pipeline\x00train" in Path(f"/proc/{pid}/cmdline").read_bytes():
                return True
        except OSError:
            continue
    return False


@pytest.mark.slow
def test_a_worker_killed_mid_experiment_costs_no_point_and_no_duplicate(
    tmp_path: Path, s3: str, driver: Project
) -> None:
    project = driver_project(tmp_path / "driver", s3, "killed")
    cluster = Cluster(tmp_path / "cluster", project.env, workers=2)
    try:
        sweeper = subprocess.Popen(
            [sys.executable, "-m", "pipeline", "sweep", *GRID, "--scheduler", cluster.address],
            cwd=project.path, env=project.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        victim = cluster.workers[0]
        deadline = time.monotonic() + 300
        while not training(descendants(victim.pid)):
            assert time.monotonic() < deadline and sweeper.poll() is None, "worker 0 never trained"
            time.sleep(0.2)
        orphans = descendants(victim.pid)
        victim.send_signal(signal.SIGKILL)
        _, stderr = sweeper.communicate(timeout=900)
        assert sweeper.returncode == 0, stderr
        refs = pushed_refs(project)
        assert sorted(ref.rsplit("/", 1)[1] for ref in refs) == sorted(names_of(GRID))  # four, none twice
        assert names_of(GRID) <= set(experiments(project))
        time.sleep(2)
        assert not [pid for pid in orphans if Path(f"/proc/{pid}").exists()]  # the killed task's dvc, training
    finally:
        cluster.close()


@pytest.mark.slow
def test_one_line_errors_before_any_work(driver: Project) -> None:
    def fails(*args: str, code: int = 2, grid: tuple[str, ...] = tuple(GRID)) -> str:
        result = run_sweep(driver, *grid, *args, timeout=120)
        lines = result.stderr.strip().splitlines()
        assert result.returncode == code and len(lines) == 1 and lines[0].startswith("error: sweep: "), result.stderr
        assert "Traceback" not in result.stderr and not result.stdout
        return lines[0]

    start = time.monotonic()
    unreachable = f"tcp://127.0.0.1:{free_port()}"
    unpushed = ("-S", "train.learning_rate=0.07")  # GRID's points may be on origin already: then no scheduler is asked
    refused = fails("--scheduler", unreachable, "--connect-timeout", "2", code=1, grid=unpushed)
    assert "cannot reach the Dask scheduler" in refused
    assert time.monotonic() - start < 60
    assert "no git remote 'upstream'" in fails("--git-remote", "upstream")
    assert "no DVC remote 'elsewhere'" in fails("--dvc-remote", "elsewhere")
    assert "no metric 'speed' in the metrics files; sort by one of " in fails("--sort-by", "speed", grid=unpushed)

    (driver.path / "params.yaml").write_text((driver.path / "params.yaml").read_text() + "\n")
    try:
        assert "uncommitted changes (params.yaml)" in fails()
    finally:
        driver.run("git", "checkout", "--", "params.yaml")

    driver.run("git", "commit", "-q", "--allow-empty", "-m", "not pushed")
    try:
        assert "is not on git remote 'origin'" in fails() and "git push origin main" in fails()
    finally:
        driver.run("git", "reset", "-q", "--hard", "HEAD~1")

    driver.dvc("remote", "add", "--local", "local-only", str(driver.path.parent / "store"))
    try:
        assert "not in the committed .dvc/config" in fails("--dvc-remote", "local-only")
    finally:
        driver.dvc("remote", "remove", "--local", "local-only")
    assert not driver.run("git", "status", "--porcelain").stdout  # the workspace as it was
