"""gradcheck: 逆伝播の勾配を、float64 の中心差分による数値微分と比べる。"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from .autograd import grad
from .tensor import Tensor


class GradcheckError(AssertionError):
    """解析的な勾配と数値微分が食い違ったときに送出される。"""


def _as_input(x: Any) -> Tensor:
    data = x.data if isinstance(x, Tensor) else np.asarray(x)
    wants = x.requires_grad if isinstance(x, Tensor) else np.asarray(x).dtype.kind == "f"
    if data.dtype.kind != "f":
        return Tensor(data)
    return Tensor(data.astype(np.float64), requires_grad=wants)


def gradcheck(fn: Callable[..., Tensor], *inputs: Any, eps: float = 1e-6, atol: float = 1e-5,
              rtol: float = 1e-3, seed: int = 0) -> bool:
    """``fn(*inputs)`` の勾配を中心差分 (f(x+ε) - f(x-ε)) / 2ε と比べる。

    入力は float64 にコピーしてから使う。出力がスカラーでなければ、固定した乱数の重み v で
    Σ v·fn(x) の勾配を比べる。一致すれば True、食い違えば入力と最悪の要素を示して
    ``GradcheckError`` を送出する。
    """
    xs = [_as_input(x) for x in inputs]
    checked = [i for i, x in enumerate(xs) if x.requires_grad]
    if not checked:
        raise ValueError("gradcheck: no floating-point input to check (give Tensors with requires_grad=True)")
    out = fn(*xs)
    if not isinstance(out, Tensor):
        raise TypeError(f"gradcheck: fn must return a Tensor, got {type(out).__name__}")
    v = np.random.default_rng(seed).uniform(0.5, 1.5, size=out.shape) if out.size > 1 else np.ones(out.shape)

    def scalar(*args: Tensor) -> float:
        return float(np.sum(np.asarray(fn(*args).data, dtype=np.float64) * v))

    if not out.requires_grad:
        analytic = [np.zeros(xs[i].shape) for i in checked]
    else:
        gs = grad(out, [xs[i] for i in checked], grad_outputs=v.astype(out.dtype), allow_unused=True)
        analytic = [np.zeros(xs[i].shape) if g is None else g.data for i, g in zip(checked, gs)]

    for i, ana in zip(checked, analytic):
        x = xs[i].data
        num = np.zeros(x.shape)
        for idx in np.ndindex(x.shape):
            orig = x[idx]
            x[idx] = orig + eps
            hi = scalar(*xs)
            x[idx] = orig - eps
            lo = scalar(*xs)
            x[idx] = orig
            num[idx] = (hi - lo) / (2 * eps)
        err = np.abs(ana - num) - (atol + rtol * np.abs(num))
        if err.size and (np.max(err) > 0 or not np.all(np.isfinite(ana))):
            worst = np.unravel_index(np.nanargmax(np.where(np.isfinite(err), err, np.inf)), x.shape)
            raise GradcheckError(
                f"gradcheck failed for input {i} (shape {x.shape}) at index {tuple(int(j) for j in worst)}: "
                f"analytic gradient {ana[worst]!r} but numerical {num[worst]!r} "
                f"(allowed difference {atol + rtol * abs(num[worst]):.3g})"
            )
    return True
