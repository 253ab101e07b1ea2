"""勾配消失: (a) 本文の 10 層シグモイドの連鎖、(b) 本物の深いネットワークでの 4 つの対策。

(a) z = 0.5a、a = σ(z) を 10 回重ね、第 i 層の入力 a_{i-1} についての勾配 ∂a₁₀/∂a_{i-1} を
``backward()`` で求める (本文が手で書いた連鎖律 grad ← grad · a(1 - a) · 0.5 と同じ値になる)。

(b) 隠れ層 10 層 × 100 ユニットの MLP に乱数の入力を 1 バッチ流し、各隠れ層の重みの勾配の
大きさ mean |∂L/∂W| を設定ごとに比べる。比 (第 1 層 / 第 10 層) が 1 に近いほど勾配が消えていない。
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from .. import functional as F
from .. import init, nn, probes
from ..tensor import Tensor
from ..viz import plot_layer_gradients


def sigmoid_chain_gradients(n_layers: int = 10, x: float = 1.0, weight: float = 0.5) -> list[float]:
    """本文の連鎖 a ← σ(weight · a) の、第 i 層の入力についての勾配 ∂a_L/∂a_{i-1} (i = 1..L) を逆伝播で求める。"""
    a = Tensor(np.array([x]), requires_grad=True, dtype=np.float64, name="x")
    inputs = []
    for _ in range(n_layers):
        inputs.append(a)
        a.retain_grad()
        a = (a * weight).sigmoid()
    a.backward()
    return [float(t.grad[0]) for t in inputs]


def _normal(std: float) -> Callable[..., np.ndarray]:
    def initializer(n_in: int, n_out: int, rng: Any = None, dtype: Any = np.float32) -> np.ndarray:
        return init.normal(n_in, n_out, rng=rng, dtype=dtype, std=std)

    initializer.__name__ = f"normal(std={std})"
    return initializer


# label -> MLP options. BatchNorm and Residual are added to the Sigmoid + Xavier net, the one that vanishes.
CONFIGS: dict[str, dict[str, Any]] = {
    "Sigmoid + N(0, 1)": {"activation": "sigmoid", "init": _normal(1.0)},
    "Sigmoid + N(0, 0.01)": {"activation": "sigmoid", "init": _normal(0.01)},
    "Sigmoid + Xavier": {"activation": "sigmoid", "init": "xavier"},
    "tanh + Xavier": {"activation": "tanh", "init": "xavier"},
    "ReLU + He": {"activation": "relu", "init": "he"},
    "Sigmoid + Xavier + BatchNorm": {"activation": "sigmoid", "init": "xavier", "batchnorm": True},
    "Sigmoid + Xavier + Residual": {"activation": "sigmoid", "init": "xavier", "residual": True},
}


def deep_net_gradients(n_hidden: int = 10, width: int = 100, batch: int = 64, n_classes: int = 10,
                       seed: int = 0) -> dict[str, np.ndarray]:
    """設定ごとに、隠れ層 1..n_hidden の重みの mean |∂L/∂W| (入力側から順) を返す。

    入力は N(0, 1) の乱数、ラベルは乱数のクラス、損失はソフトマックス交差エントロピー。
    どの設定も同じ入力・同じ seed で作る。
    """
    rng = np.random.default_rng(seed)
    X = Tensor(rng.standard_normal((batch, width), dtype=np.float32))
    y = rng.integers(0, n_classes, batch)
    result = {}
    for label, options in CONFIGS.items():
        model = nn.MLP([width] + [width] * n_hidden + [n_classes], rng=seed + 1, **options)
        stats = probes.layer_stats(model, X, y, F.softmax_cross_entropy)
        result[label] = stats.column("weight_grad_abs_mean")[:n_hidden]
    return result


def run(out_dir: Path, show: bool = False, *, small: bool = False) -> list[Path]:
    """(a) と (b) の図を書き出し、層ごとの勾配と比の表を表示する。``small=True`` なら (b) を幅 32・バッチ 16 で。"""
    out_dir = Path(out_dir)
    chain = sigmoid_chain_gradients()
    print("=== 各層の勾配 (本文の 10 層シグモイド、backward() で計算) ===")
    for i, grad in enumerate(chain, 1):
        print(f"第{i}層: {grad:.10f}")
    chain_path = out_dir / "vanishing_gradient_chain.png"
    plot_layer_gradients({"勾配の大きさ": chain}, title="勾配消失問題の可視化 (Sigmoid、10 層)",
                         path=chain_path, show=show)

    width, batch = (32, 16) if small else (100, 64)
    grads = deep_net_gradients(width=width, batch=batch)
    print()
    print(f"=== 深いネットワーク (隠れ層 10 層 × {width} ユニット、バッチ {batch}): mean |∂L/∂W| ===")
    print(f"{'設定':<30}{'第1層':>11}{'第10層':>11}{'第1層/第10層':>15}")
    for label, g in grads.items():
        print(f"{label:<30}{g[0]:>11.3g}{g[-1]:>11.3g}{g[0] / g[-1]:>15.3g}")
    net_path = out_dir / "vanishing_gradient_deep.png"
    plot_layer_gradients(grads, title=f"層ごとの勾配の大きさ (隠れ層 10 層 × {width} ユニット)",
                         ylabel="mean |∂L/∂W|", path=net_path, show=show)
    return [chain_path, net_path]
