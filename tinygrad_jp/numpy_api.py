"""numpy の関数を Tensor に: 章の numpy のコードを Tensor に使うと、そのまま計算グラフができる。

``np.exp(t)``、``np.maximum(0, t)``、``np.where(t > 0, t, 0.01 * t)``、``np.sum(t)`` は Tensor を返し、
``backward()`` で微分できる。numpy は Tensor を受け取ると ``Tensor.__array_ufunc__`` (ufunc:
``np.exp`` など要素ごとの関数) か ``Tensor.__array_function__`` (``np.sum`` などそれ以外) を呼ぶので、
この 2 つがここの表を引いて、同じ意味の Tensor の演算に置き換える。

* ``UFUNCS`` と ``FUNCTIONS``: 勾配のある演算に置き換わる関数。結果は Tensor。
* ``BOOLEAN_UFUNCS`` と ``CONSTANT_FUNCTIONS``: 結果が真偽値・添字・形だけで、もともと微分しない
  関数 (比較、``np.argmax``、``np.zeros_like`` など)。Tensor の比較演算子と同じく numpy 配列を返す。
* 表にない関数は、黙って定数の配列を返す代わりに、名前を示す TypeError を送出する。
  定数として使いたいときは ``np.asarray(t)`` (または ``t.numpy()``) を渡す。
"""

from __future__ import annotations

import inspect
import math
import operator
from collections.abc import Callable
from typing import Any

import numpy as np

from . import ops
from .tensor import Tensor

# ---------------------------------------------------------------------- ufuncs
# Each ufunc and the Tensor op it stands for. The arguments are Tensors by then (numbers and
# ndarrays are lifted to constant Tensors), so a plain operator builds the graph.
UFUNCS: dict[np.ufunc, Callable[..., Tensor]] = {
    np.add: operator.add,
    np.subtract: operator.sub,
    np.multiply: operator.mul,
    np.true_divide: operator.truediv,  # np.divide is the same ufunc
    np.power: operator.pow,
    np.matmul: operator.matmul,
    np.negative: operator.neg,
    np.positive: operator.pos,
    np.absolute: abs,  # np.abs is the same ufunc
    np.square: lambda x: x * x,
    np.reciprocal: lambda x: 1 / x,
    np.sqrt: Tensor.sqrt,
    np.exp: Tensor.exp,
    np.exp2: lambda x: 2.0**x,
    np.expm1: lambda x: ops.Expm1()(x),
    np.log: Tensor.log,
    np.log2: lambda x: x.log() / math.log(2),
    np.log10: lambda x: x.log() / math.log(10),
    np.log1p: lambda x: ops.Log1p()(x),
    np.sin: Tensor.sin,
    np.cos: Tensor.cos,
    np.tanh: Tensor.tanh,
    np.maximum: Tensor.maximum,
    np.minimum: Tensor.minimum,
}

# Ufuncs whose result is boolean: computed on the values, like Tensor's comparison operators.
BOOLEAN_UFUNCS: frozenset[np.ufunc] = frozenset({
    np.greater, np.greater_equal, np.less, np.less_equal, np.equal, np.not_equal,
    np.isfinite, np.isinf, np.isnan, np.signbit,
    np.logical_and, np.logical_or, np.logical_xor, np.logical_not,
})

# ``np.add.reduce(t, axis=0)`` and its like: the reduction op of the same meaning.
REDUCTIONS: dict[np.ufunc, Callable[..., Tensor]] = {
    np.add: Tensor.sum,
    np.maximum: Tensor.max,
    np.minimum: Tensor.min,
}

# Why a keyword argument of a ufunc is refused, for the error message.
_REFUSED_KWARGS = {
    "out": "the result is always a new Tensor of the graph: assign it (y = {name}(...)); "
    "an in-place operator on an ndarray (a += t) passes out= too: write a = a + t",
    "where": "pick the elements afterwards with np.where(cond, {name}(...), other)",
    "dtype": "convert the Tensor first with t.astype(dtype)",
}

_OPERANDS = (Tensor, np.ndarray, np.generic, int, float, list, tuple)


def array_ufunc(ufunc: np.ufunc, method: str, inputs: tuple, kwargs: dict) -> Any:
    """``Tensor.__array_ufunc__``: a ufunc (or one of its methods) applied to Tensors."""
    for x in inputs:
        if not isinstance(x, _OPERANDS):
            return NotImplemented  # another library's array: let it answer
    if method == "__call__" and not kwargs:
        op = UFUNCS.get(ufunc)  # the common case, np.exp(t) and the operators of `ndarray * t`, first
        if op is not None:
            return op(*_lift(inputs))
    return _ufunc_method(ufunc, method, inputs, kwargs)


def _ufunc_method(ufunc: np.ufunc, method: str, inputs: tuple, kwargs: dict) -> Any:
    name = f"np.{ufunc.__name__}" + ("" if method == "__call__" else f".{method}")
    if method == "__call__":
        _refuse_kwargs(name, kwargs, allowed=())
        return _call(ufunc, inputs, name)
    if method == "reduce" and ufunc in REDUCTIONS:
        _refuse_kwargs(name, kwargs, allowed=("axis", "keepdims"))
        (x,) = _lift(inputs)
        return REDUCTIONS[ufunc](x, kwargs.get("axis", 0), kwargs.get("keepdims", False))
    if method == "outer" and len(inputs) == 2:
        _refuse_kwargs(name, kwargs, allowed=())
        a, b = _lift(inputs)
        return _call(ufunc, (a.reshape(a.shape + (1,) * b.ndim), b), name)
    raise TypeError(
        f"{name} is not supported on Tensors; supported ufunc methods are __call__, "
        f"reduce of {_names(REDUCTIONS)} and outer"
    )


def _call(ufunc: np.ufunc, inputs: tuple, name: str) -> Any:
    if ufunc in UFUNCS:
        return UFUNCS[ufunc](*_lift(inputs))
    if ufunc in BOOLEAN_UFUNCS:
        return ufunc(*[_value(x) for x in inputs])
    raise _unsupported(name)


def _refuse_kwargs(name: str, kwargs: dict, allowed: tuple[str, ...]) -> None:
    for key in kwargs:
        if key not in allowed:
            why = _REFUSED_KWARGS.get(key, "only the operands themselves are supported").format(name=name)
            raise TypeError(f"{name}: the argument {key}= is not supported on Tensors; {why}")


# ---------------------------------------------------------------------- other numpy functions
def _sum(a, axis=None, *, keepdims=False):
    return _tensor(a).sum(axis, keepdims)


def _mean(a, axis=None, *, keepdims=False):
    return _tensor(a).mean(axis, keepdims)


def _max(a, axis=None, *, keepdims=False):
    return _tensor(a).max(axis, keepdims)


def _min(a, axis=None, *, keepdims=False):
    return _tensor(a).min(axis, keepdims)


def _var(a, axis=None, *, ddof=0, keepdims=False):
    return _tensor(a).var(axis, keepdims, ddof)


def _std(a, axis=None, *, ddof=0, keepdims=False):
    return _tensor(a).var(axis, keepdims, ddof).sqrt()


def _dot(a, b):
    """np.dot: a product for 0-d operands, matmul up to 2-D b, else a sum over a's last and b's second-to-last axis."""
    a, b = _lift((a, b))
    if a.ndim == 0 or b.ndim == 0:
        return a * b
    if b.ndim <= 2:
        return a @ b
    if a.shape[-1] != b.shape[-2]:
        raise ValueError(f"np.dot: shapes {a.shape} and {b.shape} are not aligned: {a.shape[-1]} != {b.shape[-2]}")
    k = b.shape[-2]
    b_front = b.transpose((b.ndim - 2, *range(b.ndim - 2), b.ndim - 1))  # k first, then the rest in order
    out = a.reshape(-1, k) @ b_front.reshape(k, -1)
    return out.reshape(a.shape[:-1] + b.shape[:-2] + b.shape[-1:])


def _outer(a, b):
    a, b = _lift((a, b))
    return a.reshape(-1, 1) * b.reshape(1, -1)


def _where(condition, x, y):
    return ops.where(condition, x, y)


def _clip(a, a_min=None, a_max=None, *, min=None, max=None):  # numpy's names, both spellings
    lo = a_min if a_min is not None else min
    hi = a_max if a_max is not None else max
    if all(b is None or isinstance(b, (int, float, np.generic)) for b in (lo, hi)):
        return _tensor(a).clip(lo, hi)
    # Array or Tensor bounds: clip is max(lo, ·) then min(·, hi), differentiable in the bounds too.
    out = a if lo is None else ops.maximum(a, lo)
    return out if hi is None else ops.minimum(out, hi)


def _reshape(a, shape):
    return _tensor(a).reshape(shape)


def _transpose(a, axes=None):
    return _tensor(a).transpose(axes) if axes is not None else _tensor(a).transpose()


def _swapaxes(a, axis1, axis2):
    return _tensor(a).swapaxes(axis1, axis2)


def _ravel(a):
    return _tensor(a).reshape(-1)


def _squeeze(a, axis=None):
    return _tensor(a).squeeze(axis)


def _expand_dims(a, axis):
    x = _tensor(a)
    axes = (axis,) if isinstance(axis, int) else tuple(axis)
    ndim = x.ndim + len(axes)
    for ax in sorted(ax % ndim for ax in axes):  # positions in the result: insert from the left
        x = x.unsqueeze(ax)
    return x


def _broadcast_to(array, shape):
    return _tensor(array).broadcast_to(shape)


def _concatenate(arrays, axis=0):
    if axis is None:
        return ops.concatenate([_tensor(x).reshape(-1) for x in arrays])
    return ops.concatenate(arrays, axis)


def _stack(arrays, axis=0):
    return ops.stack(arrays, axis)


# Each numpy function and the version on Tensors, with the arguments it accepts.
FUNCTIONS: dict[Callable, Callable[..., Tensor]] = {
    np.sum: _sum,
    np.mean: _mean,
    np.max: _max,
    np.amax: _max,
    np.min: _min,
    np.amin: _min,
    np.var: _var,
    np.std: _std,
    np.dot: _dot,
    np.outer: _outer,
    np.where: _where,
    np.clip: _clip,
    np.reshape: _reshape,
    np.transpose: _transpose,
    np.swapaxes: _swapaxes,
    np.ravel: _ravel,
    np.squeeze: _squeeze,
    np.expand_dims: _expand_dims,
    np.broadcast_to: _broadcast_to,
    np.concatenate: _concatenate,
    np.stack: _stack,
}

# Functions whose result is boolean, an index, a shape, or depends only on the shape: computed on
# the values, never differentiable in any framework.
CONSTANT_FUNCTIONS: frozenset[Callable] = frozenset({
    np.zeros_like, np.ones_like, np.empty_like, np.full_like,
    np.shape, np.ndim, np.size,
    np.argmax, np.argmin, np.argsort, np.nonzero, np.count_nonzero,
    np.any, np.all, np.isclose, np.allclose, np.array_equal,
})


def array_function(func: Callable, types: tuple, args: tuple, kwargs: dict) -> Any:
    """``Tensor.__array_function__``: a numpy function (not a ufunc) applied to Tensors."""
    if not all(issubclass(t, (Tensor, np.ndarray)) for t in types):
        return NotImplemented
    impl = FUNCTIONS.get(func)
    if impl is not None:
        try:
            return impl(*args, **kwargs)
        except TypeError:
            _check_arguments(func, impl, args, kwargs)  # say so if numpy accepts arguments that Tensors do not
            raise
    if func in CONSTANT_FUNCTIONS:
        return func(*[_value(x) for x in args], **{k: _value(v) for k, v in kwargs.items()})
    raise _unsupported(_qualname(func))


def _check_arguments(func: Callable, impl: Callable, args: tuple, kwargs: dict) -> None:
    """A TypeError naming func and the arguments its Tensor version takes, if these do not fit them."""
    sig = inspect.signature(impl)
    try:
        sig.bind(*args, **kwargs)
    except TypeError as e:
        raise TypeError(f"{_qualname(func)} on Tensors takes {sig}: {e}") from None


# ---------------------------------------------------------------------- helpers
def _value(x: Any) -> Any:
    return x.data if isinstance(x, Tensor) else x


def _lift(inputs) -> tuple:
    """Every operand as a Tensor: numbers and ndarrays become constants, by the dtype rules of `tensor * 2`."""
    if len(inputs) == 1 and type(inputs[0]) is Tensor:  # np.exp(t)
        return inputs
    if len(inputs) == 2:  # spelled out: `ndarray * tensor` comes this way
        a, b = inputs
        if type(a) is Tensor:
            return a, b if type(b) is Tensor else a._lift(b)
        if type(b) is Tensor:
            return b._lift(a), b
    ref = next(x for x in inputs if isinstance(x, Tensor))
    return tuple(x if type(x) is Tensor else ref._lift(x) for x in inputs)


def _tensor(x: Any) -> Tensor:
    return x if isinstance(x, Tensor) else Tensor(np.asarray(x))


def _names(table) -> str:
    return ", ".join(sorted(f"np.{f.__name__}" for f in table))


def _qualname(func: Callable) -> str:
    module = getattr(func, "__module__", None) or "numpy"
    prefix = "np" + module[len("numpy"):] if module.startswith("numpy") else module
    return f"{prefix}.{func.__name__}"


def _unsupported(name: str) -> TypeError:
    return TypeError(
        f"{name} is not supported on Tensors: it has no gradient in tinygrad_jp, and returning a constant "
        f"array would silently cut the graph. For a constant, apply it to np.asarray(t) (or t.numpy()); to "
        f"differentiate, write it with Tensor operations (docs/api.md lists the numpy functions that work on Tensors)"
    )
