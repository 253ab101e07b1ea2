"""Numerical safety: every activation, loss and op with a dangerous form (exp, log, softmax, sigmoid,
softplus, ELU, pow, division) gives finite values and finite gradients at the extremes of float32
and float64 (0, ±denormals, ±1e4, ±1e30, up to the largest finite numbers where the result itself
is representable), with no overflow, invalid-value or divide-by-zero warning, and keeps the dtype.

Where the true result is not a finite number of the dtype, the op is legitimately infinite and is
not tested here:

* exp(x) for x above log(max): about 88.7 in float32 and 709.8 in float64.
* log(0) = -inf, and d log(x)/dx = 1/x beyond max for denormal x (below 1/max ≈ 2.9e-39 in float32).
* 1/0, and 1/x or its gradient -1/x² once |x| is below 1/max or 1/√max.
* √x has gradient 1/(2√x) = inf at 0.
* x², mse_loss and var overflow once |x| (or the difference) is above √max (about 1.8e19 in float32).
* softmax and log_softmax subtract the row maximum: a row whose spread max - min exceeds max
  overflows in that subtraction (the softmax values stay correct, but numpy warns), so rows here
  are drawn within ±max/2.
* Mean losses add N terms before dividing: cross entropy of logits near max can overflow in that
  sum, so losses are driven with logits up to ±1e30 (a loss of 1e30 is already meaningless).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import tinygrad_jp as tg
from tinygrad_jp import F, Tensor, activations, nn

DTYPES = [np.float32, np.float64]


def _specials(dtype) -> list[float]:
    """The values that break naive formulas, in this dtype."""
    fi = np.finfo(dtype)
    tiny_denormal = float(fi.smallest_subnormal)
    out = [0.0, -0.0, tiny_denormal, -tiny_denormal, float(fi.smallest_normal), -float(fi.smallest_normal),
           1e-30, -1e-30, 1.0, -1.0, 20.0, -20.0, 88.0, -88.0, 89.0, -89.0, 104.0, -104.0, 710.0, -710.0,
           750.0, -750.0, 1e4, -1e4, 1e30, -1e30, float(fi.max), -float(fi.max)]
    if dtype == np.float64:
        out += [1e300, -1e300, 1e-300, -1e-300]
    return out


def _bound(dtype, value: float) -> float:
    """`value` rounded towards zero to the dtype, so hypothesis accepts it as a bound of that width."""
    v = np.array(value, dtype=np.float64).astype(dtype) if abs(value) <= np.finfo(dtype).max else None
    v = np.finfo(dtype).max * np.sign(value) if v is None else v
    if abs(float(v)) > abs(value):
        v = np.nextafter(v, np.zeros((), dtype))
    return float(v)


def values(dtype, lo: float, hi: float) -> st.SearchStrategy[float]:
    lo, hi = _bound(dtype, lo), _bound(dtype, hi)
    width = 32 if dtype == np.float32 else 64
    special = [v for v in _specials(dtype) if lo <= v <= hi and (v != 0 or lo <= 0 <= hi)]
    spread = st.floats(lo, hi, width=width, allow_nan=False, allow_infinity=False)
    return st.one_of(st.sampled_from(special), spread) if special else spread


@dataclass
class Danger:
    name: str
    fn: Callable[[Tensor], Tensor]
    lo: Callable[[type], float]
    hi: Callable[[type], float]
    shape: tuple = (6,)

    def __repr__(self) -> str:
        return self.name


def _max(dtype) -> float:
    return float(np.finfo(dtype).max)


def full(dtype) -> float:
    return _max(dtype)


def half(dtype) -> float:
    return _max(dtype) / 2


def root(dtype) -> float:
    return float(np.sqrt(_max(dtype))) / 4


def _labels(n: int, c: int) -> np.ndarray:
    return np.arange(n) % c


ELEMENTWISE_ACTIVATIONS = [
    nn.Sigmoid(), nn.Tanh(), nn.ReLU(), nn.LeakyReLU(0.01), nn.LeakyReLU(3.0), nn.ELU(1.0), nn.ELU(2.5),
    nn.Swish(1.0), nn.Swish(5.0), nn.Swish(0.1), nn.GELU(), nn.Softplus(), nn.Identity(),
]

DANGERS = [
    # αx with α > 1 legitimately overflows for x below -max/α.
    *[Danger(repr(a), a, lambda d, a=a: -full(d) / max(1.0, getattr(a, "alpha", 1.0)), full)
      for a in ELEMENTWISE_ACTIVATIONS],
    Danger("Tensor.sigmoid", lambda t: t.sigmoid(), lambda d: -full(d), full),
    Danger("Tensor.tanh", lambda t: t.tanh(), lambda d: -full(d), full),
    Danger("F.softplus", F.softplus, lambda d: -full(d), full),
    Danger("F.elu", F.elu, lambda d: -full(d), full),
    Danger("F.gelu", F.gelu, lambda d: -full(d), full),
    Danger("F.silu", F.silu, lambda d: -full(d), full),
    Danger("softmax", lambda t: F.softmax(t), lambda d: -half(d), half, (2, 3)),
    Danger("softmax axis 0", lambda t: F.softmax(t, axis=0), lambda d: -half(d), half, (3, 2)),
    Danger("log_softmax", lambda t: F.log_softmax(t), lambda d: -half(d), half, (2, 3)),
    Danger("softmax_cross_entropy", lambda t: F.softmax_cross_entropy(t, _labels(*t.shape)),
           lambda d: -1e30, lambda d: 1e30, (3, 4)),
    Danger("softmax_cross_entropy one-hot",
           lambda t: F.softmax_cross_entropy(t, np.eye(t.shape[1])[_labels(*t.shape)]),
           lambda d: -1e30, lambda d: 1e30, (3, 4)),
    Danger("binary_cross_entropy_with_logits",
           lambda t: F.binary_cross_entropy_with_logits(t, np.linspace(0, 1, t.size).reshape(t.shape)),
           lambda d: -1e30, lambda d: 1e30),
    Danger("mse_loss", lambda t: F.mse_loss(t, np.zeros(t.shape)), lambda d: -root(d), root),
    Danger("exp", lambda t: t.exp(), lambda d: -full(d), lambda d: float(np.log(_max(d))) - 1),
    Danger("log", lambda t: t.log(), lambda d: float(np.finfo(d).smallest_normal), full),
    Danger("sqrt", lambda t: t.sqrt(), lambda d: float(np.finfo(d).smallest_subnormal), full),
    Danger("x ** 2", lambda t: t**2, lambda d: -root(d), root),
    Danger("x ** 0.5", lambda t: t**0.5, lambda d: 1e-30, full),
    Danger("x ** -1", lambda t: t**-1.0, lambda d: 1e-15, lambda d: 1e15),
    Danger("2 ** x", lambda t: 2.0**t, lambda d: -1e30, lambda d: float(np.log2(_max(d))) - 1),
    Danger("x / 3", lambda t: t / 3.0, lambda d: -full(d), full),
    Danger("3 / x", lambda t: 3.0 / t, lambda d: 1e-15, lambda d: 1e15),
    Danger("x / (1 + |x|)", lambda t: t / (t.abs() + 1.0), lambda d: -half(d), half),
    Danger("abs", lambda t: t.abs(), lambda d: -full(d), full),
    Danger("sin", lambda t: t.sin(), lambda d: -full(d), full),
    Danger("maximum", lambda t: t.maximum(0.0), lambda d: -full(d), full),
    Danger("mean", lambda t: t.mean(), lambda d: -1e30, lambda d: 1e30),
    Danger("max", lambda t: t.max(axis=0), lambda d: -full(d), full),
    Danger("var", lambda t: t.var(), lambda d: -root(d) / 4, lambda d: root(d) / 4),
]


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("danger", DANGERS, ids=[d.name for d in DANGERS])
@given(data=st.data())
def test_finite_values_and_gradients_at_the_extremes(danger, dtype, data):
    x = data.draw(hnp.arrays(dtype, danger.shape, elements=values(dtype, danger.lo(dtype), danger.hi(dtype))),
                  label="x")
    t = Tensor(x, requires_grad=True)
    # Raise on overflow, invalid value or division by zero anywhere in numpy (underflow to 0 is fine).
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        y = danger.fn(t)
        # Upstream ones of y's shape: summing y first could itself overflow.
        y.backward(np.ones(y.shape, dtype=dtype))
    assert y.dtype == dtype and t.grad.dtype == dtype
    assert np.all(np.isfinite(y.data)), f"{danger.name}({x}) = {y.data}"
    assert np.all(np.isfinite(t.grad)), f"gradient of {danger.name} at {x} is {t.grad}"


CHAPTER_FUNCTIONS = [
    activations.sigmoid, activations.sigmoid_derivative, activations.tanh, activations.tanh_derivative,
    activations.relu, activations.relu_derivative, activations.leaky_relu, activations.leaky_relu_derivative,
    activations.elu, activations.elu_derivative, activations.swish, activations.swish_derivative,
]


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("fn", CHAPTER_FUNCTIONS, ids=[f.__name__ for f in CHAPTER_FUNCTIONS])
@given(data=st.data())
def test_the_chapters_numpy_functions_are_finite_at_the_extremes(fn, dtype, data):
    x = data.draw(hnp.arrays(dtype, 8, elements=values(dtype, -full(dtype), full(dtype))), label="x")
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        y = fn(x)
    assert y.dtype == dtype and np.all(np.isfinite(y))


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("act", ELEMENTWISE_ACTIVATIONS, ids=[repr(a) for a in ELEMENTWISE_ACTIVATIONS])
def test_second_derivatives_of_activations_are_finite_up_to_1e4(act, dtype):
    # Beyond that, intermediate products of the differentiated derivative (x times a factor near 100 in
    # GELU's) overflow although the second derivative itself is 0 there.
    x = np.array([v for v in _specials(dtype) if abs(v) <= 1e4], dtype=dtype)
    t = Tensor(x, requires_grad=True)
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        (g,) = tg.grad(act(t), t, grad_outputs=np.ones_like(x), create_graph=True)
        try:
            (gg,) = tg.grad(g, t, grad_outputs=np.ones_like(x))
        except RuntimeError:  # the derivative is piecewise constant: nothing connects it to x
            gg = Tensor(np.zeros_like(x))
    assert np.all(np.isfinite(g.data)) and np.all(np.isfinite(gg.data))


def test_the_chapters_elu_formula_overflows_where_ours_does_not():
    """The chapter writes np.where(x > 0, x, α(e^x - 1)), which evaluates e^x for every x."""
    x = np.array([1e4, -1e4, 0.5], dtype=np.float32)
    with np.errstate(over="raise"), pytest.raises(FloatingPointError):
        np.where(x > 0, x, np.exp(x) - 1)
    with np.errstate(over="raise", invalid="raise"):
        np.testing.assert_array_equal(activations.elu(x), np.array([1e4, -1.0, 0.5], dtype=np.float32))


def test_cross_entropy_of_huge_logits_is_exact():
    logits = Tensor(np.array([[1e30, -1e30, 0.0], [0.0, 1e4, -1e4]], dtype=np.float32), requires_grad=True)
    loss = F.softmax_cross_entropy(logits, np.array([0, 0]))
    loss.backward()
    # Row 0 is certain and right (loss 0); row 1 is wrong by a margin of 1e4 (loss 1e4).
    assert loss.item() == pytest.approx(1e4 / 2, rel=1e-6)
    np.testing.assert_allclose(logits.grad, np.array([[0, 0, 0], [-0.5, 0.5, 0]]), atol=1e-7)
