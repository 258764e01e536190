"""The fast paths (cnn.fast, cnn.parallel) against the plain math they replace (cnn.step.plain_step)."""

import numpy as np
import pytest

import cnn
from cnn import blas, fast, step, training


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_axpy_and_ger_equal_their_numpy_formulas(dtype) -> None:
    rng = np.random.default_rng(0)
    param = rng.standard_normal((4, 7)).astype(dtype)
    grad = rng.standard_normal((4, 7)).astype(dtype)
    g, x = rng.standard_normal((1, 4)).astype(dtype), rng.standard_normal((1, 7)).astype(dtype)
    tol = {"rtol": 1e-5} if dtype == np.float32 else {"rtol": 1e-14}
    for sliced in (False, True):  # a non-contiguous parameter takes numpy's path
        p = param.copy()[:, ::2] if sliced else param.copy()
        expected = p + (-0.3) * (grad[:, ::2] if sliced else grad)
        blas.axpy(p, grad[:, ::2] if sliced else grad, -0.3)
        np.testing.assert_allclose(p, expected, **tol)
    p = param.copy()
    blas.ger(p, g, x, -0.3)
    np.testing.assert_allclose(p, param - 0.3 * np.outer(g[0], x[0]), **tol)


def notebook_net(dtype: str = "float64") -> cnn.Sequential:
    return cnn.Sequential(cnn.build(cnn.NOTEBOOK_LAYERS, n_classes=2), init="normal", seed=0, dtype=dtype)


def all_params(net: cnn.Sequential) -> list[np.ndarray]:
    return [p.copy() for layer in net.param_layers for p in layer.params.values()]


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_rank1_sgd_step_equals_the_plain_step(notebook_data, dtype: str) -> None:
    x_train, y_train, _, _ = notebook_data
    x = x_train[:20].astype(dtype)
    y = cnn.one_hot(y_train[:20], 2, dtype)
    nets = {"plain": notebook_net(dtype), "rank1": notebook_net(dtype)}
    steps = {"plain": step.plain_step, "rank1": fast.rank1_sgd_step}
    loss = step.LossGradient.for_network(nets["plain"], cnn.BinaryCrossEntropy())
    for i in range(len(x)):
        for name, net in nets.items():
            out = np.empty((1, 2), dtype=dtype)
            steps[name](net, x[i : i + 1], y[i : i + 1], out, loss, cnn.SGD(0.1))
    before = all_params(notebook_net(dtype))
    tol = {"rtol": 1e-4, "atol": 1e-5} if dtype == "float32" else {"rtol": 1e-10, "atol": 1e-12}
    for plain, rank1, start in zip(all_params(nets["plain"]), all_params(nets["rank1"]), before, strict=True):
        np.testing.assert_allclose(rank1, plain, **tol)
        assert not np.array_equal(rank1, start)


def test_fit_chooses_the_step_by_configuration_alone() -> None:
    net = notebook_net()
    assert training.choose_step(net, cnn.SGD(0.1), 1) is fast.rank1_sgd_step
    assert training.choose_step(net, cnn.SGD(0.1, momentum=0.9), 1) is step.plain_step
    assert training.choose_step(net, cnn.SGD(0.1, weight_decay=0.1), 1) is step.plain_step
    assert training.choose_step(net, cnn.Adam(), 1) is step.plain_step
    assert training.choose_step(net, cnn.SGD(0.1), 32) is step.plain_step
    assert isinstance(training.choose_step(net, cnn.SGD(0.1), 64), cnn.parallel.SplitStep)


@pytest.mark.parametrize(
    "make",
    [
        lambda: cnn.SGD(0.1),
        lambda: cnn.SGD(0.1, momentum=0.5),
        lambda: cnn.Adam(0.01),
        lambda: cnn.SGD(0.1, weight_decay=0.1),
    ],
    ids=["sgd", "momentum", "adam", "decay"],
)
def test_update_outer_equals_update_with_the_formed_gradient(make) -> None:
    rng = np.random.default_rng(0)
    start = rng.standard_normal((3, 4))
    factors = [(rng.standard_normal((1, 3)), rng.standard_normal((1, 4))) for _ in range(3)]
    params = {"outer": start.copy(), "formed": start.copy()}
    optimizers = {name: make() for name in params}
    for g, x in factors:
        for opt in optimizers.values():
            opt.begin_step()
        optimizers["outer"].update_outer((0, "w"), params["outer"], g, x)
        optimizers["formed"].update((0, "w"), params["formed"], g.T @ x)
    np.testing.assert_allclose(params["outer"], params["formed"], rtol=1e-13, atol=1e-15)
    assert not np.array_equal(params["outer"], start)


@pytest.mark.parametrize(
    ("make", "factored"),
    [
        (lambda: cnn.SGD(0.1), True),
        (lambda: cnn.SGD(0.1, momentum=0.5), False),
        (lambda: cnn.SGD(0.1, weight_decay=0.1), False),
        (lambda: cnn.Adam(0.01), False),
        (lambda: cnn.Adadelta(), False),
    ],
    ids=["sgd", "momentum", "decay", "adam", "adadelta"],
)
def test_factored_update_says_whether_update_outer_forms_the_gradient_and_picks_the_rank1_step(
    monkeypatch, make, factored: bool
) -> None:
    optimizer = make()
    assert optimizer.factored_update is factored
    formed = []
    monkeypatch.setattr(optimizer, "update", lambda key, param, grad: formed.append(grad.shape))
    monkeypatch.setattr(blas, "ger", lambda *args: None)
    optimizer.update_outer((0, "w"), np.zeros((3, 4)), np.ones((1, 3)), np.ones((1, 4)))
    assert formed == ([] if factored else [(3, 4)])
    chosen = training.choose_step(notebook_net(), optimizer, 1)
    assert (chosen is fast.rank1_sgd_step) is factored


def test_rank1_step_keeps_to_optimizer_step_keys_and_fills_every_grad_but_factored_ones(notebook_data) -> None:
    """The rank-1 step's optimizer state keys are Optimizer.step's (position among layers with parameters), and
    after it every grads array except the factored Dense weights holds the last gradient, as after plain_step."""
    x_train, y_train, _, _ = notebook_data
    x, y = x_train[:3].astype("float64"), cnn.one_hot(y_train[:3], 2)
    nets = {"plain": notebook_net(), "rank1": notebook_net()}
    optimizers = {"plain": cnn.Adam(0.01), "rank1": cnn.Adam(0.01)}
    steps = {"plain": step.plain_step, "rank1": fast.rank1_sgd_step}
    loss = step.LossGradient.for_network(nets["plain"], cnn.BinaryCrossEntropy())
    for i in range(len(x)):
        for name, net in nets.items():
            steps[name](net, x[i : i + 1], y[i : i + 1], np.empty((1, 2)), loss, optimizers[name])
    assert optimizers["rank1"].state_dict().keys() == optimizers["plain"].state_dict().keys()
    for plain, rank1 in zip(nets["plain"].param_layers, nets["rank1"].param_layers, strict=True):
        for name in plain.params:
            np.testing.assert_allclose(rank1.params[name], plain.params[name], rtol=1e-12, atol=1e-14)
            if not (isinstance(plain, cnn.Dense) and name == "weights"):
                np.testing.assert_allclose(rank1.grads[name], plain.grads[name], rtol=1e-12, atol=1e-14)


def test_layers_work_on_their_own() -> None:
    rng = np.random.default_rng(0)
    dense = cnn.Dense(5, 4)
    y = dense.forward(np.ones((3, 5)))
    np.testing.assert_allclose(y, np.ones((3, 5)) @ dense.params["weights"].T + dense.params["biases"])
    dx = dense.backward(np.ones((3, 4)))
    np.testing.assert_allclose(dense.grads["weights"], np.full((4, 5), 3.0))
    assert dx.shape == (3, 5)
    conv = cnn.Convolutional((1, 6, 6), 3, 2, rng=rng)
    assert conv.forward(np.ones((2, 1, 6, 6))).shape == (2, 2, 4, 4)
    assert conv.backward(np.ones((2, 2, 4, 4))).shape == (2, 1, 6, 6)
    same = cnn.Dense(5, 4, rng=0)
    np.testing.assert_array_equal(same.params["weights"], dense.params["weights"])  # documented default: seed 0
    assert not np.array_equal(cnn.Dense(5, 4, rng=1).params["weights"], dense.params["weights"])


def test_abstract_base_classes_cannot_be_built_from_a_config() -> None:
    for name in ("Layer", "Activation"):
        with pytest.raises(ValueError, match="unknown layer type"):
            cnn.layer_from_config({"type": name})


def maxpool_by_window_loops(x: np.ndarray, dy: np.ndarray, size: int, stride: int) -> tuple[np.ndarray, np.ndarray]:
    """The textbook max pooling, one window at a time: y = max of each window, and dy to its first maximum."""
    N, C, H, W = x.shape
    Ho, Wo = (H - size) // stride + 1, (W - size) // stride + 1
    y, dx = np.empty((N, C, Ho, Wo), dtype=x.dtype), np.zeros_like(x)
    for n, c, h, w in np.ndindex(N, C, Ho, Wo):
        window = x[n, c, h * stride : h * stride + size, w * stride : w * stride + size]
        i, j = divmod(int(np.argmax(window)), size)  # argmax: the first maximum in row-major order
        y[n, c, h, w] = window[i, j]
        dx[n, c, h * stride + i, w * stride + j] += dy[n, c, h, w]
    return y, dx


@pytest.mark.parametrize(("shape", "size", "stride"), [((2, 3, 8, 8), 2, 2), ((2, 2, 9, 7), 2, 2), ((1, 2, 9, 9), 3, 2),
                                                      ((2, 1, 7, 7), 2, 1), ((1, 2, 10, 10), 3, 3)])  # fmt: skip
def test_max_pooling_by_offset_views_equals_window_loops(shape, size: int, stride: int) -> None:
    rng = np.random.default_rng(0)
    x = rng.integers(-2, 3, shape).astype(np.float64)  # few values: many ties
    pool = cnn.MaxPool(shape[1:], size, stride)
    y = pool.forward(x)
    dy = rng.standard_normal(y.shape)
    want_y, want_dx = maxpool_by_window_loops(x, dy, size, stride)
    np.testing.assert_array_equal(y, want_y)
    np.testing.assert_allclose(pool.backward(dy), want_dx, rtol=1e-14, atol=1e-15)  # overlaps: another sum order


def test_convolution_input_gradient_is_the_adjoint_of_im2col() -> None:
    """<im2col(x), c> = <x, col2im(c)> for every x and c; and the layer's dx is col2im(K.T @ dy)."""
    from cnn.conv import col2im, im2col

    rng = np.random.default_rng(0)
    for shape, k in [((3, 2, 7, 9), 3), ((2, 3, 5, 5), 5), ((2, 2, 6, 4), 1)]:
        N, C, H, W = shape
        x, c = rng.standard_normal(shape), rng.standard_normal((N, C * k * k, (H - k + 1) * (W - k + 1)))
        np.testing.assert_allclose(np.vdot(im2col(x, k), c), np.vdot(x, col2im(c, shape, k)), rtol=1e-12)
        conv = cnn.Convolutional((C, H, W), k, 4, bias="tied", rng=1)
        dy = rng.standard_normal((N, *conv.output_shape))
        conv.forward(x)
        kernels = conv.params["kernels"].reshape(4, -1)
        want = col2im(kernels.T @ dy.reshape(N, 4, -1), shape, k)
        np.testing.assert_allclose(conv.backward(dy), want, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_adam_in_place_equals_the_textbook_update(dtype) -> None:
    """Adam's in-place passes with reused scratch against m_hat / (sqrt(v_hat) + eps) written out in float64."""
    rng = np.random.default_rng(0)
    param = rng.standard_normal((6, 5)).astype(dtype)
    adam, p = cnn.Adam(0.01, 0.9, 0.999, 1e-8), param.astype(np.float64)
    m = v = np.zeros_like(p)
    for t in range(1, 30):
        g = rng.standard_normal(param.shape).astype(dtype)
        adam.begin_step()
        adam.update((0, "w"), param, g)
        m = 0.9 * m + 0.1 * g
        v = 0.999 * v + 0.001 * g.astype(np.float64) ** 2
        p = p - 0.01 * (m / (1 - 0.9**t)) / (np.sqrt(v / (1 - 0.999**t)) + 1e-8)
    assert param.dtype == dtype
    np.testing.assert_allclose(param, p, rtol=1e-4 if dtype == np.float32 else 1e-10)
