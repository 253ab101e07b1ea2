"""The property harness every differentiable op goes through.

An ``OpSpec`` names an op on Tensors, the same function written in plain numpy, and a hypothesis
strategy for its inputs (shapes and values kept off kinks and poles). From one spec the checks
below test: forward equals numpy; backward equals central differences of the numpy function for a
random upstream gradient; each gradient has its operand's shape and dtype; inputs are not mutated;
and (where the op is twice differentiable) Hessian-vector products equal differences of gradients.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import tinygrad_jp as tg
from tinygrad_jp import Tensor

EPS = 1e-6


@dataclass
class OpSpec:
    name: str
    op: Callable[..., Tensor]
    ref: Callable[..., np.ndarray]
    inputs: Callable[[st.DataObject], tuple[list[np.ndarray], dict]]
    second_order: bool = True
    atol: float = 1e-6
    rtol: float = 1e-4
    kwargs: dict = field(default_factory=dict)

    def __repr__(self) -> str:
        return self.name


# ---------------------------------------------------------------------- input strategies
def values(shape, lo: float = -3.0, hi: float = 3.0, away_from: tuple[float, ...] = (), gap: float = 0.05):
    """Float64 arrays in [lo, hi], every element at least `gap` from each point in `away_from`."""
    elems = st.floats(lo, hi, allow_nan=False, allow_infinity=False, width=64)
    if away_from:
        elems = elems.filter(lambda v: all(abs(v - k) >= gap for k in away_from))
    return hnp.arrays(np.float64, shape, elements=elems)


def distinct_values(shape, lo: float = -3.0, hi: float = 3.0, gap: float = 0.01):
    """Arrays whose elements are pairwise at least `gap` apart (no ties for max/min)."""
    n = int(np.prod(shape))
    grid = np.linspace(lo, hi, max(n, 2) * 4)
    return st.permutations(list(range(len(grid)))).map(lambda perm: grid[perm[:n]].reshape(shape))


SHAPES = hnp.array_shapes(min_dims=0, max_dims=3, min_side=1, max_side=4)


def unary(lo=-3.0, hi=3.0, away_from=(), shapes=SHAPES):
    def draw(data):
        shape = data.draw(shapes, label="shape")
        return [data.draw(values(shape, lo, hi, away_from), label="x")], {}

    return draw


def binary(lo=(-3.0, -3.0), hi=(3.0, 3.0), away_from=((), ())):
    """Two arrays of any mutually broadcastable shapes."""

    def draw(data):
        shapes = data.draw(hnp.mutually_broadcastable_shapes(num_shapes=2, max_dims=3, max_side=4), label="shapes")
        arrays = [
            data.draw(values(s, lo[i], hi[i], away_from[i]), label=f"x{i}") for i, s in enumerate(shapes.input_shapes)
        ]
        return arrays, {}

    return draw


def reduction(distinct: bool = False):
    """An array with an axis argument (None, one axis or several) and keepdims."""

    def draw(data):
        shape = data.draw(hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=4), label="shape")
        x = data.draw(distinct_values(shape) if distinct else values(shape), label="x")
        axis = data.draw(
            st.none() | st.integers(-len(shape), len(shape) - 1) | hnp.valid_tuple_axes(len(shape), min_size=1),
            label="axis",
        )
        keepdims = data.draw(st.booleans(), label="keepdims")
        return [x], {"axis": axis, "keepdims": keepdims}

    return draw


# ---------------------------------------------------------------------- numerics
def numerical_grad(f: Callable[[list[np.ndarray]], float], arrays: list[np.ndarray], i: int) -> np.ndarray:
    """Central differences of the scalar f with respect to arrays[i], element by element."""
    x = arrays[i]
    out = np.zeros(x.shape)
    for idx in np.ndindex(x.shape):
        orig = x[idx]
        x[idx] = orig + EPS
        hi = f(arrays)
        x[idx] = orig - EPS
        lo = f(arrays)
        x[idx] = orig
        out[idx] = (hi - lo) / (2 * EPS)
    return out


def _weights(shape, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(0.5, 1.5, size=shape)


def _close(actual, expected, spec: OpSpec, what: str) -> None:
    np.testing.assert_allclose(actual, expected, rtol=spec.rtol, atol=spec.atol, err_msg=f"{spec.name}: {what}")


def _run_numpy(spec: OpSpec, arrays, kwargs):
    with np.errstate(all="ignore"):
        return np.asarray(spec.ref(*arrays, **kwargs), dtype=np.float64)


# ---------------------------------------------------------------------- the checks
def check_forward(spec: OpSpec, arrays, kwargs) -> None:
    expected = _run_numpy(spec, arrays, kwargs)
    assume(np.all(np.isfinite(expected)))
    out = spec.op(*[Tensor(a) for a in arrays], **kwargs)
    assert isinstance(out, Tensor), f"{spec.name}: returned {type(out).__name__}"
    assert out.shape == expected.shape, f"{spec.name}: shape {out.shape}, numpy gives {expected.shape}"
    _close(out.data, expected, spec, "forward differs from numpy")


def check_backward(spec: OpSpec, arrays, kwargs) -> None:
    expected = _run_numpy(spec, arrays, kwargs)
    assume(np.all(np.isfinite(expected)))
    v = _weights(expected.shape)
    ts = [Tensor(a.copy(), requires_grad=True) for a in arrays]
    spec.op(*ts, **kwargs).backward(v)
    work = [a.copy() for a in arrays]
    for i, t in enumerate(ts):
        num = numerical_grad(lambda xs: float(np.sum(v * _run_numpy(spec, xs, kwargs))), work, i)
        assert t.grad is not None, f"{spec.name}: no gradient reached input {i}"
        assert t.grad.shape == arrays[i].shape, f"{spec.name}: grad {i} has shape {t.grad.shape}, not {arrays[i].shape}"
        _close(t.grad, num, spec, f"gradient of input {i} differs from central differences")


def check_shapes_dtypes_and_no_mutation(spec: OpSpec, arrays, kwargs) -> None:
    """In float32: the output stays float32, each grad has its operand's shape and dtype, inputs unchanged."""
    arrays32 = [a.astype(np.float32) for a in arrays]
    before = [a.copy() for a in arrays32]
    ts = [Tensor(a, requires_grad=True) for a in arrays32]
    out = spec.op(*ts, **kwargs)
    assert out.dtype == np.float32, f"{spec.name}: float32 inputs gave a {out.dtype} output"
    out.backward(np.ones(out.shape, dtype=np.float32))
    for i, (t, a, b) in enumerate(zip(ts, arrays32, before)):
        assert t.grad.shape == a.shape and t.grad.dtype == np.float32, (
            f"{spec.name}: grad {i} is {t.grad.dtype}{t.grad.shape}, operand is float32{a.shape}"
        )
        np.testing.assert_array_equal(t.data, b, err_msg=f"{spec.name}: input {i} was mutated")


def check_second_order(spec: OpSpec, arrays, kwargs) -> None:
    """d/dx_i (u · grad_x f) from create_graph equals central differences of the first-order gradient."""
    expected = _run_numpy(spec, arrays, kwargs)
    assume(np.all(np.isfinite(expected)))
    v = _weights(expected.shape, 1)
    us = [_weights(a.shape, 2 + i) for i, a in enumerate(arrays)]

    def directional(xs: list[np.ndarray]) -> float:
        ts = [Tensor(x, requires_grad=True) for x in xs]
        gs = tg.grad(spec.op(*ts, **kwargs), ts, grad_outputs=v, allow_unused=True)
        return float(sum(np.sum(u * g.data) for u, g in zip(us, gs) if g is not None))

    ts = [Tensor(a.copy(), requires_grad=True) for a in arrays]
    gs = tg.grad(spec.op(*ts, **kwargs), ts, grad_outputs=v, create_graph=True, allow_unused=True)
    scalar = None
    for u, g in zip(us, gs):
        if g is not None and g.requires_grad:
            term = (g * u).sum()
            scalar = term if scalar is None else scalar + term
    work = [a.copy() for a in arrays]
    if scalar is None:  # the gradient does not depend on the inputs: second derivative is zero
        hv = [np.zeros(a.shape) for a in arrays]
    else:
        hv = [np.zeros(a.shape) if h is None else h.data
              for a, h in zip(arrays, tg.grad(scalar, ts, allow_unused=True))]
    for i in range(len(arrays)):
        num = numerical_grad(directional, work, i)
        np.testing.assert_allclose(hv[i], num, rtol=1e-3, atol=1e-5,
                                   err_msg=f"{spec.name}: Hessian-vector product for input {i}")


CHECKS: dict[str, Callable[[OpSpec, Any, Any], None]] = {
    "forward": check_forward,
    "backward": check_backward,
    "shapes_dtypes_no_mutation": check_shapes_dtypes_and_no_mutation,
    "second_order": check_second_order,
}


def property_tests(specs: list[OpSpec]):
    """One hypothesis test per (spec, check): bind the result to a ``test_...`` name in a test module."""

    @pytest.mark.parametrize("check", list(CHECKS), ids=list(CHECKS))
    @pytest.mark.parametrize("spec", specs, ids=[s.name for s in specs])
    @given(data=st.data())
    def test(spec, check, data):
        if check == "second_order" and not spec.second_order:
            pytest.skip(f"{spec.name} is not twice differentiable")
        arrays, kwargs = spec.inputs(data)
        CHECKS[check](spec, arrays, kwargs)

    return test
