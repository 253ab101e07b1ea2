"""モデルの表: 層・出力の形・パラメータ数 (Keras の ``summary()``、torchinfo の ``summary`` と同じ考え)。

    model.summary(input_shape=(32, 2))

テキスト (``print``) でも、Jupyter・Colab の HTML の表でも表示できる。
"""

from __future__ import annotations

import html
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from .._jupyter import DisplayOnce, kernel_shell
from ..autograd import no_grad
from ..layer import Layer
from ..tensor import Tensor, get_default_dtype
from .containers import Sequential


@dataclass
class SummaryRow:
    """表の 1 行: 名前 ("0", "2.block.0" など)、入れ子の深さ、層、出力の形 (分からなければ None)、パラメータ数。"""

    name: str
    depth: int
    layer: str
    output_shape: tuple[int, ...] | None
    params: int


class Summary(DisplayOnce):
    """``Layer.summary`` の結果。``rows`` (``SummaryRow`` の列)、``total_params``、``str()`` でテキストの表。

    パラメータ数は、その層とその中の層のパラメータの要素数の合計 (入れ物の行には中身の合計が出る)。
    ``total_params`` は各パラメータを 1 回ずつ数えた合計。
    """

    def __init__(self, model_name: str, rows: list[SummaryRow], total_params: int, input_shape: tuple | None):
        self.model_name = model_name
        self.rows = rows
        self.total_params = total_params
        self.input_shape = input_shape

    def _columns(self) -> tuple[list[str], list[list[str]]]:
        """The header and, per row, the cells as text (the layer's cell without its indentation)."""
        header = ["層", "出力の形", "パラメータ数"] if self.input_shape is not None else ["層", "パラメータ数"]
        body = []
        for row in self.rows:
            cells = [(f"({row.name}) " if row.name else "") + row.layer]
            if self.input_shape is not None:
                cells.append("—" if row.output_shape is None else str(row.output_shape))
            cells.append(f"{row.params:,}")
            body.append(cells)
        return header, body

    def _footer(self) -> str:
        shape = "" if self.input_shape is None else f"、入力の形 {self.input_shape}"
        return f"合計パラメータ数: {self.total_params:,}{shape}"

    def __str__(self) -> str:
        header, body = self._columns()
        for cells, row in zip(body, self.rows):
            cells[0] = "  " * row.depth + cells[0]
        widths = [max(_width(line[i]) for line in [header, *body]) for i in range(len(header))]

        def line(cells: list[str]) -> str:
            # The first column is text (left-aligned); shapes and counts read best aligned on the right.
            parts = [_pad(cells[0], widths[0], left=True)]
            parts += [_pad(cell, width, left=False) for cell, width in zip(cells[1:], widths[1:])]
            return "  ".join(parts).rstrip()

        rule = "=" * (sum(widths) + 2 * (len(widths) - 1))
        lines = [self.model_name, rule, line(header), rule.replace("=", "-"), *(line(c) for c in body), rule]
        return "\n".join([*lines, self._footer()])

    def __repr__(self) -> str:
        return f"<Summary of {self.model_name}: {len(self.rows)} rows, {self.total_params:,} parameters>"

    def _repr_html_(self) -> str:
        header, body = self._columns()
        cell = 'style="text-align:{}"'
        head = "".join(f"<th {cell.format('left' if i == 0 else 'right')}>{html.escape(h)}</th>"
                       for i, h in enumerate(header))
        rows = []
        for cells, row in zip(body, self.rows):
            indent = f"text-align:left; padding-left:{0.5 + 1.5 * row.depth}em"
            first = f'<td style="{indent}"><code>{html.escape(cells[0])}</code></td>'
            rest = "".join(f"<td {cell.format('right')}>{html.escape(c)}</td>" for c in cells[1:])
            rows.append(f"<tr>{first}{rest}</tr>")
        return (f"<table><caption style=\"text-align:left\">{html.escape(self.model_name)}</caption>"
                f"<thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody>"
                f"<tfoot><tr><td colspan=\"{len(header)}\">{html.escape(self._footer())}</td></tr></tfoot></table>")

    def _mimebundle(self) -> dict[str, Any]:
        return {"text/html": self._repr_html_(), "text/plain": repr(self)}

    def show(self) -> None:
        """ノートブックでは HTML の表としてセルに表示し、それ以外では ``print`` する。"""
        if kernel_shell() is not None:
            self.display_now()
        else:
            print(self)


def _width(text: str) -> int:
    """Columns a string takes on a terminal: full-width (Japanese) characters take two."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def _pad(text: str, width: int, left: bool) -> str:
    space = " " * (width - _width(text))
    return text + space if left else space + text


def _one_line(layer: Layer) -> str:
    return f"{type(layer).__name__}({layer.extra_repr()})"


def _recording_forward(layer: Layer, record: Callable[[Layer, Any], Any]) -> Callable[..., Any]:
    """A forward that hands each output to ``record``: a Sequential's, that of each of its layers in turn."""
    if isinstance(layer, Sequential) and type(layer).forward is Sequential.forward:
        def forward(x: Any) -> Any:
            for child in layer:
                x = record(child, child(x))
            return record(layer, x)
    else:
        original = layer.forward

        def forward(*args: Any, **kwargs: Any) -> Any:
            return record(layer, original(*args, **kwargs))
    return forward


def _output_shapes(model: Layer, input_shape: tuple[int, ...]) -> dict[int, tuple[int, ...]]:
    """Run the model once on zeros, in eval mode and without a graph, and note each layer's output shape.

    For the run, each layer's ``forward`` is shadowed by an instance attribute that records what it
    returns (a Sequential's records each of its layers, so activations, which are called without
    ``forward``, get theirs too); the attributes are removed afterwards, leaving the layers as they were.
    """
    shapes: dict[int, tuple[int, ...]] = {}

    def record(layer: Layer, out: Any) -> Any:
        if hasattr(out, "shape"):
            shapes[id(layer)] = tuple(out.shape)
        return out

    modules = list(model.modules())
    shadowed = [m for m in modules if "forward" not in vars(m)]
    modes = [m.training for m in modules]
    try:
        for m in shadowed:
            m.forward = _recording_forward(m, record)  # type: ignore[method-assign]
        model.eval()
        with no_grad():
            model(Tensor(np.zeros(input_shape, dtype=get_default_dtype())))
    except (ValueError, TypeError) as e:
        raise ValueError(f"summary: the model does not accept an input of shape {input_shape}: {e}") from e
    finally:
        for m in shadowed:
            vars(m).pop("forward", None)
        for m, mode in zip(modules, modes):
            m.training = mode
    return shapes


def summarize(model: Layer, input_shape: Any = None) -> Summary:
    """``model`` の ``Summary`` を作る (表示はしない)。``input_shape`` はバッチを含む入力の形、例えば (32, 2)。"""
    if not isinstance(model, Layer):
        raise TypeError(f"summary needs a Layer (a model), got {type(model).__name__}")
    if input_shape is not None:
        shape = (input_shape,) if isinstance(input_shape, int) else tuple(input_shape)
        if not shape or not all(isinstance(n, int | np.integer) and not isinstance(n, bool) and n > 0 for n in shape):
            raise ValueError(f"input_shape must be a tuple of positive ints such as (32, 2), got {input_shape!r}")
        input_shape = tuple(int(n) for n in shape)
    shapes = {} if input_shape is None else _output_shapes(model, input_shape)
    modules = list(model.named_modules())
    if len(modules) > 1:
        modules = modules[1:]  # the model itself is the table's title; a single layer is its own row
    rows = [SummaryRow(name, name.count("."), _one_line(m), shapes.get(id(m)), sum(p.size for p in m.parameters()))
            for name, m in modules]
    total = sum(p.size for p in model.parameters())
    return Summary(type(model).__name__, rows, total, input_shape)
