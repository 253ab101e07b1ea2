"""The table of core ops: every differentiable op of the Tensor, with its numpy twin and input domain."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from hypothesis import assume
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

# ---------------------------------------------------------------------- the numpy spellings
# The same ops written the chapter's way: numpy functions applied to Tensors. Each must build the
# graph and pass every check its Tensor spelling passes. Indexing is an operator in numpy too.
NO_NUMPY_FUNCTION = {"getitem"}

NUMPY_SPELLINGS = {
    "add": np.add,
    "sub": np.subtract,
    "mul": np.multiply,
    "div": np.divide,
    "pow": np.power,
    "pow_scalar": lambda a: np.power(a, 3),
    "rpow_scalar": lambda a: np.power(2.0, a),
    "rsub_scalar": lambda a: np.subtract(1.5, a),
    "rdiv_scalar": lambda a: np.divide(2.0, a),
    "neg": np.negative,
    "abs": np.abs,
    "exp": np.exp,
    "log": np.log,
    "sqrt": np.sqrt,
    "sin": np.sin,
    "cos": np.cos,
    "tanh": np.tanh,
    "sigmoid": _sigmoid,
    "relu": lambda a: np.maximum(0, a),
    "clip": lambda a: np.clip(a, -1.0, 1.5),
    "maximum": np.maximum,
    "minimum": np.minimum,
    "where": lambda a, b, cond: np.where(cond, a, b),
    "matmul": np.matmul,
    "sum": np.sum,
    "mean": np.mean,
    "max": np.max,
    "min": np.min,
    "var": np.var,
    "reshape": np.reshape,
    "transpose": np.transpose,
    "T": np.transpose,
    "flatten": np.ravel,
    "squeeze": np.squeeze,
    "unsqueeze": np.expand_dims,
    "broadcast_to": np.broadcast_to,
    "concatenate": lambda *xs, axis: np.concatenate(xs, axis=axis),
    "stack": lambda *xs, axis: np.stack(xs, axis=axis),
    "softplus_composite": lambda a: np.log(np.exp(a) + 1),
}


def _dot_inputs(data):
    """Every case of np.dot: scalars, vectors, matrices and N-d operands (a's last axis with b's second-to-last)."""
    k = data.draw(st.integers(1, 3), label="k")
    kind = data.draw(st.sampled_from(["scalar", "vec-vec", "mat-mat", "nd-mat", "vec-nd", "nd-nd"]), label="kind")
    shapes = {
        "scalar": ((), (2, k)),
        "vec-vec": ((k,), (k,)),
        "mat-mat": ((2, k), (k, 3)),
        "nd-mat": ((2, 3, k), (k, 2)),
        "vec-nd": ((k,), (2, k, 3)),
        "nd-nd": ((2, k), (3, k, 2)),
    }[kind]
    return [data.draw(values(s), label=f"x{i}") for i, s in enumerate(shapes)], {}


def _outer_inputs(data):
    shapes = [data.draw(hnp.array_shapes(min_dims=1, max_dims=2, max_side=3), label="shape") for _ in range(2)]
    return [data.draw(values(s), label="x") for s in shapes], {}


def _swapaxes_inputs(data):
    shape = data.draw(hnp.array_shapes(min_dims=1, max_dims=3, max_side=3), label="shape")
    a1, a2 = (data.draw(st.integers(-len(shape), len(shape) - 1), label="axis") for _ in range(2))
    return [data.draw(values(shape), label="x")], {"axis1": a1, "axis2": a2}


def _expand_dims_inputs(data):
    shape = data.draw(hnp.array_shapes(min_dims=0, max_dims=2, max_side=3), label="shape")
    count = data.draw(st.integers(1, 2), label="count")
    axes = data.draw(hnp.valid_tuple_axes(len(shape) + count, min_size=count, max_size=count), label="axes")
    return [data.draw(values(shape), label="x")], {"axis": axes}


def _reduce_method_inputs(distinct: bool):
    def draw(data):
        shape = data.draw(hnp.array_shapes(min_dims=1, max_dims=3, max_side=4), label="shape")
        x = data.draw(distinct_values(shape) if distinct else values(shape), label="x")
        axis = data.draw(st.integers(-len(shape), len(shape) - 1), label="axis")
        return [x], {"axis": axis, "keepdims": data.draw(st.booleans(), label="keepdims")}

    return draw


def _array_bounds_inputs(data):
    """np.clip with a lower bound that is an array too (and gets a gradient), every element off the bounds."""
    shape = data.draw(hnp.array_shapes(min_dims=1, max_dims=2, max_side=4), label="shape")
    lo = data.draw(values(shape[-1:], -2.0, -0.5), label="lo")
    x = data.draw(values(shape), label="x")
    assume(np.all(np.abs(x - lo) > 0.05) and np.all(np.abs(x - 1.0) > 0.05))
    return [x, lo], {}


def _std_inputs(data):
    """Distinct values along every reduced axis, so the standard deviation is never 0 (where √ has no derivative)."""
    shape = data.draw(hnp.array_shapes(min_dims=1, max_dims=3, min_side=2, max_side=4), label="shape")
    axis = data.draw(
        st.none() | st.integers(-len(shape), len(shape) - 1) | hnp.valid_tuple_axes(len(shape), min_size=1),
        label="axis",
    )
    return [data.draw(distinct_values(shape), label="x")], {"axis": axis, "keepdims": data.draw(st.booleans())}


def _same(name, fn, inputs, **kw) -> OpSpec:
    """A numpy function checked against itself: applied to Tensors it must equal numpy on ndarrays."""
    return OpSpec(name, fn, fn, inputs, **kw)


# numpy functions with no Tensor method of their own, and numpy-only arguments.
NUMPY_ONLY_SPECS = [
    _same("np.square", np.square, unary()),
    _same("np.reciprocal", np.reciprocal, unary(0.5, 3.0)),
    _same("np.positive", np.positive, unary()),
    _same("np.expm1", np.expm1, unary()),
    _same("np.exp2", np.exp2, unary()),
    _same("np.log1p", np.log1p, unary(-0.9, 5.0)),
    _same("np.log2", np.log2, unary(0.1, 5.0)),
    _same("np.log10", np.log10, unary(0.1, 5.0)),
    _same("np.std", np.std, _std_inputs),
    _same("np.amax", np.amax, reduction(distinct=True)),
    _same("np.amin", np.amin, reduction(distinct=True)),
    _same("np.dot", np.dot, _dot_inputs),
    _same("np.outer", np.outer, _outer_inputs),
    _same("np.multiply.outer", np.multiply.outer, _outer_inputs),
    _same("np.add.reduce", np.add.reduce, _reduce_method_inputs(distinct=False)),
    _same("np.maximum.reduce", np.maximum.reduce, _reduce_method_inputs(distinct=True)),
    _same("np.swapaxes", np.swapaxes, _swapaxes_inputs),
    _same("np.expand_dims(tuple)", np.expand_dims, _expand_dims_inputs),
    _same("np.concatenate(axis=None)", lambda *xs, axis: np.concatenate(xs, axis=None), _join_inputs(False)),
    _same("np.clip(array bounds)", lambda a, lo: np.clip(a, lo, 1.0), _array_bounds_inputs),
    _same("chapter sigmoid", lambda a: 1 / (1 + np.exp(-np.clip(a, -500, 500))), unary()),
]

NUMPY_SPECS = [
    replace(spec, name=f"np:{spec.name}", op=NUMPY_SPELLINGS[spec.name])
    for spec in SPECS
    if spec.name not in NO_NUMPY_FUNCTION
] + NUMPY_ONLY_SPECS

__all__ = ["NO_NUMPY_FUNCTION", "NUMPY_SPECS", "NUMPY_SPELLINGS", "SPECS", "distinct_values"]
