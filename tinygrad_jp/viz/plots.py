"""章の図: 活性化関数と導関数、層ごとの勾配、最適化の軌跡、分布、学習履歴、学習率、決定境界。

どの関数も matplotlib の ``Figure`` を返す。``path=`` を渡せば PNG などに保存し (フォルダがなければ
作る)、``show=True`` のときだけウィンドウを開く。pyplot を通さずに図を作るので、画面のない環境でも
動き、たくさん描いても図がたまらない。
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import matplotlib
import numpy as np
from matplotlib.figure import Figure

from .. import activations as activations_module
from ..autograd import no_grad
from ..gradcheck import DerivativeCheck, check_derivative
from ..tensor import Tensor
from ._figure import PathLike, finish, new_figure


def _named(items: Mapping[str, Any] | Sequence[Any], default: str) -> dict[str, Any]:
    """A mapping stays as it is; a lone series gets the default label."""
    if isinstance(items, Mapping):
        return dict(items)
    return {default: items}

def _label(ax, xlabel: str, ylabel: str, title: str) -> None:
    """The axis labels, the title, a light grid and the legend that every line plot here has."""
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    ax.legend()



# ---------------------------------------------------------------------- activations
_GAP_FLOOR = 1e-17  # where an exact 0 is drawn on the log axis of the gap panel


def _activation_layers(activations: Mapping[str, Any] | Sequence[Any]) -> dict[str, Any]:
    if isinstance(activations, Mapping):
        acts = {name: activations_module.get(a) for name, a in activations.items()}
    else:
        acts = {}
        for a in activations:
            act = activations_module.get(a)
            acts[type(act).__name__] = act
    if not acts:
        raise ValueError("plot_activations needs at least one activation, got none")
    for name, act in acts.items():
        if not isinstance(act, activations_module.Activation):
            raise TypeError(
                f"plot_activations draws elementwise activations (Activation subclasses with f and df); {name} "
                f"({type(act).__name__}) is not one"
            )
    return acts


def _draw_derivative(ax: Any, name: str, check: DerivativeCheck, every: int) -> None:
    ax.plot(check.x, check.analytic, linewidth=2, color="tab:red", label="式による導関数 df")
    ax.plot(check.x[::every], check.numerical[::every], "o", markersize=4, markerfacecolor="none",
            color="black", label="数値微分 (f の中心差分)")
    kinks = np.flatnonzero(check.kink)
    for i in kinks:
        if len(kinks) <= 2:
            label = f"微分できない点 x = {check.x[i]:g} (左 {check.left[i]:.3g}、右 {check.right[i]:.3g})"
        else:
            label = f"微分できない点 ({len(kinks)} 個)" if i == kinks[0] else None
        ax.axvline(check.x[i], color="tab:green", linestyle="--", linewidth=1.5, label=label)
    ax.set_title(f"{name}の導関数")
    ax.set_ylabel(f"{name}'(x)")


def _draw_gap(ax: Any, check: DerivativeCheck) -> None:
    gap = np.maximum(check.difference, _GAP_FLOOR)  # nan (not differentiable) stays a hole in the line
    ax.plot(check.x, gap, linewidth=1.5, color="tab:purple")
    allowed = check.atol + check.rtol * np.abs(check.numerical)
    ax.plot(check.x, allowed, color="gray", linestyle="--", linewidth=1, label="gradcheck の許容差")
    ax.set_yscale("log")
    ax.set_ylim(_GAP_FLOOR / 3, 3)
    largest = "0" if check.gap == 0 else f"{check.gap:.1e}"
    ax.set_title(f"|df − 数値微分| (最大 {largest})")
    ax.set_ylabel("差 (0 は下端に描く)")


def plot_activations(
    activations: Mapping[str, Any] | Sequence[Any],
    x: np.ndarray | None = None,
    *,
    path: PathLike | None = None,
    show: bool = False,
) -> Figure:
    """活性化関数ごとに 1 行: 左に f(x)、中央に導関数、右にその検算の差。

    中央の実線は式による導関数 ``df`` (逆伝播が使うのと同じ値)、丸は f だけから float64 の中心差分
    (f(x + ε) − f(x − ε)) / 2ε で求めた数値微分。右は両者の差 |df − 数値微分| を対数軸で描き、
    題に最大値を書く (``tg.check_derivative(act, x).gap`` と同じ値)。df が間違っていれば右の差が
    大きくなる。左右の片側差分が食い違う点 (ReLU の x = 0 などの折れ目) は微分できない点として
    縦の点線で示し、差には含めない。
    ``activations`` は Activation のインスタンス・クラス・名前 ("relu" など) の列か、名前 → それの辞書。
    """
    acts = _activation_layers(activations)
    x = np.linspace(-5.0, 5.0, 401) if x is None else np.asarray(x, dtype=float)
    every = max(1, x.size // 40)
    fig = new_figure((15, 3.2 * len(acts)), show)
    axes = fig.subplots(len(acts), 3, squeeze=False, gridspec_kw={"width_ratios": [1, 1, 0.8]})
    for (name, act), (ax_f, ax_d, ax_gap) in zip(acts.items(), axes):
        check = check_derivative(act, x)
        ax_f.plot(check.x, act(check.x), linewidth=2, label=f"{name}(x)")
        ax_f.set_title(f"{name}関数")
        ax_f.set_ylabel(f"{name}(x)")
        _draw_derivative(ax_d, name, check, every)
        _draw_gap(ax_gap, check)
        for ax in (ax_f, ax_d, ax_gap):
            ax.set_xlabel("x")
            ax.grid(True, alpha=0.3)
            ax.legend(fontsize=8)
    return finish(fig, path, show)


# ---------------------------------------------------------------------- gradients per layer
def plot_layer_gradients(
    gradients: Mapping[str, Sequence[float]] | Sequence[float],
    *,
    title: str = "勾配消失問題の可視化",
    ylabel: str = "勾配",
    path: PathLike | None = None,
    show: bool = False,
) -> Figure:
    """層ごとの勾配の大きさを対数軸で描く (横軸: 層の深さ 1, 2, ...)。

    ``gradients`` は 1 本の列か、系列名 ("Sigmoid + 正規分布" など) → 列 の辞書。
    """
    series = _named(gradients, "勾配の大きさ")
    fig = new_figure((10, 6), show)
    ax = fig.subplots()
    for name, values in series.items():
        values = np.asarray(values, dtype=float)
        ax.plot(np.arange(1, len(values) + 1), values, marker="o", linewidth=2, markersize=6, label=name)
    ax.set_yscale("log")
    _label(ax, "層の深さ", ylabel, title)
    return finish(fig, path, show)


def plot_layer_saturation(
    saturation: Mapping[str, Sequence[float]] | Sequence[float],
    *,
    title: str = "層ごとの飽和",
    path: PathLike | None = None,
    show: bool = False,
) -> Figure:
    """層ごとの飽和の割合 (0〜1、``probes.saturation``) を % で描く (横軸: 層の深さ 1, 2, ...)。

    ``saturation`` は 1 本の列か、系列名 → 列 の辞書。nan の層 (測っていない層) は描かない。
    Sigmoid・tanh では両端に張り付いた出力の割合、ReLU では死んだユニットの割合である。
    """
    series = _named(saturation, "飽和の割合")
    fig = new_figure((10, 6), show)
    ax = fig.subplots()
    for name, values in series.items():
        values = np.asarray(values, dtype=float) * 100
        ax.plot(np.arange(1, len(values) + 1), values, marker="o", linewidth=2, markersize=6, label=name)
    ax.set_ylim(-3, 103)
    _label(ax, "層の深さ", "飽和の割合 (%)", title)
    return finish(fig, path, show)


# ---------------------------------------------------------------------- optimizers
def _bounds(points: np.ndarray) -> tuple[tuple[float, float], tuple[float, float]]:
    finite = points[np.all(np.isfinite(points), axis=1)]
    lo, hi = finite.min(axis=0), finite.max(axis=0)
    pad = np.maximum((hi - lo) * 0.1, 0.5)
    return (lo[0] - pad[0], hi[0] + pad[0]), (lo[1] - pad[1], hi[1] + pad[1])


def plot_trajectories(
    f: Callable[[np.ndarray, np.ndarray], np.ndarray],
    trajectories: Mapping[str, np.ndarray],
    *,
    optimum: tuple[float, float] | None = (0.0, 0.0),
    levels: int = 20,
    title: str = "最適化アルゴリズムの比較",
    path: PathLike | None = None,
    show: bool = False,
) -> Figure:
    """f(x, y) の等高線の上に、最適化手法ごとの軌跡 (名前 → 形 (T, 2) の配列) を描く。

    ``f`` は meshgrid の配列を受け取れる関数 (例: ``lambda x, y: x**2 + 10*y**2``)。
    ``optimum`` に ★ (最適解) を打つ。
    """
    trajs = {name: np.asarray(t, dtype=float) for name, t in trajectories.items()}
    for name, t in trajs.items():
        if t.ndim != 2 or t.shape[1] != 2:
            raise ValueError(f"trajectory {name!r} must have shape (T, 2), got {t.shape}")
    points = [t for t in trajs.values()]
    if optimum is not None:
        points.append(np.asarray([optimum], dtype=float))
    if not points:
        raise ValueError("plot_trajectories needs at least one trajectory or an optimum")
    (x0, x1), (y0, y1) = _bounds(np.concatenate(points))
    X, Y = np.meshgrid(np.linspace(x0, x1, 200), np.linspace(y0, y1, 200))
    fig = new_figure((10, 8), show)
    ax = fig.subplots()
    ax.contour(X, Y, f(X, Y), levels=levels, alpha=0.4)
    for name, t in trajs.items():
        ax.plot(t[:, 0], t[:, 1], marker="o", linewidth=2, markersize=4, label=name)
    if optimum is not None:
        ax.plot(*optimum, "r*", markersize=20, label="最適解")
    _label(ax, "x", "y", title)
    return finish(fig, path, show)


def plot_objective(
    f: Callable[[np.ndarray, np.ndarray], np.ndarray],
    trajectories: Mapping[str, np.ndarray],
    *,
    title: str = "目的関数の値の推移",
    path: PathLike | None = None,
    show: bool = False,
) -> Figure:
    """軌跡の各点での f(x, y) をステップ数に対して描く (値がすべて正なら対数軸)。"""
    fig = new_figure((9, 5.5), show)
    ax = fig.subplots()
    all_positive = True
    for name, t in trajectories.items():
        t = np.asarray(t, dtype=float)
        values = f(t[:, 0], t[:, 1])
        all_positive = all_positive and bool(np.all(values > 0))
        ax.plot(np.arange(len(values)), values, linewidth=2, label=name)
    if all_positive:
        ax.set_yscale("log")
    _label(ax, "ステップ", "f(x, y)", title)
    return finish(fig, path, show)


# ---------------------------------------------------------------------- distributions
def plot_activation_histograms(
    activations: Mapping[str, Sequence[np.ndarray]] | Sequence[np.ndarray],
    *,
    bins: int = 30,
    range: tuple[float, float] | None = None,
    title: str = "各層のアクティベーション分布",
    path: PathLike | None = None,
    show: bool = False,
) -> Figure:
    """層ごとの出力の分布を格子状に並べたヒストグラム。

    ``activations`` は設定名 ("Xavier" など) → 層ごとの配列の列 の辞書 (設定ごとに 1 行)、
    または配列の列 (1 行)。横軸の範囲は ``range`` を渡せば全パネル共通、渡さなければパネルごとに
    そのデータの最小〜最大 (爆発する層も潰れる層も形が見える)。範囲がパネルごとに違うので、
    各パネルの右上に標準偏差 (std) を書く。
    """
    rows = _named(activations, "")
    rows = {name: [np.asarray(a.data if isinstance(a, Tensor) else a) for a in layers] for name, layers in rows.items()}
    ncols = max((len(layers) for layers in rows.values()), default=0)
    if ncols == 0:
        raise ValueError("plot_activation_histograms needs at least one layer's activations, got none")
    fig = new_figure((2.6 * ncols + 1, 2.3 * len(rows) + 0.6), show)
    axes = fig.subplots(len(rows), ncols, squeeze=False)
    for r, (name, layers) in enumerate(rows.items()):
        for c, ax in enumerate(axes[r]):
            if c >= len(layers):
                ax.set_visible(False)
                continue
            values = layers[c].ravel()
            lo, hi = (float(values.min()), float(values.max())) if range is None else range
            panel_range = (lo, hi) if hi > lo else (lo - 0.5, hi + 0.5)
            counts, _, _ = ax.hist(values, bins=bins, range=panel_range, color="tab:blue", alpha=0.8)
            ax.set_ylim(0, 1.25 * max(counts.max(), 1))  # headroom for the std written above the bars
            ax.text(0.97, 0.95, f"std {values.std():.3g}", transform=ax.transAxes, ha="right", va="top", fontsize=9)
            ax.locator_params(axis="x", nbins=4)
            ax.ticklabel_format(axis="x", style="sci", scilimits=(-2, 3))  # 1e-5 or 1e4 once, not on every tick
            if r == 0:
                ax.set_title(f"第{c + 1}層")
            if c == 0 and name:
                ax.set_ylabel(name)
            ax.set_yticks([])
    fig.suptitle(title)
    return finish(fig, path, show)


# ---------------------------------------------------------------------- training
def _series(history: Any, key: str) -> np.ndarray | None:
    values = history.get(key) if isinstance(history, Mapping) else getattr(history, key, None)
    if values is None or len(values) == 0 or all(v is None for v in values):
        return None
    return np.array([np.nan if v is None else float(v) for v in values])


def plot_history(history: Any, *, path: PathLike | None = None, show: bool = False) -> Figure:
    """学習履歴: エポックごとの損失 (と正解率) を学習データ・検証データについて描く。

    ``history`` は ``train.fit`` の返す History のように ``loss``, ``accuracy``, ``val_loss``,
    ``val_accuracy`` を属性に持つものか、同じキーの辞書。正解率がなければ損失だけを描く。
    """
    loss = _series(history, "loss")
    if loss is None:
        raise ValueError("plot_history needs a history with a non-empty 'loss' series")
    panels = [("損失", "loss", "val_loss")]
    if _series(history, "accuracy") is not None or _series(history, "val_accuracy") is not None:
        panels.append(("正解率", "accuracy", "val_accuracy"))
    fig = new_figure((6 * len(panels), 4.5), show)
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    for ax, (label, train_key, val_key) in zip(axes, panels):
        for key, name in ((train_key, "学習データ"), (val_key, "検証データ")):
            values = _series(history, key)
            if values is not None:
                ax.plot(np.arange(1, len(values) + 1), values, marker="o", markersize=3, linewidth=2, label=name)
        _label(ax, "エポック", label, f"{label}の推移")
    return finish(fig, path, show)


def plot_curves(
    curves: Mapping[str, Sequence[float]] | Sequence[float],
    *,
    xlabel: str = "エポック",
    ylabel: str = "損失",
    title: str = "損失の推移",
    logy: bool = False,
    reference: Mapping[str, float] | None = None,
    path: PathLike | None = None,
    show: bool = False,
) -> Figure:
    """名前 → 値の列 を 1 枚に重ねて描く (最適化手法ごとの損失曲線の比較など)。

    ``reference`` (名前 → 値) は目安の水平線として破線で描く (当てずっぽうの損失 ln 3 など)。
    """
    fig = new_figure((9, 5.5), show)
    ax = fig.subplots()
    for name, values in _named(curves, ylabel).items():
        values = np.asarray(values, dtype=float)
        ax.plot(np.arange(1, len(values) + 1), values, linewidth=2, label=name)
    for name, value in (reference or {}).items():
        ax.axhline(value, color="black", linestyle="--", linewidth=1.5, label=name, zorder=1)  # under the curves
    if logy:
        ax.set_yscale("log")
    _label(ax, xlabel, ylabel, title)
    return finish(fig, path, show)


def plot_lr_schedules(
    schedules: Mapping[str, Sequence[float]],
    *,
    title: str = "学習率スケジュール",
    path: PathLike | None = None,
    show: bool = False,
) -> Figure:
    """スケジューラ名 → エポックごとの学習率 を重ねて描く (横軸はエポック 0, 1, ...)。"""
    fig = new_figure((9, 5.5), show)
    ax = fig.subplots()
    for name, lrs in schedules.items():
        lrs = np.asarray(lrs, dtype=float)
        ax.plot(np.arange(len(lrs)), lrs, linewidth=2, label=name)
    _label(ax, "エポック", "学習率", title)
    return finish(fig, path, show)


# ---------------------------------------------------------------------- classifiers
def _predict(model: Callable[[Tensor], Any], points: np.ndarray, threshold: float) -> np.ndarray:
    training = getattr(model, "training", None)
    if training is not None and hasattr(model, "eval"):
        model.eval()
    try:
        with no_grad():
            out = model(Tensor(points))
    finally:
        if training and hasattr(model, "train"):
            model.train()
    out = np.asarray(out.data if isinstance(out, Tensor) else out)
    if out.ndim == 2 and out.shape[1] > 1:
        return out.argmax(axis=1)
    return (out.reshape(len(points)) > threshold).astype(int)


def plot_decision_boundary(
    model: Callable[[Tensor], Any],
    X: np.ndarray,
    y: np.ndarray,
    *,
    resolution: int = 200,
    threshold: float = 0.0,
    title: str = "決定境界",
    path: PathLike | None = None,
    show: bool = False,
) -> Figure:
    """2 次元の分類器の決定境界を、データ点 (クラスごとの色) と重ねて描く。

    ``model`` は形 (N, 2) の Tensor を受け取り、クラスごとのスコア (N, C) か、2 クラスなら
    1 つのスコア (N,) / (N, 1) を返すもの (``threshold`` を超えればクラス 1)。
    予測は ``no_grad`` の中、``eval()`` のある model は評価モードで行う (あとで元に戻す)。
    """
    X = np.asarray(X)
    y = np.asarray(y).reshape(-1)
    if X.ndim != 2 or X.shape[1] != 2:
        raise ValueError(f"plot_decision_boundary needs points X of shape (N, 2), got {X.shape}")
    if len(y) != len(X):
        raise ValueError(f"X has {len(X)} points but y has {len(y)} labels")
    (x0, x1), (y0, y1) = _bounds(X.astype(float))
    gx, gy = np.meshgrid(np.linspace(x0, x1, resolution), np.linspace(y0, y1, resolution))
    dtype = X.dtype if X.dtype.kind == "f" else np.float32
    grid = np.stack([gx.ravel(), gy.ravel()], axis=1).astype(dtype)
    pred = _predict(model, grid, threshold).reshape(gx.shape)
    classes = np.unique(y.astype(int))
    n = int(max(classes.max(initial=0), pred.max(initial=0))) + 1
    fig = new_figure((8, 7), show)
    ax = fig.subplots()
    # Region k and the points of class k share a colour, so misclassified points stand out.
    colors = [matplotlib.colormaps["tab10"](k % 10) for k in range(n)]
    ax.contourf(gx, gy, pred, levels=np.arange(n + 1) - 0.5, colors=colors, alpha=0.25)
    for k in classes:
        pts = X[y.astype(int) == k]
        ax.scatter(pts[:, 0], pts[:, 1], s=15, color=colors[k], edgecolors="black", linewidths=0.3, label=f"クラス {k}")
    ax.set_xlabel("x₁")
    ax.set_ylabel("x₂")
    ax.set_title(title)
    ax.legend()
    return finish(fig, path, show)
