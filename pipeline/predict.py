"""predict: classify the user's own digit pictures (PNG/JPEG, any size, dark-on-light or light-on-dark)."""

import os
import warnings
from pathlib import Path
from typing import NamedTuple

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError
from scipy import ndimage

from pipeline.errors import UserError

DIGIT_BOX = 20  # MNIST fits each digit into 20x20 ...
CANVAS = 28  # ... and centres its centre of mass in 28x28
CENTRE = 14.0  # where MNIST's centres of mass sit (measured on the shipped sample: 14.0 +- 0.3)
INK = 0.25  # after background removal, pixels above this fraction of the darkest ink count as the digit


MAX_PIXELS = 50_000_000  # larger pictures are refused before decoding (a 50 MP RGBA image takes 200 MB)
WORK_SIDE = 1024  # larger pictures are shrunk to this many pixels on their longer side before any float work


class Prediction(NamedTuple):
    path: Path
    digit: int
    probabilities: dict[int, float]


class Failure(NamedTuple):
    path: Path
    error: str


def _load_gray(path: Path) -> np.ndarray:
    """(H, W) float in [0, 1], 1 = white, at most WORK_SIDE pixels on a side; transparency composited onto
    white. Bounded memory: the declared size is checked (MAX_PIXELS) before any pixel is decoded."""
    if path.is_dir():
        raise UserError(f"{path}: a folder, not an image; give image files, e.g. {path}/*.png")
    if not path.is_file():
        raise UserError(f"{path}: no such file; check the path")
    too_big = f"more than the {MAX_PIXELS // 10**6} megapixel limit; scale the picture down (1000x1000 is plenty)"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # our own, lower cap follows
            image = Image.open(path)
        with image:
            width, height = image.size
            if width * height > MAX_PIXELS:
                raise UserError(f"{path}: {width}x{height} pixels, {too_big}")
            if max(width, height) > WORK_SIDE:
                image.draft("L", (WORK_SIDE, WORK_SIDE))  # JPEG: decode at a reduced scale
            image.load()
            image = ImageOps.exif_transpose(image)
            if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
                image = image.convert("RGBA")
                image = Image.alpha_composite(Image.new("RGBA", image.size, "white"), image)
            gray = image.convert("L")
            if max(gray.size) > WORK_SIDE:
                gray.thumbnail((WORK_SIDE, WORK_SIDE), Image.Resampling.BOX)
    except Image.DecompressionBombError:
        raise UserError(f"{path}: {too_big}") from None
    except (UnidentifiedImageError, OSError, ValueError) as error:
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise UserError(f"{path}: not a readable image ({reason}); give a PNG or JPEG file") from None
    return np.asarray(gray, dtype=np.float64) / 255.0


def prepare_image(path: str | os.PathLike) -> np.ndarray:
    """A digit picture -> (28, 28) float in [0, 1], white digit on black, prepared the way MNIST was.

    Grayscale; inverted when the background (the median of the border pixels) is light; background
    removed and contrast stretched; cropped to the digit's bounding box; scaled to fit 20x20 keeping the
    aspect ratio; placed in 28x28 with its centre of mass at the centre. A missing, unreadable or empty
    (no ink) image raises UserError naming the file.
    """
    path = Path(path)
    pixels = _load_gray(path)
    border = np.concatenate([pixels[0], pixels[-1], pixels[:, 0], pixels[:, -1]])
    if np.median(border) > 0.5:
        pixels, border = 1.0 - pixels, 1.0 - border
    background, peak = float(np.median(border)), float(pixels.max())
    if peak - background < 0.1:
        raise UserError(f"{path}: no digit found (the image is blank); draw a digit that contrasts with the paper")
    pixels = np.clip((pixels - background) / (peak - background), 0.0, 1.0)
    rows, cols = np.nonzero(pixels > INK)
    digit = pixels[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]

    h, w = digit.shape
    scale = DIGIT_BOX / max(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    resized = Image.fromarray(digit.astype(np.float32)).resize(size, Image.Resampling.LANCZOS)
    small = np.clip(np.asarray(resized, dtype=np.float64), 0.0, 1.0)
    small /= small.max() or 1.0  # thin pen strokes on a big canvas fade when shrunk; MNIST ink is full

    cy, cx = ndimage.center_of_mass(small)
    top = int(np.clip(round(CENTRE - cy), 0, CANVAS - small.shape[0]))
    left = int(np.clip(round(CENTRE - cx), 0, CANVAS - small.shape[1]))
    canvas = np.zeros((CANVAS, CANVAS))
    canvas[top : top + small.shape[0], left : left + small.shape[1]] = small
    return canvas


def probabilities(net, outputs: np.ndarray) -> np.ndarray:
    """Network outputs (N, K) -> class probabilities (N, K), rows summing to 1.

    A Softmax output is already a distribution and is kept as is. A Sigmoid output (the notebook's
    network) gives K independent scores in (0, 1); they are divided by their sum, which keeps the ranking
    but is a normalisation, not a calibrated probability. Any other last layer is put through a softmax.
    """
    import cnn

    outputs = np.asarray(outputs, dtype=np.float64)
    last = net.layers[-1]
    if isinstance(last, cnn.Softmax):
        return outputs
    if isinstance(last, cnn.Sigmoid):
        total = outputs.sum(axis=1, keepdims=True)
        return np.divide(outputs, total, out=np.full_like(outputs, 1 / outputs.shape[1]), where=total > 0)
    shifted = np.exp(outputs - outputs.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


def load_model(model_path: str | os.PathLike):
    """cnn.load with the errors a user can fix turned into UserError."""
    import cnn

    model_path = Path(model_path)
    if not model_path.is_file():
        raise UserError(f"{model_path}: no such model file; run `dvc repro` to train one, or pass --model")
    try:
        net = cnn.load(model_path)
    except cnn.ModelFileError as error:
        raise UserError(str(error)) from None
    if "classes" not in net.meta:
        raise UserError(f"{model_path}: the model has no meta['classes']; retrain it with `dvc repro`")
    if tuple(net.input_shape) != (1, CANVAS, CANVAS):
        raise UserError(f"{model_path}: the model takes {tuple(net.input_shape)} inputs, not (1, 28, 28) images")
    return net


def predict_images(paths: list[str | os.PathLike], model_path: str | os.PathLike) -> list[Prediction | Failure]:
    """Classify each image; one result per path, in order: Prediction(path, digit, {class: probability})
    or Failure(path, one-line message). A bad image does not stop the others; a bad model raises UserError.

    Probabilities: see `probabilities` (Sigmoid outputs normalised to sum 1, Softmax as is).
    """
    net = load_model(model_path)
    classes = [int(c) for c in net.meta["classes"]]
    prepared: dict[int, np.ndarray] = {}
    results: list[Prediction | Failure | None] = []
    for i, path in enumerate(map(Path, paths)):
        try:
            prepared[i] = prepare_image(path)
            results.append(None)
        except UserError as error:
            results.append(Failure(path, str(error)))
    if prepared:
        batch = np.stack(list(prepared.values()))[:, None].astype(net.dtype)
        probs = probabilities(net, net.predict(batch))
        for i, p in zip(prepared, probs, strict=True):
            by_class = {c: float(v) for c, v in zip(classes, p, strict=True)}
            results[i] = Prediction(Path(paths[i]), classes[int(p.argmax())], by_class)
    return results


def format_prediction(result: Prediction) -> str:
    probs = ", ".join(f"{c}: {p:.2f}" for c, p in result.probabilities.items())
    return f"{result.path}: {result.digit}  ({probs})"
