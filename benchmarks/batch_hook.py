"""python -m benchmarks.batch_hook: the cost of train's per-batch hook (pipeline.train.BatchWatch, as a run with a
checkpoint file installs it) on the default network at batch 1, the case with the most steps per second, trained
on the images the default params select from the shipped sample (data/processed/train.npz's, read from data/sample).
Epochs of fit without the hook and with it, interleaved in one process; prints steps/s and the paired ratio."""

import argparse
import statistics
import time

import cnn
from benchmarks import PARAMS, networks, timing
from pipeline import params, train


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.batch_hook", description=__doc__)
    parser.add_argument("--rounds", type=int, default=7, help="interleaved rounds (default 7)")
    parser.add_argument("--epochs", type=int, default=10, help="epochs of 200 images per measurement (default 10)")
    args = parser.parse_args(argv)
    data, config = params.section(PARAMS, "data"), params.section(PARAMS, "train")
    x, labels = networks.training_images(data.digits, data.limit_per_class, data.seed)
    y = cnn.one_hot(labels, len(data.digits))

    def epochs(hook) -> float:
        net = train.build_network(config, x.shape[1:], list(data.digits))
        options = {"epochs": args.epochs, "batch_size": 1, "seed": 0, "on_batch_end": hook}
        start = time.perf_counter()
        net.fit(x, y, cnn.LOSSES[config.loss](), train.make_optimizer(config), **options)
        return args.epochs * len(y) / (time.perf_counter() - start)

    variants = {
        "no hook": lambda: None,
        "BatchWatch, no checkpoint due": lambda: train.BatchWatch(lambda state: None, None, 300.0),
        "BatchWatch and live line": lambda: train.BatchWatch(lambda state: None, lambda *a: None, 300.0),
    }
    rates: dict[str, list[float]] = {name: [] for name in variants}
    for round_ in range(args.rounds):
        names = list(variants) if round_ % 2 == 0 else list(reversed(variants))
        for name in names:
            rates[name].append(epochs(variants[name]()))
    base = statistics.median(rates["no hook"])
    print(f"default network, batch 1, {args.epochs} epochs of {len(y)} images, {args.rounds} interleaved rounds")
    print("steps/s: median of the rounds, spread ((fastest - slowest) / median), and the ratio to no hook: the")
    print("median over rounds of the two rates of the same round (timing.median_ratio)")
    for name, values in rates.items():
        ratio = timing.median_ratio(values, rates["no hook"])
        print(
            f"{name:32s} median {statistics.median(values):7,.0f}  spread {timing.spread(values):5.1%}"
            f"  ratio {ratio:.3f}"
        )
    progress = cnn.BatchProgress(200, 1, lambda: None)
    watch, calls = train.BatchWatch(lambda state: None, None, 300.0), 200_000
    start = time.perf_counter()
    for _ in range(calls):
        progress.batch += 1
        watch(progress)
    per_call = (time.perf_counter() - start) / calls
    print(f"the hook alone: {per_call * 1e6:.2f} us a call, {per_call * base:.2%} of a step at the median rate")


if __name__ == "__main__":
    main()
