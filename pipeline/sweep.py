"""`python -m pipeline sweep`: a grid of experiments run as tasks on a Dask cluster, gathered with `dvc exp pull`.

The driver checks everything a worker relies on before any work starts (a clean workspace whose commit is on
the git remote, a DVC remote in the committed config that answers, a scheduler that answers), names each
point of the grid after its params (the same name on every run, so a rerun skips the points already pushed),
submits one task per point (pipeline.sweep_task), shows progress, pulls the pushed experiments and prints
them ranked as `python -m pipeline compare` does.
"""

import dataclasses
import hashlib
import logging
import os
import re
import signal
import subprocess
import sys
import time
import uuid
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from pipeline import compare, sweep_task
from pipeline.errors import PipelineError, UserError, shorten
from pipeline.progress import duration
from pipeline.sweep_task import CANCELLED, FAILED, PUSHED, SKIPPED, Job, Outcome

CONNECT_TIMEOUT = 10.0
NAME_PREFIX = "sweep-"


class SweepInterruptedError(PipelineError):
    """Ctrl-C on the driver: exit code 130, like a shell."""

    exit_code = 130


# ---- the grid ---------------------------------------------------------------------------------------------


def _reason(exc: Exception) -> str:
    """Hydra's parse error on one line, without its pointer to the grammar's docs."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip() and not line.startswith("See https")]
    return shorten("; ".join(lines) or type(exc).__name__, 200)


def grid(sets: list[str], seeds: str | None = None) -> list[tuple[str, ...]]:
    """Every point of `-S KEY=V1,V2 ...` (and `--seeds`, as train.seed), each a tuple of `KEY=VALUE` overrides.
    DVC splits the values as `dvc exp run --queue -S` does (dvc.utils.hydra: `V1,V2`, `range(0,3)`,
    `choice(a,b)`, lists in brackets), in the same order: the last key varies fastest."""
    from dvc.dependency.param import ParamsDependency
    from dvc.exceptions import InvalidArgumentError
    from dvc.utils.cli_parse import to_path_overrides
    from dvc.utils.hydra import get_hydra_sweeps
    from hydra.errors import HydraException

    for text in sets:
        key, sep, values = text.partition("=")
        key = key.strip()
        if not sep or not key or " " in key:
            raise UserError(f"sweep: -S {text!r} is not KEY=VALUE[,VALUE...]; e.g. -S train.learning_rate=0.01,0.1")
        if re.search(r"(^|,)\s*(,|$)", re.sub(r"'[^']*'|\"[^\"]*\"", "''", values)):
            raise UserError(f"sweep: -S {text!r} has an empty value; separate values by single commas")
        try:
            get_hydra_sweeps(to_path_overrides([text]))
        except (HydraException, InvalidArgumentError) as exc:
            raise UserError(f"sweep: -S {text!r}: {_reason(exc)}") from None
    files = to_path_overrides(sets)
    keys = [(file, override.partition("=")[0].strip()) for file, overrides in files.items() for override in overrides]
    for file, key in keys:
        if keys.count((file, key)) > 1:
            raise UserError(f"sweep: {key} is given twice; put all its values in one -S {key}=V1,V2")
    default = ParamsDependency.DEFAULT_PARAMS_FILE
    if seeds is not None:
        if (default, "train.seed") in keys:
            raise UserError("sweep: both --seeds and -S train.seed are given; use one of them")
        if not re.fullmatch(r"\s*\d+\s*(,\s*\d+\s*)*", seeds):
            raise UserError(f"sweep: --seeds {seeds!r} is not a comma-separated list of integers >= 0, e.g. 0,1,2")
        files.setdefault(default, []).append(f"train.seed={seeds.replace(' ', '')}")
    if not files:
        raise UserError("sweep: nothing to sweep; give -S KEY=V1,V2 (as for `dvc exp run`) and/or --seeds 0,1,2")
    points = (
        tuple(o if file == default else f"{file}:{o}" for file, overrides in point.items() for o in overrides)
        for point in get_hydra_sweeps(files)
    )
    return list(dict.fromkeys(points))


def experiment_name(overrides: tuple[str, ...]) -> str:
    """A name fixed by the point's params alone (DVC names experiments per commit), valid as a git ref."""
    digest = hashlib.sha256("\n".join(sorted(overrides)).encode()).hexdigest()
    return NAME_PREFIX + digest[:10]


# ---- checks before any work -------------------------------------------------------------------------------


def _git(root: Path, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, timeout=timeout)


@dataclass(frozen=True)
class Target:
    """What the tasks clone and push to: the git remote's name and URL, the commit, the DVC remote's name."""

    root: Path
    git_remote: str
    repo_url: str
    commit: str
    dvc_remote: str


def check_git(repo: Path, git_remote: str) -> tuple[Path, str, str]:
    """(repo root, remote URL, HEAD commit); one-line errors for no repo, a dirty workspace, a missing remote,
    a commit the remote does not have."""
    found = _git(repo, "rev-parse", "--show-toplevel")
    if found.returncode != 0:
        raise UserError(f"sweep: {repo} is not in a git repository; run it in a clone of the project")
    root = Path(found.stdout.strip())
    dirty = _git(root, "status", "--porcelain", "--untracked-files=no").stdout.splitlines()
    if dirty:
        names = ", ".join(line[3:] for line in dirty[:3]) + (", ..." if len(dirty) > 3 else "")
        raise UserError(
            f"sweep: uncommitted changes ({names}); the workers clone the git remote, so commit and push them "
            "(or git stash) first"
        )
    url = _git(root, "remote", "get-url", git_remote)
    if url.returncode != 0:
        raise UserError(
            f"sweep: no git remote {git_remote!r}; add the repository the workers clone "
            f"(git remote add {git_remote} URL) or name another with --git-remote"
        )
    repo_url = url.stdout.strip()
    if "://" not in repo_url and ":" not in repo_url.split("/")[0] and (root / repo_url).exists():
        repo_url = str((root / repo_url).resolve())  # a local path, as seen from the driver's repository
    commit = _git(root, "rev-parse", "HEAD").stdout.strip()
    listing = _git(root, "ls-remote", "--heads", "--tags", repo_url, timeout=120)  # not every experiment's ref
    if listing.returncode != 0:
        reason = listing.stderr.strip().splitlines()[-1] if listing.stderr.strip() else "no answer"
        raise PipelineError(f"sweep: cannot read git remote {git_remote!r} ({repo_url}): {shorten(reason, 200)}")
    heads = {line.split("\t")[0] for line in listing.stdout.splitlines()}
    if commit not in heads and not any(
        _git(root, "merge-base", "--is-ancestor", commit, head).returncode == 0 for head in heads
    ):
        branch = _git(root, "rev-parse", "--abbrev-ref", "HEAD").stdout.strip()
        where = branch if branch != "HEAD" else f"{commit[:7]}:refs/heads/BRANCH"
        raise UserError(
            f"sweep: commit {commit[:7]} is not on git remote {git_remote!r}, which the workers clone; "
            f"push it first: git push {git_remote} {where}"
        )
    return root, repo_url, commit


def _committed_remotes(root: Path, commit: str) -> dict[str, dict]:
    """{name: settings} of the remotes in the commit's .dvc/config (what a worker's clone sees)."""
    from configobj import ConfigObj

    text = _git(root, "show", f"{commit}:.dvc/config").stdout
    sections = ConfigObj(text.splitlines())
    found = (re.fullmatch(r'\s*remote\s+"(.+)"\s*', key) for key in sections)
    return {match.group(1): dict(sections[match.group(0)]) for match in found if match}


def check_dvc_remote(root: Path, commit: str, name: str | None) -> str:
    """The DVC remote's name (default: the repo's default remote) after checking that it is in the committed
    config (the workers see only that) and that it answers with the credentials of this environment."""
    from dvc.repo import Repo

    with Repo(os.fspath(root)) as repo:
        remotes = repo.config["remote"]
        name = name or repo.config["core"].get("remote")
        if not name:
            raise UserError(
                "sweep: no DVC remote for the outputs; add a default one (dvc remote add -d NAME URL), commit "
                ".dvc/config and push, or name one with --dvc-remote"
            )
        if name not in remotes:
            known = ", ".join(sorted(remotes)) or "none"
            raise UserError(f"sweep: no DVC remote {name!r} (remotes: {known}); see `dvc remote list`")
        committed = _committed_remotes(root, commit)
        if name not in committed:
            raise UserError(
                f"sweep: DVC remote {name!r} is not in the committed .dvc/config, and the workers see only "
                "committed settings; commit it (keep credentials in the environment or .dvc/config.local)"
            )
        url = committed[name].get("url", "")
        if "://" not in url and not os.path.isabs(url):
            raise UserError(
                f"sweep: DVC remote {name!r} is a relative path ({url}), which each worker's clone would resolve "
                "to a folder of its own; use a URL or an absolute path that every machine mounts"
            )
        try:
            remote = repo.cloud.get_remote(name)
            remote.fs.exists(remote.path)
        except Exception as exc:
            reason = shorten(str(exc) or type(exc).__name__, 200)
            raise PipelineError(f"sweep: DVC remote {name!r} ({remotes[name].get('url')}) refused: {reason}") from None
    return name


def check(repo: Path, git_remote: str, dvc_remote: str | None) -> Target:
    root, repo_url, commit = check_git(repo, git_remote)
    return Target(root, git_remote, repo_url, commit, check_dvc_remote(root, commit, dvc_remote))


@contextmanager
def _quiet_children() -> Iterator[None]:
    """While the local cluster starts its worker processes: SIGINT ignored (they inherit that, so Ctrl-C in the
    terminal reaches only the driver, which stops them in order) and pynvml's deprecation warning off."""
    saved_handler = signal.signal(signal.SIGINT, signal.SIG_IGN)
    saved_warnings = os.environ.get("PYTHONWARNINGS")
    quiet = "ignore::FutureWarning:distributed.diagnostics.nvml"
    os.environ["PYTHONWARNINGS"] = f"{saved_warnings},{quiet}" if saved_warnings else quiet
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, saved_handler)
        if saved_warnings is None:
            os.environ.pop("PYTHONWARNINGS")
        else:
            os.environ["PYTHONWARNINGS"] = saved_warnings


@contextmanager
def connect(scheduler: str | None, workers: int | None, timeout: float = CONNECT_TIMEOUT) -> Iterator:
    """A Dask client: of the scheduler at `scheduler`, else of a local cluster of `workers` processes (default:
    one per core) with one thread each. Closed (the local cluster stopped) on exit."""
    try:
        with warnings.catch_warnings():  # distributed imports pynvml when present, which warns of its own age
            warnings.simplefilter("ignore", FutureWarning)
            from distributed import Client, LocalCluster
    except ImportError:
        raise UserError("sweep: needs Dask distributed; pip install 'mnist-cnn-dvc[cluster]'") from None
    logging.getLogger("distributed").setLevel(logging.ERROR)
    cluster = None
    try:
        if scheduler is None:
            count = workers or len(os.sched_getaffinity(0))
            with _quiet_children():
                cluster = LocalCluster(
                    n_workers=count,
                    threads_per_worker=1,
                    processes=True,
                    dashboard_address=":0",  # any free port: never a warning that 8787 is taken
                    silence_logs=logging.ERROR,
                )
            client = Client(cluster, timeout=timeout)
        else:
            if workers is not None:
                raise UserError("sweep: --workers sizes the local cluster only; with --scheduler, start workers there")
            try:
                client = Client(scheduler, timeout=timeout)
            except (OSError, TimeoutError, ValueError) as exc:
                reason = "no answer" if isinstance(exc, OSError | TimeoutError) else shorten(str(exc), 120)
                raise PipelineError(
                    f"sweep: cannot reach the Dask scheduler at {scheduler} ({reason} within {timeout:g} s); "
                    "start it (dask scheduler) or leave out --scheduler for a local cluster"
                ) from None
        try:
            yield client
        finally:
            client.close()
    finally:
        if cluster is not None:
            cluster.close()


# ---- running ----------------------------------------------------------------------------------------------


@dataclass
class Tally:
    """Counts and durations of the finished points, for the progress line and the summary."""

    total: int
    started: float = field(default_factory=time.monotonic)
    outcomes: list[Outcome] = field(default_factory=list)

    def count(self, status: str) -> int:
        return sum(outcome.status == status for outcome in self.outcomes)

    def line(self, running: int) -> str:
        ran = [o for o in self.outcomes if o.status in (PUSHED, FAILED)]
        left = self.total - len(self.outcomes)
        eta = "--"
        if ran and left:
            eta = duration((time.monotonic() - self.started) / len(ran) * left)
        done = self.count(PUSHED) + self.count(SKIPPED)
        return f"sweep: {done}/{self.total} done, {running} running, {self.count(FAILED)} failed, ETA {eta}"


def describe(outcome: Outcome, job: Job) -> str:
    """One log line for a finished point."""
    where = f" in {outcome.seconds:.0f} s on {outcome.host}" if outcome.status != SKIPPED else ""
    text = f"{outcome.status:<7} {outcome.name}  {' '.join(job.overrides)}{where}"
    return f"{text}: {outcome.error}" if outcome.error else text


def _outcome_of(future, job: Job) -> Outcome:
    if future.status == "finished":
        return Outcome(**future.result())
    if future.status == "error":
        exc = future.exception()
        return Outcome(job.name, FAILED, error=shorten(f"{type(exc).__name__}: {exc}", 200))
    return Outcome(job.name, FAILED, error="cancelled by the cluster")


def execute(client, jobs: list[Job], report: Callable[[str], None], status) -> list[Outcome]:
    """Submit one task per job, report each finished point, keep the status line fresh; Ctrl-C stops them all."""
    from distributed import Event

    event_name = f"mnist-cnn-sweep-stop-{uuid.uuid4().hex}"
    stop = Event(event_name, client=client)
    token = uuid.uuid4().hex[:8]
    futures = {
        client.submit(
            sweep_task.run_point, dataclasses.replace(job, stop_event=event_name), key=f"{job.name}-{token}", pure=False
        ): job
        for job in jobs
    }
    tally = Tally(len(futures))
    pending = dict(futures)
    try:
        while pending:
            for future in [f for f in pending if f.done()]:
                job = pending.pop(future)
                outcome = _outcome_of(future, job)
                tally.outcomes.append(outcome)
                report(describe(outcome, job))
            keys = {future.key for future in pending}
            running = sum(len(keys.intersection(tasks)) for tasks in client.processing().values())
            status(tally.line(running))
            if pending:
                time.sleep(0.5)
    except KeyboardInterrupt:
        stop.set()
        client.cancel(list(futures), force=True)
        raise SweepInterruptedError(
            f"sweep: interrupted; {len(pending)} unfinished points cancelled, none of them pushed, "
            f"{tally.count(PUSHED)} pushed; run the same command again to finish the rest"
        ) from None
    return tally.outcomes


def _dvc(root: Path, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    return subprocess.run(
        [str(Path(sys.executable).parent / "dvc"), *args], cwd=root, env=env, capture_output=True, text=True
    )


def table(root: Path, names: list[str], sort_by: str, choices: list[str]) -> str:
    """The ranked Markdown table of `python -m pipeline compare`, of the baseline and the sweep's experiments."""
    frame = compare.load(root)
    keep = frame["Experiment"].isin(names) | (frame["typ"] == "baseline")
    return compare.markdown(compare.ranked(frame[keep], sort_by, choices))


def run(
    sets: list[str],
    seeds: str | None,
    scheduler: str | None,
    workers: int | None,
    repo: Path,
    git_remote: str,
    dvc_remote: str | None,
    sort_by: str,
    connect_timeout: float,
    report: Callable[[str], None],
    status: Callable[[str], None],
    show: Callable[[str], None],
) -> None:
    """The whole sweep: `report` gets one line per point, `status` the progress line, `show` the ranked table.
    Raises PipelineError at the end when a point failed (the others complete)."""
    from dvc.repo.experiments.refs import ExpRefInfo

    points = grid(sets, seeds)  # a bad grid is refused before the checks, which take seconds
    if workers is not None and workers < 1:
        raise UserError(f"sweep: --workers must be >= 1, got {workers}")
    target = check(repo, git_remote, dvc_remote)
    choices = compare.metric_names(target.root)
    compare.check_choice(sort_by, choices, "sweep")  # before any point runs, not after the whole sweep
    jobs = [Job(experiment_name(p), p, target.repo_url, target.commit, target.dvc_remote) for p in points]
    by_name = {job.name: job for job in jobs}
    pushed = sweep_task.remote_refs(target.repo_url, f"{ExpRefInfo(target.commit)}/*")  # this commit's experiments
    todo = [job for job in jobs if job.ref not in pushed]
    outcomes = [Outcome(job.name, SKIPPED) for job in jobs if job.ref in pushed]
    for outcome in outcomes:
        report(describe(dataclasses.replace(outcome, error=f"already on {git_remote}"), by_name[outcome.name]))
    if todo:
        with connect(scheduler, workers, connect_timeout) as client:
            outcomes += execute(client, todo, report, status)
    failed = [o for o in outcomes if o.status in (FAILED, CANCELLED)]
    names = [o.name for o in outcomes if o.status in (PUSHED, SKIPPED)]
    if names:
        pulled = _dvc(target.root, "exp", "pull", git_remote, *names)
        if pulled.returncode != 0:
            raise PipelineError(f"sweep: dvc exp pull {git_remote} failed: {sweep_task.error_line(pulled.stderr)}")
        show(table(target.root, names, sort_by, choices))
    report(
        f"sweep: {len(jobs)} points: {sum(o.status == PUSHED for o in outcomes)} run and pushed, "
        f"{sum(o.status == SKIPPED for o in outcomes)} already on {git_remote}, {len(failed)} failed"
    )
    for outcome in failed:
        report(describe(outcome, by_name[outcome.name]))
    if failed:
        raise PipelineError(
            f"sweep: {len(failed)} of {len(jobs)} points failed (listed above); fix them and run the same "
            "command again: the points already pushed are skipped"
        )
