"""重みの初期化。どの関数も ``(n_in, n_out, rng=None, dtype=np.float32)`` から形 (n_in, n_out) の配列を返す。

=================  ========================================  ===================
名前               分布                                       向いている活性化関数
=================  ========================================  ===================
``zeros``          W = 0                                      (使わない: 対称性が崩れない)
``normal``         W ~ N(0, std²)、std = 0.01                 (基本的に非推奨)
``xavier_normal``  W ~ N(0, 2/(n_in+n_out))                   Sigmoid, tanh
``xavier_uniform`` W ~ U(-√(6/(n_in+n_out)), √(6/(n_in+n_out)))  Sigmoid, tanh
``he_normal``      W ~ N(0, 2/n_in)                           ReLU, Leaky ReLU
``he_uniform``     W ~ U(-√(6/n_in), √(6/n_in))                ReLU, Leaky ReLU
=================  ========================================  ===================

本文の ``xavier_init(n_in, n_out)`` と ``he_init(n_in, n_out)`` も同じ名前で使える
(それぞれ ``xavier_normal`` と ``he_normal`` と同じ分布)。乱数は ``rng=`` (Generator か整数の seed)
か、なければ ``tinygrad_jp.manual_seed`` で固定できる全体の生成器から取る。
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from .random import get_rng

Initializer = Callable[..., np.ndarray]


def _check(n_in: int, n_out: int, dtype: Any) -> tuple[tuple[int, int], np.dtype]:
    for label, n in (("n_in", n_in), ("n_out", n_out)):
        if not isinstance(n, (int, np.integer)) or isinstance(n, bool) or n < 1:
            raise ValueError(f"{label} must be a positive integer, got {n!r}")
    dt = np.dtype(dtype)
    if dt.kind != "f":
        raise TypeError(f"weights must have a floating-point dtype, got {dt}")
    return (int(n_in), int(n_out)), dt


def _draw(n_in: int, n_out: int, rng: Any, dtype: Any, method: str) -> np.ndarray:
    """A fresh (n_in, n_out) array from the generator's ``method`` ("standard_normal" or "random"),
    drawn directly in float32/float64 and converted for other float types."""
    shape, dt = _check(n_in, n_out, dtype)
    sample = getattr(get_rng(rng), method)
    if dt in (np.float32, np.float64):
        return sample(shape, dtype=dt)
    return sample(shape).astype(dt)


def _gaussian(n_in: int, n_out: int, std: Callable[[int, int], float], rng: Any, dtype: Any) -> np.ndarray:
    w = _draw(n_in, n_out, rng, dtype, "standard_normal")
    w *= std(*w.shape)
    return w


def _uniform(n_in: int, n_out: int, limit: Callable[[int, int], float], rng: Any, dtype: Any) -> np.ndarray:
    w = _draw(n_in, n_out, rng, dtype, "random")
    # u in [0, 1) -> (2u - 1) * limit in [-limit, limit), in place to avoid temporaries.
    a = limit(*w.shape)
    w *= 2 * a
    w -= a
    return w


def zeros(n_in: int, n_out: int, rng: Any = None, dtype: Any = np.float32) -> np.ndarray:
    """W = 0 (すべてのユニットが同じ勾配を受け取るので、重みには使えない。バイアス用)。"""
    shape, dt = _check(n_in, n_out, dtype)
    return np.zeros(shape, dtype=dt)


def normal(n_in: int, n_out: int, rng: Any = None, dtype: Any = np.float32, *, std: float = 0.01) -> np.ndarray:
    """W ~ N(0, std²) (本文の「ランダム初期化」、既定は std = 0.01)。"""
    if not std >= 0:
        raise ValueError(f"std must be non-negative, got {std!r}")
    return _gaussian(n_in, n_out, lambda i, o: std, rng, dtype)


def xavier_normal(n_in: int, n_out: int, rng: Any = None, dtype: Any = np.float32) -> np.ndarray:
    """Xavier 初期化 (正規分布): W ~ N(0, σ²)、σ = √(2/(n_in + n_out))。"""
    return _gaussian(n_in, n_out, lambda i, o: math.sqrt(2.0 / (i + o)), rng, dtype)


def xavier_uniform(n_in: int, n_out: int, rng: Any = None, dtype: Any = np.float32) -> np.ndarray:
    """Xavier 初期化 (一様分布): W ~ U(-a, a)、a = √(6/(n_in + n_out)) (分散は xavier_normal と同じ)。"""
    return _uniform(n_in, n_out, lambda i, o: math.sqrt(6.0 / (i + o)), rng, dtype)


def he_normal(n_in: int, n_out: int, rng: Any = None, dtype: Any = np.float32) -> np.ndarray:
    """He 初期化 (正規分布): W ~ N(0, σ²)、σ = √(2/n_in)。"""
    return _gaussian(n_in, n_out, lambda i, o: math.sqrt(2.0 / i), rng, dtype)


def he_uniform(n_in: int, n_out: int, rng: Any = None, dtype: Any = np.float32) -> np.ndarray:
    """He 初期化 (一様分布): W ~ U(-a, a)、a = √(6/n_in) (分散は he_normal と同じ)。"""
    return _uniform(n_in, n_out, lambda i, o: math.sqrt(6.0 / i), rng, dtype)


def xavier_init(n_in: int, n_out: int, rng: Any = None, dtype: Any = np.float32) -> np.ndarray:
    """本文の Xavier 初期化: W ~ N(0, σ²)、σ = √(2/(n_in + n_out)) (``xavier_normal`` と同じ)。"""
    return xavier_normal(n_in, n_out, rng, dtype)


def he_init(n_in: int, n_out: int, rng: Any = None, dtype: Any = np.float32) -> np.ndarray:
    """本文の He 初期化 (ReLU 用): W ~ N(0, σ²)、σ = √(2/n_in) (``he_normal`` と同じ)。"""
    return he_normal(n_in, n_out, rng, dtype)


_BY_NAME: dict[str, Initializer] = {
    "zeros": zeros,
    "normal": normal,
    "xavier": xavier_normal,
    "xavier_normal": xavier_normal,
    "xavier_uniform": xavier_uniform,
    "xavier_init": xavier_init,
    "he": he_normal,
    "he_normal": he_normal,
    "he_uniform": he_uniform,
    "he_init": he_init,
}


def get(name_or_callable: str | Initializer) -> Initializer:
    """名前 ("he", "xavier_uniform" など) から初期化関数を返す。関数が渡されればそのまま返す。

    "xavier" は ``xavier_normal``、"he" は ``he_normal`` を表す。
    """
    if callable(name_or_callable):
        return name_or_callable
    if not isinstance(name_or_callable, str):
        raise TypeError(f"init must be a name or a callable, got {type(name_or_callable).__name__}")
    key = name_or_callable.lower().replace("-", "_").replace(" ", "_")
    if key not in _BY_NAME:
        raise ValueError(f"unknown initializer {name_or_callable!r}; expected one of {sorted(_BY_NAME)} or a callable")
    return _BY_NAME[key]
