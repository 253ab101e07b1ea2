"""残差接続 (Residual connection): 勾配の近道を作り、深いネットワークの勾配消失を和らげる。"""

from __future__ import annotations

from typing import Any

from ..layer import Layer
from ..tensor import Tensor


class Residual(Layer):
    """y = x + block(x)。逆伝播では ∂L/∂x = ∂L/∂y + (block を通った勾配) となり、勾配が必ず届く。"""

    def __init__(self, block: Layer):
        if not isinstance(block, Layer):
            raise TypeError(f"Residual: block must be a Layer, got {type(block).__name__}")
        self.block = block

    def forward(self, x: Any) -> Tensor:
        out = self.block(x)
        if out.shape != x.shape:
            raise ValueError(
                f"Residual: the block must keep the shape of its input, got {x.shape} -> {out.shape}"
            )
        return out + x
