"""Seeded data augmentation of image batches (Simard, Steinkraus & Platt 2003): random shifts, small rotations,
scaling and elastic distortion, each sample its own draw, the whole batch in one resampling.

Output pixel p = (row, col) of a sample is read (bilinear, zero outside the image) at the source point
    src(p) = c + R(theta) (p - c - t) / s + alpha * (G_sigma * u)(p)
c = ((H - 1) / 2, (W - 1) / 2), the image centre; t = (t_row, t_col) the shift in pixels, uniform in [-shift, shift]
per axis (whole pixels unless subpixel); theta uniform in [-rotate, rotate] degrees, positive counter-clockwise as
displayed (90 degrees = np.rot90); s uniform in [1 - scale, 1 + scale], > 1 enlarges;
R(theta) = [[cos, sin], [-sin, cos]] on (row, col); u uniform in [-1, 1]^2 per pixel, smoothed by a Gaussian of
sigma pixels (zero beyond the border) and scaled by alpha pixels (elastic; Simard's MNIST values: alpha 34, sigma 4).

Bilinear weights are a convex combination of input pixels and the zero outside, so values stay in the input's
range (and in [0, 1] for pixels in [0, 1]); the result is clipped to it against rounding. All draws are float64
from the generator in a fixed order, so float32 and float64 batches get the same transform; the output has the
input's dtype. Shapes: x (N, C, H, W); every channel of a sample moves together.
"""

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import ndimage

from .specs import no_unknown_keys, number

_GRID = 2.0**30


def affine_coordinates(
    shape: tuple[int, int], angles: np.ndarray, scales: np.ndarray, shifts: np.ndarray
) -> np.ndarray:
    """Source coordinates (2, N, H, W) of src(p) = c + R(theta) (p - c - t) / s for N samples:
    angles (N,) in degrees, scales (N,), shifts (N, 2) in pixels (row, col)."""
    h, w = shape
    theta = np.deg2rad(np.asarray(angles, dtype=np.float64))[:, None, None]
    inv_scale = 1.0 / np.asarray(scales, dtype=np.float64)[:, None, None]
    shifts = np.asarray(shifts, dtype=np.float64)
    u = np.arange(h, dtype=np.float64)[None, :, None] - (h - 1) / 2 - shifts[:, 0, None, None]
    v = np.arange(w, dtype=np.float64)[None, None, :] - (w - 1) / 2 - shifts[:, 1, None, None]
    cos, sin = np.cos(theta) * inv_scale, np.sin(theta) * inv_scale
    rows = cos * u + sin * v + (h - 1) / 2
    cols = cos * v - sin * u + (w - 1) / 2
    return np.stack([rows, cols])


def elastic_displacement(
    rng: np.random.Generator, n: int, shape: tuple[int, int], alpha: float, sigma: float
) -> np.ndarray:
    """Displacements (2, N, H, W) in pixels: uniform [-1, 1] noise, Gaussian-smoothed per image (sigma pixels,
    zero beyond the border, one filter call over the stack), times alpha."""
    noise = rng.uniform(-1.0, 1.0, size=(2, n, *shape))
    return alpha * ndimage.gaussian_filter(noise, sigma=(0, 0, sigma, sigma), mode="constant", cval=0.0)


def warp(x: np.ndarray, coordinates: np.ndarray) -> np.ndarray:
    """x (N, C, H, W) resampled at coordinates (2, N, H, W) (row, col per output pixel of each sample), bilinear,
    zero outside. Same dtype as x.

    One map_coordinates call for the batch: the images, each framed by one row and column of zeros, are laid
    one under the other as a single (N * C * (H + 2), W + 2) image, and every source point is clamped to its
    image's frame, where all is zero; so a point reads its own image only, and gets from beyond the border
    the zero scipy's mode="grid-constant" would give (tests/test_augment.py compares the two). Row coordinates
    are rounded to multiples of 2**-30 pixel first, so that adding an image's offset is exact (below 2**22 rows
    in all) and an image gets the same bits wherever it stands in the batch.
    """
    n, c, h, w = x.shape
    framed = np.zeros((n * c, h + 2, w + 2), dtype=x.dtype)
    framed[:, 1:-1, 1:-1] = x.reshape(n * c, h, w)
    rows, cols = (np.repeat(axis, c, axis=0) for axis in coordinates) if c > 1 else coordinates
    rows = np.round(np.clip(rows, -1, h) * _GRID) / _GRID  # on a 2**-30 grid, so the offsets add exactly:
    rows += 1 + (h + 2) * np.arange(n * c, dtype=np.float64)[:, None, None]  # the same weights in every image
    cols = np.clip(cols, -1, w) + 1
    out = ndimage.map_coordinates(framed.reshape(-1, w + 2), [rows, cols], output=x.dtype, order=1, mode="nearest")
    low, high = min(0.0, float(x.min())), max(0.0, float(x.max()))
    np.clip(out, low, high, out=out)
    return out.reshape(x.shape)


@dataclass(frozen=True)
class Augment:
    """augment(x, rng) -> a transformed copy of the batch x (N, C, H, W); see the module docstring.

    shift: largest shift in pixels per axis (a whole number unless subpixel); rotate: largest angle in degrees;
    scale: largest relative change of size (0.1: 0.9x to 1.1x); alpha, sigma: elastic distortion in pixels
    (alpha 0: none). All zero: x itself, no draws.
    """

    shift: float = 0
    rotate: float = 0.0
    scale: float = 0.0
    alpha: float = 0.0
    sigma: float = 0.0
    subpixel: bool = False

    def __post_init__(self) -> None:
        checks = [
            (self.shift >= 0, f"shift must be >= 0 pixels, got {self.shift}"),
            (self.subpixel or self.shift == int(self.shift), f"shift must be whole pixels, got {self.shift}"),
            (0 <= self.rotate <= 180, f"rotate must be in [0, 180] degrees, got {self.rotate}"),
            (0 <= self.scale < 1, f"scale must be in [0, 1), got {self.scale}"),
            (self.alpha >= 0, f"alpha must be >= 0, got {self.alpha}"),
            (self.sigma >= 0 and (self.alpha == 0 or self.sigma > 0), f"sigma must be > 0, got {self.sigma}"),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(message)

    def __call__(self, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        if x.ndim != 4:
            raise ValueError(f"augment needs a batch of shape (N, C, H, W), got shape {x.shape}")
        if not (self.shift or self.rotate or self.scale or self.alpha) or not x.size:
            return x
        n, _, h, w = x.shape
        if self.subpixel:
            shifts = rng.uniform(-self.shift, self.shift, size=(n, 2))
        else:
            shifts = rng.integers(-int(self.shift), int(self.shift), size=(n, 2), endpoint=True).astype(np.float64)
        angles = rng.uniform(-self.rotate, self.rotate, size=n)
        scales = rng.uniform(1 - self.scale, 1 + self.scale, size=n)
        coordinates = affine_coordinates((h, w), angles, scales, shifts)
        if self.alpha:
            coordinates += elastic_displacement(rng, n, (h, w), self.alpha, self.sigma)
        return warp(x, coordinates)


_KEYS = ("shift", "rotate", "scale", "elastic", "subpixel")


def make_augment(spec: dict[str, Any] | None) -> Augment | None:
    """The augmentation a params-style spec describes, or None for no spec (null) or an empty one.

    spec: {shift: 2, rotate: 10, scale: 0.1, elastic: {alpha: 34, sigma: 4}, subpixel: false}; every key
    optional (0 / null / false: off). Raises ValueError with one line naming the bad key or value.
    """
    if spec is None or spec == {}:
        return None
    if not isinstance(spec, dict):
        raise ValueError(f"augment must be a mapping such as {{shift: 2, rotate: 10}} or null, got {spec!r}")
    no_unknown_keys("augment", spec, _KEYS)
    subpixel = spec.get("subpixel", False)
    if not isinstance(subpixel, bool):
        raise ValueError(f"augment.subpixel must be true or false, got {subpixel!r}")
    values = {key: number(f"augment.{key}", spec.get(key) or 0) for key in ("shift", "rotate", "scale")}
    if not subpixel and values["shift"] != int(values["shift"]):
        raise ValueError(f"augment.shift must be whole pixels (or set subpixel: true), got {values['shift']!r}")
    elastic = spec.get("elastic") or {}
    if not isinstance(elastic, dict):
        raise ValueError(f"augment.elastic must be a mapping {{alpha: 34, sigma: 4}} or null, got {elastic!r}")
    no_unknown_keys("augment.elastic", elastic, ("alpha", "sigma"))
    if elastic and set(elastic) != {"alpha", "sigma"}:
        raise ValueError(f"augment.elastic needs both alpha and sigma (e.g. {{alpha: 34, sigma: 4}}), got {elastic}")
    alpha = number("augment.elastic.alpha", elastic.get("alpha", 0))
    sigma = number("augment.elastic.sigma", elastic.get("sigma", 0))
    try:
        return Augment(subpixel=subpixel, alpha=alpha, sigma=sigma, **values)
    except ValueError as error:
        raise ValueError(f"augment: {error}") from None
