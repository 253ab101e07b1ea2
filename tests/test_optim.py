"""Optimizers: each update is the chapter's formula, the chapter's update(params, grads) API gives the
chapter's trajectories, state can be saved and resumed bit-identically, bad hyperparameters are refused."""

import tracemalloc

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import tinygrad_jp as tg
from tinygrad_jp import Tensor, optim
from tinygrad_jp.nn.utils import clip_grad_norm_

ALL = [optim.SGD, optim.Momentum, optim.Nesterov, optim.AdaGrad, optim.RMSprop, optim.Adam, optim.AdamW]


# ---------------------------------------------------------------------- the chapter's classes, as reference
class ChapterSGD:
    def __init__(self, learning_rate=0.01):
        self.learning_rate = learning_rate

    def update(self, params, grads):
        for key in params.keys():
            params[key] -= self.learning_rate * grads[key]


class ChapterMomentum:
    def __init__(self, learning_rate=0.01, momentum=0.9):
        self.learning_rate = learning_rate
        self.momentum = momentum
        self.velocity = None

    def update(self, params, grads):
        if self.velocity is None:
            self.velocity = {key: np.zeros_like(val) for key, val in params.items()}
        for key in params.keys():
            self.velocity[key] = self.momentum * self.velocity[key] - self.learning_rate * grads[key]
            params[key] += self.velocity[key]


class ChapterAdaGrad:
    def __init__(self, learning_rate=0.01):
        self.learning_rate = learning_rate
        self.h = None
        self.epsilon = 1e-8

    def update(self, params, grads):
        if self.h is None:
            self.h = {key: np.zeros_like(val) for key, val in params.items()}
        for key in params.keys():
            self.h[key] += grads[key] ** 2
            params[key] -= self.learning_rate * grads[key] / (np.sqrt(self.h[key]) + self.epsilon)


class ChapterRMSprop:
    def __init__(self, learning_rate=0.01, decay_rate=0.99):
        self.learning_rate = learning_rate
        self.decay_rate = decay_rate
        self.h = None
        self.epsilon = 1e-8

    def update(self, params, grads):
        if self.h is None:
            self.h = {key: np.zeros_like(val) for key, val in params.items()}
        for key in params.keys():
            self.h[key] = self.decay_rate * self.h[key] + (1 - self.decay_rate) * grads[key] ** 2
            params[key] -= self.learning_rate * grads[key] / (np.sqrt(self.h[key]) + self.epsilon)


class ChapterAdam:
    def __init__(self, learning_rate=0.001, beta1=0.9, beta2=0.999):
        self.learning_rate = learning_rate
        self.beta1 = beta1
        self.beta2 = beta2
        self.m = None
        self.v = None
        self.t = 0
        self.epsilon = 1e-8

    def update(self, params, grads):
        if self.m is None:
            self.m = {key: np.zeros_like(val) for key, val in params.items()}
            self.v = {key: np.zeros_like(val) for key, val in params.items()}
        self.t += 1
        for key in params.keys():
            self.m[key] = self.beta1 * self.m[key] + (1 - self.beta1) * grads[key]
            self.v[key] = self.beta2 * self.v[key] + (1 - self.beta2) * (grads[key] ** 2)
            m_hat = self.m[key] / (1 - self.beta1**self.t)
            v_hat = self.v[key] / (1 - self.beta2**self.t)
            params[key] -= self.learning_rate * m_hat / (np.sqrt(v_hat) + self.epsilon)


def compare_optimizers(SGD, Momentum, AdaGrad, RMSprop, Adam):
    """The chapter's compare_optimizers() without the plot: the trajectories on f(x, y) = x² + 10y²."""

    def grad_f(x, y):
        return np.array([2 * x, 20 * y])

    init_pos = (-7.0, 2.0)
    learning_rate = 0.1
    iterations = 30
    optimizers = {
        "SGD": SGD(learning_rate=learning_rate),
        "Momentum": Momentum(learning_rate=learning_rate),
        "AdaGrad": AdaGrad(learning_rate=learning_rate),
        "RMSprop": RMSprop(learning_rate=learning_rate),
        "Adam": Adam(learning_rate=learning_rate),
    }
    trajectories = {}
    for name, optimizer in optimizers.items():
        pos = np.array(init_pos)
        params = {"pos": pos}
        trajectory = [pos.copy()]
        for _ in range(iterations):
            grads = {"pos": grad_f(pos[0], pos[1])}
            optimizer.update(params, grads)
            pos = params["pos"]
            trajectory.append(pos.copy())
        trajectories[name] = np.array(trajectory)
    return trajectories


def test_chapter_compare_optimizers_gives_the_chapters_trajectories():
    ours = compare_optimizers(optim.SGD, optim.Momentum, optim.AdaGrad, optim.RMSprop, optim.Adam)
    ref = compare_optimizers(ChapterSGD, ChapterMomentum, ChapterAdaGrad, ChapterRMSprop, ChapterAdam)
    assert list(ours) == list(ref)
    for name in ref:
        assert ours[name].shape == (31, 2)
        np.testing.assert_allclose(ours[name], ref[name], rtol=1e-12, atol=0, err_msg=name)


@given(st.sampled_from(["SGD", "Momentum", "AdaGrad", "RMSprop", "Adam"]),
       st.floats(1e-4, 0.5),
       st.lists(hnp.arrays(np.float64, (2, 3), elements=st.floats(-10, 10)), min_size=1, max_size=5))
def test_update_mutates_the_dict_arrays_in_place_like_the_chapter(name, lr, grad_seq):
    ours = getattr(optim, name)(learning_rate=lr)
    ref = {"SGD": ChapterSGD, "Momentum": ChapterMomentum, "AdaGrad": ChapterAdaGrad, "RMSprop": ChapterRMSprop,
           "Adam": ChapterAdam}[name](learning_rate=lr)
    w_ours = {"W": np.linspace(-1, 1, 6).reshape(2, 3), "b": np.ones(3)}
    w_ref = {k: v.copy() for k, v in w_ours.items()}
    arrays = dict(w_ours)
    for g in grad_seq:
        ours.update(w_ours, {"W": g, "b": g[0]})
        ref.update(w_ref, {"W": g, "b": g[0]})
    for key in w_ref:
        assert w_ours[key] is arrays[key]
        np.testing.assert_allclose(w_ours[key], w_ref[key], rtol=1e-12, atol=1e-300)


# ---------------------------------------------------------------------- each update is its formula
def _run_steps(opt_cls, grads, w0, **hyper):
    p = Tensor(w0.copy(), requires_grad=True)
    opt = opt_cls([p], **hyper)
    data = p.data
    out = []
    for g in grads:
        p.grad = g.copy()
        opt.step()
        out.append(p.data.copy())
    assert p.data is data
    return out


grad_lists = st.lists(hnp.arrays(np.float64, 4, elements=st.floats(-5, 5)), min_size=1, max_size=6)
w_start = np.array([0.5, -1.5, 2.0, 0.0])


@given(grad_lists, st.floats(1e-3, 1.0), st.floats(0, 0.5))
def test_sgd_is_w_minus_lr_g(grads, lr, wd):
    got = _run_steps(optim.SGD, grads, w_start, lr=lr, weight_decay=wd)
    w = w_start.copy()
    for g, w_got in zip(grads, got):
        w = w - lr * (g + wd * w)
        np.testing.assert_allclose(w_got, w, rtol=1e-12, atol=1e-12)


@given(grad_lists, st.floats(1e-3, 1.0), st.floats(0, 0.99))
def test_momentum_is_its_velocity_form(grads, lr, beta):
    got = _run_steps(optim.Momentum, grads, w_start, lr=lr, momentum=beta)
    w, v = w_start.copy(), np.zeros(4)
    for g, w_got in zip(grads, got):
        v = beta * v - lr * g
        w = w + v
        np.testing.assert_allclose(w_got, w, rtol=1e-12, atol=1e-12)


@given(grad_lists, st.floats(1e-3, 1.0), st.floats(0, 0.99))
def test_momentum_equals_the_heavy_ball_sum_of_past_gradients(grads, lr, beta):
    # Unrolling v gives w_t = w_0 − η Σ_s (Σ_{k≤s} β^{s−k} g_k): the velocity form is the heavy-ball method.
    got = _run_steps(optim.Momentum, grads, w_start, lr=lr, momentum=beta)
    for t in range(len(grads)):
        total = sum(beta ** (s - k) * grads[k] for s in range(t + 1) for k in range(s + 1))
        np.testing.assert_allclose(got[t], w_start - lr * total, rtol=1e-9, atol=1e-9)


@given(grad_lists, st.floats(1e-3, 1.0), st.floats(0, 0.99))
def test_nesterov_looks_ahead_with_the_new_velocity(grads, lr, beta):
    got = _run_steps(optim.Nesterov, grads, w_start, lr=lr, momentum=beta)
    w, v = w_start.copy(), np.zeros(4)
    for g, w_got in zip(grads, got):
        v_prev = v
        v = beta * v - lr * g
        # The classic form: w += −β v_prev + (1 + β) v
        w = w - beta * v_prev + (1 + beta) * v
        np.testing.assert_allclose(w_got, w, rtol=1e-10, atol=1e-10)


@given(grad_lists, st.floats(1e-3, 1.0))
def test_adagrad_is_its_formula(grads, lr):
    got = _run_steps(optim.AdaGrad, grads, w_start, lr=lr)
    w, h = w_start.copy(), np.zeros(4)
    for g, w_got in zip(grads, got):
        h = h + g**2
        w = w - lr / (np.sqrt(h) + 1e-8) * g
        np.testing.assert_allclose(w_got, w, rtol=1e-12, atol=1e-12)


@given(grad_lists, st.floats(1e-3, 1.0), st.floats(0, 1))
def test_rmsprop_is_its_formula(grads, lr, beta):
    got = _run_steps(optim.RMSprop, grads, w_start, lr=lr, decay_rate=beta)
    w, h = w_start.copy(), np.zeros(4)
    for g, w_got in zip(grads, got):
        h = beta * h + (1 - beta) * g**2
        w = w - lr / (np.sqrt(h) + 1e-8) * g
        np.testing.assert_allclose(w_got, w, rtol=1e-12, atol=1e-12)


@given(grad_lists, st.floats(1e-4, 0.1), st.floats(0, 0.99), st.floats(0, 0.999), st.floats(0, 0.1))
def test_adam_is_its_formula_with_bias_correction(grads, lr, b1, b2, wd):
    got = _run_steps(optim.Adam, grads, w_start, lr=lr, beta1=b1, beta2=b2, weight_decay=wd)
    w, m, v = w_start.copy(), np.zeros(4), np.zeros(4)
    for t, (g, w_got) in enumerate(zip(grads, got), start=1):
        g = g + wd * w
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g**2
        m_hat, v_hat = m / (1 - b1**t), v / (1 - b2**t)
        w = w - lr / (np.sqrt(v_hat) + 1e-8) * m_hat
        np.testing.assert_allclose(w_got, w, rtol=1e-10, atol=1e-12)


@given(grad_lists, st.floats(1e-4, 0.1), st.floats(0, 0.5))
def test_adamw_shrinks_the_weights_apart_from_the_gradient(grads, lr, wd):
    got = _run_steps(optim.AdamW, grads, w_start, lr=lr, weight_decay=wd)
    w, m, v = w_start.copy(), np.zeros(4), np.zeros(4)
    for t, (g, w_got) in enumerate(zip(grads, got), start=1):
        w = w * (1 - lr * wd)
        m = 0.9 * m + 0.1 * g
        v = 0.999 * v + 0.001 * g**2
        w = w - lr * (m / (1 - 0.9**t)) / (np.sqrt(v / (1 - 0.999**t)) + 1e-8)
        np.testing.assert_allclose(w_got, w, rtol=1e-10, atol=1e-12)


@given(hnp.arrays(np.float64, 5, elements=st.floats(-100, 100).filter(lambda x: abs(x) > 1e-3)),
       st.floats(1e-4, 0.1))
def test_adams_first_step_has_size_lr_per_coordinate(g, lr):
    (w1,) = _run_steps(optim.Adam, [g], np.zeros(5), lr=lr)
    # m̂ = g and v̂ = g², so the step is lr · g / (|g| + ε): lr in size, against the gradient's sign.
    np.testing.assert_allclose(np.abs(w1), lr, rtol=1e-4)
    assert np.all(np.sign(w1) == -np.sign(g))


# ---------------------------------------------------------------------- behaviour on the chapter's function
# The chapter's lr 0.1, except Nesterov: on curvature L = 20 it is stable only for ηL < 2(1+β)/(1+2β) ≈ 1.36.
@pytest.mark.parametrize("opt_cls, lr", [(cls, 0.05 if cls is optim.Nesterov else 0.1) for cls in ALL])
def test_every_optimizer_decreases_the_chapters_ellipse(opt_cls, lr):
    p = Tensor(np.array([-7.0, 2.0]), requires_grad=True)
    opt = opt_cls([p], lr=lr)

    def f():
        return float(p.data[0] ** 2 + 10 * p.data[1] ** 2)

    start = f()
    for _ in range(30):
        opt.zero_grad()
        loss = (p[0] ** 2) + (p[1] ** 2) * 10.0
        loss.backward()
        opt.step()
    assert f() < 0.6 * start


def test_step_skips_parameters_without_grad_and_keeps_the_arrays():
    a = Tensor(np.ones(3, dtype=np.float32), requires_grad=True)
    b = Tensor(np.ones(2, dtype=np.float32), requires_grad=True)
    opt = optim.Adam([a, b], lr=0.1)
    a_data, b_data = a.data, b.data
    a.grad = np.full(3, 2.0, dtype=np.float32)
    opt.step()
    assert a.data is a_data and b.data is b_data
    np.testing.assert_array_equal(b.data, np.ones(2))
    assert not np.any(a.data == 1)
    assert 1 not in opt.state
    assert a.data.dtype == np.float32 and opt.state[0]["m"].dtype == np.float32


def test_zero_grad_sets_grads_to_none():
    a = Tensor(np.ones(3), requires_grad=True)
    opt = optim.SGD([a])
    (a * 2.0).sum().backward()
    assert a.grad is not None
    opt.zero_grad()
    assert a.grad is None


@pytest.mark.parametrize("opt_cls", ALL)
def test_steps_allocate_no_new_arrays_after_the_first(opt_cls):
    shape = (500, 200)  # 400 kB in float32: any temporary array of this size would show in the peak
    p = Tensor(np.ones(shape, dtype=np.float32), requires_grad=True)
    opt = opt_cls([p], weight_decay=0.1)
    p.grad = np.full(shape, 0.5, dtype=np.float32)
    opt.step()
    tracemalloc.start()
    try:
        start, _ = tracemalloc.get_traced_memory()
        for _ in range(3):
            opt.step()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak - start < 50_000
    assert p.data.dtype == np.float32 and all(v.dtype == np.float32 for v in opt.state[0].values()
                                              if isinstance(v, np.ndarray))


@pytest.mark.parametrize("opt_cls", ALL)
def test_params_may_be_a_generator_of_a_models_parameters(opt_cls):
    model = tg.nn.Linear(3, 2, rng=0)
    opt = opt_cls(model.parameters())
    assert len(opt.params) == 2
    opt2 = opt_cls(p for p in model.parameters())
    assert opt2.params == opt.params


@pytest.mark.parametrize("bad, error, match", [
    ([], ValueError, "empty"),
    ([np.ones(3)], TypeError, r"params\[0\].*ndarray"),
    (3.0, TypeError, "float"),
])
def test_bad_params_are_refused(bad, error, match):
    with pytest.raises(error, match=match):
        optim.SGD(bad)


def test_the_same_tensor_twice_is_refused():
    a = Tensor(np.ones(3), requires_grad=True)
    with pytest.raises(ValueError, match="more than once"):
        optim.SGD([a, a])


@pytest.mark.parametrize("opt_cls, kwargs, name", [
    (optim.SGD, {"lr": -0.1}, "lr"),
    (optim.SGD, {"learning_rate": -1.0}, "lr"),
    (optim.Momentum, {"momentum": 1.0}, "momentum"),
    (optim.Nesterov, {"momentum": -0.1}, "momentum"),
    (optim.AdaGrad, {"eps": 0.0}, "eps"),
    (optim.RMSprop, {"decay_rate": 1.5}, "decay_rate"),
    (optim.RMSprop, {"eps": -1e-8}, "eps"),
    (optim.Adam, {"beta1": 1.0}, "beta1"),
    (optim.Adam, {"beta2": -0.5}, "beta2"),
    (optim.Adam, {"lr": float("nan")}, "lr"),
    (optim.AdamW, {"weight_decay": -0.01}, "weight_decay"),
    (optim.SGD, {"weight_decay": -1.0}, "weight_decay"),
])
def test_bad_hyperparameters_raise_naming_the_value(opt_cls, kwargs, name):
    value = next(iter(kwargs.values()))
    with pytest.raises(ValueError, match=rf"{name}={value!r}".replace("(", r"\(").replace(".", r"\.")):
        opt_cls(**kwargs)


def test_defaults_are_the_chapters():
    assert optim.SGD().lr == 0.01
    m = optim.Momentum()
    assert (m.lr, m.momentum) == (0.01, 0.9)
    a = optim.AdaGrad()
    assert (a.lr, a.eps) == (0.01, 1e-8)
    r = optim.RMSprop()
    assert (r.lr, r.decay_rate, r.eps) == (0.01, 0.99, 1e-8)
    adam = optim.Adam()
    assert (adam.lr, adam.beta1, adam.beta2, adam.eps, adam.weight_decay) == (0.001, 0.9, 0.999, 1e-8, 0.0)
    assert optim.AdamW().weight_decay == 0.01


def test_learning_rate_is_an_alias_of_lr_and_lr_is_settable():
    opt = optim.Momentum(learning_rate=0.3)
    assert opt.lr == 0.3 and opt.learning_rate == 0.3
    opt.lr = 0.05
    assert opt.learning_rate == 0.05
    with pytest.raises(TypeError, match="not both"):
        optim.SGD(lr=0.5, learning_rate=0.1)


def test_setting_lr_changes_the_next_step():
    p = Tensor(np.zeros(2), requires_grad=True)
    opt = optim.SGD([p], lr=1.0)
    p.grad = np.ones(2)
    opt.step()
    opt.lr = 0.25
    opt.step()
    np.testing.assert_array_equal(p.data, [-1.25, -1.25])


def test_grad_of_the_wrong_shape_is_named():
    p = Tensor(np.zeros(3), requires_grad=True)
    opt = optim.SGD([p])
    p.grad = np.ones(4)
    with pytest.raises(ValueError, match=r"\(4,\).*\(3,\)"):
        opt.step()


def test_step_without_params_points_to_update():
    with pytest.raises(RuntimeError, match="update"):
        optim.Adam(learning_rate=0.1).step()


# ---------------------------------------------------------------------- state
def _toy_problem(seed):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(16, 3)).astype(np.float32)
    Y = rng.normal(size=(16, 2)).astype(np.float32)
    W = Tensor(rng.normal(size=(3, 2)).astype(np.float32), requires_grad=True)
    b = Tensor(np.zeros(2, dtype=np.float32), requires_grad=True)
    return X, Y, [W, b]


def _train(opt, params, X, Y, steps):
    W, b = params
    for i in range(steps):
        rows = slice(4 * (i % 4), 4 * (i % 4) + 4)
        opt.zero_grad()
        (((Tensor(X[rows]) @ W + b) - Y[rows]) ** 2).mean().backward()
        opt.step()


@pytest.mark.parametrize("opt_cls", ALL)
def test_resuming_from_saved_state_continues_bit_identically(opt_cls):
    X, Y, params = _toy_problem(0)
    opt = opt_cls(params, lr=0.05)
    _train(opt, params, X, Y, 5)
    saved_params = [p.data.copy() for p in params]
    saved_state = opt.state_dict()
    _train(opt, params, X, Y, 7)

    _, _, fresh = _toy_problem(1)
    for p, data in zip(fresh, saved_params):
        p.data[...] = data
    resumed = opt_cls(fresh, lr=0.9)
    resumed.load_state_dict(saved_state)
    assert resumed.lr == 0.05
    _train(resumed, fresh, X, Y, 7)
    for a, b in zip(params, fresh):
        np.testing.assert_array_equal(a.data, b.data)


def test_optimizer_state_survives_tg_save_and_load(tmp_path):
    X, Y, params = _toy_problem(0)
    opt = optim.Adam(params, lr=0.02)
    _train(opt, params, X, Y, 3)
    tg.save(opt.state_dict(), tmp_path / "adam.npz")
    saved_params = [p.data.copy() for p in params]
    _train(opt, params, X, Y, 4)

    _, _, fresh = _toy_problem(1)
    for p, data in zip(fresh, saved_params):
        p.data[...] = data
    resumed = optim.Adam(fresh)
    resumed.load_state_dict(tg.load(tmp_path / "adam.npz"))
    _train(resumed, fresh, X, Y, 4)
    for a, b in zip(params, fresh):
        np.testing.assert_array_equal(a.data, b.data)


def test_state_dict_is_a_copy():
    X, Y, params = _toy_problem(0)
    opt = optim.Adam(params)
    _train(opt, params, X, Y, 2)
    sd = opt.state_dict()
    m = sd["0.m"].copy()
    _train(opt, params, X, Y, 2)
    np.testing.assert_array_equal(sd["0.m"], m)
    assert sd["0.step"] == 2 and sd["lr"] == 0.001


@pytest.mark.parametrize("mutate, match", [
    (lambda sd: sd.pop("beta1"), "beta1"),
    (lambda sd: sd.update({"0.m": np.zeros((2, 2))}), r"\(2, 2\).*\(3, 2\)"),
    (lambda sd: sd.update({"7.m": np.zeros(2)}), "parameter 7"),
    (lambda sd: sd.pop("1.v"), "1.v"),
    (lambda sd: sd.update({"0.velocity": np.zeros(2)}), "0.velocity"),
    (lambda sd: sd.update({"lr": -1.0}), "lr"),
])
def test_a_bad_state_dict_is_refused_before_anything_changes(mutate, match):
    X, Y, params = _toy_problem(0)
    opt = optim.Adam(params, lr=0.01)
    _train(opt, params, X, Y, 3)
    sd = opt.state_dict()
    mutate(sd)
    before = opt.state_dict()
    with pytest.raises(ValueError, match=match):
        opt.load_state_dict(sd)
    after = opt.state_dict()
    assert before.keys() == after.keys()
    for k in before:
        np.testing.assert_array_equal(before[k], after[k])


# ---------------------------------------------------------------------- gradient clipping
@given(hnp.arrays(np.float64, 3, elements=st.floats(-10, 10)),
       hnp.arrays(np.float64, (2, 2), elements=st.floats(-10, 10)),
       st.floats(0.01, 20))
def test_clip_grad_norm_scales_to_max_norm_and_returns_the_total(g1, g2, max_norm):
    a = Tensor(np.zeros(3), requires_grad=True)
    b = Tensor(np.zeros((2, 2)), requires_grad=True)
    c = Tensor(np.zeros(1), requires_grad=True)
    a.grad, b.grad = g1.copy(), g2.copy()
    total = np.sqrt(np.sum(g1**2) + np.sum(g2**2))
    got = clip_grad_norm_([a, b, c], max_norm)
    assert got == pytest.approx(total, rel=1e-12, abs=1e-300)
    assert c.grad is None
    coef = max_norm / (total + 1e-6)
    scale = coef if coef < 1 else 1.0
    np.testing.assert_allclose(a.grad, g1 * scale, rtol=1e-12)
    np.testing.assert_allclose(b.grad, g2 * scale, rtol=1e-12)
    new_total = np.sqrt(np.sum(a.grad**2) + np.sum(b.grad**2))
    assert new_total <= max_norm * (1 + 1e-9)


def test_clip_grad_norm_with_inf_norm_and_a_single_tensor():
    a = Tensor(np.zeros(3), requires_grad=True)
    a.grad = np.array([3.0, -4.0, 1.0])
    assert clip_grad_norm_(a, 2.0, norm_type=float("inf")) == 4.0
    np.testing.assert_allclose(a.grad, np.array([3.0, -4.0, 1.0]) * 2.0 / (4.0 + 1e-6))


def test_clip_grad_norm_refuses_a_negative_max_norm():
    with pytest.raises(ValueError, match=r"max_norm=-1\.0"):
        clip_grad_norm_([Tensor(np.zeros(2), requires_grad=True)], -1.0)
