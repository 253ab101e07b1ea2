"""Layer: パラメータを持つ部品 (層・モデル) の基底クラス。PyTorch の nn.Module に相当する。"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import numpy as np

from .tensor import Tensor

if TYPE_CHECKING:
    from .nn.summary import Summary


class Layer:
    """層の基底クラス。サブクラスは ``forward`` を書き、パラメータを属性に持つ。

    属性に置いた ``requires_grad=True`` の Tensor がパラメータ、Layer が子の層になる。
    あとで ``requires_grad_(False)`` で凍結してもパラメータのまま (PyTorch の nn.Parameter と同じ):
    ``parameters()`` にも state_dict にも入り、最適化手法は勾配が None なので更新しない。
    ``register_buffer`` で登録した配列 (BatchNorm の移動平均など) は state_dict に入るが
    パラメータではない。探索は属性を定義した順 (決定的) に行う。
    """

    training: bool = True

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.forward(*args, **kwargs)

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError(f"{type(self).__name__} must define forward()")

    # ------------------------------------------------------------------ tree walking
    def _children(self) -> Iterator[tuple[str, Any]]:
        for key, value in vars(self).items():
            if isinstance(value, (Layer, Tensor)):
                yield key, value
            elif isinstance(value, (list, tuple)) and value and all(isinstance(v, Layer) for v in value):
                for i, v in enumerate(value):
                    yield f"{key}.{i}" if key != "_layers" else str(i), v

    def named_children(self) -> Iterator[tuple[str, Layer]]:
        for key, value in self._children():
            if isinstance(value, Layer):
                yield key, value

    def named_modules(self, prefix: str = "") -> Iterator[tuple[str, Layer]]:
        """自分とすべての子孫の層を (ドット区切りの名前, 層) で返す。"""
        yield prefix, self
        for key, child in self.named_children():
            yield from child.named_modules(f"{prefix}.{key}" if prefix else key)

    def modules(self) -> Iterator[Layer]:
        for _, m in self.named_modules():
            yield m

    def __setattr__(self, name: str, value: Any) -> None:
        # The name of a Tensor that requires grad when assigned is remembered, so that the Tensor stays a
        # parameter after requires_grad_(False): a frozen layer is still saved, loaded and counted.
        if isinstance(value, Tensor) and value.requires_grad and value.is_leaf:
            names = self.__dict__.setdefault("_parameter_names", [])
            if name not in names:
                names.append(name)
        object.__setattr__(self, name, value)

    def named_parameters(self, prefix: str = "") -> Iterator[tuple[str, Tensor]]:
        """パラメータ (凍結したものも含む) を ("0.W" のようなドット区切りの名前, Tensor) で、定義順に返す。"""
        seen: set[int] = set()
        for mod_name, mod in self.named_modules(prefix):
            registered = vars(mod).get("_parameter_names", ())
            for key, value in vars(mod).items():
                if not isinstance(value, Tensor) or id(value) in seen:
                    continue
                if key in registered or (value.requires_grad and value.is_leaf):
                    seen.add(id(value))
                    yield (f"{mod_name}.{key}" if mod_name else key), value

    def parameters(self) -> list[Tensor]:
        """パラメータのリスト (最適化手法に渡す)。凍結したもの (勾配が None のまま) も含む。"""
        return [p for _, p in self.named_parameters()]

    def register_buffer(self, name: str, value: np.ndarray) -> None:
        """学習しないが保存すべき状態 (移動平均など) を登録する。"""
        if "_buffer_names" not in vars(self):
            self._buffer_names: list[str] = []
        if name not in self._buffer_names:
            self._buffer_names.append(name)
        setattr(self, name, value)

    def named_buffers(self) -> Iterator[tuple[str, np.ndarray]]:
        for mod_name, mod in self.named_modules():
            for key in vars(mod).get("_buffer_names", []):
                yield (f"{mod_name}.{key}" if mod_name else key), getattr(mod, key)

    # ------------------------------------------------------------------ modes and grads
    def zero_grad(self) -> None:
        """すべてのパラメータの勾配を消す。"""
        for p in self.parameters():
            p.grad = None

    def train(self, mode: bool = True) -> Layer:
        """学習モード (Dropout が働き、BatchNorm がバッチの統計を使う) にする。"""
        for m in self.modules():
            m.training = mode
        return self

    def eval(self) -> Layer:
        """評価モードにする。"""
        return self.train(False)

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict[str, np.ndarray]:
        """すべてのパラメータ (凍結したものも) とバッファの、名前 → 配列のコピー。"""
        state = {name: p.data.copy() for name, p in self.named_parameters()}
        state.update({name: np.array(b, copy=True) for name, b in self.named_buffers()})
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """state_dict を読み込む。名前・形・dtype をすべて先に検査し、食い違えば何も変えずに例外を送出する。

        凍結したものも含むすべてのパラメータとバッファを、その場で書き換える (配列は同じオブジェクトのまま)。
        """
        own = dict(self.named_parameters())
        buffers = dict(self.named_buffers())
        expected = list(own) + list(buffers)
        for name in expected:
            if name not in state:
                raise ValueError(f"load_state_dict: missing entry {name!r} (the model has {expected})")
        for name in state:
            if name not in own and name not in buffers:
                raise ValueError(f"load_state_dict: unexpected entry {name!r}; the model has {expected}")
        arrays = {}
        for name in expected:
            target = own[name].data if name in own else np.asarray(buffers[name])
            value = np.asarray(state[name])
            if value.shape != target.shape:
                raise ValueError(
                    f"load_state_dict: {name!r} has shape {value.shape} in the state but {target.shape} in the model"
                )
            if value.dtype.kind not in "fiub" or not np.can_cast(value.dtype, target.dtype, casting="same_kind"):
                raise ValueError(
                    f"load_state_dict: {name!r} has dtype {value.dtype} in the state but {target.dtype} in the model"
                )
            arrays[name] = value
        for name, value in arrays.items():
            if name in own:
                own[name].data[...] = value
                own[name]._mark_changed()  # a graph built before the load must not backward through new values
            else:
                np.asarray(buffers[name])[...] = value

    # ------------------------------------------------------------------ display
    def extra_repr(self) -> str:
        return ""

    def __repr__(self) -> str:
        children = list(self.named_children())
        head = f"{type(self).__name__}({self.extra_repr()}"
        if not children:
            return head + ")"
        lines = [head]
        for key, child in children:
            body = repr(child).replace("\n", "\n  ")
            lines.append(f"  ({key}): {body}")
        return "\n".join(lines) + "\n)"

    def _repr_html_(self) -> str:
        """Jupyter・Colab での表示: 層とパラメータ数の表 (``summary()`` の表と同じ、出力の形なし)。"""
        from .nn.summary import summarize  # the table lives with the layers that fill it

        return summarize(self)._repr_html_()

    def summary(self, input_shape: Any = None) -> Summary:
        """層・出力の形・パラメータ数の表を表示して返す (Keras の ``summary()``、torchinfo と同じ考え)。

        ``input_shape`` (バッチを含む入力の形、例えば ``(32, 2)``) を渡すと、ゼロの入力で 1 回
        順伝播して (評価モード・勾配なし、層は何も変わらない) 各層の出力の形を表に入れる。
        端末では ``print`` し、ノートブックでは HTML の表をセルに 1 回だけ表示する。戻り値は
        ``Summary`` (``rows``、``total_params``、``str()`` でテキストの表)。
        """
        from .nn.summary import summarize

        table = summarize(self, input_shape)
        table.show()
        return table
