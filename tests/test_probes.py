"""Probes: per-layer statistics are the true values, leave the model as it was, and show vanishing gradients."""

import gc
import weakref

import numpy as np
import pytest

import tinygrad_jp as tg
from tinygrad_jp import Tensor, nn, probes


def mse(out, target):
    d = out - target
    return (d * d).mean()


def _batch(n_in, n_out, n=128, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, n_in)).astype(np.float32), rng.standard_normal((n, n_out)).astype(np.float32)


def _first_last_ratios(activation, init_name, seeds=range(5)):
    # Ten Linear layers of equal width, so that only depth (not a change of width) separates first and last.
    x, y = _batch(32, 32)
    ratios = []
    for seed in seeds:
        model = nn.MLP([32] * 11, activation=activation, init=init_name, rng=seed)
        g = probes.layer_stats(model, x, y, mse).column("weight_grad_norm")
        assert len(g) == 10
        ratios.append(g[0] / g[-1])
    return np.array(ratios)


@pytest.mark.parametrize("init_name", [None, "normal"], ids=["default xavier", "normal(0.01)"])
def test_deep_sigmoid_net_shows_vanishing_gradients(init_name):
    ratios = _first_last_ratios("sigmoid", init_name)
    assert np.all(ratios < 1e-2), ratios


def test_relu_with_he_init_keeps_first_and_last_gradients_comparable():
    ratios = _first_last_ratios("relu", "he")
    assert np.all((ratios > 0.1) & (ratios < 10)), ratios


def test_statistics_equal_a_hand_computed_forward_and_backward():
    model = nn.MLP([4, 6, 3], activation="tanh", rng=0)
    x, y = _batch(4, 3, n=10)
    stats = probes.layer_stats(model, x, y, mse)

    z0 = model[0](x)
    a0 = model[1](z0)
    out = model[2](a0)
    loss = mse(out, y)
    g_a0, g_out = tg.grad(loss, [a0, out], retain_graph=True)
    loss.backward()

    assert [r.name for r in stats] == ["0", "2"]
    assert [(r.in_features, r.out_features) for r in stats] == [(4, 6), (6, 3)]
    for row, act, g_act, W in ((stats[0], a0, g_a0, model[0].W), (stats[1], out, g_out, model[2].W)):
        np.testing.assert_allclose(row.act_mean, act.data.mean(), rtol=1e-5, atol=1e-7)
        np.testing.assert_allclose(row.act_std, act.data.std(), rtol=1e-5)
        np.testing.assert_allclose(row.out_grad_norm, np.linalg.norm(g_act.data), rtol=1e-5)
        np.testing.assert_allclose(row.weight_grad_norm, np.linalg.norm(W.grad), rtol=1e-5)
        np.testing.assert_allclose(row.weight_grad_abs_mean, np.abs(W.grad).mean(), rtol=1e-5)


def test_the_activation_after_batchnorm_is_the_layer_output():
    model = nn.MLP([3, 5, 2], batchnorm=True, rng=0)
    x, y = _batch(3, 2, n=16)
    row = probes.layer_stats(model, x, y, mse)[0]
    h = np.maximum(model[1](model[0](x)).data, 0)
    np.testing.assert_allclose([row.act_mean, row.act_std], [h.mean(), h.std()], rtol=1e-5)


def test_layer_stats_leaves_the_model_as_it_was():
    model = nn.MLP([3, 5, 5, 2], residual=True, rng=0)
    previous = [np.full(p.shape, 7.0, np.float32) for p in model.parameters()]
    for p, g in zip(model.parameters(), previous):
        p.grad = g
    layers_before, text_before = list(model), repr(model)
    probes.layer_stats(model, *_batch(3, 2), mse)
    assert [p.grad for p in model.parameters()] == previous  # the very same arrays, untouched
    assert all(np.all(g == 7.0) for g in previous)
    assert list(model) == layers_before and repr(model) == text_before
    assert all("forward" not in vars(m) for m in model.modules())


def test_record_in_a_training_loop_and_restores_the_model_on_errors():
    model = nn.MLP([3, 4, 2], rng=0)
    x, y = _batch(3, 2)
    model.zero_grad()
    with probes.record(model) as rec:
        mse(model(x), y).backward()
    assert len(rec.stats) == 2 and np.isfinite(rec.stats.column("weight_grad_norm")).all()
    with pytest.raises(RuntimeError, match="boom"), probes.record(model):
        raise RuntimeError("boom")
    assert isinstance(model[1], nn.ReLU) and "forward" not in vars(model[0])


def test_a_single_linear_model_and_a_forward_without_backward():
    layer = nn.Linear(3, 2, rng=0)
    with probes.record(layer) as rec:
        out = layer(np.ones((4, 3), np.float32))
    (row,) = rec.stats
    assert row.name == "Linear" and row.act_mean == pytest.approx(float(out.data.mean()), rel=1e-5)
    assert np.isnan(row.weight_grad_norm) and np.isnan(row.out_grad_norm)


def test_record_keeps_no_tensor_alive():
    model = nn.MLP([3, 4, 2], rng=0)
    x, y = _batch(3, 2)
    with probes.record(model) as rec:
        out = model(Tensor(x))
        loss = mse(out, y)
        loss.backward()
    refs = [weakref.ref(out), weakref.ref(loss)]
    del out, loss
    gc.collect()
    assert all(r() is None for r in refs)
    assert rec.stats[0].out_grad_norm > 0


def test_table_and_columns():
    stats = probes.layer_stats(nn.MLP([3, 4, 4, 2], rng=0), *_batch(3, 2), mse)
    lines = str(stats).splitlines()
    assert len(lines) == 2 + 3 and lines[2].startswith("1 ") and "3x4" in lines[2]
    assert stats.column("act_std").shape == (3,)
    with pytest.raises(ValueError, match="unknown column 'grad'"):
        stats.column("grad")


@pytest.mark.parametrize("options", [{}, {"batchnorm": True}, {"residual": True}],
                         ids=["plain", "batchnorm", "residual"])
def test_layers_are_numbered_like_the_plots_one_based_counting_linear_layers(options):
    model = nn.MLP([3, 4, 4, 4, 2], rng=0, **options)
    stats = probes.layer_stats(model, *_batch(3, 2), mse)
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    assert [r.layer for r in stats] == list(range(1, len(linears) + 1))
    assert [(r.in_features, r.out_features) for r in stats] == [(m.in_features, m.out_features) for m in linears]
    # The table's first column is that number, the same 1, 2, ... as the x-axis of plot_layer_gradients.
    rows = str(stats).splitlines()[2:]
    assert [int(line.split()[0]) for line in rows] == [r.layer for r in stats]


def test_saturation_counts_sigmoid_and_tanh_outputs_near_their_limits_and_dead_relu_units():
    out = np.array([[0.005, 0.5, 0.995, 0.3], [0.2, 0.0099, 0.99, 0.991]])
    assert probes.saturation(nn.Sigmoid(), out) == pytest.approx(4 / 8)
    assert probes.saturation(nn.Tanh(), np.array([[-0.995, 0.0, 0.98, 0.999]])) == pytest.approx(2 / 4)
    # A ReLU unit is dead when it outputs 0 for every sample of the batch, not when it is 0 for some.
    relu_out = np.array([[0.0, 1.0, 0.0], [0.0, 0.0, 2.0]])
    assert probes.saturation(nn.ReLU(), relu_out) == pytest.approx(1 / 3)
    assert np.isnan(probes.saturation(nn.GELU(), out))


def test_layer_stats_saturation_is_measured_on_each_layers_activation_output():
    x, y = _batch(3, 2, n=64)
    model = nn.MLP([3, 50, 50, 2], activation="sigmoid", init=lambda n_in, n_out: np.full((n_in, n_out), 3.0),
                   rng=0)
    stats = probes.layer_stats(model, x, y, mse)
    h1 = model[1](model[0](x)).data
    h2 = model[3](model[2](h1)).data
    assert stats[0].saturation == pytest.approx(np.mean((h1 < 0.01) | (h1 > 0.99)))
    assert stats[1].saturation == pytest.approx(np.mean((h2 < 0.01) | (h2 > 0.99)))
    assert 0 < stats[0].saturation < stats[1].saturation  # not a trivial 0 == 0
    assert np.isnan(stats[2].saturation)  # the output layer has no activation
