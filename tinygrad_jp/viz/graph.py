"""計算グラフの描画: DOT テキスト (Graphviz 用) と、matplotlib だけで描く図。

グラフは「テンソル → それを作った演算 → 入力テンソル」をたどって集める。勾配の流れない
入力 (データやラベル) も、演算の入力として含める。``backward()`` はグラフを解放するので、
描くのは backward の前か、``backward(retain_graph=True)`` のあと。
"""

from __future__ import annotations

from dataclasses import dataclass, field

from matplotlib.figure import Figure
from matplotlib.patches import Ellipse, FancyBboxPatch

from ..autograd import toposort
from ..tensor import Tensor
from ._figure import PathLike, finish, new_figure


@dataclass
class _Node:
    key: str
    kind: str  # "tensor" or "op"
    label: str
    role: str  # tensor: "output", "param", "const", "value"; op: "op"
    depth: int = 0
    inputs: list[str] = field(default_factory=list)
    tensor_id: int | None = None  # id() of the tensor a tensor node stands for


def _tensor_label(t: Tensor) -> str:
    if t.name is None and t._ctx is None and not t.requires_grad and t.size == 1:
        return f"{t.data.item():.4g}"  # a literal such as the 2 of x ** 2 reads best as its value
    shape = "(" + ", ".join(str(n) for n in t.shape) + ("," if t.ndim == 1 else "") + ")"
    return f"{t.name}\n{shape}" if t.name else shape


def _collect(tensor: Tensor) -> list[_Node]:
    """Every tensor and op feeding `tensor`, consumers before producers, with depth from the output."""
    order = toposort([tensor]) if tensor.requires_grad else [tensor]
    nodes: dict[str, _Node] = {}
    tensor_keys: dict[int, str] = {}

    def tensor_node(t: Tensor) -> _Node:
        key = tensor_keys.get(id(t))
        if key is None:
            key = tensor_keys[id(t)] = f"t{len(tensor_keys)}"
            if t is tensor:
                role = "output"
            elif t._ctx is not None:
                role = "value"
            else:
                role = "param" if t.requires_grad else "const"
            nodes[key] = _Node(key, "tensor", _tensor_label(t), role)
            nodes[key].tensor_id = id(t)
        return nodes[key]

    tensor_node(tensor)
    n_ops = 0
    for t in order:
        out = tensor_node(t)
        fn = t._ctx
        if fn is None:
            continue
        if fn.parents is None:
            raise RuntimeError(
                f"the graph below {fn.name} was released by backward(); draw it before backward() "
                "or call backward(retain_graph=True)"
            )
        op = _Node(f"f{n_ops}", "op", fn.name, "op", depth=out.depth + 1)
        n_ops += 1
        nodes[op.key] = op
        out.inputs.append(op.key)
        for p in fn.parents:
            # toposort visits a tensor only after all its consumers, so its depth is final by then;
            # constants are never visited as producers, so the max over their consumers is kept here.
            pn = tensor_node(p)
            pn.depth = max(pn.depth, op.depth + 1)
            if pn.key not in op.inputs:
                op.inputs.append(pn.key)
    return list(nodes.values())


def _dot_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


_DOT_STYLE = {
    "output": 'shape=box, style="rounded,filled,bold", fillcolor="#ffd8a8"',
    "param": 'shape=box, style="rounded,filled", fillcolor="#c5e8c5"',
    "const": 'shape=box, style="rounded,filled", fillcolor="#e6e6e6"',
    "value": 'shape=box, style="rounded,filled", fillcolor="#d6e6ff"',
    "op": 'shape=ellipse, style=filled, fillcolor="#fff3bf"',
}


def to_dot(tensor: Tensor) -> str:
    """``tensor`` を計算した計算グラフを DOT 言語のテキストで返す (``dot -Tpng`` で画像になる)。

    テンソルは箱 (名前と形)、演算は楕円 (Function の名前) で、矢印は順伝播の向き。
    色: 出力はオレンジ、パラメータ (requires_grad の葉) は緑、定数は灰色、途中の値は青。
    """
    nodes = _collect(tensor)
    lines = ["digraph computational_graph {", "  rankdir=LR;", '  node [fontname="IPAexGothic"];']
    for n in nodes:
        lines.append(f'  {n.key} [label="{_dot_escape(n.label)}", {_DOT_STYLE[n.role]}];')
    for n in nodes:
        for src in n.inputs:
            lines.append(f"  {src} -> {n.key};")
    lines.append("}")
    return "\n".join(lines) + "\n"


_FILL = {"output": "#ffd8a8", "param": "#c5e8c5", "const": "#e6e6e6", "value": "#d6e6ff", "op": "#fff3bf"}


def _layout(nodes: list[_Node]) -> dict[str, tuple[float, float]]:
    """Columns by depth (inputs on the left, the output on the right); rows ordered by consumers."""
    layers: dict[int, list[_Node]] = {}
    for n in nodes:
        layers.setdefault(n.depth, []).append(n)
    max_depth = max(layers)
    pos: dict[str, tuple[float, float]] = {}
    consumers: dict[str, list[str]] = {}
    for n in nodes:
        for src in n.inputs:
            consumers.setdefault(src, []).append(n.key)
    for depth in sorted(layers):
        layer = layers[depth]
        if depth > 0:
            # Placing a node at the mean height of its consumers keeps edges short and uncrossed.
            def height(n: _Node) -> float:
                ys = [pos[c][1] for c in consumers.get(n.key, [])]
                return sum(ys) / len(ys) if ys else 0.0

            layer.sort(key=height, reverse=True)
        for i, n in enumerate(layer):
            pos[n.key] = (float(max_depth - depth), (len(layer) - 1) / 2 - i)
    return pos


def draw_graph(tensor: Tensor, path: PathLike | None = None, *, show: bool = False,
               highlight: Tensor | None = None) -> Figure:
    """計算グラフを matplotlib だけで描いた図を返す (Graphviz は不要)。

    深さ (出力からの演算の段数) ごとに列を作り、左に入力、右に出力を置く。テンソルは角の丸い箱、
    演算は楕円で、図の patch はノード 1 つにつき 1 つ。色の意味は ``to_dot`` と同じ。
    ``highlight`` にグラフの中のテンソルを渡すと、それと、それを作った演算を赤い枠で囲む
    (逆伝播のステッパーが「今のノード」を示すのに使う)。
    """
    nodes = _collect(tensor)
    pos = _layout(nodes)
    n_cols = max(x for x, _ in pos.values()) + 1
    n_rows = max(sum(1 for p in pos.values() if p[0] == x) for x in {p[0] for p in pos.values()})
    fig = new_figure((max(4.0, 1.9 * n_cols), max(2.5, 1.1 * n_rows + 1)), show, layout=None)
    ax = fig.add_axes((0.02, 0.02, 0.96, 0.96))
    half_w, half_h = 0.36, 0.3
    for n in nodes:
        x, y = pos[n.key]
        if n.kind == "op":
            patch = Ellipse((x, y), 2 * half_w, 1.4 * half_h, facecolor=_FILL["op"], edgecolor="black")
        else:
            patch = FancyBboxPatch(
                (x - half_w, y - half_h), 2 * half_w, 2 * half_h, boxstyle="round,pad=0,rounding_size=0.08",
                facecolor=_FILL[n.role], edgecolor="black", linewidth=2 if n.role == "output" else 1,
            )
        ax.add_patch(patch)
        ax.text(x, y, n.label, ha="center", va="center", fontsize=8)
    for n in nodes:
        x1, y1 = pos[n.key]
        for src in n.inputs:
            x0, y0 = pos[src]
            ax.annotate(
                "", xy=(x1 - half_w, y1), xytext=(x0 + half_w, y0),
                arrowprops={"arrowstyle": "->", "color": "dimgray", "shrinkA": 0, "shrinkB": 0},
            )
    if highlight is not None:
        _draw_highlight(ax, nodes, pos, highlight, half_w, half_h)
    ys = [y for _, y in pos.values()]
    ax.set_xlim(-0.6, n_cols - 0.4)
    ax.set_ylim(min(ys) - 0.6, max(ys) + 0.6)
    ax.set_axis_off()
    return finish(fig, path, show)


def _draw_highlight(ax, nodes: list[_Node], pos: dict[str, tuple[float, float]], tensor: Tensor,
                    half_w: float, half_h: float) -> None:
    """A red frame around the node of `tensor` and around the op that produced it."""
    found = [n for n in nodes if n.tensor_id == id(tensor)]
    if not found:
        raise ValueError(f"highlight: the tensor {tensor.name or tuple(tensor.shape)} is not in this graph")
    margin = 0.07
    for key in [found[0].key, *found[0].inputs]:
        x, y = pos[key]
        ax.add_patch(FancyBboxPatch(
            (x - half_w - margin, y - half_h - margin), 2 * (half_w + margin), 2 * (half_h + margin),
            boxstyle="round,pad=0,rounding_size=0.12", facecolor="none", edgecolor="red", linewidth=3, zorder=5,
            gid="highlight",
        ))
