"""逆伝播エンジン: Function (演算の基底)、backward、grad、no_grad、detect_anomaly。

計算グラフは「テンソル → それを作った Function (グラフのノード) → 入力テンソル」という参照だけで
できている。Function は出力を参照しないので循環参照は生まれず、損失を捨てればグラフも消える。

逆伝播はただ 1 つのループ ``backward_steps`` が行う。``backward()``、``grad()`` (``create_graph``
の有無にかかわらず)、``inspect.backprop_steps`` はどれもこのループを回す。読み方は docs/engine.md。
"""

from __future__ import annotations

import copy
import functools
import os
import threading
import traceback
from collections.abc import Sequence
from heapq import heappop, heappush
from typing import Any

import numpy as np

from .tensor import Tensor

_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))


# ---------------------------------------------------------------------- grad mode (per thread) and anomaly mode
class _GradState(threading.local):
    """Whether ops record the graph, for each thread on its own (a new thread starts with True)."""

    enabled = True


_grad = _GradState()


class _AnomalyState:
    """Whether detect_anomaly is on (for the whole process, like numpy's error state that it sets)."""

    enabled = False


_anomaly = _AnomalyState()


class _GradMode:
    """``with`` でも関数デコレータでも使える、勾配記録の切り替え (スレッドごと)。"""

    def __init__(self, enabled: bool):
        self.enabled = enabled
        self._saved: list[bool] = []

    def __enter__(self):
        self._saved.append(_grad.enabled)
        _grad.enabled = self.enabled
        return self

    def __exit__(self, *exc):
        _grad.enabled = self._saved.pop()
        return False

    def __call__(self, fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with _GradMode(self.enabled):
                return fn(*args, **kwargs)

        return wrapper


class no_grad(_GradMode):
    """この中では計算グラフを作らない (推論や重みの直接更新に使う)。スレッドごとに効く。"""

    def __init__(self):
        super().__init__(False)


class enable_grad(_GradMode):
    """``no_grad`` の中で一時的にグラフの記録を再開する。"""

    def __init__(self):
        super().__init__(True)


def is_grad_enabled() -> bool:
    """このスレッドで計算グラフを記録しているなら True。"""
    return _grad.enabled


class detect_anomaly:
    """この中では、順伝播の出力か逆伝播の勾配に NaN/inf が現れた最初の演算で例外を送出する。

    逆伝播で見つかったときは、その演算がどこで (順伝播のどの行で) 作られたかも示す。
    外では何も検査しない (コストはゼロ)。
    """

    def __enter__(self):
        self._saved = _anomaly.enabled
        _anomaly.enabled = True
        # numpy's own warning would come first and name no op: the check below says more.
        self._errstate = np.seterr(all="ignore")
        return self

    def __exit__(self, *exc):
        _anomaly.enabled = self._saved
        np.seterr(**self._errstate)
        return False


def is_anomaly_enabled() -> bool:
    """``detect_anomaly`` の中なら True。"""
    return _anomaly.enabled


def _record_creation(fn: Function) -> None:
    """Keep, on the node itself, the user's lines that applied it (so it is freed with its graph)."""
    frames = [f for f in traceback.extract_stack()[:-2] if _PACKAGE_DIR not in f.filename]
    fn._where = "".join(traceback.format_list(frames[-3:])).rstrip()


def _check_finite(arr: Any, what: str, fn: Function | None = None) -> None:
    arr = arr.data if isinstance(arr, Tensor) else np.asarray(arr)
    if arr.dtype.kind in "fc" and not np.all(np.isfinite(arr)):
        kind = "NaN" if np.isnan(arr).any() else "inf"
        msg = f"detect_anomaly: {what} contains {kind}"
        where = getattr(fn, "_where", None)
        if where:
            msg += f"; that {fn.name} was created in the forward pass at:\n{where}"
        raise FloatingPointError(msg)


# ---------------------------------------------------------------------- Function
# One shared tuple per pattern of flags: a graph of 10^5 nodes holds no 10^5 copies of (True, False).
_NEEDS: dict[tuple, tuple] = {}


class Function:
    """微分可能な演算の基底クラス。呼び出すたびに、その呼び出しの計算グラフのノードになる。

    サブクラスは 2 つのメソッドを書く:

    * ``forward(self, *xs)``: 入力の numpy 配列から出力の numpy 配列を計算する。
    * ``backward(self, g, y, *xs)``: 上流の勾配 ``g`` と出力 ``y``・入力 ``xs`` から、
      入力ごとの勾配を返す。入力が 1 つなら配列 1 つ、2 つ以上なら入力と同じ数のタプル
      (勾配の要らない入力には None)。``self.needs[i]`` は入力 i が勾配を必要とするか。

    ``backward`` は通常 numpy 配列で呼ばれるが、``grad(..., create_graph=True)`` のときは
    Tensor で呼ばれる。演算子と ``tinygrad_jp.ops`` の関数 (``exp``, ``where`` など) だけで
    書けば、どちらでもそのまま動き、2 階微分が得られる。
    返した勾配はエンジンが検査し (個数・形)、ブロードキャストで広がった軸の和をとって入力の形に戻す。

    呼び出すと ``self.parents`` (入力テンソル) と ``self.needs`` が記録される。
    同じインスタンスを 2 度呼ぶと、2 度目はコピーが新しいノードになる。
    サブクラスで ``__init__`` を書くときは ``super().__init__()`` を呼ぶ (呼ばなくても正しく動くが少し遅い)。
    """

    __slots__ = ("_where", "needs", "parents")  # a graph may hold 10^5 nodes

    def __init__(self):
        self.parents = None  # None until a call makes it a node; then the inputs; () once backward released it

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
        fn = self if getattr(self, "parents", None) is None else copy.copy(self)  # a new graph node per call
        arrays, needs = [], []
        for t in inputs:  # what forward computes on, and which inputs want a gradient
            arrays.append(t.data)
            needs.append(t.requires_grad)
        try:
            out = np.asarray(fn.forward(*arrays))
        except ValueError as e:
            raise _forward_error(fn, inputs, e) from None
        if _anomaly.enabled:
            _check_forward(fn, out)
        if not _grad.enabled or True not in needs or out.dtype.kind not in "fc":
            return Tensor._make(out, None)  # nothing to differentiate: a constant, not a node of the graph
        fn.parents = inputs
        needs = tuple(needs)
        fn.needs = _NEEDS.setdefault(needs, needs)
        return Tensor._make(out, fn)


def _forward_error(fn: Function, inputs: Sequence[Tensor], e: ValueError) -> ValueError:
    msg = str(e)
    if not msg.lower().startswith(fn.name.lower()):  # numpy's messages do not say which op
        shapes = ", ".join(str(t.shape) for t in inputs)
        msg = f"{fn.name}: cannot apply to inputs of shapes {shapes}: {msg}"
    return ValueError(msg)


def _check_forward(fn: Function, out: np.ndarray) -> None:
    """Under detect_anomaly: NaN/inf in the output is an error, and the node remembers where it was made."""
    _check_finite(out, f"the forward output of {fn.name}")
    _record_creation(fn)


# ---------------------------------------------------------------------- the engine
def backward_steps(roots: Sequence[Tensor], root_grads: Sequence[Any], retain_graph: bool = False,
                   create_graph: bool = False, wanted: dict | None = None):
    """逆伝播のエンジン。テンソルを 1 つずつ処理し、``(tensor, その勾配, 入力へ送った勾配)`` を返す。

    ``backward()`` は最後まで回して葉の ``.grad`` に加算する。``grad()`` は ``wanted`` (求める
    テンソルをキーとする辞書) に勾配を集め、``.grad`` には触れない。``inspect.backprop_steps`` は
    1 ステップずつ見せる。``create_graph=True`` なら勾配は Tensor で、逆伝播自体もグラフになる。
    """
    grads, waiting = _seed(roots, root_grads)
    while waiting:
        # 1. Take the newest waiting tensor. Every op that used it was created after it, so all of
        #    them have already sent their part: its gradient g is complete.
        tensor = heappop(waiting)[1]
        g = grads.pop(tensor)
        # 2. Hooks see the gradient and may replace it.
        for hook in tensor._hooks or ():
            g = _run_hook(hook, g, tensor)
        # 3. grad() keeps the gradients it was asked for; backward() adds a leaf's into its .grad.
        _deliver(tensor, g, wanted)
        fn = tensor._ctx
        if fn is None:  # a leaf: nothing further to send
            yield tensor, g, []
            continue
        # 4. The op's own backward: the local derivative times g, one gradient per input.
        sent = _call_backward(fn, tensor, g, create_graph)
        # 5. Bring each gradient to its input's shape (summing broadcast axes) and add it to
        #    what that input is waiting for; an input that starts waiting joins the heap.
        for i, (x, gx, need) in enumerate(zip(fn.parents, sent, fn.needs)):
            if gx is None or not need:
                sent[i] = None
                continue
            sent[i] = gx = _fit_to_input(gx, x, fn, i, create_graph)
            if x in grads:
                grads[x] = grads[x] + gx
            else:
                grads[x] = gx
                heappush(waiting, (-x._seq, x))
        yield tensor, g, sent
        # 6. Release the node: its inputs (and their arrays) can now be freed.
        if not retain_graph:
            fn.parents = ()


# ---------------------------------------------------------------------- the loop's helpers
def _seed(roots: Sequence[Tensor], root_grads: Sequence[Any]) -> tuple[dict, list]:
    """The starting gradients (summed when a root is given twice) and the heap of waiting tensors.

    The heap is keyed by minus the creation number, so the newest tensor comes out first.
    """
    grads: dict = {}
    waiting: list = []
    for root, g in zip(roots, root_grads):
        if root in grads:
            grads[root] = grads[root] + g
        else:
            grads[root] = g
            heappush(waiting, (-root._seq, root))
    return grads, waiting


def _run_hook(hook, g, tensor: Tensor):
    """Call one hook; a result replaces g, but only with the gradient's shape."""
    result = hook(g)
    if result is None:
        return g
    if not isinstance(result, (np.ndarray, Tensor)):
        result = np.asarray(result, dtype=tensor.data.dtype)
    if result.shape != g.shape:
        raise ValueError(
            f"a hook on {_describe_tensor(tensor)} returned a gradient of shape {result.shape}; "
            f"it must keep the gradient's shape {g.shape}"
        )
    if _anomaly.enabled:
        _check_finite(result, f"the gradient returned by a hook on {_describe_tensor(tensor)}")
    return result


def _deliver(tensor: Tensor, g, wanted: dict | None) -> None:
    """Hand a complete gradient over: to grad()'s ``wanted`` dict, or into a leaf's (or retained) .grad."""
    if wanted is not None:
        if tensor in wanted:
            wanted[tensor] = g
    elif tensor.requires_grad and (tensor._ctx is None or tensor._retain):
        _accumulate(tensor, g)


def _accumulate(tensor: Tensor, g: np.ndarray) -> None:
    """Add g into tensor.grad. The first time g is copied: it may be shared with another tensor."""
    if tensor.grad is None:
        tensor.grad = np.array(g, dtype=tensor.data.dtype)
    else:
        tensor.grad += g


def _call_backward(fn: Function, out: Tensor, g, create_graph: bool) -> list:
    """fn.backward(g, y, *xs) on what the forward saved: a list with one gradient (or None) per input.

    The saved output y and inputs xs are arrays, or Tensors when the backward is recorded. It is an error
    if the graph was released, if one of them was changed in place since the forward, or if backward
    returns anything but one gradient per input.
    """
    if not fn.parents:
        raise BackwardError(
            f"trying to backward through the graph a second time (at {fn.name}): its intermediate "
            "values were freed after the first backward; pass retain_graph=True to the first call"
        )
    arrays = []
    for x in fn.parents:  # each input as the forward saw it: not changed in place since out was made
        if x._version > out._seq:
            raise _modified_error(fn, out)
        arrays.append(x.data)
    if out._version > out._seq:
        raise _modified_error(fn, out)
    try:
        if create_graph:
            result = fn.backward(g, out, *fn.parents)
        else:
            result = fn.backward(g, out.data, *arrays)
    except FloatingPointError as e:  # detect_anomaly found a NaN in an op inside a recorded backward
        raise FloatingPointError(f"detect_anomaly: in {fn.name}.backward: {e}") from None
    n = len(fn.parents)
    if type(result) is tuple and len(result) == n:
        return list(result)
    if n == 1 and not isinstance(result, (tuple, list)):
        return [result]
    expected = "one gradient (an array) or a 1-tuple" if n == 1 else f"a tuple of {n} gradients (None allowed)"
    raise TypeError(f"{fn.name}.backward must return {expected}, one per input; it returned {_describe(result)}")


def _modified_error(fn: Function, out: Tensor) -> BackwardError:
    changed = [f"input {i} ({_describe_tensor(x)})" for i, x in enumerate(fn.parents) if x._version > out._seq]
    what = changed[0] if changed else f"its output ({_describe_tensor(out)})"
    return BackwardError(
        f"a tensor needed by {fn.name}.backward was modified by an in-place operation: {what} was changed "
        "after the forward pass that used it. Call backward() before changing it (e.g. before optimizer.step()), "
        "or compute the forward again"
    )


def _fit_to_input(gx: Any, x: Tensor, fn: Function, i: int, create_graph: bool):
    """Check one gradient fn.backward returned for input i, and bring it to x's shape and dtype."""
    if type(gx) is not (Tensor if create_graph else np.ndarray):
        gx = _as_gradient(gx, fn, i, create_graph)
    if gx.shape != x.data.shape:
        gx = unbroadcast(gx, x.data.shape, lambda: _shape_error(fn, i, gx, x))
    if gx.dtype != x.data.dtype:
        gx = gx.astype(x.data.dtype)
    if _anomaly.enabled:
        _check_finite(gx, f"the gradient computed by {fn.name}.backward", fn)
    return gx


def _as_gradient(gx: Any, fn: Function, i: int, create_graph: bool):
    """An array (a Tensor when the backward is recorded) from what a backward returned, or an error."""
    if isinstance(gx, (np.ndarray, np.generic)):  # numpy turns 0-d results into scalars
        gx = np.asarray(gx)
        return Tensor._make(gx, None) if create_graph else gx  # a constant in a recorded backward
    if isinstance(gx, Tensor) and not create_graph:
        return gx.data
    raise TypeError(f"{fn.name}.backward returned {_describe(gx)} for input {i}; expected an array")


def _shape_error(fn: Function, i: int, gx: Any, x: Tensor) -> ValueError:
    return ValueError(
        f"{fn.name}.backward returned a gradient of shape {gx.shape} for input {i}, which has shape "
        f"{x.data.shape}: expected that shape (or one it broadcasts to)"
    )


def unbroadcast(g, shape: tuple, error=None):
    """ブロードキャストで広がった勾配を、元の形 ``shape`` へ和をとって戻す。

    g の形が ``shape`` を広げた形でなければ ValueError (``error`` があればそれが作る例外)。
    """
    try:
        wider = np.broadcast_shapes(shape, g.shape) == g.shape
    except ValueError:
        wider = False
    if not wider:
        raise error() if error else ValueError(f"cannot sum a gradient of shape {g.shape} back to {shape}")
    lead = g.ndim - len(shape)
    axes = tuple(range(lead)) + tuple(lead + i for i, n in enumerate(shape) if n == 1 and g.shape[lead + i] != 1)
    if axes:
        g = g.sum(axis=axes, keepdims=True)
    return g.reshape(shape)


def _describe(value: Any) -> str:
    if value is None:
        return "None"
    if isinstance(value, (tuple, list)):
        items = ", ".join(_describe(v) for v in value)
        return f"a {type(value).__name__} ({items})" if value else f"an empty {type(value).__name__}"
    if isinstance(value, (np.ndarray, Tensor)):
        return f"{type(value).__name__} of shape {value.shape}"
    return f"{type(value).__name__} {value!r}"


def _describe_tensor(t: Tensor) -> str:
    made = "a leaf" if t._ctx is None else f"the output of {t._ctx.name}"
    return f"{t.name!r}, shape {t.shape}" if t.name else f"{made}, shape {t.shape}"


def toposort(roots: Sequence[Tensor]) -> list[Tensor]:
    """勾配が流れるテンソルを、どのテンソルも自分の消費者すべての後に来る順に並べる (図や表示のため)。

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
        if fn is not None and fn.parents:
            for p, need in zip(fn.parents, fn.needs):
                if need and id(p) not in visited:
                    stack.append((p, False))
    order.reverse()
    return order


class BackwardError(RuntimeError, ValueError):
    """逆伝播の使い方の誤り (スカラーでない出力に grad なしで backward、解放済みのグラフなど)。

    PyTorch と同じく RuntimeError として、また渡されたものが不適切という意味で ValueError としても捕まえられる。
    """


# ---------------------------------------------------------------------- backward() and grad()
def _root_grad(out: Tensor, grad: Any, caller: str, create_graph: bool = False, keyword: str = "grad="):
    """The gradient that starts backprop at ``out``: ones for a one-element output, else ``grad``."""
    if not out.requires_grad:
        raise BackwardError(
            f"{caller} needs an output that requires grad: this one does not (no input of the "
            "computation had requires_grad=True, or it was computed under no_grad())"
        )
    if grad is None:
        if out.data.size != 1:
            raise BackwardError(
                f"{caller} without {keyword} works only for a scalar (one-element) output; this output has "
                f"shape {out.shape}: call .sum() first or pass {keyword} of that shape"
            )
        g = np.ones(out.data.shape, dtype=out.data.dtype)
    else:
        g = grad.data if isinstance(grad, Tensor) else np.asarray(grad, dtype=out.data.dtype)
        if g.shape != out.shape:
            raise ValueError(f"{caller}: the gradient must have the output's shape {out.shape}, got {g.shape}")
        g = g.astype(out.data.dtype, copy=False)
    if _anomaly.enabled:
        _check_finite(g, f"the grad passed to {caller}")
    if create_graph:
        return grad if isinstance(grad, Tensor) else Tensor._make(g, None)
    return g


def _run(roots: list, root_grads: list, retain_graph: bool, create_graph: bool = False,
         wanted: dict | None = None) -> None:
    """Run the engine to the end. With create_graph the backward is recorded (so grad mode is on for it);
    otherwise every backward works on plain arrays and records nothing anyway."""
    steps = backward_steps(roots, root_grads, retain_graph, create_graph, wanted)
    if create_graph:
        with enable_grad():
            for _ in steps:
                pass
    else:
        for _ in steps:
            pass


def backward(tensor: Tensor, grad: Any = None, retain_graph: bool = False) -> None:
    """``tensor`` から逆伝播し、葉テンソルの ``.grad`` に勾配を加算する。"""
    _run([tensor], [_root_grad(tensor, grad, "backward()")], retain_graph)


def grad(outputs, inputs, grad_outputs=None, retain_graph: bool | None = None,
         create_graph: bool = False, allow_unused: bool = False) -> list:
    """``outputs`` の ``inputs`` に関する勾配を返す (``.grad`` には触れない)。

    ``create_graph=True`` なら結果自体が微分可能なテンソルになり、2 階微分や
    ヘッセ行列とベクトルの積が計算できる。
    """
    outputs = [outputs] if isinstance(outputs, Tensor) else list(outputs)
    inputs = [inputs] if isinstance(inputs, Tensor) else list(inputs)
    if grad_outputs is None or isinstance(grad_outputs, (Tensor, np.ndarray)):
        grad_outputs = [grad_outputs] * len(outputs) if grad_outputs is None else [grad_outputs]
    for i, t in enumerate(inputs):
        if not isinstance(t, Tensor) or not t.requires_grad:
            raise ValueError(f"grad(): input {i} must be a Tensor with requires_grad=True")
    root_grads = [_root_grad(out, go, "grad()", create_graph, "grad_outputs")
                  for out, go in zip(outputs, grad_outputs)]
    wanted = dict.fromkeys(inputs)
    _run(outputs, root_grads, create_graph if retain_graph is None else retain_graph, create_graph, wanted)
    return [_grad_result(wanted[t], t, i, allow_unused) for i, t in enumerate(inputs)]


def _grad_result(g: Any, t: Tensor, i: int, allow_unused: bool) -> Tensor | None:
    if g is None and not allow_unused:
        raise BackwardError(f"grad(): input {i} is not used to compute the outputs; pass allow_unused=True")
    if g is None or isinstance(g, Tensor):
        return g
    return Tensor._make(np.array(g, dtype=t.data.dtype), None)
