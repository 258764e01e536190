"""Seeded augmentation: hand cases of the geometry (one-pixel shifts, half-pixel shifts, 90-degree rotations,
scaling), the elastic field against a per-image filter, determinism and dtypes, value range, one resampling call
for the whole batch, memory, and the params-style factory's one-line errors."""

import tracemalloc

import numpy as np
import pytest
from scipy import ndimage

import cnn.augment
from cnn.augment import Augment, affine_coordinates, elastic_displacement, make_augment, warp

FULL = Augment(shift=2, rotate=10, scale=0.1, alpha=34, sigma=4)


def images(n: int = 8, c: int = 1, size: int = 28, dtype=np.float64) -> np.ndarray:
    return np.random.default_rng(7).random((n, c, size, size)).astype(dtype)


def shifted(image: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """image (H, W) moved down by rows and right by cols, zero-filled."""
    out = np.zeros_like(image)
    h, w = image.shape
    out[max(rows, 0) : h + min(rows, 0), max(cols, 0) : w + min(cols, 0)] = image[
        max(-rows, 0) : h + min(-rows, 0), max(-cols, 0) : w + min(-cols, 0)
    ]
    return out


def transform(x: np.ndarray, angle: float = 0.0, scale: float = 1.0, shift=(0.0, 0.0)) -> np.ndarray:
    n = len(x)
    return warp(x, affine_coordinates(x.shape[2:], np.full(n, angle), np.full(n, scale), np.tile(shift, (n, 1))))


def test_zero_parameters_are_the_identity_and_draw_nothing():
    x = images()
    rng = np.random.default_rng(0)
    assert np.array_equal(Augment()(x, rng), x)
    assert rng.random() == np.random.default_rng(0).random()


def test_an_empty_batch_stays_empty():
    x = np.zeros((0, 1, 28, 28), dtype=np.float32)
    assert FULL(x, np.random.default_rng(0)).shape == (0, 1, 28, 28)


def test_the_identity_transform_resamples_exactly():
    x = images(c=3)
    assert np.array_equal(transform(x), x)


@pytest.mark.parametrize(("rows", "cols"), [(0, 1), (1, 0), (-1, 0), (0, -1), (2, -3)])
def test_a_whole_pixel_shift_moves_the_image_by_that_many_pixels(rows, cols):
    x = images(n=3, c=2)
    out = transform(x, shift=(rows, cols))
    expected = np.stack([[shifted(channel, rows, cols) for channel in sample] for sample in x])
    assert np.array_equal(out, expected)


def test_warp_matches_scipy_resampling_each_image_with_zero_outside():
    x = images(n=5, c=2, size=12)
    coordinates = np.random.default_rng(3).uniform(-4, 16, size=(2, 5, 12, 12))  # a third of them outside
    stack = x.reshape(10, 12, 12)
    expected = np.stack(
        [ndimage.map_coordinates(stack[i], coordinates[:, i // 2], order=1, mode="grid-constant") for i in range(10)]
    ).reshape(x.shape)
    assert np.allclose(warp(x, coordinates), expected, rtol=0, atol=1e-8)  # row coordinates on a 2**-30 grid
    assert np.count_nonzero(expected) < 0.8 * expected.size  # the zero outside is exercised


def test_an_image_is_warped_to_the_same_bits_wherever_it_stands_in_the_batch():
    x = images(n=128, dtype=np.float64)
    x[-1] = x[0]
    coordinates = np.random.default_rng(4).uniform(-2, 30, size=(2, 128, 28, 28))
    coordinates[:, -1] = coordinates[:, 0]
    out = warp(x, coordinates)
    assert np.array_equal(out[-1], out[0])
    assert np.array_equal(out[0], warp(x[:1], coordinates[:, :1])[0])


def test_a_half_pixel_shift_averages_neighbours():
    x = images(n=2)
    out = transform(x, shift=(0.0, 0.5))
    assert np.allclose(out[..., 1:], (x[..., 1:] + x[..., :-1]) / 2, rtol=0, atol=1e-15)
    assert np.allclose(out[..., 0], x[..., 0] / 2, rtol=0, atol=1e-15)  # half of it from the zero outside


@pytest.mark.parametrize(("angle", "k"), [(90, 1), (-90, -1), (180, 2)])
def test_a_quarter_turn_matches_rot90(angle, k):
    x = images(n=3, size=9)
    assert np.allclose(transform(x, angle=angle), np.rot90(x, k=k, axes=(2, 3)), rtol=0, atol=1e-12)


def test_scaling_by_two_enlarges_about_the_centre():
    x = images(n=1, size=5)
    out = transform(x, scale=2.0)
    assert out[0, 0, 2, 2] == x[0, 0, 2, 2]
    assert out[0, 0, 2, 4] == x[0, 0, 2, 3]  # two pixels right of the centre reads one pixel right
    assert out[0, 0, 0, 2] == x[0, 0, 1, 2]
    assert out[0, 0, 2, 3] == pytest.approx((x[0, 0, 2, 2] + x[0, 0, 2, 3]) / 2, abs=1e-15)


def test_random_whole_pixel_shifts_stay_within_range_and_vary():
    x = np.repeat(images(n=1), 64, axis=0)
    out = Augment(shift=1)(x, np.random.default_rng([3, 2]))
    candidates = {(r, c): shifted(x[0, 0], r, c) for r in (-1, 0, 1) for c in (-1, 0, 1)}
    drawn = [next(key for key, image in candidates.items() if np.array_equal(sample[0], image)) for sample in out]
    assert len(set(drawn)) == 9  # every one of the nine shifts occurs in 64 draws


def test_random_rotations_stay_within_the_angle():
    x = np.zeros((200, 1, 29, 29))
    x[:, 0, 14, 24] = 1.0  # a dot ten pixels right of the centre
    out = Augment(rotate=10)(x, np.random.default_rng(1))
    rows, cols = np.arange(29) - 14, np.arange(29) - 14
    mass = out[:, 0].sum(axis=(1, 2))
    row = (out[:, 0] * rows[:, None]).sum(axis=(1, 2)) / mass
    col = (out[:, 0] * cols[None, :]).sum(axis=(1, 2)) / mass
    degrees = np.degrees(np.arctan2(-row, col))  # counter-clockwise as displayed: up is -row
    assert np.all(np.abs(degrees) <= 10.5)
    assert degrees.max() - degrees.min() > 15


def test_every_channel_of_a_sample_moves_together():
    x = images(n=4, c=1)
    x3 = np.concatenate([x, 0.5 * x, 0.25 * x], axis=1)
    out = FULL(x3, np.random.default_rng(5))
    assert np.allclose(out[:, 1], 0.5 * out[:, 0], rtol=0, atol=1e-15)
    assert np.allclose(out[:, 2], 0.25 * out[:, 0], rtol=0, atol=1e-15)


def test_the_elastic_field_is_each_image_smoothed_alone_times_alpha():
    n, shape = 3, (28, 28)
    field = elastic_displacement(np.random.default_rng(9), n, shape, alpha=34.0, sigma=4.0)
    noise = np.random.default_rng(9).uniform(-1.0, 1.0, size=(2, n, *shape))
    for axis in range(2):
        for i in range(n):
            alone = 34.0 * ndimage.gaussian_filter(noise[axis, i], sigma=4.0, mode="constant", cval=0.0)
            assert np.allclose(field[axis, i], alone, rtol=0, atol=1e-12)
    assert 0.5 < np.abs(field).max() < 10  # Simard's values move pixels by a few pixels, not by the image


def test_same_seed_same_output_different_seed_different():
    x = images()
    a = FULL(x, np.random.default_rng([1, 2]))
    assert np.array_equal(a, FULL(x, np.random.default_rng([1, 2])))
    assert not np.allclose(a, FULL(x, np.random.default_rng([2, 2])))
    assert not np.allclose(a, x)


def test_float32_and_float64_get_the_same_transform_in_their_own_dtype():
    x32 = images(dtype=np.float32)
    out32 = FULL(x32, np.random.default_rng(4))
    out64 = FULL(x32.astype(np.float64), np.random.default_rng(4))
    assert out32.dtype == np.float32 and out64.dtype == np.float64
    assert np.array_equal(out32, out64.astype(np.float32))


def test_values_stay_in_the_unit_interval_and_the_input_is_not_changed():
    x = images(n=64)
    x[:, :, 10:18, 10:18] = 1.0
    before = x.copy()
    out = Augment(shift=3, rotate=30, scale=0.3, alpha=80, sigma=3, subpixel=True)(x, np.random.default_rng(0))
    assert out.min() >= 0.0 and out.max() <= 1.0
    assert np.array_equal(x, before)


def test_the_batch_is_resampled_in_one_call_and_smoothed_in_one_call(monkeypatch):
    calls = {"map_coordinates": 0, "gaussian_filter": 0}
    for name in calls:
        original = getattr(ndimage, name)

        def counted(*args, _name=name, _original=original, **kwargs):
            calls[_name] += 1
            return _original(*args, **kwargs)

        monkeypatch.setattr(cnn.augment.ndimage, name, counted)
    FULL(images(n=128, c=3), np.random.default_rng(0))
    assert calls == {"map_coordinates": 1, "gaussian_filter": 1}


def test_a_batch_of_128_mnist_images_needs_a_few_megabytes():
    x = images(n=128, dtype=np.float32)  # 0.4 MB
    FULL(x, np.random.default_rng(0))
    tracemalloc.start()
    FULL(x, np.random.default_rng(0))
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 8 * 2**20, f"peak {peak / 2**20:.1f} MiB"


def test_make_augment_from_params_style_specs():
    assert make_augment(None) is None
    assert make_augment({}) is None
    spec = {"shift": 2, "rotate": 10, "scale": 0.1, "elastic": {"alpha": 34, "sigma": 4}}
    assert make_augment(spec) == FULL
    assert make_augment({"shift": 1.5, "subpixel": True}) == Augment(shift=1.5, subpixel=True)
    assert make_augment({"rotate": 15, "elastic": None}) == Augment(rotate=15)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("shift", "augment must be a mapping such as {shift: 2, rotate: 10} or null, got 'shift'"),
        ({"shfit": 2}, "augment: unknown key 'shfit'; allowed: shift, rotate, scale, elastic, subpixel"),
        ({"shift": 1.5}, "augment.shift must be whole pixels (or set subpixel: true), got 1.5"),
        ({"shift": -1}, "augment: shift must be >= 0 pixels, got -1"),
        ({"rotate": "10"}, "augment.rotate must be a number, got '10'"),
        ({"rotate": 200}, "augment: rotate must be in [0, 180] degrees, got 200"),
        ({"scale": 1}, "augment: scale must be in [0, 1), got 1"),
        ({"scale": True}, "augment.scale must be a number, got True"),
        ({"subpixel": "yes"}, "augment.subpixel must be true or false, got 'yes'"),
        ({"elastic": 34}, "augment.elastic must be a mapping {alpha: 34, sigma: 4} or null, got 34"),
        ({"elastic": {"alpha": 34}}, "augment.elastic needs both alpha and sigma"),
        ({"elastic": {"alpha": 34, "sigma": 4, "seed": 1}}, "augment.elastic: unknown key 'seed'; allowed: alpha"),
        ({"elastic": {"alpha": 34, "sigma": 0}}, "augment: sigma must be > 0, got 0"),
        ({"elastic": {"alpha": float("inf"), "sigma": 4}}, "augment.elastic.alpha must be a number, got inf"),
    ],
)
def test_make_augment_rejects_a_bad_spec_in_one_line(spec, message):
    with pytest.raises(ValueError) as raised:
        make_augment(spec)
    assert message in str(raised.value)
    assert "\n" not in str(raised.value)


def test_a_batch_that_is_not_four_dimensional_is_rejected():
    with pytest.raises(ValueError, match=r"augment needs a batch of shape \(N, C, H, W\), got shape \(8, 28, 28\)"):
        FULL(images()[:, 0], np.random.default_rng(0))
