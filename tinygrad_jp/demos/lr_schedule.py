"""学習率スケジューリング: 各スケジューラの学習率の推移と、ウォームアップ + cosine と一定の学習率の比較。

スケジューラの学習率は、パラメータなしで作った最適化手法に ``step()`` を繰り返して読み取る
(学習はしない)。ReduceLROnPlateau だけは損失の値で動くので、spiral を実際に学習したときの学習率を描く。
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from .. import data, nn, optim, train
from .. import functional as F
from ..optim import lr_scheduler as S
from ..textwidth import format_table
from ..viz import plot_curves, plot_lr_schedules

BASE_LR = 0.1


def schedulers(epochs: int) -> dict[str, Callable[[Any], Any]]:
    """ラベル → 最適化手法からスケジューラを作る関数 (``epochs`` エポックの学習に合わせた設定)。"""
    step = max(1, 3 * epochs // 10)
    warmup = max(1, epochs // 10)
    return {
        f"StepLR (step_size={step}, γ=0.5)": lambda opt: S.StepLR(opt, step_size=step, gamma=0.5),
        "ExponentialLR (γ=0.97)": lambda opt: S.ExponentialLR(opt, gamma=0.97),
        f"CosineAnnealingLR (T_max={epochs})": lambda opt: S.CosineAnnealingLR(opt, T_max=epochs),
        f"LinearWarmup ({warmup} エポック)": lambda opt: S.LinearWarmup(opt, warmup_steps=warmup),
        f"ウォームアップ {warmup} + cosine": lambda opt: S.WarmupCosine(opt, warmup_steps=warmup, total_steps=epochs),
    }


def schedule(make: Callable[[Any], Any], epochs: int, base_lr: float = BASE_LR) -> list[float]:
    """スケジューラのエポック 0..epochs-1 の学習率。"""
    opt = optim.SGD(lr=base_lr)
    sched = make(opt)
    lrs = []
    for _ in range(epochs):
        lrs.append(opt.lr)
        sched.step()
    return lrs


def _fit_spiral(epochs: int, lr: float, scheduler: Callable[[Any], Any] | None, optimizer: str = "Adam",
                n_per_class: int = 100, seed: int = 0) -> train.History:
    X, y = data.spiral(n_per_class, 3, rng=seed)
    model = nn.MLP([2, 32, 32, 3], activation="relu", rng=seed)
    opt = getattr(optim, optimizer)(model.parameters(), lr=lr)
    sched = None if scheduler is None else scheduler(opt)
    loader = data.DataLoader(X, y, batch_size=32, rng=seed)
    return train.fit(model, F.softmax_cross_entropy, opt, loader, epochs, scheduler=sched, progress=False)


def plateau_schedule(epochs: int, n_per_class: int = 100) -> list[float]:
    """Adam (η₀ = 0.1) で spiral を学習したときに ReduceLROnPlateau が決めた各エポックの学習率。

    学習データの損失が 5 エポックより長く 1% 以上改善しなければ学習率を半分にする。
    """
    history = _fit_spiral(epochs, BASE_LR, lambda opt: S.ReduceLROnPlateau(opt, factor=0.5, patience=5,
                                                                           threshold=0.01),
                          optimizer="Adam", n_per_class=n_per_class)
    return history.lr


def warmup_cosine_vs_constant(epochs: int, lr: float = 0.03, n_per_class: int = 100) -> dict[str, list[float]]:
    """Adam で spiral を学習した損失: 一定の学習率 ``lr`` と、同じ最大値のウォームアップ + cosine。"""
    warmup = max(1, epochs // 10)
    return {
        f"一定 (lr={lr:g})": _fit_spiral(epochs, lr, None, n_per_class=n_per_class).loss,
        f"ウォームアップ {warmup} + cosine (最大 lr={lr:g})": _fit_spiral(
            epochs, lr, lambda opt: S.WarmupCosine(opt, warmup_steps=warmup, total_steps=epochs),
            n_per_class=n_per_class).loss,
    }


def run(out_dir: Path, show: bool = False, *, small: bool = False) -> list[Path]:
    """学習率の推移と損失の比較の 2 枚を書き出す。``small=True`` なら 10 エポック・小さなデータで。"""
    out_dir = Path(out_dir)
    epochs, n_per_class = (10, 30) if small else (100, 100)
    lrs = {label: schedule(make, epochs) for label, make in schedulers(epochs).items()}
    lrs["ReduceLROnPlateau (spiral を学習)"] = plateau_schedule(epochs, n_per_class)
    print(f"=== 学習率 (η₀ = {BASE_LR}、{epochs} エポック) ===")
    marks = sorted({0, epochs // 10, epochs // 2, epochs - 1})
    rows = [["スケジューラ"] + [f"e={e}" for e in marks]]
    rows += [[label] + [f"{values[e]:.4g}" for e in marks] for label, values in lrs.items()]
    print(format_table(rows))
    lr_path = out_dir / "lr_schedules.png"
    plot_lr_schedules(lrs, path=lr_path, show=show)

    losses = warmup_cosine_vs_constant(epochs, n_per_class=n_per_class)
    print()
    print("=== spiral を Adam で学習したときの損失 ===")
    rows = [["学習率", "最後の損失", "最小の損失"]]
    rows += [[label, f"{values[-1]:.4f}", f"{min(values):.4f}"] for label, values in losses.items()]
    print(format_table(rows))
    loss_path = out_dir / "lr_warmup_cosine.png"
    plot_curves(losses, title="ウォームアップ + cosine と一定の学習率 (spiral、Adam)", logy=True,
                path=loss_path, show=show)
    return [lr_path, loss_path]
