"""Learning-rate schedules: hand-computed rates at the edges (first step, epoch boundaries, peak, last step), the
params-style factory and its one-line errors, and (where torch is installed) torch's schedulers over whole runs."""

import itertools
import math

import pytest

from cnn.schedules import ConstantLR, CosineLR, OneCycleLR, StepDecayLR, make_schedule


def test_constant_is_the_rate_at_every_step():
    schedule = ConstantLR(0.05)
    assert [schedule(s) for s in (0, 1, 999, 10**6)] == [0.05] * 4


def test_step_decay_changes_at_epoch_boundaries_only():
    schedule = StepDecayLR(1.0, steps_per_epoch=10, gamma=0.7, step_size=1)  # PyTorch's MNIST example
    assert schedule(0) == schedule(9) == 1.0
    assert schedule(10) == schedule(19) == pytest.approx(0.7, rel=1e-15)
    assert schedule(20) == pytest.approx(0.49, rel=1e-15)
    assert schedule(139) == pytest.approx(0.7**13, rel=1e-15)  # last step of 14 epochs


def test_step_decay_with_a_step_size_of_two_epochs():
    schedule = StepDecayLR(0.1, steps_per_epoch=5, gamma=0.5, step_size=2)
    assert [schedule(s) for s in (0, 9, 10, 19, 20)] == pytest.approx([0.1, 0.1, 0.05, 0.05, 0.025], rel=1e-15)


def test_cosine_starts_at_lr_halves_in_the_middle_and_ends_at_the_floor():
    schedule = CosineLR(0.1, total_steps=100, min_lr=0.001)
    assert schedule(0) == 0.1
    assert schedule(50) == pytest.approx(0.0505, rel=1e-15)
    assert schedule(99) == pytest.approx(0.001 + 0.099 * (1 + math.cos(math.pi * 0.99)) / 2, rel=1e-15)
    assert schedule(100) == pytest.approx(0.001, rel=1e-12)
    assert schedule(150) == schedule(100)  # past the run it stays at the floor
    rates = [schedule(s) for s in range(101)]
    assert all(a > b for a, b in itertools.pairwise(rates))


def test_onecycle_linear_warmup_peak_and_end():
    schedule = OneCycleLR(0.01, total_steps=100)  # pct_start 0.3: peak at step 29, as torch
    initial, final = 0.01 / 25, 0.01 / 25 / 1e4
    assert schedule(0) == pytest.approx(initial, rel=1e-15)
    assert schedule(10) == pytest.approx(initial + (0.01 - initial) * 10 / 29, rel=1e-15)
    assert schedule(29) == pytest.approx(0.01, rel=1e-15)
    assert schedule(64) == pytest.approx((0.01 + final) / 2, rel=1e-12)  # halfway from step 29 to step 99
    assert schedule(99) == pytest.approx(final, rel=1e-12)
    assert schedule(200) == schedule(99)


def test_onecycle_cosine_warmup_is_halfway_at_half_the_warmup():
    schedule = OneCycleLR(1.0, total_steps=100, pct_start=0.25, div_factor=10, final_div_factor=100, warmup="cos")
    assert schedule(0) == pytest.approx(0.1, rel=1e-15)
    assert schedule(12) == pytest.approx(0.55, rel=1e-12)  # peak at step 24
    assert schedule(24) == pytest.approx(1.0, rel=1e-15)
    assert schedule(99) == pytest.approx(0.001, rel=1e-12)


def test_onecycle_of_one_step_is_the_final_rate():
    assert OneCycleLR(0.01, total_steps=1)(0) == pytest.approx(0.01 / 25 / 1e4, rel=1e-12)


@pytest.mark.parametrize(
    "schedule",
    [StepDecayLR(0.3, 7, 0.7), CosineLR(0.3, 50, 0.01), OneCycleLR(0.3, 50)],
    ids=["step", "cosine", "onecycle"],
)
def test_a_rate_depends_only_on_the_step(schedule):
    forward = [schedule(s) for s in range(50)]
    backward = [schedule(s) for s in reversed(range(50))][::-1]
    assert forward == backward
    assert [schedule(s) for s in range(20, 50)] == forward[20:]  # a run resumed at step 20


def test_make_schedule_from_params_style_specs():
    assert make_schedule(None, 0.1, 3, 10) is None
    assert make_schedule({"type": "constant"}, 0.1, 3, 10) == ConstantLR(0.1)
    assert make_schedule({"type": "step", "gamma": 0.7, "step_size": 1}, 1.0, 14, 938) == StepDecayLR(1.0, 938, 0.7, 1)
    assert make_schedule({"type": "cosine", "min_lr": 0}, 0.1, 3, 10) == CosineLR(0.1, 30, 0.0)
    assert make_schedule({"type": "onecycle", "max_lr": 0.01, "pct_start": 0.3}, 0.001, 3, 10) == OneCycleLR(0.01, 30)
    assert make_schedule({"type": "onecycle"}, 0.002, 2, 5) == OneCycleLR(0.002, 10)  # max_lr defaults to the rate
    assert make_schedule({"type": "cosine"}, 0.1, 0, 10) == CosineLR(0.1, 1)  # no epochs: never called, still valid


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"type": "linear"}, "schedule.type must be one of constant, step, cosine, onecycle, got 'linear'"),
        ({"gamma": 0.7}, "schedule.type must be one of"),
        ({"type": ["step"]}, "schedule.type must be one of constant, step, cosine, onecycle, got ['step']"),
        ("cosine", "schedule must be a mapping with a type"),
        ({"type": "step", "gama": 0.7}, "schedule (step): unknown key 'gama'; allowed: gamma, step_size"),
        ({"type": "constant", "min_lr": 0}, "schedule (constant): unknown key 'min_lr'; allowed: none"),
        ({"type": "step", "gamma": "0.7"}, "schedule.gamma must be a number, got '0.7'"),
        ({"type": "step", "gamma": True}, "schedule.gamma must be a number, got True"),
        ({"type": "step", "gamma": 1.5}, "schedule (step): gamma must be in (0, 1], got 1.5"),
        ({"type": "step", "step_size": 1.5}, "schedule.step_size must be a whole number of epochs, got 1.5"),
        ({"type": "step", "step_size": 0}, "step_size must be a whole number of epochs >= 1, got 0"),
        ({"type": "cosine", "min_lr": 0.5}, "schedule (cosine): min_lr must be in [0, lr=0.1], got 0.5"),
        ({"type": "cosine", "min_lr": float("nan")}, "schedule.min_lr must be a number, got nan"),
        (
            {"type": "cosine", "min_lr": "1e-5"},
            "(YAML reads 1e-5 as text; write it with a dot, e.g. 1.0e-5)",
        ),
        ({"type": "onecycle", "pct_start": 1}, "schedule (onecycle): pct_start must be in (0, 1), got 1"),
        ({"type": "onecycle", "warmup": "cosine"}, "warmup must be linear or cos, got 'cosine'"),
    ],
)
def test_make_schedule_rejects_a_bad_spec_in_one_line(spec, message):
    with pytest.raises(ValueError) as raised:
        make_schedule(spec, 0.1, 3, 10)
    text = str(raised.value)
    assert message in text
    assert "\n" not in text


# --- torch's schedulers over whole runs (skipped without torch) ---


def torch_rates(torch, make_scheduler, steps: int, per_epoch: int | None = None) -> list[float]:
    """The rate torch's optimizer holds before each of `steps` steps; the scheduler steps after each batch, or
    after each epoch of per_epoch batches."""
    optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)
    scheduler = make_scheduler(torch.optim.lr_scheduler, optimizer)
    rates = []
    for step in range(steps):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        if per_epoch is None or (step + 1) % per_epoch == 0:
            scheduler.step()
    return rates


def test_step_decay_matches_torch_steplr(torch):
    expected = torch_rates(torch, lambda s, o: s.StepLR(o, step_size=2, gamma=0.7), 14 * 9, per_epoch=9)
    schedule = StepDecayLR(0.1, steps_per_epoch=9, gamma=0.7, step_size=2)
    assert [schedule(s) for s in range(14 * 9)] == pytest.approx(expected, rel=1e-13)


def test_cosine_matches_torch_cosine_annealing_per_batch(torch):
    expected = torch_rates(torch, lambda s, o: s.CosineAnnealingLR(o, T_max=300, eta_min=0.002), 300)
    schedule = CosineLR(0.1, total_steps=300, min_lr=0.002)
    assert [schedule(s) for s in range(300)] == pytest.approx(expected, rel=1e-9, abs=1e-15)


def test_onecycle_with_cosine_warmup_matches_torch_onecycle_defaults(torch):
    expected = torch_rates(torch, lambda s, o: s.OneCycleLR(o, max_lr=0.01, total_steps=470), 470)
    schedule = OneCycleLR(0.01, total_steps=470, warmup="cos")
    assert [schedule(s) for s in range(470)] == pytest.approx(expected, rel=1e-12)


def test_onecycle_linear_warmup_matches_torch_linear_warmup_then_its_cosine_annealing(torch):
    linear = torch_rates(
        torch, lambda s, o: s.OneCycleLR(o, max_lr=0.01, total_steps=470, anneal_strategy="linear"), 470
    )
    cosine = torch_rates(torch, lambda s, o: s.OneCycleLR(o, max_lr=0.01, total_steps=470), 470)
    schedule = OneCycleLR(0.01, total_steps=470)
    peak = int(0.3 * 470 - 1)
    assert [schedule(s) for s in range(peak + 1)] == pytest.approx(linear[: peak + 1], rel=1e-12)
    assert [schedule(s) for s in range(peak + 1, 470)] == pytest.approx(cosine[peak + 1 :], rel=1e-12)
