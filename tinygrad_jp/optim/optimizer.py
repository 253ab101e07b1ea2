"""Optimizer: パラメータ更新の基底クラス。

使い方は 2 通り:

* PyTorch 流: ``opt = Adam(model.parameters())`` として、毎ステップ ``opt.zero_grad()`` →
  ``loss.backward()`` → ``opt.step()``。``p.data`` をその場で書き換える。
* 第3章流: ``opt = Adam(learning_rate=0.1)`` と params なしで作り、
  ``opt.update(params, grads)`` に numpy 配列の辞書を渡す。``params`` の配列をその場で書き換える。

どちらでも、1 つのパラメータの更新はサブクラスの ``update_param(key, w, g)`` が本文の式で行う。
状態は本文のクラスと同じ名前の辞書 (``opt.velocity``, ``opt.h``, ``opt.m``, ``opt.v``) に入り、
キーは ``step()`` ではパラメータの番号 (params の何番目か)、``update()`` では辞書のキー。
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from ..tensor import Tensor


# ---------------------------------------------------------------------- checking hyperparameters
def check_lr(lr: Any) -> float:
    return _check_number("lr", lr, lambda v: v >= 0, "lr must be >= 0")


def check_unit(name: str, value: Any, closed: bool = False) -> float:
    """A coefficient in [0, 1) (or [0, 1] when ``closed``)."""
    if closed:
        return _check_number(name, value, lambda v: 0 <= v <= 1, f"{name} must be in [0, 1]")
    return _check_number(name, value, lambda v: 0 <= v < 1, f"{name} must be in [0, 1)")


def check_positive(name: str, value: Any) -> float:
    return _check_number(name, value, lambda v: v > 0, f"{name} must be > 0")


def check_nonnegative(name: str, value: Any) -> float:
    return _check_number(name, value, lambda v: v >= 0, f"{name} must be >= 0")


def _check_number(name: str, value: Any, ok: Callable[[float], bool], rule: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__} {value!r}")
    v = float(value)
    # NaN fails every comparison, so it is rejected here too.
    if not ok(v):
        raise ValueError(f"{rule}, got {name}={value!r}")
    return v


# The constructors' rules, applied again to hyperparameters read by load_state_dict. A name not listed here
# (a hyperparameter of your own optimizer) only has to be a finite number.
_RULES: dict[str, Callable[[str, Any], float]] = {
    "lr": lambda name, v: check_lr(v),
    "eps": check_positive,
    "weight_decay": check_nonnegative,
    "momentum": check_unit,
    "beta1": check_unit,
    "beta2": check_unit,
    "decay_rate": lambda name, v: check_unit(name, v, closed=True),
}


def alias(name: str, doc: str) -> property:
    """属性 ``name`` のもう 1 つの名前 (読み書きとも ``name`` に届く)。"""
    return property(lambda self: getattr(self, name), lambda self, value: setattr(self, name, value), doc=doc)


# ---------------------------------------------------------------------- the base class
class Optimizer:
    """最適化手法の基底クラス。

    サブクラスが書くもの:

    * ``update_param(key, w, g)``: パラメータ w (numpy 配列) を勾配 g で、本文の式どおりに
      その場で更新する (``w -= ...``)。本文の ``update`` の ``for key in params.keys():`` の中身にあたる。
    * ``state_names``: パラメータごとの状態の名前。``("m", "v")`` なら ``self.m`` と ``self.v`` が
      辞書になり、初めて更新するパラメータには 0 の配列 ``self.m[key]`` が用意される。
    * ``hyperparameters``: lr 以外のハイパーパラメータの属性名 (``state_dict`` に入る)。

    ``self.t`` は更新の回数 (``step()`` か ``update()`` で何かを更新した回数、今回の分を含む)。
    ``weight_decay`` > 0 なら、勾配に λw を足してから ``update_param`` を呼ぶ (L2 正則化)。
    """

    hyperparameters: tuple[str, ...] = ()
    state_names: tuple[str, ...] = ()
    weight_decay: float = 0.0
    # True where update_param shrinks the weights itself (AdamW) instead of adding λw to the gradient.
    decoupled_weight_decay: bool = False

    def __init__(self, params: Iterable[Tensor] | None, lr: float, learning_rate: float | None) -> None:
        self.lr = check_lr(_one_learning_rate(type(self), lr, learning_rate))
        self.params: list[Tensor] | None = None if params is None else _as_param_list(params)
        self.t = 0
        for name in self.state_names:
            setattr(self, name, {})

    learning_rate = alias("lr", "``lr`` の別名 (第3章のクラスの属性名)。")

    # ------------------------------------------------------------------ PyTorch style
    def zero_grad(self) -> None:
        """すべてのパラメータの勾配を None にする。"""
        for p in self._require_params("zero_grad"):
            p.grad = None

    def step(self) -> None:
        """各パラメータの ``.grad`` で ``.data`` をその場で 1 回更新する (grad が None のものは飛ばす)。"""
        params = self._require_params("step")
        todo = [(i, p) for i, p in enumerate(params) if p.grad is not None]
        for i, p in todo:
            if np.shape(p.grad) != p.data.shape:
                raise ValueError(f"parameter {i}: grad has shape {np.shape(p.grad)} "
                                 f"but the parameter has shape {p.data.shape}")
        if not todo:
            return
        self.t += 1
        for i, p in todo:
            self._apply(i, p.data, p.grad)
            p._mark_changed()  # so a backward through a graph made with the old weights can tell

    # ------------------------------------------------------------------ chapter style
    def update(self, params: dict[Any, np.ndarray], grads: dict[Any, np.ndarray]) -> None:
        """第3章の ``update(params, grads)``: 辞書の各配列 ``params[key]`` を ``grads[key]`` でその場で更新する。"""
        if self.params is not None:
            raise RuntimeError(f"update(params, grads) is for an optimizer built without params; this "
                               f"{type(self).__name__} was built with params, so call step()")
        todo = [(key, params[key], _checked_grad(key, params[key], grads)) for key in params.keys()]
        if not todo:
            return
        self.t += 1
        for key, w, g in todo:
            self._apply(key, w, g)

    # ------------------------------------------------------------------ one parameter
    def _apply(self, key: Any, w: np.ndarray, g: np.ndarray) -> None:
        """One parameter: its state (zeros the first time), L2 decay through the gradient, the subclass's formula."""
        for name in self.state_names:  # the chapter's `if self.h is None: ... np.zeros_like(val)`
            table = getattr(self, name)
            if key not in table:
                table[key] = np.zeros_like(w)
        if self.weight_decay and not self.decoupled_weight_decay:
            g = g + self.weight_decay * w  # the gradient of the L2 term (λ/2)‖w‖²
        self.update_param(key, w, g)

    def update_param(self, key: Any, w: np.ndarray, g: np.ndarray) -> None:
        """パラメータ ``w`` を勾配 ``g`` でその場で 1 回更新する (サブクラスが本文の式で書く)。"""
        raise NotImplementedError(f"{type(self).__name__} must define update_param(self, key, w, g)")

    def _require_params(self, what: str) -> list[Tensor]:
        if self.params is None:
            raise RuntimeError(
                f"{what}() needs parameters: build the optimizer as {type(self).__name__}(model.parameters(), ...); "
                "an optimizer built without params is used through update(params, grads)"
            )
        return self.params

    # ------------------------------------------------------------------ saving and loading
    def _hyper_values(self) -> dict[str, float]:
        return {"lr": float(self.lr), **{name: float(getattr(self, name)) for name in self.hyperparameters}}

    def state_dict(self) -> dict[str, Any]:
        """ハイパーパラメータ、更新回数 ``"t"``、状態の配列 (``"m.0"`` が ``opt.m[0]``) のコピー。

        値は数値か numpy 配列だけなので、``tg.save`` でそのまま ``.npz`` に保存できる。
        """
        self._require_params("state_dict")
        out: dict[str, Any] = {**self._hyper_values(), "t": self.t}
        for name in self.state_names:
            for i, array in sorted(getattr(self, name).items()):
                out[f"{name}.{i}"] = array.copy()
        return out

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """``state_dict`` を読み込む。すべて先に検査し、食い違えば何も変えずに ValueError を送出する。"""
        params = self._require_params("load_state_dict")
        self._check_entry_names(state_dict, len(params))
        hyper = {name: _checked_hyperparameter(name, state_dict[name]) for name in self._hyper_values()}
        t = _checked_count(state_dict["t"])
        state = self._checked_state(state_dict, params)
        for name, value in hyper.items():
            setattr(self, name, value)
        self.t = t
        for name, arrays in state.items():
            table = getattr(self, name)
            table.clear()
            table.update(arrays)

    def _check_entry_names(self, state_dict: dict[str, Any], n_params: int) -> None:
        """Every hyperparameter and ``t`` present, and nothing else but ``name.i`` state arrays."""
        scalars = [*self._hyper_values(), "t"]
        for name in scalars:
            if name not in state_dict:
                raise ValueError(f"load_state_dict: missing entry {name!r} for {type(self).__name__}")
        for key in state_dict:
            if key in scalars:
                continue
            name, _, index = str(key).rpartition(".")
            if name not in self.state_names or not index.isdigit():
                raise ValueError(f"load_state_dict: unexpected entry {key!r} for {type(self).__name__} "
                                 f"(expected {scalars} and state arrays "
                                 + ", ".join(f"'{s}.i'" for s in self.state_names) + ")")
            if int(index) >= n_params:
                raise ValueError(f"load_state_dict: entry {key!r} names parameter {index}, "
                                 f"but the optimizer has {n_params} parameters")

    def _checked_state(self, state_dict: dict[str, Any], params: list[Tensor]) -> dict[str, dict[int, np.ndarray]]:
        """The state arrays by name and parameter index, each checked against its parameter and copied."""
        state: dict[str, dict[int, np.ndarray]] = {name: {} for name in self.state_names}
        for key, value in state_dict.items():
            name, _, index = str(key).rpartition(".")
            if name in state:
                i = int(index)
                state[name][i] = _checked_array(key, value, params[i].data)
        indices = set().union(*state.values())
        for name, arrays in state.items():
            missing = sorted(indices - arrays.keys())
            if missing:
                raise ValueError(f"load_state_dict: missing entry '{name}.{missing[0]}' "
                                 f"(parameter {missing[0]} has other state)")
        return state

    # ------------------------------------------------------------------ display
    def __repr__(self) -> str:
        fields = ", ".join(f"{k}={v:g}" for k, v in self._hyper_values().items())
        return f"{type(self).__name__}({fields})"


# ---------------------------------------------------------------------- helpers
def _one_learning_rate(cls: type, lr: float, learning_rate: float | None) -> float:
    """``lr``, or the chapter's ``learning_rate=`` when that is given instead (not as well)."""
    if learning_rate is None:
        return lr
    declared = inspect.signature(cls.__init__).parameters.get("lr")
    if declared is not None and lr != declared.default:
        raise TypeError(f"give lr or learning_rate (the chapter's name), not both: lr={lr}, "
                        f"learning_rate={learning_rate}")
    return learning_rate


def _as_param_list(params: Any) -> list[Tensor]:
    if isinstance(params, Tensor):
        params = [params]
    elif isinstance(params, (dict, str, bytes)) or not isinstance(params, Iterable):
        raise TypeError(
            f"params must be an iterable of Tensors (e.g. model.parameters()), got {type(params).__name__}; "
            "to use the chapter's update(params, grads), build the optimizer without params"
        )
    out: list[Tensor] = []
    seen: set[int] = set()
    for i, p in enumerate(params):
        if not isinstance(p, Tensor):
            raise TypeError(f"params[{i}] must be a Tensor, got {type(p).__name__}")
        if id(p) in seen:
            raise ValueError(f"params[{i}] appears more than once in params; it would be updated twice per step")
        seen.add(id(p))
        out.append(p)
    if not out:
        raise ValueError("params is empty: the optimizer got no parameters to update")
    return out


def _checked_grad(key: Any, w: Any, grads: dict[Any, Any]) -> np.ndarray:
    """``grads[key]`` as an array, after checking that ``w`` can be updated in place by it."""
    if key not in grads:
        raise KeyError(f"grads has no entry for parameter {key!r} (grads has {list(grads)})")
    if not isinstance(w, np.ndarray) or w.dtype.kind != "f":
        got = f"{type(w).__name__} of dtype {w.dtype}" if isinstance(w, np.ndarray) else type(w).__name__
        raise TypeError(f"params[{key!r}] must be a floating-point ndarray (updated in place), got {got}")
    g = np.asarray(grads[key])
    if g.shape != w.shape:
        raise ValueError(f"grads[{key!r}] has shape {g.shape} but params[{key!r}] has shape {w.shape}")
    return g


def _scalar(value: Any, name: str) -> float:
    arr = np.asarray(value)
    if arr.size != 1 or arr.dtype.kind not in "fiu":
        raise ValueError(f"load_state_dict: {name!r} must be a single number, got {value!r}")
    v = float(arr.reshape(()))
    if not math.isfinite(v):
        raise ValueError(f"load_state_dict: {name!r} must be finite, got {v}")
    return v


def _checked_hyperparameter(name: str, value: Any) -> float:
    v = _scalar(value, name)
    rule = _RULES.get(name)
    return v if rule is None else rule(name, v)


def _checked_count(value: Any) -> int:
    t = _scalar(value, "t")
    if t != int(t) or t < 0:
        raise ValueError(f"load_state_dict: 't' (the number of updates) must be a non-negative integer, got {t}")
    return int(t)


def _checked_array(key: str, value: Any, param: np.ndarray) -> np.ndarray:
    arr = np.asarray(value)
    if arr.shape != param.shape:
        raise ValueError(f"load_state_dict: {key!r} has shape {arr.shape} but its parameter has shape {param.shape}")
    if arr.dtype.kind not in "fiu":
        raise ValueError(f"load_state_dict: {key!r} has dtype {arr.dtype}, expected a float array")
    return arr.astype(param.dtype, copy=True)
