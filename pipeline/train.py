"""train stage: data/processed/train.npz + params.yaml:train -> models/model.npz and reports/train/."""

import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

import cnn
from pipeline import atomic, dataset, diagnose, figures, live, numerics
from pipeline.errors import UserError
from pipeline.params import TrainParams


def build_network(params: TrainParams, input_shape: tuple[int, ...], classes: list[int]) -> cnn.Sequential:
    """The network that train.layers describes, initialised from train.seed, with classes in its meta."""
    try:
        layers = cnn.build(params.layers, input_shape=input_shape, n_classes=len(classes))
    except cnn.ArchitectureError as exc:
        raise UserError(f"params.yaml: {exc}") from None
    net = cnn.Sequential(layers, init=params.init, seed=params.seed, dtype=params.dtype)
    net.meta = {"classes": classes, "loss": params.loss}
    return net


def make_optimizer(params: TrainParams) -> cnn.Optimizer:
    """train.optimizer with its options (the other optimizers' defaults are torch's)."""
    options = {"learning_rate": params.learning_rate, "weight_decay": params.weight_decay}
    if params.optimizer == "adam":
        return cnn.Adam(**options)
    if params.optimizer == "adadelta":
        return cnn.Adadelta(**options)
    return cnn.SGD(momentum=params.momentum, nesterov=params.nesterov, **options)


def recipe_options(params: TrainParams, train_images: int) -> dict:
    """fit's options from the train section besides epochs and batch size: the learning-rate schedule (its
    steps counted over ceil(train_images / batch_size) batches an epoch) and the augmentation."""
    steps_per_epoch = max(1, math.ceil(train_images / params.batch_size))
    return {
        "schedule": cnn.make_schedule(params.schedule, params.learning_rate, params.epochs, steps_per_epoch),
        "augment": cnn.make_augment(params.augment),
    }


def hold_out(split: dataset.Split, fraction: float) -> tuple[dataset.Split, dataset.Split | None]:
    """The last `fraction` of the (already shuffled) training images, kept aside for a validation loss."""
    n_val = round(len(split.labels) * fraction)
    if n_val == 0:
        return split, None
    if n_val >= len(split.labels):
        raise UserError(f"train.validation_fraction = {fraction} leaves no training images; lower it")
    cut = len(split.labels) - n_val
    head, tail = slice(None, cut), slice(cut, None)
    return (
        dataset.Split(split.images[head], split.labels[head], split.classes),
        dataset.Split(split.images[tail], split.labels[tail], split.classes),
    )


@dataclass(frozen=True)
class TrainResult:
    history: list[dict]  # one record per epoch: {"epoch", "loss", "val_loss", "val_accuracy" if held out}
    seconds: float  # wall-clock time of fit
    samples_per_second: float


def run(
    params: TrainParams, data_path: Path, model_path: Path, report_dir: Path, on_epoch=None, warn=None
) -> TrainResult:
    """Train and write the model and reports/train/: loss.csv (rewritten after
    every epoch, so it can be watched: pipeline.live), metrics.json (size of the run),
    platform.json (what decides the bits) and timing.json (wall-clock cost: untracked, as it differs on
    every run)."""
    split = dataset.load(data_path)
    train, val = hold_out(split, params.validation_fraction)
    classes = split.classes.tolist()
    net = build_network(params, split.images.shape[1:], classes)
    log = live.EpochLog(report_dir / "loss.csv")

    def after_epoch(record: dict) -> None:
        log(record)
        if on_epoch is not None:
            on_epoch(record)

    start = time.perf_counter()
    try:
        history = net.fit(
            train.images,
            cnn.one_hot(train.class_index, len(classes)),
            loss=cnn.LOSSES[params.loss](),
            optimizer=make_optimizer(params),
            epochs=params.epochs,
            batch_size=params.batch_size,
            seed=params.seed,
            validation_data=(val.images, cnn.one_hot(val.class_index, len(classes))) if val else None,
            callback=after_epoch,
            **recipe_options(params, len(train.labels)),
        )
    except cnn.TrainingDivergedError as exc:
        raise UserError(f"train: {exc}") from None
    seconds = time.perf_counter() - start
    if warn and (note := diagnose.saturation(history, params.loss, len(classes), params.learning_rate)):
        warn(note)
    model_path.parent.mkdir(parents=True, exist_ok=True)
    cnn.save(net, model_path)
    figures.loss_curve(history, report_dir / "loss.png")
    atomic.write_json(
        report_dir / "metrics.json", {"parameters": count_parameters(net), "train_images": len(train.labels)}
    )
    atomic.write_json(report_dir / "platform.json", numerics.fingerprint(params.dtype))
    result = TrainResult(history, seconds, params.epochs * len(train.labels) / max(seconds, 1e-9))
    atomic.write_json(
        report_dir / "timing.json",
        {"train_seconds": round(seconds, 3), "samples_per_second": round(result.samples_per_second)},
    )
    return result


def format_epoch(record: dict, epochs: int) -> str:
    text = f"epoch {record['epoch']}/{epochs}  loss {record['loss']:.6f}"
    return text + (f"  val_loss {record['val_loss']:.6f}" if "val_loss" in record else "")


def count_parameters(net: cnn.Sequential) -> int:
    return int(sum(np.size(p) for layer in net.layers for p in layer.params.values()))
