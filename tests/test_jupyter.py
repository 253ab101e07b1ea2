"""Jupyter and Colab, through a real kernel: what a learner's cell shows.

Each figure shows exactly once (as the cell's value or with show=True) with the kernel's default
settings; tensors, layers and summaries display as HTML tables; fit shows a widget bar (text without
ipywidgets); the backprop stepper is a widget that steps (text without ipywidgets).
"""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from tinygrad_jp import viz

from kernel import kernel_env, run_cells, stream_text, with_mime

PNG = "image/png"
HTML = "text/html"
WIDGET = "application/vnd.jupyter.widget-view+json"

SETUP = """
import numpy as np
import tinygrad_jp as tg
from tinygrad_jp import F, Tensor, data, nn, optim, viz
from tinygrad_jp.demos.backprop_steps import reference_gradients, tiny_network

X, y = data.moons(40, rng=0)
model = nn.MLP([2, 8, 3], rng=0)
history = {"loss": [1.0, 0.5], "accuracy": [0.5, 0.8]}
w = Tensor([2.0, -1.0], requires_grad=True, name="w")
loss = (w * w).sum()
path = {"SGD": np.array([[1.0, 1.0], [0.5, 0.2]])}
"""

# One small call per figure function of tinygrad_jp.viz.
FIGURE_CALLS = {
    "plot_activations": 'viz.plot_activations(["relu"], np.linspace(-2, 2, 21)',
    "plot_layer_gradients": "viz.plot_layer_gradients([1.0, 0.1, 0.01]",
    "plot_layer_saturation": "viz.plot_layer_saturation([0.0, 0.2, 0.5]",
    "plot_trajectories": "viz.plot_trajectories(lambda a, b: a**2 + b**2, path",
    "plot_objective": "viz.plot_objective(lambda a, b: a**2 + b**2, path",
    "plot_activation_histograms": "viz.plot_activation_histograms([np.arange(10.0), np.arange(5.0)]",
    "plot_history": "viz.plot_history(history",
    "plot_curves": 'viz.plot_curves({"SGD": [1.0, 0.5]}',
    "plot_lr_schedules": 'viz.plot_lr_schedules({"StepLR": [0.1, 0.1, 0.01]}',
    "plot_decision_boundary": "viz.plot_decision_boundary(model, X, y, resolution=20",
    "draw_graph": "viz.draw_graph(loss",
}

# Cells after SETUP, by name: the tests below look their outputs up here.
CELLS = {
    **{f"last {name}": call + ")" for name, call in FIGURE_CALLS.items()},
    "show every figure": "\n".join(call + ", show=True)" for call in FIGURE_CALLS.values()),
    "show in a loop": "for k in range(3):\n    viz.plot_curves({'k': [k, 1.0]}, show=True)",
    "show and last": "fig = viz.plot_history(history, show=True)\nfig",
    "assigned": "fig = viz.plot_history(history)",
    "assigned then shown": "fig.savefig('history.png')\nfig",
    "saved file": "import os\nprint(os.path.getsize('history.png') > 1000)",
    "leaf tensor": "loss.backward(retain_graph=True)\nw",
    "op tensor": "w * 3",
    "sequential": "nn.Sequential(nn.Linear(2, 3), nn.ReLU())",
    "summary": "model.summary(input_shape=(5, 2))",
    "summary assigned": "table = model.summary()",
    "fit": "h = tg.train.fit(model, F.softmax_cross_entropy, optim.Adam(model.parameters()), "
           "data.DataLoader(X, y, 10, rng=0), 2)",
    "fit silent": "h = tg.train.fit(model, F.softmax_cross_entropy, optim.Adam(model.parameters()), "
                  "data.DataLoader(X, y, 10, rng=0), 2, progress=False)",
    "stepper": "net_loss, net = tiny_network()\nstepper = tg.inspect.stepper(net_loss)\nstepper",
    "stepper next": "first = stepper.graph.value\nstepper.next_button.click()\n"
                    "print(stepper.index, stepper.graph.value != first, stepper.prev_button.disabled)",
    "stepper last": "stepper.slider.value = stepper.slider.max\n"
                    "print(stepper.index == len(stepper.steps) - 1, stepper.next_button.disabled)\n"
                    "print(stepper.details.value)",
    "stepper grads": "print(all(np.array_equal(net[k].grad, g) for k, g in reference_gradients().items()))",
}


@pytest.fixture(scope="module")
def outputs(tmp_path_factory):
    """Every cell of CELLS run in order in one fresh kernel (default settings, ipywidgets installed)."""
    cwd = tmp_path_factory.mktemp("kernel")
    results = run_cells([SETUP, *CELLS.values()], cwd)
    return dict(zip(CELLS, results[1:]))


def test_every_figure_function_is_covered():
    figure_functions = {n for n in viz.__all__ if n.startswith(("plot_", "draw_"))}
    assert figure_functions == set(FIGURE_CALLS)


@pytest.mark.parametrize("name", list(FIGURE_CALLS))
def test_a_figure_as_the_cells_last_expression_shows_once(outputs, name):
    assert len(with_mime(outputs[f"last {name}"], PNG)) == 1


def test_show_true_shows_each_figure_once(outputs):
    assert len(with_mime(outputs["show every figure"], PNG)) == len(FIGURE_CALLS)
    assert len(with_mime(outputs["show in a loop"], PNG)) == 3


def test_show_true_on_the_last_line_is_not_shown_twice(outputs):
    assert len(with_mime(outputs["show and last"], PNG)) == 1


def test_a_figure_kept_in_a_variable_shows_when_asked_and_saves(outputs):
    assert outputs["assigned"] == []
    assert len(with_mime(outputs["assigned then shown"], PNG)) == 1
    assert stream_text(outputs["saved file"]).strip() == "True"


def test_a_tensor_shows_values_shape_dtype_grad_fn_and_grad(outputs):
    (leaf,) = with_mime(outputs["leaf tensor"], HTML)
    page = leaf["data"][HTML]
    # w = [2, -1] and loss = Σ w², so the table holds the values and the gradient 2w = [4, -2].
    for text in ("[ 2., -1.]", "(2,)", "float32", "grad_fn", "[ 4., -2.]", "&#x27;w&#x27;"):
        assert text in page, text
    (result,) = with_mime(outputs["op tensor"], HTML)
    assert "Mul" in result["data"][HTML] and "[ 6., -3.]" in result["data"][HTML]


def test_layers_display_as_a_table(outputs):
    (shown,) = with_mime(outputs["sequential"], HTML)
    page = shown["data"][HTML]
    assert page.startswith("<table") and "Linear" in page and "ReLU" in page
    assert ">9<" in page  # Linear(2, 3): 2·3 weights + 3 biases


def test_summary_shows_one_table_with_output_shapes_and_the_total(outputs):
    (shown,) = outputs["summary"]
    page = shown["data"][HTML]
    assert "(5, 8)" in page and "(5, 3)" in page
    # MLP([2, 8, 3]): (2·8 + 8) + (8·3 + 3) parameters.
    assert f"{2 * 8 + 8 + 8 * 3 + 3:,}" in page.split("合計パラメータ数")[1]
    assert len(outputs["summary assigned"]) == 1


def test_fit_shows_a_widget_bar_and_progress_false_nothing(outputs):
    assert len(with_mime(outputs["fit"], WIDGET)) == 1
    assert outputs["fit silent"] == []


def test_the_stepper_is_a_widget_that_steps_and_highlights(outputs):
    assert len(with_mime(outputs["stepper"], WIDGET)) == 1
    assert stream_text(outputs["stepper next"]).split() == ["1", "True", "False"]
    lines = stream_text(outputs["stepper last"]).splitlines()
    assert lines[0] == "True True"
    assert "W1" in lines[1] and "grad" in stream_text(outputs["stepper last"])
    assert stream_text(outputs["stepper grads"]).strip() == "True"


# ---------------------------------------------------------------------- without ipywidgets
FALLBACK_CELLS = [
    # What a kernel without ipywidgets sees: the import fails.
    "import sys\nsys.modules['ipywidgets'] = None\n" + SETUP,
    "viz.plot_history(history)",
    "viz.plot_history(history, show=True)",
    "h = tg.train.fit(model, F.softmax_cross_entropy, optim.Adam(model.parameters()), "
    "data.DataLoader(X, y, 10, rng=0), 2)",
    "net_loss, net = tiny_network()\ntg.inspect.stepper(net_loss)",
]


@pytest.fixture(scope="module")
def fallback_outputs(tmp_path_factory):
    """FALLBACK_CELLS in a kernel without ipywidgets and with MPLBACKEND=Agg (figures must not depend on it)."""
    cwd = tmp_path_factory.mktemp("kernel_fallback")
    return run_cells(FALLBACK_CELLS, cwd, kernel_env(MPLBACKEND="Agg"))


def test_figures_show_once_whatever_the_backend(fallback_outputs):
    assert len(with_mime(fallback_outputs[1], PNG)) == 1
    assert len(with_mime(fallback_outputs[2], PNG)) == 1


def test_without_ipywidgets_fit_shows_a_text_bar(fallback_outputs):
    outputs = fallback_outputs[3]
    assert with_mime(outputs, WIDGET) == []
    text = stream_text(outputs)
    assert "epoch 2/2" in text and "loss=" in text and "100%" in text
    assert stream_text(outputs, "stderr") == ""


def test_without_ipywidgets_the_stepper_prints_every_step(fallback_outputs):
    outputs = fallback_outputs[4]
    assert with_mime(outputs, WIDGET) == [] and not [o for o in outputs if o["output_type"] == "execute_result"]
    indices = [int(i) for i in re.findall(r"^\[(\d+)\]", stream_text(outputs), re.M)]
    assert indices == list(range(len(indices))) and len(indices) > 5


# ---------------------------------------------------------------------- in a script
def test_in_a_script_nothing_opens_unless_show_is_true(tmp_path):
    script = tmp_path / "script.py"
    script.write_text(
        "import matplotlib.pyplot as plt\n"
        "from matplotlib.figure import Figure\n"
        "from tinygrad_jp import viz\n"
        "figure = viz.plot_history({'loss': [1.0, 0.5]}, path='saved.png')\n"
        "print(plt.get_fignums(), isinstance(figure, Figure))\n"
        "shown = viz.plot_history({'loss': [1.0, 0.5]}, show=True)\n"
        "print(plt.get_fignums() == [shown.number])\n"
    )
    result = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True, timeout=120,
                            env=kernel_env(MPLBACKEND="Agg"))
    assert result.returncode == 0, result.stderr
    # Without show=True no pyplot figure (no window); with it, one figure for pyplot's show().
    assert result.stdout.splitlines() == ["[] True", "True"]
    assert (tmp_path / "saved.png").stat().st_size > 1000


def test_outside_a_notebook_nothing_imports_ipython_or_ipywidgets(tmp_path):
    code = (
        "import sys\n"
        "import tinygrad_jp as tg\n"
        "from tinygrad_jp import F, data, nn, optim\n"
        "model = nn.MLP([2, 4, 2], rng=0)\n"
        "model.summary(input_shape=(3, 2))\n"
        "X, y = data.moons(20, rng=0)\n"
        "tg.train.fit(model, F.softmax_cross_entropy, optim.Adam(model.parameters()), data.DataLoader(X, y, 10), 1)\n"
        "w = tg.Tensor([1.0], requires_grad=True)\n"
        "tg.inspect.stepper((w * w).sum())\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'IPython', 'ipywidgets', 'ipykernel'}))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120,
                            env=kernel_env())
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == "[]"
