"""活性化関数。それぞれが自分の導関数を持ち、逆伝播はその導関数をそのまま使う。

``Activation`` を継承して ``f(x)`` と ``df(x, y)`` (y = f(x)) を書けば、新しい活性化関数になる::

    class Square(Activation):
        def f(self, x):
            return x * x

        def df(self, x, y):
            return 2 * x

できたものは 3 通りに使える: ``Sequential`` の層として、Tensor に (逆伝播つき)、
ndarray に (曲線と導関数を描くため: ``act(x)``, ``act.derivative(x)``)。
"""

from __future__ import annotations

import numpy as np

from . import tensor as tensor_module
from .autograd import Function
from .layer import Layer
from .tensor import Tensor


class _ActivationFunction(Function):
    """The graph node of one application of an Activation: backward is g * df(x, y)."""

    __slots__ = ("act",)

    def __init__(self, act: Activation):
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


class Activation(Layer):
    """要素ごとの活性化関数の基底クラス。サブクラスは ``f`` と ``df`` を与える。

    * ``f(x)``: numpy 配列 x に対する関数値。
    * ``df(x, y)``: 導関数 f'(x)。y = f(x) も渡されるので、Sigmoid なら y * (1 - y) と書ける。

    ``df`` を演算子と ``tinygrad_jp.ops`` の関数 (``exp``, ``where`` など) だけで書けば、
    Tensor でも動き、``grad(..., create_graph=True)`` で 2 階微分もできる。
    """

    def f(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError(f"{type(self).__name__} must define f(x)")

    def df(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        raise NotImplementedError(f"{type(self).__name__} must define df(x, y)")

    def __call__(self, x):
        if isinstance(x, Tensor):
            return _ActivationFunction(self)(x)
        return self.f(np.asarray(x, dtype=float) if not isinstance(x, np.ndarray) else x)

    forward = __call__

    def derivative(self, x) -> np.ndarray:
        """ndarray x における導関数 f'(x) (グラフを描くため)。"""
        x = np.asarray(x, dtype=float) if not isinstance(x, np.ndarray) else x
        return self.df(x, self.f(x))

    def _df_graph(self, x: Tensor, y: Tensor):
        """df evaluated on Tensors, so that the gradient is itself differentiable.

        A numpy function that would silently turn a Tensor into a constant array raises instead,
        so a plain ndarray result is a true constant (a piecewise-constant derivative like ReLU's).
        """
        try:
            with tensor_module.array_conversion_forbidden():
                return self.df(x, y)
        except TypeError as e:
            raise NotImplementedError(
                f"{type(self).__name__}: second derivatives need df(x, y) written with operators and "
                f"tinygrad_jp.ops functions (ops.exp, ops.where, ...) so that it also works on Tensors "
                f"(df raised: {e}); first-order backward() works as it is"
            ) from None


class Sigmoid(Activation):
    """σ(x) = 1 / (1 + e^{-x})、σ'(x) = σ(x)(1 - σ(x))。"""

    def f(self, x):
        # exp(-log(1 + e^{-x})) never overflows and keeps relative precision for very negative x.
        return np.exp(-np.logaddexp(0, -x))

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
        return (x > 0).astype(x.dtype)


SIGMOID = Sigmoid()
TANH = Tanh()
RELU = ReLU()


def get(name: str | Activation | type) -> Activation:
    """名前 ("relu" など)・クラス・インスタンスのどれからでも活性化関数のインスタンスを返す。"""
    if isinstance(name, Activation):
        return name
    if isinstance(name, type) and issubclass(name, Activation):
        return name()
    key = str(name).lower().replace("_", "").replace(" ", "")
    for cls in _registry():
        if cls.__name__.lower() == key:
            return cls()
    names = sorted(cls.__name__.lower() for cls in _registry())
    raise ValueError(f"unknown activation {name!r}; expected one of {names} or an Activation")


def _registry() -> list[type]:
    return [c for c in globals().values() if isinstance(c, type) and issubclass(c, Activation) and c is not Activation]
