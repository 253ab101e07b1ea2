"""Activations: every built-in through the op harness, the chapter's formulas, symmetries and limits,
extreme inputs, the three ways of using an activation, and user-written activations."""

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import tinygrad_jp as tg
import tinygrad_jp.functional as F
from tinygrad_jp import Tensor, activations, nn, ops
from tinygrad_jp.activations import (
    ELU,
    GELU,
    Activation,
    Identity,
    LeakyReLU,
    LogSoftmax,
    ReLU,
    Sigmoid,
    Softmax,
    Softplus,
    Swish,
    Tanh,
)

from harness import OpSpec, property_tests, unary, values


# ---------------------------------------------------------------------- reference formulas
# Written out from the definitions (the chapter's where it gives them), independent of the library.
def _sigmoid(x):
    return 1 / (1 + np.exp(-x))


def _gelu_tanh(x):
    return 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x**3)))


def _softmax(x, axis=-1):
    e = np.exp(x)
    return e / e.sum(axis=axis, keepdims=True)


def _axis_inputs(data):
    shape = data.draw(hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=4), label="shape")
    axis = data.draw(st.integers(-len(shape), len(shape) - 1), label="axis")
    return [data.draw(values(shape), label="x")], {"axis": axis}


OFF_KINK = unary(away_from=(0.0,))

SPECS = [
    OpSpec("Sigmoid", lambda a: Sigmoid()(a), _sigmoid, unary()),
    OpSpec("Tanh", lambda a: Tanh()(a), np.tanh, unary()),
    OpSpec("ReLU", lambda a: ReLU()(a), lambda x: np.maximum(x, 0), OFF_KINK),
    OpSpec("LeakyReLU", lambda a: LeakyReLU()(a), lambda x: np.where(x > 0, x, 0.01 * x), OFF_KINK),
    OpSpec("LeakyReLU(0.2)", lambda a: LeakyReLU(0.2)(a), lambda x: np.where(x > 0, x, 0.2 * x), OFF_KINK),
    OpSpec("ELU", lambda a: ELU()(a), lambda x: np.where(x > 0, x, np.exp(x) - 1), OFF_KINK),
    OpSpec("ELU(0.5)", lambda a: ELU(0.5)(a), lambda x: np.where(x > 0, x, 0.5 * (np.exp(x) - 1)), OFF_KINK),
    OpSpec("Swish", lambda a: Swish()(a), lambda x: x * _sigmoid(x), unary()),
    OpSpec("Swish(2.5)", lambda a: Swish(2.5)(a), lambda x: x * _sigmoid(2.5 * x), unary()),
    OpSpec("GELU", lambda a: GELU()(a), _gelu_tanh, unary()),
    OpSpec("Softplus", lambda a: Softplus()(a), lambda x: np.log(1 + np.exp(x)), unary()),
    OpSpec("Identity", lambda a: Identity()(a), lambda x: x, unary()),
    OpSpec("Softmax", lambda a, axis: Softmax(axis)(a), _softmax, _axis_inputs),
    OpSpec("LogSoftmax", lambda a, axis: LogSoftmax(axis)(a), lambda x, axis: np.log(_softmax(x, axis)), _axis_inputs),
    OpSpec("F.log_softmax", lambda a, axis: F.log_softmax(a, axis), lambda x, axis: np.log(_softmax(x, axis)),
           _axis_inputs),
]


test_activation_property = property_tests(SPECS)


BUILTINS = [Sigmoid(), Tanh(), ReLU(), LeakyReLU(), LeakyReLU(0.3), ELU(), ELU(0.5), Swish(), Swish(10.0),
            Swish(0.0), Swish(-3.0), GELU(), Softplus(), Identity()]
IDS = [repr(a) for a in BUILTINS]


# ---------------------------------------------------------------------- the chapter's functions
def _chapter_sigmoid(x):
    return 1 / (1 + np.exp(-np.clip(x, -500, 500)))


CHAPTER = {
    "sigmoid": (_chapter_sigmoid, lambda x: _chapter_sigmoid(x) * (1 - _chapter_sigmoid(x))),
    "tanh": (np.tanh, lambda x: 1 - np.tanh(x) ** 2),
    "relu": (lambda x: np.maximum(0, x), lambda x: (x > 0).astype(float)),
    "leaky_relu": (lambda x, alpha=0.01: np.where(x > 0, x, alpha * x),
                   lambda x, alpha=0.01: np.where(x > 0, 1.0, alpha)),
    "elu": (lambda x, alpha=1.0: np.where(x > 0, x, alpha * (np.exp(x) - 1)),
            lambda x, alpha=1.0: np.where(x > 0, 1.0, alpha * np.exp(x))),
    "swish": (lambda x, beta=1.0: x * _chapter_sigmoid(beta * x),
              lambda x, beta=1.0: _chapter_sigmoid(beta * x) + beta * x * _chapter_sigmoid(beta * x)
              * (1 - _chapter_sigmoid(beta * x))),
}


@pytest.mark.parametrize("name", list(CHAPTER))
@given(x=hnp.arrays(np.float64, st.integers(1, 20), elements=st.floats(-30, 30) | st.just(0.0)),
       param=st.floats(0.0, 3.0))
def test_chapter_functions_agree_with_the_chapter_formulas(name, x, param):
    f_ref, df_ref = CHAPTER[name]
    kwargs = {} if name in ("sigmoid", "tanh", "relu") else {"beta" if name == "swish" else "alpha": param}
    f, df = getattr(activations, name), getattr(activations, name + "_derivative")
    np.testing.assert_allclose(f(x, **kwargs), f_ref(x, **kwargs), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(df(x, **kwargs), df_ref(x, **kwargs), rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("act", BUILTINS, ids=IDS)
@given(x=hnp.arrays(np.float64, st.integers(1, 12), elements=st.floats(-8, 8)))
def test_backprop_uses_exactly_df(act, x):
    t = Tensor(x, requires_grad=True)
    act(t).backward(np.ones_like(x))
    np.testing.assert_array_equal(t.grad, act.derivative(x))


# ---------------------------------------------------------------------- symmetries and limits
moderate = hnp.arrays(np.float64, st.integers(1, 30), elements=st.floats(-50, 50))


@given(x=moderate)
def test_sigmoid_of_minus_x_is_one_minus_sigmoid(x):
    np.testing.assert_allclose(activations.sigmoid(-x), 1 - activations.sigmoid(x), rtol=0, atol=2e-16)


@given(x=moderate)
def test_tanh_is_odd(x):
    np.testing.assert_array_equal(activations.tanh(-x), -activations.tanh(x))
    np.testing.assert_array_equal(activations.tanh_derivative(-x), activations.tanh_derivative(x))


@given(x=moderate)
def test_relu_is_leaky_relu_with_alpha_zero(x):
    np.testing.assert_array_equal(activations.relu(x), activations.leaky_relu(x, alpha=0.0))
    np.testing.assert_array_equal(activations.relu_derivative(x), activations.leaky_relu_derivative(x, alpha=0.0))


@given(x=moderate, beta=st.floats(1.0, 1e4))
def test_swish_approaches_relu_as_beta_grows(x, beta):
    # |x σ(βx) - max(x, 0)| = |x| σ(-β|x|) ≤ |x| e^{-β|x|} ≤ 1 / (e β)
    gap = np.abs(activations.swish(x, beta) - activations.relu(x))
    assert np.all(gap <= 1 / (math.e * beta) * (1 + 1e-9)), (gap.max(), 1 / (math.e * beta))


@given(alpha=st.floats(0.01, 5.0), h=st.floats(1e-300, 1e-3))
def test_elu_is_continuous_at_zero(alpha, h):
    elu = ELU(alpha)
    assert elu(np.array(0.0)) == 0.0
    assert 0 < elu(np.array(h)) <= h and -alpha * h <= elu(np.array(-h)) <= 0
    # The derivative jumps from α to 1 at 0 (it is continuous only for α = 1).
    np.testing.assert_allclose(elu.derivative(np.array(-h)), alpha, rtol=2 * h)
    assert ELU(1.0).derivative(np.array(-h)) == pytest.approx(1.0, rel=2 * h)


@given(x=moderate)
def test_softplus_is_smooth_relu_with_sigmoid_derivative(x):
    sp = Softplus()
    np.testing.assert_allclose(sp(x) - sp(-x), x, rtol=1e-12, atol=1e-12)  # log(1+e^x) - log(1+e^-x) = x
    np.testing.assert_allclose(sp.derivative(x), _sigmoid(x), rtol=1e-12, atol=1e-300)
    assert np.all(sp(x) >= np.maximum(x, 0)) and np.all(sp(x) <= np.maximum(x, 0) + math.log(2) + 1e-12)


def test_gelu_is_the_tanh_approximation_of_x_phi_x():
    x = np.linspace(-6, 6, 241)
    exact = np.array([v * 0.5 * (1 + math.erf(v / math.sqrt(2))) for v in x])
    np.testing.assert_allclose(GELU()(x), _gelu_tanh(x), rtol=1e-12, atol=1e-15)
    assert np.max(np.abs(GELU()(x) - exact)) < 1e-3  # the approximation's known error is about 5e-4


@given(data=st.data())
def test_softmax_sums_to_one_and_is_shift_invariant(data):
    arrays, kw = _axis_inputs(data)
    x, axis = arrays[0] * 10, kw["axis"]
    shift_shape = list(x.shape)
    shift_shape[axis] = 1
    c = data.draw(hnp.arrays(np.float64, tuple(shift_shape), elements=st.floats(-1e3, 1e3)), label="shift")
    p = Softmax(axis)(x)
    np.testing.assert_allclose(p.sum(axis=axis), 1.0, rtol=1e-12)
    assert np.all(p >= 0)
    np.testing.assert_allclose(Softmax(axis)(x + c), p, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(LogSoftmax(axis)(x + c), LogSoftmax(axis)(x), rtol=1e-9, atol=1e-9)


# ---------------------------------------------------------------------- extreme inputs
def _extremes(dtype):
    fi = np.finfo(dtype)
    mags = [0.0, fi.smallest_subnormal, fi.tiny, 1e-30, 1.0, 20.0, 100.0, 1e4, 1e30, fi.max]
    return np.array(mags + [-m for m in mags], dtype=dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("act", BUILTINS, ids=IDS)
def test_any_finite_input_gives_finite_values_and_gradients(act, dtype):
    x = _extremes(dtype)
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        y, d = act(x), act.derivative(x)
        t = Tensor(x, requires_grad=True)
        act(t).backward(np.ones_like(x))
        # Second derivatives too, up to 1e30 (at the very top of the range a product inside df may overflow).
        tm = Tensor(x[np.abs(x) <= 1e30], requires_grad=True)
        (g,) = tg.grad(act(tm).sum(), tm, create_graph=True)
        hess = tg.grad(g.sum(), tm, allow_unused=True)[0] if g.requires_grad else None
    for what, arr in [("value", y), ("derivative", d), ("gradient", t.grad)]:
        assert arr.dtype == dtype, f"{act}: {what} is {arr.dtype}"
        assert np.all(np.isfinite(arr)), f"{act}: {what} not finite at {x[~np.isfinite(arr)]}"
    assert hess is None or np.all(np.isfinite(hess.data))


LIMITS = {  # f(1e4), f(-1e4), f'(1e4), f'(-1e4)
    "Sigmoid()": (1, 0, 0, 0), "Tanh()": (1, -1, 0, 0), "ReLU()": (1e4, 0, 1, 0),
    "LeakyReLU(alpha=0.01)": (1e4, -100, 1, 0.01), "ELU(alpha=1.0)": (1e4, -1, 1, 0),
    "ELU(alpha=0.5)": (1e4, -0.5, 1, 0), "Swish(beta=1.0)": (1e4, 0, 1, 0), "Swish(beta=10.0)": (1e4, 0, 1, 0),
    "GELU()": (1e4, 0, 1, 0), "Softplus()": (1e4, 0, 1, 0), "Identity()": (1e4, -1e4, 1, 1),
}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", list(LIMITS))
def test_values_at_plus_minus_1e4_are_the_limits(name, dtype):
    act = BUILTINS[IDS.index(name)]
    x = np.array([1e4, -1e4], dtype=dtype)
    f_hi, f_lo, d_hi, d_lo = LIMITS[name]
    np.testing.assert_allclose(act(x), [f_hi, f_lo], rtol=1e-6, atol=0)
    np.testing.assert_allclose(act.derivative(x), [d_hi, d_lo], rtol=1e-6, atol=0)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_softmax_is_finite_for_extreme_logits(dtype):
    x = np.array([[1e4, -1e4, 0.0], [1e30, -1e30, 3.0], [-1e30, -1e30, -1e30]], dtype=dtype)
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        for layer in (Softmax(), LogSoftmax()):
            t = Tensor(x, requires_grad=True)
            out = layer(t)
            out.backward(np.ones_like(x) * np.array([1.0, 2.0, 3.0], dtype=dtype))
            assert np.all(np.isfinite(out.data)) and np.all(np.isfinite(t.grad)), layer
    np.testing.assert_allclose(Softmax()(x), [[1, 0, 0], [1, 0, 0], [1 / 3, 1 / 3, 1 / 3]], rtol=1e-6, atol=0)
    np.testing.assert_allclose(LogSoftmax()(x)[0], [0, -2e4, -1e4])


def test_softmax_rejects_an_axis_the_input_does_not_have():
    with pytest.raises(ValueError, match=r"axis 2 is out of range for an input of shape \(3, 4\)"):
        Softmax(axis=2)(np.zeros((3, 4)))
    with pytest.raises(ValueError, match="out of range"):
        F.softmax(Tensor(np.float32(1.0)))


# ---------------------------------------------------------------------- three ways to use one
FUNCTIONAL = [(F.relu, ReLU()), (F.sigmoid, Sigmoid()), (F.tanh, Tanh()), (F.leaky_relu, LeakyReLU()),
              (F.elu, ELU()), (F.swish, Swish()), (F.silu, Swish()), (F.gelu, GELU()), (F.softplus, Softplus()),
              (F.softmax, Softmax()), (F.log_softmax, LogSoftmax())]


@pytest.mark.parametrize(("fn", "layer"), FUNCTIONAL, ids=[f.__name__ for f, _ in FUNCTIONAL])
def test_functional_layer_and_ndarray_forms_agree(fn, layer):
    x = np.linspace(-4, 4, 12, dtype=np.float32).reshape(3, 4)
    on_array = fn(x)
    assert type(on_array) is np.ndarray and on_array.dtype == np.float32
    t = Tensor(x, requires_grad=True)
    out = fn(t)
    assert isinstance(out, Tensor) and out.requires_grad
    np.testing.assert_array_equal(out.data, on_array)
    np.testing.assert_array_equal(layer(t).data, on_array)
    nn_layer = getattr(nn, type(layer).__name__)()
    assert isinstance(nn_layer, nn.Layer) and nn_layer.parameters() == []
    np.testing.assert_array_equal(nn_layer(x), on_array)


def test_tensor_methods_are_the_builtin_activations():
    x = np.linspace(-3, 3, 7)
    for method, act in [("relu", ReLU()), ("sigmoid", Sigmoid()), ("tanh", Tanh())]:
        np.testing.assert_array_equal(getattr(Tensor(x), method)().data, act(x))


def test_plotting_inputs_need_not_be_float_arrays():
    np.testing.assert_array_equal(ReLU()([-1, 0, 2]), [0.0, 0.0, 2.0])
    assert ReLU()(np.arange(3)).dtype == np.float64
    np.testing.assert_array_equal(activations.relu_derivative([-1, 2]), [0.0, 1.0])


def test_activations_are_found_by_name_class_or_instance():
    assert isinstance(activations.get("leaky_relu"), LeakyReLU)
    assert isinstance(activations.get("GELU"), GELU)
    assert isinstance(activations.get("softmax"), Softmax)
    assert isinstance(activations.get(Swish), Swish)
    elu = ELU(0.3)
    assert activations.get(elu) is elu
    with pytest.raises(ValueError, match=r"unknown activation 'relu6'.*'leakyrelu'"):
        activations.get("relu6")


def test_repr_shows_the_parameters():
    assert repr(LeakyReLU(0.2)) == "LeakyReLU(alpha=0.2)"
    assert repr(Swish(2.0)) == "Swish(beta=2.0)"
    assert repr(Softmax(0)) == "Softmax(axis=0)"


# ---------------------------------------------------------------------- user-written activations
class SoftSign(Activation):
    """x / (1 + |x|), with its derivative written with operators so that it also works on Tensors."""

    def f(self, x):
        return x / (1 + np.abs(x))

    def df(self, x, y):
        return 1 / ((1 + abs(x)) ** 2)


class WrongSoftSign(SoftSign):
    def df(self, x, y):
        return 1 / (1 + abs(x))  # forgot the square


class NumpyWritten(Activation):
    """e^x - x, whose derivative calls numpy directly (np.exp has a gradient on Tensors)."""

    def f(self, x):
        return np.exp(x) - x

    def df(self, x, y):
        return np.exp(x) - 1


class NumpyOnly(Activation):
    """sinh x, whose derivative calls a numpy function that has no gradient on Tensors."""

    def f(self, x):
        return np.sinh(x)

    def df(self, x, y):
        return np.cosh(x)


class ConvertsToArray(NumpyWritten):
    """The derivative turns x into a plain array first, which would cut the graph."""

    def df(self, x, y):
        return np.exp(np.asarray(x)) - 1


def _points():
    return np.array([-2.5, -0.7, 0.3, 1.1, 2.0])


def test_gradcheck_accepts_a_correct_user_activation():
    assert tg.gradcheck(SoftSign(), Tensor(_points(), requires_grad=True))


def test_gradcheck_catches_a_user_activation_with_a_wrong_derivative():
    with pytest.raises(tg.GradcheckError, match=r"WrongSoftSign: df\(x\) against central differences"):
        tg.gradcheck(WrongSoftSign(), Tensor(_points(), requires_grad=True))


def test_user_activation_written_with_operators_has_second_derivatives():
    t = Tensor(_points(), requires_grad=True)
    (g,) = tg.grad(SoftSign()(t).sum(), t, create_graph=True)
    (h,) = tg.grad(g.sum(), t)
    x = _points()
    np.testing.assert_allclose(h.data, -2 * np.sign(x) / (1 + np.abs(x)) ** 3, rtol=1e-12)


def test_user_activation_written_in_numpy_has_second_derivatives():
    t = Tensor(_points(), requires_grad=True)
    (g,) = tg.grad(NumpyWritten()(t).sum(), t, create_graph=True)
    (h,) = tg.grad(g.sum(), t)
    np.testing.assert_allclose(h.data, np.exp(_points()), rtol=1e-12)


@pytest.mark.parametrize("act", [NumpyOnly(), ConvertsToArray()], ids=["no-gradient-function", "asarray"])
def test_user_activation_that_would_cut_the_graph_works_first_order_and_says_why_not_second(act):
    assert tg.gradcheck(act, Tensor(_points(), requires_grad=True))
    t = Tensor(_points(), requires_grad=True)
    name = type(act).__name__
    with pytest.raises(NotImplementedError, match=rf"{name}: second derivatives need df\(x, y\) written with"):
        tg.grad(act(t).sum(), t, create_graph=True)


def test_user_activation_is_a_layer_with_ops_helpers():
    class Mish(Activation):
        """x tanh(softplus(x)), derivative written with tinygrad_jp.ops."""

        def f(self, x):
            return x * np.tanh(np.logaddexp(0, x))

        def df(self, x, y):
            t = ops.tanh(Softplus()(x))
            return t + x * (1 - t * t) * Sigmoid()(x)

    assert tg.gradcheck(Mish(), Tensor(_points(), requires_grad=True))
    t = Tensor(_points(), requires_grad=True)
    (g,) = tg.grad(Mish()(t).sum(), t, create_graph=True)
    assert g.requires_grad
