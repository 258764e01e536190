"""The README's promises: its library example runs and reaches the notebook's result."""

import re
from pathlib import Path

import numpy as np
import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


def test_library_example_trains_the_notebook_network(notebook_data, tmp_path: Path, monkeypatch) -> None:
    block = re.search(r"```python\n(.*?)```", README.read_text(), re.S)
    assert block, "README.md has no python example"
    x_train, y_train, x_test, y_test = notebook_data
    monkeypatch.chdir(tmp_path)
    scope = {"x_train": x_train, "y_train": y_train, "x_test": x_test, "y_test": y_test}
    exec(compile(block.group(1), "README.md", "exec"), scope)
    assert scope["accuracy"] >= 0.99
    assert np.array_equal(scope["same"].predict(x_test), scope["net"].predict(x_test))


@pytest.mark.parametrize("command", ["make repro", "make test"])
def test_quick_start_commands_exist_in_the_makefile(command: str) -> None:
    text = README.read_text()
    assert command in text
    target = command.split()[1]
    assert re.search(rf"^{target}:", (README.parent / "Makefile").read_text(), re.M)
