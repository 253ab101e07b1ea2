"""Tensor: numpy 配列に勾配と計算グラフを持たせた、tinygrad_jp の中心となるクラス。

dtype の規則:

* ndarray から作った Tensor はその dtype を保つ。
* Python の float・int・list から作った Tensor は既定の浮動小数点型 (float32) になる。
  既定は ``set_default_dtype`` で変えられる (float32 か float64)。
* Tensor と Python のスカラーの演算は Tensor の dtype を保つ (float32 × 2.0 は float32)。
  整数の Tensor と Python の float の演算は既定の浮動小数点型になる (PyTorch と同じ)。
* 浮動小数点と整数 (または bool) の Tensor・ndarray の演算は浮動小数点の側の dtype になる
  (float32 + int64 は float32、PyTorch と同じ)。浮動小数点どうしは numpy と同じく広い方になる
  (float32 + float64 は float64)。
"""

from __future__ import annotations

import contextlib
import itertools
import math
import reprlib
import threading
from typing import Any

import numpy as np

_default_dtype = np.dtype(np.float32)

# Every tensor is numbered at creation. An op's output is always created after its inputs, so
# running backward in decreasing number visits every node after all of its consumers.
_next_seq = itertools.count().__next__


def set_default_dtype(dtype: Any) -> None:
    """Python の数値やリストから作る Tensor の dtype を設定する (float32 または float64)。

    float16 は既定にできない (TypeError)。float16 の ndarray から作った Tensor の縮約と損失は、
    float32 で足し合わせてから float16 に戻すので正しく計算される。
    """
    global _default_dtype
    dt = np.dtype(dtype)
    if dt != np.float32 and dt != np.float64:
        raise TypeError(
            f"default dtype must be the floating-point type float32 or float64, got {dt}"
            + (": float16 works for arrays you pass in, not as the default" if dt.kind == "f" else "")
        )
    _default_dtype = dt
    _constants.clear()  # a float beside an integer tensor takes the default dtype: cached constants may differ


def get_default_dtype() -> np.dtype:
    """現在の既定の浮動小数点型を返す。"""
    return _default_dtype


def _scalar_array(x: Any, dtype: np.dtype) -> np.ndarray:
    """A Python scalar as a 0-d array for an op with a tensor of `dtype`: the tensor's dtype where it holds the scalar
    (numpy's rule for weak scalars), the default float for a float beside integers (PyTorch's rule)."""
    if dtype.kind == "f" or (dtype.kind in "iu" and type(x) is int):
        try:
            return np.asarray(x, dtype=dtype)
        except OverflowError:
            pass
    if dtype.kind in "iub" and isinstance(x, float):
        return np.asarray(x, dtype=_default_dtype)
    return np.asarray(x, dtype=np.result_type(dtype, x))


# Constants such as the 2 in `x * 2` recur in every step of a training loop: one read-only
# Tensor per (type, value, dtype) saves an array and a Tensor per use.
_constants: dict[tuple, Tensor] = {}
_MAX_CONSTANTS = 4096


def _constant(x: Any, dtype: np.dtype) -> Tensor:
    key = (type(x), x, dtype)
    t = _constants.get(key)
    if t is None:
        arr = _scalar_array(x, dtype)
        arr.flags.writeable = False
        t = Tensor._make(arr, None)
        # -0.0 == 0.0 and NaN != NaN: neither may share an entry.
        if x == x and not (x == 0 and math.copysign(1.0, x) < 0):
            if len(_constants) >= _MAX_CONSTANTS:
                _constants.clear()
            _constants[key] = t
    return t


class Tensor:
    """勾配を追跡できる多次元配列。

    ``Tensor(data, requires_grad=False, dtype=None, name=None)``

    ``data`` は numpy 配列 (最適化手法はこれをその場で書き換える)、``grad`` は同じ形の
    numpy 配列 (``backward`` で加算される) か None。
    """

    __slots__ = ("__weakref__", "_ctx", "_hooks", "_retain", "_seq", "_version", "data", "grad", "name",
                 "requires_grad")

    def __init__(self, data: Any, requires_grad: bool = False, dtype: Any = None, name: str | None = None):
        if isinstance(data, Tensor):
            data = data.data
        if dtype is not None:
            arr = np.array(data, dtype=dtype)
        elif isinstance(data, np.ndarray):
            # A parameter owns its memory, so an optimizer never writes into the caller's array.
            arr = data.copy() if requires_grad else data
        elif isinstance(data, np.generic):
            arr = np.asarray(data)
        else:
            try:
                arr = np.array(data, dtype=_default_dtype)
            except (ValueError, TypeError) as e:
                raise type(e)(
                    f"Tensor: data must be a number or a rectangular nested list of numbers, "
                    f"got {reprlib.repr(data)}: {e}"
                ) from None
            if arr.dtype == object:
                raise TypeError(f"Tensor data must be numeric, got {type(data).__name__} that numpy stores as objects")
        if requires_grad and arr.dtype.kind != "f":
            raise TypeError(
                f"only floating-point tensors can require gradients, got dtype {arr.dtype}; "
                "build it from floats or pass dtype=np.float32"
            )
        self._setup(arr, bool(requires_grad), None, name)

    def _setup(self, data: np.ndarray, requires_grad: bool, grad_fn: Any, name: str | None = None) -> None:
        """A tensor's whole state, set in this one place (by ``__init__``, and by ops through ``_make``)."""
        self.data = data
        self.grad = None
        self.requires_grad = requires_grad
        self._ctx = grad_fn  # the Function node that made this tensor (None for a leaf)
        self.name = name
        self._hooks = None
        self._retain = False
        self._seq = _next_seq()  # when it was made, on the clock that orders the graph
        self._version = 0  # when .data was last changed in place through the library (0: never)

    def _mark_changed(self) -> None:
        """Record an in-place change of ``.data``: stamp it with the current time of the same clock that numbers
        tensors. A graph made before the change can then tell (autograd checks ``_version > out._seq``)."""
        self._version = _next_seq()

    @staticmethod
    def _make(data: np.ndarray, grad_fn: Any) -> Tensor:
        """An op's result (or a constant when ``grad_fn`` is None), without the checks of ``__init__``."""
        t = object.__new__(Tensor)
        t._setup(data, grad_fn is not None, grad_fn)
        return t

    # ------------------------------------------------------------------ attributes
    @property
    def shape(self) -> tuple:
        return self.data.shape

    @property
    def ndim(self) -> int:
        return self.data.ndim

    @property
    def dtype(self) -> np.dtype:
        return self.data.dtype

    @property
    def size(self) -> int:
        return self.data.size

    @property
    def is_leaf(self) -> bool:
        """ユーザーが作ったテンソル (演算の結果でない) なら True。"""
        return self._ctx is None

    @property
    def grad_fn(self):
        """このテンソルを作った演算 (Function)。葉なら None。"""
        return self._ctx

    @property
    def T(self) -> Tensor:
        return self.transpose()

    def item(self) -> float:
        """要素が 1 つのテンソルを Python の数値として返す。"""
        if self.data.size != 1:
            raise ValueError(f"item() needs a tensor with exactly one element, got shape {self.shape}")
        return self.data.item()

    def numpy(self) -> np.ndarray:
        """中身の numpy 配列 (コピーではない) を返す。"""
        return self.data

    def detach(self) -> Tensor:
        """同じデータを持ち、グラフから切り離されたテンソルを返す。"""
        return Tensor._make(self.data, None)

    def zero_grad(self) -> None:
        """勾配を消す (PyTorch と同じく None にする)。"""
        self.grad = None

    def requires_grad_(self, flag: bool = True) -> Tensor:
        if flag and self.data.dtype.kind != "f":
            raise TypeError(f"only floating-point tensors can require gradients, got dtype {self.dtype}")
        if self._ctx is not None and not flag:
            raise RuntimeError("requires_grad can only be switched off on a leaf tensor; use detach()")
        self.requires_grad = bool(flag)
        return self

    def retain_grad(self) -> None:
        """途中のテンソルでも backward 後に ``.grad`` を残す。"""
        self._retain = True

    def register_hook(self, fn):
        """勾配が計算されたときに ``fn(grad)`` を呼ぶ。fn が値を返せばそれが勾配になる。

        戻り値の ``remove()`` でフックを外せる。
        """
        if not self.requires_grad:
            raise RuntimeError("cannot register a hook on a tensor that does not require grad")
        if self._hooks is None:
            self._hooks = []
        self._hooks.append(fn)
        return _HookHandle(self._hooks, fn)

    def backward(self, grad: Any = None, retain_graph: bool = False) -> None:
        """このテンソルから逆伝播し、葉テンソルの ``.grad`` に勾配を加算する。"""
        autograd.backward(self, grad, retain_graph)

    # ------------------------------------------------------------------ python protocol
    def __len__(self) -> int:
        if self.data.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return len(self.data)

    def __iter__(self):
        for i in range(len(self)):
            yield self[i]

    def __bool__(self) -> bool:
        return bool(self.data)

    def __float__(self) -> float:
        return float(self.item())

    def __int__(self) -> int:
        return int(self.item())

    # numpy functions on Tensors build the graph (np.exp(t), np.maximum(0, t), np.sum(t), ...): the
    # tables of which numpy function is which op live in numpy_api.py. Operators with the Tensor first
    # (t * 2, t + a) never come here; `a * t` with an ndarray a does, as numpy calls np.multiply(a, t).
    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        return numpy_api.array_ufunc(ufunc, method, inputs, kwargs)

    def __array_function__(self, func, types, args, kwargs):
        return numpy_api.array_function(func, types, args, kwargs)

    def __array__(self, dtype=None, copy=None):
        """``np.asarray(t)`` / ``np.array(t)``: the values as a constant array (an explicit step out of the graph)."""
        if _array_conversion.forbidden:
            raise TypeError(
                "np.asarray / np.array was given a Tensor here, which would cut the graph; apply numpy "
                "functions to the Tensor itself (np.exp(t), np.where(t > 0, t, 0)) or use tinygrad_jp.ops"
            )
        arr = self.data if dtype is None else self.data.astype(dtype, copy=False)
        if copy is False and arr is not self.data:
            raise ValueError(f"cannot convert a {self.data.dtype} Tensor to {np.dtype(dtype)} without a copy")
        return arr.copy() if copy and arr is self.data else arr

    __hash__ = object.__hash__

    def __repr__(self) -> str:
        body = np.array2string(self.data, separator=", ", prefix="Tensor(", precision=4)
        extra = []
        if self.data.dtype != _default_dtype:
            extra.append(f"dtype={self.data.dtype}")
        if self._ctx is not None:
            extra.append(f"grad_fn=<{self._ctx.name}>")
        elif self.requires_grad:
            extra.append("requires_grad=True")
        if self.name is not None:
            extra.append(f"name={self.name!r}")
        return "Tensor(" + ", ".join([body] + extra) + ")"

    def _repr_html_(self) -> str:
        """Jupyter・Colab での表示: 値、形、dtype、grad_fn、勾配を表にする (大きな配列は端だけ)。"""
        import html  # only a notebook asks for this: kept out of `import tinygrad_jp`

        def array(a: np.ndarray) -> str:
            text = np.array2string(a, separator=", ", precision=4, threshold=100, edgeitems=3)
            return f'<pre style="margin:0">{html.escape(text)}</pre>'

        if self.grad_fn is not None:
            origin = f"{html.escape(self.grad_fn.name)} (演算の結果)"
        else:
            origin = "None (葉: 勾配を求める対象)" if self.requires_grad else "None (定数)"
        rows = [
            ("値", array(self.data)),
            ("形", html.escape(str(self.shape))),
            ("dtype", html.escape(str(self.dtype))),
            ("grad_fn", origin),
            ("grad", "None" if self.grad is None else array(np.asarray(self.grad))),
        ]
        title = "Tensor" if self.name is None else f"Tensor {html.escape(repr(self.name))}"
        body = "".join(f'<tr><th style="text-align:left">{key}</th><td style="text-align:left">{value}</td></tr>'
                       for key, value in rows)
        return f"<table><caption style=\"text-align:left\">{title}</caption>{body}</table>"

    # ------------------------------------------------------------------ arithmetic
    def _lift(self, other: Any) -> Tensor:
        cls = type(other)
        if cls is Tensor:
            return other
        if cls is float or cls is int:  # the constants of `x * 2.0`: checked before the general cases
            t = _constants.get((cls, other, self.data.dtype))
            return t if t is not None else _constant(other, self.data.dtype)
        if isinstance(other, Tensor):
            return other
        if isinstance(other, np.ndarray):
            return Tensor._make(other, None)
        if isinstance(other, (int, float)):
            return _constant(other, self.data.dtype)
        if isinstance(other, np.generic):
            return Tensor._make(np.asarray(other), None)
        if isinstance(other, (list, tuple)):
            return Tensor._make(np.array(other, dtype=self.data.dtype if self.data.dtype.kind == "f" else None), None)
        raise TypeError(f"unsupported operand: expected a Tensor, ndarray or number, got {type(other).__name__}")

    def _pair(self, other: Any) -> tuple[Tensor, Tensor]:
        """(self, other) as the two operands of an arithmetic op. Beside a floating-point operand, an integer or
        boolean one is converted to the float's dtype, so float32 + int64 stays float32 (PyTorch's rule; numpy
        would give float64)."""
        b = other if type(other) is Tensor else self._lift(other)
        da, db = self.data.dtype, b.data.dtype
        if da is db or (da.kind == "f") == (db.kind == "f"):
            return self, b
        if da.kind == "f":
            return self, Tensor._make(b.data.astype(da), None)  # an integer tensor never requires grad
        return Tensor._make(self.data.astype(db), None), b

    def __add__(self, other):
        a, b = self._pair(other)
        return ops.Add()(a, b)

    def __radd__(self, other):
        a, b = self._pair(other)
        return ops.Add()(b, a)

    def __sub__(self, other):
        a, b = self._pair(other)
        return ops.Sub()(a, b)

    def __rsub__(self, other):
        a, b = self._pair(other)
        return ops.Sub()(b, a)

    def __mul__(self, other):
        a, b = self._pair(other)
        return ops.Mul()(a, b)

    def __rmul__(self, other):
        a, b = self._pair(other)
        return ops.Mul()(b, a)

    def __truediv__(self, other):
        a, b = self._pair(other)
        return ops.Div()(a, b)

    def __rtruediv__(self, other):
        a, b = self._pair(other)
        return ops.Div()(b, a)

    def __pow__(self, other):
        a, b = self._pair(other)
        return ops.Pow()(a, b)

    def __rpow__(self, other):
        a, b = self._pair(other)
        return ops.Pow()(b, a)

    def __matmul__(self, other):
        a, b = self._pair(other)
        return ops.matmul(a, b)

    def __rmatmul__(self, other):
        a, b = self._pair(other)
        return ops.matmul(b, a)

    def __neg__(self):
        return ops.Neg()(self)

    def __pos__(self):
        return self

    def __abs__(self):
        return ops.Abs()(self)

    # ------------------------------------------------------------------ in place
    # `w -= lr * w.grad` under no_grad() changes w.data itself (an optimizer written by hand) and
    # marks w as changed, so that a backward through a graph made before the change refuses to run.
    def _in_place(self, other, ufunc, out_of_place) -> Tensor:
        if not _recorded(self, other):
            ufunc(self.data, _raw(other), out=self.data)
            self._mark_changed()
            return self
        if self._ctx is None:
            raise RuntimeError(
                f"a leaf tensor that requires grad ({_describe(self)}) cannot be changed in place while "
                "the graph is being recorded; do it inside `with tg.no_grad():`"
            )
        return out_of_place(self, other)  # inside the graph: a new tensor, as `t = t + other` gives

    def __iadd__(self, other):
        return self._in_place(other, np.add, Tensor.__add__)

    def __isub__(self, other):
        return self._in_place(other, np.subtract, Tensor.__sub__)

    def __imul__(self, other):
        return self._in_place(other, np.multiply, Tensor.__mul__)

    def __itruediv__(self, other):
        return self._in_place(other, np.divide, Tensor.__truediv__)

    def __setitem__(self, index, value) -> None:
        if _recorded(self, value):
            raise RuntimeError(
                f"t[...] = value on {_describe(self)} cannot be recorded in the graph; build a new tensor "
                "(tg.where, tg.concatenate) or change it inside `with tg.no_grad():`"
            )
        self.data[ops._normalize_index(index)] = _raw(value)
        self._mark_changed()

    # Comparisons are not differentiable: they return boolean ndarrays.
    def __lt__(self, other):
        return self.data < _raw(other)

    def __le__(self, other):
        return self.data <= _raw(other)

    def __gt__(self, other):
        return self.data > _raw(other)

    def __ge__(self, other):
        return self.data >= _raw(other)

    def __eq__(self, other):
        return self.data == _raw(other)

    def __ne__(self, other):
        return self.data != _raw(other)

    def __getitem__(self, index):
        return ops.GetItem(index)(self)

    # ------------------------------------------------------------------ elementwise
    def abs(self) -> Tensor:
        return ops.Abs()(self)

    def exp(self) -> Tensor:
        return ops.Exp()(self)

    def log(self) -> Tensor:
        return ops.Log()(self)

    def sqrt(self) -> Tensor:
        return ops.Sqrt()(self)

    def sin(self) -> Tensor:
        return ops.Sin()(self)

    def cos(self) -> Tensor:
        return ops.Cos()(self)

    def tanh(self) -> Tensor:
        return activations._ActivationFunction(activations.TANH)(self)

    def sigmoid(self) -> Tensor:
        return activations._ActivationFunction(activations.SIGMOID)(self)

    def relu(self) -> Tensor:
        return activations._ActivationFunction(activations.RELU)(self)

    def clip(self, min: float | None = None, max: float | None = None) -> Tensor:
        return ops.Clip(min, max)(self)

    def maximum(self, other) -> Tensor:
        a, b = self._pair(other)
        return ops.Maximum()(a, b)

    def minimum(self, other) -> Tensor:
        a, b = self._pair(other)
        return ops.Minimum()(a, b)

    def astype(self, dtype) -> Tensor:
        """dtype を変える (微分可能: 勾配は元の dtype に戻される)。"""
        return ops.Cast(dtype)(self)

    # ------------------------------------------------------------------ reductions
    def sum(self, axis=None, keepdims: bool = False) -> Tensor:
        return ops.Sum(axis, keepdims)(self)

    def mean(self, axis=None, keepdims: bool = False) -> Tensor:
        return ops.Mean(axis, keepdims)(self)

    def max(self, axis=None, keepdims: bool = False) -> Tensor:
        return ops.Extremum(np.max, axis, keepdims)(self)

    def min(self, axis=None, keepdims: bool = False) -> Tensor:
        return ops.Extremum(np.min, axis, keepdims)(self)

    def var(self, axis=None, keepdims: bool = False, ddof: int = 0) -> Tensor:
        """分散 (numpy と同じく既定は ddof=0、つまり N で割る)。"""
        return ops.var(self, axis, keepdims, ddof)

    def argmax(self, axis=None) -> np.ndarray:
        return self.data.argmax(axis=axis)

    def argmin(self, axis=None) -> np.ndarray:
        return self.data.argmin(axis=axis)

    # ------------------------------------------------------------------ shape
    def reshape(self, *shape) -> Tensor:
        if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
            shape = tuple(shape[0])
        return ops.Reshape(shape)(self)

    def transpose(self, *axes) -> Tensor:
        if len(axes) == 1 and isinstance(axes[0], (tuple, list)):
            axes = tuple(axes[0])
        return ops.Transpose(axes or None)(self)

    def swapaxes(self, axis1: int, axis2: int) -> Tensor:
        axes = list(range(self.ndim))
        axes[axis1], axes[axis2] = axes[axis2], axes[axis1]
        return ops.Transpose(tuple(axes))(self)

    def flatten(self, start_dim: int = 0, end_dim: int = -1) -> Tensor:
        """start_dim から end_dim までの軸を 1 つにまとめる (PyTorch と同じ)。"""
        return ops.flatten(self, start_dim, end_dim)

    def squeeze(self, axis=None) -> Tensor:
        return ops.squeeze(self, axis)

    def unsqueeze(self, axis: int) -> Tensor:
        return ops.unsqueeze(self, axis)

    def broadcast_to(self, shape) -> Tensor:
        return ops.BroadcastTo(tuple(shape))(self)


class _ArrayConversion(threading.local):
    """Whether np.asarray(tensor) is refused, for each thread on its own (as grad mode is)."""

    forbidden = False


_array_conversion = _ArrayConversion()


@contextlib.contextmanager
def array_conversion_forbidden():
    """Make np.asarray(tensor) raise in this thread, so that numpy code cannot silently cut a graph."""
    saved, _array_conversion.forbidden = _array_conversion.forbidden, True
    try:
        yield
    finally:
        _array_conversion.forbidden = saved


def _raw(x: Any) -> Any:
    return x.data if isinstance(x, Tensor) else x


def _recorded(t: Tensor, other: Any) -> bool:
    """Would an op on t and other be recorded in the graph?"""
    return autograd.is_grad_enabled() and (t.requires_grad or (isinstance(other, Tensor) and other.requires_grad))


def _describe(t: Tensor) -> str:
    return f"{t.name!r}, shape {t.shape}" if t.name else f"shape {t.shape}"


class _HookHandle:
    __slots__ = ("_fn", "_hooks")

    def __init__(self, hooks: list, fn):
        self._hooks = hooks
        self._fn = fn

    def remove(self) -> None:
        if self._fn in self._hooks:
            self._hooks.remove(self._fn)


# Imported last: these modules build on Tensor.
from . import activations, autograd, numpy_api, ops  # noqa: E402
