"""損失関数と、分類のための softmax・log_softmax・accuracy。

どれも極端な入力 (±1e4 のロジットなど) でもあふれないように log-sum-exp の形で計算する。
softmax 交差エントロピーの逆伝播は、よく知られた (softmax - one-hot) / N をそのまま使う。
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .activations import LogSoftmax, Softmax, Softplus, _softmax_parts, _SoftmaxFunction
from .autograd import Function
from .ops import _ACCUMULATOR
from .tensor import Tensor

_SOFTPLUS = Softplus()


def _raw(x: Any) -> np.ndarray:
    return x.data if isinstance(x, Tensor) else np.asarray(x)


def _widened(x: Any) -> Any:
    """A float16 Tensor as float32 (differentiably), anything else as it is: the fused losses below sum over the
    batch, and float16 overflows at 65,504 (see ops.Sum). The loss is rounded back to float16 at the end."""
    if isinstance(x, Tensor) and x.dtype in _ACCUMULATOR:
        return x.astype(_ACCUMULATOR[x.dtype])
    return x


def softmax(x, axis: int = -1):
    """softmax(x)_i = e^{x_i} / Σ_j e^{x_j}。Tensor なら Tensor、ndarray なら ndarray を返す。"""
    return Softmax(axis)(x)


def log_softmax(x, axis: int = -1):
    """log softmax(x)_i = x_i - log Σ_j e^{x_j}。値も勾配も極端な入力で安定。"""
    return LogSoftmax(axis)(x)


# ---------------------------------------------------------------------- labels
def _class_targets(labels: Any, n: int, c: int, dtype: np.dtype) -> np.ndarray:
    """Integer labels (N,) checked against C classes, or one-hot / probability rows (N, C) in `dtype`."""
    lab = _raw(labels)
    if lab.ndim == 2:
        if lab.shape != (n, c):
            raise ValueError(f"one-hot labels must have the logits' shape ({n}, {c}), got shape {lab.shape}")
        if lab.dtype.kind not in "biuf":
            raise ValueError(f"one-hot labels must be numeric, got dtype {lab.dtype}")
        t = lab.astype(dtype)
        bad = ~np.isfinite(t) | (t < 0) | (t > 1)
        if bad.any():
            pos = tuple(int(i) for i in np.argwhere(bad)[0])
            raise ValueError(f"one-hot labels must lie in [0, 1], got {lab[pos]} at position {pos}")
        sums = t.sum(axis=1, dtype=np.float64)
        off = np.abs(sums - 1) > 1e-4
        if off.any():
            row = int(np.argmax(off))
            raise ValueError(f"each row of one-hot labels must sum to 1, row {row} sums to {sums[row]:g}")
        return t
    if lab.ndim != 1 or lab.shape[0] != n:
        raise ValueError(
            f"labels must be class indices of shape ({n},) or one-hot rows of shape ({n}, {c}) "
            f"for logits of shape ({n}, {c}), got shape {lab.shape}"
        )
    if lab.dtype.kind not in "iu":
        raise ValueError(f"labels must be integers (class indices) or one-hot rows, got dtype {lab.dtype}")
    bad = (lab < 0) | (lab >= c)
    if bad.any():
        pos = int(np.argmax(bad))
        raise ValueError(f"labels must be integers in [0, {c}), got {lab[pos]} at position {pos}")
    return lab


def _class_scores(x: Any, what: str) -> np.ndarray:
    arr = _raw(x)
    if arr.ndim != 2 or arr.shape[1] < 1:
        raise ValueError(f"{what} must have shape (N, C), one row of class scores per example, got shape {arr.shape}")
    return arr


# ---------------------------------------------------------------------- losses
class _SoftmaxCrossEntropy(Function):
    """L = -(1/N) Σ_n Σ_k t_nk log softmax(x_n)_k, fused so that backward is (softmax - t) / N."""

    __slots__ = ("probs", "target")

    def __init__(self, target: np.ndarray):
        super().__init__()
        self.target = target  # integer labels (N,) or rows of class probabilities (N, C)
        self.probs = None

    @property
    def name(self) -> str:
        return "SoftmaxCrossEntropy"

    def forward(self, x):
        z, e, s = _softmax_parts(x, 1)
        logp = z - np.log(s)
        e /= s
        self.probs = e  # exactly what softmax(x) gives
        n = x.shape[0]
        if self.target.ndim == 1:
            return -logp[np.arange(n), self.target].sum() / n
        return -(self.target * logp).sum() / n

    def backward(self, g, y, x):
        n = x.shape[0]
        if isinstance(x, Tensor):
            return (_SoftmaxFunction(1)(x) - self._onehot(x.shape, x.dtype)) * g / n
        if self.target.ndim == 1:
            d = self.probs.copy()
            d[np.arange(n), self.target] -= 1
        else:
            d = self.probs - self.target
        d *= g
        d /= n
        return d

    def _onehot(self, shape: tuple, dtype) -> np.ndarray:
        if self.target.ndim == 2:
            return self.target
        t = np.zeros(shape, dtype=dtype)
        t[np.arange(shape[0]), self.target] = 1
        return t


def softmax_cross_entropy(logits: Tensor, labels: Any) -> Tensor:
    """softmax 交差エントロピーのバッチ平均 L = -(1/N) Σ_n log softmax(x_n)[t_n]。

    ``logits`` は (N, C)。``labels`` は整数のクラス番号 (N,) か one-hot (N, C) (各行が和 1 の
    確率でもよい)。log-sum-exp で計算するので ±1e4 のロジットでも有限で、
    逆伝播は ∂L/∂x = (softmax(x) - onehot) / N。
    """
    if not isinstance(logits, Tensor):
        logits = Tensor(np.asarray(logits))
    if logits.dtype in _ACCUMULATOR:
        return softmax_cross_entropy(_widened(logits), labels).astype(logits.dtype)
    n, c = _class_scores(logits, "logits").shape
    if n == 0:
        raise ValueError("softmax_cross_entropy: logits have no rows (N = 0), so the mean is undefined")
    target = _class_targets(labels, n, c, logits.dtype)
    return _SoftmaxCrossEntropy(target)(logits)


class _MeanSquaredError(Function):
    """L = (1/n) Σ (y - t)² を 1 つの演算として計算する。逆伝播: ∂L/∂y = 2 (y - t) / n、∂L/∂t = -∂L/∂y。"""

    __slots__ = ()

    @property
    def name(self) -> str:
        return "MeanSquaredError"

    def forward(self, y, t):
        d = y - t
        return np.add.reduce(d * d, axis=None) / y.size

    def backward(self, g, loss, y, t):
        gy = (y - t) * (g * (2 / y.size))
        return gy, (-gy if self.needs[1] else None)


def mse_loss(pred: Tensor, target: Any) -> Tensor:
    """平均二乗誤差 L = (1/n) Σ (y - t)²。``pred`` と ``target`` は同じ形であること。"""
    if not isinstance(pred, Tensor):
        pred = Tensor(np.asarray(pred))
    t_shape = _raw(target).shape
    if t_shape != pred.shape:
        # Broadcasting (N, 1) against (N,) silently gives an (N, N) loss: refuse it.
        raise ValueError(f"mse_loss: pred and target must have the same shape, got {pred.shape} and {t_shape}")
    if pred.size == 0:
        raise ValueError(f"mse_loss: pred is empty (shape {pred.shape}); the mean of no errors is undefined")
    if pred.dtype in _ACCUMULATOR:
        return mse_loss(_widened(pred), _widened(target)).astype(pred.dtype)
    if not isinstance(target, Tensor):
        target = Tensor._make(np.asarray(target, dtype=pred.dtype), None)
    return _MeanSquaredError()(pred, target)


def binary_cross_entropy_with_logits(logits: Tensor, targets: Any) -> Tensor:
    """ロジット x と目標 t ∈ [0, 1] の二値交差エントロピーの平均。

    -[t log σ(x) + (1 - t) log(1 - σ(x))] = softplus(x) - x t
    = max(x, 0) - x t + log(1 + e^{-|x|}) と書けるので、どんな有限の x でもあふれない。
    勾配は (σ(x) - t) / n。
    """
    if not isinstance(logits, Tensor):
        logits = Tensor(np.asarray(logits))
    t_shape = _raw(targets).shape
    if t_shape != logits.shape:
        raise ValueError(
            f"binary_cross_entropy_with_logits: logits and targets must have the same shape, "
            f"got {logits.shape} and {t_shape}"
        )
    if not isinstance(targets, Tensor):
        targets = np.asarray(targets, dtype=logits.dtype)
    return (_SOFTPLUS(logits) - logits * targets).mean()


def accuracy(logits_or_probs: Any, labels: Any, threshold: float = 0.0) -> float:
    """正解率: 各行の最大のクラス (argmax) が正解ラベルと一致する割合。

    (N, C) ならロジットでも確率でも同じ結果になる。(N,) か (N, 1) の二値出力は
    ``threshold`` より大きければクラス 1 とみなす (ロジットなら 0、確率なら 0.5 を渡す)。
    このときラベルは 0 と 1 (整数・bool・浮動小数点のどれでもよい)。
    """
    scores = _raw(logits_or_probs)
    if scores.ndim == 2 and scores.shape[1] == 1:
        scores = scores[:, 0]
    if scores.ndim == 1:
        n = scores.shape[0]
        predicted = scores > threshold
        lab = _raw(labels)
        if lab.shape == (n, 1):
            lab = lab[:, 0]
        if lab.shape != (n,):
            raise ValueError(f"labels of a binary output of {n} examples must have shape ({n},), got shape {lab.shape}")
        outside = ~((lab == 0) | (lab == 1))
        if outside.any():
            pos = int(np.argmax(outside))
            raise ValueError(f"labels of a binary output must be 0 or 1, got {lab[pos]} at position {pos}")
        target = lab == 1
    else:
        n, c = _class_scores(scores, "logits_or_probs").shape
        predicted = scores.argmax(axis=1)
        target = _class_targets(labels, n, c, np.dtype(np.float64))
        if target.ndim == 2:
            target = target.argmax(axis=1)
    if n == 0:
        raise ValueError("accuracy: no examples (N = 0)")
    return float(np.mean(predicted == target))
