"""python -m benchmarks --conv-ab: Winograd's F(2x2, 3x3) (Convolutional(algorithm="winograd"), cnn.winograd)
against im2col, side by side in one process, on presets' networks: the whole training step fit runs at the
preset's batch size (the split step of cnn.parallel from 64 rows on), and each 3x3 stride-1 convolution alone
(forward, backward) on the rows one thread of that step computes. Two B sides: the preset's network with every
3x3 stride-1 convolution switched to winograd, and the same but for a first layer (it reads the one-channel images,
where winograd's transforms cost most). All sides start from the same seeded weights."""

import dataclasses
import gc
import platform
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np

import cnn
from benchmarks import machine, timing
from cnn import parallel, threads, training
from cnn import step as cnn_step
from pipeline import numerics

PRESETS = ("pytorch-example", "keras-convnet", "best")
MIXED = "winograd but the first layer"
SIDES = ("im2col", "winograd", MIXED)  # whole steps
LAYER_SIDES = ("im2col", "winograd")  # convolutions alone
STEPS = 4  # whole training steps of each side per round
LAYER_REPEATS = 4  # forward and backward passes of each convolution per side and round


def winograd_layers(layers: list[dict], start: int = 0) -> list[dict]:
    """The layer specs with the algorithm of every 3x3 stride-1 convolution from layers[start] on winograd."""
    return [
        {**spec, "algorithm": "winograd"}
        if i >= start and spec["type"] == "conv" and spec["kernel_size"] == 3 and spec.get("stride", 1) == 1
        else spec
        for i, spec in enumerate(layers)
    ]


def ratio_row(name: str, im2col: list[float], other: list[float]) -> dict[str, Any]:
    """Medians of both sides' seconds, and im2col / other: the median over rounds of the ratio within a round."""
    ratios = [a / b for a, b in zip(im2col, other, strict=True)]
    return {
        "measure": name,
        "im2col": statistics.median(im2col),
        "other": statistics.median(other),
        "ratio": statistics.median(ratios),
        "ratio_min": min(ratios),
        "ratio_max": max(ratios),
    }


def conv_ab(preset: str, rounds: int, steps: int = STEPS, train_npz: Path | None = None) -> dict[str, Any]:
    """Both sides of preset's network (its layers, init, seed 0, dtype, optimizer) alternating in `rounds` rounds
    (timing.alternating), after an untimed round each:
    - the whole step: `steps` training steps of fit's step for the batch size (wall clock and the CPU time of all
      of the process's threads, per step);
    - each 3x3 stride-1 convolution alone, forward and backward, on random inputs of its shape and the rows one
      thread computes (half the batch when the step is split), LAYER_REPEATS passes (seconds per pass).
    -> {"preset", "batch_size", "rows_per_thread", "dtype", "steps", "rounds", "threads", "images", "kernel",
    "numerics", "other_cores", "step": [{"side", **ratio_row} per B side, wall clock and CPU], "layers": [{"layer",
    "shape", "rows", "input_gradient", "forward": ratio_row, "backward": ratio_row}]} (ratio_row's "other":
    winograd's or the B side's seconds)."""
    from pipeline import train

    config, images, targets, classes, source = timing.preset_batches(preset, steps, train_npz)
    batch, n = config.batch_size, len(images)
    specs = {
        "im2col": config.layers,
        "winograd": winograd_layers(config.layers),
        MIXED: winograd_layers(config.layers, 1),
    }
    nets = {side: train.build_network(dataclasses.replace(config, layers=specs[side]), images.shape[1:], classes)
            for side in SIDES}  # fmt: skip
    optimizers = {side: train.make_optimizer(config) for side in SIDES}
    steps_of = {side: training.choose_step(nets[side], optimizers[side], batch) for side in SIDES}
    for net in nets.values():
        net.set_training(True)
    loss = cnn_step.LossGradient.for_network(nets["im2col"], cnn.LOSSES[config.loss]())
    outputs = np.empty((batch, len(classes)), dtype=config.dtype)
    split = batch >= parallel.SPLIT_FROM
    rows = batch // 2 if split else batch
    step_seconds: dict[str, dict[str, list[float]]] = {m: {side: [] for side in SIDES} for m in ("wall", "cpu")}

    def run_steps(side: str) -> None:
        gc.collect()
        start, cpu = time.perf_counter(), time.process_time()
        for i in range(0, n, batch):
            r = slice(i, i + batch)
            steps_of[side](nets[side], images[r], targets[r], outputs, loss, optimizers[side])
        step_seconds["wall"][side].append((time.perf_counter() - start) / steps)
        step_seconds["cpu"][side].append((time.process_time() - cpu) / steps)

    # each switched convolution as a pair of fresh layers (im2col, winograd) with the same weights, and its inputs
    rng = np.random.default_rng(0)
    pairs = []
    for i, layer in enumerate(nets["winograd"].layers):
        if not (isinstance(layer, cnn.Convolutional) and layer.algorithm == "winograd"):
            continue
        twins = {side: cnn.layer_from_config({**layer.config(), "algorithm": side}) for side in LAYER_SIDES}
        for twin in twins.values():
            twin.initialize(config.init, np.random.default_rng(1), config.dtype)
            twin.needs_input_gradient = layer.needs_input_gradient
        x = rng.random((rows, *layer.input_shape)).astype(config.dtype)
        dy = rng.standard_normal((rows, *layer.output_shape)).astype(config.dtype)
        pairs.append((i, layer, twins, x, dy))
    layer_seconds = [{p: {side: [] for side in LAYER_SIDES} for p in ("forward", "backward")} for _ in pairs]

    def run_layers(side: str) -> None:
        if side not in LAYER_SIDES:
            return
        for k, (_, _, twins, x, dy) in enumerate(pairs):
            forward = backward = 0.0
            for _ in range(LAYER_REPEATS):
                start = time.perf_counter()
                twins[side].forward(x)
                middle = time.perf_counter()
                twins[side].backward(dy)
                forward, backward = forward + middle - start, backward + time.perf_counter() - middle
            layer_seconds[k]["forward"][side].append(forward / LAYER_REPEATS)
            layer_seconds[k]["backward"][side].append(backward / LAYER_REPEATS)

    def measure(side: str, round_: int) -> float:
        run_steps(side)
        run_layers(side)
        return step_seconds["wall"][side][-1]

    with threads.blas_threads():
        for side in SIDES:  # warm-up: caches, the second thread, the optimizer's state
            measure(side, -1)
        for values in (*step_seconds.values(), *(v for s in layer_seconds for v in s.values())):
            for side in values:
                values[side].clear()
        with machine.LoadMeter() as load:
            timing.alternating(measure, list(SIDES), rounds)
    layers = [
        {
            "layer": i,
            "shape": f"{layer.input_shape[0]}->{layer.depth}, {layer.input_shape[1]}x{layer.input_shape[2]}"
            + (f" pad {layer.padding}" if layer.padding else ""),
            "rows": rows,
            "input_gradient": layer.needs_input_gradient,
            **{p: ratio_row(p, *(layer_seconds[k][p][side] for side in LAYER_SIDES)) for p in ("forward", "backward")},
        }
        for k, (i, layer, *_) in enumerate(pairs)
    ]
    return {
        "preset": preset,
        "batch_size": batch,
        "split": split,
        "rows_per_thread": rows,
        "dtype": config.dtype,
        "steps": steps,
        "rounds": rounds,
        "threads": threads.num_threads(),
        "images": source,
        "kernel": platform.release(),
        "numerics": numerics.CURRENT.mode,
        "other_cores": load.other_cores,
        "step": [
            {"side": side, **ratio_row(name, values["im2col"], values[side])}
            for side in SIDES[1:]
            for name, values in (("wall clock", step_seconds["wall"]), ("CPU of all threads", step_seconds["cpu"]))
        ],
        "layers": layers,
    }
