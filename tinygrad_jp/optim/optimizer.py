"""Optimizer: パラメータ更新の基底クラス。

使い方は 2 通り:

* PyTorch 流: ``opt = Adam(model.parameters())`` として、毎ステップ ``opt.zero_grad()`` →
  ``loss.backward()`` → ``opt.step()``。``p.data`` をその場で書き換える。
* 第3章流: ``opt = Adam(learning_rate=0.1)`` と params なしで作り、
  ``opt.update(params, grads)`` に numpy 配列の辞書を渡す。``params`` の配列をその場で書き換える。
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import numpy as np

from ..tensor import Tensor


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


def _check_number(name: str, value: Any, ok, rule: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__} {value!r}")
    v = float(value)
    # NaN fails every comparison, so it is rejected here too.
    if not ok(v):
        raise ValueError(f"{rule}, got {name}={value!r}")
    return v


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


class Optimizer:
    """最適化手法の基底クラス。

    サブクラスが決めるもの:

    * ``hyperparameters``: lr 以外のハイパーパラメータの属性名 (state_dict に入る)。
    * ``state_names``: パラメータごとに持つ状態配列の名前 (0 で初期化される)。
    * ``n_scratch``: 1 回の更新で使う作業用配列の数 (パラメータごとに一度だけ確保する)。
    * ``update_one(w, g, state, scratch, lr)``: 配列 ``w`` を勾配 ``g`` でその場で更新する。
      ``state["step"]`` はこの更新を含めた回数 t。
    """

    _default_lr: float = 0.01
    hyperparameters: tuple[str, ...] = ()
    state_names: tuple[str, ...] = ()
    n_scratch: int = 1
    # False where weight decay is applied to the weights directly instead of through the gradient (AdamW).
    _l2_decay: bool = True
    weight_decay: float = 0.0

    def __init__(self, params: Iterable[Tensor] | None, lr: float, learning_rate: float | None) -> None:
        if learning_rate is not None:
            if lr != self._default_lr:
                raise TypeError(f"give lr or learning_rate (the chapter's name), not both: lr={lr}, "
                                f"learning_rate={learning_rate}")
            lr = learning_rate
        self.lr = check_lr(lr)
        self.params: list[Tensor] | None = None if params is None else _as_param_list(params)
        self.state: dict[int, dict[str, Any]] = {}
        self._scratch: dict[int, list[np.ndarray]] = {}
        self._dict_state: dict[Any, dict[str, Any]] = {}
        self._dict_scratch: dict[Any, list[np.ndarray]] = {}

    # ------------------------------------------------------------------ the chapter's name for lr
    @property
    def learning_rate(self) -> float:
        """``lr`` の別名 (第3章のクラスの属性名)。"""
        return self.lr

    @learning_rate.setter
    def learning_rate(self, value: float) -> None:
        self.lr = value

    # ------------------------------------------------------------------ PyTorch style
    def _require_params(self, what: str) -> list[Tensor]:
        if self.params is None:
            raise RuntimeError(
                f"{what}() needs parameters: build the optimizer as {type(self).__name__}(model.parameters(), ...); "
                "an optimizer built without params is used through update(params, grads)"
            )
        return self.params

    def zero_grad(self) -> None:
        """すべてのパラメータの勾配を None にする。"""
        for p in self._require_params("zero_grad"):
            p.grad = None

    def step(self) -> None:
        """各パラメータの ``.grad`` で ``.data`` をその場で 1 回更新する (grad が None のものは飛ばす)。"""
        params = self._require_params("step")
        lr = float(self.lr)
        states, scratches, update_one = self.state, self._scratch, self.update_one
        plain = not (self.weight_decay and self._l2_decay)
        for i, p in enumerate(params):
            g = p.grad
            if g is None:
                continue
            w = p.data
            if g.shape != w.shape:
                raise ValueError(f"parameter {i}: grad has shape {g.shape} but the parameter has shape {w.shape}")
            state = states.get(i)
            if state is not None and plain:  # the usual step, without _apply's set-up and decay
                state["step"] += 1
                update_one(w, g, state, scratches[i], lr)
            else:
                self._apply(w, g, i, states, scratches, lr)

    # ------------------------------------------------------------------ chapter style
    def update(self, params: dict[Any, np.ndarray], grads: dict[Any, np.ndarray]) -> None:
        """第3章の ``update(params, grads)``: 辞書の各配列 ``params[key]`` を ``grads[key]`` でその場で更新する。"""
        lr = float(self.lr)
        for key in params.keys():
            w = params[key]
            if key not in grads:
                raise KeyError(f"grads has no entry for parameter {key!r} (grads has {list(grads)})")
            if not isinstance(w, np.ndarray) or w.dtype.kind != "f":
                got = f"{type(w).__name__} of dtype {w.dtype}" if isinstance(w, np.ndarray) else type(w).__name__
                raise TypeError(f"params[{key!r}] must be a floating-point ndarray (updated in place), got {got}")
            g = np.asarray(grads[key])
            if g.shape != w.shape:
                raise ValueError(f"grads[{key!r}] has shape {g.shape} but params[{key!r}] has shape {w.shape}")
            self._apply(w, g, key, self._dict_state, self._dict_scratch, lr)

    # ------------------------------------------------------------------ shared machinery
    def _apply(self, w: np.ndarray, g: np.ndarray, key: Any, states: dict, scratches: dict, lr: float) -> None:
        state = states.get(key)
        if state is None:
            state = {"step": 0}
            for name in self.state_names:
                state[name] = np.zeros_like(w)
            states[key] = state
            # One extra buffer holds g + weight_decay * w, so p.grad itself is never modified.
            scratches[key] = [np.empty_like(w) for _ in range(self.n_scratch + 1)]
        scratch = scratches[key]
        if self.weight_decay and self._l2_decay:
            np.multiply(w, self.weight_decay, out=scratch[-1])
            scratch[-1] += g
            g = scratch[-1]
        state["step"] += 1
        self.update_one(w, g, state, scratch, lr)

    def update_one(self, w: np.ndarray, g: np.ndarray, state: dict[str, Any], scratch: list[np.ndarray],
                   lr: float) -> None:
        raise NotImplementedError(f"{type(self).__name__} must define update_one()")

    # ------------------------------------------------------------------ state
    def _hyper_values(self) -> dict[str, float]:
        return {"lr": float(self.lr), **{name: float(getattr(self, name)) for name in self.hyperparameters}}

    def state_dict(self) -> dict[str, Any]:
        """ハイパーパラメータと、パラメータごとの状態 (``"0.step"``, ``"0.m"`` のような平たい名前) のコピー。

        値は数値か numpy 配列だけなので、``tg.save`` でそのまま ``.npz`` に保存できる。
        ``step()`` の状態だけを含む (``update(params, grads)`` で使った状態は含まない)。
        """
        out: dict[str, Any] = self._hyper_values()
        for i, state in sorted(self.state.items()):
            out[f"{i}.step"] = int(state["step"])
            for name in self.state_names:
                out[f"{i}.{name}"] = state[name].copy()
        return out

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """``state_dict`` を読み込む。すべて先に検査し、食い違えば何も変えずに ValueError を送出する。"""
        params = self._require_params("load_state_dict")
        hyper = self._hyper_values()
        for name in hyper:
            if name not in state_dict:
                raise ValueError(f"load_state_dict: missing hyperparameter {name!r} for {type(self).__name__}")
        new_hyper = {name: self._validated(name, _scalar(state_dict[name], name)) for name in hyper}
        per_param: dict[int, dict[str, Any]] = {}
        for key, value in state_dict.items():
            if key in hyper:
                continue
            index, _, name = key.partition(".")
            if not index.isdigit() or name not in ("step", *self.state_names):
                raise ValueError(f"load_state_dict: unexpected entry {key!r} for {type(self).__name__} "
                                 f"(expected hyperparameters {list(hyper)} and 'i.step', "
                                 + ", ".join(f"'i.{b}'" for b in self.state_names) + ")")
            i = int(index)
            if i >= len(params):
                raise ValueError(f"load_state_dict: entry {key!r} names parameter {i}, "
                                 f"but the optimizer has {len(params)} parameters")
            per_param.setdefault(i, {})[name] = value
        for i, entries in per_param.items():
            for name in ("step", *self.state_names):
                if name not in entries:
                    raise ValueError(f"load_state_dict: missing entry '{i}.{name}'")
            step = _scalar(entries["step"], f"{i}.step")
            if step != int(step) or step < 0:
                raise ValueError(f"load_state_dict: '{i}.step' must be a non-negative integer, got {step}")
            entries["step"] = int(step)
            shape, dtype = params[i].data.shape, params[i].data.dtype
            for name in self.state_names:
                arr = np.asarray(entries[name])
                if arr.shape != shape:
                    raise ValueError(f"load_state_dict: '{i}.{name}' has shape {arr.shape} "
                                     f"but parameter {i} has shape {shape}")
                if arr.dtype.kind not in "fiu":
                    raise ValueError(f"load_state_dict: '{i}.{name}' has dtype {arr.dtype}, expected a float array")
                entries[name] = arr.astype(dtype, copy=True)
        for name, value in new_hyper.items():
            setattr(self, name, value)
        self.state = {}
        self._scratch = {}
        for i, entries in sorted(per_param.items()):
            self.state[i] = entries
            self._scratch[i] = [np.empty_like(params[i].data) for _ in range(self.n_scratch + 1)]

    def _validated(self, name: str, value: float) -> float:
        """Check a loaded hyperparameter with the same rule as the constructor."""
        if name == "lr":
            return check_lr(value)
        if name == "eps":
            return check_positive(name, value)
        if name == "weight_decay":
            return check_nonnegative(name, value)
        if name == "decay_rate":
            return check_unit(name, value, closed=True)
        return check_unit(name, value)

    # ------------------------------------------------------------------ display
    def __repr__(self) -> str:
        fields = ", ".join(f"{k}={v:g}" for k, v in self._hyper_values().items())
        return f"{type(self).__name__}({fields})"


def _scalar(value: Any, name: str) -> float:
    arr = np.asarray(value)
    if arr.size != 1 or arr.dtype.kind not in "fiu":
        raise ValueError(f"load_state_dict: {name!r} must be a single number, got {value!r}")
    v = float(arr.reshape(()))
    if not math.isfinite(v):
        raise ValueError(f"load_state_dict: {name!r} must be finite, got {v}")
    return v
