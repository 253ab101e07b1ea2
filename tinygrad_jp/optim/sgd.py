"""勾配降下法とその慣性版: SGD, Momentum, Nesterov。"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from ..tensor import Tensor
from .optimizer import Optimizer, alias, check_nonnegative, check_unit


class SGD(Optimizer):
    """確率的勾配降下法。 w ← w − η ∂L/∂w

    ``weight_decay`` > 0 なら勾配に λw を足す (L2 正則化)。
    """

    hyperparameters = ("weight_decay",)

    def __init__(self, params: Iterable[Tensor] | None = None, lr: float = 0.01, *,
                 learning_rate: float | None = None, weight_decay: float = 0.0) -> None:
        super().__init__(params, lr, learning_rate)
        self.weight_decay = check_nonnegative("weight_decay", weight_decay)

    def update_param(self, key: Any, w: np.ndarray, g: np.ndarray) -> None:
        w -= self.lr * g


class Momentum(Optimizer):
    """Momentum。 v ← βv − η ∂L/∂w,  w ← w + v  (β = ``momentum``, 通常 0.9)

    速度 v は ``opt.velocity[key]`` (別名 ``opt.v``)。
    """

    hyperparameters = ("momentum", "weight_decay")
    state_names = ("velocity",)

    def __init__(self, params: Iterable[Tensor] | None = None, lr: float = 0.01, momentum: float = 0.9, *,
                 learning_rate: float | None = None, weight_decay: float = 0.0) -> None:
        super().__init__(params, lr, learning_rate)
        self.momentum = check_unit("momentum", momentum)
        self.weight_decay = check_nonnegative("weight_decay", weight_decay)

    v = alias("velocity", "``velocity`` の別名 (速度 v)。")

    def update_param(self, key: Any, w: np.ndarray, g: np.ndarray) -> None:
        v = self.velocity[key]
        v[...] = self.momentum * v - self.lr * g
        w += v


class Nesterov(Momentum):
    """Nesterov の加速勾配法 (Momentum の「先読み」版)。

    v ← βv − η ∂L/∂w,  w ← w + βv − η ∂L/∂w  (更新後の v を使う。PyTorch の nesterov=True と同じ)
    """

    def update_param(self, key: Any, w: np.ndarray, g: np.ndarray) -> None:
        v = self.velocity[key]
        v[...] = self.momentum * v - self.lr * g
        w += self.momentum * v - self.lr * g
