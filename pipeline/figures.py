"""PNG figures for evaluate and the README: loss curve, confusion matrix, ROC, mistakes, kernels, feature maps.

This module only draws: what it draws is computed elsewhere (pipeline.metrics for the evaluation figures).

Every function writes one PNG atomically, of a known size in pixels (width x height: `SIZES`, or for the
grids `misclassified_size` and `feature_maps_size`, which follow the panel count) and with no metadata
that changes between runs, so the same inputs give byte-identical files (stable DVC hashes).
"""

import math
import os

import matplotlib

matplotlib.use("Agg")

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from pipeline.atomic import atomic_path

DPI = 100
SIZES: dict[str, tuple[int, int]] = {
    "loss_curve": (640, 400),
    "confusion_matrix": (560, 480),
    "roc_curve": (480, 480),
    "no_misclassified": (320, 80),
    "kernels": (720, 480),
}
PANEL = 90  # pixels per image panel in the feature-map grid, whose size follows its rows and columns
MISTAKE_PANEL = (130, 150)  # (width, height) pixels per panel of the misclassified grid, its title included
MISTAKE_COLUMNS = 8
_PNG_METADATA = {"Software": None}


def _figure(kind: str, size: tuple[int, int] | None = None) -> Figure:
    width, height = size or SIZES[kind]
    return Figure(figsize=(width / DPI, height / DPI), dpi=DPI)


def feature_maps_size(examples: int, columns: int) -> tuple[int, int]:
    """Pixel size (width, height) of a feature-map figure of `examples` rows and `columns` panels."""
    return max(360, columns * PANEL + 60), examples * PANEL + 100


def misclassified_size(panels: int) -> tuple[int, int]:
    """Pixel size (width, height) of a misclassified grid of `panels` images, in rows of up to 8."""
    cols = min(panels, MISTAKE_COLUMNS)
    rows = math.ceil(panels / cols)
    return max(360, cols * MISTAKE_PANEL[0] + 20), rows * MISTAKE_PANEL[1] + 50


def _save(fig: Figure, path: str | os.PathLike) -> None:
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, format="png", dpi=DPI, metadata=_PNG_METADATA)


def loss_curve(history: list[dict], path: str | os.PathLike) -> None:
    """Training loss per epoch, and validation loss when the records have "val_loss"."""
    fig = _figure("loss_curve")
    ax = fig.add_subplot()
    epochs = [record["epoch"] for record in history]
    ax.plot(epochs, [record["loss"] for record in history], marker="o", markersize=3, label="train")
    if any("val_loss" in record for record in history):
        val = [(record["epoch"], record["val_loss"]) for record in history if "val_loss" in record]
        ax.plot(*zip(*val, strict=True), marker="o", markersize=3, label="validation")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    ax.set_title("Loss per epoch")
    ax.grid(alpha=0.3)
    if history:
        ax.legend()
    fig.tight_layout()
    _save(fig, path)


def confusion_matrix(counts: np.ndarray, classes: list[int], path: str | os.PathLike) -> None:
    """Confusion matrix (K, K) counts (rows true, columns predicted; metrics.confusion_counts) with each
    cell's count written in it."""
    counts = np.asarray(counts)
    fig = _figure("confusion_matrix")
    ax = fig.add_subplot()
    image = ax.imshow(counts, cmap="Blues", vmin=0)
    fig.colorbar(image, ax=ax)
    ticks = range(len(classes))
    ax.set_xticks(ticks, [str(c) for c in classes])
    ax.set_yticks(ticks, [str(c) for c in classes])
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(f"Confusion matrix ({int(counts.sum())} images)")
    dark = counts > counts.max() / 2
    fontsize = 10 if len(classes) <= 10 else 6
    for (i, j), count in np.ndenumerate(counts):
        color = "white" if dark[i, j] else "black"
        ax.text(j, i, str(count), ha="center", va="center", color=color, fontsize=fontsize)
    fig.tight_layout()
    _save(fig, path)


def roc_curve(fpr: np.ndarray, tpr: np.ndarray, area: float, path: str | os.PathLike) -> None:
    """ROC curve through the points (fpr, tpr) (metrics.roc_points), its area `area` in the legend."""
    fig = _figure("roc_curve")
    ax = fig.add_subplot()
    ax.plot(fpr, tpr, drawstyle="default", label=f"AUC = {area:.4f}")
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", linewidth=1, label="chance")
    ax.set_xlim(-0.01, 1.01)
    ax.set_ylim(-0.01, 1.01)
    ax.set_aspect("equal")
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate")
    ax.set_title("ROC curve")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    fig.tight_layout()
    _save(fig, path)


def _hide_axes(ax) -> None:
    ax.set_xticks([])
    ax.set_yticks([])


def misclassified_grid(
    images: np.ndarray,
    true: np.ndarray,
    pred: np.ndarray,
    confidence: np.ndarray,
    path: str | os.PathLike,
    max_images: int = 64,
) -> np.ndarray:
    """Grid of the misclassified images, most confident mistakes first, each titled "true 3 / pred 5 (0.87)".

    images (N, 28, 28) (or (N, 1, 28, 28)) in [0, 1]; true, pred (N,) labels; confidence (N,) the
    probability of the predicted class. Draws at most `max_images`, in rows of up to 8 panels of a fixed
    size, so the PNG's size follows the count: misclassified_size(drawn); with no mistakes, a small image
    saying so. Returns the indices into `images` that were drawn, in drawing order.
    """
    images = np.asarray(images).reshape(len(images), *np.shape(images)[-2:])
    true, pred, confidence = np.asarray(true), np.asarray(pred), np.asarray(confidence)
    wrong = np.flatnonzero(true != pred)
    if wrong.size == 0:
        fig = _figure("no_misclassified")
        fig.text(0.5, 0.5, "no misclassified images", ha="center", va="center", fontsize=12)
        _save(fig, path)
        return wrong
    shown = wrong[np.argsort(-confidence[wrong], kind="stable")][:max_images]
    cols = min(shown.size, MISTAKE_COLUMNS)
    width, height = misclassified_size(shown.size)
    fig = _figure("misclassified_grid", (width, height))
    fig.suptitle(f"{wrong.size} misclassified of {len(true)} (showing {shown.size})", y=1 - 12 / height, va="top")
    left = (width - cols * MISTAKE_PANEL[0]) / 2
    for panel, i in enumerate(shown):
        row, col = divmod(panel, cols)
        x0 = left + col * MISTAKE_PANEL[0] + 10
        y0 = height - 50 - (row + 1) * MISTAKE_PANEL[1] + 10
        side = MISTAKE_PANEL[0] - 20  # square image panel; the title sits in the space above it
        ax = fig.add_axes((x0 / width, y0 / height, side / width, side / height))
        ax.imshow(images[i], cmap="gray_r", vmin=0, vmax=1)
        ax.set_title(f"true {true[i]} / pred {pred[i]} ({confidence[i]:.2f})", fontsize=7)
        _hide_axes(ax)
    _save(fig, path)
    return shown


def _tile(blocks: np.ndarray) -> np.ndarray:
    """(R, C, h, w) -> (R*(h+1)-1, C*(w+1)-1) mosaic with NaN one-pixel gutters."""
    rows, cols, h, w = blocks.shape
    padded = np.full((rows, cols, h + 1, w + 1), np.nan)
    padded[:, :, :h, :w] = blocks
    return padded.transpose(0, 2, 1, 3).reshape(rows * (h + 1), cols * (w + 1))[:-1, :-1]


def kernels(kernels: np.ndarray, path: str | os.PathLike, title: str = "Convolution kernels") -> None:
    """The kernels (depth, C, k, k) of one convolution. With one input channel, a panel per output map in
    rows of up to 8; else one mosaic with a row per output map and a column per input channel.

    One colour scale symmetric around 0 for the whole layer, so weights compare across kernels.
    """
    kernels = np.asarray(kernels, dtype=np.float64)
    depth, channels, k, _ = kernels.shape
    limit = float(np.abs(kernels).max()) or 1.0
    style = {"cmap": matplotlib.colormaps["RdBu_r"].with_extremes(bad="white"), "vmin": -limit, "vmax": limit}
    fig = _figure("kernels")
    fig.suptitle(f"{title} ({depth} x {channels} of {k}x{k})")
    if channels == 1:
        cols = min(depth, 8)
        rows = math.ceil(depth / cols)
        axes = [fig.add_subplot(rows, cols, d + 1) for d in range(depth)]
        for d, ax in enumerate(axes):
            image = ax.imshow(kernels[d, 0], interpolation="nearest", **style)
            ax.set_title(f"map {d}", fontsize=9)
            _hide_axes(ax)
    else:
        ax = axes = fig.add_subplot()
        image = ax.imshow(_tile(kernels), interpolation="nearest", **style)
        step = max(1, channels // 16)
        ticks = np.arange(0, channels, step)
        ax.set_xticks(ticks * (k + 1) + (k - 1) / 2, [str(c) for c in ticks])
        step = max(1, depth // 16)
        ticks = np.arange(0, depth, step)
        ax.set_yticks(ticks * (k + 1) + (k - 1) / 2, [str(d) for d in ticks])
        ax.set_xlabel("input channel")
        ax.set_ylabel("output map")
    fig.colorbar(image, ax=axes, shrink=0.8)
    _save(fig, path)


def conv_activations(net, images: np.ndarray, after_activation: bool = True) -> list[tuple[str, np.ndarray]]:
    """Run net.layers one by one on images (M, C, H, W); return (name, maps (M, depth, H', W')) per convolution.

    With `after_activation`, a convolution directly followed by an activation layer is captured after it
    (what the next layer sees), and the name says so, e.g. "conv 1 + Sigmoid".
    """
    import cnn

    activations = tuple(getattr(cnn, name) for name in ("Sigmoid", "Tanh", "ReLU") if hasattr(cnn, name))
    x = np.asarray(images, dtype=getattr(net, "dtype", None))
    captured: list[tuple[str, np.ndarray]] = []
    pending: str | None = None
    for layer in net.layers:
        x = layer.forward(x)
        if pending is not None:
            if after_activation and isinstance(layer, activations):
                captured[-1] = (f"{pending} + {type(layer).__name__}", x)
            pending = None
        if isinstance(layer, cnn.Convolutional):
            pending = f"conv {len(captured) + 1}"
            captured.append((pending, x))
    return captured


def feature_maps(net, images: np.ndarray, labels: np.ndarray, path: str | os.PathLike, max_maps: int = 8) -> None:
    """For each example (a row), the input image then the maps of every convolution of `net`.

    images (M, 1, 28, 28) in [0, 1], typically one per class; labels (M,) their true labels. Shows the
    first `max_maps` maps of each convolution, each layer on one colour scale (its min to max over the
    examples) so the maps of a layer compare. The PNG's size follows the grid: feature_maps_size(M, columns).
    """
    images = np.asarray(images)
    layers = conv_activations(net, images)
    columns = [("input", images[:, 0], 0.0, 1.0)]
    for name, maps in layers:
        maps = np.asarray(maps, dtype=np.float64)
        lo, hi = float(maps.min()), float(maps.max())
        columns += [
            (f"{name}\nmap {d}", maps[:, d], lo, hi if hi > lo else lo + 1) for d in range(min(max_maps, maps.shape[1]))
        ]
    rows, cols = len(images), len(columns)
    fig = _figure("feature_maps", feature_maps_size(rows, cols))
    fig.suptitle("Feature maps of the convolutions, one example per class", fontsize=10)
    fontsize = 7
    for r in range(rows):
        for c, (name, maps, lo, hi) in enumerate(columns):
            ax = fig.add_subplot(rows, cols, r * cols + c + 1)
            ax.imshow(maps[r], cmap="gray_r" if c == 0 else "viridis", vmin=lo, vmax=hi)
            _hide_axes(ax)
            if r == 0:
                ax.set_title(name, fontsize=fontsize)
            if c == 0:
                ax.set_ylabel(f"label {labels[r]}", fontsize=fontsize)
    fig.tight_layout()
    _save(fig, path)
