"""おもちゃのデータセット (spiral, moons, circles, xor)、本物の手書き数字 (mnist)、ミニバッチを配る DataLoader。

おもちゃのデータセットはどれも numpy だけで作り、``rng=`` (seed の整数か ``np.random.Generator``) で
再現できる。X は形 (N, 2) の float32、ラベル y は int64 (クラス番号) で、クラス順に並ぶ。
``mnist`` (MNIST と Fashion-MNIST) のダウンロードとキャッシュは ``tinygrad_jp.datasets`` にある。
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import numpy as np

from .datasets import mnist
from .random import get_rng
from .tensor import Tensor

__all__ = ["DataLoader", "circles", "mnist", "moons", "spiral", "xor"]


def _check_size(name: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an int, got {type(value).__name__} {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {name}={value}")
    return int(value)


def _check_noise(noise: Any) -> float:
    noise = float(noise)
    if not noise >= 0:
        raise ValueError(f"noise must be >= 0, got noise={noise!r}")
    return noise


def _pack(X: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return X.astype(np.float32), y.astype(np.int64)


def spiral(n_per_class: int = 100, n_classes: int = 3, noise: float = 0.2,
           rng: np.random.Generator | int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """渦巻き: クラス k の点は半径 r ∈ [0, 1] とともに角度が 4k から 4(k+1) ラジアンへ回る。

    ``noise`` は角度に加える正規乱数の標準偏差 (ラジアン)。戻り値は X (n_per_class·n_classes, 2) と y。
    """
    n_per_class = _check_size("n_per_class", n_per_class, 1)
    n_classes = _check_size("n_classes", n_classes, 1)
    noise = _check_noise(noise)
    gen = get_rng(rng)
    r = np.tile(np.linspace(0.0, 1.0, n_per_class), n_classes)
    k = np.repeat(np.arange(n_classes), n_per_class)
    theta = 4.0 * (k + r) + gen.normal(0.0, 1.0, k.size) * noise
    X = np.stack([r * np.sin(theta), r * np.cos(theta)], axis=1)
    return _pack(X, k)


def moons(n: int = 200, noise: float = 0.1,
          rng: np.random.Generator | int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """2 つの三日月: 上の半円 (ラベル 0) と、ずらして反転した下の半円 (ラベル 1)。

    ``noise`` は座標に加える正規乱数の標準偏差。上の半円に ⌈n/2⌉ 点、下に ⌊n/2⌋ 点。
    """
    n = _check_size("n", n, 2)
    noise = _check_noise(noise)
    gen = get_rng(rng)
    n_top = n - n // 2
    t_top = np.linspace(0.0, math.pi, n_top)
    t_bottom = np.linspace(0.0, math.pi, n // 2)
    top = np.stack([np.cos(t_top), np.sin(t_top)], axis=1)
    bottom = np.stack([1.0 - np.cos(t_bottom), 0.5 - np.sin(t_bottom)], axis=1)
    X = np.concatenate([top, bottom]) + gen.normal(0.0, 1.0, (n, 2)) * noise
    y = np.concatenate([np.zeros(n_top), np.ones(n // 2)])
    return _pack(X, y)


def circles(n: int = 200, noise: float = 0.05, factor: float = 0.5,
            rng: np.random.Generator | int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """同心円: 半径 1 の円 (ラベル 0) と半径 ``factor`` の円 (ラベル 1)。

    ``noise`` は座標に加える正規乱数の標準偏差。外側に ⌈n/2⌉ 点、内側に ⌊n/2⌋ 点。
    """
    n = _check_size("n", n, 2)
    noise = _check_noise(noise)
    factor = float(factor)
    if not 0 < factor < 1:
        raise ValueError(f"factor (inner radius / outer radius) must be in (0, 1), got factor={factor!r}")
    gen = get_rng(rng)
    n_out = n - n // 2
    # endpoint=False: the angle 2π is the same point as 0.
    t_out = np.linspace(0.0, 2 * math.pi, n_out, endpoint=False)
    t_in = np.linspace(0.0, 2 * math.pi, n // 2, endpoint=False)
    outer = np.stack([np.cos(t_out), np.sin(t_out)], axis=1)
    inner = factor * np.stack([np.cos(t_in), np.sin(t_in)], axis=1)
    X = np.concatenate([outer, inner]) + gen.normal(0.0, 1.0, (n, 2)) * noise
    y = np.concatenate([np.zeros(n_out), np.ones(n // 2)])
    return _pack(X, y)


def xor(n: int = 200, noise: float = 0.0,
        rng: np.random.Generator | int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """XOR: [-1, 1]² の一様な点に、x₁ と x₂ の符号が異なれば 1、同じなら 0 のラベル。

    ``noise`` > 0 なら、ラベルを決めた後で座標に標準偏差 ``noise`` の正規乱数を加える
    (境界の近くでクラスが混ざる)。点はラベル順に並べ替えて返す。
    """
    n = _check_size("n", n, 1)
    noise = _check_noise(noise)
    gen = get_rng(rng)
    X = gen.uniform(-1.0, 1.0, (n, 2))
    y = ((X[:, 0] > 0) != (X[:, 1] > 0)).astype(np.int64)
    X = X + gen.normal(0.0, 1.0, (n, 2)) * noise
    order = np.argsort(y, kind="stable")
    return _pack(X[order], y[order])


class DataLoader:
    """(X, y) をミニバッチに分けて配る。

    ``for xb, yb in loader`` の ``xb`` は Tensor (勾配なし)、``yb`` は numpy 配列のまま
    (クラス番号のラベルは損失関数にそのまま渡せる)。``shuffle=True`` なら各エポックの
    始まり (``iter`` のたび) に並べ替え直す。``len(loader)`` はバッチの数。
    ``drop_last=True`` なら最後の半端なバッチを捨てる。
    """

    def __init__(self, X: Any, y: Any, batch_size: int = 32, shuffle: bool = True,
                 rng: np.random.Generator | int | None = None, drop_last: bool = False) -> None:
        X = X.data if isinstance(X, Tensor) else np.asarray(X)
        y = y.data if isinstance(y, Tensor) else np.asarray(y)
        if X.ndim == 0 or y.ndim == 0:
            raise ValueError(f"X and y must have a first (sample) axis, got shapes {X.shape} and {y.shape}")
        if len(X) != len(y):
            raise ValueError(f"X and y must have the same number of samples, got len(X)={len(X)} and len(y)={len(y)}")
        if len(X) == 0:
            raise ValueError("X and y are empty: there is nothing to load")
        self.X = X
        self.y = y
        self.batch_size = _check_size("batch_size", batch_size, 1)
        self.shuffle = bool(shuffle)
        self.drop_last = bool(drop_last)
        # An int seed becomes one generator here, so each epoch still draws a new order from it.
        self._rng = None if rng is None else get_rng(rng)

    def __len__(self) -> int:
        n = len(self.X)
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def __iter__(self) -> Iterator[tuple[Tensor, np.ndarray]]:
        n = len(self.X)
        order = get_rng(self._rng).permutation(n) if self.shuffle else None
        for b in range(len(self)):
            lo, hi = b * self.batch_size, min((b + 1) * self.batch_size, n)
            if order is None:
                yield Tensor(self.X[lo:hi]), self.y[lo:hi]
            else:
                idx = order[lo:hi]
                yield Tensor(self.X[idx]), self.y[idx]

    def __repr__(self) -> str:
        return (f"DataLoader(n={len(self.X)}, batch_size={self.batch_size}, shuffle={self.shuffle}, "
                f"drop_last={self.drop_last}, batches={len(self)})")
