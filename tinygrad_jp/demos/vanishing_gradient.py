"""勾配消失: (a) 本文の 10 層シグモイドの連鎖、(b) 本物の深いネットワークで、設定ごとに学習できるかを測る。

(a) z = 0.5a、a = σ(z) を 10 回重ね、第 i 層の入力 a_{i-1} についての勾配 ∂a₁₀/∂a_{i-1} を
``backward()`` で求める (本文が手で書いた連鎖律 grad ← grad · a(1 - a) · 0.5 と同じ値になる)。

(b) 隠れ層 10 層 × 100 ユニットの MLP で spiral (3 クラス) を学習し、設定 (活性化関数・初期化・
BatchNorm・Residual) ごとに次を測る (``run_experiment``):

* 学習前の各隠れ層の重みの勾配 mean |∂L/∂W| と、その比 第1層 / 第10層 (1 に近いほど消えていない)。
* 学習前の各隠れ層の飽和の割合 (``probes.saturation``: Sigmoid は 0・1 から、tanh は ±1 から 0.01
  以内の出力、ReLU はバッチ全体で 0 のユニット)。
* 決まった予算 (全データで SGD を決まった回数) で学習したあとの損失 (最後の 10 回の平均) と正解率。
  当てずっぽうの損失は ln 3 ≈ 1.099、正解率は 1/3。
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .. import data, init, nn, optim, probes
from .. import functional as F
from ..autograd import no_grad
from ..tensor import Tensor
from ..textwidth import format_table
from ..viz import plot_curves, plot_layer_gradients, plot_layer_saturation


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


# label -> MLP options: the chapter's setups (3.2 and the initialisation table of 3.4), and its
# countermeasures BatchNorm and Residual added to Sigmoid + Xavier, the setup that vanishes.
CONFIGS: dict[str, dict[str, Any]] = {
    "Sigmoid + N(0, 1)": {"activation": "sigmoid", "init": _normal(1.0)},
    "Sigmoid + N(0, 0.01)": {"activation": "sigmoid", "init": _normal(0.01)},
    "Sigmoid + Xavier": {"activation": "sigmoid", "init": "xavier"},
    "tanh + Xavier": {"activation": "tanh", "init": "xavier"},
    "ReLU + He": {"activation": "relu", "init": "he"},
    "Sigmoid + Xavier + BatchNorm": {"activation": "sigmoid", "init": "xavier", "batchnorm": True},
    "Sigmoid + Xavier + Residual": {"activation": "sigmoid", "init": "xavier", "residual": True},
}

CHANCE_LOSS = math.log(3)  # the loss of always answering 1/3 for each of the 3 classes
FINAL_WINDOW = 10  # the final loss is the mean over this many last updates


@dataclass
class Budget:
    """実験の設定: 隠れ層の数と幅、spiral のクラスあたりの点の数、SGD の学習率とステップ数、seed。"""

    n_hidden: int = 10
    width: int = 100
    n_per_class: int = 50
    lr: float = 0.1
    steps: int = 100
    seed: int = 0


@dataclass
class SetupResult:
    """1 つの設定の測定結果。

    * ``grad``: 学習前の隠れ層 1..L の重みの勾配 mean |∂L/∂W| (入力側から順)。
    * ``saturation``: 学習前の隠れ層 1..L の飽和の割合 (``probes.saturation``)。
    * ``initial_loss``: 学習前の損失。``losses``: i 回更新したあとの損失 (i = 1..steps)。
    * ``accuracy``: 学習後 (最後の更新のあと) の正解率。
    """

    label: str
    grad: np.ndarray
    saturation: np.ndarray
    initial_loss: float
    losses: list[float]
    accuracy: float

    @property
    def ratio(self) -> float:
        """第1層 / 第L層 の勾配の比 (1 に近いほど勾配が消えていない)。"""
        return float(self.grad[0] / self.grad[-1])

    @property
    def final_loss(self) -> float:
        """最後の ``FINAL_WINDOW`` 回の更新のあとの損失の平均。

        全データの SGD でも損失はときどき跳ね上がる (損失の推移の図) ので、最後の 1 点ではなく平均をとる。
        """
        return float(np.mean(self.losses[-FINAL_WINDOW:]))


def _train(model: nn.Layer, X: Tensor, y: np.ndarray, budget: Budget) -> tuple[list[float], float]:
    """Full-batch SGD for budget.steps updates: the loss after 0, 1, ..., steps updates, and the final accuracy."""
    opt = optim.SGD(model.parameters(), lr=budget.lr)
    losses = []
    for _ in range(budget.steps):
        loss = F.softmax_cross_entropy(model(X), y)
        losses.append(loss.item())
        opt.zero_grad()
        loss.backward()
        opt.step()
    with no_grad():
        logits = model(X)
        losses.append(F.softmax_cross_entropy(logits, y).item())
    return losses, F.accuracy(logits, y)


def measure_setup(label: str, options: dict[str, Any], budget: Budget | None = None) -> SetupResult:
    """1 つの設定の MLP を作り、学習前の勾配と飽和を測ってから、予算どおりに学習する。"""
    budget = Budget() if budget is None else budget
    X, y = data.spiral(budget.n_per_class, 3, rng=budget.seed)
    X = Tensor(X)
    model = nn.MLP([2] + [budget.width] * budget.n_hidden + [3], rng=budget.seed + 1, **options)
    stats = probes.layer_stats(model, X, y, F.softmax_cross_entropy)
    grad = stats.column("weight_grad_abs_mean")[: budget.n_hidden]
    saturation = stats.column("saturation")[: budget.n_hidden]
    losses, accuracy = _train(model, X, y, budget)
    return SetupResult(label, grad, saturation, losses[0], losses[1:], accuracy)


def run_experiment(budget: Budget | None = None, configs: dict[str, dict[str, Any]] | None = None
                   ) -> dict[str, SetupResult]:
    """``configs`` (既定: ``CONFIGS``) の設定ごとに ``measure_setup`` を行う。同じデータ・同じ seed から。"""
    configs = CONFIGS if configs is None else configs
    return {label: measure_setup(label, options, budget) for label, options in configs.items()}


def results_table(results: dict[str, SetupResult], budget: Budget) -> str:
    """設定ごとに 1 行の表 (表示幅でそろえる)。飽和は L 層の平均と最大。"""
    rows = [["設定", f"勾配の比 第1層/第{budget.n_hidden}層", "飽和 (平均)", "飽和 (最大)", "学習前の損失",
             f"学習後の損失 (最後の {FINAL_WINDOW} 回の平均)", "正解率"]]
    for r in results.values():
        rows.append([r.label, f"{r.ratio:.3g}", f"{np.mean(r.saturation):.0%}", f"{np.max(r.saturation):.0%}",
                     f"{r.initial_loss:.4g}", f"{r.final_loss:.4g}", f"{r.accuracy:.0%}"])
    return format_table(rows)


def _print_chain(chain: list[float]) -> None:
    print("=== 各層の勾配 (本文の 10 層シグモイド、backward() で計算) ===")
    for i, grad in enumerate(chain, 1):
        print(f"第{i}層: {grad:.10f}")


def run(out_dir: Path, show: bool = False, *, small: bool = False) -> list[Path]:
    """(a) の図と、(b) の 3 枚 (層ごとの勾配・飽和・損失の推移) を書き出し、表を表示する。

    ``small=True`` なら (b) を幅 32・クラスあたり 20 点・10 ステップで行う (テスト用)。
    """
    out_dir = Path(out_dir)
    chain = sigmoid_chain_gradients()
    _print_chain(chain)
    chain_path = out_dir / "vanishing_gradient_chain.png"
    plot_layer_gradients({"勾配の大きさ": chain}, title="勾配消失問題の可視化 (Sigmoid、10 層)",
                         path=chain_path, show=show)

    budget = Budget(width=32, n_per_class=20, steps=10) if small else Budget()
    results = run_experiment(budget)
    shape = f"隠れ層 {budget.n_hidden} 層 × {budget.width} ユニット"
    print()
    print(f"=== spiral (3 クラス × {budget.n_per_class} 点) を {shape} の MLP で、"
          f"全データの SGD (lr={budget.lr:g}) {budget.steps} 回 ===")
    print(f"(当てずっぽうの損失は ln 3 = {CHANCE_LOSS:.3f}、正解率は 33%)")
    print(results_table(results, budget))

    grad_path = out_dir / "vanishing_gradient_deep.png"
    plot_layer_gradients({r.label: r.grad for r in results.values()},
                         title=f"学習前の層ごとの勾配の大きさ ({shape}、spiral)", ylabel="mean |∂L/∂W|",
                         path=grad_path, show=show)
    saturation_path = out_dir / "vanishing_gradient_saturation.png"
    plot_layer_saturation({r.label: r.saturation for r in results.values()},
                          title=f"学習前の層ごとの飽和 ({shape}、spiral)", path=saturation_path, show=show)
    loss_path = out_dir / "vanishing_gradient_learning.png"
    plot_curves({r.label: r.losses for r in results.values()}, xlabel="SGD の更新回数", ylabel="損失",
                title=f"学習できるか: 損失の推移 ({shape}、spiral、SGD lr={budget.lr:g})", logy=True,
                reference={"当てずっぽう (ln 3)": CHANCE_LOSS}, path=loss_path, show=show)
    return [chain_path, grad_path, saturation_path, loss_path]
