"""章の実験を 1 つずつ実行するデモ。``tinygrad-jp demo NAME`` と ``python demos/NAME.py`` から呼ばれる。

各デモのモジュールは ``run(out_dir, show=False, **options) -> list[Path]`` を持ち、図を PNG で
書き出してそのパスを返し、数値を標準出力に表示する。``small=True`` を渡すと小さな設定で数秒以内に終わる
(テスト用)。
"""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

# name -> (module, one-line description shown by --help), in the chapter's order.
DEMOS: dict[str, tuple[str, str]] = {
    "activations": ("activations", "7 つの活性化関数と導関数 (式の df を f の数値微分で検算) の図、速度を測った比較表"),
    "vanishing_gradient": ("vanishing_gradient", "10 層シグモイドの勾配消失と、深いネット 7 設定の勾配・飽和・学習"),
    "weight_init": ("weight_init", "初期化 (std 1, 0.01, Xavier, He) ごとの各層の活性化の分布"),
    "optimizers": ("optimizers", "SGD・Momentum・AdaGrad・RMSprop・Adam の軌跡と、MLP での損失"),
    "lr_schedule": ("lr_schedule", "学習率スケジューラの学習率の推移と、ウォームアップ + cosine の効果"),
    "train_mlp": ("train_mlp", "推奨設定 (ReLU, He, Adam 0.001) の MLP で spiral と moons を学習"),
    "backprop_steps": ("backprop_steps",
                       "小さなネットワークのグラフの図と、逆伝播を 1 ノードずつ表示 (上流の勾配・局所微分・送る勾配)"),
    "graph": ("graph", "計算グラフを DOT テキストと matplotlib の図で描く"),
    "mnist": ("mnist", "本物の手書き数字で最適化手法・初期化・バッチ正規化を比べる (要 tinygrad-jp download mnist)"),
}

# What --interactive says when there is no terminal to press Enter in (a pipe, a notebook's "!" command).
NO_TERMINAL = ("--interactive waits for Enter between steps, but stdin is not a terminal; "
               "run it in a terminal, or without --interactive to print every step at once")


def all_names() -> list[str]:
    """``demo all`` で実行するデモ: mnist はデータがキャッシュにあるときだけ含める。"""
    from .. import datasets

    return [name for name in DEMOS if name != "mnist" or datasets.is_cached("mnist")]


def load(name: str) -> ModuleType:
    """デモ ``name`` のモジュールを読み込む。知らない名前なら一覧つきの ValueError。"""
    if name not in DEMOS:
        raise ValueError(f"unknown demo {name!r}; available demos: {', '.join(DEMOS)} (or 'all')")
    return importlib.import_module(f"{__name__}.{DEMOS[name][0]}")


def run(name: str, out_dir: str | Path = "figures", show: bool = False, **options: Any) -> list[Path]:
    """デモ ``name`` を実行し、書き出した図のパスを返す (``out_dir`` がなければ作る)。"""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    return list(load(name).run(out, show=show, **options))


def script_main(name: str, argv: list[str] | None = None) -> list[Path]:
    """``python demos/NAME.py [--out DIR] [--show] [--interactive]`` の共通の入口。書き出したパスを表示して返す。"""
    parser = argparse.ArgumentParser(prog=f"demos/{name}.py", description=DEMOS[name][1])
    parser.add_argument("--out", default="figures", help="図を書き出すフォルダ (なければ作る。既定: figures)")
    parser.add_argument("--show", action="store_true", help="図をウィンドウでも表示する")
    if name == "backprop_steps":
        parser.add_argument("--interactive", action="store_true", help="1 ステップごとに Enter を待つ")
    args = parser.parse_args(argv)
    if getattr(args, "interactive", False) and not sys.stdin.isatty():
        parser.error(NO_TERMINAL)
    options = {"interactive": True} if getattr(args, "interactive", False) else {}
    paths = run(name, args.out, show=args.show, **options)
    for path in paths:
        print(path)
    return paths
