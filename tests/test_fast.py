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
    assert training.choose_step(net, cnn.Adam(), 1) is step.plain_step
    assert training.choose_step(net, cnn.SGD(0.1), 32) is step.plain_step
    assert isinstance(training.choose_step(net, cnn.SGD(0.1), 64), cnn.parallel.SplitStep)


def test_update_outer_refuses_momentum() -> None:
    with pytest.raises(ValueError, match="momentum"):
        cnn.SGD(0.1, momentum=0.5).update_outer(np.zeros((2, 3)), np.ones((1, 2)), np.ones((1, 3)))


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
