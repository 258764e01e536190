"""The command line: one typer command per DVC stage, `python -m pipeline <stage>` or `mnist-cnn <stage>`.

Every command reads its section of params.yaml, so what `dvc repro` runs and what you type are the same.
Bad input ends in one line on stderr and exit code 2 (1 for other failures); `--debug` shows the traceback.
"""

import functools
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from pipeline import errors, params, sources
from pipeline.sources import DOWNLOAD_MIN_RATE, DOWNLOAD_TIMEOUT

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    help="Train and evaluate a numpy CNN on MNIST, one command per DVC stage (see dvc.yaml).",
)
state = {"debug": False}

ParamsOption = Annotated[Path, typer.Option("--params", help="The params file to read.")]


def _fail(message: str, code: int) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def stage(func: Callable[..., Any]) -> Callable[..., Any]:
    """Turn expected failures into one line on stderr and an exit code, unless --debug."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if state["debug"]:
            return func(*args, **kwargs)
        try:
            return func(*args, **kwargs)
        except errors.PipelineError as exc:
            _fail(str(exc), exc.exit_code)
        except KeyboardInterrupt:
            _fail("interrupted; outputs already written are whole, the rest were not written", 130)
        except MemoryError:
            _fail("out of memory; lower data.limit_per_class or train.batch_size", 1)
        except OSError as exc:
            _fail(errors.describe_os_error(exc), 1)
        except Exception as exc:
            if not _is_cnn_input_error(exc):
                raise
            _fail(str(exc), errors.UserError.exit_code)

    return wrapper


def _is_cnn_input_error(exc: Exception) -> bool:
    """A bad model file or architecture, from cnn; only a run that loaded cnn.errors can raise one (looking does
    not load it)."""
    cnn_errors = sys.modules.get("cnn.errors")
    return cnn_errors is not None and isinstance(exc, cnn_errors.ModelFileError | cnn_errors.ArchitectureError)


@app.callback()
def main(
    debug: Annotated[bool, typer.Option("--debug", help="Show full tracebacks instead of one-line errors.")] = False,
) -> None:
    state["debug"] = debug


CHECKED = Path("data/params.checked")


@app.command()
@stage
def check(
    params_file: ParamsOption = params.DEFAULT_PARAMS,
    out: Annotated[Path, typer.Option(help="The stamp file that the other stages depend on.")] = CHECKED,
) -> None:
    """Check all of params.yaml; write the stamp data/params.checked.

    Checks both sections, the data source and the network that train.layers builds for data.digits. The first DVC
    stage: every other stage depends on its stamp, so `dvc repro` stops at a bad value before DVC removes any
    stage's outputs. The stamp's bytes never change, so a passing check re-runs nothing.
    """
    from pipeline import atomic

    try:
        params.check_all(params_file)
    except errors.UserError as exc:
        raise errors.UserError(f"{exc}{_way_back_from_an_experiment()}") from None
    if note := params.preset_note(params_file):
        typer.echo(note, err=True)
    atomic.write_text(out, "params.yaml passed `python -m pipeline check`; see dvc.yaml, stage check.\n")
    typer.echo(f"check: {params_file} is valid")


def _way_back_from_an_experiment() -> str:
    """How to undo a bad `dvc exp run -S` in the workspace ("" elsewhere). DVC sets DVC_EXP_BASELINE_REV for an
    experiment's stages, and DVC_ROOT to the workspace, also for a queued run in its own copy (which leaves the
    workspace's params.yaml alone). DVC's stash of the workspace leaves git's index with the edited file's
    stat, so `git checkout params.yaml` sees no change and restores nothing: the committed file comes from
    `git show` instead."""
    root = os.environ.get("DVC_ROOT")
    if not os.environ.get("DVC_EXP_BASELINE_REV") or not root or Path(root).resolve() != Path.cwd().resolve():
        return ""
    return (
        "; `dvc exp run -S` left this value in params.yaml: restore the committed file with "
        "`git show HEAD:params.yaml > params.yaml` (`git checkout` does not see DVC's edit), then `dvc repro` "
        "brings back data/params.checked"
    )


@app.command()
@stage
def download(
    params_file: ParamsOption = params.DEFAULT_PARAMS,
    out: Annotated[Path, typer.Option(help="Folder for the four IDX files.")] = Path("data/raw"),
    timeout: Annotated[
        float,
        typer.Option(
            envvar="MNIST_CNN_TIMEOUT", help="Seconds to connect, and without a byte before a mirror counts as stalled."
        ),
    ] = DOWNLOAD_TIMEOUT,
    min_rate: Annotated[
        float,
        typer.Option(
            envvar="MNIST_CNN_MIN_RATE",
            help="Bytes per second below which a mirror is given up (sets each file's deadline).",
        ),
    ] = DOWNLOAD_MIN_RATE,
) -> None:
    """Fetch the four MNIST IDX files into data/raw/, verified.

    Each file is verified by SHA-256. Reads data.source, data.mirrors, data.sha256. Source `sample` copies the
    real-MNIST sample shipped in data/sample/ (offline); `mnist` downloads the full MNIST from its mirrors, in
    order, with retries. Files already present and verified are not fetched again.
    """
    from pipeline import download as fetcher
    from pipeline.progress import Progress

    data = params.section(params_file, "data")
    mirrors, sha256 = sources.resolve_source(data.source, data.mirrors, data.sha256)
    progress = Progress()
    paths = fetcher.fetch(out, mirrors, sha256, timeout=timeout, min_rate=min_rate, progress=progress.download)
    progress.done()
    typer.echo(f"download: {len(paths)} files verified in {out}/ (source: {data.source})")


@app.command()
@stage
def preprocess(
    params_file: ParamsOption = params.DEFAULT_PARAMS,
    raw: Annotated[Path, typer.Option(help="Folder with the four IDX files.")] = Path("data/raw"),
    out: Annotated[Path, typer.Option(help="Folder for train.npz and test.npz.")] = Path("data/processed"),
) -> None:
    """Parse the IDX files; write data/processed/{train,test}.npz.

    Parses and checks the four IDX files in data/raw/. Reads data.digits, data.limit_per_class, data.seed: keeps at
    most limit_per_class images of each digit per split, shuffled with the seed, scaled to float32 in [0, 1], shape
    (N, 1, 28, 28).
    """
    from pipeline import preprocess as prep

    data = params.section(params_file, "data")
    splits = prep.run(data, raw, out, warn=lambda text: typer.echo(text, err=True))
    counts = ", ".join(f"{name} {len(split.labels)}" for name, split in splits.items())
    typer.echo(f"preprocess: digits {data.digits}: {counts} images in {out}/")


@app.command()
@stage
def train(
    params_file: ParamsOption = params.DEFAULT_PARAMS,
    data: Annotated[Path, typer.Option(help="The training split.")] = Path("data/processed/train.npz"),
    model: Annotated[Path, typer.Option(help="Where to write the model.")] = Path("models/model.npz"),
    reports: Annotated[Path, typer.Option(help="Folder for loss.csv and metrics.json.")] = Path("reports/train"),
    checkpoint: Annotated[
        Path, typer.Option(help="The unfinished run's state after each epoch; the next run of the same params resumes.")
    ] = Path(".dvc/tmp/checkpoints/train.npz"),
    checkpoint_every: Annotated[
        float,
        typer.Option(
            min=0.0,
            envvar="MNIST_CNN_CHECKPOINT_SECONDS",
            help="Seconds between checkpoints within an epoch (one is written after every epoch too).",
        ),
    ] = 300.0,
) -> None:
    """Train the network of train.layers; write models/model.npz.

    Reads the train section and trains on data/processed/train.npz. Also writes reports/train/loss.csv (mean loss
    per epoch, for `dvc plots`), metrics.json (parameter and image counts), platform.json (numerics mode, BLAS
    kernel, library versions, dtype) and timing.json (seconds and samples per second; not tracked by git or DVC),
    all of them only when training has finished. Prints one line per epoch (speed, time left), and on a terminal
    a live line within the epoch (images done, speed, time left of the epoch and the run); dvclive's live
    metrics of each epoch go to reports/train/live/ (`dvc exp show` reads them during a run). After each epoch,
    and every --checkpoint-every seconds within one, the run's state goes to --checkpoint: a run killed or
    stopped with Ctrl-C continues from there (within the epoch too) on the next run of the same params, data
    and code, and ends with the same bits.
    """
    from pipeline import numerics
    from pipeline import train as trainer
    from pipeline.progress import EpochTimer, Progress

    config = params.section(params_file, "train")
    if note := numerics.CURRENT.note():
        typer.echo(note, err=True)
    progress = Progress()
    timer = EpochTimer(config.epochs)

    def on_epoch(record: dict, images: int, seconds: float, of: int) -> None:
        line = timer(record["epoch"], images, seconds, of)
        progress.message(f"{trainer.format_epoch(record, config.epochs)}  {line}")

    def on_batch(epoch: int, done: int, of: int, images: int, seconds: float) -> None:
        progress.update(timer.within(epoch, done, of, images, seconds), force=True)  # train.run paces the calls

    result = trainer.run(
        config,
        data,
        model,
        reports,
        on_epoch=on_epoch,
        warn=progress.message,
        checkpoint_path=checkpoint,
        checkpoint_seconds=checkpoint_every,
        on_batch=on_batch if progress.enabled else None,
    )
    progress.done()
    typer.echo(
        f"train: {trainer.format_epoch(result.history[-1], config.epochs)}; model in {model} "
        f"({result.seconds:.1f} s, {result.samples_per_second:,.0f} samples/s)"
    )


@app.command()
@stage
def evaluate(
    model: Annotated[Path, typer.Option(help="The model to score.")] = Path("models/model.npz"),
    data: Annotated[Path, typer.Option(help="The test split.")] = Path("data/processed/test.npz"),
    metrics: Annotated[Path, typer.Option(help="Where to write the metrics.")] = Path("metrics.json"),
    reports: Annotated[Path, typer.Option(help="Folder for CSVs and figures.")] = Path("reports/evaluate"),
) -> None:
    """Score the model on the test split; write metrics.json.

    Scores models/model.npz on data/processed/test.npz. metrics.json: accuracy, loss, ROC AUC, number of test
    images. reports/evaluate/: per_class.csv (precision, recall, F1 and support of each digit), predictions.csv
    (confusion matrix), roc.csv, precision_recall.csv, and figures/ (PNG pictures).
    """
    from pipeline import evaluate as evaluator

    result = evaluator.run(model, data, metrics, reports)
    accuracy, loss, images = result["accuracy"], result["loss"], result["test_images"]
    typer.echo(f"evaluate: accuracy {accuracy:.4f}, loss {loss:.6f} on {images} test images")


@app.command()
@stage
def predict(
    images: Annotated[
        list[Path], typer.Argument(metavar="IMAGE", help="Digit pictures (PNG/JPEG, any size and colours).")
    ],
    model: Annotated[Path, typer.Option(help="The model file to use.")] = Path("models/model.npz"),
) -> None:
    """Predict the digit in each image, with the class probabilities.

    One line per image: the digit, then the probability of each class. Each picture is prepared like MNIST
    (grayscale, inverted when dark-on-light, cropped to the digit, fit into 20x20, centred by centre of mass in
    28x28). Images that cannot be read get one error line on stderr; the others are still predicted, and the exit
    code is then 2.
    """
    from pipeline import predict as predictor

    results = predictor.predict_images(images, model)
    for result in results:
        if isinstance(result, predictor.Prediction):
            typer.echo(predictor.format_prediction(result))
        else:
            typer.echo(f"error: {result.error}", err=True)
    if any(isinstance(result, predictor.Failure) for result in results):
        raise typer.Exit(errors.UserError.exit_code)


@app.command()
@stage
def compare(
    sort_by: Annotated[
        str,
        typer.Option(
            help="The metric to rank by, a name in the metrics files (`dvc metrics show`: accuracy, loss, roc_auc, "
            "...); loss ranks lowest first."
        ),
    ] = "accuracy",
    out: Annotated[Path | None, typer.Option(help="Also write the table to this Markdown file.")] = None,
    repo: Annotated[Path, typer.Option(help="The DVC repository.")] = Path("."),
) -> None:
    """Rank the experiments in a Markdown table, best first.

    Reads what `dvc exp show` shows: the params that differ, accuracy, loss, AUC. Not a stage: run it after `dvc exp
    run` or a queued sweep (`dvc queue start`) to see which run won.
    """
    from pipeline import compare as comparison

    typer.echo(comparison.run(repo, sort_by, out), nl=False)


@app.command()
@stage
def sweep(
    set_param: Annotated[
        list[str] | None,
        typer.Option(
            "--set-param",
            "-S",
            help="KEY=V1,V2 (or range(0,3), choice(a,b)): one param's values, as for `dvc exp run --queue -S`.",
        ),
    ] = None,
    seeds: Annotated[str | None, typer.Option(help="Comma-separated train.seed values, e.g. 0,1,2.")] = None,
    scheduler: Annotated[
        str | None, typer.Option(help="A Dask scheduler's address (tcp://HOST:8786); default: a local cluster.")
    ] = None,
    workers: Annotated[
        int | None, typer.Option(help="Processes of the local cluster, one experiment each (default: the cores).")
    ] = None,
    git_remote: Annotated[str, typer.Option(help="The git remote the workers clone and push to.")] = "origin",
    dvc_remote: Annotated[
        str | None, typer.Option(help="The DVC remote for the outputs (default: the repo's default remote).")
    ] = None,
    sort_by: Annotated[str, typer.Option(help="The metric the final table ranks by.")] = "accuracy",
    connect_timeout: Annotated[float, typer.Option(help="Seconds to wait for the scheduler.")] = 10.0,
    repo: Annotated[Path, typer.Option(help="The project's git repository.")] = Path("."),
) -> None:
    """Sweep a grid of experiments over a Dask cluster and rank them.

    Each point runs in a fresh clone of the git remote at HEAD (`dvc exp run --pull --allow-missing -S ...`)
    on one core with one BLAS thread, then pushes its experiment (`dvc exp push`, outputs to the DVC remote).
    A rerun skips the points already pushed. Needs `pip install 'mnist-cnn-dvc[cluster]'`.
    """
    from pipeline import sweep as sweeper
    from pipeline.progress import Progress

    progress = Progress(interval=0.5)

    def show(table: str) -> None:
        progress.done()
        typer.echo(table, nl=False)

    try:
        sweeper.run(
            set_param or [], seeds, scheduler, workers, repo, git_remote, dvc_remote, sort_by, connect_timeout,
            report=progress.message, status=progress.update, show=show,
        )  # fmt: skip
    finally:
        progress.done()


def run() -> None:
    """Entry point that keeps Python's own traceback off for errors raised outside a command."""
    try:
        app()
    except BrokenPipeError:
        sys.exit(1)
