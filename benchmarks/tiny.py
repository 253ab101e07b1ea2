"""(a) 10 要素の ``relu(x*w+b).sum()`` とその逆伝播: 演算 1 回あたりの Python の手間を見る。"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .common import SEED

TITLE = "(a) relu(x*w+b).sum() + backward, 10 elements"
IMPLS = ("numpy", "tinygrad_jp", "torch")
N = 10


def data() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(SEED)
    x, w, b = rng.standard_normal((3, N)).astype(np.float32)
    return x, w, b


def make(impl: str) -> Callable[[], tuple]:
    """1 回の順伝播と逆伝播を行い (損失, dx, dw, db) を返す関数。"""
    return {"numpy": _numpy, "tinygrad_jp": _tinygrad, "torch": _torch}[impl](*data())


def _numpy(x, w, b):
    def step():
        z = x * w + b
        y = np.maximum(z, 0)
        loss = y.sum()
        dz = (z > 0).astype(z.dtype)  # dL/dy = 1, relu'(z) = [z > 0]
        return loss, dz * w, dz * x, dz

    return step


def _tinygrad(x, w, b):
    from tinygrad_jp import Tensor

    xt, wt, bt = (Tensor(a, requires_grad=True) for a in (x, w, b))

    def step():
        xt.grad = wt.grad = bt.grad = None
        loss = (xt * wt + bt).relu().sum()
        loss.backward()
        return loss.data, xt.grad, wt.grad, bt.grad

    return step


def _torch(x, w, b):
    import torch

    xt, wt, bt = (torch.tensor(a, requires_grad=True) for a in (x, w, b))

    def step():
        xt.grad = wt.grad = bt.grad = None
        loss = torch.relu(xt * wt + bt).sum()
        loss.backward()
        return loss, xt.grad, wt.grad, bt.grad

    return step
