"""計算グラフ: DOT テキストと図に同じノードと辺が現れ、どのノードにも演算か名前が書かれ、凡例が色を説明する。"""

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
from tinygrad_jp.demos import backprop_steps as bp_demo
from tinygrad_jp.demos import graph as graph_demo
from tinygrad_jp.inspect import backprop_steps
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


def nodes_of(fig):
    """The drawn nodes: key → (patch, label text, centre), and the drawn edges as (source key, target key)."""
    ax = fig.axes[0]
    patches = {p.get_gid().split(":", 1)[1]: p for p in ax.patches if (p.get_gid() or "").startswith("node:")}
    texts = {t.get_gid().split(":", 1)[1]: t for t in ax.texts if (t.get_gid() or "").startswith("label:")}
    edges = [tuple(p.get_gid().split(":", 1)[1].split("->")) for p in ax.patches
             if (p.get_gid() or "").startswith("edge:")]
    return {k: (patches[k], texts[k].get_text(), texts[k].get_position()) for k in patches}, edges


def test_drawing_has_one_patch_and_one_label_per_node_and_one_arrow_per_edge(tmp_path):
    loss = mlp_loss()
    dot = to_dot(loss)
    dot_nodes, dot_edges = parse(dot)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fig = draw_graph(loss, tmp_path / "deep" / "graph.png")
    assert (tmp_path / "deep" / "graph.png").stat().st_size > 1000
    drawn, edges = nodes_of(fig)
    assert set(drawn) == set(dot_nodes) and sorted(edges) == sorted(dot_edges)
    ops = op_keys(dot)
    for key, (patch, text, centre) in drawn.items():
        assert isinstance(patch, Ellipse if key in ops else FancyBboxPatch)
        assert text == dot_nodes[key].replace("\\n", "\n")
        assert patch.contains_point(fig.axes[0].transData.transform(centre))  # the label sits in its node


def test_every_node_is_labelled_with_its_op_or_its_name_as_the_stepper_calls_it():
    for loss in (expression(), mlp_loss(), graph_demo.small_expression(), bp_demo.tiny_network()[0]):
        drawn, _ = nodes_of(draw_graph(loss))
        firsts = {text.split("\n")[0] for _, text, _ in drawn.values()}
        assert "()" not in firsts and "" not in firsts
        # Every tensor the stepper visits is drawn under the name the stepper prints, and every op by its name.
        steps = list(backprop_steps(loss, retain_graph=True))
        assert {s.label for s in steps} <= firsts
        assert {s.op for s in steps if s.op} <= firsts


def test_the_legend_explains_every_colour_in_the_drawing():
    fig = draw_graph(mlp_loss())
    legend = fig.legends[0]
    texts = [t.get_text() for t in legend.get_texts()]
    assert texts == ["パラメータ (requires_grad の葉)", "定数・データ (勾配なし)", "途中の値", "出力",
                     "演算 (Function)"]
    drawn, _ = nodes_of(fig)
    fills = {matplotlib.colors.to_hex(patch.get_facecolor()) for patch, _, _ in drawn.values()}
    handles = legend.legend_handles
    shown = {matplotlib.colors.to_hex(h.get_facecolor() if hasattr(h, "get_facecolor") else h.get_markerfacecolor())
             for h in handles}
    assert fills == shown


def test_forward_flows_downwards_and_a_long_graph_wraps_into_a_readable_shape():
    for loss in (expression(), mlp_loss(), bp_demo.tiny_network()[0]):
        fig = draw_graph(loss)
        drawn, edges = nodes_of(fig)
        width, height = fig.get_size_inches()
        # Readable in a README table cell: not a strip; at most about 8 inches (800 px) wide.
        assert 0.5 <= height / width <= 2.5 and width <= 8.0, (width, height)
        for src, dst in edges:
            (x0, y0), (x1, y1) = drawn[src][2], drawn[dst][2]
            assert y0 > y1 or x0 < x1, (drawn[src][1], drawn[dst][1])  # above it, or in a band further left
    # The tiny network's chain of 19 levels is wrapped: its first and last nodes are side by side.
    drawn, _ = nodes_of(draw_graph(bp_demo.tiny_network()[0]))
    centre = {text.split("\n")[0]: pos for _, text, pos in drawn.values()}
    assert centre["x"][0] < centre["L"][0]


def test_highlight_draws_the_tensor_and_the_op_that_made_it_in_red():
    loss, t = bp_demo.tiny_network()
    drawn, _ = nodes_of(draw_graph(loss, highlight=t["h"]))
    red = {text.split("\n")[0] for patch, text, _ in drawn.values()
           if matplotlib.colors.to_hex(patch.get_edgecolor()) != "#000000"}
    assert red == {"h", "Sigmoid"}
    thick = {text.split("\n")[0] for patch, text, _ in drawn.values() if patch.get_linewidth() > 2}
    assert thick == {"h", "Sigmoid"}
    drawn, _ = nodes_of(draw_graph(loss, highlight=[t["W1"], t["L"]]))
    red = {text.split("\n")[0] for patch, text, _ in drawn.values()
           if matplotlib.colors.to_hex(patch.get_edgecolor()) != "#000000"}
    assert red == {"W1", "L", "Sum"}
    with pytest.raises(ValueError, match="not part of this graph"):
        draw_graph(loss, highlight=Tensor([1.0], name="elsewhere"))
    with pytest.raises(TypeError, match="Tensor"):
        draw_graph(loss, highlight="h")


def test_the_dot_text_carries_the_same_labels_and_a_legend():
    dot = to_dot(bp_demo.tiny_network()[0])
    nodes, _ = parse(dot)
    assert "rankdir=TB" in dot and "凡例" in dot
    for name in ("xW1", "z1", "h", "hW2", "L"):
        assert any(label.split("\\n")[0] == name for label in nodes.values()), name


def test_released_graph_is_reported():
    loss = expression()
    draw_graph(loss)
    loss.backward(retain_graph=True)
    draw_graph(loss)  # still there
    loss.backward()
    with pytest.raises(RuntimeError, match="retain_graph"):
        to_dot(loss)
