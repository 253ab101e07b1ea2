"""乱数: ``manual_seed`` で全体の乱数生成器を固定する。乱数を使う関数はどれも ``rng=`` も受け取る。"""

from __future__ import annotations

import numpy as np

_rng = np.random.default_rng()


def manual_seed(seed: int) -> np.random.Generator:
    """全体の乱数生成器を ``seed`` で作り直して返す (同じ seed なら同じ結果になる)。"""
    global _rng
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"manual_seed: seed must be an int, got {type(seed).__name__} {seed!r}")
    _rng = np.random.default_rng(seed)
    return _rng


def get_rng(rng: np.random.Generator | int | None = None) -> np.random.Generator:
    """``rng`` が与えられればそれを (整数なら seed として)、なければ全体の生成器を返す。"""
    if rng is None:
        return _rng
    if isinstance(rng, np.random.Generator):
        return rng
    if isinstance(rng, (int, np.integer)):
        return np.random.default_rng(int(rng))
    raise TypeError(f"rng must be a numpy Generator, an int seed or None, got {type(rng).__name__}")
