"""計算グラフの描画: DOT テキスト (Graphviz 用) と、matplotlib だけで描く図。

グラフは「テンソル → それを作った演算 → 入力テンソル」をたどって集める。勾配の流れない
入力 (データやラベル) も、演算の入力として含める。``backward()`` はグラフを解放するので、
描くのは backward の前か、``backward(retain_graph=True)`` のあと。

テンソルの箱には名前 (名前のない途中の値には ``inspect.backprop_steps`` と同じ "Mul#1" のような
呼び名) と形 (0 次元なら値) を、演算の楕円には演算の名前を書く。
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Ellipse, FancyArrowPatch, FancyBboxPatch, Patch
from matplotlib.path import Path

from ..autograd import toposort
from ..inspect import _labels
from ..tensor import Tensor
from ._figure import PathLike, finish, new_figure


@dataclass
class _Node:
    key: str
    kind: str  # "tensor" or "op"
    label: str
    role: str  # tensor: "output", "param", "const", "value"; op: "op"
    tensor_id: int  # the tensor itself, or for an op the tensor it produced
    depth: int = 0
    inputs: list[str] = field(default_factory=list)


def _shape(shape: tuple) -> str:
    return "(" + ", ".join(str(n) for n in shape) + ("," if len(shape) == 1 else "") + ")"


def _tensor_label(t: Tensor, called: str | None) -> str:
    """The name (or the stepper's name for an unnamed intermediate) over the shape, or a 0-d tensor's value."""
    if t.name is None and t._ctx is None and not t.requires_grad and t.size == 1:
        return f"{t.data.item():.4g}"  # a literal such as the 2 of x ** 2 reads best as its value
    head = t.name or called
    tail = f"= {t.data.item():.4g}" if t.ndim == 0 else _shape(t.shape)
    return f"{head}\n{tail}" if head else tail


def _collect(tensor: Tensor) -> list[_Node]:
    """Every tensor and op feeding `tensor`, consumers before producers, with depth from the output."""
    order = toposort([tensor]) if tensor.requires_grad else [tensor]
    called = _labels(order) if tensor.requires_grad else {}
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
            nodes[key] = _Node(key, "tensor", _tensor_label(t, called.get(id(t))), role, id(t))
        return nodes[key]

    tensor_node(tensor)
    n_ops = 0
    for t in order:
        out = tensor_node(t)
        fn = t._ctx
        if fn is None:
            continue
        if not fn.parents:
            raise RuntimeError(
                f"the graph below {fn.name} was released by backward(); draw it before backward() "
                "or call backward(retain_graph=True)"
            )
        op = _Node(f"f{n_ops}", "op", fn.name, "op", id(t), depth=out.depth + 1)
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


# ---------------------------------------------------------------------- how each node looks
# Fill colour, legend text and colour word of each role; the figure and the DOT text use the same ones.
_ROLES = {
    "param": ("#c5e8c5", "パラメータ (requires_grad の葉)", "緑"),
    "const": ("#e6e6e6", "定数・データ (勾配なし)", "灰色"),
    "value": ("#d6e6ff", "途中の値", "青"),
    "output": ("#ffd8a8", "出力", "オレンジ"),
    "op": ("#fff3bf", "演算 (Function)", "黄"),
}
_HIGHLIGHT = ("#d62728", "強調したノード")


@dataclass(frozen=True)
class _Style:
    shape: str  # "box" (a tensor) or "ellipse" (an op)
    fill: str
    edge: str
    linewidth: float


def _style(node: _Node, highlighted: bool = False) -> _Style:
    """How one node is drawn: the only place that decides it, for the figure and the DOT text alike."""
    shape = "ellipse" if node.kind == "op" else "box"
    fill = _ROLES[node.role][0]
    if highlighted:
        return _Style(shape, fill, _HIGHLIGHT[0], 3.5)
    return _Style(shape, fill, "black", 2.0 if node.role == "output" else 1.0)


def _dot_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _dot_attributes(style: _Style) -> str:
    if style.shape == "ellipse":
        kind = 'shape=ellipse, style=filled'
    else:
        kind = 'shape=box, style="rounded,filled' + (',bold"' if style.linewidth > 1 else '"')
    return f'{kind}, fillcolor="{style.fill}", color="{style.edge}", penwidth={style.linewidth:g}'


def to_dot(tensor: Tensor) -> str:
    """``tensor`` を計算した計算グラフを DOT 言語のテキストで返す (``dot -Tpng`` で画像になる)。

    テンソルは箱 (名前と形)、演算は楕円 (Function の名前) で、矢印は順伝播の向き (上から下)。
    色: 出力はオレンジ、パラメータ (requires_grad の葉) は緑、定数は灰色、途中の値は青、演算は黄
    (グラフの下に凡例として書く)。
    """
    nodes = _collect(tensor)
    legend = "、".join(f"{word} = {text}" for _, text, word in _ROLES.values())
    lines = [
        "digraph computational_graph {",
        "  rankdir=TB;",
        '  node [fontname="IPAexGothic"];',
        f'  graph [fontname="IPAexGothic", labelloc=b, label="凡例 (塗りの色) — {legend}"];',
    ]
    for n in nodes:
        lines.append(f'  {n.key} [label="{_dot_escape(n.label)}", {_dot_attributes(_style(n))}];')
    for n in nodes:
        for src in n.inputs:
            lines.append(f"  {src} -> {n.key};")
    lines.append("}")
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------- layout
# Lengths in inches: the axes are drawn at 1 data unit = 1 inch, so text sizes and node sizes agree.
_FONT = 12  # points
_LEVEL = 0.85  # from one level to the next
_GAP = 0.7  # between two bands of a wrapped layout
_ASPECT = 1.2  # the height / width a wrapped layout aims for


def _half_size(node: _Node) -> tuple[float, float]:
    """Half width and half height of a node, wide enough for its longest label line."""
    em = _FONT / 72
    text = max(sum(1.0 if ord(c) > 0x2E7F else 0.6 for c in line) for line in node.label.split("\n")) * em
    if node.kind == "op":
        return max(0.5, 0.65 * text + 0.15), 0.22
    return max(0.5, 0.5 * text + 0.12), 0.27 if "\n" in node.label else 0.2


def _levels(nodes: list[_Node]) -> list[list[_Node]]:
    """Levels from the top (the inputs) to the bottom (the output); each ordered under its consumers."""
    by_depth: dict[int, list[_Node]] = {}
    for n in nodes:
        by_depth.setdefault(n.depth, []).append(n)
    consumers: dict[str, list[str]] = {}
    for n in nodes:
        for src in n.inputs:
            consumers.setdefault(src, []).append(n.key)
    slot: dict[str, float] = {}  # position within the level, centred on 0
    for depth in sorted(by_depth):
        level = by_depth[depth]

        # Sitting at the mean position of its consumers keeps edges short and uncrossed.
        def under(n: _Node) -> float:
            xs = [slot[c] for c in consumers.get(n.key, [])]
            return sum(xs) / len(xs) if xs else 0.0

        level.sort(key=under)
        for i, n in enumerate(level):
            slot[n.key] = i - (len(level) - 1) / 2
    return [by_depth[d] for d in sorted(by_depth, reverse=True)]


def _n_bands(n_levels: int, band_width: float) -> int:
    """How many side-by-side bands a long graph is wrapped into, to come close to the aimed aspect."""
    def aspect_error(bands: int) -> float:
        height = math.ceil(n_levels / bands) * _LEVEL
        width = bands * band_width + (bands - 1) * _GAP
        return abs(math.log(height / width / _ASPECT))

    return min(range(1, 5), key=aspect_error)


@dataclass
class _Layout:
    pos: dict[str, tuple[float, float]]
    band: dict[str, int]
    band_left: list[float]
    size: dict[str, tuple[float, float]]


def _layout(nodes: list[_Node]) -> _Layout:
    """Forward flow from top to bottom; a long graph continues at the top of the next band to the right."""
    size = {n.key: _half_size(n) for n in nodes}
    levels = _levels(nodes)
    spaced = 0.3  # between two nodes of a level

    def level_width(level: list[_Node]) -> float:
        return sum(2 * size[n.key][0] for n in level) + spaced * (len(level) - 1)

    band_width = max(level_width(level) for level in levels)
    bands = _n_bands(len(levels), band_width)
    per_band = math.ceil(len(levels) / bands)
    band_left = [b * (band_width + _GAP) for b in range(bands)]
    pos: dict[str, tuple[float, float]] = {}
    band: dict[str, int] = {}
    for i, level in enumerate(levels):
        b, row = divmod(i, per_band)
        x = band_left[b] + (band_width - level_width(level)) / 2
        for n in level:
            w = size[n.key][0]
            pos[n.key] = (x + w, -row * _LEVEL)
            band[n.key] = b
            x += 2 * w + spaced
    return _Layout(pos, band, band_left, size)


def _edge(layout: _Layout, src: str, dst: str, detour: float) -> FancyArrowPatch:
    """An arrow from the bottom of `src` to the top of `dst`; between bands, around through the gap."""
    (x0, y0), (x1, y1) = layout.pos[src], layout.pos[dst]
    (w0, h0), (w1, h1) = layout.size[src], layout.size[dst]
    style = {"arrowstyle": "-|>", "mutation_scale": 12, "color": "dimgray", "linewidth": 1.0}
    if layout.band[src] == layout.band[dst]:
        return FancyArrowPatch((x0, y0 - h0), (x1, y1 + h1), shrinkA=0, shrinkB=0, **style)
    gap = layout.band_left[layout.band[dst]] - _GAP / 2 + detour
    path = Path([(x0 + w0, y0), (gap, y0), (gap, y1), (x1 - w1, y1)])
    return FancyArrowPatch(path=path, **style)


def _node_patch(x: float, y: float, half: tuple[float, float], style: _Style):
    w, h = half
    if style.shape == "ellipse":
        return Ellipse((x, y), 2 * w, 2 * h, facecolor=style.fill, edgecolor=style.edge, linewidth=style.linewidth)
    return FancyBboxPatch((x - w, y - h), 2 * w, 2 * h, boxstyle="round,pad=0,rounding_size=0.08",
                          facecolor=style.fill, edgecolor=style.edge, linewidth=style.linewidth)


def _legend_handles(nodes: list[_Node], highlighted: bool) -> list:
    present = {n.role for n in nodes}
    handles = [Patch(facecolor=color, edgecolor="black", label=text)
               for role, (color, text, _) in _ROLES.items() if role in present and role != "op"]
    if "op" in present:
        handles.append(Line2D([], [], linestyle="none", marker="o", markersize=14, markerfacecolor=_ROLES["op"][0],
                              markeredgecolor="black", label=_ROLES["op"][1]))
    if highlighted:
        handles.append(Patch(facecolor="white", edgecolor=_HIGHLIGHT[0], linewidth=3, label=_HIGHLIGHT[1]))
    return handles


def _highlighted_ids(nodes: list[_Node], highlight: Tensor | Sequence[Tensor] | None) -> set[int]:
    wanted = [] if highlight is None else [highlight] if isinstance(highlight, Tensor) else list(highlight)
    present = {n.tensor_id for n in nodes}
    for t in wanted:
        if not isinstance(t, Tensor):
            raise TypeError(f"highlight must be a Tensor or a list of Tensors, got {type(t).__name__}")
        if id(t) not in present:
            raise ValueError(f"highlight: the tensor {t.name or t.shape!r} is not part of this graph")
    return {id(t) for t in wanted}


def draw_graph(tensor: Tensor, path: PathLike | None = None, *, highlight: Tensor | Sequence[Tensor] | None = None,
               show: bool = False) -> Figure:
    """計算グラフを matplotlib だけで描いた図を返す (Graphviz は不要)。

    順伝播の向きに上から下へ: 入力が上、出力が下。段数の多いグラフは右の列の上へ折り返して、
    縦横の比が 1 に近い図にする。テンソルは角の丸い箱、演算は楕円で、色の意味は図の下の凡例に書く。
    ``highlight`` にテンソル (またはそのリスト) を渡すと、その箱とそれを作った演算を赤い太枠で描く
    (逆伝播のステップ実行で「いまのノード」を示すため)。
    """
    nodes = _collect(tensor)
    marked = _highlighted_ids(nodes, highlight)
    layout = _layout(nodes)
    left = min(x - layout.size[k][0] for k, (x, _) in layout.pos.items()) - 0.15
    right = max(x + layout.size[k][0] for k, (x, _) in layout.pos.items()) + 0.15
    bottom = min(y - layout.size[k][1] for k, (_, y) in layout.pos.items()) - 0.15
    top = max(y + layout.size[k][1] for k, (_, y) in layout.pos.items()) + 0.15
    width, height = right - left, top - bottom
    handles = _legend_handles(nodes, bool(marked))
    ncol = max(1, min(len(handles), int(width // 2.7)))
    legend_height = 0.25 * math.ceil(len(handles) / ncol) + 0.15
    fig = new_figure((width, height + legend_height), show, layout=None)
    ax = fig.add_axes((0, legend_height / (height + legend_height), 1, height / (height + legend_height)))
    for n in nodes:
        x, y = layout.pos[n.key]
        patch = _node_patch(x, y, layout.size[n.key], _style(n, n.tensor_id in marked))
        patch.set_gid(f"node:{n.key}")
        ax.add_patch(patch)
        ax.text(x, y, n.label, ha="center", va="center", fontsize=_FONT, gid=f"label:{n.key}")
    for n in nodes:
        for i, src in enumerate(n.inputs):
            arrow = _edge(layout, src, n.key, detour=0.08 * i)
            arrow.set_gid(f"edge:{src}->{n.key}")
            ax.add_patch(arrow)
    ax.set_xlim(left, right)
    ax.set_ylim(bottom, top)
    ax.set_axis_off()
    fig.legend(handles=handles, loc="lower center", ncol=ncol, fontsize=_FONT - 2, frameon=False)
    return finish(fig, path, show)
