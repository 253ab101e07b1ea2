"""Gradients and reductions at the edges, as PyTorch has them: x ** 0 at x = 0, reductions with an empty axis,
second derivatives through the kink of ReLU, and a tensor frozen between the forward and the backward."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import tinygrad_jp as tg
from tinygrad_jp import F, Tensor


# ---------------------------------------------------------------------- powers at zero
@given(x=hnp.arrays(np.float64, st.integers(1, 6), elements=st.sampled_from([0.0, -0.0, 1.0, -2.5, 3.0])))
def test_the_gradient_of_x_to_the_zero_is_zero_everywhere_including_zero(x):
    t = Tensor(x, requires_grad=True)
    (t**0).sum().backward()
    np.testing.assert_array_equal(t.grad, np.zeros_like(x))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_zero_to_the_zero_has_zero_gradients_in_both_operands(dtype):
    a = Tensor(np.zeros(3, dtype), requires_grad=True)
    b = Tensor(np.zeros(3, dtype), requires_grad=True)
    y = a**b
    y.sum().backward()
    np.testing.assert_array_equal(y.data, np.ones(3))
    np.testing.assert_array_equal(a.grad, np.zeros(3))
    np.testing.assert_array_equal(b.grad, np.zeros(3))


def test_the_derivatives_of_x_to_the_zero_are_zero_at_zero_also_as_a_graph():
    x = Tensor(np.array([0.0, 2.0]), requires_grad=True)
    (g,) = tg.grad((x**0).sum(), x, create_graph=True)
    np.testing.assert_array_equal(g.data, [0.0, 0.0])


def test_powers_at_zero_match_pytorch():
    torch = pytest.importorskip("torch")
    values = np.array([0.0, 0.0, 0.0, 2.0, 0.5])
    exponents = np.array([0.0, 1.0, 2.0, 0.0, 3.0])
    a, b = Tensor(values, requires_grad=True), Tensor(exponents, requires_grad=True)
    (a**b).sum().backward()
    ta, tb = torch.tensor(values, requires_grad=True), torch.tensor(exponents, requires_grad=True)
    (ta**tb).sum().backward()
    np.testing.assert_array_equal(a.grad, ta.grad.numpy())
    np.testing.assert_array_equal(b.grad, tb.grad.numpy())


# ---------------------------------------------------------------------- reductions with an empty axis
def _axes(ndim):
    return st.one_of(st.none(), st.integers(-ndim, ndim - 1),
                     st.lists(st.integers(0, ndim - 1), min_size=1, max_size=ndim, unique=True).map(tuple))


@given(data=st.data(), shape=hnp.array_shapes(min_dims=1, max_dims=3, min_side=0, max_side=3),
       reduce=st.sampled_from(["max", "min"]), keepdims=st.booleans())
def test_max_and_min_over_nonempty_axes_of_an_empty_tensor_give_numpys_empty_result(data, shape, reduce, keepdims):
    axis = data.draw(_axes(len(shape)))
    arr = np.zeros(shape, np.float32)
    reduced = set(range(len(shape))) if axis is None else {a % len(shape) for a in np.atleast_1d(axis)}
    t = Tensor(arr, requires_grad=True)
    if any(shape[a] == 0 for a in reduced):  # some result would be the maximum of no values: numpy raises too
        with pytest.raises(ValueError, match=rf"{reduce}\(axis=.*{shape}.*length 0"):
            getattr(t, reduce)(axis=axis, keepdims=keepdims)
        with pytest.raises(ValueError):
            getattr(np, reduce)(arr, axis=axis, keepdims=keepdims)
        return
    out = getattr(t, reduce)(axis=axis, keepdims=keepdims)
    expected = getattr(np, reduce)(arr, axis=axis, keepdims=keepdims)
    assert out.shape == expected.shape
    out.sum().backward()
    assert t.grad.shape == shape


def test_the_issues_example_max_along_axis_1_of_shape_0_by_3():
    x = Tensor(np.zeros((0, 3), np.float32), requires_grad=True)
    assert x.max(axis=1).shape == (0,)
    assert x.mean(axis=1).shape == (0,) and x.sum(axis=1).shape == (0,) and x.var(axis=1).shape == (0,)
    with pytest.raises(ValueError, match=r"max\(axis=None\) of a tensor of shape \(0, 3\): axis 0 has length 0"):
        x.max()


# ---------------------------------------------------------------------- second derivatives through kinks
ACTIVATIONS = {"relu": F.relu, "leaky_relu": lambda t: F.leaky_relu(t, 0.1), "abs": lambda t: t.abs()}


@pytest.mark.parametrize("name", list(ACTIVATIONS))
def test_the_second_derivative_of_a_piecewise_linear_net_is_zero_not_an_error(name):
    act = ACTIVATIONS[name]
    rng = np.random.default_rng(0)
    X = Tensor(rng.standard_normal((6, 3)))
    W = Tensor(rng.standard_normal((3, 4)), requires_grad=True)
    (g,) = tg.grad(act(X @ W).sum(), W, create_graph=True)
    assert g.requires_grad
    (h,) = tg.grad((g * g).sum(), W)
    np.testing.assert_array_equal(h.data, np.zeros((3, 4)))


def test_a_learners_activation_with_a_boolean_derivative_has_a_zero_second_derivative_in_its_dtype():
    class Ramp(tg.Activation):
        def f(self, x):
            return np.maximum(x, 0)

        def df(self, x, y):
            return x > 0  # a boolean mask: a constant as far as the graph can see

    x = Tensor(np.array([-1.0, 0.5, 2.0], np.float32), requires_grad=True)
    (g,) = tg.grad(Ramp()(x).sum(), x, create_graph=True)
    assert g.dtype == np.float32
    np.testing.assert_array_equal(g.data, [0, 1, 1])
    (h,) = tg.grad((g * x).sum(), x)  # d/dx Σ x·1[x > 0] = 1[x > 0], only through the product
    np.testing.assert_array_equal(h.data, [0, 1, 1])


def _loss(act, X, W1, W2):
    return ((act(X @ W1) @ W2) ** 2).mean()


@pytest.mark.parametrize("name", list(ACTIVATIONS))
def test_a_hessian_vector_product_through_relu_matches_differences_of_the_gradient(name):
    act = ACTIVATIONS[name]
    rng = np.random.default_rng(1)
    X = Tensor(rng.standard_normal((8, 3)))
    W1 = Tensor(rng.standard_normal((3, 5)), requires_grad=True)
    W2 = Tensor(rng.standard_normal((5, 1)), requires_grad=True)
    v = rng.standard_normal((3, 5))
    (g,) = tg.grad(_loss(act, X, W1, W2), W1, create_graph=True)
    (hv,) = tg.grad((g * Tensor(v)).sum(), W1)

    def gradient_at(w):
        w = Tensor(w, requires_grad=True)
        return tg.grad(_loss(act, X, w, W2.detach()), w)[0].data

    eps = 1e-6  # small enough that no pre-activation crosses 0 (the gradient is smooth there)
    numeric = (gradient_at(W1.data + eps * v) - gradient_at(W1.data - eps * v)) / (2 * eps)
    np.testing.assert_allclose(hv.data, numeric, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("name", list(ACTIVATIONS))
def test_a_hessian_vector_product_through_relu_matches_pytorch(name):
    torch = pytest.importorskip("torch")
    act = ACTIVATIONS[name]
    torch_act = {"relu": torch.relu, "leaky_relu": lambda t: torch.nn.functional.leaky_relu(t, 0.1),
                 "abs": torch.abs}[name]
    rng = np.random.default_rng(2)
    X, W1, W2, v = (rng.standard_normal(s) for s in [(8, 3), (3, 5), (5, 1), (3, 5)])
    w1 = Tensor(W1, requires_grad=True)
    (g,) = tg.grad(_loss(act, Tensor(X), w1, Tensor(W2)), w1, create_graph=True)
    (hv,) = tg.grad((g * Tensor(v)).sum(), w1)
    tw1 = torch.tensor(W1, requires_grad=True)
    (tgrad,) = torch.autograd.grad(_loss(torch_act, torch.tensor(X), tw1, torch.tensor(W2)), tw1, create_graph=True)
    (thv,) = torch.autograd.grad((tgrad * torch.tensor(v)).sum(), tw1)
    np.testing.assert_allclose(hv.data, thv.numpy(), rtol=1e-12, atol=1e-12)


# ---------------------------------------------------------------------- freezing after the forward
def test_a_tensor_frozen_between_forward_and_backward_gets_no_grad():
    w = Tensor(np.ones(3), requires_grad=True)
    b = Tensor(np.ones(3), requires_grad=True)
    loss = (w * b).sum()
    w.requires_grad_(False)
    loss.backward()
    assert w.grad is None  # PyTorch: the frozen leaf accumulates nothing
    np.testing.assert_array_equal(b.grad, np.ones(3))
