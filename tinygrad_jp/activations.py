"""活性化関数。それぞれが自分の導関数を持ち、逆伝播はその導関数をそのまま使う。

``Activation`` を継承して ``f(x)`` と ``df(x, y)`` (y = f(x)) を書けば、新しい活性化関数になる::

    class Square(Activation):
        def f(self, x):
            return x * x

        def df(self, x, y):
            return 2 * x

できたものは 3 通りに使える: ``Sequential`` の層として、Tensor に (逆伝播つき)、
ndarray に (曲線と導関数を描くため: ``act(x)``, ``act.derivative(x)``)。

章の numpy 関数 (``sigmoid``, ``sigmoid_derivative``, ..., ``elu_derivative``, ``swish``,
``swish_derivative``) も同じ名前でここにあり、中身は上のクラスを呼ぶだけである。
"""

from __future__ import annotations

import math

import numpy as np

from . import ops
from . import tensor as tensor_module
from .autograd import Function
from .layer import Layer
from .tensor import Tensor


class _ActivationFunction(Function):
    """The graph node of one application of an Activation: backward is g * df(x, y)."""

    __slots__ = ("act",)

    def __init__(self, act: Activation):
        super().__init__()
        self.act = act

    @property
    def name(self) -> str:
        return type(self.act).__name__

    def forward(self, x):
        return self.act.f(x)

    def backward(self, g, y, x):
        if isinstance(g, Tensor):
            return g * self.act._df_graph(x, y)
        return g * self.act.df(x, y)


def _as_float_array(x) -> np.ndarray:
    """ndarray for plotting: floats keep their dtype, anything else becomes float64."""
    arr = np.asarray(x)
    return arr if arr.dtype.kind == "f" else arr.astype(np.float64)


class Activation(Layer):
    """要素ごとの活性化関数の基底クラス。サブクラスは ``f`` と ``df`` を与える。

    * ``f(x)``: numpy 配列 x に対する関数値。
    * ``df(x, y)``: 導関数 f'(x)。y = f(x) も渡されるので、Sigmoid なら y * (1 - y) と書ける。

    ``df`` を演算子と、Tensor で勾配のある numpy 関数 (``np.exp``, ``np.where`` など) だけで書けば、
    Tensor でも動き、``grad(..., create_graph=True)`` で 2 階微分もできる。
    """

    def f(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError(f"{type(self).__name__} must define f(x)")

    def df(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        raise NotImplementedError(f"{type(self).__name__} must define df(x, y)")

    def __call__(self, x):
        if isinstance(x, Tensor):
            return _ActivationFunction(self)(x)
        return self.f(_as_float_array(x))

    forward = __call__

    def derivative(self, x) -> np.ndarray:
        """ndarray x における導関数 f'(x) (グラフを描くため)。"""
        x = _as_float_array(x)
        d = self.df(x, self.f(x))
        return d.astype(x.dtype) if d.dtype == bool else d  # a 0/1 mask reads as numbers

    def _df_graph(self, x: Tensor, y: Tensor):
        """df evaluated on Tensors, so that the gradient is itself differentiable.

        numpy functions on Tensors build the graph or raise (numpy_api.py), and here an explicit
        np.asarray(x) raises too, so a plain ndarray result is a true constant (a piecewise-constant
        derivative like ReLU's), never a graph cut in silence.
        A constant stays in the graph as a function of x whose derivative is 0, so that a second
        derivative through ReLU is 0, as in PyTorch.
        """
        try:
            with tensor_module.array_conversion_forbidden():
                d = self.df(x, y)
        except TypeError as e:
            raise NotImplementedError(
                f"{type(self).__name__}: second derivatives need df(x, y) written with operators and "
                f"numpy functions that have a gradient on Tensors (np.exp, np.where, ...: docs/api.md lists "
                f"them) so that it also works on Tensors (df raised: {e}); first-order backward() works as it is"
            ) from None
        return d if isinstance(d, Tensor) else ops.piecewise_constant(d, x)


def _positive(x) -> np.ndarray:
    """1 where x > 0, else 0, as a constant array of x's dtype (also when x is a Tensor).

    Callers blend branches arithmetically as m·a + (1 - m)·b, which is exact for finite a and b and
    several times faster than np.where on unpredictable signs.
    """
    return (x > 0).astype(x.dtype)


def _clip(x, bound: float):
    return ops.minimum(ops.maximum(x, -bound), bound)


class Sigmoid(Activation):
    """σ(x) = 1 / (1 + e^{-x})、σ'(x) = σ(x)(1 - σ(x))。"""

    def f(self, x):
        # With e = e^{-|x|} ∈ (0, 1]: σ(x) = 1 / (1 + e) for x ≥ 0 and e / (1 + e) for x < 0. Nothing
        # overflows, very negative x keeps its relative precision, and it is much faster than logaddexp.
        e = np.exp(-np.abs(x))
        m = (x >= 0).astype(e.dtype)
        return (m + (1 - m) * e) / (1 + e)

    def df(self, x, y):
        return y * (1 - y)


class Tanh(Activation):
    """tanh(x)、tanh'(x) = 1 - tanh²(x)。"""

    def f(self, x):
        return np.tanh(x)

    def df(self, x, y):
        return 1 - y * y


class ReLU(Activation):
    """ReLU(x) = max(0, x)、導関数は x > 0 で 1、それ以外で 0。"""

    def f(self, x):
        return np.maximum(x, 0)

    def df(self, x, y):
        return _positive(x)


class LeakyReLU(Activation):
    """Leaky ReLU(x) = x (x > 0)、αx (x ≤ 0)。導関数は x > 0 で 1、それ以外で α。"""

    def __init__(self, alpha: float = 0.01):
        self.alpha = float(alpha)

    def f(self, x):
        # For α ≤ 1 the larger of x and αx is the right branch. For α > 1, αx of a large positive x
        # would overflow in the branch that is thrown away, so only the negative part is scaled.
        if self.alpha <= 1:
            return np.maximum(x, x * self.alpha)
        return np.maximum(x, 0) + np.minimum(x, 0) * self.alpha

    def df(self, x, y):
        m = _positive(x)
        return m + (1 - m) * self.alpha

    def extra_repr(self) -> str:
        return f"alpha={self.alpha}"


class ELU(Activation):
    """ELU(x) = x (x > 0)、α(e^x - 1) (x ≤ 0)。導関数は x > 0 で 1、それ以外で αe^x。"""

    def __init__(self, alpha: float = 1.0):
        self.alpha = float(alpha)

    def f(self, x):
        # e^x is taken of min(x, 0) only: the chapter's np.exp(x) overflows for large positive x.
        return np.maximum(x, 0) + np.expm1(np.minimum(x, 0)) * self.alpha

    def df(self, x, y):
        m = _positive(x)
        return m + (1 - m) * (ops.exp(ops.minimum(x, 0)) * self.alpha)

    def extra_repr(self) -> str:
        return f"alpha={self.alpha}"


class Swish(Activation):
    """Swish(x) = x σ(βx)、導関数は σ(βx) + βx σ(βx)(1 - σ(βx)) = σ(βx) + β y (1 - σ(βx))。

    β = 1 のものは SiLU とも呼ばれる。β → ∞ で ReLU に近づく。
    """

    def __init__(self, beta: float = 1.0):
        self.beta = float(beta)

    def _arg(self, x):
        """βx. For |β| > 1 that product may overflow, so x is clipped where σ(βx) is exactly 0 or 1."""
        if abs(self.beta) <= 1:
            return x * self.beta
        return _clip(x, 1000 / abs(self.beta)) * self.beta

    def f(self, x):
        return x * SIGMOID.f(self._arg(x))

    def df(self, x, y):
        s = SIGMOID(self._arg(x))
        return s + y * (1 - s) * self.beta

    def extra_repr(self) -> str:
        return f"beta={self.beta}"


class GELU(Activation):
    """GELU の tanh 近似 (PyTorch の ``approximate="tanh"`` と同じ式)。

    GELU(x) ≈ 0.5x(1 + tanh(u))、u = √(2/π)(x + 0.044715x³)。0.5(1 + tanh u) = σ(2u) なので
    GELU(x) = x σ(2u)、導関数は σ(2u) + 2√(2/π) x σ(2u)(1 - σ(2u))(1 + 3·0.044715x²)。
    """

    _C = math.sqrt(2 / math.pi)
    _K = 0.044715
    # Beyond |x| = 25, 2u > 1100 and σ(2u) is exactly 0 or 1 in float64 and float32, so clipping x
    # inside the cubic changes no value while keeping x³ from overflowing.
    _BOUND = 25.0

    def _arg(self, x):
        xc = _clip(x, self._BOUND)
        return xc * (1 + xc * xc * self._K) * (2 * self._C)

    def f(self, x):
        return x * SIGMOID.f(self._arg(x))

    def df(self, x, y):
        s = SIGMOID(self._arg(x))
        xc = _clip(x, self._BOUND)
        return s + x * s * (1 - s) * (1 + xc * xc * (3 * self._K)) * (2 * self._C)


class Softplus(Activation):
    """Softplus(x) = log(1 + e^x)、導関数は σ(x)。ReLU を滑らかにしたもの。"""

    def f(self, x):
        # log(1 + e^x) = max(x, 0) + log(1 + e^{-|x|}): no overflow for any x (and faster than logaddexp).
        return np.maximum(x, 0) + np.log1p(np.exp(-np.abs(x)))

    def df(self, x, y):
        return SIGMOID(x)


class Identity(Activation):
    """恒等関数 f(x) = x、導関数は 1 (回帰の出力層などに)。"""

    def f(self, x):
        return x.copy()

    def df(self, x, y):
        return np.ones(x.shape, dtype=x.dtype)


# ---------------------------------------------------------------------- along an axis
def _softmax_parts(x: np.ndarray, axis: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """z = x - max(x), e = e^z and s = Σ e: softmax is e / s and log softmax is z - log s.

    Subtracting the maximum keeps every e^z in (0, 1], so nothing overflows and s ≥ 1.
    """
    z = x - x.max(axis=axis, keepdims=True)
    e = np.exp(z)
    return z, e, e.sum(axis=axis, keepdims=True)


class _AxisFunction(Function):
    """An op that works along one axis (softmax and log softmax)."""

    __slots__ = ("axis",)

    def __init__(self, axis: int):
        super().__init__()
        self.axis = axis


class _SoftmaxFunction(_AxisFunction):
    """softmax along one axis; backward is the full Jacobian product y ⊙ (g - Σ g·y)."""

    __slots__ = ()

    @property
    def name(self) -> str:
        return "Softmax"

    def forward(self, x):
        _, e, s = _softmax_parts(x, self.axis)
        e /= s
        return e

    def backward(self, g, y, x):
        return y * (g - (g * y).sum(axis=self.axis, keepdims=True))


class _LogSoftmaxFunction(_AxisFunction):
    """log softmax along one axis; backward is g - softmax ⊙ Σ g, with softmax = e^y ≤ 1."""

    __slots__ = ()

    @property
    def name(self) -> str:
        return "LogSoftmax"

    def forward(self, x):
        z, _, s = _softmax_parts(x, self.axis)
        return z - np.log(s)

    def backward(self, g, y, x):
        return g - ops.exp(y) * g.sum(axis=self.axis, keepdims=True)


class _AlongAxis(Layer):
    """A layer that normalises along one axis (not elementwise, so not an Activation)."""

    _function: type[Function]

    def __init__(self, axis: int = -1):
        self.axis = int(axis)

    def __call__(self, x):
        arr = x.data if isinstance(x, Tensor) else _as_float_array(x)
        if not -arr.ndim <= self.axis < arr.ndim:
            raise ValueError(
                f"{type(self).__name__}: axis {self.axis} is out of range for an input of shape {arr.shape}"
            )
        if isinstance(x, Tensor):
            return self._function(self.axis)(x)
        return self._function(self.axis).forward(arr)

    forward = __call__

    def extra_repr(self) -> str:
        return f"axis={self.axis}"


class Softmax(_AlongAxis):
    """softmax(x)_i = e^{x_i} / Σ_j e^{x_j} (軸 ``axis`` に沿って)。

    最大値を引いてから e^x を計算するので、どんな有限の入力でもあふれない。逆伝播は
    ヤコビ行列全体を使った y ⊙ (g - Σ g·y)。
    """

    _function = _SoftmaxFunction


class LogSoftmax(_AlongAxis):
    """log softmax(x)_i = x_i - log Σ_j e^{x_j} (log-sum-exp で安定に計算する)。"""

    _function = _LogSoftmaxFunction


SIGMOID = Sigmoid()
TANH = Tanh()
RELU = ReLU()


# ---------------------------------------------------------------------- the chapter's functions
def sigmoid(x: np.ndarray) -> np.ndarray:
    """σ(x) = 1 / (1 + e^{-x})。"""
    return SIGMOID(x)


def sigmoid_derivative(x: np.ndarray) -> np.ndarray:
    """σ'(x) = σ(x)(1 - σ(x))。"""
    return SIGMOID.derivative(x)


def tanh(x: np.ndarray) -> np.ndarray:
    """tanh(x)。"""
    return TANH(x)


def tanh_derivative(x: np.ndarray) -> np.ndarray:
    """tanh'(x) = 1 - tanh²(x)。"""
    return TANH.derivative(x)


def relu(x: np.ndarray) -> np.ndarray:
    """ReLU(x) = max(0, x)。"""
    return RELU(x)


def relu_derivative(x: np.ndarray) -> np.ndarray:
    """x > 0 で 1、それ以外で 0。"""
    return RELU.derivative(x)


def leaky_relu(x: np.ndarray, alpha: float = 0.01) -> np.ndarray:
    """x (x > 0)、αx (x ≤ 0)。"""
    return LeakyReLU(alpha)(x)


def leaky_relu_derivative(x: np.ndarray, alpha: float = 0.01) -> np.ndarray:
    """x > 0 で 1、それ以外で α。"""
    return LeakyReLU(alpha).derivative(x)


def elu(x: np.ndarray, alpha: float = 1.0) -> np.ndarray:
    """x (x > 0)、α(e^x - 1) (x ≤ 0)。大きな x でもあふれない。"""
    return ELU(alpha)(x)


def elu_derivative(x: np.ndarray, alpha: float = 1.0) -> np.ndarray:
    """x > 0 で 1、それ以外で αe^x。"""
    return ELU(alpha).derivative(x)


def swish(x: np.ndarray, beta: float = 1.0) -> np.ndarray:
    """x σ(βx)。"""
    return Swish(beta)(x)


def swish_derivative(x: np.ndarray, beta: float = 1.0) -> np.ndarray:
    """σ(βx) + βx σ(βx)(1 - σ(βx))。"""
    return Swish(beta).derivative(x)


# ---------------------------------------------------------------------- lookup by name
def get(name: str | Layer | type) -> Layer:
    """名前 ("relu" など)・クラス・インスタンスのどれからでも活性化関数のインスタンスを返す。"""
    if isinstance(name, (Activation, _AlongAxis)):
        return name
    if isinstance(name, type) and issubclass(name, (Activation, _AlongAxis)):
        return name()
    key = str(name).lower().replace("_", "").replace(" ", "")
    for cls in _registry():
        if cls.__name__.lower() == key:
            return cls()
    names = sorted(cls.__name__.lower() for cls in _registry())
    raise ValueError(f"unknown activation {name!r}; expected one of {names} or an Activation")


def _registry() -> list[type]:
    bases = (Activation, _AlongAxis)
    return [c for c in globals().values() if isinstance(c, type) and issubclass(c, bases) and c not in bases]
