"""図で見る: 章の図を描く関数、計算グラフの描画、逆伝播のアニメーション、日本語フォントの設定。

matplotlib を使うのはこのパッケージだけ (本体の Tensor や自動微分は読み込まない)。
どの関数も ``Figure`` を返し、``path=`` で保存する。Jupyter・Colab では、セルの最後に置くか
``show=True`` を渡すと、セルの出力に 1 回だけ表示される (``%matplotlib inline`` は要らない)。
スクリプトでは ``show=True`` のときだけウィンドウを開く。
"""

from .fonts import font_path, use_japanese_font
from .graph import draw_graph, to_dot
from .plots import (
    plot_activation_histograms,
    plot_activations,
    plot_curves,
    plot_decision_boundary,
    plot_history,
    plot_layer_gradients,
    plot_layer_saturation,
    plot_lr_schedules,
    plot_objective,
    plot_trajectories,
)
from .stepper import animate_backprop

__all__ = [
    "animate_backprop",
    "draw_graph",
    "font_path",
    "plot_activation_histograms",
    "plot_activations",
    "plot_curves",
    "plot_decision_boundary",
    "plot_history",
    "plot_layer_gradients",
    "plot_layer_saturation",
    "plot_lr_schedules",
    "plot_objective",
    "plot_trajectories",
    "to_dot",
    "use_japanese_font",
]
