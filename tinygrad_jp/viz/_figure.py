"""Figures shared by every drawing function: headless by default, saved and shown on request.

In a Jupyter kernel (Jupyter, Colab) a figure shows itself as a PNG in the cell's output, once per
cell: as the cell's last expression, or right away with ``show=True`` (and then not again as the
cell's value). This needs neither pyplot nor ``%matplotlib inline``, whatever the backend.
"""

from __future__ import annotations

import base64
import io
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure

from .._jupyter import DisplayOnce, kernel_shell
from .fonts import use_japanese_font

PathLike = str | Path

DPI = 100


class NotebookFigure(DisplayOnce, Figure):
    """matplotlib の ``Figure`` そのもの (保存も描き足しもできる)。ノートブックでは 1 セルに 1 回 PNG で表示される。"""

    def _mimebundle(self) -> dict[str, Any]:
        buffer = io.BytesIO()
        self.savefig(buffer, format="png", dpi=DPI)
        return {"image/png": base64.b64encode(buffer.getvalue()).decode("ascii"), "text/plain": repr(self)}


def new_figure(figsize: tuple[float, float], show: bool, layout: str | None = "constrained") -> NotebookFigure:
    """A Figure with the Japanese font set up; made through pyplot only when a window is to be opened.

    A bare Figure needs no display and is freed with its last reference, so drawing many in a loop
    neither piles up open figures nor needs a GUI backend. In a notebook it is never made through
    pyplot, so the inline backend does not show it a second time.
    """
    use_japanese_font()
    if show and kernel_shell() is None:
        import matplotlib.pyplot as plt

        return plt.figure(figsize=figsize, layout=layout, FigureClass=NotebookFigure)
    return NotebookFigure(figsize=figsize, layout=layout)


def finish(fig: NotebookFigure, path: PathLike | None, show: bool) -> NotebookFigure:
    """Save to `path` (creating its folder) and show it when asked (the cell's output, or a window); return it."""
    if path is not None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=DPI)
    if show:
        if kernel_shell() is not None:
            fig.display_now()
        else:
            import matplotlib.pyplot as plt

            plt.show()
    return fig
