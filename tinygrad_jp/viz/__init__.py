"""図で見る: 章の図を描く関数、計算グラフの描画、日本語フォントの設定。

matplotlib を使うのはこのパッケージだけ (本体の Tensor や自動微分は読み込まない)。
どの関数も ``Figure`` を返し、``path=`` で保存、``show=True`` でウィンドウを開く。
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

__all__ = [
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
