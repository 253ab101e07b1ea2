"""最適化アルゴリズム: 本文の f(x, y) = x² + 10y² 上の軌跡と、小さな MLP での損失の比較。

軌跡は本文の ``compare_optimizers()`` と同じ設定 ((-7, 2) から、学習率 0.1、30 ステップ) で、
ライブラリの最適化手法を本文の使い方 ``opt.update(params, grads)`` で動かして求める。
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from .. import data, nn, optim, train
from .. import functional as F
from ..textwidth import format_table
from ..viz import plot_curves, plot_objective, plot_trajectories

NAMES = ("SGD", "Momentum", "AdaGrad", "RMSprop", "Adam")


def f(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """テスト関数 f(x, y) = x² + 10y² (細長い楕円の谷)。"""
    return x**2 + 10 * y**2


def grad_f(x: float, y: float) -> np.ndarray:
    """∇f = (2x, 20y)。"""
    return np.array([2 * x, 20 * y])


def make_optimizer(name: str, **kwargs: Any) -> optim.Optimizer:
    """名前 ("SGD" など) から最適化手法を作る。"""
    return getattr(optim, name)(**kwargs)


def trajectories(init_pos: tuple[float, float] = (-7.0, 2.0), learning_rate: float = 0.1,
                 iterations: int = 30) -> dict[str, np.ndarray]:
    """手法ごとの軌跡 (形 (iterations + 1, 2)): 本文どおり ``update({'pos': pos}, {'pos': ∇f})`` を繰り返す。"""
    result = {}
    for name in NAMES:
        opt = make_optimizer(name, learning_rate=learning_rate)
        params = {"pos": np.array(init_pos, dtype=np.float64)}
        path = [params["pos"].copy()]
        for _ in range(iterations):
            opt.update(params, {"pos": grad_f(*params["pos"])})
            path.append(params["pos"].copy())
        result[name] = np.array(path)
    return result


def final_summary(trajs: dict[str, np.ndarray]) -> dict[str, tuple[float, float, float, float]]:
    """手法ごとの最後の点の (x, y, 原点からの距離 √(x² + y²), f(x, y))。

    「どれが原点にいちばん近いか」と「どれの f がいちばん小さいか」は、答えが違うことがある:
    f は y 方向のずれを 10 倍に数えるからである。
    """
    result = {}
    for name, t in trajs.items():
        x, y = (float(v) for v in t[-1])
        result[name] = (x, y, float(np.hypot(x, y)), float(f(x, y)))
    return result


def trajectory_table(trajs: dict[str, np.ndarray]) -> list[list[str]]:
    """``final_summary`` を表の行 (見出しつき) にする。"""
    rows = [["手法", "最後の (x, y)", "原点からの距離", "f(x, y)"]]
    for name, (x, y, distance, value) in final_summary(trajs).items():
        rows.append([name, f"({x:+.4f}, {y:+.4f})", f"{distance:.4g}", f"{value:.4g}"])
    return rows


# Learning rates for the MLP: each method near its usual setting (Adam at the chapter's recommended 0.001 would
# need many more epochs than this demo runs, so the adaptive methods share 0.01).
MLP_LR: dict[str, float] = {"SGD": 0.1, "Momentum": 0.05, "AdaGrad": 0.05, "RMSprop": 0.01, "Adam": 0.01}


def train_mlp_losses(epochs: int = 40, n_per_class: int = 100, seed: int = 0) -> dict[str, list[float]]:
    """spiral (3 クラス) を MLP [2, 32, 32, 3] (ReLU, He) で学習し、手法ごとのエポックごとの損失を返す。

    どの手法も同じ初期値・同じミニバッチの順から始める。
    """
    X, y = data.spiral(n_per_class, 3, rng=seed)
    losses = {}
    for name in NAMES:
        model = nn.MLP([2, 32, 32, 3], activation="relu", rng=seed)
        opt = make_optimizer(name, params=model.parameters(), lr=MLP_LR[name])
        loader = data.DataLoader(X, y, batch_size=32, rng=seed)
        history = train.fit(model, F.softmax_cross_entropy, opt, loader, epochs, progress=False)
        losses[f"{name} (lr={MLP_LR[name]:g})"] = history.loss
    return losses


def run(out_dir: Path, show: bool = False, *, small: bool = False) -> list[Path]:
    """軌跡・目的関数の推移・MLP の損失の 3 枚を書き出す。``small=True`` なら MLP を 3 エポックだけ学習する。"""
    out_dir = Path(out_dir)
    trajs = trajectories()
    print("=== f(x, y) = x² + 10y²、(-7, 2) から学習率 0.1 で 30 ステップ ===")
    print(format_table(trajectory_table(trajs)))
    traj_path = out_dir / "optimizers_trajectories.png"
    plot_trajectories(f, trajs, path=traj_path, show=show)
    objective_path = out_dir / "optimizers_objective.png"
    plot_objective(f, trajs, path=objective_path, show=show)

    epochs = 3 if small else 40
    losses = train_mlp_losses(epochs=epochs, n_per_class=30 if small else 100)
    print()
    print(f"=== spiral (3 クラス) を MLP [2, 32, 32, 3] で {epochs} エポック: 最後の損失 ===")
    print(format_table([["手法", "最後の損失"]] + [[name, f"{values[-1]:.4f}"] for name, values in losses.items()]))
    mlp_path = out_dir / "optimizers_mlp.png"
    plot_curves(losses, title="最適化手法ごとの損失の推移 (spiral、MLP)", logy=True, path=mlp_path, show=show)
    return [traj_path, objective_path, mlp_path]
