"""重みの初期化: 初期化ごとの各層の活性化の分布 (5 層 × 100 ユニット、1000 サンプル) と、本文の Xavier・He の統計。

入力 x ~ N(0, 1) を a ← f(a W) (バイアスなし) で 5 層流し、各層の出力 a の分布をヒストグラムにする。
std = 1 なら Sigmoid・tanh の出力が両端 (飽和) に寄り、std = 0.01 なら 1 点に潰れて層を区別できない。
Xavier は Sigmoid・tanh で、He は ReLU で分布が層を通しても保たれる。
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from .. import activations, init
from ..viz import plot_activation_histograms

INITS: dict[str, Callable[[int, int, np.random.Generator], np.ndarray]] = {
    "std = 1": lambda n_in, n_out, rng: init.normal(n_in, n_out, rng=rng, std=1.0),
    "std = 0.01": lambda n_in, n_out, rng: init.normal(n_in, n_out, rng=rng, std=0.01),
    "Xavier": lambda n_in, n_out, rng: init.xavier_normal(n_in, n_out, rng=rng),
    "He": lambda n_in, n_out, rng: init.he_normal(n_in, n_out, rng=rng),
}
ACTIVATIONS = ("sigmoid", "tanh", "relu")
# The names the figures and the console use, as everywhere else in the project.
DISPLAY = {"sigmoid": "Sigmoid", "tanh": "tanh", "relu": "ReLU"}


def layer_activations(activation: str, init_name: str, n_layers: int = 5, width: int = 100, n_samples: int = 1000,
                      seed: int = 0) -> list[np.ndarray]:
    """入力 N(0, 1) を 5 層に流したときの、各層の出力 (形 (n_samples, width)) のリスト。"""
    rng = np.random.default_rng(seed)
    act = activations.get(activation)
    a = rng.standard_normal((n_samples, width), dtype=np.float32)
    outputs = []
    for _ in range(n_layers):
        a = act(a @ INITS[init_name](width, width, rng))
        outputs.append(a)
    return outputs


def chapter_statistics(seed: int = 0) -> dict[str, tuple[float, float]]:
    """本文の例: ``xavier_init(100, 50)`` と ``he_init(100, 50)`` の重みの (平均, 標準偏差)。"""
    rng = np.random.default_rng(seed)
    stats = {}
    for name, fn in (("Xavier", init.xavier_init), ("He", init.he_init)):
        W = fn(100, 50, rng=rng)
        stats[name] = (float(W.mean()), float(W.std()))
    return stats


def run(out_dir: Path, show: bool = False, *, small: bool = False) -> list[Path]:
    """活性化関数ごとに 1 枚、初期化ごとに 1 行のヒストグラムを書き出す。

    ``small=True`` なら 200 サンプルで、ReLU の 1 枚だけ。
    """
    n_samples = 200 if small else 1000
    stats = chapter_statistics()
    for name, (mean, std) in stats.items():
        print(f"{name}初期化: 平均={mean:.4f}, 標準偏差={std:.4f}")
    print(f"(理論値: Xavier の標準偏差 √(2/150) = {np.sqrt(2 / 150):.4f}、"
          f"He の標準偏差 √(2/100) = {np.sqrt(2 / 100):.4f})")
    paths = []
    for act in ACTIVATIONS[-1:] if small else ACTIVATIONS:
        rows = {name: layer_activations(act, name, n_samples=n_samples) for name in INITS}
        print()
        print(f"=== {DISPLAY[act]}: 各層の出力の標準偏差 (第1層 → 第5層) ===")
        for name, layers in rows.items():
            print(f"{name:<11}" + "  ".join(f"{a.std():.3g}" for a in layers))
        path = Path(out_dir) / f"weight_init_{act}.png"
        plot_activation_histograms(rows, title=f"各層のアクティベーション分布 ({DISPLAY[act]}、5 層 × 100 ユニット)",
                                   path=path, show=show)
        paths.append(path)
    return paths
