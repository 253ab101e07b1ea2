"""Stepping through backprop outside a notebook: the text stepper, and the same walk as an animated GIF."""

import io
import itertools
import re

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest
from PIL import Image

import tinygrad_jp as tg
from tinygrad_jp import Tensor, viz
from tinygrad_jp.demos.backprop_steps import reference_gradients, tiny_network


def small_graph():
    """L = Σ σ(w·x): 4 steps (L, the sigmoid, the product, the leaf w)."""
    x = Tensor([1.0, -2.0], name="x")
    w = Tensor([0.5, 0.25], requires_grad=True, name="w")
    y = (w * x).sigmoid()
    y.name = "y"
    loss = y.sum()
    loss.name = "L"
    return loss, w


def printed_indices(text):
    return [int(i) for i in re.findall(r"^\[(\d+)\]", text, re.M)]


def test_outside_a_notebook_the_stepper_prints_every_step_and_fills_grad_like_backward(capsys):
    loss, t = tiny_network()
    assert tg.inspect.stepper(loss) is None
    n = len(list(tg.inspect.backprop_steps(tiny_network()[0])))
    assert printed_indices(capsys.readouterr().out) == list(range(n))
    for name, grad in reference_gradients().items():
        assert np.array_equal(t[name].grad, grad), name


class _Terminal(io.StringIO):
    def isatty(self):
        return True


def test_on_a_terminal_the_stepper_waits_for_enter_between_steps(capsys, monkeypatch):
    prompts = []
    monkeypatch.setattr("sys.stdin", _Terminal())
    monkeypatch.setattr("builtins.input", lambda prompt="": prompts.append(prompt) or "")
    loss, _ = small_graph()
    tg.inspect.stepper(loss)
    assert len(prompts) == len(printed_indices(capsys.readouterr().out)) - 1 == 3


def test_the_gif_has_one_frame_per_step_and_backprop_runs_to_the_end(tmp_path):
    loss, w = small_graph()
    path = viz.animate_backprop(loss, tmp_path / "walk" / "backprop.gif", fps=2)
    with Image.open(path) as gif:
        assert gif.format == "GIF" and gif.n_frames == 4
        assert gif.info["duration"] == 500
        frames = []
        for i in range(gif.n_frames):
            gif.seek(i)
            frames.append(np.asarray(gif.convert("RGB")))
    assert all(not np.array_equal(a, b) for a, b in itertools.pairwise(frames))  # the frame moves on each step
    reference, w_ref = small_graph()
    reference.backward()
    assert np.array_equal(w.grad, w_ref.grad)
    with pytest.raises(RuntimeError, match="retain_graph"):
        viz.draw_graph(loss)  # released, as backward() would


def test_the_gif_can_keep_the_graph_and_rejects_a_bad_rate(tmp_path):
    loss, _ = small_graph()
    with pytest.raises(ValueError, match="fps"):
        viz.animate_backprop(loss, tmp_path / "a.gif", fps=0)
    viz.animate_backprop(loss, tmp_path / "b.gif", retain_graph=True)
    viz.draw_graph(loss)

