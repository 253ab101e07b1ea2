"""バッチ正規化 (Batch Normalization): 各特徴をミニバッチの平均 0・分散 1 にそろえてから γ 倍して β を足す。"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..layer import Layer
from ..ops import sqrt
from ..tensor import Tensor, get_default_dtype
from .linear import _as_input


class BatchNorm1d(Layer):
    """``BatchNorm1d(num_features, eps=1e-5, momentum=0.1)``、入力の形は (N, num_features)。

    学習モード: μ = (1/N) Σ x、σ² = (1/N) Σ (x - μ)² (バッチの統計、偏りのある分散) を使い
    y = γ (x - μ) / √(σ² + ε) + β。同時に移動平均を更新する (PyTorch と同じく分散は N/(N-1) 倍した不偏分散)::

        running_mean ← (1 - momentum) running_mean + momentum μ
        running_var  ← (1 - momentum) running_var  + momentum σ² N/(N-1)

    評価モード: μ, σ² の代わりに running_mean, running_var を使う。
    パラメータは ``gamma`` (初期値 1) と ``beta`` (初期値 0)。移動平均はバッファで state_dict に入る。
    入力は Linear と同じく gamma の dtype に変換してから計算する。
    """

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float = 0.1, dtype: Any = None):
        if not isinstance(num_features, (int, np.integer)) or num_features < 1:
            raise ValueError(f"BatchNorm1d: num_features must be a positive integer, got {num_features!r}")
        if not 0 <= momentum <= 1:
            raise ValueError(f"BatchNorm1d: momentum must be in [0, 1], got {momentum!r}")
        if not eps > 0:
            raise ValueError(f"BatchNorm1d: eps must be positive, got {eps!r}")
        dt = np.dtype(dtype) if dtype is not None else get_default_dtype()
        self.num_features = int(num_features)
        self.eps = float(eps)
        self.momentum = float(momentum)
        self.gamma = Tensor(np.ones(self.num_features, dtype=dt), requires_grad=True, name="gamma")
        self.beta = Tensor(np.zeros(self.num_features, dtype=dt), requires_grad=True, name="beta")
        self.register_buffer("running_mean", np.zeros(self.num_features, dtype=dt))
        self.register_buffer("running_var", np.ones(self.num_features, dtype=dt))

    def forward(self, x: Any) -> Tensor:
        x = _as_input(x, self.gamma.dtype)
        if x.ndim != 2 or x.shape[1] != self.num_features:
            raise ValueError(
                f"{self!r} expects inputs of shape (N, {self.num_features}), got {x.shape}"
            )
        if not self.training:
            scale = self.gamma / np.sqrt(self.running_var + self.eps)
            return (x - self.running_mean) * scale + self.beta
        n = x.shape[0]
        if n < 2:
            raise ValueError(f"{self!r} needs more than one sample per batch in training mode, got shape {x.shape}")
        mean = x.mean(axis=0)
        centered = x - mean
        var = (centered * centered).mean(axis=0)
        out = centered * (self.gamma / sqrt(var + self.eps)) + self.beta
        self._update_running(mean.data, var.data, n)
        return out

    def _update_running(self, mean: np.ndarray, var: np.ndarray, n: int) -> None:
        # In place, so that the arrays registered as buffers (and loaded by load_state_dict) stay the same objects.
        m = self.momentum
        self.running_mean *= 1 - m
        self.running_mean += m * mean
        self.running_var *= 1 - m
        self.running_var += (m * n / (n - 1)) * var

    def extra_repr(self) -> str:
        return f"{self.num_features}, eps={self.eps}, momentum={self.momentum}"
