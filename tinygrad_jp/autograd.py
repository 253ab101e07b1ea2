"""逆伝播エンジン: Function (演算の基底)、backward、grad、no_grad、detect_anomaly。

計算グラフは「テンソル → それを作った Function → 入力テンソル」という参照だけでできている。
Function は出力を参照しないので循環参照は生まれず、損失を捨てればグラフも消える。
"""

from __future__ import annotations

import functools
import os
import traceback
from collections.abc import Sequence
from heapq import heappop, heappush
from typing import Any

import numpy as np

from .tensor import Tensor, _next_seq

_grad_enabled = True
_ndarray = np.ndarray
_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))
_anomaly = False


# ---------------------------------------------------------------------- grad mode
class _GradMode:
    """``with`` でも関数デコレータでも使える、勾配記録の切り替え。"""

    def __init__(self, enabled: bool):
        self.enabled = enabled
        self._saved: list[bool] = []

    def __enter__(self):
        global _grad_enabled
        self._saved.append(_grad_enabled)
        _grad_enabled = self.enabled
        return self

    def __exit__(self, *exc):
        global _grad_enabled
        _grad_enabled = self._saved.pop()
        return False

    def __call__(self, fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with _GradMode(self.enabled):
                return fn(*args, **kwargs)

        return wrapper


class no_grad(_GradMode):
    """この中では計算グラフを作らない (推論や重みの直接更新に使う)。"""

    def __init__(self):
        super().__init__(False)


class enable_grad(_GradMode):
    """``no_grad`` の中で一時的にグラフの記録を再開する。"""

    def __init__(self):
        super().__init__(True)


def is_grad_enabled() -> bool:
    return _grad_enabled


class detect_anomaly:
    """この中では、順伝播の出力か逆伝播の勾配に NaN/inf が現れた最初の演算で例外を送出する。

    逆伝播で見つかったときは、その演算がどこで (順伝播のどの行で) 作られたかも示す。
    外では何も検査しない (コストはゼロ)。
    """

    def __enter__(self):
        global _anomaly
        self._saved = _anomaly
        _anomaly = True
        # numpy's own warning would come first and name no op: the check below says more.
        self._errstate = np.seterr(all="ignore")
        return self

    def __exit__(self, *exc):
        global _anomaly
        _anomaly = self._saved
        np.seterr(**self._errstate)
        return False


def _record_creation(fn: Function) -> None:
    """Keep, on the op itself, the user's lines that applied it (so it is freed with its graph)."""
    frames = [f for f in traceback.extract_stack()[:-2] if _PACKAGE_DIR not in f.filename]
    fn._where = "".join(traceback.format_list(frames[-3:])).rstrip()


def _made_by(node: Tensor) -> str:
    return "a leaf tensor" if node._ctx is None else node._ctx.name


def _check_finite(arr: np.ndarray, what: str, fn: Function | None = None) -> None:
    if arr.dtype.kind in "fc" and not np.all(np.isfinite(arr)):
        kind = "NaN" if np.isnan(arr).any() else "inf"
        msg = f"detect_anomaly: {what} contains {kind}"
        where = getattr(fn, "_where", None)
        if where:
            msg += f"; that {fn.name} was created in the forward pass at:\n{where}"
        raise FloatingPointError(msg)


# ---------------------------------------------------------------------- Function
# Shared tuples for the common arities: a graph of 10^5 nodes should not hold 10^5 copies of (True, False).
# None where no input needs a gradient.
_NEEDS1 = (None, (True,))
_NEEDS2 = ((None, (False, True)), ((True, False), (True, True)))
_new = object.__new__


class Function:
    """微分可能な演算の基底クラス。

    サブクラスは 2 つのメソッドを書く:

    * ``forward(self, *xs)``: 入力の numpy 配列から出力の numpy 配列を計算する。
    * ``backward(self, g, y, *xs)``: 上流の勾配 ``g`` と出力 ``y``・入力 ``xs`` から、
      入力ごとの勾配をタプルで返す (不要な入力には None)。``self.needs[i]`` は入力 i が
      勾配を必要とするか。

    ``backward`` は通常 numpy 配列で呼ばれるが、``grad(..., create_graph=True)`` のときは
    Tensor で呼ばれる。演算子と ``tinygrad_jp.ops`` の関数 (``exp``, ``where`` など) だけで
    書けば、どちらでもそのまま動き、2 階微分が得られる。
    勾配の形を入力の形に戻す (ブロードキャストの和) のはエンジンが行う。
    返す配列は新しく作ったものか ``g`` のビューにすること (保持している配列は返さない)。
    ``g`` は読み取り専用のことがあるので、その場で書き換えないこと。
    """

    __slots__ = ("_where", "needs", "parents")

    # Optional, for ops whose gradient is g times something elementwise: ``backward_into(g, y, *xs)``
    # returns what ``backward`` would, but may write into g and return it. The engine calls it only
    # when g is its own (created by this run, held by no hook, retained .grad or stepper).
    backward_into = None

    def forward(self, *xs: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def backward(self, g, y, *xs):
        raise NotImplementedError

    @property
    def name(self) -> str:
        return type(self).__name__

    def __repr__(self) -> str:
        return f"<{self.name}>"

    def __call__(self, *inputs: Tensor) -> Tensor:
        # One, two and three inputs are spelled out: this is the hot path of every op.
        n = len(inputs)
        try:
            if n == 2:
                a, b = inputs
                out = self.forward(a.data, b.data)
            elif n == 1:
                a = inputs[0]
                out = self.forward(a.data)
            elif n == 3:  # nn.Linear: x, W, b
                out = self.forward(inputs[0].data, inputs[1].data, inputs[2].data)
            else:
                out = self.forward(*[t.data for t in inputs])
        except ValueError as e:
            msg = str(e)
            if not msg.lower().startswith(self.name.lower()):  # numpy's messages do not say which op
                shapes = ", ".join(str(t.shape) for t in inputs)
                msg = f"{self.name}: cannot apply to inputs of shapes {shapes}: {msg}"
            raise ValueError(msg) from None
        if type(out) is not _ndarray:
            out = np.asarray(out)
        if _anomaly:
            _check_finite(out, f"the forward output of {self.name}")
            _record_creation(self)
        t = _new(Tensor)
        t.data = out
        t.grad = t.name = t._hooks = None
        t._retain = False
        t._version = 0
        t._seq = _next_seq()
        if _grad_enabled:
            if n == 2:
                needs = _NEEDS2[a.requires_grad][b.requires_grad]
            elif n == 1:
                needs = _NEEDS1[a.requires_grad]
            else:
                needs = tuple([t.requires_grad for t in inputs]) if n != 3 else (
                    inputs[0].requires_grad, inputs[1].requires_grad, inputs[2].requires_grad)
                if True not in needs:
                    needs = None
            if needs is not None:
                self.parents = inputs
                self.needs = needs
                t.requires_grad = True
                t._ctx = self
                return t
        t.requires_grad = False
        t._ctx = None
        return t


# ---------------------------------------------------------------------- helpers
def unbroadcast(g, shape: tuple):
    """ブロードキャストで広がった勾配を、元の形 ``shape`` へ和をとって戻す。"""
    if g.shape == shape:
        return g
    lead = g.ndim - len(shape)
    axes = tuple(range(lead)) + tuple(
        lead + i for i, n in enumerate(shape) if n == 1 and g.shape[lead + i] != 1
    )
    if axes:
        g = g.sum(axis=axes, keepdims=True)
    return g.reshape(shape)


def toposort(roots: Sequence[Tensor]) -> list[Tensor]:
    """勾配が流れるテンソルを、どのテンソルも自分の消費者すべての後に来る順に並べる。

    再帰を使わないので、10 万段の鎖でも動く。
    """
    order: list[Tensor] = []
    visited: set[int] = set()
    stack = [(r, False) for r in reversed(roots) if r.requires_grad]
    while stack:
        node, expanded = stack.pop()
        if expanded:
            order.append(node)
            continue
        if id(node) in visited:
            continue
        visited.add(id(node))
        stack.append((node, True))
        fn = node._ctx
        if fn is not None and fn.parents is not None:
            for p, need in zip(fn.parents, fn.needs):
                if need and id(p) not in visited:
                    stack.append((p, False))
    order.reverse()
    return order


class BackwardError(RuntimeError, ValueError):
    """逆伝播の使い方の誤り (スカラーでない出力に grad なしで backward、解放済みのグラフなど)。

    PyTorch と同じく RuntimeError として、また渡されたものが不適切という意味で ValueError としても捕まえられる。
    """


def _released_error(fn: Function) -> BackwardError:
    return BackwardError(
        f"trying to backward through the graph a second time (at {fn.name}): its intermediate "
        "values were freed after the first backward; pass retain_graph=True to the first call"
    )


def _as_grad(grad: Any, like: Tensor) -> np.ndarray:
    g = grad.data if isinstance(grad, Tensor) else np.asarray(grad, dtype=like.dtype)
    if g.shape != like.shape:
        raise ValueError(f"grad must have the output's shape {like.shape}, got {g.shape}")
    return g.astype(like.dtype, copy=False)


# ---------------------------------------------------------------------- engine
def _call_hooks(node: Tensor, g):
    for hook in node._hooks:
        res = hook(g)
        if res is not None:
            g = res
    return g


def _seed(roots, root_grads) -> tuple[dict, list]:
    """The starting gradients (summed when a root is given twice) and the heap of tensors waiting to run."""
    if len(roots) == 1:  # backward() of one loss: the common case, without the loop
        r = roots[0]
        return ({r: root_grads[0]}, [(-r._seq, r)]) if r.requires_grad else ({}, [])
    grads: dict = {}
    heap: list = []
    for r, g in zip(roots, root_grads):
        if r.requires_grad:
            prev = grads.get(r)
            if prev is None:
                heappush(heap, (-r._seq, r))
            grads[r] = g if prev is None else prev + g
    return grads, heap


def backward_steps(roots, root_grads, retain_graph: bool = False, captured: dict | None = None,
                   leaf_steps: bool = True):
    """The engine on ndarrays, one node at a time: yields ``(node, g, sent)`` after each node.

    ``g`` is the node's total gradient and ``sent`` the gradient sent to each of its inputs (None
    where none is needed). Leaves' ``.grad`` is accumulated as it goes; with ``captured`` (a dict
    keyed by the wanted tensors) their gradients are put there and no ``.grad`` is touched.
    ``backward()`` runs it to the end; ``inspect.backprop_steps`` shows each step. With
    ``leaf_steps=False`` nothing is yielded, and a leaf without hooks takes its gradient as it arrives.

    Nodes wait in a heap keyed by creation number and run newest first, so each node runs once,
    after every consumer has sent it its gradient (no recursion, no separate sorting pass).
    A gradient is updated in place only when this run created it (``owned``); one that may be
    shared (``g`` passed through by Add, a view of ``g``, a user's array) is copied first.
    """
    grads, heap = _seed(roots, root_grads)
    owned: set[int] = set()  # ids, so that it keeps no tensor (and its arrays) alive
    anomaly = _anomaly  # the mode cannot change in the middle of one backward
    fast_leaves = not leaf_steps and captured is None
    ndarray, asarray, push, pop = np.ndarray, np.asarray, heappush, heappop
    while heap:
        node = pop(heap)[1]
        g = grads.pop(node)
        if node._hooks:
            g = _call_hooks(node, g)
            owned.discard(id(node))
            if anomaly:
                _check_finite(asarray(g), f"the gradient returned by a hook on the output of {_made_by(node)}")
        fn = node._ctx
        if captured is not None:
            if node in captured:
                captured[node] = g
        elif fn is None or node._retain:
            if node.grad is None:
                node.grad = g if id(node) in owned else np.array(g, dtype=node.data.dtype)
            else:
                node.grad += g
        if fn is None:
            if leaf_steps:
                yield node, g, ()
            continue
        parents = fn.parents
        if parents is None:
            raise _released_error(fn)
        # g may be overwritten only when nothing else can see it: not a retained .grad, not a step
        # shown by the stepper, not a gradient that grad() returns.
        reuse = fast_leaves and fn.backward_into is not None and id(node) in owned and not node._retain
        bw = fn.backward_into if reuse else fn.backward
        if len(parents) == 2:
            gs = bw(g, node.data, parents[0].data, parents[1].data)
        elif len(parents) == 1:
            gs = bw(g, node.data, parents[0].data)
        elif len(parents) == 3:
            gs = bw(g, node.data, parents[0].data, parents[1].data, parents[2].data)
        else:
            gs = bw(g, node.data, *[p.data for p in parents])
        if type(gs) is not tuple:
            gs = (gs,)
        sent = []
        for p, gp, need in zip(parents, gs, fn.needs):
            if gp is None or not need:
                sent.append(None)
                continue
            if type(gp) is not ndarray:
                gp = asarray(gp)
            if anomaly:
                _check_finite(gp, f"the gradient computed by {fn.name}.backward", fn)
            data = p.data
            if gp.shape != data.shape:
                gp = unbroadcast(gp, data.shape)
                fresh = True
            else:
                fresh = (reuse or gp is not g) and gp.base is None
                if fresh and sent:  # one array returned for two inputs is shared, not owned
                    for other in sent:
                        if other is gp:
                            fresh = False
            if gp.dtype is not data.dtype and gp.dtype != data.dtype:
                gp = gp.astype(data.dtype)
                fresh = True
            prev = grads.get(p)
            if prev is None:
                if not fast_leaves or p._ctx is not None or p._hooks:
                    grads[p] = gp
                    if fresh:
                        owned.add(id(p))
                    push(heap, (-p._seq, p))
                elif p.grad is None:
                    p.grad = gp if fresh else np.array(gp, dtype=data.dtype)
                else:
                    p.grad += gp
                sent.append(gp)
                continue
            elif id(p) in owned:
                prev += gp
            else:
                total = prev + gp
                grads[p] = total if type(total) is ndarray else asarray(total)  # 0-d sums give scalars
                owned.add(id(p))
            sent.append(gp)
        if leaf_steps:  # backward() and grad() run to the end without stopping at each node
            yield node, g, sent
        if not retain_graph:
            fn.parents = None


def _run(roots, root_grads, retain_graph: bool, targets=None):
    """Run the engine to the end. Without targets: accumulate into leaves' .grad; with targets: return their grads."""
    captured = dict.fromkeys(targets) if targets is not None else None
    for _ in backward_steps(roots, root_grads, retain_graph, captured, leaf_steps=False):
        pass
    return captured


def _run_graph(roots, root_grads, retain_graph: bool, targets):
    """The engine on Tensors (create_graph=True): every backward is recorded, so gradients are differentiable."""
    grads, heap = _seed(roots, root_grads)
    captured = {}
    while heap:
        node = heappop(heap)[1]
        g = grads.pop(node)
        if node._hooks:
            g = _call_hooks(node, g)
        if node in targets:
            captured[node] = g
        fn = node._ctx
        if fn is None:
            continue
        if fn.parents is None:
            raise _released_error(fn)
        try:
            gs = fn.backward(g, node, *fn.parents)
        except FloatingPointError as e:  # raised by an op inside this backward, under detect_anomaly
            raise FloatingPointError(f"detect_anomaly: in {fn.name}.backward (create_graph=True): {e}") from None
        if type(gs) is not tuple:
            gs = (gs,)
        for p, gp, need in zip(fn.parents, gs, fn.needs):
            if gp is None or not need:
                continue
            if not isinstance(gp, Tensor):
                gp = Tensor._make(np.asarray(gp), None)
            gp = unbroadcast(gp, p.data.shape)
            prev = grads.get(p)
            if prev is None:
                heappush(heap, (-p._seq, p))
            grads[p] = gp if prev is None else prev + gp
        if not retain_graph:
            fn.parents = None
    return captured


_ONES: dict[tuple, np.ndarray] = {}


def _ones(shape: tuple, dtype: np.dtype) -> np.ndarray:
    """The seed gradient of a one-element output: shared and read-only, as the engine never writes into it."""
    key = (shape, dtype)
    one = _ONES.get(key)
    if one is None:
        one = _ONES[key] = np.ones(shape, dtype=dtype)
        one.flags.writeable = False
    return one


def backward(tensor: Tensor, grad: Any = None, retain_graph: bool = False) -> None:
    """``tensor`` から逆伝播し、葉テンソルの ``.grad`` に勾配を加算する。"""
    if not tensor.requires_grad:
        raise BackwardError(
            "backward() needs a tensor that requires grad: this one does not (no input of the "
            "computation had requires_grad=True, or it was computed under no_grad())"
        )
    if grad is None:
        if tensor.data.size != 1:
            raise BackwardError(
                f"backward() without grad= works only for a scalar output; this output has shape "
                f"{tensor.shape}: call .sum() first or pass grad= of that shape"
            )
        g = _ones(tensor.data.shape, tensor.data.dtype)
    else:
        g = _as_grad(grad, tensor)
    if _anomaly:
        _check_finite(g, "the grad passed to backward()")
    _run([tensor], [g], retain_graph)


def grad(outputs, inputs, grad_outputs=None, retain_graph: bool | None = None,
         create_graph: bool = False, allow_unused: bool = False) -> list:
    """``outputs`` の ``inputs`` に関する勾配を返す (``.grad`` には触れない)。

    ``create_graph=True`` なら結果自体が微分可能なテンソルになり、2 階微分や
    ヘッセ行列とベクトルの積が計算できる。
    """
    outputs = [outputs] if isinstance(outputs, Tensor) else list(outputs)
    single = isinstance(inputs, Tensor)
    inputs = [inputs] if single else list(inputs)
    if grad_outputs is None:
        grad_outputs = [None] * len(outputs)
    elif isinstance(grad_outputs, (Tensor, np.ndarray)):
        grad_outputs = [grad_outputs]
    for i, t in enumerate(inputs):
        if not isinstance(t, Tensor) or not t.requires_grad:
            raise ValueError(f"grad(): input {i} must be a Tensor with requires_grad=True")
    roots, root_grads = [], []
    for out, go in zip(outputs, grad_outputs):
        if not out.requires_grad:
            raise BackwardError("grad(): an output does not require grad, so nothing connects it to the inputs")
        if go is None:
            if out.data.size != 1:
                raise BackwardError(f"grad(): grad_outputs is needed for a non-scalar output of shape {out.shape}")
            go = np.ones(out.data.shape, dtype=out.data.dtype)
        if create_graph:
            go = go if isinstance(go, Tensor) else Tensor._make(_as_grad(go, out), None)
        else:
            go = _as_grad(go, out)
        roots.append(out)
        root_grads.append(go)
    if retain_graph is None:
        retain_graph = create_graph
    targets = set(inputs)
    if create_graph:
        with enable_grad():
            captured = _run_graph(roots, root_grads, retain_graph, targets)
    else:
        captured = _run(roots, root_grads, retain_graph, targets)
    result = []
    for i, t in enumerate(inputs):
        g = captured.get(t)
        if g is None:
            if not allow_unused:
                raise BackwardError(f"grad(): input {i} is not used to compute the outputs; pass allow_unused=True")
            result.append(None)
        elif isinstance(g, Tensor):
            result.append(g)
        else:
            result.append(Tensor._make(np.array(g, dtype=t.data.dtype), None))
    return result
