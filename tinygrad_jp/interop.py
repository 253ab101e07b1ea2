"""PyTorch との橋渡し: ``to_torch(model)`` と ``from_torch(module)``。

``to_torch`` は tinygrad_jp のモデルを同じ重み・同じ出力の ``torch.nn.Module`` にし、``from_torch`` は
その逆を行う。層の対応は次のとおり (パラメータもそのまま移る)::

    tinygrad_jp                      PyTorch
    Linear(W: (in, out), b)          nn.Linear(weight: (out, in) = Wᵀ, bias = b)
    Sigmoid, Tanh, ReLU, Identity    nn.Sigmoid, nn.Tanh, nn.ReLU, nn.Identity
    LeakyReLU(alpha)                 nn.LeakyReLU(negative_slope=alpha)
    ELU(alpha)                       nn.ELU(alpha)
    Swish(beta)                      nn.SiLU (beta = 1)、それ以外は torch_modules.Swish(beta)
    GELU (tanh 近似)                 nn.GELU(approximate="tanh")
    Softplus                         nn.Softplus (beta = 1)
    Softmax(axis), LogSoftmax(axis)  nn.Softmax(dim), nn.LogSoftmax(dim)
    BatchNorm1d(n, eps, momentum)    nn.BatchNorm1d(n, eps, momentum) (γ, β と移動平均も)
    Dropout(p)                       nn.Dropout(p)
    Residual(block)                  torch_modules.Residual(block)
    Sequential, MLP                  nn.Sequential

それ以外の層 (自作の層や、組み込みの層のサブクラスも) は、その位置と型を示すエラーになる。
学習モード・評価モード (``training``) も層ごとに引き継ぐ。PyTorch はこの関数を呼んだときに初めて
読み込まれる (``pip install "tinygrad_jp[torch]"`` で入る)。
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from . import activations as A
from .layer import Layer
from .nn import MLP, BatchNorm1d, Dropout, Linear, Residual, Sequential
from .tensor import Tensor

if TYPE_CHECKING:
    import torch

__all__ = ["from_torch", "to_torch"]


def _torch():
    try:
        import torch
    except ImportError as e:
        raise ImportError(
            "tinygrad_jp.interop needs PyTorch, which is not installed: "
            "pip install torch (or pip install 'tinygrad_jp[torch]')"
        ) from e
    return torch


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _where(path: str, obj: Any) -> str:
    """How an error names a layer: its position (as in named_modules and state_dict) and its type."""
    place = f"the layer at {path!r}" if path else "the model itself"
    return f"{place} ({type(obj).__name__})"


# ---------------------------------------------------------------------- tinygrad_jp -> PyTorch
def to_torch(model: Layer) -> torch.nn.Module:
    """tinygrad_jp の層・モデルを、同じ重みで同じ出力を返す ``torch.nn.Module`` に変換する。

    ``Sequential`` (``MLP`` も) は ``torch.nn.Sequential`` になる。重みはコピーされる (変換後に
    片方を学習しても、もう片方は変わらない)。パラメータの dtype (既定は float32) もそのまま。
    対応していない層があれば、その位置 (``"2.block.1"`` のような名前) と型を示す TypeError か
    ValueError を送出する。
    """
    torch = _torch()
    if not isinstance(model, Layer):
        raise TypeError(
            f"to_torch expects a tinygrad_jp Layer (nn.Sequential, nn.Linear, ...), got {type(model).__name__}"
            + ("; to convert a PyTorch module use from_torch" if isinstance(model, torch.nn.Module) else "")
        )
    with torch.no_grad():
        return _to_torch(model, "")


def _to_torch(layer: Layer, path: str) -> torch.nn.Module:
    table = _to_torch_table()
    convert = table.get(type(layer))
    if convert is None:
        supported = ", ".join(sorted({cls.__name__ for cls in table}))
        raise TypeError(f"to_torch: {_where(path, layer)} has no PyTorch counterpart; supported layers: {supported}")
    module = convert(layer, path)
    module.training = layer.training  # this module only: its children carry their own flags
    return module


@functools.cache
def _to_torch_table() -> dict[type, Callable[[Any, str], Any]]:
    """Our layer type -> a function (layer, path) -> the PyTorch module. Exact types only: a subclass
    may compute something else, so it is not taken for its base."""
    nn = _torch().nn
    from . import torch_modules as tm

    return {
        A.Sigmoid: lambda layer, path: nn.Sigmoid(),
        A.Tanh: lambda layer, path: nn.Tanh(),
        A.ReLU: lambda layer, path: nn.ReLU(),
        A.Identity: lambda layer, path: nn.Identity(),
        A.LeakyReLU: lambda layer, path: nn.LeakyReLU(negative_slope=layer.alpha),
        A.ELU: lambda layer, path: nn.ELU(alpha=layer.alpha),
        A.Swish: lambda layer, path: nn.SiLU() if layer.beta == 1 else tm.Swish(layer.beta),
        # Ours is the tanh approximation of GELU, which PyTorch computes with approximate="tanh".
        A.GELU: lambda layer, path: nn.GELU(approximate="tanh"),
        # PyTorch returns x itself beyond x > 20, where log(1 + e^x) - x < 2.1e-9 is below float32's resolution.
        A.Softplus: lambda layer, path: nn.Softplus(),
        A.Softmax: lambda layer, path: nn.Softmax(dim=layer.axis),
        A.LogSoftmax: lambda layer, path: nn.LogSoftmax(dim=layer.axis),
        Dropout: lambda layer, path: nn.Dropout(p=layer.p),
        Linear: _linear_to_torch,
        BatchNorm1d: _batchnorm_to_torch,
        Residual: lambda layer, path: tm.Residual(_to_torch(layer.block, _join(path, "block"))),
        Sequential: _sequential_to_torch,
        MLP: _sequential_to_torch,
    }


def _parameter(t: Tensor, transpose: bool = False) -> torch.nn.Parameter:
    torch = _torch()
    data = t.data.T if transpose else t.data
    return torch.nn.Parameter(torch.tensor(np.ascontiguousarray(data)), requires_grad=t.requires_grad)


def _linear_to_torch(layer: Linear, path: str) -> torch.nn.Module:
    torch = _torch()
    # skip_init: no random draws (and no change to torch's random state) for weights about to be replaced.
    module = torch.nn.utils.skip_init(torch.nn.Linear, layer.in_features, layer.out_features,
                                      bias=layer.b is not None)
    module.weight = _parameter(layer.W, transpose=True)  # ours is (in, out), PyTorch's (out, in)
    if layer.b is not None:
        module.bias = _parameter(layer.b)
    return module


def _batchnorm_to_torch(layer: BatchNorm1d, path: str) -> torch.nn.Module:
    torch = _torch()
    # Both update running ← (1 - momentum)·running + momentum·(batch statistic), with the unbiased
    # variance of the batch, so the same momentum means the same thing.
    module = torch.nn.BatchNorm1d(layer.num_features, eps=layer.eps, momentum=layer.momentum)
    module.weight = _parameter(layer.gamma)
    module.bias = _parameter(layer.beta)
    module.running_mean = torch.tensor(np.array(layer.running_mean))
    module.running_var = torch.tensor(np.array(layer.running_var))
    return module


def _sequential_to_torch(layer: Sequential, path: str) -> torch.nn.Module:
    return _torch().nn.Sequential(*(_to_torch(child, _join(path, str(i))) for i, child in enumerate(layer)))


# ---------------------------------------------------------------------- PyTorch -> tinygrad_jp
def from_torch(module: torch.nn.Module) -> Layer:
    """``torch.nn.Module`` を、同じ重みで同じ出力を返す tinygrad_jp の層に変換する。

    ``torch.nn.Sequential`` は ``nn.Sequential`` になり、入れ子もそのまま変換する。重みはコピーされる。
    対応していない層や、こちらにない設定 (``nn.GELU()`` の厳密な erf 版、``beta`` ≠ 1 の Softplus、
    ``momentum=None`` の BatchNorm1d など) があれば、その位置と型を示す TypeError か ValueError を送出する。
    """
    torch = _torch()
    if not isinstance(module, torch.nn.Module):
        raise TypeError(
            f"from_torch expects a torch.nn.Module, got {type(module).__name__}"
            + ("; to convert a tinygrad_jp layer use to_torch" if isinstance(module, Layer) else "")
        )
    with torch.no_grad():
        return _from_torch(module, "")


def _from_torch(module: torch.nn.Module, path: str) -> Layer:
    table = _from_torch_table()
    convert = table.get(type(module))
    if convert is None:
        supported = ", ".join(sorted({cls.__name__ for cls in table}))
        raise TypeError(f"from_torch: {_where(path, module)} has no tinygrad_jp counterpart; "
                        f"supported modules: {supported}")
    layer = convert(module, path)
    layer.training = module.training
    return layer


@functools.cache
def _from_torch_table() -> dict[type, Callable[[Any, str], Layer]]:
    """PyTorch module type -> a function (module, path) -> our layer (exact types only, as in to_torch)."""
    nn = _torch().nn
    from . import torch_modules as tm

    return {
        nn.Sigmoid: lambda m, path: A.Sigmoid(),
        nn.Tanh: lambda m, path: A.Tanh(),
        nn.ReLU: lambda m, path: A.ReLU(),
        nn.Identity: lambda m, path: A.Identity(),
        nn.LeakyReLU: lambda m, path: A.LeakyReLU(m.negative_slope),
        nn.ELU: lambda m, path: A.ELU(m.alpha),
        nn.SiLU: lambda m, path: A.Swish(1.0),
        tm.Swish: lambda m, path: A.Swish(m.beta),
        nn.GELU: _gelu_from_torch,
        nn.Softplus: _softplus_from_torch,
        nn.Softmax: lambda m, path: A.Softmax(_dim(m, path)),
        nn.LogSoftmax: lambda m, path: A.LogSoftmax(_dim(m, path)),
        nn.Dropout: _dropout_from_torch,
        nn.Linear: _linear_from_torch,
        nn.BatchNorm1d: _batchnorm_from_torch,
        tm.Residual: lambda m, path: Residual(_from_torch(m.block, _join(path, "block"))),
        nn.Sequential: lambda m, path: Sequential(
            *(_from_torch(child, _join(path, name)) for name, child in m.named_children())
        ),
    }


def _unsupported(path: str, module: Any, what: str) -> ValueError:
    return ValueError(f"from_torch: {_where(path, module)} {what}")


def _gelu_from_torch(m: Any, path: str) -> Layer:
    if m.approximate != "tanh":
        raise _unsupported(path, m, f"uses approximate={m.approximate!r}; tinygrad_jp's GELU is the tanh "
                                    "approximation, so only nn.GELU(approximate='tanh') converts exactly")
    return A.GELU()


def _softplus_from_torch(m: Any, path: str) -> Layer:
    # A threshold of 20 or more changes no float32 value (see to_torch); a lower one does.
    if m.beta != 1 or m.threshold < 20:
        raise _unsupported(path, m, f"has beta={m.beta}, threshold={m.threshold}; tinygrad_jp's Softplus is "
                                    "log(1 + e^x), which is beta=1 with threshold >= 20")
    return A.Softplus()


def _dim(m: Any, path: str) -> int:
    if m.dim is None:
        raise _unsupported(path, m, "has dim=None; give the axis explicitly, e.g. dim=-1")
    return m.dim


def _dropout_from_torch(m: Any, path: str) -> Layer:
    if not 0 <= m.p < 1:
        raise _unsupported(path, m, f"has p={m.p}; tinygrad_jp's Dropout needs p in [0, 1)")
    return Dropout(m.p)


def _array(t: torch.Tensor, path: str, module: Any) -> np.ndarray:
    torch = _torch()
    t = t.detach().cpu()
    if t.dtype not in (torch.float16, torch.float32, torch.float64):
        raise _unsupported(path, module, f"holds {t.dtype} values; expected float16, float32 or float64")
    return t.numpy().copy()


def _load(target: Tensor, value: np.ndarray, requires_grad: bool) -> None:
    """Fill a freshly built parameter (no graph has used it yet) with the converted values."""
    target.data[...] = value
    target.requires_grad = requires_grad


def _linear_from_torch(m: Any, path: str) -> Layer:
    W = _array(m.weight, path, m).T  # PyTorch's weight is (out, in), ours (in, out)
    layer = Linear(m.in_features, m.out_features, bias=m.bias is not None, init="zeros", dtype=W.dtype)
    _load(layer.W, W, m.weight.requires_grad)
    if m.bias is not None:
        _load(layer.b, _array(m.bias, path, m), m.bias.requires_grad)
    return layer


def _batchnorm_from_torch(m: Any, path: str) -> Layer:
    if m.momentum is None:
        raise _unsupported(path, m, "has momentum=None (a cumulative average); tinygrad_jp's BatchNorm1d "
                                    "needs a number: running ← (1 - momentum)·running + momentum·batch")
    if m.weight is None or m.bias is None or m.running_mean is None:
        raise _unsupported(path, m, f"has affine={m.affine}, bias={m.bias is not None}, track_running_stats="
                                    f"{m.track_running_stats}; tinygrad_jp's BatchNorm1d always has γ, β and "
                                    "running statistics")
    gamma = _array(m.weight, path, m)
    layer = BatchNorm1d(m.num_features, eps=m.eps, momentum=m.momentum, dtype=gamma.dtype)
    _load(layer.gamma, gamma, m.weight.requires_grad)
    _load(layer.beta, _array(m.bias, path, m), m.bias.requires_grad)
    layer.running_mean[...] = _array(m.running_mean, path, m)
    layer.running_var[...] = _array(m.running_var, path, m)
    return layer
