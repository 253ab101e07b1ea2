"""Learning-rate schedulers: PyTorch's protocol (lr set on construction and on each step) and the closed forms."""

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tinygrad_jp import Tensor, optim
from tinygrad_jp.optim import lr_scheduler as S

base_lrs = st.floats(1e-4, 1.0)


def _opt(lr):
    return optim.SGD([Tensor(np.zeros(2), requires_grad=True)], lr=lr)


def _schedule(sched, opt, epochs):
    """The lr of each epoch 0..epochs-1, as a training loop sees it (read before the epoch's step())."""
    lrs = []
    for _ in range(epochs):
        lrs.append(opt.lr)
        assert sched.get_last_lr() == [opt.lr]
        sched.step()
    return lrs


@given(base_lrs, st.integers(1, 5), st.floats(0.05, 1.0))
def test_step_lr_is_gamma_to_the_floor_of_epoch_over_step_size(lr, step_size, gamma):
    opt = _opt(lr)
    got = _schedule(S.StepLR(opt, step_size, gamma), opt, 15)
    for e, value in enumerate(got):
        assert value == pytest.approx(lr * gamma ** (e // step_size), rel=1e-12)


@given(base_lrs, st.floats(0.5, 1.0))
def test_exponential_lr_is_gamma_to_the_epoch(lr, gamma):
    opt = _opt(lr)
    got = _schedule(S.ExponentialLR(opt, gamma), opt, 12)
    np.testing.assert_allclose(got, lr * gamma ** np.arange(12), rtol=1e-12)


@given(base_lrs, st.integers(1, 20), st.floats(0, 1e-4))
def test_cosine_annealing_follows_the_half_cosine(lr, t_max, eta_min):
    opt = _opt(lr)
    got = _schedule(S.CosineAnnealingLR(opt, t_max, eta_min), opt, t_max + 1)
    for e, value in enumerate(got):
        expected = eta_min + (lr - eta_min) * (1 + math.cos(math.pi * e / t_max)) / 2
        assert value == pytest.approx(expected, rel=1e-12, abs=1e-15)
    assert got[0] == pytest.approx(lr) and got[t_max] == pytest.approx(eta_min, abs=1e-15)


@given(base_lrs)
def test_lambda_lr_multiplies_the_base_lr(lr):
    opt = _opt(lr)
    got = _schedule(S.LambdaLR(opt, lambda e: 1 / (1 + e)), opt, 6)
    np.testing.assert_allclose(got, [lr / (1 + e) for e in range(6)], rtol=1e-12)


@given(base_lrs, st.integers(1, 8), st.floats(0, 1))
def test_linear_warmup_rises_linearly_from_start_factor_to_one(lr, warmup, start):
    opt = _opt(lr)
    got = _schedule(S.LinearWarmup(opt, warmup, start), opt, warmup + 4)
    for e, value in enumerate(got):
        assert value == pytest.approx(lr * (start + (1 - start) * min(e, warmup) / warmup), rel=1e-12, abs=1e-15)
    assert got[warmup:] == pytest.approx([lr] * 4)
    assert np.all(np.diff(got) >= -1e-15)


@given(base_lrs, st.integers(1, 5), st.integers(2, 10))
def test_warmup_then_cosine(lr, warmup, decay):
    opt = _opt(lr)
    got = _schedule(S.WarmupCosine(opt, warmup, warmup + decay, start_factor=0.1), opt, warmup + decay + 1)
    for e, value in enumerate(got):
        if e < warmup:
            expected = lr * (0.1 + 0.9 * e / warmup)
        else:
            expected = lr * (1 + math.cos(math.pi * (e - warmup) / decay)) / 2
        assert value == pytest.approx(expected, rel=1e-12, abs=1e-15)
    assert max(got) == pytest.approx(lr)


def test_sequential_lr_with_three_stages():
    opt = _opt(1.0)
    a = S.ExponentialLR(opt, 0.5)
    b = S.StepLR(opt, step_size=2, gamma=0.1)
    c = S.LambdaLR(opt, lambda e: 0.01)
    got = _schedule(S.SequentialLR(opt, [a, b, c], milestones=[3, 6]), opt, 8)
    assert got == pytest.approx([1.0, 0.5, 0.25, 1.0, 1.0, 0.1, 0.01, 0.01])


def test_schedulers_share_the_first_base_lr():
    opt = _opt(0.8)
    S.ExponentialLR(opt, 0.5).step()
    assert opt.lr == pytest.approx(0.4)
    later = S.StepLR(opt, step_size=1, gamma=0.5)
    # Like PyTorch's initial_lr: the base is the lr before any scheduler touched it.
    assert later.base_lr == 0.8 and opt.lr == 0.8


def test_the_scheduler_drives_the_optimizers_updates():
    p = Tensor(np.zeros(1), requires_grad=True)
    opt = optim.SGD([p], lr=1.0)
    sched = S.StepLR(opt, step_size=1, gamma=0.5)
    for _ in range(3):
        p.grad = np.ones(1)
        opt.step()
        sched.step()
    np.testing.assert_allclose(p.data, [-(1 + 0.5 + 0.25)])


def test_a_scheduler_resumes_from_its_state_dict():
    opt = _opt(1.0)
    sched = S.CosineAnnealingLR(opt, T_max=10)
    for _ in range(4):
        sched.step()
    saved_opt, saved = opt.state_dict(), sched.state_dict()
    expected = _schedule(sched, opt, 5)

    opt2 = _opt(1.0)
    sched2 = S.CosineAnnealingLR(opt2, T_max=10)
    opt2.load_state_dict(saved_opt)
    sched2.load_state_dict(saved)
    assert _schedule(sched2, opt2, 5) == expected


def test_reduce_on_plateau_waits_patience_epochs_then_reduces():
    opt = _opt(1.0)
    sched = S.ReduceLROnPlateau(opt, factor=0.5, patience=2)
    lrs = []
    for loss in [1.0, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9, 0.5, 0.5]:
        sched.step(loss)
        lrs.append(opt.lr)
    # Bad epochs after 0.9: 1, 2, 3 (> patience: halve, reset), 1, 2, 3 (halve again); 0.5 improves.
    assert lrs == [1.0, 1.0, 1.0, 1.0, 0.5, 0.5, 0.5, 0.25, 0.25, 0.25]
    assert sched.get_last_lr() == [0.25]


@given(st.lists(st.floats(0, 10), min_size=1, max_size=30), st.integers(0, 3), st.integers(0, 2))
def test_reduce_on_plateau_matches_its_rule(losses, patience, cooldown):
    opt = _opt(1.0)
    sched = S.ReduceLROnPlateau(opt, factor=0.1, patience=patience, cooldown=cooldown, threshold=0.0, min_lr=1e-3)
    best, bad, cool, lr = math.inf, 0, 0, 1.0
    for loss in losses:
        sched.step(loss)
        if loss < best:
            best, bad = loss, 0
        else:
            bad += 1
        if cool > 0:
            cool, bad = cool - 1, 0
        if bad > patience:
            lr = max(lr * 0.1, 1e-3) if lr * (1 - 0.1) > 1e-8 else lr
            cool, bad = cooldown, 0
        assert opt.lr == pytest.approx(lr)


def test_reduce_on_plateau_max_mode_and_state():
    opt = _opt(1.0)
    sched = S.ReduceLROnPlateau(opt, mode="max", factor=0.1, patience=0)
    sched.step(0.5)
    sched.step(0.6)
    assert opt.lr == 1.0
    sched.step(0.6)
    assert opt.lr == pytest.approx(0.1)
    state = sched.state_dict()
    other = S.ReduceLROnPlateau(_opt(1.0), mode="max", factor=0.1, patience=0)
    other.load_state_dict(state)
    assert other.best == 0.6 and other.last_epoch == 3


@pytest.mark.parametrize("make, match", [
    (lambda o: S.StepLR(o, 0), "step_size"),
    (lambda o: S.ExponentialLR(o, -0.5), "gamma"),
    (lambda o: S.CosineAnnealingLR(o, 0), "T_max"),
    (lambda o: S.LinearWarmup(o, 3, start_factor=1.5), "start_factor"),
    (lambda o: S.WarmupCosine(o, 5, 5), "total_steps"),
    (lambda o: S.ReduceLROnPlateau(o, factor=1.0), "factor"),
    (lambda o: S.ReduceLROnPlateau(o, mode="up"), "mode"),
    (lambda o: S.SequentialLR(o, [S.StepLR(o, 1)], milestones=[2]), "milestones"),
])
def test_bad_scheduler_arguments_are_named(make, match):
    with pytest.raises(ValueError, match=match):
        make(_opt(0.1))


def test_a_non_optimizer_is_refused():
    with pytest.raises(TypeError, match="lr"):
        S.StepLR(object(), 1)
