"""params.yaml validation: every key at and just past its edges, from a table written here independently of
pipeline.params' rule tables (a new key needs its rows here), and error messages that stay short whatever the value."""

import copy
import math
import re
from pathlib import Path

import pytest
import yaml

from pipeline import params
from pipeline.errors import UserError, render

ROOT = Path(__file__).resolve().parents[1]
DEFAULTS = yaml.safe_load((ROOT / "params.yaml").read_text())
_HEX = "0" * 64
BELOW_ONE = math.nextafter(1.0, 0.0)
INTEGER = {"good": (0, 1, 7), "bad": (-1, 1.5, True, "1", None)}
POSITIVE = {"good": (1, 2), "bad": (0, -1, 1.5, True)}
FRACTION = {"good": (0, 0.5, BELOW_ONE), "bad": (-1e-9, 1, 1.0, math.nan, "0.1")}
EXPECTED = {
    "data": {
        "source": {"good": ("sample", "mnist"), "bad": ("", "Sample", "cifar", 1)},
        "mirrors": {"good": (None, ["http://127.0.0.1/"], ["/some/folder"]), "bad": ([], "http://one.example/", [1])},
        "sha256": {
            "good": (None, {"a.gz": _HEX}, {"a.gz": _HEX.upper()}),
            "bad": ({"a.gz": _HEX[:63]}, {"a.gz": _HEX + "0"}, {"a.gz": "g" * 64}, {"../a.gz": _HEX}, [_HEX]),
        },
        "digits": {
            "good": ([0, 1], [3, 7], [0, 9], list(range(10))),
            "bad": ([0, 10], [-1, 0], [3], [*range(10), 0], [1, 1], [0, True], "01", []),
        },
        "limit_per_class": POSITIVE,
        "seed": INTEGER,
    },
    "train": {
        "seed": INTEGER,
        "epochs": POSITIVE,
        "batch_size": POSITIVE,
        "learning_rate": {"good": (5e-324, 0.1, 1e3), "bad": (0, 0.0, -0.1, math.inf, math.nan, "fast")},
        "optimizer": {"good": ("sgd", "adam", "adadelta"), "bad": ("", "SGD", "rmsprop", 1)},
        "momentum": FRACTION,
        "loss": {
            "good": ("binary_cross_entropy", "categorical_cross_entropy", "mse"),
            "bad": ("", "cross_entropy", "MSE", 1),
        },
        "init": {
            "good": ("normal", "xavier", "glorot", "he", "glorot_uniform", "pytorch"),
            "bad": ("", "uniform", "He", "torch", 1),
        },
        "dtype": {"good": ("float64", "float32"), "bad": ("", "float16", "double", 32)},
        "validation_fraction": FRACTION,
        "layers": {
            "good": ([{"type": "flatten"}, {"type": "dense"}],),
            "bad": ([], [{"units": 3}], [["dense"]], {"type": "dense"}),
        },
        "preset": {"good": (None, "keras-convnet", "lenet5"), "bad": ("", 1, ["keras-convnet"])},
        "nesterov": {"good": (False,), "bad": (0, "yes", None)},  # true needs momentum: tests/test_presets.py
        "weight_decay": {"good": (0, 0.0, 1e-4, 0.5), "bad": (-1e-9, math.inf, math.nan, "x")},
        "schedule": {"good": (None, {"type": "step", "gamma": 0.7}), "bad": ([], "x", 1)},
        "augment": {"good": (None, {"shift": 2, "rotate": 10}), "bad": ([], "x", 1)},
    },
}
EDGES = [
    (section, key, verdict, value)
    for section, keys in EXPECTED.items()
    for key, values in keys.items()
    for verdict in ("good", "bad")
    for value in values[verdict]
]


def edge_id(edge) -> str:
    section, key, verdict, value = edge
    return f"{section}.{key}={render(value, 30)}:{verdict}"


def write(tmp_path: Path, data: dict) -> Path:
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def test_every_key_has_edges_here() -> None:
    for section, cls in params.SECTIONS.items():
        assert set(EXPECTED[section]) == {f.name for f in cls.__dataclass_fields__.values()}, section


@pytest.mark.parametrize("edge", EDGES, ids=[edge_id(e) for e in EDGES])
def test_each_bound_at_and_just_past_its_edge(tmp_path: Path, edge) -> None:
    section, key, verdict, value = edge
    data = copy.deepcopy(DEFAULTS)
    data[section][key] = value
    path = tmp_path / "params.yaml"
    path.write_text(yaml.dump(data, sort_keys=False))  # yaml.dump: nan and inf round-trip as .nan / .inf
    if verdict == "good":
        assert getattr(params.section(path, section), key) == value
    else:
        with pytest.raises(UserError) as error:
            params.section(path, section)
        message = str(error.value)
        assert f"{section}.{key} = " in message and "it must be" in message and "\n" not in message


@pytest.mark.parametrize(
    ("section", "key", "value"),
    [
        ("data", "digits", [0, 10]),
        ("train", "learning_rate", 0),
        ("train", "momentum", 1),
        ("train", "validation_fraction", 1),
    ],
)
def test_the_edges_the_issues_name_are_refused(tmp_path: Path, section: str, key: str, value) -> None:
    data = copy.deepcopy(DEFAULTS)
    data[section][key] = value
    with pytest.raises(UserError, match=re.escape(f"{section}.{key} = {value!r} is not allowed")):
        params.section(write(tmp_path, data), section)


def test_render_is_short_and_bounded_for_a_shared_structure() -> None:
    bomb: list = ["lol"] * 9
    for _ in range(8):
        bomb = [bomb] * 9  # 9**9 leaves if expanded
    text = render(bomb)
    assert len(text) <= 60 and text.startswith("[[")
    assert render("x" * 10_000).endswith("...") or len(render("x" * 10_000)) <= 60
    assert render(math.nan) == "nan"


def test_alias_bomb_value_gives_a_short_message(tmp_path: Path) -> None:
    lines = ["a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, 9)]
    text = (ROOT / "params.yaml").read_text().replace("epochs: 20", "epochs: *a8")
    path = tmp_path / "params.yaml"
    path.write_text("\n".join(lines) + "\n" + text)
    with pytest.raises(UserError) as error:
        params.section(path, "train")
    assert "train.epochs = [[" in str(error.value) and len(str(error.value)) < 250


def test_file_that_is_not_utf8_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "params.yaml"
    path.write_bytes((ROOT / "params.yaml").read_bytes().replace(b"seed: 42", b"seed: 4\xff2"))
    with pytest.raises(UserError, match=r"byte 0xff at line \d+ is not UTF-8; save the file as UTF-8"):
        params.section(path, "data")


def test_oversized_file_and_folder_are_refused_without_reading_them_whole(tmp_path: Path) -> None:
    big = tmp_path / "big.yaml"
    big.write_bytes(b"#" * (params.MAX_PARAMS_BYTES + 1))
    with pytest.raises(UserError, match="not a params file"):
        params.load_yaml(big)
    with pytest.raises(UserError, match="a folder, not a params file"):
        params.load_yaml(tmp_path)


def test_check_all_builds_the_network_for_the_digits(tmp_path: Path) -> None:
    data = copy.deepcopy(DEFAULTS)
    params.check_all(write(tmp_path, data))
    data["train"]["layers"] = [{"type": "dense", "units": 10}, {"type": "dense"}]
    with pytest.raises(UserError, match=r"train\.layers\[0\]"):
        params.check_all(write(tmp_path, data))
