"""図: 日本語が警告なしに日本語フォントで描かれること、各図の軸・線・保存ファイル。"""

import subprocess
import sys
import warnings

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest
from matplotlib import font_manager
from matplotlib.figure import Figure

import tinygrad_jp as tg
from tinygrad_jp import Activation, Tensor, activations, viz
from tinygrad_jp.activations import ReLU, Sigmoid, Tanh


@pytest.fixture(autouse=True)
def warnings_are_errors():
    """A figure with Japanese text must render without any warning (no missing glyph, no findfont)."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        yield


def _render(fig: Figure, tmp_path, name="fig.png"):
    path = tmp_path / name
    fig.savefig(path)
    return path


def _texts(fig: Figure):
    out = []
    for ax in fig.axes:
        out += [ax.title, ax.xaxis.label, ax.yaxis.label]
        legend = ax.get_legend()
        if legend is not None:
            out += list(legend.get_texts())
    return [t for t in out if t.get_text()]


# ---------------------------------------------------------------------- fonts
def test_font_file_ships_with_the_package():
    path = viz.font_path()
    assert path.is_file() and path.suffix == ".ttf"


def test_use_japanese_font_is_idempotent_and_sets_rcparams():
    before = len(font_manager.fontManager.ttflist)
    family = viz.use_japanese_font()
    after_first = len(font_manager.fontManager.ttflist)
    assert viz.use_japanese_font() == family
    assert len(font_manager.fontManager.ttflist) == after_first <= before + 1
    assert matplotlib.rcParams["font.family"][0] == family
    assert matplotlib.rcParams["axes.unicode_minus"] is False


def test_japanese_text_renders_with_the_japanese_font_and_no_warning(tmp_path):
    family = viz.use_japanese_font()
    fig = Figure()
    ax = fig.subplots()
    ax.plot([-3, 1], [-1, 2], label="勾配の大きさ")
    ax.plot([-3, 1], [2, -1], label="最適解")
    ax.set_title("勾配消失問題の可視化（Sigmoid、10層）")
    ax.set_xlabel("層の深さ")
    ax.set_ylabel("勾配")
    ax.legend()
    path = _render(fig, tmp_path)
    assert path.stat().st_size > 1000
    japanese = font_manager.findfont(font_manager.FontProperties(family=family))
    assert japanese == str(viz.font_path())
    for text in _texts(fig):
        assert font_manager.findfont(text.get_fontproperties()) == japanese, text.get_text()


def test_fresh_interpreter_renders_japanese_without_warnings(tmp_path):
    """The font is registered from the installed package, not from whatever an earlier test set up."""
    code = (
        "import warnings; warnings.simplefilter('error')\n"
        "import matplotlib; matplotlib.use('Agg')\n"
        "from tinygrad_jp import viz\n"
        "fig = viz.plot_lr_schedules({'一定': [0.1, 0.1], '減衰': [0.1, 0.05]})\n"
        f"fig.savefig({str(tmp_path / 'fresh.png')!r})\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert (tmp_path / "fresh.png").is_file()


def test_importing_the_package_loads_nothing_optional_nor_the_network_modules():
    optional = ["matplotlib", "tqdm", "IPython", "ipywidgets", "torch", "http", "urllib.request"]
    code = ("import sys, tinygrad_jp, tinygrad_jp.inspect, tinygrad_jp.data\n"
            f"print(sorted(m for m in {optional!r} if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.stdout.strip() == "[]", result.stdout + result.stderr


# ---------------------------------------------------------------------- activations
def test_activation_curves_compare_df_with_central_differences_of_f(tmp_path):
    acts = [Sigmoid(), Tanh(), ReLU()]
    x = np.linspace(-4, 4, 81)
    fig = viz.plot_activations(acts, x, path=tmp_path / "sub" / "act.png")
    assert (tmp_path / "sub" / "act.png").is_file()
    assert len(fig.axes) == 3 * len(acts)
    h = 1e-6
    for act, (ax_f, ax_d, ax_gap) in zip(acts, np.reshape(fig.axes, (-1, 3))):
        name = type(act).__name__
        assert ax_f.get_title() == f"{name}関数" and ax_d.get_title() == f"{name}の導関数"
        np.testing.assert_allclose(ax_f.lines[0].get_ydata(), act(x))
        formula, numerical = ax_d.lines[:2]
        np.testing.assert_allclose(formula.get_ydata(), act.derivative(x))
        # The markers are f's central differences, computed here from f alone.
        xs = numerical.get_xdata()
        np.testing.assert_allclose(numerical.get_ydata(), (act(xs + h) - act(xs - h)) / (2 * h), atol=1e-8)
        gap = tg.check_derivative(act, x).gap
        assert ax_gap.get_yscale() == "log" and ("0" if gap == 0 else f"{gap:.1e}") in ax_gap.get_title()
    # ReLU's kink at 0 is marked on its derivative panel, not counted in its gap.
    relu_d = fig.axes[7]
    assert any("微分できない点 x = 0" in t.get_text() for t in relu_d.get_legend().get_texts())


def test_a_wrong_df_shows_a_gap_in_the_figure():
    class SwishMissingATerm(Activation):
        def f(self, x):
            return x * activations.sigmoid(x)

        def df(self, x, y):
            return activations.sigmoid(x)

    fig = viz.plot_activations({"Swish?": SwishMissingATerm()})
    gap = tg.check_derivative(SwishMissingATerm(), np.linspace(-5, 5, 401)).gap
    assert gap > 0.1 and f"{gap:.1e}" in fig.axes[2].get_title()
    assert np.nanmax(fig.axes[2].lines[0].get_ydata()) == pytest.approx(gap)


def test_activation_curves_accept_names_and_a_mapping():
    fig = viz.plot_activations({"シグモイド": "sigmoid"})
    assert fig.axes[0].get_title() == "シグモイド関数"
    with pytest.raises(ValueError, match="at least one"):
        viz.plot_activations([])


# ---------------------------------------------------------------------- gradients
def test_layer_gradients_are_drawn_per_series_on_a_log_axis(tmp_path):
    grads = {"Sigmoid": [1e-1, 1e-3, 1e-6, 1e-9], "ReLU + He": [1.0, 0.9, 1.1, 1.0]}
    fig = viz.plot_layer_gradients(grads, path=tmp_path / "g.png")
    ax = fig.axes[0]
    assert ax.get_yscale() == "log"
    assert ax.get_xlabel() == "層の深さ" and ax.get_ylabel() == "勾配"
    assert [line.get_label() for line in ax.lines] == list(grads)
    np.testing.assert_array_equal(ax.lines[0].get_xdata(), [1, 2, 3, 4])
    _render(fig, tmp_path)


def test_a_single_gradient_series_gets_a_label():
    ax = viz.plot_layer_gradients([0.5, 0.1]).axes[0]
    assert [line.get_label() for line in ax.lines] == ["勾配の大きさ"]


def test_layer_saturation_is_drawn_in_percent_per_layer_numbered_from_one(tmp_path):
    sat = {"Sigmoid + N(0, 1)": [0.0, 0.42, 0.4], "ReLU + He": [0.0, 0.12, float("nan")]}
    fig = viz.plot_layer_saturation(sat, path=tmp_path / "s.png")
    ax = fig.axes[0]
    assert ax.get_xlabel() == "層の深さ" and "%" in ax.get_ylabel()
    assert [line.get_label() for line in ax.lines] == list(sat)
    np.testing.assert_array_equal(ax.lines[0].get_xdata(), [1, 2, 3])
    np.testing.assert_allclose(ax.lines[0].get_ydata(), [0, 42, 40])
    _render(fig, tmp_path)


def test_curves_can_carry_a_dashed_reference_line():
    ax = viz.plot_curves({"a": [1.5, 1.2, 0.9]}, reference={"ln 3": 1.0986}).axes[0]
    (curve, ref) = ax.lines
    assert ref.get_label() == "ln 3" and ref.get_linestyle() == "--"
    np.testing.assert_allclose(ref.get_ydata(), [1.0986, 1.0986])
    assert ref.get_zorder() < curve.get_zorder()


# ---------------------------------------------------------------------- optimizers
def _f(x, y):
    return x**2 + 10 * y**2


def test_trajectories_on_contours_with_the_optimum(tmp_path):
    rng = np.random.default_rng(0)
    trajs = {name: np.array([-7.0, 2.0]) + np.cumsum(rng.normal(size=(31, 2)), axis=0) for name in ("SGD", "Adam")}
    fig = viz.plot_trajectories(_f, trajs, path=tmp_path / "t.png")
    ax = fig.axes[0]
    assert ax.get_title() == "最適化アルゴリズムの比較"
    labels = [line.get_label() for line in ax.lines]
    assert labels == ["SGD", "Adam", "最適解"]
    np.testing.assert_array_equal(ax.lines[0].get_xydata(), trajs["SGD"])
    x0, x1 = ax.get_xlim()
    y0, y1 = ax.get_ylim()
    for t in trajs.values():
        assert x0 <= t[:, 0].min() and t[:, 0].max() <= x1 and y0 <= t[:, 1].min() and t[:, 1].max() <= y1
    _render(fig, tmp_path)


def test_trajectory_of_the_wrong_shape_is_rejected():
    with pytest.raises(ValueError, match=r"\(T, 2\)"):
        viz.plot_trajectories(_f, {"SGD": np.zeros((5, 3))})


def test_objective_against_the_step():
    t = np.array([[-7.0, 2.0], [-3.0, 1.0], [-1.0, 0.1]])
    ax = viz.plot_objective(_f, {"SGD": t}).axes[0]
    assert ax.get_xlabel() == "ステップ" and ax.get_yscale() == "log"
    np.testing.assert_allclose(ax.lines[0].get_ydata(), [89.0, 19.0, 1.1])
    # A value of 0 cannot go on a log axis, so the axis stays linear.
    assert viz.plot_objective(_f, {"SGD": np.zeros((3, 2))}).axes[0].get_yscale() == "linear"


# ---------------------------------------------------------------------- distributions
def test_activation_histograms_form_a_grid(tmp_path):
    rng = np.random.default_rng(1)
    acts = {"std=1": [rng.random((50, 4)) for _ in range(3)], "Xavier": [rng.random((50, 4)) for _ in range(2)]}
    fig = viz.plot_activation_histograms(acts, bins=10, path=tmp_path / "h.png")
    grid = np.reshape(fig.axes, (2, 3))
    assert [ax.get_title() for ax in grid[0]] == ["第1層", "第2層", "第3層"]
    assert grid[0, 0].get_ylabel() == "std=1" and grid[1, 0].get_ylabel() == "Xavier"
    assert not grid[1, 2].get_visible()
    for ax in grid[0]:
        assert len(ax.patches) == 10
        assert sum(p.get_height() for p in ax.patches) == 200
    _render(fig, tmp_path)


def test_each_histogram_panel_spans_its_own_data_and_states_its_std():
    rng = np.random.default_rng(2)
    layers = [rng.standard_normal((200, 5)) * scale for scale in (1e-6, 1.0, 1e5)]  # vanishing → exploding
    fig = viz.plot_activation_histograms({"std = 1": layers}, bins=12)
    for ax, a in zip(fig.axes, layers):
        lo, hi = ax.get_xlim()
        span = a.max() - a.min()
        # The bars fill the panel: the axis reaches the data's extremes and hardly beyond.
        assert lo <= a.min() and hi >= a.max() and hi - lo <= 1.2 * span
        bars = ax.patches
        np.testing.assert_allclose([bars[0].get_x(), bars[-1].get_x() + bars[-1].get_width()], [a.min(), a.max()])
        (label,) = [t.get_text() for t in ax.texts]
        assert label == f"std {a.std():.3g}"


def test_histograms_accept_tensors_and_a_fixed_range():
    fig = viz.plot_activation_histograms([Tensor(np.full((3, 3), 0.5))], bins=4, range=(0.0, 1.0))
    heights = [p.get_height() for p in fig.axes[0].patches]
    assert heights == [0, 0, 9, 0]


# ---------------------------------------------------------------------- training
class _History:
    def __init__(self):
        self.loss = [1.0, 0.6, 0.4]
        self.val_loss = [1.1, 0.7, 0.5]
        self.accuracy = [0.5, 0.7, 0.8]
        self.val_accuracy = []


def test_history_from_an_object_draws_loss_and_accuracy(tmp_path):
    fig = viz.plot_history(_History(), path=tmp_path / "h.png")
    loss_ax, acc_ax = fig.axes
    assert loss_ax.get_xlabel() == "エポック" and loss_ax.get_ylabel() == "損失"
    assert [line.get_label() for line in loss_ax.lines] == ["学習データ", "検証データ"]
    assert acc_ax.get_ylabel() == "正解率" and len(acc_ax.lines) == 1
    np.testing.assert_array_equal(loss_ax.lines[0].get_xdata(), [1, 2, 3])


def test_history_from_a_dict_without_accuracy_has_one_panel():
    fig = viz.plot_history({"loss": [0.3, 0.2]})
    assert len(fig.axes) == 1
    with pytest.raises(ValueError, match="loss"):
        viz.plot_history({"accuracy": [0.5]})


def test_curves_and_lr_schedules():
    ax = viz.plot_curves({"SGD": [1, 0.5], "Adam": [1, 0.2]}, logy=True).axes[0]
    assert [line.get_label() for line in ax.lines] == ["SGD", "Adam"] and ax.get_yscale() == "log"
    lrs = {"StepLR": [0.1, 0.1, 0.01], "Cosine": [0.1, 0.05, 0.0]}
    ax = viz.plot_lr_schedules(lrs).axes[0]
    assert ax.get_ylabel() == "学習率" and ax.get_xlabel() == "エポック"
    np.testing.assert_array_equal(ax.lines[1].get_ydata(), lrs["Cosine"])


# ---------------------------------------------------------------------- classifiers
class _Linear:
    """A fixed classifier: class 1 when x₀ > x₁; records the mode it was called in."""

    def __init__(self):
        self.training = True
        self.modes = []

    def eval(self):
        self.training = False

    def train(self):
        self.training = True

    def __call__(self, t):
        self.modes.append(self.training)
        return t @ Tensor(np.array([[0.0, 1.0], [1.0, 0.0]], dtype=t.dtype))


def test_decision_boundary_predicts_in_eval_mode_and_restores_training(tmp_path):
    rng = np.random.default_rng(2)
    X = rng.normal(size=(60, 2)).astype(np.float32)
    y = (X[:, 0] > X[:, 1]).astype(int)
    model = _Linear()
    fig = viz.plot_decision_boundary(model, X, y, resolution=30, path=tmp_path / "d.png")
    assert model.modes == [False] and model.training
    ax = fig.axes[0]
    assert ax.get_title() == "決定境界"
    assert [c.get_label() for c in ax.collections if c.get_label().startswith("クラス")] == ["クラス 0", "クラス 1"]


def test_decision_boundary_with_one_logit_and_bad_inputs():
    X = np.array([[0.0, 1.0], [1.0, 0.0]])
    fig = viz.plot_decision_boundary(lambda t: t[:, 0] - t[:, 1], X, np.array([0, 1]), resolution=10)
    assert fig.axes[0].get_title() == "決定境界"
    with pytest.raises(ValueError, match=r"\(N, 2\)"):
        viz.plot_decision_boundary(lambda t: t, np.zeros((3, 3)), np.zeros(3))
    with pytest.raises(ValueError, match="labels"):
        viz.plot_decision_boundary(lambda t: t, np.zeros((3, 2)), np.zeros(2))
