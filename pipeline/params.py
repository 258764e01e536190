"""Read and check params.yaml: each stage gets a typed, validated view of only the section it reads.

Every problem is a UserError naming the file, the key, a short rendering of the value and what is allowed,
before any work starts. Each rule carries the values at and just past its edges (`Rule.edges`), so the
tests check every bound of every key from this one table.
"""

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError, YAMLError

from pipeline import sources
from pipeline.errors import UserError, render, shorten

DEFAULT_PARAMS = Path("params.yaml")
MAX_PARAMS_BYTES = 1 << 20  # a params file is a few kB; a larger one is not a params file


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
    preset: str | None = None
    nesterov: bool = False
    weight_decay: float = 0.0
    schedule: dict | None = None
    augment: dict | None = None


@dataclass(frozen=True)
class Rule:
    """What a key accepts: `check(value)`, the words that say so, and its edges for the tests:
    `good` values at the edges (accepted) and `bad` ones just past them (refused)."""

    check: Callable[[Any], bool]
    allowed: str
    good: tuple = ()
    bad: tuple = ()
    optional: bool = False  # a key params.yaml may leave out: then the TrainParams default holds


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return (_is_int(value) or isinstance(value, float)) and math.isfinite(value)


def _int(minimum: int) -> Rule:
    return Rule(lambda v: _is_int(v) and v >= minimum, f"an integer >= {minimum}", (minimum,), (minimum - 1, 1.5, True))


def _fraction(allowed: str) -> Rule:
    """A number in [0, 1)."""
    below_one = math.nextafter(1.0, 0.0)
    return Rule(lambda v: _is_number(v) and 0 <= v < 1, allowed, (0, below_one), (-1e-9, 1, 1.0, math.nan))


def _choice(allowed: tuple[str, ...]) -> Rule:
    return Rule(lambda v: v in allowed, "one of " + ", ".join(allowed), allowed, ("", allowed[0].upper() + "x", 1))


def _digits_ok(value: Any) -> bool:
    return (
        isinstance(value, list)
        and 2 <= len(value) <= 10
        and all(_is_int(d) and 0 <= d <= 9 for d in value)
        and len(set(value)) == len(value)
    )


def _mirrors_ok(value: Any) -> bool:
    return value is None or (isinstance(value, list) and bool(value) and all(isinstance(m, str) for m in value))


def _sha256_ok(value: Any) -> bool:
    if value is None:
        return True
    if not isinstance(value, dict):
        return False
    try:
        sources.check_sha256(value)
    except UserError:
        return False
    return True


def _layers_ok(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(s, dict) and "type" in s for s in value)


def _spec(example: str) -> Rule:
    """null or a mapping, checked further by cnn's factory (check_recipe)."""
    allowed = f"null or a mapping like {example}"
    return Rule(lambda v: v is None or isinstance(v, dict), allowed, (None,), ([], "x"), optional=True)


@functools.cache
def _train_rules() -> dict[str, Rule]:
    """The train section's rules; its choices are cnn's own registries (optimizers, losses, inits, dtypes). Built
    on first use: the stages that read only the data section (download, preprocess) do not load cnn's network code."""
    import cnn

    return {
        "seed": _int(0),
        "epochs": _int(1),
        "batch_size": _int(1),
        "learning_rate": Rule(
            lambda v: _is_number(v) and v > 0, "a number > 0, e.g. 0.1", (5e-324, 1e3), (0, 0.0, -0.1, math.inf, "fast")
        ),
        "optimizer": _choice(tuple(cnn.OPTIMIZERS)),
        "momentum": _fraction("a number in [0, 1), e.g. 0.9"),
        "loss": _choice(tuple(cnn.LOSSES)),
        "init": _choice(tuple(cnn.INITIALIZERS)),
        "dtype": _choice(tuple(cnn.DTYPES)),
        "validation_fraction": _fraction("a number in [0, 1), e.g. 0.1"),
        "layers": Rule(
            _layers_ok,
            "a non-empty list of layers like {type: dense, units: 100}",
            ([{"type": "flatten"}, {"type": "dense"}],),
            ([], [{"units": 3}], [["dense"]], {"type": "dense"}),
        ),
        "preset": Rule(
            lambda v: v is None or (isinstance(v, str) and bool(v)),
            "null or the name of a file in presets/, e.g. keras-convnet",
            (None, "keras-convnet"),
            ("", 1, ["keras-convnet"]),
            True,
        ),
        "nesterov": Rule(lambda v: isinstance(v, bool), "true or false", (False, True), (0, "yes", None), True),
        "weight_decay": Rule(
            lambda v: _is_number(v) and v >= 0,
            "a number >= 0, e.g. 0.0001",
            (0, 0.0, 1e-4),
            (-1e-9, math.inf, "x"),
            optional=True,
        ),
        "schedule": _spec("{type: step, gamma: 0.7}"),
        "augment": _spec("{shift: 2, rotate: 10}"),
    }


_HEX = "0" * 64
DATA_RULES: dict[str, Rule] = {
    "source": _choice(sources.SOURCES),
    "mirrors": Rule(
        _mirrors_ok,
        "null or a non-empty list of URLs or folders",
        (None, ["http://127.0.0.1/"]),
        ([], "http://one.example/", [1]),
    ),
    "sha256": Rule(
        _sha256_ok,
        "null or a mapping {file name: 64 hex digits}",
        (None, {"a.gz": _HEX}, {"a.gz": _HEX.upper()}),
        ({"a.gz": _HEX[:63]}, {"a.gz": _HEX + "0"}, {"a.gz": "g" * 64}, {"../a.gz": _HEX}, [_HEX]),
    ),
    "digits": Rule(
        _digits_ok,
        "a list of 2 to 10 distinct digits from 0 to 9, e.g. [0, 1]",
        ([0, 9], list(range(10))),
        ([0, 10], [-1, 0], [3], [*range(10), 0], [1, 1], [0, True], "01"),
    ),
    "limit_per_class": _int(1),
    "seed": _int(0),
}
SECTIONS = {"data": DataParams, "train": TrainParams}


def section_rules(name: str) -> dict[str, Rule]:
    """The rules of section `name` (data or train)."""
    return _train_rules() if name == "train" else DATA_RULES


def load_yaml(path: Path) -> dict:
    """The whole params file as a mapping; a missing, unreadable, oversized or malformed file is a UserError."""
    path = Path(path)
    try:
        with open(path, "rb") as handle:
            data = handle.read(MAX_PARAMS_BYTES + 1)
    except FileNotFoundError:
        raise UserError(f"{path}: no such params file; run from the project root or pass --params") from None
    except IsADirectoryError:
        raise UserError(f"{path}: a folder, not a params file; pass the YAML file with --params") from None
    except OSError as exc:
        raise UserError(f"{path}: cannot read params file ({exc.strerror})") from None
    if len(data) > MAX_PARAMS_BYTES:
        raise UserError(f"{path}: larger than {MAX_PARAMS_BYTES >> 10} kB, not a params file; restore params.yaml")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise UserError(
            f"{path}: byte 0x{data[exc.start]:02x} at line {line} is not UTF-8; save the file as UTF-8"
        ) from None
    try:
        parsed = YAML(typ="safe", pure=True).load(text)
    except YAMLError as exc:
        mark = exc.problem_mark if isinstance(exc, MarkedYAMLError) else None
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = f" ({shorten(exc.problem, 80)})" if isinstance(exc, MarkedYAMLError) and exc.problem else ""
        raise UserError(
            f"{path}: not valid YAML{where}{problem}; fix the syntax, or restore it with `git checkout params.yaml`"
        ) from None
    if not isinstance(parsed, dict):
        raise UserError(f"{path}: expected a mapping with sections {', '.join(SECTIONS)}")
    return parsed


def check_section(path: Path, name: str, data: dict) -> Any:
    """Validate section `name` of the parsed params `data`; return it as its dataclass."""
    return _checked(path, name, data)[0]


def _checked(path: Path, name: str, data: dict) -> tuple[Any, dict[str, Path]]:
    """Section `name` of `data` as its dataclass, and for each key the file it came from (params.yaml, or for a
    preset's recipe the preset's file)."""
    values = data.get(name)
    if not isinstance(values, dict):
        raise UserError(f"{path}: missing section '{name}:' (a mapping); see README 'params.yaml reference'")
    rules = section_rules(name)
    unknown = sorted((k for k in values if k not in rules), key=str)
    if unknown:
        key = unknown[0] if isinstance(unknown[0], str) and len(unknown[0]) <= 40 else render(unknown[0], 40)
        raise UserError(f"{path}: unknown key {name}.{key}; allowed keys in '{name}': {', '.join(rules)}")
    where = {key: path for key in values}
    if name == "train":
        from pipeline import presets  # here, not at the top: the stages that read only `data` never load it

        if values.get("preset") is not None and rules["preset"].check(values["preset"]):
            effective = presets.apply(values, load_yaml)
            preset_path = presets.path_of(values["preset"])
            where.update({key: preset_path for key in effective if key not in presets.FROM_PARAMS})
            unknown = sorted((k for k in effective if k not in rules), key=str)
            if unknown:
                key = render(unknown[0], 40)
                raise UserError(f"{preset_path}: unknown key train.{key}; allowed: {', '.join(rules)}")
            values = effective
    for key, rule in rules.items():
        if key not in values:
            if rule.optional:
                continue
            raise UserError(f"{path}: missing key {name}.{key}; it must be {rule.allowed}")
        if not rule.check(values[key]):
            raise UserError(
                f"{where[key]}: {name}.{key} = {render(values[key])} is not allowed; it must be {rule.allowed}"
            )
    cls = SECTIONS[name]
    result = cls(**{f.name: values[f.name] for f in fields(cls) if f.name in values})
    if name == "train":
        check_recipe(where, result)
    return result, where


def check_recipe(where: dict[str, Path], train: "TrainParams") -> None:
    """The parts of a recipe that only cnn's factories can judge: the schedule and augmentation specs, and
    the optimizer's options (Nesterov needs SGD momentum)."""
    import cnn

    for key, factory in (("schedule", cnn.make_schedule), ("augment", cnn.make_augment)):
        spec = getattr(train, key)
        try:
            if key == "schedule":
                factory(spec, train.learning_rate, train.epochs, 1)
            else:
                factory(spec)
        except ValueError as exc:
            raise UserError(f"{where.get(key)}: train.{key}: {shorten(str(exc))}") from None
    if train.nesterov and (train.optimizer != "sgd" or train.momentum == 0):
        raise UserError(
            f"{where.get('nesterov')}: train.nesterov = true needs optimizer sgd with momentum > 0 "
            f"(now {train.optimizer}, momentum {train.momentum:g}); set nesterov: false or add momentum"
        )


def section(path: Path, name: str) -> Any:
    """Validate and return one section of params.yaml as its dataclass (DataParams or TrainParams)."""
    return check_section(path, name, load_yaml(path))


def check_all(path: Path) -> tuple[DataParams, TrainParams]:
    """Everything a run needs from params.yaml, checked before any stage runs: both sections, the data
    source and the network that train.layers describes for data.digits (built, not trained)."""
    data = load_yaml(path)
    data_params = check_section(path, "data", data)
    train_params, where = _checked(path, "train", data)
    import cnn

    sources.resolve_source(data_params.source, data_params.mirrors, data_params.sha256)
    try:
        cnn.build(train_params.layers, input_shape=(1, 28, 28), n_classes=len(data_params.digits))
    except cnn.ArchitectureError as exc:
        raise UserError(f"{where['layers']}: {shorten(str(exc))}") from None
    return data_params, train_params


def preset_note(path: Path) -> str | None:
    """One line naming the train keys of params.yaml that the chosen preset overrides, or None."""
    train = load_yaml(path).get("train") or {}
    if not isinstance(train, dict) or train.get("preset") is None:
        return None
    from pipeline import presets

    overridden = presets.ignored(train, presets.apply(train, load_yaml))
    if not overridden:
        return None
    return (
        f"note: train.preset = {train['preset']}: the preset's recipe is used; params.yaml's "
        f"{', '.join('train.' + key for key in overridden)} are not read (only train.seed is)"
    )
