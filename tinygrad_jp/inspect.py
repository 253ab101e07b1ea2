"""逆伝播を 1 ノードずつ進めて中身を見る: ``backprop_steps``、``format_step``、``print_backprop``。

    for step in backprop_steps(loss):
        print(format_step(step))

各ステップで、ノード (演算・名前・形)、上流から来た勾配 ∂L/∂y、局所微分 ∂y/∂x、入力へ送る
勾配 ∂L/∂x = ∂L/∂y · ∂y/∂x が見える。最後まで進めると、葉の ``.grad`` は ``loss.backward()``
とまったく同じ値になる (同じ順序・同じ演算で計算するため)。
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, TextIO

import numpy as np

from . import ops
from .activations import _ActivationFunction
from .autograd import BackwardError, Function, _as_grad, backward_steps, toposort
from .tensor import Tensor

# Ops whose output element i depends only on element i of each (broadcast) input: their Jacobian is
# diagonal, so backward(ones) is exactly the local derivative ∂y_i/∂x_i.
_ELEMENTWISE = (
    ops.Add, ops.Sub, ops.Mul, ops.Div, ops.Pow, ops.Neg, ops.Abs, ops.Exp, ops.Log, ops.Sqrt, ops.Sin, ops.Cos,
    ops.Expm1, ops.Log1p, ops.Clip, ops.Maximum, ops.Minimum, ops.Where, ops.Cast, _ActivationFunction,
)

# What the other ops do with the upstream gradient g, in words.
_RULES = {
    "Sum": ("g を元の形に広げる (各要素の偏微分は 1)",),
    "Max": ("最大値の位置にだけ g を送る (同点なら等分)",),
    "Min": ("最小値の位置にだけ g を送る (同点なら等分)",),
    "Reshape": ("g を元の形に戻す",),
    "Transpose": ("g の軸を元の順に戻す",),
    "BroadcastTo": ("広げた軸について g の和をとる",),
    "GetItem": ("取り出した位置に g を置き、他は 0",),
    "Concatenate": ("g を入力ごとの区間に切り分ける",),
    "Stack": ("g を入力ごとに切り分ける",),
}


@dataclass
class BackpropStep:
    """逆伝播の 1 ステップ (1 つのテンソルに勾配が届いたところ)。

    * ``op``: このテンソルを作った演算の名前 (葉なら None)。``name``・``shape``: テンソルの名前と形。
    * ``upstream``: 上流から届いた勾配 ∂L/∂y (ファンアウトがあれば合計済み)。
    * ``inputs``: 演算の入力の表示名。``local``: 入力ごとの局所微分 ∂y/∂x。要素ごとの演算では
      配列 (``backward`` に 1 を流した値)、行列積や和などでは何を掛けるかの説明文、勾配の要らない
      入力では None。
    * ``sent``: 入力ごとに送る勾配 ∂L/∂x (入力の形に和をとったもの、要らない入力では None)。
    """

    index: int
    label: str
    op: str | None
    name: str | None
    shape: tuple
    upstream: np.ndarray
    inputs: list[str] = field(default_factory=list)
    local: list[np.ndarray | str | None] = field(default_factory=list)
    sent: list[np.ndarray | None] = field(default_factory=list)
    tensor: Tensor | None = field(default=None, repr=False)

    @property
    def is_leaf(self) -> bool:
        return self.op is None


def _labels(order: list[Tensor]) -> dict[int, str]:
    """Names where the user gave them; otherwise the producing op numbered in backprop order."""
    labels: dict[int, str] = {}
    counts: dict[str, int] = {}
    for t in order:
        if t.name:
            labels[id(t)] = t.name
        elif t._ctx is not None:
            op = t._ctx.name
            counts[op] = counts.get(op, 0) + 1
            labels[id(t)] = f"{op}#{counts[op]}"
        else:
            counts["葉"] = counts.get("葉", 0) + 1
            labels[id(t)] = f"葉#{counts['葉']}"
    return labels


def _input_label(t: Tensor, labels: dict[int, str]) -> str:
    if id(t) in labels:
        return labels[id(t)]
    if t.name:
        return t.name
    if t.size == 1:
        return f"定数 {t.data.item():.4g}"
    return f"定数 {t.shape}"


def _local_derivatives(fn: Function, y: np.ndarray, xs: list[np.ndarray], names: list[str]) -> list[Any]:
    if isinstance(fn, _ELEMENTWISE):
        ones = np.ones_like(y)
        raw = fn.backward(ones, y, *xs)
        raw = raw if type(raw) is tuple else (raw,)
        return [
            np.broadcast_to(np.asarray(d), y.shape).copy() if need and d is not None else None
            for d, need in zip(raw, fn.needs)
        ]
    if isinstance(fn, ops.MatMul):
        a, b = xs
        # A 1-D operand acts as a row (left) or a column (right), as in MatMul's backward.
        a = a.reshape(1, -1) if a.ndim == 1 else a
        b = b.reshape(-1, 1) if b.ndim == 1 else b
        rules = (f"g @ {names[1]}ᵀ, {names[1]}ᵀ = {_fmt(b.swapaxes(-1, -2))}",
                 f"{names[0]}ᵀ @ g, {names[0]}ᵀ = {_fmt(a.swapaxes(-1, -2))}")
    elif fn.name == "LinearFunction":  # nn.Linear's fused y = x W + b
        x, w = xs[0], xs[1]
        rules = (f"g @ {names[1]}ᵀ, {names[1]}ᵀ = {_fmt(w.T)}",
                 f"{names[0]}ᵀ @ g, {names[0]}ᵀ = {_fmt(x.reshape(-1, x.shape[-1]).T)}",
                 "g をバッチについて和 (偏微分は 1)")
    elif isinstance(fn, ops.Mean):
        rules = (f"g × 1/{xs[0].size // max(y.size, 1)} を元の形に広げる",)
    else:
        rules = _RULES.get(fn.name, (f"{fn.name}.backward(g) の結果",))
    return [rules[min(i, len(rules) - 1)] if need else None for i, need in enumerate(fn.needs)]


def backprop_steps(loss: Tensor, grad: Any = None, retain_graph: bool = False) -> Iterator[BackpropStep]:
    """``loss`` から逆伝播を 1 ノードずつ行い、ステップごとに ``BackpropStep`` を返すジェネレータ。

    順序と勾配の足し方はエンジン (``loss.backward()``) とまったく同じ: どのテンソルも消費者
    すべてのあとに処理され、ファンアウトの勾配は合計されてから下流へ流れる。葉のステップでは ``.grad``
    に加算する (最後まで進めれば ``backward()`` と同じ値。途中でやめればそこまでの分だけ)。
    ``register_hook`` のフックも backward と同じく勾配が確定したときに呼ぶ。
    ``retain_graph=False`` なら、backward と同じく進めたところからグラフを解放する。
    """
    if not loss.requires_grad:
        raise BackwardError("backprop_steps() needs a tensor that requires grad: this one does not")
    if grad is None:
        if loss.data.size != 1:
            raise BackwardError(
                f"backprop_steps() without grad= works only for a scalar output; this one has shape {loss.shape}"
            )
        root = np.ones_like(loss.data)
    else:
        root = _as_grad(grad, loss)
    labels = _labels(toposort([loss]))
    index = 0
    # The engine itself runs each step, so the final .grad is bit for bit that of backward().
    for node, g, sent in backward_steps([loss], [root], retain_graph):
        fn = node._ctx
        step = BackpropStep(index, labels[id(node)], None if fn is None else fn.name, node.name, node.shape,
                            np.array(g), tensor=node)
        index += 1
        if fn is not None:
            xs = [p.data for p in fn.parents]
            step.inputs = [_input_label(p, labels) for p in fn.parents]
            step.local = _local_derivatives(fn, node.data, xs, step.inputs)
            # Copies: the engine may later add another consumer's gradient into these arrays in place.
            step.sent = [None if gp is None else np.array(gp) for gp in sent]
        yield step


# ---------------------------------------------------------------------- printing
def _fmt(a: np.ndarray | str | None) -> str:
    if a is None:
        return "—"
    if isinstance(a, str):
        return a
    a = np.asarray(a)
    if a.size == 1:
        return f"{a.item():.4g}"
    text = np.array2string(a, precision=4, separator=", ", threshold=12, edgeitems=2, max_line_width=10_000)
    return " ".join(text.split())


def format_step(step: BackpropStep) -> str:
    """1 ステップを読みやすい数行のテキストにする (デモやノートブックで表示するため)。"""
    shape = "(" + ", ".join(str(n) for n in step.shape) + ("," if len(step.shape) == 1 else "") + ")"
    if step.is_leaf:
        return (
            f"[{step.index}] {step.label} (葉) 形 {shape}\n"
            f"    ∂L/∂{step.label} = {_fmt(step.upstream)}  → .grad に加算"
        )
    lines = [
        f"[{step.index}] {step.label} = {step.op}({', '.join(step.inputs)})  形 {shape}",
        f"    上流の勾配 ∂L/∂{step.label} = {_fmt(step.upstream)}",
    ]
    for name, local, sent in zip(step.inputs, step.local, step.sent):
        if sent is None:
            lines.append(f"    → {name}: 勾配は不要")
        else:
            lines.append(
                f"    → {name}: 局所微分 ∂{step.label}/∂{name} = {_fmt(local)};  送る勾配 ∂L/∂{name} = {_fmt(sent)}"
            )
    return "\n".join(lines)


def format_steps(steps: Iterable[BackpropStep]) -> str:
    """すべてのステップをつないだ表 (ステップの間は空行)。"""
    return "\n\n".join(format_step(s) for s in steps)


def print_backprop(loss: Tensor, *, retain_graph: bool = False, file: TextIO | None = None) -> list[BackpropStep]:
    """``loss`` の逆伝播を最後まで 1 ステップずつ表示し、ステップの一覧を返す (葉の .grad も埋まる)。"""
    out = sys.stdout if file is None else file
    steps = []
    for step in backprop_steps(loss, retain_graph=retain_graph):
        print(format_step(step), end="\n\n", file=out)
        steps.append(step)
    return steps
