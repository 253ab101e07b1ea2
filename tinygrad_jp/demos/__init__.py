"""章の実験を 1 つずつ実行するデモ。``tinygrad-jp demo NAME`` と ``demos/NAME.py`` から呼ばれる。

各デモのモジュールは ``run(out_dir, show=False) -> list[Path]`` を持ち、図を PNG で書き出して
そのパスを返し、数値を標準出力に表示する。
"""

from __future__ import annotations

import importlib
from pathlib import Path
from types import ModuleType

# name -> (module, one-line description shown by --help)
DEMOS: dict[str, tuple[str, str]] = {
    "quickstart": ("quickstart", "小さな 2 層ネットで XOR を学習し、損失を表示する"),
}


def load(name: str) -> ModuleType:
    """デモ ``name`` のモジュールを読み込む。知らない名前なら一覧つきの ValueError。"""
    if name not in DEMOS:
        raise ValueError(f"unknown demo {name!r}; available demos: {', '.join(DEMOS)} (or 'all')")
    return importlib.import_module(f"{__name__}.{DEMOS[name][0]}")


def run(name: str, out_dir: str | Path = "figures", show: bool = False, **options) -> list[Path]:
    """デモ ``name`` を実行し、書き出した図のパスを返す。"""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    return list(load(name).run(out, show=show, **options))
