"""学習の補助: 勾配クリッピング。"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np

from ..tensor import Tensor


def clip_grad_norm_(params: Tensor | Iterable[Tensor], max_norm: float, norm_type: float = 2.0) -> float:
    """全パラメータの勾配をつなげた 1 本のベクトルのノルムが ``max_norm`` を超えないよう、勾配をその場で縮める。

    ‖g‖ > max_norm なら g ← g · max_norm / (‖g‖ + 10⁻⁶)。クリップ前の全体のノルムを返す
    (PyTorch の ``torch.nn.utils.clip_grad_norm_`` と同じ)。勾配が None のパラメータは無視する。
    """
    if isinstance(params, Tensor):
        params = [params]
    max_norm = float(max_norm)
    norm_type = float(norm_type)
    if not max_norm >= 0:
        raise ValueError(f"max_norm must be >= 0, got max_norm={max_norm!r}")
    if not norm_type > 0:
        raise ValueError(f"norm_type must be > 0 (or inf), got norm_type={norm_type!r}")
    grads = []
    for i, p in enumerate(params):
        if not isinstance(p, Tensor):
            raise TypeError(f"params[{i}] must be a Tensor, got {type(p).__name__}")
        if p.grad is not None:
            grads.append(p.grad)
    if not grads:
        return 0.0
    norms = np.array([np.linalg.norm(g.ravel(), ord=norm_type) for g in grads], dtype=np.float64)
    total = float(np.linalg.norm(norms, ord=norm_type))
    coef = max_norm / (total + 1e-6)
    if coef < 1 and math.isfinite(total):
        for g in grads:
            g *= coef
    return total
