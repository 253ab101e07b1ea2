"""逆伝播を 1 ステップずつ目で見る: ノートブックのステッパー (ipywidgets) と、アニメーション GIF。

どちらも ``inspect.backprop_steps`` と同じ歩み (エンジンそのものが 1 ノードずつ進む) を、今のノードを
赤い枠で囲んだ計算グラフと、そのノードの上流の勾配・局所微分・送る勾配 (``inspect.format_step`` の
文) といっしょに見せる。ノートブックでは ``tg.inspect.stepper(loss)`` から使う。
"""

from __future__ import annotations

import html
import io
from pathlib import Path

import numpy as np
from matplotlib.animation import PillowWriter
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.image import imsave

from ..autograd import toposort
from ..inspect import BackpropStep, backprop_steps, format_step
from ..tensor import Tensor
from ..textwidth import wrap
from ._figure import DPI, PathLike, new_figure
from .graph import draw_graph


def _graph_pixels(loss: Tensor, tensor: Tensor) -> np.ndarray:
    """The drawing of `loss`'s graph with `tensor` framed in red, as RGBA pixels."""
    fig = draw_graph(loss, highlight=tensor)
    fig.set_dpi(DPI)
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    return np.array(canvas.buffer_rgba())  # a copy: the canvas goes with the figure


def _png(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    imsave(buffer, pixels, format="png")
    return buffer.getvalue()


def _title(step: BackpropStep, n_steps: int) -> str:
    # Numbered from 0 like format_step's "[5]" and the stepper's slider.
    return f"ステップ {step.index} (0〜{n_steps - 1}): {step.label}" + ("" if step.op is None else f" ({step.op})")


def _details_html(step: BackpropStep, n_steps: int) -> str:
    title = _title(step, n_steps)
    return f"<b>{html.escape(title)}</b><pre style=\"line-height:1.4\">{html.escape(format_step(step))}</pre>"


class BackpropStepper:
    """ノートブックで逆伝播を行き来するステッパー。セルの最後に置くか ``display()`` すると表示される。

    「前へ」「次へ」のボタンとスライダーでステップを選ぶと、計算グラフの今のノード (と、それを作った
    演算) が赤い枠で囲まれ、その下に上流の勾配・局所微分・送る勾配が出る。``go(i)``・``next()``・
    ``prev()`` でコードからも動かせる。

    作るときに ``backprop_steps`` を最後まで進める (葉の ``.grad`` は ``backward()`` と同じになる)。
    各ステップの図は初めて見せるときに描くので、グラフは ``retain_graph=True`` と同じく残す。
    """

    def __init__(self, loss: Tensor):
        import ipywidgets as widgets  # the notebook extra: inspect.stepper checks that it is installed

        self.loss = loss
        self.steps = list(backprop_steps(loss, retain_graph=True))
        self.index = 0
        self._pngs: dict[int, bytes] = {}
        self.prev_button = widgets.Button(description="前へ", icon="arrow-left")
        self.next_button = widgets.Button(description="次へ", icon="arrow-right")
        self.slider = widgets.IntSlider(value=0, min=0, max=len(self.steps) - 1, description="ステップ",
                                        continuous_update=False)
        self.graph = widgets.Image(format="png", layout=widgets.Layout(max_width="100%", height="auto"))
        self.details = widgets.HTML()
        self.prev_button.on_click(lambda _: self.prev())
        self.next_button.on_click(lambda _: self.next())
        self.slider.observe(lambda change: self._show(change["new"]), names="value")
        self.widget = widgets.VBox([
            widgets.HBox([self.prev_button, self.next_button, self.slider]),
            self.graph,
            self.details,
        ])
        self._show(0)

    @property
    def step(self) -> BackpropStep:
        """今のステップ。"""
        return self.steps[self.index]

    def go(self, index: int) -> None:
        """ステップ ``index`` (0 から) を見せる。範囲の外なら最初か最後のステップ。"""
        index = min(max(int(index), 0), len(self.steps) - 1)
        if self.slider.value != index:
            self.slider.value = index  # its observer shows the step
        else:
            self._show(index)

    def next(self) -> None:
        """次のステップへ。"""
        self.go(self.index + 1)

    def prev(self) -> None:
        """前のステップへ。"""
        self.go(self.index - 1)

    def _show(self, index: int) -> None:
        self.index = index
        step = self.steps[index]
        if index not in self._pngs:
            self._pngs[index] = _png(_graph_pixels(self.loss, step.tensor))
        self.graph.value = self._pngs[index]
        self.details.value = _details_html(step, len(self.steps))
        self.prev_button.disabled = index == 0
        self.next_button.disabled = index == len(self.steps) - 1

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.widget)

    def __repr__(self) -> str:
        return f"BackpropStepper(step {self.index + 1} of {len(self.steps)}: {self.step.label})"


def animate_backprop(loss: Tensor, path: PathLike, *, fps: float = 1.0, retain_graph: bool = False) -> Path:
    """``loss`` からの逆伝播を 1 ステップ 1 コマのアニメーション GIF にして ``path`` に書き、そのパスを返す。

    各コマは、今のノードを赤い枠で囲んだ計算グラフと、その下の上流の勾配・局所微分・送る勾配
    (ノートブックのステッパーと同じ)。matplotlib の Pillow ライターで書く。``fps`` は 1 秒あたりの
    コマ数。``print_backprop`` と同じく逆伝播を最後まで行うので、葉の ``.grad`` は ``backward()`` と
    同じ値になり、グラフは ``retain_graph=False`` なら解放される (図はその前にすべて描いておく)。
    """
    if fps <= 0:
        raise ValueError(f"fps must be positive, got {fps}")
    drawings = {id(t): _graph_pixels(loss, t) for t in toposort([loss])}
    steps = list(backprop_steps(loss, retain_graph=retain_graph))
    height, width = next(iter(drawings.values())).shape[:2]
    # About 7.5 pixels per half-width column at 11 pt: long lines are wrapped to stay inside the frame.
    texts = [wrap(format_step(s), int(width / 7.5) - 2) for s in steps]
    text_lines = max(t.count("\n") + 1 for t in texts) + 1
    text_height = 24 * text_lines + 20
    fig = new_figure((width / DPI, (height + text_height) / DPI), show=False, layout=None)
    image = fig.figimage(np.full((height, width, 4), 255, dtype=np.uint8), xo=0, yo=text_height)
    title = fig.text(0.01, (text_height - 12) / (height + text_height), "", fontsize=13, va="top")
    body = fig.text(0.01, (text_height - 40) / (height + text_height), "", fontsize=11, va="top", linespacing=1.6)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = PillowWriter(fps=fps)
    with writer.saving(fig, str(path), dpi=DPI):
        for step, text in zip(steps, texts):
            image.set_data(drawings[id(step.tensor)])
            title.set_text(_title(step, len(steps)))
            body.set_text(text)
            writer.grab_frame()
    return path

