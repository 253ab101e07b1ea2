"""numpy functions on Tensors: the chapter's numpy code, applied to Tensors, builds the graph and is differentiated."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import tinygrad_jp as tg
from tinygrad_jp import Tensor
from tinygrad_jp.activations import ELU, LeakyReLU, ReLU, Sigmoid, Swish, Tanh


# ---------------------------------------------------------------------- the chapter's six functions
# Written exactly as the chapter writes them (第3章), for ndarrays; here they receive Tensors.
def chapter_sigmoid(x):
    return 1 / (1 + np.exp(-np.clip(x, -500, 500)))


def plain_sigmoid(x):
    return 1 / (1 + np.exp(-x))


def chapter_tanh(x):
    return np.tanh(x)


def chapter_relu(x):
    return np.maximum(0, x)


def chapter_leaky_relu(x, alpha=0.01):
    return np.where(x > 0, x, alpha * x)


def chapter_elu(x, alpha=1.0):
    return np.where(x > 0, x, alpha * (np.exp(x) - 1))


def chapter_swish(x, beta=1.0):
    return x / (1 + np.exp(-beta * x))


def swish_as_x_sigmoid(x, beta=1.0):
    return x * plain_sigmoid(beta * x)


# (name, chapter function, built-in activation, smooth everywhere) for a parameter p drawn per example.
PAIRS = [
    ("sigmoid", lambda x, p: chapter_sigmoid(x), lambda p: Sigmoid(), True),
    ("sigmoid without clip", lambda x, p: plain_sigmoid(x), lambda p: Sigmoid(), True),
    ("tanh", lambda x, p: chapter_tanh(x), lambda p: Tanh(), True),
    ("relu", lambda x, p: chapter_relu(x), lambda p: ReLU(), False),
    ("leaky_relu", lambda x, p: chapter_leaky_relu(x, p), lambda p: LeakyReLU(p), False),
    ("elu", lambda x, p: chapter_elu(x, p), lambda p: ELU(p), False),
    ("swish", lambda x, p: chapter_swish(x, p), lambda p: Swish(p), True),
    ("swish as x·σ(βx)", lambda x, p: swish_as_x_sigmoid(x, p), lambda p: Swish(p), True),
]
IDS = [name for name, *_ in PAIRS]

# Away from the kink at 0; |x| ≤ 30 keeps the chapter's ELU and sigmoid clear of overflow (see below).
points = hnp.arrays(
    np.float64, st.integers(1, 8), elements=st.floats(-30, 30).filter(lambda v: abs(v) > 1e-3)
)
params = st.floats(0.05, 2.0)


@pytest.mark.parametrize(("name", "chapter", "builtin", "smooth"), PAIRS, ids=IDS)
@given(x=points, p=params)
def test_chapter_function_on_tensors_gives_the_builtin_value_and_gradient(name, chapter, builtin, smooth, x, p):
    t, u = Tensor(x, requires_grad=True), Tensor(x, requires_grad=True)
    y, ref = chapter(t, p), builtin(p)(u)
    assert isinstance(y, Tensor) and y.requires_grad
    np.testing.assert_allclose(y.data, ref.data, rtol=1e-9, atol=1e-12)
    v = np.random.default_rng(0).uniform(0.5, 1.5, size=x.shape)
    y.backward(v)
    ref.backward(v)
    np.testing.assert_allclose(t.grad, u.grad, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize(("name", "chapter", "builtin", "smooth"), [p for p in PAIRS if p[3] or p[0] == "elu"],
                         ids=[p[0] for p in PAIRS if p[3] or p[0] == "elu"])
@given(x=points, p=params)
def test_chapter_function_on_tensors_has_the_builtin_second_derivative(name, chapter, builtin, smooth, x, p):
    def second(fn):
        t = Tensor(x, requires_grad=True)
        (g,) = tg.grad(fn(t).sum(), t, create_graph=True)
        (h,) = tg.grad(g.sum(), t)
        return h.data

    np.testing.assert_allclose(second(lambda t: chapter(t, p)), second(builtin(p)), rtol=1e-7, atol=1e-10)


@pytest.mark.parametrize(("name", "chapter", "builtin", "smooth"), PAIRS, ids=IDS)
def test_chapter_function_keeps_float32(name, chapter, builtin, smooth):
    t = Tensor(np.linspace(-3, 3, 7, dtype=np.float32), requires_grad=True)
    y = chapter(t, 0.5)
    y.sum().backward()
    assert y.dtype == np.float32 and t.grad.dtype == np.float32


# The chapter's ELU computes np.exp(x) on both branches: past the largest x whose e^x is finite, the
# discarded branch is inf, and backward multiplies that inf by the 0 the other branch leaves: NaN.
@pytest.mark.parametrize(("dtype", "last_finite"), [(np.float64, 709.0), (np.float32, 88.0)])
def test_chapter_elu_gradient_breaks_where_exp_overflows_and_ours_does_not(dtype, last_finite):
    def chapter_grad(v):
        t = Tensor(np.array([v], dtype=dtype), requires_grad=True)
        with np.errstate(over="ignore", invalid="ignore"):
            chapter_elu(t).sum().backward()
        return t.grad[0]

    assert chapter_grad(last_finite) == 1.0
    assert np.isnan(chapter_grad(last_finite + 1))
    t = Tensor(np.array([last_finite + 1, 1e30], dtype=dtype), requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        tg.nn.ELU()(t).sum().backward()
    np.testing.assert_array_equal(t.grad, [1.0, 1.0])


# The chapter's clip at ±500 protects float64 only: in float32, e^x already overflows past 88.
def test_chapter_sigmoid_clip_protects_float64_but_not_float32():
    def grad(dtype, v):
        t = Tensor(np.array([v], dtype=dtype), requires_grad=True)
        with np.errstate(over="ignore", invalid="ignore"):
            chapter_sigmoid(t).sum().backward()
        return t.grad[0]

    assert grad(np.float64, -1000.0) == 0.0
    assert np.isfinite(grad(np.float32, -88.0))
    assert np.isnan(grad(np.float32, -89.0))


# ---------------------------------------------------------------------- the protocol
def _x():
    return Tensor(np.array([-2.0, -0.5, 0.5, 2.0]), requires_grad=True)


def test_where_with_a_boolean_array_condition_is_differentiable():
    x = _x()
    np.where(x > 0, x, 0.01 * x).sum().backward()
    np.testing.assert_array_equal(x.grad, [0.01, 0.01, 1.0, 1.0])


@pytest.mark.parametrize("fn", [lambda x: np.maximum(0, x), lambda x: np.maximum(x, 0)],
                         ids=["scalar first", "scalar second"])
def test_maximum_with_a_scalar_on_either_side(fn):
    x = _x()
    y = fn(x)
    y.sum().backward()
    np.testing.assert_array_equal(y.data, [0.0, 0.0, 0.5, 2.0])
    np.testing.assert_array_equal(x.grad, [0.0, 0.0, 1.0, 1.0])


# (operator spelling, numpy spelling) with the ndarray on either side of the Tensor.
MIXED = [
    (lambda a, t: a * t, lambda a, t: np.multiply(a, t)),
    (lambda a, t: t * a, lambda a, t: np.multiply(t, a)),
    (lambda a, t: a - t, lambda a, t: np.subtract(a, t)),
    (lambda a, t: t - a, lambda a, t: np.subtract(t, a)),
    (lambda a, t: a / t, lambda a, t: np.divide(a, t)),
    (lambda a, t: t / a, lambda a, t: np.divide(t, a)),
]


@pytest.mark.parametrize(("operator_form", "numpy_form"), MIXED, ids=["a*t", "t*a", "a-t", "t-a", "a/t", "t/a"])
@given(a=hnp.arrays(np.float64, 4, elements=st.floats(0.5, 3)), x=hnp.arrays(np.float64, 4, elements=st.floats(0.5, 3)))
def test_ndarray_and_tensor_mix_either_way_round(operator_form, numpy_form, a, x):
    grads = []
    for form in (operator_form, numpy_form):
        t = Tensor(x, requires_grad=True)
        y = form(a, t)
        assert isinstance(y, Tensor) and y.requires_grad
        np.testing.assert_array_equal(y.data, form(a, x))
        y.sum().backward()
        grads.append(t.grad)
    np.testing.assert_array_equal(grads[0], grads[1])


def test_matmul_with_an_ndarray_on_the_left():
    w = Tensor(np.ones((3, 2)), requires_grad=True)
    (np.ones((4, 3)) @ w).sum().backward()
    np.testing.assert_array_equal(w.grad, np.full((3, 2), 4.0))


def test_under_no_grad_results_do_not_require_grad():
    x = _x()
    with tg.no_grad():
        outs = [np.exp(x), np.maximum(0, x), np.sum(x), np.where(x > 0, x, 0), np.ones(4) * x, np.dot(x, x)]
    assert all(isinstance(y, Tensor) and not y.requires_grad for y in outs)
    assert np.exp(x).requires_grad


COMPARISONS = [np.greater, np.greater_equal, np.less, np.less_equal, np.equal, np.not_equal]


@pytest.mark.parametrize("ufunc", COMPARISONS, ids=lambda u: u.__name__)
def test_comparisons_give_boolean_arrays_as_the_operators_do(ufunc):
    x, a = _x(), np.array([0.0, -0.5, 1.0, 2.0])
    for result, expected in [(ufunc(x, a), ufunc(x.data, a)), (ufunc(a, x), ufunc(a, x.data)),
                             (ufunc(x, 0.5), ufunc(x.data, 0.5))]:
        assert type(result) is np.ndarray and result.dtype == bool
        np.testing.assert_array_equal(result, expected)
    np.testing.assert_array_equal(np.zeros(4) < x, x > 0)


def test_predicates_give_boolean_arrays():
    x = Tensor(np.array([1.0, np.inf, np.nan]))
    np.testing.assert_array_equal(np.isfinite(x), [True, False, False])
    np.testing.assert_array_equal(np.isnan(x), [False, False, True])


@pytest.mark.parametrize("kwargs", [{"out": np.zeros(4)}, {"where": np.ones(4, dtype=bool)}, {"dtype": np.float32}],
                         ids=["out", "where", "dtype"])
def test_ufunc_keyword_arguments_are_refused_naming_the_ufunc_and_the_argument(kwargs):
    (key,) = kwargs
    with pytest.raises(TypeError, match=rf"np\.exp: the argument {key}= is not supported on Tensors"):
        np.exp(_x(), **kwargs)


def test_in_place_operator_into_an_ndarray_is_refused_and_leaves_it_unchanged():
    a = np.ones(4)
    with pytest.raises(TypeError, match=r"np\.add: the argument out= .* write a = a \+ t"):
        a += _x()
    np.testing.assert_array_equal(a, np.ones(4))


@pytest.mark.parametrize(("ufunc", "reduction"), [(np.add, np.sum), (np.maximum, np.max), (np.minimum, np.min)])
def test_ufunc_reduce_is_the_reduction_op(ufunc, reduction):
    x = Tensor(np.arange(6.0).reshape(2, 3), requires_grad=True)
    for kwargs in [{}, {"axis": 1}, {"axis": None, "keepdims": True}]:
        y = ufunc.reduce(x, **kwargs)
        assert isinstance(y, Tensor)
        np.testing.assert_array_equal(y.data, ufunc.reduce(x.data, **kwargs))
    np.add.reduce(x, axis=0).sum().backward()
    np.testing.assert_array_equal(x.grad, np.ones((2, 3)))


@pytest.mark.parametrize(
    ("call", "name"),
    [(lambda x: np.multiply.reduce(x), "np.multiply.reduce"), (lambda x: np.add.accumulate(x), "np.add.accumulate"),
     (lambda x: np.add.at(x, [0], 1.0), "np.add.at"), (lambda x: np.add.reduceat(x, [0, 2]), "np.add.reduceat"),
     (lambda x: np.add.reduce(x, dtype=np.float32), "np.add.reduce: the argument dtype=")],
    ids=["multiply.reduce", "accumulate", "at", "reduceat", "reduce dtype"],
)
def test_other_ufunc_methods_are_refused_naming_them(call, name):
    x = _x()
    before = x.data.copy()
    with pytest.raises(TypeError, match=rf"^{name}"):
        call(x)
    np.testing.assert_array_equal(x.data, before)


UNSUPPORTED = [
    (lambda x: np.cumsum(x), "np.cumsum"),
    (lambda x: np.prod(x), "np.prod"),
    (lambda x: np.sort(x), "np.sort"),
    (lambda x: np.median(x), "np.median"),
    (lambda x: np.round(x), "np.round"),
    (lambda x: np.linalg.norm(x), "np.linalg.norm"),
    (lambda x: np.sign(x), "np.sign"),
    (lambda x: np.floor(x), "np.floor"),
    (lambda x: np.sinh(x), "np.sinh"),
    (lambda x: np.arctan2(x, 1.0), "np.arctan2"),
]


@pytest.mark.parametrize(("call", "name"), UNSUPPORTED, ids=[n for _, n in UNSUPPORTED])
def test_a_numpy_function_without_a_gradient_raises_naming_it(call, name):
    with pytest.raises(TypeError, match=rf"^{name} is not supported on Tensors"):
        call(_x())


def test_unsupported_arguments_of_a_function_are_refused_naming_it():
    with pytest.raises(TypeError, match=r"np\.sum on Tensors takes .*'out'"):
        np.sum(_x(), out=np.zeros(()))
    with pytest.raises(TypeError, match=r"np\.where on Tensors takes \(condition, x, y\)"):
        np.where(_x())


def test_shape_only_and_index_functions_give_constant_arrays():
    x = Tensor(np.arange(6.0, dtype=np.float32).reshape(2, 3), requires_grad=True)
    for fn in (np.zeros_like, np.ones_like):
        z = fn(x)
        assert type(z) is np.ndarray and z.shape == (2, 3) and z.dtype == np.float32
    np.testing.assert_array_equal(np.full_like(x, 7.0), np.full((2, 3), 7.0))
    assert np.shape(x) == (2, 3) and np.ndim(x) == 2 and np.size(x) == 6
    assert np.argmax(x) == 5 and np.allclose(x, x.data)


def test_asarray_and_array_are_the_explicit_way_out_of_the_graph():
    x = _x()
    assert np.asarray(x) is x.data
    c = np.array(x)
    np.testing.assert_array_equal(c, x.data)
    c[0] = 100.0  # a copy, as np.array promises: the Tensor is untouched
    assert x.data[0] == -2.0
    assert np.asarray(x, dtype=np.float32).dtype == np.float32


def test_clip_with_constant_array_bounds_passes_the_gradient_inside_only():
    x = _x()
    np.clip(x, np.array([-1.0, -1.0, 0.0, 0.0]), 1.0).sum().backward()
    np.testing.assert_array_equal(x.grad, [0.0, 1.0, 1.0, 0.0])


def test_another_librarys_array_gets_its_turn():
    class Other:
        def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
            return "handled by Other"

        def __array_function__(self, func, types, args, kwargs):
            return "handled by Other"

    assert np.add(_x(), Other()) == "handled by Other"
    assert np.concatenate([_x(), Other()]) == "handled by Other"


def test_the_api_reference_lists_every_numpy_function_that_works_on_tensors():
    from pathlib import Path

    from tinygrad_jp import numpy_api

    text = (Path(__file__).resolve().parent.parent / "docs" / "api.md").read_text(encoding="utf-8")
    section = text.split("## numpy の関数を Tensor に")[1].split("\n## ")[0]
    tables = [numpy_api.UFUNCS, numpy_api.BOOLEAN_UFUNCS, numpy_api.FUNCTIONS, numpy_api.CONSTANT_FUNCTIONS]
    missing = sorted(f.__name__ for table in tables for f in table if f"`np.{f.__name__}`" not in section)
    assert not missing, f"api.md does not list {missing}"
