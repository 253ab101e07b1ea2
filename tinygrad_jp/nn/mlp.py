"""MLP: 勾配消失の実験に使う深い全結合ネットワークを 1 行で作る。"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise
from typing import Any

from .. import activations
from ..random import get_rng
from .containers import Sequential
from .linear import Linear
from .norm import BatchNorm1d
from .residual import Residual

_SATURATING = ("Sigmoid", "Tanh", "Softmax", "Identity")


def default_init(activation: Any) -> str:
    """本文の推奨: Sigmoid・tanh には Xavier、ReLU の仲間には He。"""
    return "xavier" if type(activations.get(activation)).__name__ in _SATURATING else "he"


class MLP(Sequential):
    """``MLP(sizes, activation="relu", init=None, batchnorm=False, residual=False, rng=None)``

    ``sizes = [入力, 隠れ層..., 出力]`` の全結合ネットワーク。隠れ層はそれぞれ
    Linear → (BatchNorm1d) → 活性化関数 で、最後の Linear の後には活性化関数を置かない
    (損失関数が softmax などを受け持つ)。

    * ``init=None``: Sigmoid・tanh なら "xavier"、ReLU の仲間なら "he" (本文の推奨)。
    * ``residual=True``: 入力と出力の幅が等しい隠れ層を ``Residual`` で包む (x + block(x))。
    * ``rng``: 重みの乱数 (Generator か seed)。同じ seed なら同じネットワークになる。

    例: ``MLP([2] + [64] * 10 + [1], activation="sigmoid")`` は 10 層のシグモイドネットワーク。
    """

    def __init__(self, sizes: Sequence[int], activation: Any = "relu", init: Any = None,
                 batchnorm: bool = False, residual: bool = False, rng: Any = None):
        sizes = list(sizes)
        if len(sizes) < 2:
            raise ValueError(f"MLP: sizes needs at least an input and an output size, got {sizes}")
        activations.get(activation)  # fail early on an unknown name
        init = default_init(activation) if init is None else init
        gen = get_rng(rng)
        super().__init__()
        for n_in, n_out in pairwise(sizes[:-1]):
            parts = [Linear(n_in, n_out, init=init, rng=gen)]
            if batchnorm:
                parts.append(BatchNorm1d(n_out))
            parts.append(activations.get(activation))
            if residual and n_in == n_out:
                self.append(Residual(Sequential(*parts)))
            else:
                for part in parts:
                    self.append(part)
        self.append(Linear(sizes[-2], sizes[-1], init=init, rng=gen))
        self.sizes = sizes
