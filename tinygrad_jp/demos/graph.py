"""計算グラフ: 小さな式と、2 層 MLP の損失のグラフを DOT テキストと図 (matplotlib だけで描く) にする。

DOT テキストは ``.dot`` ファイルに書き出して表示する (Graphviz があれば ``dot -Tpng FILE.dot -o FILE.png``
でも画像になる)。図は Graphviz なしで ``viz.draw_graph`` が描く。
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .. import functional as F
from .. import nn
from ..tensor import Tensor
from ..viz import draw_graph, to_dot


def small_expression() -> Tensor:
    """f = (x·y + sin x)² を x = 2, y = 3 で計算したテンソル (x, y, f に名前がつく)。"""
    x = Tensor(2.0, requires_grad=True, name="x")
    y = Tensor(3.0, requires_grad=True, name="y")
    f = (x * y + x.sin()) ** 2
    f.name = "f"
    return f


def mlp_loss(seed: int = 0) -> Tensor:
    """2 層 MLP [2, 4, 3] (ReLU) の 5 点でのソフトマックス交差エントロピー損失 (パラメータの名前は W1, b1, W2, b2)。"""
    model = nn.MLP([2, 4, 3], activation="relu", rng=seed)
    for i, layer in enumerate((m for m in model if isinstance(m, nn.Linear)), 1):
        layer.W.name, layer.b.name = f"W{i}", f"b{i}"
    rng = np.random.default_rng(seed)
    X = Tensor(rng.standard_normal((5, 2), dtype=np.float32), name="X")
    loss = F.softmax_cross_entropy(model(X), rng.integers(0, 3, 5))
    loss.name = "損失"
    return loss


def run(out_dir: Path, show: bool = False) -> list[Path]:
    """2 つのグラフの .dot と .png を書き出し、DOT テキストを表示する。返すのは PNG のパス。"""
    out_dir = Path(out_dir)
    paths = []
    for stem, title, tensor in (("graph_expression", "f = (x·y + sin x)²", small_expression()),
                                ("graph_mlp", "2 層 MLP の損失", mlp_loss())):
        dot = to_dot(tensor)
        dot_path = out_dir / f"{stem}.dot"
        dot_path.write_text(dot, encoding="utf-8")
        print(f"=== {title}: DOT ({dot_path}) ===")
        print(dot)
        png = out_dir / f"{stem}.png"
        draw_graph(tensor, path=png, show=show)
        paths.append(png)
    return paths
