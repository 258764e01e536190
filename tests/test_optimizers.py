"""Optimizers against their formulas computed by hand, their semantics, and their exported state."""

import numpy as np
import pytest

import cnn

G1, G2, G3 = np.array([[1.0, -2.0]]), np.array([[0.5, 4.0]]), np.array([[-3.0, 0.25]])


def layer_with(start: np.ndarray) -> cnn.Dense:
    layer = cnn.Dense(2, 1)
    layer.params["weights"][...] = start
    return layer


def run(optimizer: cnn.Optimizer, grads, start: np.ndarray) -> np.ndarray:
    layer = layer_with(start)
    for g in grads:
        layer.grads["weights"][...] = g
        layer.grads["biases"][...] = 0
        optimizer.step([layer])
    return layer.params["weights"]


START = np.array([[0.3, -0.7]])


def test_adadelta_three_steps_by_hand() -> None:
    rho, eps, lr = 0.9, 1e-6, 1.0
    s = u = np.zeros_like(START)
    p = START.copy()
    for g in (G1, G2, G3):  # Zeiler 2012, Algorithm 1, as torch.optim.Adadelta
        s = rho * s + (1 - rho) * g**2
        d = np.sqrt(u + eps) / np.sqrt(s + eps) * g
        u = rho * u + (1 - rho) * d**2
        p = p - lr * d
    np.testing.assert_allclose(run(cnn.Adadelta(), (G1, G2, G3), START), p, rtol=1e-13)
    opt = cnn.Adadelta()
    assert (opt.learning_rate, opt.rho, opt.epsilon, opt.weight_decay) == (1.0, 0.9, 1e-6, 0.0)


def test_adadelta_first_step_is_sqrt_eps_over_rms_of_the_gradient() -> None:
    """A semantic check: the first step's size is sqrt(eps) / sqrt((1 - rho) g^2 + eps) * g, about
    sqrt(eps / (1 - rho)) = 3.16e-3 per unit gradient sign, whatever the gradient's scale."""
    for scale in (1.0, 1e2, 1e4):
        moved = START - run(cnn.Adadelta(), (scale * G1,), START)
        np.testing.assert_allclose(moved, np.sign(G1) * np.sqrt(1e-6 / 0.1), rtol=1e-4)


def test_adadelta_minimises_a_quadratic() -> None:
    opt, layer = cnn.Adadelta(), layer_with(np.array([[5.0, -3.0]]))
    for _ in range(3000):
        layer.grads["weights"][...] = 2 * layer.params["weights"]  # d/dp of p^2
        opt.step([layer])
    assert np.abs(layer.params["weights"]).max() < 0.5


def test_nesterov_three_steps_by_hand() -> None:
    m, lr = 0.9, 0.1
    b = np.zeros_like(START)
    p = START.copy()
    for g in (G1, G2, G3):  # torch.optim.SGD(nesterov=True): b = m b + g; p -= lr (g + m b)
        b = m * b + g
        p = p - lr * (g + m * b)
    np.testing.assert_allclose(run(cnn.SGD(lr, momentum=m, nesterov=True), (G1, G2, G3), START), p, rtol=1e-14)
    with pytest.raises(ValueError, match="nesterov needs momentum"):
        cnn.SGD(0.1, nesterov=True)


@pytest.mark.parametrize(
    "make",
    [
        lambda wd: cnn.SGD(0.1, weight_decay=wd),
        lambda wd: cnn.SGD(0.1, momentum=0.9, weight_decay=wd),
        lambda wd: cnn.SGD(0.1, momentum=0.9, nesterov=True, weight_decay=wd),
        lambda wd: cnn.Adam(0.01, weight_decay=wd),
        lambda wd: cnn.Adadelta(weight_decay=wd),
    ],
    ids=["sgd", "momentum", "nesterov", "adamw", "adadelta"],
)
def test_weight_decay_is_decoupled(make) -> None:
    """p *= 1 - lr wd before the optimizer's own step, with the gradient left alone: one step from p equals the
    undecayed step from (1 - lr wd) p, and with zero gradients the parameters shrink geometrically."""
    wd = 0.5
    lr = make(wd).learning_rate
    decayed = run(make(wd), (G1,), START)
    np.testing.assert_allclose(decayed, run(make(0.0), (G1,), (1 - lr * wd) * START), rtol=1e-14)
    zero = np.zeros_like(G1)
    np.testing.assert_allclose(run(make(wd), (zero,) * 3, START), (1 - lr * wd) ** 3 * START, rtol=1e-14)
    with pytest.raises(ValueError, match="weight_decay"):
        make(-1.0)


def test_adamw_two_steps_by_hand() -> None:
    lr, wd = 0.01, 0.1
    m = v = 0
    p = START.copy()
    for t, g in enumerate((G1, G2), start=1):  # torch.optim.AdamW
        p = p * (1 - lr * wd)
        m, v = 0.9 * m + 0.1 * g, 0.999 * v + 0.001 * g**2
        p = p - lr * (m / (1 - 0.9**t)) / (np.sqrt(v / (1 - 0.999**t)) + 1e-8)
    np.testing.assert_allclose(run(cnn.Adam(lr, weight_decay=wd), (G1, G2), START), p, rtol=1e-12)


def test_optimizers_are_registered_by_name() -> None:
    assert cnn.OPTIMIZERS == {"sgd": cnn.SGD, "adam": cnn.Adam, "adadelta": cnn.Adadelta}


STATEFUL = {
    "sgd": lambda: cnn.SGD(0.1),
    "momentum": lambda: cnn.SGD(0.1, momentum=0.9),
    "nesterov": lambda: cnn.SGD(0.1, momentum=0.9, nesterov=True, weight_decay=0.01),
    "adam": lambda: cnn.Adam(0.01, weight_decay=0.01),
    "adadelta": lambda: cnn.Adadelta(),
}


@pytest.mark.parametrize("name", STATEFUL)
def test_state_dict_round_trip_continues_bit_for_bit(name: str) -> None:
    net = cnn.Sequential([cnn.Dense(4, 3), cnn.Sigmoid(), cnn.Dense(3, 2)], init="xavier", seed=0)
    rng = np.random.default_rng(0)
    grads = [[rng.standard_normal(g.shape) for layer in net.param_layers for g in layer.grads.values()]]
    grads += [[rng.standard_normal(g.shape) for g in grads[0]] for _ in range(3)]

    def apply(opt, layers, gs) -> None:
        arrays = [g for layer in layers for g in layer.grads.values()]
        for array, g in zip(arrays, gs, strict=True):
            array[...] = g
        opt.step(layers)

    whole = STATEFUL[name]()
    for gs in grads:
        apply(whole, net.param_layers, gs)
    expected = [p.copy() for layer in net.param_layers for p in layer.params.values()]

    resumed_net = cnn.Sequential([cnn.Dense(4, 3), cnn.Sigmoid(), cnn.Dense(3, 2)], init="xavier", seed=0)
    first = STATEFUL[name]()
    for gs in grads[:2]:
        apply(first, resumed_net.param_layers, gs)
    state = first.state_dict()
    assert all(isinstance(v, np.ndarray | int | float) for v in state.values())
    assert all(not isinstance(v, np.ndarray) or not np.shares_memory(v, a) for v in state.values() for a in
               (a for arrays in first._state.values() for a in arrays))  # fmt: skip
    second = STATEFUL[name]()
    second.learning_rate = 123.0  # restored from the state
    second.load_state_dict(state)
    assert second.learning_rate == first.learning_rate and second.t == 2
    for gs in grads[2:]:
        apply(second, resumed_net.param_layers, gs)
    got = [p for layer in resumed_net.param_layers for p in layer.params.values()]
    for a, b in zip(got, expected, strict=True):
        np.testing.assert_array_equal(a, b)


def test_state_dict_names_its_arrays_and_refuses_another_optimizers() -> None:
    layer = layer_with(START)
    adam = cnn.Adam()
    adam.step([layer])
    state = adam.state_dict()
    assert set(state) == {
        "learning_rate",
        "t",
        "state/0/weights/exp_avg",
        "state/0/weights/exp_avg_sq",
        "state/0/biases/exp_avg",
        "state/0/biases/exp_avg_sq",
    }
    with pytest.raises(ValueError, match="Adadelta has no state 'exp_avg'"):
        cnn.Adadelta().load_state_dict(state)


def test_updates_run_in_place_without_new_arrays_after_the_first() -> None:
    for opt in (cnn.SGD(0.1, momentum=0.9, nesterov=True, weight_decay=0.1), cnn.Adadelta(weight_decay=0.1)):
        layer = layer_with(START)
        opt.step([layer])
        before = {k: [id(a) for a in v] for k, v in opt._state.items()}
        weights = layer.params["weights"]
        opt.step([layer])
        assert {k: [id(a) for a in v] for k, v in opt._state.items()} == before
        assert layer.params["weights"] is weights


@pytest.mark.parametrize("name", [*STATEFUL, "sgd-decay", "adadelta-decay"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_an_update_in_parts_gives_the_bits_of_a_whole_update(name: str, dtype: str) -> None:
    """Every rule is element-wise (Optimizer.ELEMENTWISE): cnn.parallel updates a large parameter in two parts on
    two threads, cut at a multiple of parallel.CUT_MULTIPLE, and must move it exactly as one update would. With
    BLAS on one thread, as in training (cnn.threads.blas_threads): OpenBLAS's own threads cut an axpy elsewhere."""
    from cnn.parallel import element_parts
    from cnn.threads import blas_threads

    decayed = {
        "sgd-decay": lambda: cnn.SGD(0.1, weight_decay=0.01),
        "adadelta-decay": lambda: cnn.Adadelta(weight_decay=0.1),
    }
    make = {**STATEFUL, **decayed}[name]
    rng = np.random.default_rng(5)
    shape = (300, 301)  # 90,300 elements: cut in two, with a tail that is no multiple of any SIMD width
    start = rng.standard_normal(shape).astype(dtype)
    grads = [rng.standard_normal(shape).astype(dtype) for _ in range(3)]
    parts = element_parts(start.size)
    assert parts[1] is not None
    whole_opt, parts_opt = make(), make()
    whole, in_parts = start.copy(), start.copy()
    with blas_threads():
        for g in grads:
            whole_opt.begin_step()
            whole_opt.update((0, "weights"), whole, g)
            parts_opt.begin_step()
            for part in reversed(parts):  # the second part first: the parts are independent
                parts_opt.update((0, "weights"), in_parts, g, part)
    np.testing.assert_array_equal(in_parts, whole)
    assert not np.array_equal(whole, start)
    for key, value in whole_opt.state_dict().items():
        np.testing.assert_array_equal(parts_opt.state_dict()[key], value)
