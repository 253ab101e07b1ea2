"""(b) MLP 784-100-100-100-100-10 (ReLU)、バッチ 128、float32、softmax 交差エントロピー、SGD の 1 ステップ。

同じ初期値・同じデータで 4 通りに書く: tinygrad_jp、教科書どおりの numpy、
速さを詰めた numpy (一時配列を作らず、確保済みの配列にその場で書く)、PyTorch。
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .common import SEED, CheckError, copy_params, he_params, tinygrad_mlp, torch_mlp

TITLE = "(b) MLP 784-100-100-100-100-10 ReLU, batch 128, float32, softmax CE, SGD: one step"
IMPLS = ("numpy", "numpy_tuned", "tinygrad_jp", "torch")
SIZES = [784, 100, 100, 100, 100, 10]
BATCH = 128
N_BATCHES = 8
LR = 0.1


def data() -> tuple[np.ndarray, np.ndarray]:
    """N_BATCHES 個のミニバッチ: 入力 (N_BATCHES, BATCH, 784) float32 と正解 (N_BATCHES, BATCH) int64。"""
    rng = np.random.default_rng(SEED + 1)
    X = rng.standard_normal((N_BATCHES, BATCH, SIZES[0])).astype(np.float32)
    T = rng.integers(0, SIZES[-1], size=(N_BATCHES, BATCH))
    return X, T


def make(impl: str) -> Callable[[], object]:
    """1 ステップ (順伝播・逆伝播・更新) を行い、そのステップの損失を返す関数。"""
    cls = {"numpy": NumpyMLP, "numpy_tuned": TunedNumpyMLP, "tinygrad_jp": TinygradMLP, "torch": TorchMLP}[impl]
    return cls(copy_params(he_params(SIZES)), *data()).step


# ---------------------------------------------------------------------- numpy, textbook style
class NumpyMLP:
    """教科書どおりの numpy: 層ごとに順伝播の値を覚え、逆伝播で勾配を作り、W -= lr * dW で更新する。"""

    def __init__(self, params, X, T):
        self.params = params
        self.X, self.T = X, T
        self.i = 0

    def step(self):
        x, t = self.X[self.i % N_BATCHES], self.T[self.i % N_BATCHES]
        self.i += 1
        n = len(x)
        inputs, pre = [], []
        h = x
        for k, (W, b) in enumerate(self.params):
            inputs.append(h)
            z = h @ W + b
            pre.append(z)
            h = np.maximum(0, z) if k < len(self.params) - 1 else z
        # softmax: subtracting the row maximum keeps exp from overflowing
        e = np.exp(h - h.max(axis=1, keepdims=True))
        p = e / e.sum(axis=1, keepdims=True)
        loss = -np.log(p[np.arange(n), t]).mean()
        dz = p.copy()
        dz[np.arange(n), t] -= 1
        dz /= n
        grads = []
        for k in reversed(range(len(self.params))):
            W, _ = self.params[k]
            grads.append((inputs[k].T @ dz, dz.sum(axis=0)))
            dx = dz @ W.T
            if k > 0:
                dz = dx * (pre[k - 1] > 0)
        for (W, b), (dW, db) in zip(self.params, reversed(grads)):
            W -= LR * dW
            b -= LR * db
        return loss


# ---------------------------------------------------------------------- numpy, tuned
class TunedNumpyMLP:
    """速さを詰めた numpy: 配列はすべて最初に確保し、matmul も更新も ``out=`` でその場に書く。

    ReLU の出力 a で微分 [a > 0] を作り、入力層の dx は計算しない。
    """

    def __init__(self, params, X, T):
        self.params = params
        self.X, self.T = X, T
        self.i = 0
        f32 = np.float32
        self.acts = [np.empty((BATCH, W.shape[1]), f32) for W, _ in params]
        self.dacts = [np.empty((BATCH, W.shape[0]), f32) for W, _ in params]
        self.masks = [np.empty((BATCH, W.shape[1]), bool) for W, _ in params]
        self.dWs = [np.empty_like(W) for W, _ in params]
        self.dbs = [np.empty_like(b) for _, b in params]
        self.rowmax = np.empty((BATCH, 1), f32)
        self.rowsum = np.empty((BATCH, 1), f32)
        self.rows = np.arange(BATCH)

    def step(self):
        x, t = self.X[self.i % N_BATCHES], self.T[self.i % N_BATCHES]
        self.i += 1
        last = len(self.params) - 1
        h = x
        for k, (W, b) in enumerate(self.params):
            a = self.acts[k]
            np.matmul(h, W, out=a)
            a += b
            if k < last:
                np.maximum(a, 0, out=a)
            h = a
        z = self.acts[last]
        np.max(z, axis=1, keepdims=True, out=self.rowmax)
        z -= self.rowmax
        picked = z[self.rows, t]
        np.exp(z, out=z)
        np.sum(z, axis=1, keepdims=True, out=self.rowsum)
        loss = np.log(self.rowsum).mean() - picked.mean()
        z /= self.rowsum
        z[self.rows, t] -= 1
        z *= 1.0 / BATCH
        dz = z
        for k in range(last, -1, -1):
            W, b = self.params[k]
            np.matmul((self.acts[k - 1] if k else x).T, dz, out=self.dWs[k])
            np.sum(dz, axis=0, out=self.dbs[k])
            if k:
                da = self.dacts[k]
                np.matmul(dz, W.T, out=da)
                np.greater(self.acts[k - 1], 0, out=self.masks[k - 1])
                da *= self.masks[k - 1]
                dz = da
        for (W, b), dW, db in zip(self.params, self.dWs, self.dbs):
            dW *= -LR
            W += dW
            db *= -LR
            b += db
        return loss


# ---------------------------------------------------------------------- tinygrad_jp
class TinygradMLP:
    """tinygrad_jp のふつうの書き方: nn.MLP、F.softmax_cross_entropy、optim.SGD。"""

    def __init__(self, params, X, T):
        from tinygrad_jp import F, Tensor, optim

        self.model = tinygrad_mlp(SIZES, "relu", params)
        self.opt = optim.SGD(self.model.parameters(), lr=LR)
        self.cross_entropy = F.softmax_cross_entropy
        self.X = [Tensor(x) for x in X]
        self.T = list(T)
        self.i = 0

    def loss(self, k: int):
        return self.cross_entropy(self.model(self.X[k]), self.T[k])

    def step(self):
        k = self.i % N_BATCHES
        self.i += 1
        self.opt.zero_grad()
        loss = self.loss(k)
        loss.backward()
        self.opt.step()
        return loss.data


# ---------------------------------------------------------------------- PyTorch
class TorchMLP:
    """PyTorch のふつうの書き方: nn.Sequential、F.cross_entropy、optim.SGD。"""

    def __init__(self, params, X, T):
        import torch

        self.model = torch_mlp(params, "relu")
        self.opt = torch.optim.SGD(self.model.parameters(), lr=LR)
        self.X = [torch.from_numpy(x) for x in X]
        self.T = [torch.from_numpy(t) for t in T]
        self.cross_entropy = torch.nn.functional.cross_entropy
        self.i = 0

    def step(self):
        k = self.i % N_BATCHES
        self.i += 1
        self.opt.zero_grad(set_to_none=True)
        loss = self.cross_entropy(self.model(self.X[k]), self.T[k])
        loss.backward()
        self.opt.step()
        return loss


# ---------------------------------------------------------------------- checks
def check_float32() -> None:
    """tinygrad_jp の学習が float32 のまま進むことを確かめる: 順伝播の全節点、各演算の逆伝播が返す勾配、
    パラメータの .grad と更新後の .data。float64 が 1 つでも現れたら CheckError。"""
    from tinygrad_jp.autograd import toposort

    model = TinygradMLP(copy_params(he_params(SIZES)), *data())
    loss = model.loss(0)
    for node in toposort([loss]):
        if node.data.dtype != np.float32:
            raise CheckError(f"(b) forward: {node.grad_fn or 'a leaf'} produced {node.data.dtype}, expected float32")
        fn = node.grad_fn
        if fn is None:
            continue
        parents = fn.parents
        gs = fn.backward(np.ones_like(node.data), node.data, *[p.data for p in parents])
        for p, g in zip(parents, gs if isinstance(gs, tuple) else (gs,)):
            if g is not None and np.asarray(g).dtype != np.float32:
                raise CheckError(f"(b) backward of {fn.name} returned a {np.asarray(g).dtype} gradient "
                                 f"for an input of shape {p.shape}, expected float32")
    model.step()
    for i, p in enumerate(model.model.parameters()):
        if p.grad is None or p.grad.dtype != np.float32 or p.data.dtype != np.float32:
            raise CheckError(f"(b) parameter {i}: data {p.data.dtype}, grad "
                             f"{None if p.grad is None else p.grad.dtype}; expected float32 for both")
