"""活性化関数: 7 つの関数と導関数の図 (式の導関数 df を、f から独立に求めた数値微分と比べる) と、本文の比較表。

比較表の「計算速度」は本文のような言葉ではなく、この場で測った時間 (10⁶ 要素の順伝播 + 逆伝播、
数回の中央値、µs) を表示する。
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import activations as A
from .. import textwidth
from ..gradcheck import check_derivative
from ..tensor import Tensor
from ..viz import plot_activations

# name -> (activation, output range, vanishing gradient, recommended use): the chapter's table,
# extended with Swish and GELU.
TABLE: dict[str, tuple[A.Activation, str, str, str]] = {
    "Sigmoid": (A.Sigmoid(), "(0, 1)", "あり", "出力層 (二値分類)"),
    "tanh": (A.Tanh(), "(-1, 1)", "あり", "RNN (過去)"),
    "ReLU": (A.ReLU(), "[0, ∞)", "なし", "隠れ層 (デフォルト)"),
    "Leaky ReLU": (A.LeakyReLU(0.01), "(-∞, ∞)", "なし", "ReLU で失敗したとき"),
    "ELU": (A.ELU(1.0), "(-α, ∞)", "なし", "高精度が必要な場合"),
    "Swish": (A.Swish(1.0), "[≈-0.278, ∞)", "なし", "深い CNN (EfficientNet など)"),
    "GELU": (A.GELU(), "[≈-0.170, ∞)", "なし", "Transformer"),
}


@dataclass
class Row:
    """比較表の 1 行。``seconds`` は測った時間 (順伝播 + 逆伝播の中央値)。``gap`` は式の導関数 df と
    数値微分 (f の中心差分、float64) の差の最大値、``kinks`` は微分できない点 (折れ目) として比べなかった点の数。"""

    name: str
    output_range: str
    vanishing: str
    use: str
    seconds: float
    gap: float
    kinks: int


def time_forward_backward(act: A.Activation, n: int = 1_000_000, repeats: int = 5, seed: int = 0) -> float:
    """n 要素 (float32) の順伝播 + 逆伝播にかかる秒数の中央値。"""
    x = np.random.default_rng(seed).standard_normal(n, dtype=np.float32) * 3
    times = []
    for _ in range(repeats):
        t = Tensor(x, requires_grad=True)
        start = time.perf_counter()
        act(t).sum().backward()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def comparison_table(n: int = 1_000_000, repeats: int = 5) -> list[Row]:
    """本文の比較表の行を、速度と導関数の誤差を測って作る。"""
    x = np.linspace(-5.0, 5.0, 401)
    rows = []
    for name, (act, output_range, vanishing, use) in TABLE.items():
        check = check_derivative(act, x)
        rows.append(Row(name, output_range, vanishing, use, time_forward_backward(act, n, repeats), check.gap,
                        int(check.kink.sum())))
    return rows


def format_table(rows: list[Row], n: int) -> str:
    """比較表を Markdown の表にする (計算速度は µs と、ReLU に対する倍率)。"""
    relu = next((r.seconds for r in rows if r.name == "ReLU"), rows[0].seconds)
    table = [["関数", "出力範囲", "勾配消失", f"計算速度 (順+逆, {n:,} 要素)", "推奨用途"]]
    for r in rows:
        speed = f"{r.seconds * 1e6:,.0f} µs (ReLU の {r.seconds / relu:.1f} 倍)"
        table.append([r.name, r.output_range, r.vanishing, speed, r.use])
    return textwidth.format_table(table, align="<<<><", sep=" | ")


def run(out_dir: Path, show: bool = False, *, small: bool = False) -> list[Path]:
    """活性化関数の図を書き出し、比較表を表示する。

    ``small=True`` なら速度を 10⁴ 要素・1 回で測り、図には最初の 2 つの関数だけを描く。
    """
    n, repeats = (10_000, 1) if small else (1_000_000, 5)
    path = Path(out_dir) / "activations.png"
    drawn = list(TABLE)[:2] if small else list(TABLE)
    plot_activations({name: TABLE[name][0] for name in drawn}, np.linspace(-5.0, 5.0, 401), path=path, show=show)
    rows = comparison_table(n, repeats)
    print("=== 式の導関数 df と数値微分 (f の中心差分、float64) の差: x ∈ [-5, 5] の 401 点 ===")
    print(textwidth.format_table([["関数", "最大の差", "微分できない点"]]
                       + [[r.name, f"{r.gap:.1e}", str(r.kinks)] for r in rows]))
    print()
    print(f"=== 活性化関数の比較 (計算速度はこのマシンで測った中央値: {repeats} 回) ===")
    print(format_table(rows, n))
    return [path]
