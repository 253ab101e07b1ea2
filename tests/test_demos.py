"""The chapter's demos: each runs headless with small sizes, writes valid PNGs without warnings, and its
numbers agree with the chapter's formulas computed here independently."""

from __future__ import annotations

import inspect as pyinspect
import math
import re
import warnings

import numpy as np
import pytest
from matplotlib import image as mpimg

from tinygrad_jp import activations as A
from tinygrad_jp import cli, datasets, demos
from tinygrad_jp.demos import activations as act_demo
from tinygrad_jp.demos import backprop_steps as bp_demo
from tinygrad_jp.demos import graph as graph_demo
from tinygrad_jp.demos import lr_schedule as lr_demo
from tinygrad_jp.demos import mnist as mnist_demo
from tinygrad_jp.demos import optimizers as opt_demo
from tinygrad_jp.demos import train_mlp as mlp_demo
from tinygrad_jp.demos import vanishing_gradient as vg_demo
from tinygrad_jp.demos import weight_init as wi_demo
from tinygrad_jp.textwidth import display_width, format_table

from idx_files import NAMES, write_fake_mnist

CHAPTER_DEMOS = ["activations", "vanishing_gradient", "weight_init", "optimizers", "lr_schedule", "train_mlp",
                 "backprop_steps", "graph"]
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def test_registry_holds_the_chapters_eight_demos_and_mnist():
    assert list(demos.DEMOS) == [*CHAPTER_DEMOS, "mnist"]
    for name in demos.DEMOS:
        assert callable(demos.load(name).run)


def test_unknown_demo_name_lists_the_available_ones():
    with pytest.raises(ValueError, match="vanishing_gradient"):
        demos.load("vanishing")


@pytest.mark.parametrize("name", CHAPTER_DEMOS)
def test_demo_writes_valid_pngs_without_any_warning(name, tmp_path, capsys):
    options = {"small": True} if "small" in pyinspect.signature(demos.load(name).run).parameters else {}
    out = tmp_path / "new" / "folder"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        paths = demos.run(name, out, **options)
    assert [str(w.message) for w in caught] == []
    assert paths, f"{name} wrote no figure"
    for path in paths:
        assert path.parent == out and path.suffix == ".png"
        assert path.read_bytes()[:8] == PNG_SIGNATURE
        pixels = mpimg.imread(path)
        assert pixels.ndim == 3 and min(pixels.shape[:2]) > 100
        # A figure with content is not a single flat colour.
        assert pixels.std() > 0.01
    assert capsys.readouterr().out.strip(), f"{name} printed no numbers"


# ---------------------------------------------------------------------- activations
@pytest.mark.parametrize("name", list(act_demo.TABLE))
def test_each_df_of_the_table_matches_central_differences_off_the_kink(name):
    act = act_demo.TABLE[name][0]
    x = np.linspace(-6.0, 6.0, 241) + 0.013  # off ReLU's kink at 0
    h = 1e-6
    central = (act(x + h) - act(x - h)) / (2 * h)
    np.testing.assert_allclose(act.derivative(x), central, atol=1e-6)


def test_comparison_table_has_the_chapters_columns_and_measured_speed():
    rows = act_demo.comparison_table(n=1000, repeats=1)
    assert [r.name for r in rows] == list(act_demo.TABLE)
    assert all(r.seconds > 0 and r.gap < 1e-6 for r in rows)
    assert {r.name: r.kinks for r in rows if r.kinks} == {"ReLU": 1, "Leaky ReLU": 1}
    text = act_demo.format_table(rows, 1000)
    lines = text.splitlines()
    for column in ("関数", "出力範囲", "勾配消失", "計算速度", "推奨用途"):
        assert column in lines[0]
    assert text.count("µs") == len(rows)
    # A Markdown table whose columns also line up on a terminal (full-width characters are two columns wide).
    assert all(line.count(" | ") == 4 for line in lines)
    assert len({display_width(line) for line in lines}) == 1
    bars = {tuple(display_width(line[: m.start()]) for m in re.finditer(r" \| ", line)) for line in lines}
    assert len(bars) == 1


# ---------------------------------------------------------------------- vanishing gradient
def test_sigmoid_chain_equals_the_chain_rule_by_hand():
    # The chapter's loop: a_i = σ(0.5 a_{i-1}), grad ← grad · a_i(1 - a_i) · 0.5 from the top layer down.
    a = [np.array([1.0])]
    for _ in range(10):
        a.append(1 / (1 + np.exp(-a[-1] * 0.5)))
    by_hand, grad = [], 1.0
    for i in range(10, 0, -1):
        grad = grad * (a[i] * (1 - a[i])) * 0.5
        by_hand.append(float(grad[0]))
    np.testing.assert_allclose(vg_demo.sigmoid_chain_gradients(), by_hand[::-1], rtol=1e-12)


def test_deep_net_gradient_ratios_separate_the_vanishing_setups_from_the_fixed_ones():
    results = vg_demo.run_experiment(vg_demo.Budget(steps=1))
    ratios = {label: r.ratio for label, r in results.items()}
    assert 0.1 <= ratios["ReLU + He"] <= 10
    assert ratios["Sigmoid + N(0, 0.01)"] < 1e-3
    assert ratios["Sigmoid + Xavier"] < 1e-3
    for fixed in ("tanh + Xavier", "Sigmoid + Xavier + BatchNorm", "Sigmoid + Xavier + Residual"):
        assert ratios[fixed] > 1e-2, fixed
    # The layers are numbered 1..10 as on the plots: one gradient and one saturation per hidden layer.
    assert all(len(r.grad) == len(r.saturation) == 10 for r in results.values())


def test_vanishing_gradient_table_lines_up_on_a_terminal():
    budget = vg_demo.Budget(width=16, n_per_class=10, steps=2)
    table = vg_demo.results_table(vg_demo.run_experiment(budget), budget).splitlines()
    assert "設定" in table[0] and len(table) == 2 + len(vg_demo.CONFIGS)
    assert len({display_width(line) for line in table}) == 1
    # Right-aligned numbers end at the same display column as their (Japanese) header.
    ends = {tuple(display_width(line[: m.end()]) for m in re.finditer(r"\S+(?=  |$)", line))[1:] for line in table}
    assert len(ends) == 1


def test_lr_schedule_and_optimizer_tables_line_up_on_a_terminal(tmp_path, capsys):
    lr_demo.run(tmp_path, small=True)
    out = capsys.readouterr().out.splitlines()
    start = next(i for i, line in enumerate(out) if line.startswith("スケジューラ"))
    table = out[start:start + 2 + 6]
    assert set(table[1]) <= {"-", " "}
    assert len({display_width(line) for line in table}) == 1
    rows = opt_demo.trajectory_table(opt_demo.trajectories())
    lines = format_table(rows).splitlines()
    assert rows[0][0] == "手法" and len({display_width(line) for line in lines}) == 1


# ---------------------------------------------------------------------- weight init
def test_chapter_xavier_and_he_statistics_within_sampling_error():
    stats = wi_demo.chapter_statistics(seed=3)
    n = 100 * 50
    for name, sigma in (("Xavier", math.sqrt(2 / 150)), ("He", math.sqrt(2 / 100))):
        mean, std = stats[name]
        assert abs(mean) < 5 * sigma / math.sqrt(n)
        assert abs(std - sigma) < 5 * sigma / math.sqrt(2 * n)


def test_he_keeps_relu_activations_alive_while_small_weights_collapse_them():
    he = [a.std() for a in wi_demo.layer_activations("relu", "He", n_samples=200)]
    tiny = [a.std() for a in wi_demo.layer_activations("relu", "std = 0.01", n_samples=200)]
    assert max(he) / min(he) < 2
    assert tiny[-1] < tiny[0] * 1e-3


def test_weight_init_figures_name_the_activations_as_the_activation_table_does():
    assert list(wi_demo.DISPLAY) == list(wi_demo.ACTIVATIONS)
    assert set(wi_demo.DISPLAY.values()) <= set(act_demo.TABLE)


# ---------------------------------------------------------------------- optimizers
class ChapterSGD:
    def __init__(self, learning_rate=0.01):
        self.learning_rate = learning_rate

    def update(self, params, grads):
        for key in params:
            params[key] -= self.learning_rate * grads[key]


class ChapterMomentum:
    def __init__(self, learning_rate=0.01, momentum=0.9):
        self.learning_rate, self.momentum, self.velocity = learning_rate, momentum, None

    def update(self, params, grads):
        if self.velocity is None:
            self.velocity = {k: np.zeros_like(v) for k, v in params.items()}
        for key in params:
            self.velocity[key] = self.momentum * self.velocity[key] - self.learning_rate * grads[key]
            params[key] += self.velocity[key]


class ChapterAdaGrad:
    def __init__(self, learning_rate=0.01):
        self.learning_rate, self.h, self.epsilon = learning_rate, None, 1e-8

    def update(self, params, grads):
        if self.h is None:
            self.h = {k: np.zeros_like(v) for k, v in params.items()}
        for key in params:
            self.h[key] += grads[key] ** 2
            params[key] -= self.learning_rate * grads[key] / (np.sqrt(self.h[key]) + self.epsilon)


class ChapterRMSprop:
    def __init__(self, learning_rate=0.01, decay_rate=0.99):
        self.learning_rate, self.decay_rate, self.h, self.epsilon = learning_rate, decay_rate, None, 1e-8

    def update(self, params, grads):
        if self.h is None:
            self.h = {k: np.zeros_like(v) for k, v in params.items()}
        for key in params:
            self.h[key] = self.decay_rate * self.h[key] + (1 - self.decay_rate) * grads[key] ** 2
            params[key] -= self.learning_rate * grads[key] / (np.sqrt(self.h[key]) + self.epsilon)


class ChapterAdam:
    def __init__(self, learning_rate=0.001, beta1=0.9, beta2=0.999):
        self.learning_rate, self.beta1, self.beta2 = learning_rate, beta1, beta2
        self.m = self.v = None
        self.t, self.epsilon = 0, 1e-8

    def update(self, params, grads):
        if self.m is None:
            self.m = {k: np.zeros_like(v) for k, v in params.items()}
            self.v = {k: np.zeros_like(v) for k, v in params.items()}
        self.t += 1
        for key in params:
            self.m[key] = self.beta1 * self.m[key] + (1 - self.beta1) * grads[key]
            self.v[key] = self.beta2 * self.v[key] + (1 - self.beta2) * grads[key] ** 2
            m_hat = self.m[key] / (1 - self.beta1**self.t)
            v_hat = self.v[key] / (1 - self.beta2**self.t)
            params[key] -= self.learning_rate * m_hat / (np.sqrt(v_hat) + self.epsilon)


CHAPTER_OPTIMIZERS = {"SGD": ChapterSGD, "Momentum": ChapterMomentum, "AdaGrad": ChapterAdaGrad,
                      "RMSprop": ChapterRMSprop, "Adam": ChapterAdam}


def test_trajectories_equal_the_chapters_update_formulas():
    got = opt_demo.trajectories()
    assert list(got) == list(CHAPTER_OPTIMIZERS)
    for name, cls in CHAPTER_OPTIMIZERS.items():
        opt = cls(learning_rate=0.1)
        pos = np.array([-7.0, 2.0])
        params = {"pos": pos}
        expected = [pos.copy()]
        for _ in range(30):
            opt.update(params, {"pos": np.array([2 * params["pos"][0], 20 * params["pos"][1]])})
            expected.append(params["pos"].copy())
        assert got[name].shape == (31, 2)
        np.testing.assert_allclose(got[name], np.array(expected), rtol=1e-12, atol=1e-12, err_msg=name)


# ---------------------------------------------------------------------- lr schedules
def test_schedules_follow_their_closed_forms():
    epochs, eta0 = 20, lr_demo.BASE_LR
    lrs = {label.split(" ")[0]: lr_demo.schedule(make, epochs) for label, make in lr_demo.schedulers(epochs).items()}
    e = np.arange(epochs)
    np.testing.assert_allclose(lrs["StepLR"], eta0 * 0.5 ** (e // 6))
    np.testing.assert_allclose(lrs["ExponentialLR"], eta0 * 0.97**e)
    np.testing.assert_allclose(lrs["CosineAnnealingLR"], eta0 * (1 + np.cos(np.pi * e / epochs)) / 2)
    np.testing.assert_allclose(lrs["LinearWarmup"], eta0 * (0.1 + 0.9 * np.minimum(e, 2) / 2))
    warm = lrs["ウォームアップ"]
    np.testing.assert_allclose(warm[:2], eta0 * (0.1 + 0.9 * e[:2] / 2))
    np.testing.assert_allclose(warm[2:], eta0 * (1 + np.cos(np.pi * (e[2:] - 2) / (epochs - 2))) / 2)


def test_plateau_schedule_only_halves_the_rate():
    lrs = lr_demo.plateau_schedule(8, n_per_class=20)
    assert len(lrs) == 8 and lrs[0] == lr_demo.BASE_LR
    steps = np.log2(lr_demo.BASE_LR / np.array(lrs))
    np.testing.assert_allclose(steps, np.round(steps), atol=1e-9)
    assert np.all(np.diff(lrs) <= 0)


# ---------------------------------------------------------------------- training with the recommended settings
def test_recommended_mlp_learns_moons_well_above_chance():
    model, history, _, _ = mlp_demo.train_dataset("moons", n=100, epochs=40)
    assert history.epochs == 40 and history.loss[-1] < history.loss[0] / 2
    assert history.accuracy[-1] >= 0.85 and history.val_accuracy[-1] >= 0.85
    assert [type(m).__name__ for m in model][1] == "ReLU"
    assert all(lr == 0.001 for lr in history.lr)


# ---------------------------------------------------------------------- backprop steps and graphs
def test_backprop_steps_end_with_the_gradients_of_backward(capsys):
    steps, stepped = bp_demo.step_through(seed=1)
    expected = bp_demo.reference_gradients(seed=1)
    for name in bp_demo.PARAMS:
        np.testing.assert_array_equal(stepped[name], expected[name])
    # Every named tensor of the network appears as a step, from the loss down to the parameters.
    labels = [s.label for s in steps]
    assert labels[0] == "L"
    assert {"W1", "b1", "W2", "b2", "h", "z1", "y"} <= set(labels)
    assert "上流の勾配" in capsys.readouterr().out


def test_interactive_mode_waits_between_steps(tmp_path, capsys):
    prompts = []
    bp_demo.run(tmp_path, interactive=True, wait=prompts.append)
    n_steps = capsys.readouterr().out.count("\n[")
    assert n_steps > 5 and len(prompts) == n_steps - 1


def test_graph_demo_writes_dot_files_naming_the_tensors(tmp_path, capsys):
    graph_demo.run(tmp_path)
    expression = (tmp_path / "graph_expression.dot").read_text(encoding="utf-8")
    mlp = (tmp_path / "graph_mlp.dot").read_text(encoding="utf-8")
    assert expression.startswith("digraph") and mlp.startswith("digraph")
    for name in ("x", "y", "f"):
        assert f'label="{name}\\n' in expression
    for name in ("W1", "b1", "W2", "b2", "損失"):
        assert f'label="{name}\\n' in mlp
    assert capsys.readouterr().out.count("digraph") == 2


def test_sigmoid_of_the_activation_table_is_the_chapters():
    x = np.linspace(-10, 10, 201)
    np.testing.assert_allclose(act_demo.TABLE["Sigmoid"][0](x), 1 / (1 + np.exp(-x)), rtol=1e-12)
    assert isinstance(act_demo.TABLE["ReLU"][0], A.ReLU)


# ---------------------------------------------------------------------- MNIST (on generated digits)
def test_mnist_demo_without_data_says_how_to_get_it_and_writes_nothing(tmp_path, capsys):
    assert demos.run("mnist", tmp_path / "figs") == []
    out = capsys.readouterr().out
    assert "tinygrad-jp download mnist" in out and str(datasets.cache_dir() / "mnist") in out
    for name in NAMES:
        assert name in out
    assert list((tmp_path / "figs").iterdir()) == []
    assert cli.main(["demo", "mnist", "--out", str(tmp_path / "figs")]) == 0


def test_mnist_demo_runs_the_three_comparisons_on_the_cached_files(tmp_path, capsys):
    write_fake_mnist(datasets.cache_dir() / "mnist", n_train=600, n_test=200)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        paths = demos.run("mnist", tmp_path, small=True)
    assert [str(w.message) for w in caught] == []
    assert [p.name for p in paths] == ["mnist_optimizers.png", "mnist_init.png", "mnist_batchnorm.png"]
    for path in paths:
        assert path.read_bytes()[:8] == PNG_SIGNATURE and mpimg.imread(path).std() > 0.01
    out = capsys.readouterr().out
    for name in [*mnist_demo.OPTIMIZERS, *mnist_demo.INITS, *mnist_demo.BATCHNORM_SETUPS]:
        assert name in out
    assert "学習データ 500 枚" in out
    # With the data there, `demo all` includes it.
    assert "mnist" in demos.all_names()


def test_mnist_experiments_learn_the_generated_digits_and_zero_init_cannot():
    write_fake_mnist(datasets.cache_dir() / "mnist", n_train=1000, n_test=300, seed=2)
    split = mnist_demo.load_split(n_train=1000)
    assert split[0].shape == (1000, 784) and split[2].shape == (300, 784)
    adam = mnist_demo.train_run(split, optimizer="Adam", lr=0.001, epochs=3)
    zeros = mnist_demo.train_run(split, init="zeros", epochs=3)
    assert len(adam.loss) == len(adam.test_accuracy) == 3
    assert adam.test_accuracy[-1] > 0.9
    # Zero weights give every unit the same output and a zero gradient: the net predicts a single class.
    majority = np.bincount(split[3]).max() / len(split[3])
    assert zeros.test_accuracy[-1] <= majority + 1e-9
