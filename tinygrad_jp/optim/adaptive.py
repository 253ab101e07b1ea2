"""パラメータごとに学習率を調整する手法: AdaGrad, RMSprop。"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from ..tensor import Tensor
from .optimizer import Optimizer, check_nonnegative, check_positive, check_unit


def _scaled_step(w: np.ndarray, g: np.ndarray, h: np.ndarray, scratch: list[np.ndarray], lr: float,
                 eps: float) -> None:
    """w ← w − η g / (√h + ε), in the chapter's order of operations."""
    denom = np.sqrt(h, out=scratch[0])
    denom += eps
    step = np.multiply(g, lr, out=scratch[1])
    step /= denom
    w -= step


class AdaGrad(Optimizer):
    """AdaGrad。 h ← h + (∂L/∂w)²,  w ← w − η/(√h + ε) ∂L/∂w"""

    _default_lr = 0.01
    hyperparameters = ("eps", "weight_decay")
    state_names = ("h",)
    n_scratch = 2

    def __init__(self, params: Iterable[Tensor] | None = None, lr: float = 0.01, eps: float = 1e-8, *,
                 learning_rate: float | None = None, weight_decay: float = 0.0) -> None:
        super().__init__(params, lr, learning_rate)
        self.eps = check_positive("eps", eps)
        self.weight_decay = check_nonnegative("weight_decay", weight_decay)

    def update_one(self, w: np.ndarray, g: np.ndarray, state: dict[str, Any], scratch: list[np.ndarray],
                   lr: float) -> None:
        h = state["h"]
        h += np.multiply(g, g, out=scratch[0])
        _scaled_step(w, g, h, scratch, lr, self.eps)


class RMSprop(Optimizer):
    """RMSprop。 h ← βh + (1 − β)(∂L/∂w)²,  w ← w − η/(√h + ε) ∂L/∂w  (β = ``decay_rate``)"""

    _default_lr = 0.01
    hyperparameters = ("decay_rate", "eps", "weight_decay")
    state_names = ("h",)
    n_scratch = 2

    def __init__(self, params: Iterable[Tensor] | None = None, lr: float = 0.01, decay_rate: float = 0.99,
                 eps: float = 1e-8, *, learning_rate: float | None = None, weight_decay: float = 0.0) -> None:
        super().__init__(params, lr, learning_rate)
        self.decay_rate = check_unit("decay_rate", decay_rate, closed=True)
        self.eps = check_positive("eps", eps)
        self.weight_decay = check_nonnegative("weight_decay", weight_decay)

    def update_one(self, w: np.ndarray, g: np.ndarray, state: dict[str, Any], scratch: list[np.ndarray],
                   lr: float) -> None:
        h = state["h"]
        h *= self.decay_rate
        g2 = np.multiply(g, g, out=scratch[0])
        g2 *= 1 - self.decay_rate
        h += g2
        _scaled_step(w, g, h, scratch, lr, self.eps)
