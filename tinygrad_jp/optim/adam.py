"""Adam と、重み減衰を勾配から切り離した AdamW。"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from ..tensor import Tensor
from .optimizer import Optimizer, alias, check_nonnegative, check_positive, check_unit


class Adam(Optimizer):
    """Adam (第3章の推奨。学習率 0.001)。

    m ← β₁m + (1 − β₁)∂L/∂w,  v ← β₂v + (1 − β₂)(∂L/∂w)²,
    m̂ = m/(1 − β₁ᵗ),  v̂ = v/(1 − β₂ᵗ),  w ← w − η m̂/(√v̂ + ε)

    m, v は ``opt.m[key]``, ``opt.v[key]``。t は ``opt.t`` (本文と同じく 1 つの数: 更新の回数)。
    ε は ``eps`` (別名 ``epsilon``)。``weight_decay`` > 0 なら勾配に λw を足す (L2 正則化)。
    """

    hyperparameters = ("beta1", "beta2", "eps", "weight_decay")
    state_names = ("m", "v")

    def __init__(self, params: Iterable[Tensor] | None = None, lr: float = 0.001, beta1: float = 0.9,
                 beta2: float = 0.999, eps: float = 1e-8, *, learning_rate: float | None = None,
                 weight_decay: float = 0.0) -> None:
        super().__init__(params, lr, learning_rate)
        self.beta1 = check_unit("beta1", beta1)
        self.beta2 = check_unit("beta2", beta2)
        self.eps = check_positive("eps", eps)
        self.weight_decay = check_nonnegative("weight_decay", weight_decay)

    epsilon = alias("eps", "``eps`` の別名 (第3章のクラスの属性名)。")

    def update_param(self, key: Any, w: np.ndarray, g: np.ndarray) -> None:
        m, v = self.m[key], self.v[key]
        m[...] = self.beta1 * m + (1 - self.beta1) * g
        v[...] = self.beta2 * v + (1 - self.beta2) * g**2
        m_hat = m / (1 - self.beta1**self.t)
        v_hat = v / (1 - self.beta2**self.t)
        w -= self.lr * m_hat / (np.sqrt(v_hat) + self.eps)


class AdamW(Adam):
    """AdamW: 重み減衰を勾配に混ぜず、Adam の更新の前に w ← w(1 − ηλ) と直接縮める (λ = ``weight_decay``)。"""

    decoupled_weight_decay = True

    def __init__(self, params: Iterable[Tensor] | None = None, lr: float = 0.001, beta1: float = 0.9,
                 beta2: float = 0.999, eps: float = 1e-8, *, learning_rate: float | None = None,
                 weight_decay: float = 0.01) -> None:
        super().__init__(params, lr, beta1, beta2, eps, learning_rate=learning_rate, weight_decay=weight_decay)

    def update_param(self, key: Any, w: np.ndarray, g: np.ndarray) -> None:
        w *= 1 - self.lr * self.weight_decay
        super().update_param(key, w, g)
