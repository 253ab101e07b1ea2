"""Jupyter・Colab で動いているかどうかと、1 セルに 1 回だけの表示。IPython は読み込まない (探すだけ)。"""

from __future__ import annotations

import sys
from typing import Any


def kernel_shell() -> Any | None:
    """Jupyter のカーネル (Jupyter Notebook・JupyterLab・Colab) の中なら IPython のシェル、それ以外は None。

    IPython がまだ読み込まれていなければカーネルの中ではないので、``sys.modules`` を見るだけで
    IPython を読み込みはしない (端末の IPython はカーネルを持たないので None)。
    """
    ipython = sys.modules.get("IPython")
    if ipython is None:
        return None
    shell = ipython.get_ipython()
    return shell if getattr(shell, "kernel", None) is not None else None


def has_widgets() -> bool:
    """ipywidgets が入っていれば True (読み込まずに調べる)。"""
    import importlib.util

    return importlib.util.find_spec("ipywidgets") is not None


class DisplayOnce:
    """呼び出しが表示し (``show=True`` など)、同時にセルの値にもなる結果を、1 つのセルで 1 回だけ表示する。

    サブクラスは ``_mimebundle()`` (MIME タイプ → データ) を書く。IPython はセルの値を表示するとき
    ``_ipython_display_`` を他のどの表示方法よりも先に呼ぶので、ここで「このセルで表示済みか」を見られる。
    """

    _displayed_in: int | None = None

    def _mimebundle(self) -> dict[str, Any]:
        raise NotImplementedError

    def display_now(self) -> None:
        """ノートブックのセルの出力に今すぐ表示する (このセルの値として再び表示はされない)。"""
        shell = kernel_shell()
        if shell is None:
            return
        from IPython.display import publish_display_data

        publish_display_data(self._mimebundle())
        self._displayed_in = shell.execution_count

    def _ipython_display_(self) -> None:
        shell = kernel_shell()
        # The execution count is the same for every output of one cell, so a call that already
        # displayed this object in the running cell is not followed by a second copy.
        if shell is not None and self._displayed_in == shell.execution_count:
            return
        from IPython.display import publish_display_data

        publish_display_data(self._mimebundle())
