"""Named training recipes: presets/<name>.yaml, chosen with `train.preset` in params.yaml.

A preset is data: a YAML file whose `train:` mapping is a whole recipe (network, optimizer, schedule,
augmentation, batch size, epochs, dtype...). While `train.preset` names one, the recipe is the preset's and
params.yaml's other train keys are not read, except `train.seed`: a preset has no seed, so seeds are swept with
`-S train.seed=N` on top of any preset. Keys a preset leaves out take their neutral values (NEUTRAL). To change a
preset's recipe, copy its file under presets/ with another name and choose that name.
"""

from collections.abc import Callable
from pathlib import Path
from typing import Any

from pipeline.errors import UserError

PRESETS_DIR = Path(__file__).resolve().parents[1] / "presets"
FROM_PARAMS = ("seed", "preset")  # the train keys params.yaml keeps while a preset is chosen
NEUTRAL: dict[str, Any] = {  # what a preset leaves out: no momentum, decay, schedule, augmentation or hold-out
    "momentum": 0.0,
    "nesterov": False,
    "weight_decay": 0.0,
    "schedule": None,
    "augment": None,
    "validation_fraction": 0.0,
}


def names() -> list[str]:
    """The presets there are: the stems of presets/*.yaml, sorted."""
    return sorted(path.stem for path in PRESETS_DIR.glob("*.yaml"))


def path_of(name: str) -> Path:
    """presets/<name>.yaml; a UserError naming the presets there are when it does not exist."""
    if not isinstance(name, str) or not name or "/" in name or "\\" in name or name.startswith("."):
        raise UserError(f"train.preset = {name!r} is not a preset name; choose one of {', '.join(names())}")
    path = PRESETS_DIR / f"{name}.yaml"
    if not path.is_file():
        raise UserError(f"train.preset = {name!r}: no file presets/{name}.yaml; choose one of {', '.join(names())}")
    return path


def recipe(name: str, load_yaml: Callable[[Path], dict]) -> dict[str, Any]:
    """The train mapping of preset `name`, with NEUTRAL values for the keys it leaves out."""
    path = path_of(name)
    train = load_yaml(path).get("train")
    if not isinstance(train, dict):
        raise UserError(f"{path}: a preset needs a 'train:' mapping with the recipe; see presets/keras-convnet.yaml")
    misplaced = sorted(set(train) & set(FROM_PARAMS), key=str)
    if misplaced:
        raise UserError(f"{path}: train.{misplaced[0]} does not belong in a preset; it comes from params.yaml")
    return {**NEUTRAL, **train}


def apply(train: dict[str, Any], load_yaml: Callable[[Path], dict]) -> dict[str, Any]:
    """The train mapping a run uses: `train` itself when train.preset is empty, else the preset's recipe with
    params.yaml's seed and preset."""
    name = train.get("preset")
    if name is None:
        return train
    return {**recipe(name, load_yaml), **{key: train[key] for key in FROM_PARAMS if key in train}}


def ignored(train: dict[str, Any], effective: dict[str, Any]) -> list[str]:
    """Keys of params.yaml's train section that a chosen preset overrides with another value, for a note."""
    if train.get("preset") is None:
        return []
    return [key for key in train if key not in FROM_PARAMS and key in effective and train[key] != effective[key]]
