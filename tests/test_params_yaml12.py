"""params.yaml is read as DVC reads it (YAML 1.2): a value that `dvc exp run -S` writes back, or that
`dvc params diff` shows as a number, is a number for the pipeline too."""

import shutil
from pathlib import Path

import pytest
from dvc.utils.hydra import apply_overrides
from dvc.utils.serialize import load_yaml as dvc_load_yaml

from pipeline import params
from pipeline.errors import UserError

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(
    ("override", "value"),
    [
        ("train.learning_rate=1e-3", 1e-3),
        ("train.learning_rate=1e-5", 1e-5),  # written back as 1e-05: a string for YAML 1.1 readers
        ("train.learning_rate=3e-4", 3e-4),
        ("train.learning_rate=1e-10", 1e-10),
        ("train.learning_rate=1e20", 1e20),  # written back as 1e+20
        ("train.momentum=5E-1", 0.5),
    ],
)
def test_what_dvc_exp_run_set_writes_back_is_read_as_dvc_reads_it(tmp_path: Path, override: str, value) -> None:
    path = tmp_path / "params.yaml"
    shutil.copy(ROOT / "params.yaml", path)
    apply_overrides(path, [override])  # what `dvc exp run -S` does to params.yaml
    key = override.split("=")[0].split(".")[1]
    assert dvc_load_yaml(path)["train"][key] == value
    assert getattr(params.section(path, "train"), key) == value


@pytest.mark.parametrize("text", ["1e-3", "1.0e-3", "1E-3", "1e-03", ".001"])
def test_a_hand_written_exponent_is_a_number(tmp_path: Path, text: str) -> None:
    path = tmp_path / "params.yaml"
    path.write_text((ROOT / "params.yaml").read_text().replace("learning_rate: 0.1", f"learning_rate: {text}"))
    assert params.section(path, "train").learning_rate == 0.001


@pytest.mark.parametrize(("text", "shown"), [("yes", "'yes'"), ("1e", "'1e'"), ("0x1p-3", "'0x1p-3'")])
def test_what_yaml_1_2_keeps_a_string_is_refused_as_one(tmp_path: Path, text: str, shown: str) -> None:
    path = tmp_path / "params.yaml"
    path.write_text((ROOT / "params.yaml").read_text().replace("learning_rate: 0.1", f"learning_rate: {text}"))
    assert dvc_load_yaml(path)["train"]["learning_rate"] == text
    with pytest.raises(UserError, match=f"train.learning_rate = {shown} is not allowed"):
        params.section(path, "train")


def test_a_syntax_error_is_one_line_with_its_place_and_the_way_back(tmp_path: Path) -> None:
    path = tmp_path / "params.yaml"
    path.write_text((ROOT / "params.yaml").read_text().replace("  epochs: 20", "  epochs: [20"))
    with pytest.raises(UserError) as error:
        params.check_all(path)
    message = str(error.value)
    assert "\n" not in message
    assert message.startswith(f"{path}: not valid YAML at line ")
    assert "git checkout params.yaml" in message
