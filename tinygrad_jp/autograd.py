"""逆伝播エンジン: Function (演算の基底)、backward、grad、no_grad、detect_anomaly。

計算グラフは「テンソル → それを作った Function → 入力テンソル」という参照だけでできている。
Function は出力を参照しないので循環参照は生まれず、損失を捨てればグラフも消える。
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import numpy as np

from .tensor import Tensor

_grad_enabled = True
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
    """この中では、順伝播の出力か逆伝播の勾配に NaN/inf が現れた最初の演算で例外を送出する。"""

    def __enter__(self):
        global _anomaly
        self._saved = _anomaly
        _anomaly = True
        return self

    def __exit__(self, *exc):
        global _anomaly
        _anomaly = self._saved
        return False


def _check_finite(arr: np.ndarray, what: str) -> None:
    if arr.dtype.kind in "fc" and not np.all(np.isfinite(arr)):
        kind = "NaN" if np.isnan(arr).any() else "inf"
        raise FloatingPointError(f"detect_anomaly: {what} contains {kind}")


# ---------------------------------------------------------------------- Function
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
    """

    __slots__ = ("needs", "parents")

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
        try:
            out = self.forward(*[t.data for t in inputs])
        except ValueError as e:
            shapes = ", ".join(str(t.shape) for t in inputs)
            raise ValueError(f"{self.name}: cannot apply to inputs of shapes {shapes}: {e}") from None
        if type(out) is not np.ndarray:
            out = np.asarray(out)
        if _anomaly:
            _check_finite(out, f"the forward output of {self.name}")
        if _grad_enabled:
            needs = tuple([t.requires_grad for t in inputs])
            if True in needs:
                self.parents = inputs
                self.needs = needs
                return Tensor._make(out, self)
        return Tensor._make(out, None)


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


def _released_error(fn: Function) -> RuntimeError:
    return RuntimeError(
        f"trying to backward through the graph a second time (at {fn.name}): its intermediate "
        "values were freed after the first backward; pass retain_graph=True to the first call"
    )


def _as_grad(grad: Any, like: Tensor) -> np.ndarray:
    g = grad.data if isinstance(grad, Tensor) else np.asarray(grad, dtype=like.dtype)
    if g.shape != like.shape:
        raise ValueError(f"grad must have the output's shape {like.shape}, got {g.shape}")
    return g.astype(like.dtype, copy=False)


# ---------------------------------------------------------------------- engine
def _run(roots, root_grads, retain_graph: bool, create_graph: bool, targets=None):
    """The engine. Without targets: accumulate into leaves' .grad. With targets: return their grads."""
    order = toposort(roots)
    grads: dict[int, Any] = {}
    owned: set[int] = set()  # ids of arrays this run created and may update in place
    for r, g in zip(roots, root_grads):
        if r.requires_grad:
            _accumulate(grads, owned, r, g, False, create_graph)
    captured = {} if targets is not None else None
    for node in order:
        key = id(node)
        g = grads.pop(key, None)
        if g is None:
            continue
        is_owned = key in owned
        owned.discard(key)
        if node._hooks:
            for hook in node._hooks:
                res = hook(g)
                if res is not None:
                    g, is_owned = res, False
        fn = node._ctx
        if captured is not None:
            if key in targets:
                captured[key] = g
        elif fn is None or node._retain:
            _store_grad(node, g, is_owned)
        if fn is None:
            continue
        parents = fn.parents
        if parents is None:
            raise _released_error(fn)
        if create_graph:
            gs = fn.backward(g, node, *parents)
        else:
            gs = fn.backward(g, node.data, *[p.data for p in parents])
        if type(gs) is not tuple:
            gs = (gs,)
        for p, gp, need in zip(parents, gs, fn.needs):
            if not need or gp is None:
                continue
            if not create_graph:
                if type(gp) is not np.ndarray:
                    gp = np.asarray(gp)
                if _anomaly:
                    _check_finite(gp, f"the gradient computed by {fn.name}.backward")
                fresh = gp is not g and gp.base is None
            else:
                fresh = False
            gp = unbroadcast(gp, p.data.shape)
            _accumulate(grads, owned, p, gp, fresh, create_graph)
        if not retain_graph:
            fn.parents = None
    return captured


def _accumulate(grads: dict, owned: set, node: Tensor, g, fresh: bool, create_graph: bool) -> None:
    key = id(node)
    if not create_graph and g.dtype != node.data.dtype:
        g = g.astype(node.data.dtype)
        fresh = True
    prev = grads.get(key)
    if prev is None:
        grads[key] = g
        if fresh:
            owned.add(key)
    elif key in owned:
        prev += g
    elif create_graph:
        grads[key] = prev + g
    else:
        total = prev + g
        grads[key] = total if type(total) is np.ndarray else np.asarray(total)  # 0-d sums give scalars
        owned.add(key)


def _store_grad(node: Tensor, g: np.ndarray, is_owned: bool) -> None:
    if node.grad is None:
        node.grad = g if is_owned else np.array(g, dtype=node.data.dtype)
    else:
        node.grad += g


def backward(tensor: Tensor, grad: Any = None, retain_graph: bool = False) -> None:
    """``tensor`` から逆伝播し、葉テンソルの ``.grad`` に勾配を加算する。"""
    if not tensor.requires_grad:
        raise RuntimeError(
            "backward() needs a tensor that requires grad: this one does not (no input of the "
            "computation had requires_grad=True, or it was computed under no_grad())"
        )
    if grad is None:
        if tensor.data.size != 1:
            raise RuntimeError(
                f"backward() without grad= works only for a scalar output; this output has shape "
                f"{tensor.shape}: call .sum() first or pass grad= of that shape"
            )
        g = np.ones_like(tensor.data)
    else:
        g = _as_grad(grad, tensor)
    _run([tensor], [g], retain_graph, create_graph=False)


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
            raise RuntimeError("grad(): an output does not require grad, so nothing connects it to the inputs")
        if go is None:
            if out.data.size != 1:
                raise RuntimeError(f"grad(): grad_outputs is needed for a non-scalar output of shape {out.shape}")
            go = np.ones_like(out.data)
        if create_graph:
            go = go if isinstance(go, Tensor) else Tensor._make(_as_grad(go, out), None)
        else:
            go = _as_grad(go, out)
        roots.append(out)
        root_grads.append(go)
    if retain_graph is None:
        retain_graph = create_graph
    with _GradMode(create_graph):
        captured = _run(roots, root_grads, retain_graph, create_graph, targets={id(t) for t in inputs})
    result = []
    for i, t in enumerate(inputs):
        g = captured.get(id(t))
        if g is None:
            if not allow_unused:
                raise RuntimeError(f"grad(): input {i} is not used to compute the outputs; pass allow_unused=True")
            result.append(None)
        elif isinstance(g, Tensor):
            result.append(g)
        else:
            result.append(Tensor._make(np.array(g, dtype=t.data.dtype), None))
    return result
