"""Optimizers: each update is the chapter's formula, the chapter's update(params, grads) API gives the
chapter's trajectories, the state is readable under the chapter's names and equals the chapter's classes',
a learner's own optimizer plugs into step() and update(), state can be saved and resumed bit-identically,
bad hyperparameters and gradients are refused."""

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
    assert 0 in opt.m and 1 not in opt.m and 1 not in opt.v
    assert a.data.dtype == np.float32 and opt.m[0].dtype == np.float32


def test_zero_grad_sets_grads_to_none():
    a = Tensor(np.ones(3), requires_grad=True)
    opt = optim.SGD([a])
    (a * 2.0).sum().backward()
    assert a.grad is not None
    opt.zero_grad()
    assert a.grad is None


@pytest.mark.parametrize("opt_cls", ALL)
def test_float32_parameters_and_their_state_stay_float32(opt_cls):
    p = Tensor(np.ones((5, 4), dtype=np.float32), requires_grad=True)
    opt = opt_cls([p], weight_decay=0.1)
    data = p.data
    for _ in range(3):
        p.grad = np.full((5, 4), 0.5, dtype=np.float32)
        opt.step()
    assert p.data is data and p.data.dtype == np.float32
    for name in opt_cls.state_names:
        assert getattr(opt, name)[0].dtype == np.float32, name


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
    m = sd["m.0"].copy()
    _train(opt, params, X, Y, 2)
    np.testing.assert_array_equal(sd["m.0"], m)
    assert sd["t"] == 2 and sd["lr"] == 0.001
    sd["m.0"][...] = 99.0
    assert not np.any(opt.m[0] == 99.0)


@pytest.mark.parametrize("mutate, match", [
    (lambda sd: sd.pop("beta1"), "beta1"),
    (lambda sd: sd.pop("t"), "'t'"),
    (lambda sd: sd.update({"t": 2.5}), "non-negative integer"),
    (lambda sd: sd.update({"m.0": np.zeros((2, 2))}), r"\(2, 2\).*\(3, 2\)"),
    (lambda sd: sd.update({"m.7": np.zeros(2)}), "parameter 7"),
    (lambda sd: sd.pop("v.1"), "v.1"),
    (lambda sd: sd.update({"velocity.0": np.zeros(2)}), "velocity.0"),
    (lambda sd: sd.update({"m.x": np.zeros(2)}), "m.x"),
    (lambda sd: sd.update({"lr": -1.0}), "lr"),
])
def test_a_bad_state_dict_is_refused_before_anything_changes(mutate, match):
    X, Y, params = _toy_problem(0)
    opt = optim.Adam(params, lr=0.01)
    _train(opt, params, X, Y, 3)
    other = optim.Adam(_toy_problem(1)[2], lr=0.03, beta1=0.5)
    _train(other, other.params, X, Y, 5)
    sd = other.state_dict()  # differs from opt's in every entry, so a partial load would show
    mutate(sd)
    before = opt.state_dict()
    with pytest.raises(ValueError, match=match):
        opt.load_state_dict(sd)
    after = opt.state_dict()
    assert before.keys() == after.keys()
    for k in before:
        np.testing.assert_array_equal(before[k], after[k])


# ---------------------------------------------------------------------- the chapter's state, readable while training
CHAPTER = {"Momentum": ChapterMomentum, "AdaGrad": ChapterAdaGrad, "RMSprop": ChapterRMSprop, "Adam": ChapterAdam}
# The chapter's attribute names for each optimizer's state.
CHAPTER_STATE = {"Momentum": ("velocity",), "AdaGrad": ("h",), "RMSprop": ("h",), "Adam": ("m", "v")}


@given(st.sampled_from(sorted(CHAPTER)), st.floats(1e-3, 0.5),
       st.lists(hnp.arrays(np.float64, (2, 3), elements=st.floats(-5, 5)), min_size=1, max_size=5))
def test_state_read_mid_training_through_step_equals_the_chapters_classes(name, lr, grad_seq):
    W = Tensor(np.linspace(-1, 1, 6).reshape(2, 3), requires_grad=True)
    b = Tensor(np.ones(3), requires_grad=True)
    ours = getattr(optim, name)([W, b], lr=lr)
    ref = CHAPTER[name](learning_rate=lr)
    ref_params = {0: W.data.copy(), 1: b.data.copy()}  # step() keys the state by the parameter's index
    for g in grad_seq:
        W.grad, b.grad = g, g[0]
        ours.step()
        ref.update(ref_params, {0: g, 1: g[0]})
        for attr in CHAPTER_STATE[name]:
            for i in (0, 1):
                np.testing.assert_allclose(getattr(ours, attr)[i], getattr(ref, attr)[i], rtol=1e-12, atol=1e-300,
                                           err_msg=f"{name}.{attr}[{i}]")
    if name == "Adam":
        assert ours.t == ref.t == len(grad_seq)


@given(st.sampled_from(sorted(CHAPTER)), st.floats(1e-3, 0.5),
       st.lists(hnp.arrays(np.float64, 2, elements=st.floats(-5, 5)), min_size=1, max_size=5))
def test_state_read_mid_training_through_update_equals_the_chapters_classes(name, lr, grad_seq):
    ours, ref = getattr(optim, name)(learning_rate=lr), CHAPTER[name](learning_rate=lr)
    p_ours, p_ref = {"W1": np.array([1.0, -2.0])}, {"W1": np.array([1.0, -2.0])}
    for g in grad_seq:
        ours.update(p_ours, {"W1": g})
        ref.update(p_ref, {"W1": g})
        for attr in CHAPTER_STATE[name]:
            np.testing.assert_allclose(getattr(ours, attr)["W1"], getattr(ref, attr)["W1"], rtol=1e-12,
                                       atol=1e-300, err_msg=f"{name}.{attr}")
    if name == "Adam":
        assert ours.t == ref.t == len(grad_seq)


def test_the_chapters_other_names_reach_the_same_values():
    mom = optim.Momentum(learning_rate=0.1)
    assert mom.v is mom.velocity
    mom.update({"w": np.ones(2)}, {"w": np.ones(2)})
    np.testing.assert_array_equal(mom.v["w"], [-0.1, -0.1])
    nes = optim.Nesterov(learning_rate=0.1)
    assert nes.v is nes.velocity
    for cls in (optim.AdaGrad, optim.RMSprop, optim.Adam):
        opt = cls(eps=1e-6)
        assert opt.epsilon == 1e-6
        opt.epsilon = 1e-7
        assert opt.eps == 1e-7


def test_state_is_empty_before_the_first_update_and_t_counts_updates():
    a = Tensor(np.ones(2), requires_grad=True)
    b = Tensor(np.ones(2), requires_grad=True)
    opt = optim.Adam([a, b])
    assert (opt.m, opt.v, opt.t) == ({}, {}, 0)
    opt.step()  # no gradients yet: nothing to update, nothing counted
    assert (opt.m, opt.t) == ({}, 0)
    a.grad = np.ones(2)
    opt.step()
    b.grad = np.ones(2)
    opt.step()
    assert opt.t == 2 and sorted(opt.m) == [0, 1]


def test_adams_bias_correction_uses_the_one_shared_count_t():
    # As in the chapter, t counts the updates, not each parameter's: b starts at step 2 and is corrected with t = 2.
    a = Tensor(np.zeros(1), requires_grad=True)
    b = Tensor(np.zeros(1), requires_grad=True)
    opt = optim.Adam([a, b], lr=0.1)
    a.grad = np.ones(1)
    opt.step()
    b.grad = np.full(1, 2.0)
    opt.step()
    m_hat = (0.1 * 2.0) / (1 - 0.9**2)
    v_hat = (0.001 * 4.0) / (1 - 0.999**2)
    np.testing.assert_allclose(b.data, -0.1 * m_hat / (np.sqrt(v_hat) + 1e-8), rtol=1e-12)


@pytest.mark.parametrize("opt_cls", ALL)
def test_step_marks_every_parameter_it_changes_and_no_other(opt_cls):
    a = Tensor(np.ones(3), requires_grad=True)
    b = Tensor(np.ones(2), requires_grad=True)
    opt = opt_cls([a, b])
    uses_a, uses_b = (a * a).sum(), (b * b).sum()  # graphs made before the step
    a.grad = np.ones(3)
    opt.step()
    with pytest.raises(tg.BackwardError, match=r"Mul\.backward.*in-place"):
        uses_a.backward()
    uses_b.backward()  # b had no gradient: the step left it as it was, so its graph still runs
    np.testing.assert_array_equal(b.grad, [2.0, 2.0])


# ---------------------------------------------------------------------- a learner's own optimizer (docs/custom.md)
class SignMomentum(optim.Optimizer):
    """v ← βv + (1 − β) ∂L/∂w、w ← w − η sign(v)。"""

    hyperparameters = ("beta",)
    state_names = ("v",)

    def __init__(self, params=None, lr=0.01, beta=0.9, *, learning_rate=None):
        super().__init__(params, lr, learning_rate)
        self.beta = beta

    def update_param(self, key, w, g):
        v = self.v[key]
        v[...] = self.beta * v + (1 - self.beta) * g
        w -= self.lr * np.sign(v)


def _sign_momentum_by_hand(w, grads, lr, beta):
    """The weights after each step, and the last v."""
    v, ws = np.zeros_like(w), []
    for g in grads:
        v = beta * v + (1 - beta) * g
        w = w - lr * np.sign(v)
        ws.append(w)
    return ws, v


@given(grad_lists, st.floats(1e-3, 1.0), st.floats(0, 0.99))
def test_a_learners_optimizer_works_with_step(grads, lr, beta):
    got = _run_steps(SignMomentum, grads, w_start, lr=lr, beta=beta)
    expected, _ = _sign_momentum_by_hand(w_start, grads, lr, beta)
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)


@given(grad_lists, st.floats(1e-3, 1.0), st.floats(0, 0.99))
def test_a_learners_optimizer_works_with_update_and_its_state_is_readable(grads, lr, beta):
    opt = SignMomentum(learning_rate=lr, beta=beta)
    params = {"w": w_start.copy()}
    array = params["w"]
    for g in grads:
        opt.update(params, {"w": g})
    ws, v = _sign_momentum_by_hand(w_start, grads, lr, beta)
    assert params["w"] is array and opt.t == len(grads)
    np.testing.assert_allclose(params["w"], ws[-1], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(opt.v["w"], v, rtol=1e-12, atol=1e-300)


def test_a_learners_optimizer_gets_weight_decay_version_bumps_and_saving(tmp_path):
    class DecayedSign(SignMomentum):
        hyperparameters = ("beta", "weight_decay")

    p = Tensor(np.array([1.0, -1.0]), requires_grad=True)
    opt = DecayedSign([p], lr=0.1, beta=0.5)
    opt.weight_decay = 4.0  # λw outweighs the gradient: the step follows the sign of w
    before_step = (p * p).sum()
    p.grad = np.array([-1.0, 1.0])
    opt.step()
    np.testing.assert_allclose(p.data, [0.9, -0.9])
    with pytest.raises(tg.BackwardError, match="in-place"):
        before_step.backward()
    tg.save(opt.state_dict(), tmp_path / "opt.npz")
    again = DecayedSign([Tensor(np.zeros(2), requires_grad=True)], lr=0.5)
    again.load_state_dict(tg.load(tmp_path / "opt.npz"))
    assert (again.lr, again.beta, again.weight_decay, again.t) == (0.1, 0.5, 4.0, 1)
    np.testing.assert_array_equal(again.v[0], opt.v[0])


def test_learning_rate_works_with_a_learners_own_default_lr():
    class Slow(SignMomentum):
        def __init__(self, params=None, lr=0.5, *, learning_rate=None):
            super().__init__(params, lr, learning_rate=learning_rate)

    assert Slow(learning_rate=0.2).lr == 0.2
    with pytest.raises(TypeError, match="not both"):
        Slow(lr=0.3, learning_rate=0.2)


def test_an_optimizer_without_update_param_says_what_to_write():
    class Empty(optim.Optimizer):
        def __init__(self, params=None, lr=0.1):
            super().__init__(params, lr, None)

    with pytest.raises(NotImplementedError, match=r"update_param\(self, key, w, g\)"):
        Empty().update({"w": np.ones(2)}, {"w": np.ones(2)})


# ---------------------------------------------------------------------- wrong gradients change nothing
@pytest.mark.parametrize("opt_cls", ALL)
def test_a_wrong_shaped_grad_in_step_is_refused_before_any_parameter_changes(opt_cls):
    a = Tensor(np.ones(3), requires_grad=True)
    b = Tensor(np.ones(2), requires_grad=True)
    opt = opt_cls([a, b])
    made_before = (a * a).sum()
    a.grad, b.grad = np.ones(3), np.ones((2, 1))
    with pytest.raises(ValueError, match=r"parameter 1: grad has shape \(2, 1\) but the parameter has shape \(2,\)"):
        opt.step()
    np.testing.assert_array_equal(a.data, np.ones(3))
    assert opt.t == 0
    made_before.backward()  # a was not marked as changed either
    assert all(getattr(opt, name) == {} for name in opt_cls.state_names)


@pytest.mark.parametrize("opt_cls", ALL)
def test_a_wrong_shaped_grad_in_update_is_refused_before_any_array_changes(opt_cls):
    opt = opt_cls(learning_rate=0.1)
    params = {"a": np.ones(3), "b": np.ones(2)}
    with pytest.raises(ValueError, match=r"grads\['b'\] has shape \(3,\) but params\['b'\] has shape \(2,\)"):
        opt.update(params, {"a": np.ones(3), "b": np.ones(3)})
    np.testing.assert_array_equal(params["a"], np.ones(3))
    assert opt.t == 0


@pytest.mark.parametrize("params, grads, error, match", [
    ({"w": np.ones(2)}, {}, KeyError, "no entry for parameter 'w'"),
    ({"w": [1.0, 2.0]}, {"w": np.ones(2)}, TypeError, "floating-point ndarray.*list"),
    ({"w": np.ones(2, dtype=np.int64)}, {"w": np.ones(2)}, TypeError, "floating-point ndarray.*int64"),
])
def test_update_refuses_what_it_cannot_update_in_place(params, grads, error, match):
    with pytest.raises(error, match=match):
        optim.SGD(learning_rate=0.1).update(params, grads)


def test_update_on_an_optimizer_built_with_params_points_to_step():
    opt = optim.SGD([Tensor(np.ones(2), requires_grad=True)])
    with pytest.raises(RuntimeError, match="step"):
        opt.update({"w": np.ones(2)}, {"w": np.ones(2)})


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
