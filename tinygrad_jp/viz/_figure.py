"""Figures shared by every drawing function: headless by default, saved and shown on request."""

from __future__ import annotations

from pathlib import Path

from matplotlib.figure import Figure

from .fonts import use_japanese_font

PathLike = str | Path


def new_figure(figsize: tuple[float, float], show: bool, layout: str | None = "constrained") -> Figure:
    """A Figure with the Japanese font set up; made through pyplot only when it is to be shown.

    A bare Figure needs no display and is freed with its last reference, so drawing many in a loop
    neither piles up open figures nor needs a GUI backend.
    """
    use_japanese_font()
    if show:
        import matplotlib.pyplot as plt

        return plt.figure(figsize=figsize, layout=layout)
    return Figure(figsize=figsize, layout=layout)


def finish(fig: Figure, path: PathLike | None, show: bool) -> Figure:
    """Save to `path` (creating its folder) and open the window when asked; return the figure."""
    if path is not None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=100)
    if show:
        import matplotlib.pyplot as plt

        plt.show()
    return fig
