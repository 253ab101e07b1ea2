"""パラメータごとに学習率を調整する手法: AdaGrad, RMSprop。"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from ..tensor import Tensor
from .optimizer import Optimizer, alias, check_nonnegative, check_positive, check_unit


class AdaGrad(Optimizer):
    """AdaGrad。 h ← h + (∂L/∂w)²,  w ← w − η/(√h + ε) ∂L/∂w

    h は ``opt.h[key]``。ε は ``eps`` (別名 ``epsilon``)。
    """

    hyperparameters = ("eps", "weight_decay")
    state_names = ("h",)

    def __init__(self, params: Iterable[Tensor] | None = None, lr: float = 0.01, eps: float = 1e-8, *,
                 learning_rate: float | None = None, weight_decay: float = 0.0) -> None:
        super().__init__(params, lr, learning_rate)
        self.eps = check_positive("eps", eps)
        self.weight_decay = check_nonnegative("weight_decay", weight_decay)

    epsilon = alias("eps", "``eps`` の別名 (第3章のクラスの属性名)。")

    def update_param(self, key: Any, w: np.ndarray, g: np.ndarray) -> None:
        h = self.h[key]
        h += g**2
        w -= self.lr * g / (np.sqrt(h) + self.eps)


class RMSprop(Optimizer):
    """RMSprop。 h ← βh + (1 − β)(∂L/∂w)²,  w ← w − η/(√h + ε) ∂L/∂w  (β = ``decay_rate``)

    h は ``opt.h[key]``。ε は ``eps`` (別名 ``epsilon``)。
    """

    hyperparameters = ("decay_rate", "eps", "weight_decay")
    state_names = ("h",)

    def __init__(self, params: Iterable[Tensor] | None = None, lr: float = 0.01, decay_rate: float = 0.99,
                 eps: float = 1e-8, *, learning_rate: float | None = None, weight_decay: float = 0.0) -> None:
        super().__init__(params, lr, learning_rate)
        self.decay_rate = check_unit("decay_rate", decay_rate, closed=True)
        self.eps = check_positive("eps", eps)
        self.weight_decay = check_nonnegative("weight_decay", weight_decay)

    epsilon = alias("eps", "``eps`` の別名 (第3章のクラスの属性名)。")

    def update_param(self, key: Any, w: np.ndarray, g: np.ndarray) -> None:
        h = self.h[key]
        h[...] = self.decay_rate * h + (1 - self.decay_rate) * g**2
        w -= self.lr * g / (np.sqrt(h) + self.eps)
