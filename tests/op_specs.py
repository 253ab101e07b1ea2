"""The table of core ops: every differentiable op of the Tensor, with its numpy twin and input domain."""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import tinygrad_jp as tg

from harness import SHAPES, OpSpec, binary, distinct_values, reduction, unary, values


def _sigmoid(x):
    return 1 / (1 + np.exp(-x))


def _matmul_inputs(data):
    """Shapes numpy's matmul accepts: 1-D, 2-D and batched with broadcast batch dimensions."""
    n, k, m = (data.draw(st.integers(1, 4), label=s) for s in "nkm")
    batch = data.draw(hnp.mutually_broadcastable_shapes(num_shapes=2, max_dims=2, max_side=3), label="batch")
    kind = data.draw(st.sampled_from(["mm", "batched", "vec-mat", "mat-vec", "vec-vec"]), label="kind")
    shapes = {
        "mm": ((n, k), (k, m)),
        "batched": (batch.input_shapes[0] + (n, k), batch.input_shapes[1] + (k, m)),
        "vec-mat": ((k,), (k, m)),
        "mat-vec": ((n, k), (k,)),
        "vec-vec": ((k,), (k,)),
    }[kind]
    return [data.draw(values(s), label=f"x{i}") for i, s in enumerate(shapes)], {}


def _reshape_inputs(data):
    shape = data.draw(SHAPES, label="shape")
    x = data.draw(values(shape), label="x")
    size = int(np.prod(shape))
    divisors = [d for d in range(1, size + 1) if size % d == 0]
    first = data.draw(st.sampled_from(divisors), label="first")
    target = data.draw(st.sampled_from([(first, size // first), (size,), (-1, first), (first, -1, 1)]), label="target")
    return [x], {"shape": target}


def _transpose_inputs(data):
    shape = data.draw(SHAPES, label="shape")
    axes = data.draw(st.permutations(range(len(shape))), label="axes")
    return [data.draw(values(shape), label="x")], {"axes": tuple(axes)}


def _axis_inputs(min_dims=1, new_axis=False):
    def draw(data):
        shape = data.draw(hnp.array_shapes(min_dims=min_dims, max_dims=3, max_side=4), label="shape")
        nd = len(shape) + (1 if new_axis else 0)
        axis = data.draw(st.integers(-nd, nd - 1), label="axis")
        return [data.draw(values(shape), label="x")], {"axis": axis}

    return draw


def _squeeze_inputs(data):
    shape = data.draw(hnp.array_shapes(min_dims=1, max_dims=4, min_side=1, max_side=3), label="shape")
    ones = [i for i, n in enumerate(shape) if n == 1]
    axis = data.draw(st.none() | (st.sampled_from(ones) if ones else st.none()), label="axis")
    return [data.draw(values(shape), label="x")], {"axis": axis}


def _broadcast_inputs(data):
    shapes = data.draw(hnp.mutually_broadcastable_shapes(num_shapes=1, max_dims=3, max_side=4), label="shapes")
    return [data.draw(values(shapes.input_shapes[0]), label="x")], {"shape": shapes.result_shape}


def _join_inputs(new_axis: bool):
    def draw(data):
        base = data.draw(hnp.array_shapes(min_dims=1, max_dims=3, max_side=3), label="shape")
        nd = len(base) + (1 if new_axis else 0)
        axis = data.draw(st.integers(-nd, nd - 1), label="axis")
        count = data.draw(st.integers(1, 3), label="count")
        shapes = []
        for _ in range(count):
            s = list(base)
            if not new_axis:
                s[axis] = data.draw(st.integers(1, 3), label="len")
            shapes.append(tuple(s))
        return [data.draw(values(s), label="x") for s in shapes], {"axis": axis}

    return draw


def _getitem_inputs(data):
    shape = data.draw(hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=4), label="shape")
    x = data.draw(values(shape), label="x")
    kind = data.draw(st.sampled_from(["basic", "int-array", "bool"]), label="kind")
    if kind == "basic":
        index = data.draw(hnp.basic_indices(shape, allow_newaxis=True, allow_ellipsis=True), label="index")
    elif kind == "int-array":
        # Repeats on purpose: x[[0, 0, 1]] must send twice the gradient to x[0].
        index = data.draw(hnp.arrays(np.intp, st.integers(1, 6), elements=st.integers(0, shape[0] - 1)), label="idx")
    else:
        index = data.draw(hnp.arrays(np.bool_, shape), label="mask")
    return [x], {"index": index}


def _where_inputs(data):
    shapes = data.draw(hnp.mutually_broadcastable_shapes(num_shapes=3, max_dims=3, max_side=4), label="shapes")
    cond = data.draw(hnp.arrays(np.bool_, shapes.input_shapes[0]), label="cond")
    a, b = (data.draw(values(s), label="ab") for s in shapes.input_shapes[1:])
    return [a, b], {"cond": cond}


def _clip_inputs(data):
    shape = data.draw(SHAPES, label="shape")
    return [data.draw(values(shape, away_from=(-1.0, 1.5)), label="x")], {}


def _pairwise_apart(data):
    """Two broadcastable arrays whose broadcast elements never tie (maximum/minimum kink)."""
    arrays, _ = binary()(data)
    a, b = np.broadcast_arrays(*arrays)
    from hypothesis import assume

    assume(np.all(np.abs(a - b) > 0.05))
    return arrays, {}


SPECS = [
    OpSpec("add", lambda a, b: a + b, np.add, binary()),
    OpSpec("sub", lambda a, b: a - b, np.subtract, binary()),
    OpSpec("mul", lambda a, b: a * b, np.multiply, binary()),
    OpSpec("div", lambda a, b: a / b, np.divide, binary(lo=(-3.0, 0.5), hi=(3.0, 3.0))),
    OpSpec("pow", lambda a, b: a**b, np.power, binary(lo=(0.5, -2.0), hi=(2.0, 2.0))),
    OpSpec("pow_scalar", lambda a: a**3, lambda a: a**3, unary()),
    OpSpec("rpow_scalar", lambda a: 2.0**a, lambda a: 2.0**a, unary()),
    OpSpec("rsub_scalar", lambda a: 1.5 - a, lambda a: 1.5 - a, unary()),
    OpSpec("rdiv_scalar", lambda a: 2.0 / a, lambda a: 2.0 / a, unary(0.5, 3.0)),
    OpSpec("neg", lambda a: -a, np.negative, unary()),
    OpSpec("abs", lambda a: a.abs(), np.abs, unary(away_from=(0.0,))),
    OpSpec("exp", lambda a: a.exp(), np.exp, unary()),
    OpSpec("log", lambda a: a.log(), np.log, unary(0.1, 5.0)),
    OpSpec("sqrt", lambda a: a.sqrt(), np.sqrt, unary(0.1, 5.0)),
    OpSpec("sin", lambda a: a.sin(), np.sin, unary()),
    OpSpec("cos", lambda a: a.cos(), np.cos, unary()),
    OpSpec("tanh", lambda a: a.tanh(), np.tanh, unary()),
    OpSpec("sigmoid", lambda a: a.sigmoid(), _sigmoid, unary()),
    OpSpec("relu", lambda a: a.relu(), lambda a: np.maximum(a, 0), unary(away_from=(0.0,))),
    OpSpec("clip", lambda a: a.clip(-1.0, 1.5), lambda a: np.clip(a, -1.0, 1.5), _clip_inputs),
    OpSpec("maximum", lambda a, b: a.maximum(b), np.maximum, _pairwise_apart),
    OpSpec("minimum", lambda a, b: a.minimum(b), np.minimum, _pairwise_apart),
    OpSpec("where", lambda a, b, cond: tg.where(cond, a, b), lambda a, b, cond: np.where(cond, a, b), _where_inputs),
    OpSpec("matmul", lambda a, b: a @ b, np.matmul, _matmul_inputs),
    OpSpec("sum", lambda a, **k: a.sum(**k), np.sum, reduction()),
    OpSpec("mean", lambda a, **k: a.mean(**k), np.mean, reduction()),
    OpSpec("max", lambda a, **k: a.max(**k), np.max, reduction(distinct=True)),
    OpSpec("min", lambda a, **k: a.min(**k), np.min, reduction(distinct=True)),
    OpSpec("var", lambda a, **k: a.var(**k), np.var, reduction()),
    OpSpec("reshape", lambda a, shape: a.reshape(shape), lambda a, shape: a.reshape(shape), _reshape_inputs),
    OpSpec("transpose", lambda a, axes: a.transpose(axes), np.transpose, _transpose_inputs),
    OpSpec("T", lambda a: a.T, lambda a: a.T, unary()),
    OpSpec("flatten", lambda a: a.flatten(), np.ravel, unary()),
    OpSpec("squeeze", lambda a, axis: a.squeeze(axis), lambda a, axis: np.squeeze(a, axis), _squeeze_inputs),
    OpSpec("unsqueeze", lambda a, axis: a.unsqueeze(axis), lambda a, axis: np.expand_dims(a, axis),
           _axis_inputs(min_dims=0, new_axis=True)),
    OpSpec("broadcast_to", lambda a, shape: a.broadcast_to(shape), np.broadcast_to, _broadcast_inputs),
    OpSpec("concatenate", lambda *xs, axis: tg.concatenate(xs, axis=axis),
           lambda *xs, axis: np.concatenate(xs, axis=axis), _join_inputs(new_axis=False)),
    OpSpec("stack", lambda *xs, axis: tg.stack(xs, axis=axis),
           lambda *xs, axis: np.stack(xs, axis=axis), _join_inputs(new_axis=True)),
    OpSpec("getitem", lambda a, index: a[index], lambda a, index: a[index], _getitem_inputs),
    OpSpec("softplus_composite", lambda a: (a.exp() + 1).log(), lambda a: np.log1p(np.exp(a)), unary()),
]

__all__ = ["SPECS", "distinct_values"]
