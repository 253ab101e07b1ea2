"""Layers: Linear through the op harness, Sequential, BatchNorm1d, Dropout, Residual, MLP, and memory discipline."""

import gc
import math
import weakref

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import tinygrad_jp as tg
from tinygrad_jp import Tensor, init, nn
from tinygrad_jp.nn.linear import LinearFunction

from harness import OpSpec, property_tests, values


# ---------------------------------------------------------------------- Linear through the harness
def _linear_inputs(bias: bool):
    def draw(data):
        n_in, n_out = data.draw(st.integers(1, 4), label="in"), data.draw(st.integers(1, 4), label="out")
        lead = data.draw(st.sampled_from([(), (1,), (3,), (2, 3)]), label="leading axes")
        arrays = [data.draw(values(lead + (n_in,)), label="x"), data.draw(values((n_in, n_out)), label="W")]
        if bias:
            arrays.append(data.draw(values((n_out,)), label="b"))
        return arrays, {}

    return draw


LINEAR_SPECS = [
    OpSpec("linear", lambda x, W, b: LinearFunction()(x, W, b), lambda x, W, b: x @ W + b, _linear_inputs(True)),
    OpSpec("linear_no_bias", lambda x, W: LinearFunction()(x, W), lambda x, W: x @ W, _linear_inputs(False)),
]


test_linear_function_property = property_tests(LINEAR_SPECS)


def test_linear_skips_the_input_gradient_when_the_input_needs_none():
    fn = LinearFunction()
    x = np.ones((2, 3), np.float32)
    W, b = Tensor(np.ones((3, 4), np.float32), requires_grad=True), Tensor(np.zeros(4, np.float32), requires_grad=True)
    fn(Tensor(x), W, b)
    g = np.ones((2, 4), np.float32)
    gx, gW, gb = fn.backward(g, None, x, W.data, b.data)
    assert gx is None and gW.shape == (3, 4) and gb.shape == (4,)


def test_linear_layer_is_x_at_W_plus_b_with_chapter_shapes():
    layer = nn.Linear(3, 5, rng=0)
    assert layer.W.shape == (3, 5) and layer.b.shape == (5,) and not layer.b.data.any()
    x = np.random.default_rng(1).standard_normal((4, 3)).astype(np.float32)
    y = layer(x)
    assert y.dtype == np.float32
    np.testing.assert_allclose(y.data, x @ layer.W.data + layer.b.data, rtol=1e-6)
    assert layer(x[0]).shape == (5,)
    assert layer(x.reshape(2, 2, 3)).shape == (2, 2, 5)


def test_linear_float32_end_to_end():
    layer = nn.Linear(3, 2, rng=0)
    x = Tensor(np.ones((4, 3), np.float32), requires_grad=True)
    layer(x).sum().backward()
    assert {x.grad.dtype, layer.W.grad.dtype, layer.b.grad.dtype} == {np.dtype(np.float32)}


def test_linear_wrong_feature_count_names_the_layer_and_both_sizes():
    layer = nn.Linear(3, 2)
    with pytest.raises(ValueError, match=r"Linear\(in_features=3, out_features=2, bias=True\) expects 3 .* got 4"):
        layer(np.ones((5, 4), np.float32))


def test_linear_without_bias_has_only_W():
    layer = nn.Linear(3, 2, bias=False)
    assert [n for n, _ in layer.named_parameters()] == ["W"]
    assert repr(layer) == "Linear(in_features=3, out_features=2, bias=False)"


def test_linear_init_by_name_by_callable_and_by_chapter_style_function():
    np.testing.assert_array_equal(nn.Linear(4, 3, init="xavier_uniform", rng=7).W.data,
                                  init.xavier_uniform(4, 3, rng=7))
    np.testing.assert_array_equal(nn.Linear(4, 3, rng=7).W.data, init.he_normal(4, 3, rng=7))

    def chapter_style(n_in, n_out):
        return np.full((n_in, n_out), 0.5)

    layer = nn.Linear(4, 3, init=chapter_style)
    assert layer.W.dtype == np.float32 and np.all(layer.W.data == 0.5)
    with pytest.raises(ValueError, match=r"returned shape \(3, 4\), expected \(4, 3\)"):
        nn.Linear(4, 3, init=lambda i, o: np.zeros((o, i)))


@pytest.mark.parametrize("bad", [0, -1, 2.0])
def test_linear_sizes_must_be_positive_integers(bad):
    with pytest.raises(ValueError, match="in_features must be a positive integer"):
        nn.Linear(bad, 3)


# ---------------------------------------------------------------------- Sequential
def _small_net():
    return nn.Sequential(nn.Linear(2, 16, rng=0), nn.ReLU(), nn.Linear(16, 1, rng=1))


def test_sequential_applies_layers_in_order():
    net = _small_net()
    x = np.random.default_rng(0).standard_normal((5, 2)).astype(np.float32)
    expected = np.maximum(x @ net[0].W.data + net[0].b.data, 0) @ net[2].W.data + net[2].b.data
    np.testing.assert_allclose(net(x).data, expected, rtol=1e-5)


def test_sequential_container_protocol():
    net = _small_net()
    assert len(net) == 3 and isinstance(net[1], nn.ReLU) and net[-1] is list(net)[2]
    head = net[:2]
    assert isinstance(head, nn.Sequential) and len(head) == 2 and head[0] is net[0]
    assert net.append(nn.Sigmoid()) is net and len(net) == 4


def test_sequential_rejects_a_non_layer_naming_its_position_and_type():
    with pytest.raises(TypeError, match=r"position 1 .* got function"):
        nn.Sequential(nn.Linear(2, 2), lambda x: x)
    with pytest.raises(TypeError, match=r"position 1 .* got int"):
        nn.Sequential(nn.ReLU()).append(3)


def test_parameters_have_dotted_names_in_definition_order():
    net = _small_net()
    assert [n for n, _ in net.named_parameters()] == ["0.W", "0.b", "2.W", "2.b"]
    assert [id(p) for p in net.parameters()] == [id(net[0].W), id(net[0].b), id(net[2].W), id(net[2].b)]


def test_repr_shows_the_architecture():
    assert repr(_small_net()) == (
        "Sequential(\n"
        "  (0): Linear(in_features=2, out_features=16, bias=True)\n"
        "  (1): ReLU()\n"
        "  (2): Linear(in_features=16, out_features=1, bias=True)\n"
        ")"
    )


# ---------------------------------------------------------------------- BatchNorm1d
batches = hnp.arrays(np.float64, st.tuples(st.integers(2, 16), st.integers(1, 5)),
                     elements=st.floats(-50, 50, allow_nan=False, width=64))


@given(x=batches)
def test_batchnorm_training_output_has_zero_mean_and_unit_variance(x):
    bn = nn.BatchNorm1d(x.shape[1], dtype=np.float64)
    y = bn(x).data
    var = x.var(axis=0)
    np.testing.assert_allclose(y.mean(axis=0), 0, atol=1e-9)
    # Exactly σ²/(σ² + ε) per feature, because of ε.
    np.testing.assert_allclose(y.var(axis=0), var / (var + bn.eps), rtol=1e-7, atol=1e-12)


@given(x=batches)
def test_batchnorm_running_statistics_follow_pytorch(x):
    n = x.shape[0]
    bn = nn.BatchNorm1d(x.shape[1], momentum=0.25, dtype=np.float64)
    bn(x)
    bn(2 * x)
    mean, var = x.mean(axis=0), x.var(axis=0) * n / (n - 1)
    np.testing.assert_allclose(bn.running_mean, 0.75 * (0.25 * mean) + 0.25 * 2 * mean, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(bn.running_var, 0.75 * (0.75 + 0.25 * var) + 0.25 * 4 * var, rtol=1e-9)


def test_batchnorm_eval_uses_running_statistics_and_gamma_beta():
    bn = nn.BatchNorm1d(3, dtype=np.float64)
    bn.running_mean[...] = [1.0, -2.0, 0.5]
    bn.running_var[...] = [4.0, 0.25, 1.0]
    bn.gamma.data[...] = [2.0, 1.0, -1.0]
    bn.beta.data[...] = [0.0, 1.0, 3.0]
    bn.eval()
    x = np.random.default_rng(0).standard_normal((1, 3))
    expected = (x - bn.running_mean) / np.sqrt(bn.running_var + bn.eps) * bn.gamma.data + bn.beta.data
    np.testing.assert_allclose(bn(x).data, expected, rtol=1e-12)


def test_batchnorm_gradients_match_central_differences():
    bn = nn.BatchNorm1d(3, dtype=np.float64)
    rng = np.random.default_rng(0)

    def fn(x, gamma, beta):
        bn.gamma, bn.beta = gamma, beta
        return bn(x)

    x = Tensor(rng.standard_normal((6, 3)), requires_grad=True)
    gamma = Tensor(rng.uniform(0.5, 2, 3), requires_grad=True)
    beta = Tensor(rng.standard_normal(3), requires_grad=True)
    assert tg.gradcheck(fn, x, gamma, beta)


def test_batchnorm_parameters_and_buffers_are_named_and_saved():
    bn = nn.BatchNorm1d(4)
    assert [n for n, _ in bn.named_parameters()] == ["gamma", "beta"]
    assert list(bn.state_dict()) == ["gamma", "beta", "running_mean", "running_var"]
    assert repr(bn) == "BatchNorm1d(4, eps=1e-05, momentum=0.1)"


def test_batchnorm_rejects_a_single_sample_in_training_and_wrong_shapes():
    bn = nn.BatchNorm1d(3)
    with pytest.raises(ValueError, match="more than one sample"):
        bn(np.ones((1, 3), np.float32))
    with pytest.raises(ValueError, match=r"shape \(N, 3\), got \(4, 2\)"):
        bn(np.ones((4, 2), np.float32))
    bn.eval()
    assert bn(np.ones((1, 3), np.float32)).shape == (1, 3)


# ---------------------------------------------------------------------- Dropout
@pytest.mark.parametrize("p", [0.1, 0.5, 0.8])
def test_dropout_drops_a_fraction_p_and_scales_the_rest(p):
    x = Tensor(np.ones((200, 100), np.float32), requires_grad=True)
    y = nn.Dropout(p, rng=0)(x)
    n = x.size
    dropped = float(np.mean(y.data == 0))
    assert abs(dropped - p) < 4.5 * math.sqrt(p * (1 - p) / n)
    np.testing.assert_allclose(y.data[y.data != 0], 1 / (1 - p), rtol=1e-6)
    assert y.dtype == np.float32
    y.sum().backward()
    np.testing.assert_array_equal(x.grad, y.data)  # dy/dx is the scaled mask itself


def test_dropout_is_the_identity_in_eval_mode_and_for_p_zero():
    x = Tensor(np.arange(6, dtype=np.float32))
    layer = nn.Dropout(0.5).eval()
    assert layer(x) is x
    assert nn.Dropout(0.0)(x) is x


def test_dropout_masks_are_seeded_and_differ_between_calls():
    x = Tensor(np.ones(1000, np.float32))
    a, b = nn.Dropout(0.5, rng=3), nn.Dropout(0.5, rng=3)
    first = a(x).data
    np.testing.assert_array_equal(first, b(x).data)
    assert not np.array_equal(first, a(x).data)


@pytest.mark.parametrize("p", [-0.1, 1.0, 1.5])
def test_dropout_p_outside_zero_one_raises(p):
    with pytest.raises(ValueError, match=r"p must be in \[0, 1\)"):
        nn.Dropout(p)


# ---------------------------------------------------------------------- Residual
def test_residual_adds_the_input_and_passes_gradients_around_the_block():
    block = nn.Sequential(nn.Linear(3, 3, rng=0, dtype=np.float64), nn.Tanh())
    res = nn.Residual(block)
    x = np.random.default_rng(0).standard_normal((4, 3))
    np.testing.assert_allclose(res(x).data, x + block(x).data)
    assert tg.gradcheck(res, Tensor(x, requires_grad=True))
    assert [n for n, _ in res.named_parameters()] == ["block.0.W", "block.0.b"]


def test_residual_needs_a_shape_preserving_block():
    with pytest.raises(ValueError, match=r"\(4, 3\) -> \(4, 2\)"):
        nn.Residual(nn.Linear(3, 2))(np.ones((4, 3), np.float32))
    with pytest.raises(TypeError, match="Layer"):
        nn.Residual(lambda x: x)


# ---------------------------------------------------------------------- MLP
def test_mlp_structure_has_no_activation_after_the_last_linear():
    m = nn.MLP([2, 8, 8, 3], activation="tanh", rng=0)
    kinds = [type(layer).__name__ for layer in m]
    assert kinds == ["Linear", "Tanh", "Linear", "Tanh", "Linear"]
    assert [n for n, _ in m.named_parameters()] == ["0.W", "0.b", "2.W", "2.b", "4.W", "4.b"]
    assert m(np.zeros((5, 2), np.float32)).shape == (5, 3)


def test_mlp_batchnorm_and_residual_options():
    m = nn.MLP([2, 8, 8, 3], batchnorm=True, residual=True, rng=0)
    kinds = [type(layer).__name__ for layer in m]
    assert kinds == ["Linear", "BatchNorm1d", "ReLU", "Residual", "Linear"]
    assert [type(layer).__name__ for layer in m[3].block] == ["Linear", "BatchNorm1d", "ReLU"]
    assert m(np.zeros((5, 2), np.float32)).shape == (5, 3)


@pytest.mark.parametrize(("activation", "std"), [("sigmoid", lambda i, o: math.sqrt(2 / (i + o))),
                                                 ("tanh", lambda i, o: math.sqrt(2 / (i + o))),
                                                 ("relu", lambda i, o: math.sqrt(2 / i))])
def test_mlp_default_init_is_xavier_for_saturating_and_he_for_relu(activation, std):
    m = nn.MLP([300, 200, 100], activation=activation, rng=0)
    for layer in (m[0], m[2]):
        n_in, n_out = layer.W.shape
        s = std(n_in, n_out)
        assert abs(layer.W.data.std() - s) < 4.5 * s / math.sqrt(2 * layer.W.size)


def test_mlp_is_reproducible_from_a_seed_and_layers_differ():
    a, b = nn.MLP([4, 4, 4, 4], rng=5), nn.MLP([4, 4, 4, 4], rng=5)
    for (name, p), (_, q) in zip(a.named_parameters(), b.named_parameters()):
        np.testing.assert_array_equal(p.data, q.data, err_msg=name)
    assert not np.array_equal(a[0].W.data, a[2].W.data)


def test_mlp_rejects_bad_arguments():
    with pytest.raises(ValueError, match="at least an input and an output"):
        nn.MLP([3])
    with pytest.raises(ValueError, match="unknown activation"):
        nn.MLP([3, 3], activation="relux")


def test_train_and_eval_reach_every_layer():
    m = nn.MLP([2, 4, 4, 1], batchnorm=True, residual=True)
    m.eval()
    assert all(not layer.training for layer in m.modules())
    m.train()
    assert all(layer.training for layer in m.modules())


# ---------------------------------------------------------------------- memory
def test_no_layer_keeps_the_last_batch_or_its_graph_after_backward():
    m = nn.Sequential(nn.MLP([3, 8, 8, 2], batchnorm=True, residual=True, rng=0), nn.Dropout(0.3, rng=0))
    x = Tensor(np.ones((4, 3), np.float32), requires_grad=True)
    out = m(x)
    loss = (out * out).sum()
    loss.backward()
    refs = [weakref.ref(t) for t in (x, out, loss)]
    del x, out, loss
    gc.collect()
    assert all(r() is None for r in refs)
