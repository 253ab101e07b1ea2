"""逆伝播を 1 ノードずつ進めて中身を見る: ``backprop_steps``、``format_step``、``print_backprop``。

    for step in backprop_steps(loss):
        print(format_step(step))

各ステップで、ノード (演算・名前・形)、上流から来た勾配 ∂L/∂y、局所微分 ∂y/∂x、入力へ送る
勾配 ∂L/∂x = ∂L/∂y · ∂y/∂x が見える。最後まで進めると、葉の ``.grad`` は ``loss.backward()``
とまったく同じ値になる (同じ順序・同じ演算で計算するため)。
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, NamedTuple, TextIO

import numpy as np

from . import ops
from ._jupyter import has_widgets, kernel_shell
from .activations import _ActivationFunction, _LogSoftmaxFunction, _SoftmaxFunction
from .autograd import Function, _root_grad, backward_steps, toposort
from .losses import _MeanSquaredError, _SoftmaxCrossEntropy
from .nn.linear import LinearFunction
from .tensor import Tensor

# Ops whose output element i depends only on element i of each (broadcast) input: their Jacobian is
# diagonal, so backward(ones) is exactly the local derivative ∂y_i/∂x_i.
_ELEMENTWISE = (
    ops.Add, ops.Sub, ops.Mul, ops.Div, ops.Pow, ops.Neg, ops.Abs, ops.Exp, ops.Log, ops.Sqrt, ops.Sin, ops.Cos,
    ops.Expm1, ops.Log1p, ops.Clip, ops.Maximum, ops.Minimum, ops.Where, ops.Cast, _ActivationFunction,
)


class _Node(NamedTuple):
    """One op application as the stepper explains it: the op, its output y (label `out`), its inputs."""

    fn: Function
    y: np.ndarray
    xs: list[np.ndarray]
    names: list[str]
    out: str


# Each explainer returns, per input, (the local derivative ∂y/∂x, how ∂L/∂x is formed from g = ∂L/∂y).
_Words = tuple[Any, str]


def _elementwise(n: _Node) -> list[_Words]:
    raw = n.fn.backward(np.ones_like(n.y), n.y, *n.xs)
    raw = raw if type(raw) is tuple else (raw,)
    words = []
    for x, name, d in zip(n.xs, n.names, raw):
        local = None if d is None else np.broadcast_to(np.asarray(d), n.y.shape).copy()
        rule = f"g ⊙ ∂{n.out}/∂{name}"
        if x.shape != n.y.shape:  # a broadcast input: the engine sums the product back to its shape
            rule = f"{rule} を広げた軸について足して {name} の形 {_shape(x.shape)} に"
        words.append((local, rule))
    return words


def _matrices(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A 1-D operand acts as a row (left) or a column (right), as in MatMul's backward."""
    return (a.reshape(1, -1) if a.ndim == 1 else a), (b.reshape(-1, 1) if b.ndim == 1 else b)


def _matmul(n: _Node) -> list[_Words]:
    a, b = _matrices(*n.xs)
    A, B = n.names
    return [
        (f"{B}ᵀ = {_fmt(b.swapaxes(-1, -2))} ({n.out} の各行 = {A} の各行 @ {B})", f"g @ {B}ᵀ"),
        (f"{A} = {_fmt(a)} ({n.out} の各列 = {A} @ {B} の各列)", f"{A}ᵀ @ g"),
    ]


def _linear(n: _Node) -> list[_Words]:
    x, W = n.xs[0], n.xs[1]
    X, Wn = n.names[0], n.names[1]
    bias = f" + {n.names[2]}" if len(n.xs) == 3 else ""
    words = [
        (f"{Wn}ᵀ = {_fmt(W.T)} ({n.out} の各行 = {X} の各行 @ {Wn}{bias})", f"g @ {Wn}ᵀ"),
        (f"{X} = {_fmt(x.reshape(-1, x.shape[-1]))} ({n.out} の各列 = {X} @ {Wn} の各列{bias})", f"{X}ᵀ @ g"),
    ]
    if bias:
        words.append((f"1 ({n.out} のどの行にも同じ {n.names[2]} を足す)", "g の行についての和 Σₙ g[n, :]"))
    return words


def _sum(n: _Node) -> list[_Words]:
    return [("1 (各要素)", f"g を {n.names[0]} の形 {_shape(n.xs[0].shape)} に広げる (どの要素にも同じ g)")]


def _mean(n: _Node) -> list[_Words]:
    count = n.xs[0].size // max(n.y.size, 1)
    return [(f"1/{count} (各要素)", f"g/{count} を {n.names[0]} の形 {_shape(n.xs[0].shape)} に広げる")]


def _extremum(n: _Node) -> list[_Words]:
    which = "最大値" if n.fn.name == "Max" else "最小値"
    return [(f"1 ({which}の位置、同点が k 個なら 1/k)、他は 0", f"g を{which}の位置に送り (同点なら等分)、他は 0")]


def _reshape(n: _Node) -> list[_Words]:
    return [("1 (同じ要素が形を変えただけ)", f"g を {n.names[0]} の形 {_shape(n.xs[0].shape)} に戻す")]


def _transpose(n: _Node) -> list[_Words]:
    axes = n.fn.axes
    if axes is None:
        back = "g を転置して戻す"
    else:
        back = f"g の軸を {tuple(int(i) for i in np.argsort(axes))} の順に並べて戻す"
    return [("1 (同じ要素が並べ替わっただけ)", back)]


def _broadcast(n: _Node) -> list[_Words]:
    shape = _shape(n.xs[0].shape)
    return [("1 (コピーされた各要素)", f"広げた軸について g の和をとり {n.names[0]} の形 {shape} に戻す")]


def _getitem(n: _Node) -> list[_Words]:
    return [("1 (取り出した位置)、他は 0", "取り出した位置に g を置き (何度も取り出した位置は足す)、他は 0")]


def _concatenate(n: _Node) -> list[_Words]:
    axis = n.fn.axis % n.y.ndim
    words, start = [], 0
    for x in n.xs:
        stop = start + x.shape[axis]
        part = f"軸 {axis} の区間 [{start}:{stop}]"
        words.append((f"1 ({n.out} の{part})", f"g の{part} を切り出す"))
        start = stop
    return words


def _stack(n: _Node) -> list[_Words]:
    axis = n.fn.axis % n.y.ndim
    return [(f"1 ({n.out} の軸 {axis} の {i} 番目)", f"g の軸 {axis} の {i} 番目を取り出す") for i in range(len(n.xs))]


def _softmax(n: _Node) -> list[_Words]:
    y = n.out
    return [(f"{y}ᵢ(δᵢⱼ − {y}ⱼ) (i, j は軸 {n.fn.axis} に沿った同じ組の要素)", f"{y} ⊙ (g − Σ g ⊙ {y})")]


def _log_softmax(n: _Node) -> list[_Words]:
    s = f"softmax({n.names[0]})"
    return [(f"δᵢⱼ − {s}ⱼ (i, j は軸 {n.fn.axis} に沿った同じ組の要素)", f"g − {s} ⊙ Σ g")]


def _gradient_of_scalar(n: _Node) -> list[np.ndarray | None]:
    """For a one-element output, backward(1) is the local derivative itself (in each input's shape)."""
    raw = n.fn.backward(np.ones_like(n.y), n.y, *n.xs)
    raw = raw if type(raw) is tuple else (raw,)
    return [None if d is None else np.asarray(d) for d in raw]


def _cross_entropy(n: _Node) -> list[_Words]:
    (d,) = _gradient_of_scalar(n)
    grad = f"(softmax({n.names[0]}) − onehot)/{n.xs[0].shape[0]}"
    return [(f"{grad} = {_fmt(d)}", f"g × {grad}")]


def _mse(n: _Node) -> list[_Words]:
    ds = _gradient_of_scalar(n)
    Y, T = n.names
    grads = (f"2({Y} − {T})/{n.xs[0].size}", f"−2({Y} − {T})/{n.xs[0].size}")
    return [(f"{grad} = {_fmt(d)}", f"g × {grad}") for grad, d in zip(grads, ds)]


def _scatter(n: _Node) -> list[_Words]:
    return [("1 (置いた位置)、他は 0", "g の置いた位置を取り出す")]


def _unknown(n: _Node) -> list[_Words]:
    rule = f"{n.fn.name}.backward(g)"
    if n.y.size == 1:
        return [(f"{n.fn.name}.backward(1) = {_fmt(d)}", rule) for d in _gradient_of_scalar(n)]
    return [(f"(説明なし: {n.fn.name} の backward が g から直接計算する)", rule) for _ in n.xs]


_EXPLAIN: dict[type, Callable[[_Node], list[_Words]]] = {
    ops.MatMul: _matmul, LinearFunction: _linear, ops.Sum: _sum, ops.Mean: _mean, ops.Extremum: _extremum,
    ops.Reshape: _reshape, ops.Transpose: _transpose, ops.BroadcastTo: _broadcast, ops.GetItem: _getitem,
    ops.ScatterAdd: _scatter, ops.Concatenate: _concatenate, ops.Stack: _stack, _SoftmaxFunction: _softmax,
    _LogSoftmaxFunction: _log_softmax, _SoftmaxCrossEntropy: _cross_entropy, _MeanSquaredError: _mse,
}


def _explain(fn: Function, y: np.ndarray, xs: list[np.ndarray], names: list[str], out: str,
             ) -> tuple[list[Any], list[str | None]]:
    """Per input: the local derivative ∂y/∂x and the rule that forms ∂L/∂x (None where no gradient is needed)."""
    node = _Node(fn, y, xs, names, out)
    if isinstance(fn, _ELEMENTWISE):
        explainer = _elementwise
    else:
        explainer = next((_EXPLAIN[c] for c in type(fn).__mro__ if c in _EXPLAIN), _unknown)
    words = explainer(node)
    local = [w[0] if need else None for w, need in zip(words, fn.needs)]
    rule = [w[1] if need else None for w, need in zip(words, fn.needs)]
    return local, rule


@dataclass
class BackpropStep:
    """逆伝播の 1 ステップ (1 つのテンソルに勾配が届いたところ)。

    * ``op``: このテンソルを作った演算の名前 (葉なら None)。``name``・``shape``: テンソルの名前と形。
    * ``upstream``: 上流から届いた勾配 g = ∂L/∂y (ファンアウトがあれば合計済み)。
    * ``inputs``: 演算の入力の表示名。
    * ``local``: 入力ごとの局所微分 ∂y/∂x (勾配の要らない入力では None)。要素ごとの演算では
      配列 (y の形。ヤコビ行列の対角: ``backward`` に 1 を流した値)、それ以外の演算では何なのかを
      言葉と値で書いた文字列 (行列積なら "W2ᵀ = ... (y の各行 = h の各行 @ W2)"、和なら "1 (各要素)")。
    * ``rule``: 入力ごとに、送る勾配を g からどう作るかの式 ("g @ W2ᵀ"、"g ⊙ ∂h/∂z1" など)。
    * ``sent``: 入力ごとに送る勾配 ∂L/∂x の値 (エンジンが計算したもの。入力の形に和をとったもの)。
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
    rule: list[str | None] = field(default_factory=list)
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


def backprop_steps(loss: Tensor, grad: Any = None, retain_graph: bool = False) -> Iterator[BackpropStep]:
    """``loss`` から逆伝播を 1 ノードずつ行い、ステップごとに ``BackpropStep`` を返すジェネレータ。

    順序と勾配の足し方はエンジン (``loss.backward()``) とまったく同じ: どのテンソルも消費者
    すべてのあとに処理され、ファンアウトの勾配は合計されてから下流へ流れる。葉のステップでは ``.grad``
    に加算する (最後まで進めれば ``backward()`` と同じ値。途中でやめればそこまでの分だけ)。
    ``register_hook`` のフックも backward と同じく勾配が確定したときに呼ぶ。
    ``retain_graph=False`` なら、backward と同じく進めたところからグラフを解放する。
    """
    root = _root_grad(loss, grad, "backprop_steps()")
    labels = _labels(toposort([loss]))
    index = 0
    # The engine itself runs each step, so the final .grad is bit for bit that of backward().
    for node, g, sent in backward_steps([loss], [root], retain_graph):
        fn = node._ctx
        step = BackpropStep(index, labels[id(node)], None if fn is None else fn.name, node.name, node.shape,
                            g, tensor=node)
        index += 1
        if fn is not None:
            xs = [p.data for p in fn.parents]
            step.inputs = [_input_label(p, labels) for p in fn.parents]
            step.local, step.rule = _explain(fn, node.data, xs, step.inputs, step.label)
            step.sent = sent
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


def _shape(shape: tuple) -> str:
    return "(" + ", ".join(str(n) for n in shape) + ("," if len(shape) == 1 else "") + ")"


def format_step(step: BackpropStep) -> str:
    """1 ステップを読みやすい数行のテキストにする (デモやノートブックで表示するため)。

    入力ごとに 2 行: 局所微分 ∂y/∂x と、送る勾配 ∂L/∂x (g からの式と値)。
    """
    if step.is_leaf:
        return (
            f"[{step.index}] {step.label} (葉) 形 {_shape(step.shape)}\n"
            f"    ∂L/∂{step.label} = {_fmt(step.upstream)}  → .grad に加算"
        )
    lines = [
        f"[{step.index}] {step.label} = {step.op}({', '.join(step.inputs)})  形 {_shape(step.shape)}",
        f"    上流の勾配 g = ∂L/∂{step.label} = {_fmt(step.upstream)}",
    ]
    rules = step.rule or [None] * len(step.inputs)
    for name, local, rule, sent in zip(step.inputs, step.local, rules, step.sent):
        if sent is None:
            lines.append(f"    → {name}: 勾配は不要")
            continue
        lines.append(f"    → {name}: 局所微分 ∂{step.label}/∂{name} = {_fmt(local)}")
        formula = f"{rule} = " if rule else ""
        lines.append(f"    {' ' * (len(name) + 4)}送る勾配 ∂L/∂{name} = {formula}{_fmt(sent)}")
    return "\n".join(lines)


def format_steps(steps: Iterable[BackpropStep]) -> str:
    """すべてのステップを ``format_step`` で書いてつないだテキスト (ステップの間は空行)。"""
    return "\n\n".join(format_step(s) for s in steps)


def print_backprop(loss: Tensor, *, retain_graph: bool = False, file: TextIO | None = None) -> list[BackpropStep]:
    """``loss`` の逆伝播を最後まで 1 ステップずつ表示し、ステップの一覧を返す (葉の .grad も埋まる)。"""
    out = sys.stdout if file is None else file
    steps = []
    for step in backprop_steps(loss, retain_graph=retain_graph):
        print(format_step(step), end="\n\n", file=out)
        steps.append(step)
    return steps


# ---------------------------------------------------------------------- stepping
def stepper(loss: Tensor) -> Any:
    """逆伝播を 1 ステップずつ見る。

    Jupyter・Colab で ipywidgets が入っていれば (``pip install "tinygrad_jp[notebook]"``)、「前へ」「次へ」の
    ボタンとスライダーで行き来でき、今のノードを赤い枠で囲んだ計算グラフと、その上流の勾配・局所微分・
    送る勾配が並ぶ ``viz.stepper.BackpropStepper`` を返す (セルの最後に置くと表示される)。
    それ以外ではテキストで 1 ステップずつ表示して None を返す: 標準入力が端末なら各ステップの間で
    Enter を待ち、そうでなければ (ノートブック、パイプ) すべてを続けて表示する。
    どちらも逆伝播を最後まで進めるので、葉の ``.grad`` は ``backward()`` と同じ値になる。
    """
    if kernel_shell() is not None and has_widgets():
        from .viz.stepper import BackpropStepper  # matplotlib and ipywidgets: only for the notebook stepper

        return BackpropStepper(loss)
    wait = sys.stdin is not None and sys.stdin.isatty()
    for step in backprop_steps(loss):
        if wait and step.index > 0:
            input("(Enter で次のステップへ) ")
        print(format_step(step), end="\n\n")
    return None
