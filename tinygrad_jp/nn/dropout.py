"""Dropout (逆ドロップアウト): 学習中だけ各ユニットを確率 p で 0 にし、残りを 1/(1-p) 倍する。"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..layer import Layer
from ..random import get_rng
from ..tensor import Tensor


class Dropout(Layer):
    """学習モードでは y = x · m / (1 - p)、m ~ Bernoulli(1 - p)。評価モードでは y = x。

    1/(1 - p) 倍しておくので期待値 E[y] = x が保たれ、評価時に何もしなくてよい。
    ``rng`` (Generator か seed) を与えるとマスクの乱数がそこから取られる。
    """

    def __init__(self, p: float = 0.5, rng: Any = None):
        if isinstance(p, bool) or not isinstance(p, (int, float, np.integer, np.floating)):
            raise TypeError(f"Dropout: p must be a number in [0, 1), got {type(p).__name__} {p!r}")
        if not 0 <= p < 1:
            raise ValueError(f"Dropout: p must be in [0, 1), got {p!r}")
        self.p = float(p)
        # Resolved once, so that an int seed gives a stream of masks rather than the same mask each call.
        self._rng = None if rng is None else get_rng(rng)

    def forward(self, x: Any) -> Tensor:
        if not self.training or self.p == 0:
            return x
        data = x.data if isinstance(x, Tensor) else np.asarray(x)
        dt = data.dtype if data.dtype.kind == "f" else np.dtype(np.float64)
        u = get_rng(self._rng).random(data.shape, dtype=np.float64 if dt != np.float32 else np.float32)
        mask = (u >= self.p).astype(dt)
        mask *= 1 / (1 - self.p)
        if isinstance(x, Tensor):
            return x * mask
        return data * mask

    def extra_repr(self) -> str:
        return f"p={self.p}"
