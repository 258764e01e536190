"""`python -m pipeline compare`: the experiments of this repo as a ranked Markdown table.

Reads what `dvc exp show` shows (through dvc.api.exp_show) into a pandas DataFrame, keeps the params whose
values differ between the runs and the metrics users compare first, and ranks the runs by one metric.
"""

import os
from pathlib import Path

import pandas as pd

from pipeline import atomic
from pipeline.errors import UserError

KEY_METRICS = ("accuracy", "loss", "roc_auc")
EVALUATION = "metrics.json"
LOWER_IS_BETTER = {"loss"}
_BOOKKEEPING = {"Experiment", "rev", "typ", "Created", "parent", "State", "Executor"}


def load(repo: str | os.PathLike = ".") -> pd.DataFrame:
    """One row per experiment and commit that `dvc exp show` lists, as dvc.api gives them."""
    import dvc.api
    from dvc.exceptions import DvcException

    try:
        records = dvc.api.exp_show(repo=os.fspath(repo))
    except DvcException as exc:
        message = f"compare: cannot read the experiments of {repo} ({exc}); run it in a git repo with DVC"
        raise UserError(message) from None
    return pd.DataFrame(records)


def stage_metrics_files(repo: str | os.PathLike = ".") -> list[str]:
    """The metrics files the stages write (their `metrics:` outs in DVC's index), relative to the repo's root; not
    the top-level live file of a running epoch: only a stage's metrics are kept with every experiment."""
    from dvc.exceptions import DvcException
    from dvc.repo import Repo

    try:
        with Repo(os.fspath(repo)) as dvc_repo:
            root = dvc_repo.root_dir
            return [Path(os.path.relpath(out.fs_path, root)).as_posix() for out in dvc_repo.index.outs if out.metric]
    except DvcException:
        return []


def metric_names(repo: str | os.PathLike = ".") -> list[str]:
    """The names of the metrics in the stages' metrics files, as `dvc metrics show` lists them: the choices of
    --sort-by. Params, the hashes of code deps and the live file's last epoch are not among them."""
    import dvc.api
    from dvc.exceptions import DvcException

    files = stage_metrics_files(repo)
    try:
        shown = dvc.api.metrics_show(*files, repo=os.fspath(repo)) if files else {}
    except (DvcException, OSError):
        return list(KEY_METRICS)
    return list(dict.fromkeys(name.rpartition(":")[2] for name in shown)) or list(KEY_METRICS)


def check_choice(sort_by: str, choices: list[str] | tuple, command: str = "compare") -> None:
    """A one-line error naming the choices when `sort_by` is not one of them (`command` starts the line)."""
    if sort_by not in choices:
        raise UserError(f"{command}: no metric {sort_by!r} in the metrics files; sort by one of {', '.join(choices)}")


def _column(frame: pd.DataFrame, metric: str) -> str | None:
    """The column of `metric`: its bare name, or when DVC had to say which file it is from, the one of the
    evaluation's metrics.json first, else of any file."""
    for name in (metric, f"{EVALUATION}:{metric}"):
        if name in frame.columns:
            return name
    names = [c for c in frame.columns if c.endswith(f":{metric}")]
    return names[0] if names else None


def _param_columns(frame: pd.DataFrame, metric_columns: set[str]) -> list[str]:
    """Params (dotted names such as train.learning_rate) whose value is not the same in every row."""
    params = [c for c in frame.columns if c not in _BOOKKEEPING and c not in metric_columns and "." in c]
    params = [c for c in params if not c.endswith((".json", ".npz", ".py")) and "/" not in c]  # deps' hashes
    return [c for c in params if frame[c].astype(str).nunique(dropna=False) > 1]


def ranked(frame: pd.DataFrame, sort_by: str = "accuracy", choices: list[str] | tuple = KEY_METRICS) -> pd.DataFrame:
    """The finished runs ranked by `sort_by`, one of `choices` (the metrics' names; best first; lower is better
    for loss; ties broken by the lower loss): rank, experiment, the params that differ, then the key metrics.
    The workspace (a copy of the last applied run) and runs without the metric (queued, failed) are left out."""
    check_choice(sort_by, choices)
    metrics = {m: _column(frame, m) for m in dict.fromkeys((sort_by, *KEY_METRICS))}
    if metrics[sort_by] is None:
        raise UserError(f"compare: no experiment has the metric {sort_by!r}; run one with `dvc exp run`")
    done = frame[frame[metrics[sort_by]].notna() & (frame["rev"] != "workspace")].copy()
    if done.empty:
        raise UserError("compare: no finished experiment yet; run one with `dvc exp run` (or `dvc queue start`)")
    done["experiment"] = done["Experiment"].fillna(done["rev"])
    found = {m: c for m, c in metrics.items() if c is not None}
    params = _param_columns(done, set(found.values()))
    table = done[["experiment", *params, *found.values()]].rename(columns={c: m for m, c in found.items()})
    keys = list(dict.fromkeys([sort_by, *(["loss"] if "loss" in table else [])]))
    table = table.sort_values(keys, ascending=[key in LOWER_IS_BETTER for key in keys], kind="stable")
    table.insert(0, "rank", range(1, len(table) + 1))
    return table.reset_index(drop=True)


def _cell(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value).replace("|", "\\|")


def markdown(table: pd.DataFrame) -> str:
    """A GitHub-flavoured Markdown table: numbers right-aligned, floats to 6 significant digits."""
    align = ["---:" if pd.api.types.is_numeric_dtype(table[c]) else "---" for c in table.columns]
    lines = ["| " + " | ".join(table.columns) + " |", "|" + "|".join(align) + "|"]
    lines += ["| " + " | ".join(_cell(v) for v in row) + " |" for row in table.itertuples(index=False)]
    return "\n".join(lines) + "\n"


def run(repo: Path, sort_by: str, out: Path | None) -> str:
    choices = metric_names(repo)
    check_choice(sort_by, choices)  # before reading every experiment
    text = markdown(ranked(load(repo), sort_by, choices))
    if out is not None:
        atomic.write_text(out, text)
    return text
