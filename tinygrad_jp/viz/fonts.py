"""図の日本語フォント: pip で入る matplotlib-fontja の IPAex ゴシックを matplotlib に登録する。

システムに日本語フォントがない環境でも、ラベルが豆腐 (□) にならず、警告も出ない。
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import matplotlib
from matplotlib import font_manager

_FONT_FILE = "ipaexg.ttf"
# Glyphs the Japanese font lacks fall back to matplotlib's bundled font instead of a box.
_FALLBACK = "DejaVu Sans"
_family: str | None = None


def font_path() -> Path:
    """matplotlib-fontja に同梱された日本語フォント (.ttf) のパスを返す。"""
    # find_spec locates the package without importing it: its import would change rcParams by itself.
    spec = importlib.util.find_spec("matplotlib_fontja")
    if spec is not None and spec.submodule_search_locations:
        for folder in spec.submodule_search_locations:
            candidate = Path(folder) / "fonts" / _FONT_FILE
            if candidate.is_file():
                return candidate
    try:
        import matplotlib_fontja
    except ImportError:
        raise RuntimeError(
            "Japanese labels need the font shipped by matplotlib-fontja, which is not installed: "
            "pip install matplotlib-fontja"
        ) from None
    return Path(matplotlib_fontja.get_font_ttf_path())


def use_japanese_font() -> str:
    """日本語フォントを登録し、rcParams をそれを使う設定にする。フォントのファミリー名を返す。

    何度呼んでもよい (フォントの登録は最初の 1 回だけ)。``axes.unicode_minus=False`` にするのは、
    軸の目盛りのマイナス記号を ASCII の '-' で描いて、どのフォントでも表示されるようにするため。
    """
    global _family
    if _family is None:
        path = font_path()
        font_manager.fontManager.addfont(str(path))
        _family = font_manager.FontProperties(fname=str(path)).get_name()
    matplotlib.rcParams["font.family"] = [_family, _FALLBACK]
    matplotlib.rcParams["axes.unicode_minus"] = False
    return _family
