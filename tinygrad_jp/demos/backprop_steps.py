"""逆伝播を 1 ノードずつ: 入力 2・隠れ 2・出力 1 の小さなネットワークで ``inspect.backprop_steps`` を動かす。

各ステップで、ノードの演算、上流から来た勾配 ∂L/∂y、局所微分 ∂y/∂x、各入力へ送る勾配を表示する。
最後に、求まった勾配が ``loss.backward()`` の勾配と一致することを確かめて表示する。
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from .. import inspect
from ..tensor import Tensor
from ..viz import draw_graph
from . import NO_TERMINAL

PARAMS = ("W1", "b1", "W2", "b2")


def tiny_network(seed: int = 0) -> tuple[Tensor, dict[str, Tensor]]:
    """L = ½(y − t)²、y = σ(x W1 + b1) W2 + b2 を作り、(L, 名前 → テンソル) を返す。すべてのテンソルに名前がつく。"""
    rng = np.random.default_rng(seed)
    t: dict[str, Tensor] = {
        "x": Tensor([[1.0, 0.5]], name="x"),
        "W1": Tensor(rng.normal(0.0, 1.0, (2, 2)).round(2), requires_grad=True, name="W1"),
        "b1": Tensor([0.1, -0.1], requires_grad=True, name="b1"),
        "W2": Tensor(rng.normal(0.0, 1.0, (2, 1)).round(2), requires_grad=True, name="W2"),
        "b2": Tensor([0.2], requires_grad=True, name="b2"),
        "t": Tensor([[1.0]], name="t"),
    }
    steps = [
        ("xW1", lambda: t["x"] @ t["W1"]),
        ("z1", lambda: t["xW1"] + t["b1"]),
        ("h", lambda: t["z1"].sigmoid()),
        ("hW2", lambda: t["h"] @ t["W2"]),
        ("y", lambda: t["hW2"] + t["b2"]),
        ("e", lambda: t["y"] - t["t"]),
        ("e2", lambda: t["e"] ** 2),
        ("l", lambda: t["e2"] * 0.5),
        ("L", lambda: t["l"].sum()),
    ]
    for name, make in steps:
        t[name] = make()
        t[name].name = name
    return t["L"], t


def reference_gradients(seed: int = 0) -> dict[str, np.ndarray]:
    """同じネットワークで ``loss.backward()`` を呼んだときのパラメータの勾配。"""
    loss, t = tiny_network(seed)
    loss.backward()
    return {name: t[name].grad.copy() for name in PARAMS}


def step_through(seed: int = 0, interactive: bool = False, wait: Callable[[str], object] | None = None,
                 ) -> tuple[list[inspect.BackpropStep], dict[str, np.ndarray]]:
    """``backprop_steps`` でステップごとに表示しながら逆伝播し、(ステップ, パラメータの勾配) を返す。

    ``interactive=True`` ならステップの間で ``wait`` (None なら Enter を待つ ``input``) を呼ぶ。
    """
    # input is looked up at call time, so a replaced builtins.input (a notebook's, a test's) is the one used.
    wait = input if wait is None else wait
    loss, t = tiny_network(seed)
    steps = []
    for step in inspect.backprop_steps(loss):
        if interactive and steps:
            try:
                wait("(Enter で次のステップへ) ")
            except EOFError:
                raise EOFError(NO_TERMINAL) from None
        print(inspect.format_step(step), end="\n\n")
        steps.append(step)
    return steps, {name: t[name].grad.copy() for name in PARAMS}


def run(out_dir: Path, show: bool = False, *, interactive: bool = False, seed: int = 0,
        wait: Callable[[str], object] | None = None) -> list[Path]:
    """計算グラフの図を書き出し、逆伝播を 1 ステップずつ表示し、backward() の勾配と比べる。"""
    loss, _ = tiny_network(seed)
    path = Path(out_dir) / "backprop_steps_graph.png"
    draw_graph(loss, path=path, show=show)
    print("=== 逆伝播を 1 ノードずつ (出力 L から入力へ) ===")
    _, stepped = step_through(seed, interactive, wait)
    expected = reference_gradients(seed)
    print("=== backprop_steps で求めた勾配と loss.backward() の勾配 ===")
    for name in PARAMS:
        same = np.array_equal(stepped[name], expected[name])
        flat = ", ".join(f"{v:.6f}" for v in stepped[name].ravel())
        print(f"∂L/∂{name} = [{flat}]  backward() と{'一致' if same else '不一致'}")
    return [path]
