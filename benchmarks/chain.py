"""(d) 10 万段の鎖 ``y = y*1.0001 + 0.0`` を作って逆伝播する: グラフ 1 節点あたりの時間とメモリを見る。"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

TITLE = "(d) chain y = y*1.0001 + 0.0 x 100,000, build + backward"
IMPLS = ("numpy", "tinygrad_jp", "torch")
LENGTH = 100_000
FACTOR = 1.0001


def make(impl: str, length: int | None = None) -> Callable[[], float]:
    """長さ ``length`` (既定は LENGTH) の鎖を作って逆伝播し、dy/dx (= 1.0001^length) を返す関数。"""
    return {"numpy": _numpy, "tinygrad_jp": _tinygrad, "torch": _torch}[impl](length or LENGTH)


def _numpy(length):
    x = np.float32(1.0)

    def step():
        # Forward keeps what each node's backward needs, as a hand-written tape would.
        tape = []
        y = x
        for _ in range(length):
            tape.append(y)
            y = y * np.float32(FACTOR) + np.float32(0.0)
        g = np.float32(1.0)
        for _ in reversed(tape):
            g = g * np.float32(FACTOR)
        return float(g)

    return step


def _tinygrad(length):
    from tinygrad_jp import Tensor

    return _autograd_chain(Tensor(1.0, requires_grad=True), length)


def _torch(length):
    import torch

    return _autograd_chain(torch.tensor(1.0, requires_grad=True), length)


def _autograd_chain(x, length):
    """The same user code for both frameworks: build the chain from x, backpropagate, read x.grad."""

    def step():
        x.grad = None
        y = x
        for _ in range(length):
            y = y * FACTOR + 0.0
        y.backward()
        return float(x.grad)

    return step
