"""全結合層 Linear: y = x W + b (本文と同じく W の形は (入力数, 出力数))。"""

from __future__ import annotations

import inspect
import operator
from typing import Any

import numpy as np

from .. import init as init_module
from ..autograd import Function
from ..layer import Layer
from ..random import get_rng
from ..tensor import Tensor, get_default_dtype

_ONES: dict[tuple, np.ndarray] = {}


def _column_sums(g: np.ndarray) -> np.ndarray:
    """Σ_n g[n, :] as a product with a vector of ones: one BLAS call, several times faster than
    g.sum(0) on the small batches of the chapter (the vector is kept per batch size)."""
    key = (g.shape[0], g.dtype)
    ones = _ONES.get(key)
    if ones is None:
        if len(_ONES) >= 64:  # many batch sizes (e.g. a growing dataset): start over
            _ONES.clear()
        ones = _ONES[key] = np.ones(g.shape[0], dtype=g.dtype)
    return np.dot(ones, g)


class LinearFunction(Function):
    """y = x W + b を 1 つの演算として計算する (学習で最も時間を使う部分なので、一時配列を作らない)。

    逆伝播: ∂L/∂x = g Wᵀ、∂L/∂W = xᵀ g、∂L/∂b = Σ_n g。x が (..., in) なら先頭の軸をまとめて 2 次元にする。
    """

    __slots__ = ()

    # np.dot rather than @: for 2-D arrays it is the same product, with less overhead per call.
    def forward(self, x, W, b=None):
        if x.ndim == 2:
            y = np.dot(x, W)
        else:
            y = np.dot(x.reshape(-1, x.shape[-1]), W)
        if b is not None:
            y += b  # y is a fresh matmul result: adding in place saves one array
        if x.ndim != 2:
            y = y.reshape(x.shape[:-1] + (W.shape[1],))
        return y

    def backward(self, g, y, x, W, b=None):
        # On Tensors (create_graph=True) the same formulas, recorded: @ and sum are differentiable.
        arrays = type(g) is np.ndarray
        mm = np.dot if arrays else operator.matmul
        flat = x.ndim != 2
        g2 = g.reshape(-1, g.shape[-1]) if flat else g
        gx = gW = gb = None
        if self.needs[0]:
            gx = mm(g2, W.T)
            if flat:
                gx = gx.reshape(x.shape)
        if self.needs[1]:
            gW = mm((x.reshape(-1, x.shape[-1]) if flat else x).T, g2)
        if b is None:
            return gx, gW
        if self.needs[2]:
            gb = _column_sums(g2) if arrays else g2.sum(0)
        return gx, gW, gb


def _initial_weights(init: Any, n_in: int, n_out: int, rng: Any, dtype: np.dtype) -> np.ndarray:
    """Call an initializer; one written like the chapter's (n_in, n_out) without rng= also works."""
    fn = init_module.get(init)
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        params = {}
    takes_kwargs = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    kwargs = {k: v for k, v in (("rng", rng), ("dtype", dtype)) if takes_kwargs or k in params}
    W = np.asarray(fn(n_in, n_out, **kwargs))
    if W.shape != (n_in, n_out):
        raise ValueError(f"init {getattr(fn, '__name__', fn)!r} returned shape {W.shape}, expected ({n_in}, {n_out})")
    return W.astype(dtype, copy=False)


def _as_input(x: Any, dtype: np.dtype) -> Tensor:
    """A layer's input in the layer's dtype. numpy makes float64 arrays by default, and float64 @ float32 would
    silently run the whole model in float64; the cast is differentiable, so a float64 x gets a float64 gradient."""
    if isinstance(x, Tensor):
        return x if x.dtype == dtype else x.astype(dtype)
    return Tensor(np.asarray(x, dtype=dtype))


class Linear(Layer):
    """全結合層 y = x W + b。

    ``Linear(in_features, out_features, bias=True, init="he", rng=None, dtype=None)``

    パラメータは ``W`` (形 (in_features, out_features)) と ``b`` (形 (out_features,))。``init`` は
    ``tinygrad_jp.init`` の名前 ("he", "xavier", "normal" など) か関数 ``(n_in, n_out) -> 配列``。
    入力の形は (N, in)、(in,)、(..., in) のどれでもよい。入力は W の dtype に変換してから計算する
    (float32 のモデルに float64 のバッチを入れても float32 で計算し、出力も float32。入力が Tensor なら
    その勾配は入力の dtype で返る)。
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True, init: Any = "he",
                 rng: Any = None, dtype: Any = None):
        for label, n in (("in_features", in_features), ("out_features", out_features)):
            if not isinstance(n, (int, np.integer)) or isinstance(n, bool) or n < 1:
                raise ValueError(f"Linear: {label} must be a positive integer, got {n!r}")
        self.in_features = int(in_features)
        self.out_features = int(out_features)
        dt = np.dtype(dtype) if dtype is not None else get_default_dtype()
        W = _initial_weights(init, self.in_features, self.out_features, get_rng(rng), dt)
        self.W = Tensor(W, requires_grad=True, name="W")
        self.b = Tensor(np.zeros(self.out_features, dtype=dt), requires_grad=True, name="b") if bias else None

    def forward(self, x: Any) -> Tensor:
        x = _as_input(x, self.W.dtype)
        if x.ndim == 0 or x.shape[-1] != self.in_features:
            got = "a 0-d input" if x.ndim == 0 else f"{x.shape[-1]} (input shape {x.shape})"
            raise ValueError(f"{self!r} expects {self.in_features} input features in the last axis, got {got}")
        if self.b is None:
            return LinearFunction()(x, self.W)
        return LinearFunction()(x, self.W, self.b)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.b is not None}"
