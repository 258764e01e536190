"""pipeline.compare on rows shaped like dvc.api.exp_show's (the real sweep: tests/test_experiments.py)."""

import pandas as pd
import pytest

from pipeline import compare
from pipeline.errors import UserError


def row(name, rev, lr, batch, accuracy, loss, typ="branch_commit", **extra):
    return {
        "reports/train/metrics.json:loss": 0.5,  # another file's metric of the same name, listed first
        "Experiment": name,
        "rev": rev,
        "typ": typ,
        "Created": "01:00 AM",
        "parent": None,
        "State": None,
        "Executor": None,
        "metrics.json:accuracy": accuracy,
        "metrics.json:loss": loss,
        "metrics.json:roc_auc": None if accuracy is None else 0.99,
        "train.learning_rate": lr,
        "train.batch_size": batch,
        "train.epochs": 3,
        "data.digits": "[0, 1]",
        "models": "abc.dir",
        **extra,
    }


FRAME = pd.DataFrame(
    [
        row(None, "workspace", 0.2, 1, 0.99, 0.3, typ="baseline"),  # the last applied run, again
        row(None, "main", 0.1, 1, 0.97, 0.2, typ="baseline"),
        row("lr-a", "1111111", 0.05, 8, 0.96, 0.1),
        row("lr-b", "2222222", 0.2, 1, 0.99, 0.3),
        row("lr-d", "4444444", 0.4, 1, 0.99, 0.25),  # as accurate as lr-b, lower loss: ranks first
        row("lr-c", "3333333", 0.3, 1, None, None),  # still queued: no metrics
    ]
)


def test_ranked_by_accuracy_with_only_the_params_that_differ():
    table = compare.ranked(FRAME)
    assert table["experiment"].tolist() == ["lr-d", "lr-b", "main", "lr-a"]
    assert table["rank"].tolist() == [1, 2, 3, 4]
    assert list(table.columns) == [
        "rank",
        "experiment",
        "train.learning_rate",
        "train.batch_size",
        "accuracy",
        "loss",
        "roc_auc",
    ]
    assert table["loss"].tolist() == [0.25, 0.3, 0.2, 0.1]  # metrics.json's loss, not the training one


def test_loss_ranks_lowest_first_and_unknown_metrics_are_named():
    assert compare.ranked(FRAME, "loss")["experiment"].tolist()[:2] == ["lr-a", "main"]
    with pytest.raises(UserError, match="no metric 'f1'"):
        compare.ranked(FRAME, "f1")


def test_markdown_table_aligns_numbers_right():
    text = compare.markdown(compare.ranked(FRAME))
    lines = text.splitlines()
    assert lines[0] == "| rank | experiment | train.learning_rate | train.batch_size | accuracy | loss | roc_auc |"
    assert lines[1] == "|---:|---|---:|---:|---:|---:|---:|"
    assert lines[2] == "| 1 | lr-d | 0.4 | 1 | 0.99 | 0.25 | 0.99 |"
    assert len(lines) == 6


def test_no_finished_experiment_is_a_clear_error():
    with pytest.raises(UserError, match="no finished experiment"):
        compare.ranked(FRAME[FRAME["Experiment"] == "lr-c"])


def test_sort_by_takes_metrics_only_and_a_bad_one_gets_the_list():
    frame = FRAME.assign(**{"pipeline/cli.py": "0a1b2c", "cnn/atomic.py": "3d4e5f"})  # code deps' hashes
    metrics = ["parameters", "train_images", "accuracy", "loss", "roc_auc", "test_images"]
    for bad in ("pipeline/cli.py", "cnn/atomic.py", "train.learning_rate", "f1"):
        with pytest.raises(UserError) as error:
            compare.ranked(frame, bad, metrics)
        message = str(error.value)
        assert message == f"compare: no metric {bad!r} in the metrics files; sort by one of {', '.join(metrics)}"


def test_the_choices_are_the_names_in_the_metrics_files():
    from tests.dvc_project import ROOT

    names = compare.metric_names(ROOT)
    assert {"accuracy", "loss", "roc_auc", "test_images"} <= set(names)
    assert not {"step", "learning_rate", "train"} & set(names)  # the live file's last epoch is no choice
    assert not [n for n in names if "/" in n or "." in n], names  # no code dep, no param


def test_the_choices_in_a_fresh_clone_without_the_live_file(tmp_path, monkeypatch):
    """A clone has the stages' metrics files (committed to git) but no live file (gitignored, written by a run)."""
    from tests.dvc_project import Project

    project = Project.create(tmp_path / "clone")
    assert not (project.path / "reports" / "train" / "live").exists()
    monkeypatch.chdir(tmp_path)  # paths relative to the repo's root, not to the working directory
    assert compare.stage_metrics_files(project.path) == ["reports/train/metrics.json", "metrics.json"]
    assert {"accuracy", "loss", "roc_auc", "test_images", "parameters"} <= set(compare.metric_names(project.path))
    assert compare.stage_metrics_files(tmp_path) == []  # not a DVC repo
