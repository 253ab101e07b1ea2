"""Adam と、重み減衰を勾配から切り離した AdamW。"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from ..tensor import Tensor
from .optimizer import Optimizer, check_nonnegative, check_positive, check_unit


class Adam(Optimizer):
    """Adam (第3章の推奨。学習率 0.001)。

    m ← β₁m + (1 − β₁)∂L/∂w,  v ← β₂v + (1 − β₂)(∂L/∂w)²,
    m̂ = m/(1 − β₁ᵗ),  v̂ = v/(1 − β₂ᵗ),  w ← w − η m̂/(√v̂ + ε)

    t はそのパラメータを更新した回数。``weight_decay`` > 0 なら勾配に λw を足す (L2 正則化)。
    """

    _default_lr = 0.001
    hyperparameters = ("beta1", "beta2", "eps", "weight_decay")
    state_names = ("m", "v")
    n_scratch = 2

    def __init__(self, params: Iterable[Tensor] | None = None, lr: float = 0.001, beta1: float = 0.9,
                 beta2: float = 0.999, eps: float = 1e-8, *, learning_rate: float | None = None,
                 weight_decay: float = 0.0) -> None:
        super().__init__(params, lr, learning_rate)
        self.beta1 = check_unit("beta1", beta1)
        self.beta2 = check_unit("beta2", beta2)
        self.eps = check_positive("eps", eps)
        self.weight_decay = check_nonnegative("weight_decay", weight_decay)

    def update_one(self, w: np.ndarray, g: np.ndarray, state: dict[str, Any], scratch: list[np.ndarray],
                   lr: float) -> None:
        m, v, t = state["m"], state["v"], state["step"]
        b1, b2 = self.beta1, self.beta2
        m *= b1
        m += np.multiply(g, 1 - b1, out=scratch[0])
        v *= b2
        g2 = np.multiply(g, g, out=scratch[0])
        g2 *= 1 - b2
        v += g2
        step = np.divide(m, 1 - b1**t, out=scratch[0])
        step *= lr
        denom = np.divide(v, 1 - b2**t, out=scratch[1])
        np.sqrt(denom, out=denom)
        denom += self.eps
        step /= denom
        w -= step


class AdamW(Adam):
    """AdamW: 重み減衰を勾配に混ぜず、Adam の更新の前に w ← w(1 − ηλ) と直接縮める (λ = ``weight_decay``)。"""

    _l2_decay = False

    def __init__(self, params: Iterable[Tensor] | None = None, lr: float = 0.001, beta1: float = 0.9,
                 beta2: float = 0.999, eps: float = 1e-8, *, learning_rate: float | None = None,
                 weight_decay: float = 0.01) -> None:
        super().__init__(params, lr, beta1, beta2, eps, learning_rate=learning_rate, weight_decay=weight_decay)


    def update_one(self, w: np.ndarray, g: np.ndarray, state: dict[str, Any], scratch: list[np.ndarray],
                   lr: float) -> None:
        if self.weight_decay:
            w *= 1 - lr * self.weight_decay
        super().update_one(w, g, state, scratch, lr)
