"""層ごとの統計 (勾配消失の実験用): 活性化の平均・標準偏差、重みと出力の勾配の大きさ。

1 行で::

    stats = tg.probes.layer_stats(model, x, y, loss_fn)
    print(stats)                                 # 層ごとの表
    stats.column("weight_grad_norm")             # プロット用の配列 (入力側の層から順に)

自分の学習ループの中で取るなら ``record`` を使う::

    with tg.probes.record(model) as rec:
        loss = loss_fn(model(x), y)
        loss.backward()
    print(rec.stats)

行は ``Linear`` 層ごとに 1 つ (モデルの中の順)。層の番号 ``layer`` は Linear 層を入力側から
1, 2, ... と数えたもので、``viz.plot_layer_gradients`` の横軸「層の深さ」と同じ番号になる
(``name`` は ``Sequential`` の中の位置 "0", "2", ... で、番号とは別物)。
「層の出力」は Linear の直後に呼ばれた活性化関数の出力 (間の BatchNorm・Dropout は飛ばす)。
後ろに活性化関数がなければ (最後の層など) Linear の出力そのもの。
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, fields
from typing import Any

import numpy as np

from .activations import Activation, ReLU, Sigmoid, Tanh
from .layer import Layer
from .nn.linear import Linear
from .tensor import Tensor
from .textwidth import format_table


@dataclass
class LayerStats:
    """1 つの Linear 層の統計。

    * ``layer``: 層の番号 (Linear 層を入力側から 1, 2, ... と数える。図の「層の深さ」と同じ)。
    * ``name``: モデルの中での名前 (``Sequential`` の位置 "0", "2", ... や "1.block.0")。
    * ``act_mean``, ``act_std``: 層の出力 (活性化関数の後) の平均と標準偏差。
    * ``saturation``: 層の出力のうち勾配をほとんど通さない割合 (``saturation`` 関数を参照。
      Sigmoid・tanh・ReLU の後でだけ測り、それ以外では nan)。
    * ``weight_grad_norm``: ‖∂L/∂W‖ (フロベニウスノルム)。``weight_grad_abs_mean``: mean |∂L/∂W|。
    * ``out_grad_norm``: 層の出力に関する勾配のノルム ‖∂L/∂a‖。
    """

    layer: int
    name: str
    in_features: int
    out_features: int
    act_mean: float = math.nan
    act_std: float = math.nan
    saturation: float = math.nan
    weight_grad_norm: float = math.nan
    weight_grad_abs_mean: float = math.nan
    out_grad_norm: float = math.nan


_COLUMNS = [f.name for f in fields(LayerStats)]


class ProbeStats(list):
    """``LayerStats`` のリスト (入力側の層から順)。``column(name)`` で 1 列を配列として取り出せる。"""

    def column(self, name: str) -> np.ndarray:
        """列 ``name`` ("act_std", "weight_grad_norm" など) の値を層の順に並べた配列。"""
        if name not in _COLUMNS:
            raise ValueError(f"unknown column {name!r}; expected one of {_COLUMNS}")
        return np.array([getattr(row, name) for row in self])

    def __str__(self) -> str:
        rows = [["layer", "module", "shape", "act mean", "act std", "saturated", "|dL/dW|", "mean|dL/dW|",
                 "|dL/da|"]]
        for r in self:
            saturated = "-" if math.isnan(r.saturation) else f"{r.saturation:.0%}"
            rows.append([str(r.layer), r.name, f"{r.in_features}x{r.out_features}", f"{r.act_mean:.3g}",
                         f"{r.act_std:.3g}", saturated, f"{r.weight_grad_norm:.3g}",
                         f"{r.weight_grad_abs_mean:.3g}", f"{r.out_grad_norm:.3g}"])
        return format_table(rows, align="<<>>>>>>>")


def saturation(act: Layer, out: np.ndarray, margin: float = 0.01) -> float:
    """活性化関数 ``act`` の出力 ``out`` (形 (バッチ, ユニット)) のうち、勾配をほとんど通さない割合。

    * Sigmoid: 出力が 0 か 1 から ``margin`` 以内 (0.01 なら σ' = y(1 - y) < 0.0099) の要素の割合。
    * tanh: 出力が ±1 から ``margin`` 以内 (0.01 なら tanh' = 1 - y² < 0.0199) の要素の割合。
    * ReLU: バッチのどの入力に対しても 0 を出すユニット (死んだ ReLU: 勾配が 1 つも通らない) の割合。

    ほかの活性化関数では定義しないので nan を返す。
    """
    out = np.asarray(out, dtype=np.float64)
    m = margin
    if isinstance(act, Sigmoid):
        return float(np.mean((out < m) | (out > 1 - m)))
    if isinstance(act, Tanh):
        return float(np.mean(np.abs(out) > 1 - m))
    if isinstance(act, ReLU):
        units = out.reshape(out.shape[0], -1) if out.ndim > 1 else out.reshape(1, -1)
        return float(np.mean(np.all(units <= 0, axis=0)))
    return math.nan


class _Tap(Layer):
    """Stands in for an activation while recording: calls it, then reports its output."""

    def __init__(self, layer: Layer, report: Callable[[Layer, Any], None]):
        self.layer = layer
        self._report = report

    def forward(self, x: Any) -> Any:
        out = self.layer(x)
        self._report(self.layer, out)
        return out


def _activation_slots(model: Layer) -> Iterator[tuple[Any, Any, Activation]]:
    """Every place (holder, key) in the model tree that holds an activation layer."""
    for module in model.modules():
        for key, value in list(vars(module).items()):
            if isinstance(value, Activation):
                yield module, key, value
            elif isinstance(value, list):
                for i, v in enumerate(value):
                    if isinstance(v, Activation):
                        yield value, i, v


def _put(holder: Any, key: Any, value: Layer) -> None:
    if isinstance(holder, list):
        holder[key] = value
    else:
        setattr(holder, key, value)


class record:
    """``with`` の中で行われた順伝播・逆伝播から、Linear 層ごとの統計を集める。

    ``with`` を抜けたときに重みの ``.grad`` を読むので、中で ``backward()`` を呼ぶこと
    (前の勾配が残っていれば足し合わされた値になる: 先に ``zero_grad()`` しておく)。
    順伝播を何度もしたときは、最後の順伝播の値が残る。テンソルは保持しない (統計の数値だけ)。
    """

    def __init__(self, model: Layer):
        if not isinstance(model, Layer):
            raise TypeError(f"record: expected a Layer, got {type(model).__name__}")
        self.model = model
        self.stats = ProbeStats()
        self._linears: list[Linear] = []
        self._swapped: list[tuple[Any, Any, Activation]] = []
        self._current: LayerStats | None = None
        self._tokens: dict[int, object] = {}

    def __enter__(self) -> record:
        rows: dict[int, LayerStats] = {}
        for name, module in self.model.named_modules():
            if isinstance(module, Linear) and id(module) not in rows:
                rows[id(module)] = LayerStats(len(rows) + 1, name or "Linear", module.in_features,
                                              module.out_features)
                self._linears.append(module)
                # Layer.__call__ looks forward up on the instance, so an instance attribute intercepts it.
                module.forward = self._tapped_linear(module, rows[id(module)])
        self.stats = ProbeStats(rows.values())
        for holder, key, act in list(_activation_slots(self.model)):
            _put(holder, key, _Tap(act, self._on_activation))
            self._swapped.append((holder, key, act))
        return self

    def __exit__(self, *exc: Any) -> None:
        for holder, key, act in reversed(self._swapped):
            _put(holder, key, act)
        self._swapped.clear()
        for module, row in zip(self._linears, self.stats):
            del module.forward
            if module.W.grad is not None:
                g = module.W.grad.astype(np.float64)
                row.weight_grad_norm = float(np.sqrt(np.sum(g * g)))
                row.weight_grad_abs_mean = float(np.mean(np.abs(g)))
        self._linears.clear()
        self._current = None

    # ------------------------------------------------------------------ reports from the taps
    def _tapped_linear(self, module: Linear, row: LayerStats) -> Callable[[Any], Any]:
        def forward(x: Any) -> Any:
            out = Linear.forward(module, x)
            self._current = row
            self._observe(row, out)
            return out

        return forward

    def _on_activation(self, act: Layer, out: Any) -> None:
        if self._current is not None:
            self._observe(self._current, out)
            self._current.saturation = saturation(act, out.data if isinstance(out, Tensor) else out)
            self._current = None

    def _observe(self, row: LayerStats, out: Any) -> None:
        data = out.data if isinstance(out, Tensor) else np.asarray(out)
        row.act_mean = float(np.mean(data, dtype=np.float64))
        row.act_std = float(np.std(data, dtype=np.float64))
        row.saturation = math.nan
        row.out_grad_norm = math.nan
        if isinstance(out, Tensor) and out.requires_grad:
            # Each forward pass gets its own token, so a hook from an older pass cannot overwrite the newest.
            token = self._tokens[id(row)] = object()

            def hook(g: np.ndarray) -> None:
                if self._tokens.get(id(row)) is token:
                    g64 = np.asarray(g, dtype=np.float64)
                    row.out_grad_norm = float(np.sqrt(np.sum(g64 * g64)))

            out.register_hook(hook)


def layer_stats(model: Layer, x: Any, y: Any, loss_fn: Callable[[Any, Any], Tensor]) -> ProbeStats:
    """``loss_fn(model(x), y)`` の順伝播と逆伝播を 1 回行い、Linear 層ごとの統計を返す。

    モデルは変えない: 各パラメータの ``.grad`` は呼ぶ前の値に戻す (BatchNorm の移動平均は
    学習モードなら通常どおり更新される)。
    """
    params = model.parameters()
    saved = [p.grad for p in params]
    for p in params:
        p.grad = None
    try:
        with record(model) as rec:
            loss = loss_fn(model(x), y)
            if not isinstance(loss, Tensor) or loss.size != 1:
                raise ValueError(f"layer_stats: loss_fn must return a scalar Tensor, got {loss!r:.80}")
            loss.backward()
    finally:
        for p, g in zip(params, saved):
            p.grad = g
    return rec.stats
