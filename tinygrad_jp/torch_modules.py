"""PyTorch にない 2 つの層: β つきの Swish と残差接続。``to_torch`` が使う (PyTorch が必要)。

このモジュールは ``tinygrad_jp.interop`` が必要になったときにだけ読み込む (``import tinygrad_jp`` は
PyTorch を読み込まない)。モジュールの階層に置いてあるので、これらを含むモデルも ``torch.save`` できる。
"""

from __future__ import annotations

import torch


class Swish(torch.nn.Module):
    """Swish(x) = x σ(βx)。β = 1 なら ``torch.nn.SiLU`` と同じなので、``to_torch`` はそちらを使う。"""

    def __init__(self, beta: float = 1.0):
        super().__init__()
        self.beta = float(beta)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(self.beta * x)

    def extra_repr(self) -> str:
        return f"beta={self.beta}"


class Residual(torch.nn.Module):
    """y = x + block(x) (``tinygrad_jp.nn.Residual`` と同じ)。"""

    def __init__(self, block: torch.nn.Module):
        super().__init__()
        self.block = block

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.block(x)
        if out.shape != x.shape:
            raise ValueError(
                f"Residual: the block must keep the shape of its input, got {tuple(x.shape)} -> {tuple(out.shape)}"
            )
        return x + out
