"""Layers: finite-difference gradient checks (float64), batch == per-sample, dtype kept, stable sigmoid."""

import warnings

import numpy as np
import pytest

import cnn

RNG_SEED = 1234


def rel_error(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(a) + np.linalg.norm(b), 1e-300))


def numerical_gradient(f, x: np.ndarray, h: float = 1e-6) -> np.ndarray:
    """Central differences of scalar f() with respect to every entry of x (changed in place, restored)."""
    grad = np.zeros_like(x)
    flat, gflat = x.reshape(-1), grad.reshape(-1)
    for i in range(flat.size):
        old = flat[i]
        flat[i] = old + h
        plus = f()
        flat[i] = old - h
        minus = f()
        flat[i] = old
        gflat[i] = (plus - minus) / (2 * h)
    return grad


def make_layer(kind: str) -> tuple[cnn.Layer, tuple[int, ...]]:
    """A small layer of each kind and its per-sample input shape, parameters initialised in float64."""
    layers = {
        "dense": (lambda: cnn.Dense(6, 4), (6,)),
        "conv_untied": (lambda: cnn.Convolutional((2, 6, 5), 3, 3), (2, 6, 5)),
        "conv_tied": (lambda: cnn.Convolutional((2, 6, 5), 3, 3, bias="tied"), (2, 6, 5)),
        "conv_k1": (lambda: cnn.Convolutional((3, 4, 4), 1, 2), (3, 4, 4)),
        "maxpool": (lambda: cnn.MaxPool((2, 6, 6), 2), (2, 6, 6)),
        "maxpool_overlap": (lambda: cnn.MaxPool((1, 7, 6), 3, stride=2), (1, 7, 6)),
        "reshape": (lambda: cnn.Reshape((2, 3, 4), (4, 6)), (2, 3, 4)),
        "flatten": (lambda: cnn.Flatten((2, 3, 4)), (2, 3, 4)),
        "sigmoid": (cnn.Sigmoid, (3, 5)),
        "tanh": (cnn.Tanh, (3, 5)),
        "relu": (cnn.ReLU, (3, 5)),
        "softmax": (cnn.Softmax, (7,)),
    }
    factory, shape = layers[kind]
    layer = factory()
    layer.initialize("normal", np.random.default_rng(RNG_SEED), np.float64)
    return layer, shape


KINDS = [
    "dense",
    "conv_untied",
    "conv_tied",
    "conv_k1",
    "maxpool",
    "maxpool_overlap",
    "reshape",
    "flatten",
    "sigmoid",
    "tanh",
    "relu",
    "softmax",
]


def random_input(kind: str, shape: tuple[int, ...], n: int, rng: np.random.Generator) -> np.ndarray:
    x = rng.standard_normal((n, *shape))
    if kind == "relu":  # keep clear of the kink at 0, where the derivative is undefined
        x += np.where(x >= 0, 0.1, -0.1)
    return x


@pytest.mark.parametrize("kind", KINDS)
def test_gradients_match_finite_differences(kind: str) -> None:
    rng = np.random.default_rng(7)
    layer, shape = make_layer(kind)
    x = random_input(kind, shape, 2, rng)
    weights = rng.standard_normal((2, *layer.forward(x).shape[1:]))  # loss = sum(weights * y)

    def loss() -> float:
        return float(np.sum(weights * layer.forward(x)))

    layer.forward(x)
    dx = layer.backward(weights.copy())
    assert dx.shape == x.shape
    assert rel_error(dx, numerical_gradient(loss, x)) < 1e-6
    for name, param in layer.params.items():
        layer.forward(x)
        layer.backward(weights.copy())
        analytic = layer.grads[name].copy()
        assert analytic.shape == param.shape
        assert rel_error(analytic, numerical_gradient(loss, param)) < 1e-6, name


@pytest.mark.parametrize("kind", ["dense", "conv_untied", "conv_tied", "maxpool", "flatten", "softmax"])
def test_batch_equals_single_sample_passes(kind: str) -> None:
    rng = np.random.default_rng(3)
    layer, shape = make_layer(kind)
    x = random_input(kind, shape, 4, rng)
    y = layer.forward(x)
    g = rng.standard_normal(y.shape)
    dx = layer.backward(g)
    batch_grads = {name: grad.copy() for name, grad in layer.grads.items()}
    summed = {name: np.zeros_like(grad) for name, grad in batch_grads.items()}
    for i in range(len(x)):
        yi = layer.forward(x[i : i + 1])
        np.testing.assert_allclose(yi, y[i : i + 1], rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(layer.backward(g[i : i + 1]), dx[i : i + 1], rtol=1e-12, atol=1e-12)
        for name in summed:
            summed[name] += layer.grads[name]
    for name in summed:
        np.testing.assert_allclose(batch_grads[name], summed[name], rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("kind", KINDS)
def test_float32_stays_float32(kind: str) -> None:
    layer, shape = make_layer(kind)
    layer.initialize("he", np.random.default_rng(0), np.float32)
    x = random_input(kind, shape, 3, np.random.default_rng(0)).astype(np.float32)
    y = layer.forward(x)
    assert y.dtype == np.float32
    assert layer.backward(np.ones_like(y)).dtype == np.float32
    assert all(g.dtype == np.float32 for g in layer.grads.values())
    assert all(p.dtype == np.float32 for p in layer.params.values())


@pytest.mark.parametrize("kind", ["dense", "conv_untied", "maxpool", "sigmoid", "flatten"])
def test_backward_skips_input_gradient_when_not_needed(kind: str) -> None:
    layer, shape = make_layer(kind)
    x = random_input(kind, shape, 2, np.random.default_rng(0))
    g = np.ones_like(layer.forward(x))
    layer.backward(g)
    full = {name: grad.copy() for name, grad in layer.grads.items()}
    layer.needs_input_gradient = False
    layer.forward(x)
    assert layer.backward(g) is None
    for name, grad in layer.grads.items():
        np.testing.assert_array_equal(grad, full[name])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sigmoid_is_stable_and_exact(dtype) -> None:
    x = np.array([[-1e4, -800.0, -100.0, -30.0, -1.0, 0.0, 1.0, 30.0, 100.0, 800.0, 1e4]], dtype=dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        y = cnn.Sigmoid().forward(x)
    assert y.dtype == dtype
    assert np.all((y >= 0) & (y <= 1)) and y[0, 5] == 0.5
    moderate = np.linspace(-20, 20, 101).reshape(1, -1)
    reference = 1 / (1 + np.exp(-moderate))
    np.testing.assert_allclose(cnn.Sigmoid().forward(moderate), reference, rtol=0, atol=1e-15)


def test_softmax_is_shift_invariant_and_does_not_overflow() -> None:
    x = np.array([[1000.0, 1001.0, 999.0], [-5.0, 0.0, 5.0]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        y = cnn.Softmax().forward(x)
    np.testing.assert_allclose(y.sum(axis=1), 1.0)
    np.testing.assert_allclose(y[0], cnn.Softmax().forward(x[:1] - 1000)[0])


def test_dense_weights_follow_the_notebook_layout() -> None:
    layer = cnn.Dense(3, 2)
    layer.initialize("normal", np.random.default_rng(5), np.float64)
    rng = np.random.default_rng(5)
    np.testing.assert_array_equal(layer.params["weights"], rng.standard_normal((2, 3)))
    np.testing.assert_array_equal(layer.params["biases"], rng.standard_normal((2, 1))[:, 0])
    x = np.arange(3.0).reshape(1, 3)
    np.testing.assert_allclose(layer.forward(x)[0], layer.params["weights"] @ x[0] + layer.params["biases"])


def test_unknown_init_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown init 'uniform'"):
        cnn.Dense(2, 2).initialize("uniform", np.random.default_rng(0), np.float64)


@pytest.mark.parametrize("kind", KINDS)
def test_config_round_trip(kind: str) -> None:
    layer, _ = make_layer(kind)
    rebuilt = cnn.layer_from_config(layer.config())
    assert type(rebuilt) is type(layer) and rebuilt.config() == layer.config()


def test_layer_from_config_rejects_unknown_type() -> None:
    with pytest.raises(ValueError, match="unknown layer type 'Attention'"):
        cnn.layer_from_config({"type": "Attention"})


def test_maxpool_sends_the_gradient_of_a_tie_to_the_first_maximum() -> None:
    pool = cnn.MaxPool((1, 2, 4), size=2)
    x = np.array([[[[3.0, 3.0, 1.0, 2.0], [3.0, 0.0, 2.0, 2.0]]]])  # window 1: three 3s; window 2: three 2s
    np.testing.assert_array_equal(pool.forward(x), [[[[3.0, 2.0]]]])
    dx = pool.backward(np.array([[[[5.0, 7.0]]]]))
    expected = np.array([[[[5.0, 0.0, 0.0, 7.0], [0.0, 0.0, 0.0, 0.0]]]])  # row-major first: (0,0) and (0,3)
    np.testing.assert_array_equal(dx, expected)


@pytest.mark.parametrize(
    "make", [cnn.ReLU, cnn.Softmax, lambda: cnn.Dropout(rate=0.5), lambda: cnn.Standardize(mean=0.1, std=0.3)]
)
def test_a_shape_keeping_layer_takes_its_first_shape_and_then_only_that(make) -> None:
    layer = make()
    assert layer.input_shape is None
    assert layer.connect((3, 4, 5)) == (3, 4, 5)
    assert layer.input_shape == layer.output_shape == (3, 4, 5)
    assert layer.connect([3, 4, 5]) == (3, 4, 5)
    with pytest.raises(cnn.ArchitectureError, match=r"expects input of shape \(3, 4, 5\), got \(60,\)"):
        layer.connect((60,))
