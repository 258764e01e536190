"""Every command's --help as a user reads it in an 80-column terminal: summaries whole, paragraphs filled
(no line that ends mid-sentence where the next word would have fit), flags without a `<bool>` value; and
what a stage prints says what it counted."""

import itertools
import re

import pytest
from typer.main import get_command
from typer.testing import CliRunner

from pipeline import cli
from tests.dvc_project import ROOT

WIDTH = 80
COMMANDS = ["", *get_command(cli.app).commands]


def help_page(command: str) -> str:
    args = [command, "--help"] if command else ["--help"]
    result = CliRunner().invoke(cli.app, args, terminal_width=WIDTH, env={"COLUMNS": str(WIDTH)})
    assert result.exit_code == 0, result.output
    return result.output


def paragraphs(page: str) -> list[list[str]]:
    """The description's paragraphs (between the usage line and the first section), as lists of lines."""
    description = re.split(r"\n(?:Options|Arguments|Commands):\n", page)[0].split("\n", 1)[1]
    return [block.splitlines() for block in description.strip("\n").split("\n\n")]


@pytest.mark.parametrize("command", COMMANDS, ids=[c or "pipeline" for c in COMMANDS])
def test_help_paragraphs_are_filled_not_broken_mid_sentence(command: str) -> None:
    page = help_page(command)
    assert max(map(len, page.splitlines())) <= WIDTH, page
    for lines in paragraphs(page):
        for line, after in itertools.pairwise(lines):
            next_word = after.split()[0]
            assert len(line) + 1 + len(next_word) > WIDTH, f"{command}: line broken early:\n{line}\n{after}"


@pytest.mark.parametrize("command", COMMANDS, ids=[c or "pipeline" for c in COMMANDS])
def test_flags_show_no_value(command: str) -> None:
    page = help_page(command)
    assert "<bool>" not in page, page
    assert re.search(r"^\s+--help\s+Show this message and exit\.", page, re.M), page


def test_the_command_list_shows_each_summary_whole() -> None:
    page = help_page("")
    listing = page.split("Commands:\n")[1].splitlines()
    for name, command in get_command(cli.app).commands.items():
        summary = command.help.split("\n\n")[0].strip()
        assert any(line.split(None, 1) == [name, summary] for line in listing), (name, summary, listing)


def test_evaluate_says_what_it_counted(tmp_path, split_file) -> None:
    import cnn

    split_file(name="test.npz", part="test")
    net = cnn.Sequential(cnn.build(cnn.NOTEBOOK_LAYERS, n_classes=2), seed=0)
    net.meta = {"classes": [0, 1], "loss": "binary_cross_entropy"}
    cnn.save(net, tmp_path / "model.npz")
    args = ["evaluate", "--model", str(tmp_path / "model.npz"), "--data", str(tmp_path / "test.npz")]
    args += ["--metrics", str(tmp_path / "metrics.json"), "--reports", str(tmp_path / "reports")]
    result = CliRunner().invoke(cli.app, args)
    assert result.exit_code == 0, result.output
    assert re.fullmatch(r"evaluate: accuracy [\d.]+, loss [\d.]+ on 200 test images\n", result.output), result.output


@pytest.mark.parametrize("where", ["workspace", "queued copy", "no experiment"])
def test_check_says_how_to_undo_a_bad_exp_run_set_only_in_the_workspace(tmp_path, monkeypatch, where: str) -> None:
    text = (ROOT / "params.yaml").read_text().replace("learning_rate: 0.1", "learning_rate: abc")
    (tmp_path / "params.yaml").write_text(text)
    monkeypatch.chdir(tmp_path)
    env = {"DVC_EXP_BASELINE_REV": "0" * 40, "DVC_ROOT": str(tmp_path)}  # what `dvc exp run` gives a stage
    if where == "queued copy":
        env["DVC_ROOT"] = str(tmp_path / "the-workspace")  # a queued run works in a copy; DVC_ROOT: the workspace
    if where == "no experiment":
        env = {"DVC_EXP_BASELINE_REV": "", "DVC_ROOT": ""}
    result = CliRunner().invoke(cli.app, ["check", "--out", str(tmp_path / "stamp")], env=env)
    assert result.exit_code == 2
    lines = result.output.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: params.yaml: train.learning_rate = 'abc' is not allowed")
    way_back = "`git show HEAD:params.yaml > params.yaml`" in lines[0] and "`dvc repro`" in lines[0]
    assert way_back == (where == "workspace"), lines[0]
