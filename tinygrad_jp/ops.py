"""演算: 各演算の順伝播と逆伝播を隣り合わせに書いた Function のサブクラス。

逆伝播の式は演算子とこのモジュールの関数 (``exp``, ``where`` など) だけで書いてあるので、
numpy 配列にも Tensor にもそのまま使える。Tensor で呼べば逆伝播自体がグラフになり、
2 階微分が得られる。ブロードキャストの和はエンジン (``autograd.unbroadcast``) が一か所で行う。
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from .autograd import Function
from .tensor import Tensor


# ---------------------------------------------------------------------- dual helpers
# Each works on an ndarray (returns an ndarray) and on a Tensor (returns a differentiable Tensor).
def exp(x):
    """e^x (ndarray でも Tensor でもよい)。"""
    return x.exp() if isinstance(x, Tensor) else np.exp(x)


def log(x):
    """自然対数 (ndarray でも Tensor でもよい)。"""
    return x.log() if isinstance(x, Tensor) else np.log(x)


def sqrt(x):
    """平方根 (ndarray でも Tensor でもよい)。"""
    return x.sqrt() if isinstance(x, Tensor) else np.sqrt(x)


def sin(x):
    """sin (ndarray でも Tensor でもよい)。"""
    return x.sin() if isinstance(x, Tensor) else np.sin(x)


def cos(x):
    """cos (ndarray でも Tensor でもよい)。"""
    return x.cos() if isinstance(x, Tensor) else np.cos(x)


def tanh(x):
    """tanh (ndarray でも Tensor でもよい)。"""
    return x.tanh() if isinstance(x, Tensor) else np.tanh(x)


def maximum(a, b):
    """要素ごとの最大値。どちらかが Tensor なら微分可能な Tensor を返す。"""
    if isinstance(a, Tensor):
        return a.maximum(b)
    if isinstance(b, Tensor):
        return b._lift(a).maximum(b)
    return np.maximum(a, b)


def minimum(a, b):
    """要素ごとの最小値。どちらかが Tensor なら微分可能な Tensor を返す。"""
    if isinstance(a, Tensor):
        return a.minimum(b)
    if isinstance(b, Tensor):
        return b._lift(a).minimum(b)
    return np.minimum(a, b)


def where(cond, a, b):
    """``cond`` が真の位置は a、偽の位置は b。a, b について微分可能 (cond は定数)。"""
    cond = np.asarray(cond.data if isinstance(cond, Tensor) else cond, dtype=bool)
    if isinstance(a, Tensor) or isinstance(b, Tensor):
        ref = a if isinstance(a, Tensor) else b
        return Where(cond)(*ref._lift(a)._pair(b))
    return np.where(cond, a, b)


def broadcast_to(x, shape):
    """x を shape へ広げる。ndarray なら書き込める新しい配列 (勾配の加算にそのまま使える)。"""
    if isinstance(x, Tensor):
        return x.broadcast_to(shape)
    out = np.empty(shape, dtype=x.dtype)
    out[...] = x
    return out


def _const(x):
    """The value of x with no graph: gradients never flow through masks and signs."""
    return x.data if isinstance(x, Tensor) else x


def piecewise_constant(value, x):
    """``value`` (a mask or sign computed from x, such as ReLU's 1[x > 0]) as a factor in a backward.

    On a Tensor x (a recorded backward) it stays in the graph as a function of x whose derivative is 0, so
    that a second derivative through the kink is 0 (as in PyTorch) rather than "does not require grad".
    """
    return PiecewiseConstant(value)(x) if isinstance(x, Tensor) else value


# ---------------------------------------------------------------------- arithmetic
class Add(Function):
    __slots__ = ()

    def forward(self, a, b):
        return a + b

    def backward(self, g, y, a, b):
        return g, g


class Sub(Function):
    __slots__ = ()

    def forward(self, a, b):
        return a - b

    def backward(self, g, y, a, b):
        return g, (-g if self.needs[1] else None)


class Mul(Function):
    __slots__ = ()

    def forward(self, a, b):
        return a * b

    def backward(self, g, y, a, b):
        return (g * b if self.needs[0] else None), (g * a if self.needs[1] else None)


class Div(Function):
    __slots__ = ()

    def forward(self, a, b):
        return a / b

    def backward(self, g, y, a, b):
        ga = g / b
        return (ga if self.needs[0] else None), (-ga * y if self.needs[1] else None)


class Pow(Function):
    """a ** b。∂/∂a = b a^(b-1)、∂/∂b = a^b log a。

    PyTorch と同じく、a = b = 0 での ∂/∂a (a^0 = 1 は定数) と a = 0 での ∂/∂b は 0 とする
    (そのまま計算すると 0 · ∞ や 0 · log 0 で NaN になる)。
    """

    __slots__ = ()

    def forward(self, a, b):
        return a**b

    def backward(self, g, y, a, b):
        ga = gb = None
        if self.needs[0]:
            # At a = b = 0, b a^(b-1) would be 0 · 0^(-1) = 0 · inf = NaN: there any finite power times b = 0 gives 0.
            defined = (_const(a) != 0) | (_const(b) != 0)
            ga = g * b * a ** where(defined, b - 1, 1)
        if self.needs[1]:
            # a^b log a → 0 as a → 0: log(1) = 0 stands in for log(0), which would give 0 · (-inf) = NaN.
            gb = g * y * log(where(_const(a) != 0, a, 1.0))
        return ga, gb


class Neg(Function):
    __slots__ = ()

    def forward(self, a):
        return -a

    def backward(self, g, y, a):
        return -g


class Abs(Function):
    __slots__ = ()

    def forward(self, a):
        return np.abs(a)

    def backward(self, g, y, a):
        # sign(a) is a function of a whose derivative is 0: a second derivative through |a| is 0, as in PyTorch.
        return g * piecewise_constant(np.sign(_const(a)), a)


class Exp(Function):
    __slots__ = ()

    def forward(self, a):
        return np.exp(a)

    def backward(self, g, y, a):
        return g * y


class Log(Function):
    __slots__ = ()

    def forward(self, a):
        return np.log(a)

    def backward(self, g, y, a):
        return g / a


class Expm1(Function):
    """eˣ − 1 (x が 0 に近くても桁落ちしない)。導関数は eˣ = y + 1。"""

    __slots__ = ()

    def forward(self, a):
        return np.expm1(a)

    def backward(self, g, y, a):
        return g * (y + 1)


class Log1p(Function):
    """log(1 + x) (x が 0 に近くても桁落ちしない)。導関数は 1 / (1 + x)。"""

    __slots__ = ()

    def forward(self, a):
        return np.log1p(a)

    def backward(self, g, y, a):
        return g / (a + 1)


class Sqrt(Function):
    __slots__ = ()

    def forward(self, a):
        return np.sqrt(a)

    def backward(self, g, y, a):
        return g / (y * 2)


class Sin(Function):
    __slots__ = ()

    def forward(self, a):
        return np.sin(a)

    def backward(self, g, y, a):
        return g * cos(a)


class Cos(Function):
    __slots__ = ()

    def forward(self, a):
        return np.cos(a)

    def backward(self, g, y, a):
        return -g * sin(a)


class Clip(Function):
    """区間 [lo, hi] に切り詰める。はみ出した要素には勾配が流れない。"""

    __slots__ = ("hi", "lo")

    def __init__(self, lo, hi):
        super().__init__()
        self.lo, self.hi = lo, hi

    def forward(self, a):
        return np.clip(a, self.lo, self.hi)

    def backward(self, g, y, a):
        a = _const(a)
        inside = np.ones(a.shape, dtype=bool)
        if self.lo is not None:
            inside &= a >= self.lo
        if self.hi is not None:
            inside &= a <= self.hi
        return g * inside


class Maximum(Function):
    """要素ごとの max(a, b)。等しいところの勾配は a に流す。"""

    __slots__ = ()

    def forward(self, a, b):
        return np.maximum(a, b)

    def backward(self, g, y, a, b):
        take_a = _const(a) >= _const(b)
        return (g * take_a if self.needs[0] else None), (g * ~take_a if self.needs[1] else None)


class Minimum(Function):
    """要素ごとの min(a, b)。等しいところの勾配は a に流す。"""

    __slots__ = ()

    def forward(self, a, b):
        return np.minimum(a, b)

    def backward(self, g, y, a, b):
        take_a = _const(a) <= _const(b)
        return (g * take_a if self.needs[0] else None), (g * ~take_a if self.needs[1] else None)


class PiecewiseConstant(Function):
    """x の段差だけで決まる定数 (ReLU の導関数 1[x > 0] など) を、x の関数としてグラフに置く。

    値は ``value``、x についての微分は 0。ただの定数にすると、それから作った勾配が x とつながらず、
    ReLU を通した 2 階微分 (ヘッセ行列とベクトルの積など) が「出力が勾配を必要としない」エラーになる。
    PyTorch と同じく 0 を返すためにつないでおく。
    """

    __slots__ = ("value",)

    def __init__(self, value: np.ndarray):
        super().__init__()
        self.value = np.asarray(value)

    def forward(self, x):
        return self.value.astype(x.dtype, copy=False)  # a 0/1 mask of booleans reads as numbers of x's type

    def backward(self, g, y, x):
        return np.zeros(x.shape, dtype=x.dtype)


class Where(Function):
    __slots__ = ("cond",)

    def __init__(self, cond: np.ndarray):
        super().__init__()
        self.cond = cond

    def forward(self, a, b):
        return np.where(self.cond, a, b)

    def backward(self, g, y, a, b):
        return (g * self.cond if self.needs[0] else None), (g * ~self.cond if self.needs[1] else None)


class Cast(Function):
    __slots__ = ("dtype", "src")

    def __init__(self, dtype):
        super().__init__()
        self.dtype = np.dtype(dtype)

    def forward(self, a):
        self.src = a.dtype
        return a.astype(self.dtype)

    def backward(self, g, y, a):
        return g.astype(self.src)


class MatMul(Function):
    """行列積 a @ b (numpy と同じ規則: バッチ次元はブロードキャスト、1 次元の被演算子も可)。

    逆伝播は 1 次元の被演算子を行列 (a は行、b は列) とみなして ∂L/∂a = g bᵀ、∂L/∂b = aᵀ g を
    計算し、その軸を落とす。
    """

    __slots__ = ()

    def forward(self, a, b):
        return a @ b

    def backward(self, g, y, a, b):
        a2 = a.reshape(1, -1) if a.ndim == 1 else a
        b2 = b.reshape(-1, 1) if b.ndim == 1 else b
        g2 = g.reshape(np.broadcast_shapes(a2.shape[:-2], b2.shape[:-2]) + (a2.shape[-2], b2.shape[-1]))
        ga = gb = None
        if self.needs[0]:
            ga = g2 @ b2.swapaxes(-1, -2)
            if a.ndim == 1:
                ga = ga.reshape(ga.shape[:-2] + ga.shape[-1:])
        if self.needs[1]:
            gb = a2.swapaxes(-1, -2) @ g2
            if b.ndim == 1:
                gb = gb.reshape(gb.shape[:-1])
        return ga, gb


def matmul(a: Tensor, b: Tensor) -> Tensor:
    """numpy と同じ規則の行列積。形が合わなければ両方の形を示す ValueError。"""
    if a.ndim == 0 or b.ndim == 0:
        raise ValueError(f"matmul: operands must have at least one dimension, got shapes {a.shape} and {b.shape}")
    if a.shape[-1] != b.shape[-2 if b.ndim > 1 else 0]:
        raise ValueError(
            f"matmul: shapes {a.shape} and {b.shape} are not aligned: the left operand's last "
            f"dimension ({a.shape[-1]}) must equal the right operand's "
            f"{'second-to-last' if b.ndim > 1 else 'only'} dimension ({b.shape[-2 if b.ndim > 1 else 0]})"
        )
    return MatMul()(a, b)


# ---------------------------------------------------------------------- reductions
# float16 holds at most 65,504 and only 11 significant bits: a sum of 65,536 halves, or the count 65,536 itself,
# is inf there. Sums and means of float16 are therefore accumulated and divided in float32 and rounded back to
# float16 at the end, as PyTorch does.
_ACCUMULATOR = {np.dtype(np.float16): np.dtype(np.float32)}


def _reduced_axes(shape: tuple, axis) -> set:
    """The axes (as non-negative numbers) that a reduction over `axis` removes."""
    if axis is None:
        return set(range(len(shape)))
    axes = (axis,) if isinstance(axis, int) else axis
    return {ax % len(shape) for ax in axes} if shape else set()


def _kept_shape(shape: tuple, axis) -> tuple:
    """The shape a reduction over `axis` has with keepdims=True."""
    axes = _reduced_axes(shape, axis)
    return tuple(1 if i in axes else n for i, n in enumerate(shape))


def _count(shape: tuple, axis) -> int:
    """How many elements each result of a reduction over `axis` is taken over."""
    return math.prod(shape[i] for i in _reduced_axes(shape, axis))


def _divide(x, n: int):
    """x / n (ndarray or Tensor) in x's dtype, with the division done in float32 when x is float16."""
    wide = _ACCUMULATOR.get(x.dtype)
    if wide is None:
        return x / n
    return (x.astype(wide) / n).astype(x.dtype)


class _Reduce(Function):
    __slots__ = ("axis", "keepdims")

    def __init__(self, axis=None, keepdims: bool = False):
        super().__init__()
        if isinstance(axis, list):
            axis = tuple(axis)
        self.axis, self.keepdims = axis, keepdims

    def _expand(self, g, in_shape):
        """Put back the reduced axes (as size 1) so that g broadcasts against the input."""
        if self.keepdims or g.ndim == 0:  # a 0-d g broadcasts as it is
            return g
        return g.reshape(_kept_shape(in_shape, self.axis))

    def _total(self, a):
        """Σ over the axis, accumulated in float32 for float16 input (and left there for the caller)."""
        return np.add.reduce(a, self.axis, _ACCUMULATOR.get(a.dtype), None, self.keepdims)


class Sum(_Reduce):
    __slots__ = ()

    def forward(self, a):
        total = self._total(a)
        return total.astype(a.dtype) if a.dtype in _ACCUMULATOR else total

    def backward(self, g, y, a):
        return broadcast_to(self._expand(g, a.shape), a.shape)


class Mean(_Reduce):
    __slots__ = ()

    def forward(self, a):
        # np.add.reduce and one division: ndarray.mean goes through a slower Python-level helper.
        mean = self._total(a) / _count(a.shape, self.axis)
        return mean.astype(a.dtype) if a.dtype in _ACCUMULATOR else mean

    def backward(self, g, y, a):
        # An empty reduced axis leaves a with no elements, and so nothing to divide: 1 avoids 1/0.
        n = max(_count(a.shape, self.axis), 1)
        return broadcast_to(_divide(self._expand(g, a.shape), n), a.shape)


class Extremum(_Reduce):
    """max / min による縮約。最大 (最小) が複数あれば勾配を等分する。

    空の軸に沿った縮約 (「何もない中の最大」) はエラー。形 (0, 3) の axis=1 のように、
    結果が空になるだけなら numpy・PyTorch と同じく空の結果を返す。
    """

    __slots__ = ("reducer",)

    def __init__(self, reducer, axis=None, keepdims: bool = False):
        super().__init__(axis, keepdims)
        self.reducer = reducer

    @property
    def name(self) -> str:
        return "Max" if self.reducer is np.max else "Min"

    def forward(self, a):
        if a.size == 0:
            self._refuse_empty_axes(a.shape)
        return self.reducer(a, axis=self.axis, keepdims=self.keepdims)

    def _refuse_empty_axes(self, shape: tuple) -> None:
        np.add.reduce(np.empty(shape), self.axis)  # an axis out of range gets numpy's own error first
        empty = sorted(i for i in _reduced_axes(shape, self.axis) if shape[i] == 0)
        if empty:
            raise ValueError(
                f"{self.name.lower()}(axis={self.axis}) of a tensor of shape {shape}: axis {empty[0]} has length 0, "
                f"so there is no value to take the {self.name.lower()}imum of"
            )

    def backward(self, g, y, a):
        hit = _const(a) == self._expand(_const(y), a.shape)
        share = hit / hit.sum(axis=self.axis, keepdims=True)
        return self._expand(g, a.shape) * share.astype(a.dtype)


def var(x: Tensor, axis=None, keepdims: bool = False, ddof: int = 0) -> Tensor:
    """分散 = 平均からの偏差の 2 乗の平均 (ddof で分母を N - ddof にする)。float16 は float32 で計算する。"""
    if x.dtype in _ACCUMULATOR:  # squares overflow float16 early (300² > 65,504)
        return var(x.astype(_ACCUMULATOR[x.dtype]), axis, keepdims, ddof).astype(x.dtype)
    d = x - x.mean(axis=axis, keepdims=True)
    n = _count(x.shape, axis)
    if n - ddof <= 0:
        raise ValueError(f"var: ddof={ddof} leaves no degrees of freedom for {n} values")
    return (d * d).sum(axis=axis, keepdims=keepdims) / (n - ddof)


# ---------------------------------------------------------------------- shape
class Reshape(Function):
    __slots__ = ("shape",)

    def __init__(self, shape: tuple):
        super().__init__()
        self.shape = shape

    def forward(self, a):
        try:
            return a.reshape(self.shape)
        except ValueError:
            raise ValueError(
                f"reshape: cannot reshape a tensor of shape {a.shape} ({a.size} elements) into {self.shape}"
            ) from None

    def backward(self, g, y, a):
        return g.reshape(a.shape)


class Transpose(Function):
    __slots__ = ("axes",)

    def __init__(self, axes):
        super().__init__()
        self.axes = axes

    def forward(self, a):
        return a.transpose(self.axes)

    def backward(self, g, y, a):
        if self.axes is None:
            return g.transpose()
        return g.transpose(tuple(np.argsort(self.axes)))


class BroadcastTo(Function):
    __slots__ = ("shape",)

    def __init__(self, shape: tuple):
        super().__init__()
        self.shape = shape

    def forward(self, a):
        return np.broadcast_to(a, self.shape)

    def backward(self, g, y, a):
        return g  # the engine sums g back to a's shape


def flatten(x: Tensor, start_dim: int = 0, end_dim: int = -1) -> Tensor:
    if x.ndim == 0:
        return x.reshape(1)
    s, e = start_dim % x.ndim, end_dim % x.ndim
    if s > e:
        raise ValueError(f"flatten: start_dim {start_dim} comes after end_dim {end_dim} for {x.ndim} dimensions")
    return x.reshape(x.shape[:s] + (-1,) + x.shape[e + 1:])


def squeeze(x: Tensor, axis=None) -> Tensor:
    if axis is None:
        return x.reshape(tuple(n for n in x.shape if n != 1))
    axes = (axis,) if isinstance(axis, int) else tuple(axis)
    axes = {a % x.ndim for a in axes}
    for a in sorted(axes):
        if x.shape[a] != 1:
            raise ValueError(f"squeeze: axis {a} has size {x.shape[a]}, not 1 (shape {x.shape})")
    return x.reshape(tuple(n for i, n in enumerate(x.shape) if i not in axes))


def unsqueeze(x: Tensor, axis: int) -> Tensor:
    if not -x.ndim - 1 <= axis <= x.ndim:
        raise ValueError(f"unsqueeze: axis {axis} is out of range for a tensor with {x.ndim} dimensions")
    axis = axis % (x.ndim + 1)
    return x.reshape(x.shape[:axis] + (1,) + x.shape[axis:])


class Concatenate(Function):
    __slots__ = ("axis",)

    def __init__(self, axis: int):
        super().__init__()
        self.axis = axis

    def forward(self, *arrays):
        return np.concatenate(arrays, axis=self.axis)

    def backward(self, g, y, *xs):
        axis = self.axis % g.ndim
        grads, start = [], 0
        for x, need in zip(xs, self.needs):
            stop = start + x.shape[axis]
            grads.append(g[(slice(None),) * axis + (slice(start, stop),)] if need else None)
            start = stop
        return tuple(grads)


class Stack(Function):
    __slots__ = ("axis",)

    def __init__(self, axis: int):
        super().__init__()
        self.axis = axis

    def forward(self, *arrays):
        return np.stack(arrays, axis=self.axis)

    def backward(self, g, y, *xs):
        axis = self.axis % g.ndim
        return tuple(g[(slice(None),) * axis + (i,)] if need else None for i, need in enumerate(self.needs))


def _lift_all(tensors: Sequence[Any]) -> list[Tensor]:
    if len(tensors) == 0:
        raise ValueError("need at least one tensor")
    ref = next((t for t in tensors if isinstance(t, Tensor)), None)
    if ref is None:
        ref = Tensor(np.asarray(tensors[0]))
    return [ref._lift(t) for t in tensors]


def concatenate(tensors: Sequence[Any], axis: int = 0) -> Tensor:
    """テンソルを既存の軸 ``axis`` に沿ってつなげる。"""
    return Concatenate(axis)(*_lift_all(tensors))


def stack(tensors: Sequence[Any], axis: int = 0) -> Tensor:
    """テンソルを新しい軸 ``axis`` に沿って積み重ねる。"""
    return Stack(axis)(*_lift_all(tensors))


# ---------------------------------------------------------------------- indexing
def _is_basic(index: Any) -> bool:
    """Basic indexing (ints, slices, None, ...) never repeats an element, so plain assignment scatters it."""
    items = index if isinstance(index, tuple) else (index,)
    return all(isinstance(i, (int, slice, type(None), type(Ellipsis))) for i in items)


def _normalize_index(index: Any) -> Any:
    if isinstance(index, tuple):
        return tuple(_normalize_index(i) for i in index)
    if isinstance(index, Tensor):
        return index.data
    if isinstance(index, list):
        return np.asarray(index)
    return index


def _scatter_numpy(g: np.ndarray, index: Any, shape: tuple) -> np.ndarray:
    out = np.zeros(shape, dtype=g.dtype)
    if _is_basic(index):
        out[index] = g
    else:
        np.add.at(out, index, g)  # repeated indices accumulate
    return out


class GetItem(Function):
    """``x[index]``。整数配列で同じ要素を何度取り出しても、勾配はすべて足し合わされる。"""

    __slots__ = ("index",)

    def __init__(self, index: Any):
        super().__init__()
        self.index = _normalize_index(index)

    def forward(self, a):
        try:
            return a[self.index]
        except IndexError as e:
            raise IndexError(f"index {self.index!r} is out of range for a tensor of shape {a.shape}: {e}") from None

    def backward(self, g, y, a):
        if isinstance(g, Tensor):
            return ScatterAdd(self.index, a.shape)(g)
        return _scatter_numpy(g, self.index, a.shape)


class ScatterAdd(Function):
    """GetItem の逆伝播を微分可能にするための演算: g を ``shape`` のゼロ配列の ``index`` に足す。"""

    __slots__ = ("index", "shape")

    def __init__(self, index: Any, shape: tuple):
        super().__init__()
        self.index, self.shape = index, shape

    def forward(self, g):
        return _scatter_numpy(g, self.index, self.shape)

    def backward(self, gg, y, g):
        return gg[self.index]
