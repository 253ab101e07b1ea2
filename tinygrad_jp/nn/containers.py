"""Sequential: 層を順に適用する入れ物。"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from ..layer import Layer


class Sequential(Layer):
    """層を並べた順に適用する: ``Sequential(Linear(2, 16), ReLU(), Linear(16, 1))``。

    添字 (``model[0]``、スライスは新しい Sequential)、``len``、繰り返し、``append`` が使える。
    パラメータの名前は位置と属性名をつないだもの (``0.W``, ``2.b``)。
    """

    def __init__(self, *layers: Layer):
        self._layers: list[Layer] = []
        for layer in layers:
            self.append(layer)

    def append(self, layer: Layer) -> Sequential:
        """末尾に層を加える (自分を返すので続けて書ける)。"""
        if isinstance(layer, type) and issubclass(layer, Layer):
            raise TypeError(
                f"Sequential: the layer at position {len(self._layers)} is the class {layer.__name__}, "
                f"not a layer: write {layer.__name__}() to make one"
            )
        if not isinstance(layer, Layer):
            raise TypeError(
                f"Sequential: the layer at position {len(self._layers)} must be a Layer "
                f"(Linear, ReLU(), ...), got {type(layer).__name__}"
            )
        self._layers.append(layer)
        return self

    def forward(self, x: Any) -> Any:
        for i, layer in enumerate(self._layers):
            try:
                x = layer(x)
            except ValueError as e:
                if type(e) is not ValueError:
                    raise
                # Say where in the model it failed: two layers can have the same repr.
                raise ValueError(f"{type(self).__name__}[{i}] ({type(layer).__name__}): {e}") from e
        return x

    def __getitem__(self, index: int | slice) -> Any:
        if isinstance(index, slice):
            return Sequential(*self._layers[index])
        return self._layers[index]

    def __len__(self) -> int:
        return len(self._layers)

    def __iter__(self) -> Iterator[Layer]:
        return iter(self._layers)
