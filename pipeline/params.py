"""Read and check params.yaml: each stage gets a typed, validated view of only the section it reads.

Every problem is a UserError naming the file, the key, the value and what is allowed, before any work starts.
"""

import math
from collections.abc import Callable
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import yaml

import cnn
from pipeline import download
from pipeline.errors import UserError

DEFAULT_PARAMS = Path("params.yaml")
SOURCES = download.SOURCES
OPTIMIZERS = tuple(cnn.OPTIMIZERS)
LOSSES = tuple(cnn.LOSSES)
INITS = cnn.INITIALIZERS
DTYPES = ("float64", "float32")


@dataclass(frozen=True)
class DataParams:
    source: str
    mirrors: list[str] | None
    sha256: dict[str, str] | None
    digits: list[int]
    limit_per_class: int
    seed: int


@dataclass(frozen=True)
class TrainParams:
    seed: int
    epochs: int
    batch_size: int
    learning_rate: float
    optimizer: str
    momentum: float
    loss: str
    init: str
    dtype: str
    validation_fraction: float
    layers: list[dict]


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return (_is_int(value) or isinstance(value, float)) and math.isfinite(value)


def _int(minimum: int) -> tuple[Callable[[Any], bool], str]:
    return (lambda v: _is_int(v) and v >= minimum), f"an integer >= {minimum}"


def _choice(allowed: tuple[str, ...]) -> tuple[Callable[[Any], bool], str]:
    return (lambda v: v in allowed), "one of " + ", ".join(allowed)


def _digits_ok(value: Any) -> bool:
    return (
        isinstance(value, list)
        and 2 <= len(value) <= 10
        and all(_is_int(d) and 0 <= d <= 9 for d in value)
        and len(set(value)) == len(value)
    )


def _mirrors_ok(value: Any) -> bool:
    return value is None or (isinstance(value, list) and value and all(isinstance(m, str) for m in value))


def _sha256_ok(value: Any) -> bool:
    hexdigits = set("0123456789abcdef")
    return value is None or (
        isinstance(value, dict)
        and all(isinstance(k, str) and isinstance(v, str) for k, v in value.items())
        and all(len(v) == 64 and set(v.lower()) <= hexdigits for v in value.values())
    )


def _layers_ok(value: Any) -> bool:
    return isinstance(value, list) and value and all(isinstance(s, dict) and "type" in s for s in value)


RULES: dict[str, dict[str, tuple[Callable[[Any], bool], str]]] = {
    "data": {
        "source": _choice(SOURCES),
        "mirrors": (_mirrors_ok, "null or a non-empty list of URLs or folders"),
        "sha256": (_sha256_ok, "null or a mapping {file name: 64 hex digits}"),
        "digits": (_digits_ok, "a list of 2 to 10 distinct digits from 0 to 9, e.g. [0, 1]"),
        "limit_per_class": _int(1),
        "seed": _int(0),
    },
    "train": {
        "seed": _int(0),
        "epochs": _int(1),
        "batch_size": _int(1),
        "learning_rate": ((lambda v: _is_number(v) and v > 0), "a number > 0, e.g. 0.1"),
        "optimizer": _choice(OPTIMIZERS),
        "momentum": ((lambda v: _is_number(v) and 0 <= v < 1), "a number in [0, 1)"),
        "loss": _choice(LOSSES),
        "init": _choice(INITS),
        "dtype": _choice(DTYPES),
        "validation_fraction": ((lambda v: _is_number(v) and 0 <= v < 1), "a number in [0, 1)"),
        "layers": (_layers_ok, "a non-empty list of layers like {type: dense, units: 100}"),
    },
}
SECTIONS = {"data": DataParams, "train": TrainParams}


def load_yaml(path: Path) -> dict:
    """The whole params file as a mapping; a missing or malformed file is a UserError."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UserError(f"{path}: no such params file; run from the project root or pass --params") from None
    except OSError as exc:
        raise UserError(f"{path}: cannot read params file ({exc.strerror})") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise UserError(f"{path}: not valid YAML{where}; fix the syntax") from None
    if not isinstance(data, dict):
        raise UserError(f"{path}: expected a mapping with sections {', '.join(SECTIONS)}")
    return data


def section(path: Path, name: str) -> Any:
    """Validate and return one section of params.yaml as its dataclass (DataParams or TrainParams)."""
    data = load_yaml(path)
    values = data.get(name)
    if not isinstance(values, dict):
        raise UserError(f"{path}: missing section '{name}:' (a mapping); see README 'params.yaml reference'")
    rules = RULES[name]
    unknown = sorted(set(values) - set(rules))
    if unknown:
        raise UserError(f"{path}: unknown key {name}.{unknown[0]}; allowed keys in '{name}': {', '.join(rules)}")
    for key, (is_ok, allowed) in rules.items():
        if key not in values:
            raise UserError(f"{path}: missing key {name}.{key}; it must be {allowed}")
        if not is_ok(values[key]):
            raise UserError(f"{path}: {name}.{key} = {values[key]!r} is not allowed; it must be {allowed}")
    cls = SECTIONS[name]
    return cls(**{f.name: values[f.name] for f in fields(cls)})
