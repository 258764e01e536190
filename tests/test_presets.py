"""Presets (presets/*.yaml) chosen with train.preset: validated like params, the preset's recipe with params.yaml's
seed, one-line errors naming the preset file, and the train stage building what the recipe says."""

import copy
import dataclasses
import json
import math
from pathlib import Path

import pytest
import yaml

import cnn
from pipeline import params, presets
from pipeline import train as trainer
from pipeline.errors import UserError
from tests.dvc_project import Project
from tests.layer_checks import assert_same_bits_on_one_and_two_cores

ROOT = Path(__file__).resolve().parents[1]
DEFAULTS = yaml.safe_load((ROOT / "params.yaml").read_text())
SHIPPED = ("best", "keras-convnet", "lenet5", "pytorch-example")


def write(tmp_path: Path, **train) -> Path:
    data = copy.deepcopy(DEFAULTS)
    data["train"].update(train)
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def test_the_shipped_presets_are_the_four_the_readme_names() -> None:
    assert presets.names() == list(SHIPPED)


@pytest.mark.parametrize("name", SHIPPED)
@pytest.mark.parametrize("digits", [[0, 1], list(range(10))])
def test_every_preset_passes_check_and_builds_its_network(tmp_path: Path, name: str, digits: list[int]) -> None:
    data = copy.deepcopy(DEFAULTS)
    data["train"]["preset"] = name
    data["data"]["digits"] = digits
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    _, train = params.check_all(path)
    recipe = yaml.safe_load((ROOT / "presets" / f"{name}.yaml").read_text())["train"]
    for key, value in recipe.items():
        assert getattr(train, key) == value, key
    net = trainer.build_network(train, (1, 28, 28), digits)
    assert net.output_shape == (len(digits),)


def test_a_preset_takes_the_seed_from_params_and_neutral_values_for_what_it_leaves_out(tmp_path: Path) -> None:
    train = params.section(write(tmp_path, preset="keras-convnet", seed=7, momentum=0.5, weight_decay=0.1), "train")
    assert (train.seed, train.preset) == (7, "keras-convnet")
    assert (train.momentum, train.weight_decay, train.nesterov, train.schedule, train.augment) == (
        0.0,
        0.0,
        False,
        None,
        None,
    )
    assert (train.optimizer, train.batch_size, train.epochs) == ("adam", 128, 15)


def test_reference_presets_follow_their_examples_hyper_parameter_for_hyper_parameter(tmp_path: Path) -> None:
    keras = params.section(write(tmp_path, preset="keras-convnet"), "train")
    assert (keras.optimizer, keras.learning_rate, keras.batch_size, keras.epochs) == ("adam", 0.001, 128, 15)
    assert (keras.validation_fraction, keras.init) == (0.1, "glorot_uniform")
    assert [s["type"] for s in keras.layers] == [
        "conv", "relu", "maxpool", "conv", "relu", "maxpool", "flatten", "dropout", "dense", "softmax"
    ]  # fmt: skip
    torch_example = params.section(write(tmp_path, preset="pytorch-example"), "train")
    assert (torch_example.optimizer, torch_example.learning_rate, torch_example.batch_size) == ("adadelta", 1.0, 64)
    assert torch_example.schedule == {"type": "step", "gamma": 0.7, "step_size": 1} and torch_example.epochs == 14
    assert [s.get("rate") for s in torch_example.layers if s["type"] == "dropout"] == [0.25, 0.5]


def test_pytorch_example_standardises_its_inputs_in_training_and_in_the_model_file(
    split_file, tmp_path: Path, monkeypatch
) -> None:
    """Two steps of the preset on the shipped sample: its first layer is torchvision's Normalize((0.1307,),
    (0.3081,)), and the saved model keeps it, so predict and evaluate read raw images in [0, 1]."""
    monkeypatch.chdir(tmp_path)
    train = dataclasses.replace(params.section(write(tmp_path, preset="pytorch-example"), "train"), epochs=1)
    result = trainer.run(train, split_file(128), tmp_path / "model.npz", tmp_path / "reports")
    assert len(result.history) == 1 and math.isfinite(result.history[0]["loss"])
    first = cnn.load(tmp_path / "model.npz").layers[0]
    assert first.config() == {"type": "Standardize", "mean": 0.1307, "std": 0.3081, "input_shape": [1, 28, 28]}


def test_pytorch_example_trains_to_the_same_bits_on_one_and_two_cores(notebook_data, tmp_path: Path, monkeypatch):
    train = params.section(write(tmp_path, preset="pytorch-example"), "train")
    x, labels = notebook_data[0][:128], notebook_data[1][:128]

    def make_net() -> cnn.Sequential:
        return trainer.build_network(train, (1, 28, 28), [0, 1])

    y = cnn.one_hot(labels, 2, dtype="float32")
    assert_same_bits_on_one_and_two_cores(monkeypatch, make_net, x, y, batch_size=64)


def test_an_unknown_preset_gets_one_line_listing_the_presets(tmp_path: Path) -> None:
    with pytest.raises(UserError) as error:
        params.section(write(tmp_path, preset="resnet"), "train")
    message = str(error.value)
    assert "train.preset = 'resnet'" in message and "keras-convnet" in message and "\n" not in message
    with pytest.raises(UserError, match="is not a preset name"):
        params.section(write(tmp_path, preset="../params"), "train")


def test_a_bad_value_in_a_preset_file_names_that_file(tmp_path: Path, monkeypatch) -> None:
    folder = tmp_path / "presets"
    folder.mkdir()
    (folder / "mine.yaml").write_text("train:\n  epochs: 0\n")
    monkeypatch.setattr(presets, "PRESETS_DIR", folder)
    with pytest.raises(UserError) as error:
        params.section(write(tmp_path, preset="mine"), "train")
    assert str(error.value).startswith(f"{folder / 'mine.yaml'}: train.epochs = 0 is not allowed")
    (folder / "seeded.yaml").write_text("train:\n  seed: 3\n")
    with pytest.raises(UserError, match=r"seeded.yaml: train.seed does not belong in a preset"):
        params.section(write(tmp_path, preset="seeded"), "train")
    (folder / "flat.yaml").write_text("epochs: 3\n")
    with pytest.raises(UserError, match=r"flat.yaml: a preset needs a 'train:' mapping"):
        params.section(write(tmp_path, preset="flat"), "train")
    recipe = yaml.safe_load((ROOT / "presets" / "keras-convnet.yaml").read_text())
    recipe["train"]["layers"] = [{"type": "dense", "units": 10}, {"type": "dense"}]  # no flatten: no network
    (folder / "unbuilt.yaml").write_text(yaml.safe_dump(recipe))
    with pytest.raises(UserError) as error:
        params.check_all(write(tmp_path, preset="unbuilt"))
    assert str(error.value).startswith(f"{folder / 'unbuilt.yaml'}: train.layers[0]")


def test_check_notes_the_params_keys_a_preset_overrides(tmp_path: Path) -> None:
    assert params.preset_note(write(tmp_path)) is None
    note = params.preset_note(write(tmp_path, preset="keras-convnet"))
    assert note.startswith("note: train.preset = keras-convnet") and "train.batch_size" in note
    assert "train.seed," not in note and "\n" not in note


@pytest.mark.parametrize(
    ("train", "fragment"),
    [
        ({"nesterov": True}, "train.nesterov = true needs optimizer sgd with momentum > 0"),
        ({"schedule": {"type": "steps"}}, "train.schedule: "),
        ({"schedule": {"type": "step", "gama": 0.7}}, "gama"),
        ({"augment": {"shift": -1}}, "train.augment: "),
        ({"augment": {"spin": 3}}, "spin"),
    ],
)
def test_recipe_specs_get_one_line_from_cnns_factories(tmp_path: Path, train: dict, fragment: str) -> None:
    with pytest.raises(UserError) as error:
        params.section(write(tmp_path, **train), "train")
    assert fragment in str(error.value) and "\n" not in str(error.value)


def test_the_train_stage_builds_the_optimizer_schedule_and_augmentation_of_the_recipe(tmp_path: Path) -> None:
    train = params.section(
        write(
            tmp_path,
            optimizer="sgd",
            momentum=0.9,
            nesterov=True,
            weight_decay=0.01,
            batch_size=32,
            epochs=3,
            schedule={"type": "step", "gamma": 0.5},
            augment={"shift": 2},
        ),
        "train",
    )
    optimizer = trainer.make_optimizer(train)
    assert isinstance(optimizer, cnn.SGD) and optimizer.nesterov and optimizer.weight_decay == 0.01
    options = trainer.recipe_options(train, train_images=100)  # 4 batches an epoch, the last one of 4 images
    assert [options["schedule"](step) for step in (0, 3, 4, 8)] == [0.1, 0.1, 0.05, 0.025]
    assert isinstance(options["augment"], cnn.Augment)
    plain = trainer.recipe_options(params.section(write(tmp_path), "train"), train_images=100)
    assert plain == {"schedule": None, "augment": None}


@pytest.mark.slow
def test_one_dash_s_chooses_a_preset_and_seeds_vary_on_top(tmp_path: Path) -> None:
    """`dvc exp run -S train.preset=...` (the README's command) on the sample, with a quick preset of one's own."""
    project = Project.create(tmp_path / "repo")
    quick = yaml.safe_load((ROOT / "presets" / "keras-convnet.yaml").read_text())
    quick["train"]["epochs"] = 2
    (project.path / "presets" / "quick.yaml").write_text(yaml.safe_dump(quick, sort_keys=False))
    project.commit("a quick preset")
    models = set()
    for seed in (0, 1):
        project.dvc("exp", "run", "-n", f"quick-{seed}", "-S", "train.preset=quick", "-S", f"train.seed={seed}")
        metrics = json.loads((project.path / "reports" / "train" / "metrics.json").read_text())
        assert metrics["parameters"] == 22_018  # Keras's network for two digits: 320 + 18,496 + 1,600 * 2 + 2
        assert metrics["train_images"] == 180  # the preset's validation_fraction 0.1 of 200
        models.add(project.sha256("models/model.npz"))
    assert len(models) == 2  # the seed from params.yaml reached the preset's run
    shown = project.dvc("exp", "show", "--json").stdout
    assert "quick-0" in shown and "quick-1" in shown
