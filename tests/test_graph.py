"""計算グラフ: DOT テキストにすべての演算と名前つきテンソルが現れ、図はノード 1 つに patch 1 つ。"""

import re
import shutil
import subprocess
import warnings

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest
from matplotlib.patches import Ellipse, FancyBboxPatch

from tinygrad_jp import Tensor
from tinygrad_jp.viz import draw_graph, to_dot


def expression():
    """f = (x·w + b)² summed, with x a named constant: 3 named leaves, 4 ops (Mul, Add, Pow, Sum)."""
    x = Tensor(np.array([1.0, 2.0]), name="x")
    w = Tensor(np.array([0.5, -1.0]), requires_grad=True, name="w")
    b = Tensor(np.array(0.1), requires_grad=True, name="b")
    f = ((x * w + b) ** 2).sum()
    f.name = "f"
    return f


def mlp_loss():
    rng = np.random.default_rng(0)
    x = Tensor(rng.normal(size=(4, 2)), name="X")
    W1 = Tensor(rng.normal(size=(2, 3)), requires_grad=True, name="W1")
    W2 = Tensor(rng.normal(size=(3, 1)), requires_grad=True, name="W2")
    h = (x @ W1).relu()
    h.name = "h"
    return ((h @ W2 - 1.0) ** 2).mean()


def parse(dot: str):
    nodes = dict(re.findall(r'^\s+(\w+) \[label="([^"]*)"', dot, flags=re.M))
    edges = re.findall(r"^\s+(\w+) -> (\w+);", dot, flags=re.M)
    return nodes, edges


def op_keys(dot: str):
    return set(re.findall(r"^\s+(\w+) \[.*shape=ellipse", dot, flags=re.M))


def test_dot_has_every_op_and_every_named_tensor():
    dot = to_dot(expression())
    nodes, edges = parse(dot)
    labels = list(nodes.values())
    assert sorted(nodes[key] for key in op_keys(dot)) == ["Add", "Mul", "Pow", "Sum"]
    for name in ("x", "w", "b", "f"):
        assert any(label.split("\\n")[0] == name for label in labels), name
    assert "2" in labels  # the literal exponent shows its value
    # 4 ops, each with one output edge, and 2 + 2 + 2 + 1 input edges.
    assert len(edges) == 4 + 7
    assert all(src in nodes and dst in nodes for src, dst in edges)


def test_dot_edges_alternate_between_tensors_and_ops():
    dot = to_dot(mlp_loss())
    _, edges = parse(dot)
    ops = op_keys(dot)
    for src, dst in edges:
        assert (src in ops) != (dst in ops), (src, dst)  # never op→op or tensor→tensor


def test_a_tensor_used_twice_appears_once():
    w = Tensor(np.ones(2), requires_grad=True, name="w")
    nodes, edges = parse(to_dot((w * w).sum()))
    assert [label.split("\\n")[0] for label in nodes.values()].count("w") == 1
    # w → Mul is drawn once, not once per operand: w→Mul, Mul→w², w²→Sum, Sum→out.
    assert len(edges) == len(set(edges)) == 4


def test_a_tensor_without_graph_is_a_single_node():
    nodes, edges = parse(to_dot(Tensor(np.zeros((2, 3)), name="z")))
    assert list(nodes.values()) == ["z\\n(2, 3)"] and edges == []


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz is not installed")
def test_graphviz_accepts_the_dot_text(tmp_path):
    out = tmp_path / "g.svg"
    subprocess.run(["dot", "-Tsvg", "-o", str(out)], input=to_dot(mlp_loss()), text=True, check=True)
    assert out.stat().st_size > 0


def test_drawing_has_one_patch_per_node_and_no_warnings(tmp_path):
    loss = mlp_loss()
    dot = to_dot(loss)
    nodes, edges = parse(dot)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fig = draw_graph(loss, tmp_path / "deep" / "graph.png")
    assert (tmp_path / "deep" / "graph.png").stat().st_size > 1000
    ax = fig.axes[0]
    n_ops = len(op_keys(dot))
    assert len(ax.patches) == len(nodes)
    assert sum(isinstance(p, Ellipse) for p in ax.patches) == n_ops
    assert sum(isinstance(p, FancyBboxPatch) for p in ax.patches) == len(nodes) - n_ops
    arrows = [t for t in ax.texts if t.get_text() == "" and t.arrow_patch is not None]
    assert len(arrows) == len(edges)
    shown = {t.get_text() for t in ax.texts}
    for name in ("X", "W1", "W2", "h"):
        assert any(s.split("\n")[0] == name for s in shown)


def test_drawing_puts_inputs_left_of_the_ops_that_use_them():
    fig = draw_graph(expression())
    ax = fig.axes[0]
    centers = {t.get_text().split("\n")[0]: t.get_position()[0] for t in ax.texts if t.get_text()}
    assert centers["x"] < centers["Mul"] < centers["Add"] < centers["Pow"] < centers["Sum"] < centers["f"]


def test_released_graph_is_reported():
    loss = expression()
    draw_graph(loss)
    loss.backward(retain_graph=True)
    draw_graph(loss)  # still there
    loss.backward()
    with pytest.raises(RuntimeError, match="retain_graph"):
        to_dot(loss)


def test_highlight_frames_the_tensor_and_the_op_that_made_it():
    x = Tensor(np.array([1.0, 2.0]), name="x")
    w = Tensor(np.array([0.5, -1.0]), requires_grad=True, name="w")
    a = x * w
    a.name = "a"
    loss = (a ** 2).sum()
    plain = draw_graph(loss).axes[0]
    framed = draw_graph(loss, highlight=a).axes[0]
    extra = framed.patches[len(plain.patches):]
    assert len(extra) == 2 and all(p.get_edgecolor()[:3] == (1.0, 0.0, 0.0) for p in extra)
    centers = {t.get_text().split("\n")[0]: t.get_position() for t in framed.texts if t.get_text()}
    for name in ("a", "Mul"):
        inside = [p.contains_point(framed.transData.transform(centers[name])) for p in extra]
        assert sum(inside) == 1, name
    leaf = draw_graph(loss, highlight=w).axes[0]
    assert len(leaf.patches) == len(plain.patches) + 1  # no op made the leaf w


def test_highlighting_a_tensor_outside_the_graph_is_an_error():
    with pytest.raises(ValueError, match="not in this graph"):
        draw_graph(expression(), highlight=Tensor([1.0], name="stranger"))
