"""(c) MLP 2-16-16-1 (tanh)、100 点、全バッチの平均二乗誤差、SGD の 1 ステップ: 小さなネットでの手間を見る。"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .common import SEED, copy_params, tinygrad_mlp, torch_mlp, xavier_params

TITLE = "(c) MLP 2-16-16-1 tanh, 100 points, full-batch MSE, SGD: one step"
IMPLS = ("numpy", "tinygrad_jp", "torch")
SIZES = [2, 16, 16, 1]
POINTS = 100
LR = 0.1


def data() -> tuple[np.ndarray, np.ndarray]:
    """入力 (100, 2) は [-2, 2] の一様乱数、目標 (100, 1) は sin(x₁) cos(x₂)。float32。"""
    rng = np.random.default_rng(SEED + 2)
    X = rng.uniform(-2, 2, size=(POINTS, 2)).astype(np.float32)
    Y = (np.sin(X[:, :1]) * np.cos(X[:, 1:])).astype(np.float32)
    return X, Y


def make(impl: str) -> Callable[[], object]:
    """1 ステップ (順伝播・逆伝播・更新) を行い、そのステップの損失を返す関数。"""
    build = {"numpy": _numpy, "tinygrad_jp": _tinygrad, "torch": _torch}[impl]
    return build(copy_params(xavier_params(SIZES)), *data())


def _numpy(params, X, Y):
    last = len(params) - 1

    def step():
        inputs, outs = [], []
        h = X
        for k, (W, b) in enumerate(params):
            inputs.append(h)
            h = h @ W + b
            if k < last:
                h = np.tanh(h)
            outs.append(h)
        diff = h - Y
        loss = (diff * diff).mean()
        dz = diff * (2.0 / diff.size)
        grads = []
        for k in reversed(range(len(params))):
            if k < last:
                dz = dz * (1 - outs[k] * outs[k])  # tanh'(z) = 1 - tanh(z)^2
            grads.append((inputs[k].T @ dz, dz.sum(axis=0)))
            dz = dz @ params[k][0].T
        for (W, b), (dW, db) in zip(params, reversed(grads)):
            W -= LR * dW
            b -= LR * db
        return loss

    return step


def _tinygrad(params, X, Y):
    from tinygrad_jp import F, Tensor, optim

    model = tinygrad_mlp(SIZES, "tanh", params)
    opt = optim.SGD(model.parameters(), lr=LR)
    x, y = Tensor(X), Tensor(Y)
    mse = F.mse_loss

    def step():
        opt.zero_grad()
        loss = mse(model(x), y)
        loss.backward()
        opt.step()
        return loss.data

    return step


def _torch(params, X, Y):
    import torch

    model = torch_mlp(params, "tanh")
    opt = torch.optim.SGD(model.parameters(), lr=LR)
    x, y = torch.from_numpy(X), torch.from_numpy(Y)
    mse = torch.nn.functional.mse_loss

    def step():
        opt.zero_grad(set_to_none=True)
        loss = mse(model(x), y)
        loss.backward()
        opt.step()
        return loss

    return step
