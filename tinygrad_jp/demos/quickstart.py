"""クイックスタート: Tensor と backward だけで 2-4-1 のネットワークに XOR を学習させる。"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tinygrad_jp import Tensor


def train_xor(steps: int = 1000, lr: float = 2.0, seed: int = 0) -> list[float]:
    """XOR を勾配降下法で学習し、損失の履歴を返す。"""
    rng = np.random.default_rng(seed)
    x = Tensor([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
    t = Tensor([[0.0], [1.0], [1.0], [0.0]])
    w1 = Tensor(rng.normal(0, 1, (2, 4)).astype(np.float32), requires_grad=True)
    b1 = Tensor(np.zeros(4, dtype=np.float32), requires_grad=True)
    w2 = Tensor(rng.normal(0, 1, (4, 1)).astype(np.float32), requires_grad=True)
    b2 = Tensor(np.zeros(1, dtype=np.float32), requires_grad=True)
    params = [w1, b1, w2, b2]
    losses = []
    for _ in range(steps):
        y = ((x @ w1 + b1).tanh() @ w2 + b2).sigmoid()
        loss = ((y - t) ** 2).mean()
        for p in params:
            p.grad = None
        loss.backward()
        for p in params:
            p.data -= lr * p.grad
        losses.append(loss.item())
    return losses


def run(out_dir: Path, show: bool = False) -> list[Path]:
    losses = train_xor()
    for step in (0, 200, 400, 600, 800, len(losses) - 1):
        print(f"ステップ {step:4d}: 損失 = {losses[step]:.5f}")
    return []
