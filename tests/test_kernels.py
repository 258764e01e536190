"""cnn.kernels (compiled MaxPool forward/backward, ReLU backward, BatchNorm) against the layers' numpy formulation:
the same bits for y, the winner index, dx, batch norm's statistics and gradient sums, on random and adversarial data
(ties, NaN, inf, -0.0), for every kind of window layout and plane size; and preset networks trained with and without
kernels, on one and two threads."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import cnn
from cnn import kernels
from pipeline import params
from pipeline import train as trainer
from tests.layer_checks import check_gradients, fit_on_cores
from tests.test_cnn_package import fresh
from tests.test_presets import write

pytestmark = pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")  # 0.0 * inf, on purpose

UINT = {np.float32: np.uint32, np.float64: np.uint64}
LAYOUTS = [  # (C, H, W), size, stride
    ((3, 8, 8), 2, 2),  # tiled
    ((2, 11, 11), 2, 2),  # untiled: the last row and column in no window
    ((2, 9, 9), 3, 2),  # overlapping windows
    ((2, 9, 10), 3, 3),  # size 3, apart (last column in no window)
    ((1, 10, 10), 2, 3),  # gaps between windows
    ((1, 7, 7), 4, 1),
]


def bits(a: np.ndarray) -> np.ndarray:
    return a.view(UINT[a.dtype.type]) if a.dtype.type in UINT else a


def assert_same_bits(a: np.ndarray, b: np.ndarray) -> None:
    assert a.dtype == b.dtype and a.shape == b.shape
    np.testing.assert_array_equal(bits(a), bits(b))


def adversarial(rng: np.random.Generator, shape: tuple[int, ...], dtype, kind: str) -> np.ndarray:
    """Random normals, or data made of ties and special values."""
    if kind == "normal":
        return rng.standard_normal(shape).astype(dtype)
    if kind == "ties":  # few integer values: many windows with two or more maxima, +-0.0 among them
        values = np.array([-1.0, -0.0, 0.0, 1.0, 2.0], dtype=dtype)
    elif kind == "relu":  # as after a ReLU: mostly zeros, whole windows of them
        values = np.array([0.0, 0.0, 0.0, 0.0, 0.0, 0.5, 1.0], dtype=dtype)
    else:  # specials: NaNs with different payloads, infinities, signed zeros
        nan2 = np.array([np.nan], dtype=dtype).view(UINT[dtype])
        nan2 ^= 3
        values = np.array([np.nan, nan2.view(dtype)[0], np.inf, -np.inf, -0.0, 0.0, 1.0, -2.0], dtype=dtype)
    return rng.choice(values, size=shape)


KINDS = ["normal", "ties", "relu", "specials"]


def run_pool(layer: cnn.MaxPool, x: np.ndarray, dy: np.ndarray, use_kernels: bool):
    kernels_before, kernels.enabled = kernels.enabled, use_kernels
    try:
        y = layer.forward(x)
        winner = layer.winner.copy()
        np.full(x.shape, 7.0).sum()  # leave non-zero memory behind for an uninitialised gradient to pick up
        dx = layer.backward(dy)
    finally:
        kernels.enabled = kernels_before
    return y, winner, dx


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(("shape", "size", "stride"), LAYOUTS)
@pytest.mark.parametrize("batch", [1, 4])
def test_maxpool_kernel_gives_the_numpy_bits(shape, size, stride, kind, dtype, batch) -> None:
    rng = np.random.default_rng(hash((shape, size, stride, kind, batch)) % 2**32)
    layer = cnn.MaxPool(shape, size, stride)
    x = adversarial(rng, (batch, *shape), dtype, kind)
    dy = adversarial(rng, (batch, *layer.output_shape), dtype, "specials" if kind == "specials" else "normal")
    assert kernels.usable(x, dy)
    y, winner, dx = run_pool(layer, x, dy, use_kernels=True)
    y0, winner0, dx0 = run_pool(layer, x, dy, use_kernels=False)
    assert winner.dtype == winner0.dtype == np.uint8
    np.testing.assert_array_equal(winner, winner0)
    assert_same_bits(y, y0)
    assert_same_bits(dx, dx0)


def test_maxpool_kernel_by_hand_first_maximum_and_uncovered_pixels() -> None:
    x = np.array([[[[1.0, 3.0, 3.0, 0.0, 9.0], [3.0, 2.0, 0.0, 0.0, 9.0], [9.0, 9.0, 9.0, 9.0, 9.0]]]])
    layer = cnn.MaxPool((1, 3, 5), 2)
    np.testing.assert_array_equal(layer.forward(x), [[[[3.0, 3.0]]]])
    np.testing.assert_array_equal(layer.winner, [[[[1, 0]]]])  # the first of the window's maxima, row-major
    dx = layer.backward(np.array([[[[-5.0, 7.0]]]]))
    expected = [[0.0, -5.0, 7.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0, 0.0]]
    np.testing.assert_array_equal(dx[0, 0], expected)
    # 0.0 * -5.0 = -0.0 in the first window, 0.0 * 7.0 in the second, +0.0 in no window
    assert np.signbit(dx[0, 0]).tolist() == [[True, True, False, False, False], [True, True, False, False, False],
                                             [False] * 5]  # fmt: skip


def test_a_window_with_more_than_255_offsets_gets_a_wider_winner() -> None:
    layer = cnn.MaxPool((1, 17, 17), 17)
    x = np.random.default_rng(0).standard_normal((2, 1, 17, 17))
    x[0, 0, 16, 16] = 99.0
    y, winner, dx = run_pool(layer, x, np.ones((2, 1, 1, 1)), use_kernels=True)
    y0, winner0, dx0 = run_pool(layer, x, np.ones((2, 1, 1, 1)), use_kernels=False)
    assert winner.dtype == winner0.dtype == np.uint16 and winner[0, 0, 0, 0] == 288
    assert_same_bits(y, y0)
    assert_same_bits(dx, dx0)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("kind", KINDS)
def test_relu_backward_kernel_gives_the_numpy_bits(dtype, kind) -> None:
    rng = np.random.default_rng(1)
    x = adversarial(rng, (3, 4, 5, 6), dtype, kind)
    dy = adversarial(rng, x.shape, dtype, "specials")
    dy[0] = -np.abs(rng.standard_normal(x.shape[1:]))  # negative gradients: -0.0 where the ReLU is off
    relu = cnn.ReLU()
    relu.connect(x.shape[1:])
    relu.forward(x)
    assert kernels.usable(relu.y, dy)
    dx = relu.backward(dy)
    with kernels.disabled():
        dx0 = relu.backward(dy)
    assert_same_bits(dx, dx0)
    assert np.signbit(dx[0][relu.y[0] <= 0]).all()


def test_other_dtypes_and_layouts_take_the_numpy_path() -> None:
    x = np.ones((2, 3, 4, 4), dtype=np.float32)
    assert kernels.usable(x) and not kernels.usable(x.astype(np.float16)) and not kernels.usable(x[:, :, ::2])
    assert not kernels.usable(x, x.astype(np.float64))
    with kernels.disabled():
        assert not kernels.usable(x)
    assert kernels.usable(x)
    layer = cnn.MaxPool((3, 4, 4), 2)
    half = np.random.default_rng(0).standard_normal(x.shape).astype(np.float16)
    y = layer.forward(half)
    assert y.dtype == np.float16 and layer.backward(np.ones_like(y)).dtype == np.float16


@pytest.mark.parametrize("use_kernels", [True, False], ids=["kernels", "numpy"])
@pytest.mark.parametrize("make", [lambda: cnn.MaxPool((2, 6, 6), 2), lambda: cnn.MaxPool((2, 7, 7), 3, stride=2),
                                  lambda: cnn.MaxPool((1, 9, 8), 2, stride=3)])  # fmt: skip
def test_maxpool_gradients_match_finite_differences_on_both_paths(make, use_kernels) -> None:
    kernels_before, kernels.enabled = kernels.enabled, use_kernels
    try:
        layer = make()
        check_gradients(layer, np.random.default_rng(0).standard_normal((2, *layer.input_shape)))
    finally:
        kernels.enabled = kernels_before


POOL_RELU = {"maxpool_forward", "maxpool_backward", "relu_backward"}
BATCHNORM = {"batchnorm_statistics", "batchnorm_normalize", "batchnorm_gradient_sums", "batchnorm_input_gradient"}


@pytest.mark.parametrize(("preset", "expected"), [("keras-convnet", POOL_RELU), ("best", POOL_RELU | BATCHNORM)])
def test_a_preset_trains_to_the_same_bits_with_and_without_kernels_on_one_and_two_cores(
    notebook_data, tmp_path: Path, monkeypatch, preset: str, expected: set[str]
) -> None:
    train = params.section(write(tmp_path, preset=preset), "train")
    x, y = notebook_data[0][:128], cnn.one_hot(notebook_data[1][:128], 2, dtype="float32")
    calls = []
    for name in POOL_RELU | BATCHNORM:
        kernel = getattr(kernels, name)
        monkeypatch.setattr(kernels, name, lambda *a, kernel=kernel, name=name: calls.append(name) or kernel(*a))

    def make_net() -> cnn.Sequential:
        return trainer.build_network(train, (1, 28, 28), [0, 1])

    runs = {}
    for use_kernels in (True, False):
        monkeypatch.setattr(kernels, "enabled", use_kernels)
        for cores in (1, 2):
            runs[use_kernels, cores] = fit_on_cores(monkeypatch, make_net, x, y, batch_size=64, cores=cores)
            assert set(calls) == (expected if use_kernels else set())
            calls.clear()
    reference = runs[False, 1]
    for params_after in runs.values():
        for a, b in zip(params_after, reference, strict=True):
            assert_same_bits(a, b)


def run_batchnorm(x: np.ndarray, dy: np.ndarray, use_kernels: bool, parts: int = 1) -> list[np.ndarray]:
    """Everything a BatchNorm step computes: a training forward and backward (the batch in `parts` parts, as
    cnn.parallel splits it), the gradient sums, the moved running statistics, then inference forward and backward."""
    layer = cnn.BatchNorm(x.shape[1:])
    layer.initialize("he", 0, x.dtype)
    layer.params["gamma"][:] = np.linspace(0.5, 1.5, x.shape[1])
    layer.params["beta"][:] = np.linspace(-0.2, 0.3, x.shape[1])
    kernels_before, kernels.enabled = kernels.enabled, use_kernels
    try:
        layer.training = True
        cuts = np.array_split(np.arange(len(x)), parts)
        whole = layer.whole_statistics([layer.partial_statistics(x[c]) for c in cuts])
        ys, xhats = [], []
        for c in cuts:
            ys.append(layer.forward_with(x[c], whole))
            xhats.append(layer.xhat)
        sums = []
        for c, xhat in zip(cuts, xhats, strict=True):
            layer.xhat = xhat
            sums.append(tuple(v.copy() for v in layer.partial_gradient_sums(dy[c])))
        grads = layer.whole_gradient_sums(sums)
        dxs = []
        for c, xhat in zip(cuts, xhats, strict=True):
            layer.xhat = xhat
            dxs.append(layer.backward_with(dy[c], grads))
        layer.training = False
        inference = [layer.forward(x), layer.backward(dy)]
    finally:
        kernels.enabled = kernels_before
    running = [layer.buffers["running_mean"], layer.buffers["running_var"]]
    return [np.concatenate(ys), np.concatenate(dxs), *grads, *running, *inference]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("kind", ["normal", "offset", "ties", "specials"])
@pytest.mark.parametrize(  # planes below 8 values, up to 128 (numpy's pairwise blocks), above (halved), odd sizes
    "shape", [(5, 3, 2, 2), (4, 2, 3, 3), (6, 2, 8, 8), (3, 2, 11, 11), (4, 3, 13, 13), (2, 2, 26, 26), (3, 1, 28, 28)]
)
@pytest.mark.parametrize("parts", [1, 2])
def test_batchnorm_kernels_give_the_numpy_bits(shape, kind, dtype, parts) -> None:
    rng = np.random.default_rng(hash((shape, kind, parts)) % 2**32)
    if kind == "offset":  # a large mean and small spread: the sums' rounding matters most
        x = (1000 + rng.standard_normal(shape)).astype(dtype)
    else:
        x = adversarial(rng, shape, dtype, kind)
    dy = adversarial(rng, shape, dtype, "specials" if kind == "specials" else "normal")
    assert kernels.usable(x, dy)
    compiled, reference = run_batchnorm(x, dy, True, parts), run_batchnorm(x, dy, False, parts)
    for a, b in zip(compiled, reference, strict=True):
        # NaN where numpy has NaN; which NaN (sign, payload) a sum or difference of NaNs gives depends on the
        # order of its operands, which numpy's loops and LLVM choose apart: every other value is the same bits
        np.testing.assert_array_equal(np.isnan(a), np.isnan(b))
        assert_same_bits(np.where(np.isnan(a), 0, a), np.where(np.isnan(b), 0, b))


def test_batchnorm_of_dense_features_and_other_dtypes_take_the_numpy_path(monkeypatch) -> None:
    monkeypatch.setattr(kernels, "batchnorm_statistics", lambda *a: pytest.fail("compiled"))
    monkeypatch.setattr(kernels, "batchnorm_normalize", lambda *a: pytest.fail("compiled"))
    rng = np.random.default_rng(0)
    for x in (rng.standard_normal((8, 5)), rng.standard_normal((4, 2, 3, 3)).astype(np.float16)):
        layer = cnn.BatchNorm(x.shape[1:])
        layer.initialize("he", 0, x.dtype)
        layer.training = True
        assert layer.forward(x).shape == x.shape


def test_numba_loads_on_the_first_kernel_call_not_for_the_notebook_network() -> None:
    """The default run (conv, sigmoid, dense) and `import cnn` never pay numba's import and compile time."""
    loaded = fresh(
        """
        import sys
        import numpy as np
        import cnn
        net = cnn.Sequential(cnn.build(cnn.NOTEBOOK_LAYERS), init="normal", seed=0)
        x = np.random.default_rng(0).random((4, 1, 28, 28))
        net.fit(x, cnn.one_hot(np.array([0, 1, 1, 0]), 2), cnn.BinaryCrossEntropy(), cnn.SGD(0.1), epochs=1)
        print("numba" in sys.modules)
        relu = cnn.ReLU()
        relu.connect((3,))
        relu.forward(x[:, 0, 0, :3])
        relu.backward(np.ones((4, 3)))
        print("numba" in sys.modules)
        """
    )
    assert loaded.split() == ["False", "True"]


CACHE_PROBE = """
import numpy as np
from cnn import kernels
x = np.random.default_rng(0).standard_normal((4, 3, 6, 6)).astype(np.float32)
y, winner = kernels.maxpool_forward(x, 2, 2, (3, 3))
kernels.maxpool_backward(winner, y, 2, 2, (6, 6))
kernels.relu_backward(x, x)
mean, m2 = kernels.batchnorm_statistics(x)
xhat, _ = kernels.batchnorm_normalize(x, mean, m2, mean, m2)
kernels.batchnorm_gradient_sums(x, xhat, mean.copy(), m2.copy())
kernels.batchnorm_input_gradient(x, xhat, 4, mean, m2, mean)
compiled = [*kernels._pool(2), kernels._relu(), *kernels._batchnorm()]
print(*(sum(sum(getattr(k.stats, kind).values()) for k in compiled) for kind in ("cache_misses", "cache_hits")))
"""


def test_every_kernel_loads_from_numbas_cache_in_the_next_process(tmp_path: Path) -> None:
    """A kernel numba cannot cache (a closure over another kernel, a recursive one) would compile again in every
    process that trains, seconds each time, and add a file to the cache each time."""
    env = os.environ | {"NUMBA_CACHE_DIR": str(tmp_path)}
    runs = [subprocess.run([sys.executable, "-c", CACHE_PROBE], capture_output=True, text=True, env=env, check=False)
            for _ in range(2)]  # fmt: skip
    assert all(run.returncode == 0 for run in runs), [run.stderr[-1000:] for run in runs]
    (first_misses, _), (misses, hits) = (map(int, run.stdout.split()) for run in runs)
    assert first_misses == 7  # every kernel compiled once, into the empty cache
    assert (misses, hits) == (0, 7)
