"""train stage: data/processed/train.npz + params.yaml:train -> models/model.npz and reports/train/."""

import math
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd

import cnn
from pipeline import atomic, checkpoint, dataset, diagnose, figures, live, numerics, tables
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


LOSS_COLUMNS = ("epoch", "loss", "val_loss", "val_accuracy")
CHECKPOINT_SECONDS = 300.0  # a checkpoint within an epoch at most this often (and after every epoch)
PROGRESS_SECONDS = 0.5  # the live line within an epoch: at most this often, first after this long


def fit_arguments(
    params: TrainParams, train: dataset.Split, val: dataset.Split | None, n_classes: int
) -> tuple[cnn.Loss, cnn.Optimizer, cnn.FitOptions]:
    """What net.fit takes besides the training images and targets: the loss, the optimizer and the options of the
    train section (no callbacks: add them with dataclasses.replace)."""
    options = cnn.FitOptions(
        epochs=params.epochs,
        batch_size=params.batch_size,
        seed=params.seed,
        validation_data=(val.images, cnn.one_hot(val.class_index, n_classes)) if val else None,
        **recipe_options(params, len(train.labels)),
    )
    return cnn.LOSSES[params.loss](), make_optimizer(params), options


def run(
    params: TrainParams,
    data_path: Path,
    model_path: Path,
    report_dir: Path,
    on_epoch=None,
    warn=None,
    checkpoint_path: Path | None = None,
    checkpoint_seconds: float = CHECKPOINT_SECONDS,
    on_batch=None,
) -> TrainResult:
    """Train and write the model and reports/train/: loss.csv (the loss per epoch), loss.png, metrics.json
    (size of the run), platform.json (what decides the bits) and timing.json (wall-clock cost: untracked, as it
    differs on every run).

    While training, dvclive's files in reports/train/live/ (gitignored, pipeline.live) follow every epoch. The
    outputs are written only when training has finished, all together (atomic.together): an interrupted run
    leaves the previous run's outputs as they were (dvc.yaml marks them `persist` so DVC keeps them too).
    With `checkpoint_path`, the run's state is saved there after every epoch and, within an epoch, every
    `checkpoint_seconds` (pipeline.checkpoint); a run of the same params, data and code continues from it
    (announced through `warn`) to the same bits, and the file is removed when the outputs are written.
    `on_epoch(record, images, seconds, of)` after each epoch of this run (images: those of the epoch's `of` that
    it trained on in this run);
    `on_batch(epoch, done, of, images, seconds)` within an epoch at most every PROGRESS_SECONDS (done of `of`:
    images of the epoch trained on; images and seconds: those of this run's part of it)."""
    split = dataset.load(data_path)
    train, val = hold_out(split, params.validation_fraction)
    classes = split.classes.tolist()
    net = build_network(params, split.images.shape[1:], classes)
    loss, optimizer, options = fit_arguments(params, train, val, len(classes))
    say = warn or (lambda text: None)
    learning_rates: list[float] = []  # one per epoch, for the live files of a resumed run
    saver = None  # save_state, with a checkpoint path
    resumed_images = 0  # images of the first epoch trained on before a resume within it
    if checkpoint_path is not None:
        mark = checkpoint.fingerprint(params, data_path)
        if resumed := checkpoint.load(checkpoint_path, mark, say):
            net, state = resumed.net, dict(resumed.state)
            learning_rates = list(state.pop("learning_rates", []))
            options = replace(options, resume=cnn.TrainingState(**state))
            resumed_images = resumed.images
            if resumed.batch:
                say(
                    f"train: resuming from {checkpoint_path} in epoch {resumed.epoch + 1} of {params.epochs}, "
                    f"at image {resumed_images} of {len(train.labels)}"
                )
            else:
                say(f"train: resuming from {checkpoint_path} after epoch {resumed.epoch} of {params.epochs}")

        warned = False  # of a checkpoint that could not be written: once a run

        def save_state(state: cnn.TrainingState) -> None:
            nonlocal warned
            fields = {name: getattr(state, name) for name in cnn.TrainingState.__dataclass_fields__}
            try:
                checkpoint.save(checkpoint_path, mark, net, {**fields, "learning_rates": learning_rates})
            except OSError as exc:  # a checkpoint is a convenience: the run goes on without it
                if not warned:
                    say(f"warning: no checkpoint in {checkpoint_path} ({exc.strerror or exc}); training goes on")
                warned = True

        saver = save_state
    metrics = live.LiveMetrics(report_dir / "live")
    for record, rate in zip(options.resume.history if options.resume else (), learning_rates, strict=True):
        metrics.log(record, rate)
    first_epoch = len(learning_rates) + 1

    start = time.perf_counter()
    watch = BatchWatch(saver, on_batch, checkpoint_seconds, resumed_images)

    def after_epoch(record: dict) -> None:
        now = time.perf_counter()
        learning_rates.append(optimizer.learning_rate)
        metrics.log(record, learning_rates[-1])
        if on_epoch is not None:
            on_epoch(record, len(train.labels) - watch.epoch_images, now - watch.epoch_start, len(train.labels))
        watch.next_epoch()  # the time of logging and the callback is not the next epoch's

    options = replace(
        options,
        callback=after_epoch,
        on_epoch_end=saver,
        on_batch_end=watch if saver is not None or on_batch is not None else None,
    )
    try:
        history = net.fit(train.images, cnn.one_hot(train.class_index, len(classes)), loss, optimizer, options)
    except cnn.TrainingDivergedError as exc:
        raise UserError(f"train: {exc}") from None
    seconds = time.perf_counter() - start
    if warn and (note := diagnose.saturation(history, params.loss, len(classes), params.learning_rate)):
        warn(note)
    with atomic.together() as stage:
        cnn.save(net, stage(model_path))
        tables.write_csv(pd.DataFrame(history, columns=list(LOSS_COLUMNS)), stage(report_dir / "loss.csv"))
        figures.loss_curve(history, stage(report_dir / "loss.png"))
        atomic.write_json(
            stage(report_dir / "metrics.json"),
            {"parameters": count_parameters(net), "train_images": len(train.labels)},
        )
        atomic.write_json(stage(report_dir / "platform.json"), numerics.fingerprint(params.dtype))
    if checkpoint_path is not None:
        checkpoint.remove(checkpoint_path)
    metrics.end()
    images_run = (params.epochs - first_epoch + 1) * len(train.labels) - resumed_images
    result = TrainResult(history, seconds, images_run / max(seconds, 1e-9))
    atomic.write_json(
        report_dir / "timing.json",
        {"train_seconds": round(seconds, 3), "samples_per_second": round(result.samples_per_second)},
    )
    return result


class BatchWatch:
    """fit's on_batch_end for train.run: a checkpoint within an epoch when `checkpoint_seconds` have passed since
    the last one (`save(state)`), the live line at most every PROGRESS_SECONDS (`show(epoch, done, of, images,
    seconds)`). One clock reading per step when neither is due. epoch_images: images of the current epoch
    trained on before this run's part of it (a resumed run's first epoch)."""

    def __init__(self, save, show, checkpoint_seconds: float, epoch_images: int = 0) -> None:
        self.save, self.show, self.every = save, show, checkpoint_seconds
        self.epoch_images = epoch_images
        self.epoch_start = time.perf_counter()  # the one clock of all its times
        self.next_save = self.epoch_start + checkpoint_seconds
        self.next_show = self.epoch_start + PROGRESS_SECONDS  # the speed of a whole second, not of a first step

    def __call__(self, progress: cnn.BatchProgress) -> None:
        now = time.perf_counter()
        if self.show is not None and now >= self.next_show:
            done = progress.images
            self.show(progress.epoch, done, progress.images_per_epoch, done - self.epoch_images, now - self.epoch_start)
            self.next_show = now + PROGRESS_SECONDS
        if self.save is not None and now >= self.next_save:
            self.save(progress.state())
            self.next_save = time.perf_counter() + self.every

    def next_epoch(self) -> None:
        """At an epoch's end, before on_epoch_end saves its checkpoint."""
        self.epoch_images = 0
        self.epoch_start = time.perf_counter()
        self.next_save = self.epoch_start + self.every
        self.next_show = self.epoch_start + PROGRESS_SECONDS


def format_epoch(record: dict, epochs: int) -> str:
    text = f"epoch {record['epoch']}/{epochs}  loss {record['loss']:.6f}"
    return text + (f"  val_loss {record['val_loss']:.6f}" if "val_loss" in record else "")


def count_parameters(net: cnn.Sequential) -> int:
    return int(sum(np.size(p) for layer in net.layers for p in layer.params.values()))
