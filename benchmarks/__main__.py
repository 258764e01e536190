"""python -m benchmarks: train the notebook's network with the notebook's code, this project and PyTorch, and two
ten-digit networks with this project and PyTorch, side by side in one process (canonical against native numerics
and peak memory in child processes); train the recipes through the pipeline's own commands for their accuracy;
print tables and write benchmarks/results/latest.json. One of --accuracy, --full-mnist DIR, --batch-hook,
--sweep-wall or --split-ab measures that alone instead."""

import argparse
import os
import sys
from pathlib import Path

from pipeline import presets
from pipeline.atomic import write_json

DEFAULT_JSON = Path(__file__).resolve().parent / "results" / "latest.json"
FULL_MNIST_JSON = DEFAULT_JSON.with_name("full-mnist.json")


def log(message: str) -> None:
    """Progress, to stderr (the tables go to stdout)."""
    print(message, file=sys.stderr, flush=True)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a few steps per variant, 2 rounds: a smoke test")
    parser.add_argument(
        "--rounds",
        type=int,
        default=None,
        help="interleaved rounds (default 5, quick 2; --batch-hook 7, --sweep-wall 3, --split-ab 7)",
    )
    parser.add_argument("--seconds", type=float, default=0.4, help="wall time of one measurement (default 0.4)")
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON, help=f"result file (default {DEFAULT_JSON})")
    parser.add_argument("--no-torch", action="store_true", help="leave PyTorch out even if it is installed")
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="BLAS and torch threads (default: numpy's); with --split-ab: cnn's threads (1: the halves one after "
        "the other; default: every core)",
    )
    parser.add_argument("--no-memory", action="store_true", help="skip the peak-memory child processes")
    parser.add_argument("--no-accuracy", action="store_true", help="skip the recipes' accuracy")
    parser.add_argument("--no-extras", action="store_true", help="skip full-data recipe, scaling and profiles")
    parser.add_argument("--no-modes", action="store_true", help="skip canonical vs native numerics (child processes)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="seeds of the recipes' accuracy")
    only = parser.add_mutually_exclusive_group()
    only.add_argument("--accuracy", action="store_true", help="only the recipes' accuracy (pipeline commands)")
    only.add_argument(
        "--full-mnist",
        type=Path,
        metavar="DIR",
        help="only the presets on the full MNIST in DIR (the four .gz files and SHA256SUMS), cnn and PyTorch",
    )
    only.add_argument(
        "--full-mnist-table",
        type=Path,
        nargs="+",
        metavar="JSON",
        help="only the table of earlier --full-mnist results, combined (a later file's run of a preset, seed and "
        "implementation replaces an earlier one's); writes the combined JSON",
    )
    only.add_argument(
        "--batch-hook",
        action="store_true",
        help="only the cost of train's per-batch hook: fit at batch 1 without and with it, alternating",
    )
    only.add_argument(
        "--sweep-wall",
        action="store_true",
        help="only the wall time of a 12-point sweep: pipeline sweep on 2 and 1 workers against DVC's queue",
    )
    only.add_argument(
        "--split-ab",
        action="store_true",
        help="only cnn's split training step against the unsplit step on presets' networks, alternating: wall "
        "clock, CPU critical path, CPU of all threads (and the split step with its whole update, and without "
        "cnn.kernels)",
    )
    parser.add_argument(
        "--presets",
        nargs="+",
        help="with --full-mnist: these presets (default: all in presets/); with --split-ab: these (default: best "
        "keras-convnet)",
    )
    parser.add_argument("--max-epochs", type=int, help="with --full-mnist: at most this many epochs per run")
    parser.add_argument(
        "--torch-seeds", type=int, nargs="*", help="with --full-mnist: PyTorch trains these seeds only (default: all)"
    )
    parser.add_argument(
        "--epochs", type=int, help="with --batch-hook: epochs of the sample per measurement (default 10)"
    )
    parser.add_argument("--steps", type=int, help="with --split-ab: training steps of each variant a round (default 8)")
    parser.add_argument(
        "--train-npz",
        type=Path,
        metavar="NPZ",
        help="with --split-ab: the images of this processed split (a train.npz written by the preprocess stage, "
        "e.g. of the full MNIST) instead of the shipped sample's",
    )
    args = parser.parse_args(argv)
    if args.epochs is not None and not args.batch_hook:
        parser.error("--epochs goes with --batch-hook")
    if (args.steps is not None or args.train_npz is not None) and not args.split_ab:
        parser.error("--steps and --train-npz go with --split-ab")
    if args.presets and args.full_mnist is None and not args.split_ab:
        parser.error("--presets goes with --full-mnist DIR or --split-ab")
    if (args.max_epochs is not None or args.torch_seeds is not None) and args.full_mnist is None:
        parser.error("--max-epochs and --torch-seeds go with --full-mnist DIR")
    for name in ("max_epochs", "rounds", "threads", "epochs", "steps"):
        if (value := getattr(args, name)) is not None and value < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1, got {value}")
    known = presets.names()
    unknown = [name for name in args.presets or [] if name not in known]
    if unknown:
        parser.error(f"--presets: no preset {unknown[0]!r}; the presets are {', '.join(known)}")
    if args.train_npz is not None and not args.train_npz.is_file():
        parser.error(f"--train-npz: no file {args.train_npz}; give a train.npz the preprocess stage wrote")
    if args.full_mnist is not None and not (args.full_mnist / "SHA256SUMS").is_file():
        parser.error(f"--full-mnist: {args.full_mnist} has no SHA256SUMS; give the folder of the four MNIST .gz files")
    for path in args.full_mnist_table or []:
        if not path.is_file():
            parser.error(f"--full-mnist-table: no file {path}; give result files that --full-mnist wrote")
    if args.seconds <= 0:
        parser.error(f"--seconds must be > 0, got {args.seconds}")
    if min(args.seeds) < 0:
        parser.error(f"--seeds must be >= 0, got {min(args.seeds)}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.full_mnist is not None:
        return full_mnist_main(args)
    if args.full_mnist_table:
        return full_mnist_table_main(args)
    from benchmarks import bench, commands, report, timing

    if args.batch_hook:
        print(report.batch_hook(timing.batch_hook(args.rounds or 7, args.epochs or 10)))
        return 0
    if args.sweep_wall:
        print(report.sweep_wall(commands.sweep_wall(args.rounds or 3, log)))
        return 0
    if args.split_ab:
        return split_ab_main(args)
    if args.accuracy:
        result = {"recipes": [commands.run_recipe(recipe, tuple(args.seeds), log=log) for recipe in commands.RECIPES]}
        print(report.recipes(result))
        write_json(args.json, result)
        return 0 if all(row["met"] for row in result["recipes"]) else 1
    opts = bench.Options(
        rounds=args.rounds or (2 if args.quick else 5),
        seconds=args.seconds,
        quick=args.quick,
        torch=not args.no_torch,
        threads=args.threads,
        seeds=tuple(args.seeds),
        memory=not args.no_memory,
        extras=not (args.quick or args.no_extras),
        recipes=not (args.quick or args.no_accuracy),
        modes=not args.no_modes,
    )
    result = bench.run(opts, log)
    print(report.format_report(result))
    write_json(args.json, result)
    print(f"\nwrote {args.json}")
    return 0


def split_ab_main(args: argparse.Namespace) -> int:
    from benchmarks import report, timing
    from cnn import threads
    from pipeline.errors import UserError

    threads.set_num_threads(args.threads)
    results = []
    for preset in args.presets or ("best", "keras-convnet"):
        log(f"split A/B: {preset}")
        try:
            results.append(timing.split_ab(preset, args.rounds or 7, args.steps or timing.SPLIT_STEPS, args.train_npz))
        except UserError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return exc.exit_code
    print(report.split_ab(results))
    return 0


def full_mnist_main(args: argparse.Namespace) -> int:
    from benchmarks import full_mnist, trainers

    torch = not args.no_torch and trainers.torch_available()
    opts = full_mnist.Options(
        presets=tuple(args.presets or presets.names()),
        seeds=tuple(args.seeds),
        max_epochs=args.max_epochs,
        threads=args.threads or len(os.sched_getaffinity(0)),
        torch_seeds=torch_seeds(torch, args.torch_seeds),
    )
    if not torch and not args.no_torch:
        log("PyTorch is not installed: cnn only")
    try:
        result = full_mnist.measure(args.full_mnist, opts, log)
    except RuntimeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    code = write_full_mnist(result, args.json)
    return 130 if result.get("interrupted") else code


def torch_seeds(torch: bool, chosen: list[int] | None) -> tuple[int, ...] | None:
    """The seeds PyTorch trains: none without PyTorch, every seed (None) unless --torch-seeds chose some."""
    if not torch:
        return ()
    return None if chosen is None else tuple(chosen)


def full_mnist_table_main(args: argparse.Namespace) -> int:
    import json

    from benchmarks import full_mnist

    results = []
    for path in args.full_mnist_table:
        try:
            results.append(json.loads(path.read_text()))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            print(f"error: --full-mnist-table: {path} is not a result of --full-mnist ({exc})", file=sys.stderr)
            return 2
        if not {"machine", "threads", "runs", "started"} <= results[-1].keys():
            print(f"error: --full-mnist-table: {path} is not a result of --full-mnist", file=sys.stderr)
            return 2
    try:
        combined = full_mnist.combine(results)
    except ValueError as exc:
        print(f"error: --full-mnist-table: {exc}", file=sys.stderr)
        return 2
    return write_full_mnist(combined, args.json)


def write_full_mnist(result: dict, json_path: Path) -> int:
    """Print the full-MNIST table and write its JSON (benchmarks/results/full-mnist.json unless --json says);
    -> 1 when a run failed, else 0."""
    from benchmarks import report

    print(report.full_mnist(result))
    path = FULL_MNIST_JSON if json_path == DEFAULT_JSON else json_path
    write_json(path, result)
    print(f"\nwrote {path}")
    return 0 if not any("errors" in row for row in result["presets"]) else 1


if __name__ == "__main__":
    sys.exit(main())
