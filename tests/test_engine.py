"""The backward engine: order, fan-out, release, grad(), higher order, no_grad, hooks."""

import gc
import weakref

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tinygrad_jp as tg
from tinygrad_jp import Tensor


def test_fan_out_accumulates():
    a = Tensor([1.0, -2.0, 3.0], requires_grad=True)
    b = a + a
    c = b + b
    c.sum().backward()
    np.testing.assert_array_equal(a.grad, [4.0, 4.0, 4.0])


def test_diamond_runs_each_backward_once_after_all_consumers():
    x = Tensor(1.5, requires_grad=True)
    calls = []

    class Spy(tg.Function):
        def forward(self, a):
            return a * 1.0

        def backward(self, g, y, a):
            calls.append(float(g))
            return g

    top = Spy()(x)
    left, right = top * 2.0, top * 3.0
    (left * right).backward()
    # d(6 t^2)/dt = 12 t, delivered to Spy in one call with the summed gradient
    assert calls == [pytest.approx(12 * 1.5)]
    assert x.grad == pytest.approx(18.0)


@given(st.integers(1, 6), st.integers(1, 6))
def test_reused_node_gradient_matches_closed_form(n_uses, power):
    x = Tensor(0.7, requires_grad=True, dtype=np.float64)
    y = x**power
    total = y
    for _ in range(n_uses - 1):
        total = total + y
    total.backward()
    assert x.grad == pytest.approx(n_uses * power * 0.7 ** (power - 1))


def test_chain_of_100000_nodes_needs_no_recursion():
    x = Tensor(1.0, requires_grad=True, dtype=np.float64)
    y = x
    for _ in range(100_000):
        y = y * 1.0001 + 0.0
    y.backward()
    assert x.grad == pytest.approx(1.0001**100_000, rel=1e-9)


def test_backward_on_a_leaf():
    x = Tensor(np.array([2.0, 3.0]), requires_grad=True)
    x.backward(np.array([1.0, 5.0]))
    np.testing.assert_array_equal(x.grad, [1.0, 5.0])


def test_backward_on_non_scalar_without_grad_says_so():
    x = Tensor(np.ones((2, 3)), requires_grad=True)
    for expected in (RuntimeError, ValueError):  # PyTorch's type, and the type of a bad value given
        with pytest.raises(expected, match=r"scalar.*\(2, 3\)"):
            (x * 2).backward()


def test_backward_grad_with_wrong_shape_is_rejected():
    x = Tensor(np.ones(3), requires_grad=True)
    with pytest.raises(ValueError, match=r"\(3,\).*\(2,\)"):
        (x * 2).backward(np.ones(2))


def test_backward_without_grad_requirement_says_so():
    with pytest.raises(RuntimeError, match="requires grad"):
        Tensor([1.0, 2.0]).sum().backward()


def test_second_backward_through_released_graph_raises():
    x = Tensor(2.0, requires_grad=True)
    y = x * x * 3.0
    y.backward()
    with pytest.raises(RuntimeError, match=r"second time.*retain_graph"):
        y.backward()


def test_retain_graph_allows_a_second_backward_that_accumulates():
    x = Tensor(2.0, requires_grad=True)
    y = x * x
    y.backward(retain_graph=True)
    y.backward()
    assert x.grad == pytest.approx(8.0)


def test_graph_is_freed_after_backward():
    x = Tensor(np.ones(4), requires_grad=True)
    h = x * 2.0
    ref = weakref.ref(h)
    loss = (h * h).sum()
    del h
    gc.collect()
    assert ref() is not None  # the loss still holds the graph
    loss.backward()
    gc.collect()
    assert ref() is None  # released by backward, though the loss tensor is alive


def test_dropping_the_loss_frees_the_graph_without_gc():
    x = Tensor(np.ones(4), requires_grad=True)
    h = x.exp()
    ref = weakref.ref(h)
    loss = (h * 3.0).sum()
    del h, loss
    assert ref() is None  # no reference cycle: freed by reference counting alone


def test_no_grad_records_no_graph_as_context_and_decorator():
    x = Tensor([1.0], requires_grad=True)
    with tg.no_grad():
        y = x * 2.0
    assert not y.requires_grad and y.grad_fn is None

    @tg.no_grad()
    def f(t):
        return t * 3.0

    assert f(x).grad_fn is None
    assert (x * 2.0).grad_fn is not None  # restored afterwards
    with tg.no_grad():
        with tg.enable_grad():
            assert (x * 2.0).requires_grad


def test_no_gradient_is_computed_for_inputs_that_need_none():
    calls = []

    class Probe(tg.Function):
        def forward(self, a, b):
            return a @ b

        def backward(self, g, y, a, b):
            calls.append(self.needs)
            return (g @ b.T if self.needs[0] else None), (a.T @ g if self.needs[1] else None)

    x = Tensor(np.ones((3, 2)))
    w = Tensor(np.ones((2, 4)), requires_grad=True)
    Probe()(x, w).sum().backward()
    assert calls == [(False, True)]
    assert x.grad is None


def test_hooks_see_and_can_replace_the_gradient():
    x = Tensor([1.0, 2.0], requires_grad=True)
    seen = []
    x.register_hook(lambda g: seen.append(g.copy()))
    h = x * 3.0
    h.register_hook(lambda g: g * 10)
    h.sum().backward()
    np.testing.assert_array_equal(seen[0], [30.0, 30.0])
    np.testing.assert_array_equal(x.grad, [30.0, 30.0])


def test_hook_handle_removes_the_hook():
    x = Tensor([1.0], requires_grad=True)
    seen = []
    handle = x.register_hook(seen.append)
    handle.remove()
    (x * 2.0).sum().backward()
    assert seen == []


def test_retain_grad_keeps_an_intermediate_gradient():
    x = Tensor([1.0, 2.0], requires_grad=True)
    h = x * 3.0
    h.retain_grad()
    (h * h).sum().backward()
    np.testing.assert_allclose(h.grad, 2 * h.data)


def test_grad_returns_without_touching_dot_grad_for_leaf_and_non_leaf():
    x = Tensor([1.0, 2.0], requires_grad=True)
    h = x * x
    y = (h * 3.0).sum()
    gx, gh = tg.grad(y, [x, h])
    np.testing.assert_allclose(gx.data, 6 * x.data)
    np.testing.assert_allclose(gh.data, [3.0, 3.0])
    assert x.grad is None


def test_grad_of_unused_input_needs_allow_unused():
    x = Tensor(1.0, requires_grad=True)
    z = Tensor(1.0, requires_grad=True)
    with pytest.raises(RuntimeError, match="allow_unused"):
        tg.grad(x * 2.0, [x, z])
    assert tg.grad(x * 2.0, [x, z], allow_unused=True)[1] is None


def test_second_derivatives_match_closed_forms():
    x = Tensor(0.3, requires_grad=True, dtype=np.float64)
    for f, d2 in [
        (lambda t: t.sin(), lambda v: -np.sin(v)),
        (lambda t: t.exp() * t, lambda v: np.exp(v) * (v + 2)),
        (lambda t: t.tanh(), lambda v: -2 * np.tanh(v) * (1 - np.tanh(v) ** 2)),
        (lambda t: t.sigmoid(), lambda v: (s := 1 / (1 + np.exp(-v))) * (1 - s) * (1 - 2 * s)),
        (lambda t: (t * t + 1.0).log(), lambda v: (2 - 2 * v**2) / (1 + v**2) ** 2),
        (lambda t: t**4 / 12.0, lambda v: v**2),
    ]:
        (g,) = tg.grad(f(x), x, create_graph=True)
        (h,) = tg.grad(g, x)
        assert h.item() == pytest.approx(d2(0.3), rel=1e-9)


def test_third_derivative():
    x = Tensor(0.5, requires_grad=True, dtype=np.float64)
    (g,) = tg.grad(x**5, x, create_graph=True)
    (h,) = tg.grad(g, x, create_graph=True)
    (k,) = tg.grad(h, x)
    assert k.item() == pytest.approx(60 * 0.5**2)


def test_hessian_vector_product_of_a_quadratic_form():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(4, 4))
    v = rng.normal(size=4)
    x = Tensor(rng.normal(size=4), requires_grad=True)
    f = (x @ Tensor(a) @ x) * 0.5
    (g,) = tg.grad(f, x, create_graph=True)
    (hv,) = tg.grad((g * v).sum(), x)
    np.testing.assert_allclose(hv.data, 0.5 * (a + a.T) @ v)


def test_gradcheck_passes_a_right_gradient_and_names_the_worst_element_of_a_wrong_one():
    class Bad(tg.Function):
        def forward(self, a):
            return a * a

        def backward(self, g, y, a):
            out = 2 * g * a
            out.reshape(-1)[-1] += 1.0  # only the last element is wrong
            return out

    x = Tensor(np.arange(6.0).reshape(2, 3), requires_grad=True)
    assert tg.gradcheck(lambda t: (t * t).sum(axis=0), x)
    with pytest.raises(tg.GradcheckError, match=r"input 0 .*index \(1, 2\)"):
        tg.gradcheck(lambda t: Bad()(t), x)


def test_gradcheck_uses_float64_for_float32_inputs():
    x = Tensor(np.linspace(-1, 1, 5).astype(np.float32), requires_grad=True)
    assert tg.gradcheck(lambda t: (t * 3.0).exp().sum(), x)


def test_manual_seed_makes_random_functions_repeat():
    tg.manual_seed(123)
    a = tg.get_rng().normal(size=3)
    tg.manual_seed(123)
    b = tg.get_rng().normal(size=3)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(tg.get_rng(np.random.default_rng(5)).normal(size=2),
                                  np.random.default_rng(5).normal(size=2))


def test_detect_anomaly_names_the_forward_op():
    x = Tensor([-1.0, 1.0], requires_grad=True)
    with tg.detect_anomaly():
        with pytest.raises(FloatingPointError, match="Log"):
            with np.errstate(all="ignore"):
                x.log()
    with np.errstate(all="ignore"):
        assert np.isnan(x.log().data[0])  # off by default


def test_detect_anomaly_in_backward_names_the_op_and_where_it_was_created():
    x = Tensor([0.0, 1.0], requires_grad=True)
    with tg.detect_anomaly():
        y = x.sqrt()  # the gradient 1 / (2 sqrt(x)) is inf at 0
        with pytest.raises(FloatingPointError, match=r"(?s)Sqrt\.backward contains inf.*created.*y = x\.sqrt\(\)"):
            with np.errstate(divide="ignore"):
                y.sum().backward()


def test_pow_exponent_gradient_at_zero_base_is_zero_not_nan():
    a = Tensor([0.0, 2.0], requires_grad=True, dtype=np.float64)
    b = Tensor([2.0, 2.0], requires_grad=True, dtype=np.float64)
    (a**b).sum().backward()  # RuntimeWarning is an error in this suite: log(0) must not be taken
    np.testing.assert_allclose(b.grad, [0.0, 4.0 * np.log(2.0)])
    np.testing.assert_allclose(a.grad, [0.0, 4.0])


# ---------------------------------------------------------------------- gradients written in place
# loss = sum(relu(x W) * C): the gradient arriving at the ReLU is C (fresh from Mul, so the engine owns it),
# nonzero also where the ReLU's mask is 0, so a mask written into a shared gradient would show.
def _relu_net(seed=0):
    rng = np.random.default_rng(seed)
    x = Tensor(rng.standard_normal((4, 3)).astype(np.float32), requires_grad=True)
    W = Tensor(rng.standard_normal((3, 5)).astype(np.float32), requires_grad=True)
    C = rng.standard_normal((4, 5)).astype(np.float32) + 3.0
    z = x @ W
    h = z.relu()
    return x, W, z, h, C


def _expected_relu_grads(x, W, C):
    dz = C * (x.data @ W.data > 0)
    return dz @ W.data.T, x.data.T @ dz


def test_a_retained_gradient_is_not_overwritten():
    x, W, _, h, C = _relu_net()
    h.retain_grad()
    (h * C).sum().backward()
    np.testing.assert_array_equal(h.grad, C)  # the gradient at h, not the masked one below it
    gx, _ = _expected_relu_grads(x, W, C)
    np.testing.assert_allclose(x.grad, gx, rtol=1e-6)


def test_a_gradient_seen_by_a_hook_is_not_overwritten():
    _, _, _, h, C = _relu_net()
    seen = []
    h.register_hook(seen.append)
    (h * C).sum().backward()
    np.testing.assert_array_equal(seen[0], C)


def test_grad_returns_the_gradient_at_an_activation_unmasked():
    _, _, z, h, C = _relu_net()
    gh, gz = tg.grad((h * C).sum(), [h, z])
    np.testing.assert_array_equal(gh.data, C)
    np.testing.assert_array_equal(gz.data, C * (z.data > 0))


def test_the_stepper_shows_the_gradient_that_arrived_at_the_activation():
    from tinygrad_jp.inspect import backprop_steps

    _, _, _, h, C = _relu_net()
    steps = {s.op: s for s in backprop_steps((h * C).sum())}
    np.testing.assert_array_equal(steps["ReLU"].upstream, C)


def test_an_activation_whose_derivative_is_float64_still_gives_float32_gradients():
    class Square(tg.Activation):
        def f(self, x):
            return x * x

        def df(self, x, y):
            return 2.0 * x.astype(np.float64)

    x = Tensor(np.array([0.5, -1.5, 2.0], dtype=np.float32), requires_grad=True)
    y = Square()(x)
    (y * 3.0).sum().backward()  # Mul hands Square a fresh float32 gradient, written in place
    assert x.grad.dtype == np.float32
    np.testing.assert_allclose(x.grad, 6.0 * x.data, rtol=1e-6)


def test_a_gradient_shared_by_two_inputs_of_add_is_not_overwritten():
    rng = np.random.default_rng(3)
    p = Tensor(rng.standard_normal((4, 5)).astype(np.float32), requires_grad=True)
    q = p * 1.0  # made before h, so its backward runs after ReLU's, with the same array from Add
    x, W, _, h, C = _relu_net()
    ((h + q) * C).sum().backward()
    np.testing.assert_array_equal(p.grad, C)
    gx, _ = _expected_relu_grads(x, W, C)
    np.testing.assert_allclose(x.grad, gx, rtol=1e-6)
