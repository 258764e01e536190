"""Paired A/B of cnn.parallel.SplitStep against cnn.step.plain_step on a preset's network, in one process.

    python tools/ab_split.py [--preset best] [--batch 128] [--steps 8] [--rounds 7] [--data train.npz] [--threads N]

Two copies of the preset's network (its layers, init, dtype; Adam) train `steps` batches with each step per
round, the two alternating (which goes first alternates too); prints each round's seconds per step and the
median ratio unsplit / split. --data: an .npz with `images` (N, 1, 28, 28) (e.g. a processed full-MNIST split);
by default random images of that shape (the time of a step does not depend on the pixel values). --threads 1
runs the halves one after the other: what the split itself costs.
"""

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import cnn
from cnn import parallel, threads
from cnn.step import LossGradient, plain_step
from cnn.threads import blas_threads


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="best")
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--data", type=Path)
    parser.add_argument("--threads", type=int, help="cnn.threads.set_num_threads (default: every core)")
    args = parser.parse_args()
    threads.set_num_threads(args.threads)
    root = Path(__file__).resolve().parents[1]
    recipe = yaml.safe_load((root / "presets" / f"{args.preset}.yaml").read_text())["train"]
    dtype = recipe.get("dtype", "float64")
    rng = np.random.default_rng(0)
    if args.data:
        images = np.load(args.data)["images"][: args.batch * args.steps].astype(dtype)
    else:
        images = rng.random((args.batch * args.steps, 1, 28, 28)).astype(dtype)
    targets = cnn.one_hot(rng.integers(0, 10, len(images)), 10, dtype=dtype)

    def network() -> cnn.Sequential:
        net = cnn.Sequential(cnn.build(recipe["layers"], (1, 28, 28), 10), recipe.get("init", "he"), 0, dtype)
        net.set_training(True)
        return net

    nets = {"unsplit": network(), "split": network()}
    steps = {"unsplit": plain_step, "split": parallel.SplitStep(nets["split"])}
    optimizers = {name: cnn.Adam(1e-3) for name in nets}
    loss = LossGradient.for_network(nets["split"], cnn.CategoricalCrossEntropy())
    outputs = np.empty((args.batch, 10), dtype=dtype)

    def run(name: str) -> float:
        start = time.perf_counter()
        for i in range(0, len(images), args.batch):
            rows = slice(i, i + args.batch)
            steps[name](nets[name], images[rows], targets[rows], outputs, loss, optimizers[name])
        return (time.perf_counter() - start) / args.steps

    print(f"{args.preset}: batch {args.batch}, {dtype}, {args.steps} steps a round, threads {threads.num_threads()}")
    ratios = []
    with blas_threads():
        for name in nets:
            run(name)  # warm-up: caches, the second thread, Adam's state
        for r in range(args.rounds):
            order = ("unsplit", "split") if r % 2 == 0 else ("split", "unsplit")
            seconds = {name: run(name) for name in order}
            ratios.append(seconds["unsplit"] / seconds["split"])
            print(f"round {r + 1}: unsplit {seconds['unsplit']:.3f} s/step, split {seconds['split']:.3f} s/step, "
                  f"ratio {ratios[-1]:.2f}")  # fmt: skip
    print(f"median ratio unsplit / split: {statistics.median(ratios):.2f}x (range {min(ratios):.2f}-{max(ratios):.2f})")


if __name__ == "__main__":
    main()
