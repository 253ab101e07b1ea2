"""逆伝播のステップ実行: 最後の勾配は backward() と完全に一致し、各ステップの中身は連鎖律どおり。"""

import io

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from tinygrad_jp import Tensor
from tinygrad_jp.inspect import BackpropStep, backprop_steps, format_step, format_steps, print_backprop

values = st.floats(-2, 2, allow_nan=False, width=32)


def tiny_net(x, w1, b1, w2, b2, target):
    """2 inputs → 2 hidden (sigmoid) → 1 output, MSE; every tensor named."""
    params = {
        "W1": Tensor(w1, requires_grad=True, name="W1"),
        "b1": Tensor(b1, requires_grad=True, name="b1"),
        "W2": Tensor(w2, requires_grad=True, name="W2"),
        "b2": Tensor(b2, requires_grad=True, name="b2"),
    }
    x = Tensor(x, name="x")
    z1 = x @ params["W1"] + params["b1"]
    z1.name = "z1"
    h = z1.sigmoid()
    h.name = "h"
    y = h @ params["W2"] + params["b2"]
    y.name = "y"
    loss = ((y - Tensor(target, name="t")) ** 2).mean()
    loss.name = "loss"
    return loss, params


def diamond(w):
    """A reused three times, and B reused twice: gradients from several paths must add up."""
    w = Tensor(w, requires_grad=True, name="w")
    a = w * 3.0
    a.name = "a"
    b = a.sin()
    b.name = "b"
    c = a * a + b * b
    d = (c + a + b).sum()
    d.name = "d"
    return d, {"w": w}


net_arrays = st.tuples(
    arrays(np.float32, (3, 2), elements=values),
    arrays(np.float32, (2, 2), elements=values),
    arrays(np.float32, (2,), elements=values),
    arrays(np.float32, (2, 1), elements=values),
    arrays(np.float32, (1,), elements=values),
    arrays(np.float32, (3, 1), elements=values),
)


def run_all(loss, **kwargs):
    return list(backprop_steps(loss, **kwargs))


@given(net_arrays)
def test_final_gradients_of_the_tiny_net_equal_backward_exactly(arrs):
    loss, params = tiny_net(*arrs)
    run_all(loss)
    ref_loss, ref = tiny_net(*arrs)
    ref_loss.backward()
    for name, p in params.items():
        assert p.grad.dtype == np.float32
        np.testing.assert_array_equal(p.grad, ref[name].grad, err_msg=name)


@given(arrays(np.float64, (2, 3), elements=st.floats(-3, 3, allow_nan=False)))
def test_fan_out_gradients_add_up_exactly_like_backward(w):
    loss, params = diamond(w)
    steps = run_all(loss)
    ref_loss, ref = diamond(w)
    ref_loss.backward()
    np.testing.assert_array_equal(params["w"].grad, ref["w"].grad)
    # Each node is stepped once, however many paths reach it.
    ids = [id(s.tensor) for s in steps]
    assert len(ids) == len(set(ids))
    # a feeds four ops; it is stepped only after every one of them has sent its gradient.
    a_step = next(i for i, s in enumerate(steps) if s.label == "a")
    consumers = [i for i, s in enumerate(steps) if "a" in s.inputs]
    assert len(consumers) == 3 and max(consumers) < a_step  # Mul(a, a) counts once as a step


def test_every_step_comes_after_all_consumers_of_its_tensor():
    loss, _ = tiny_net(np.ones((3, 2)), np.eye(2), np.zeros(2), np.ones((2, 1)), np.zeros(1), np.ones((3, 1)))
    steps = run_all(loss)
    position = {id(s.tensor): i for i, s in enumerate(steps)}
    for i, s in enumerate(steps):
        if s.is_leaf:
            continue
        for parent, sent in zip(s.tensor.grad_fn.parents or [], s.sent):
            if sent is not None:
                assert position[id(parent)] > i


@given(net_arrays)
def test_each_step_follows_the_chain_rule(arrs):
    loss, params = tiny_net(*arrs)
    steps = {s.label: s for s in backprop_steps(loss, retain_graph=True)}
    assert steps["loss"].op == "Mean" and steps["loss"].upstream == 1
    h = steps["h"]
    hy = h.tensor.data
    # Sigmoid: local derivative y(1 - y), sent = upstream × local.
    np.testing.assert_allclose(h.local[0], hy * (1 - hy), rtol=1e-6)
    np.testing.assert_allclose(h.sent[0], h.upstream * h.local[0], rtol=1e-6)
    # y = MatMul + b2: both local derivatives 1; b2 receives the upstream summed over the batch.
    y = steps["y"]
    np.testing.assert_array_equal(y.local[1], np.ones((3, 1)))
    np.testing.assert_allclose(y.sent[1], y.upstream.sum(axis=0), rtol=1e-6)
    # h @ W2: what goes to W2 is hᵀ @ g, and the text says what it multiplies by.
    mm = steps[y.inputs[0]]
    assert mm.op == "MatMul" and mm.inputs == ["h", "W2"]
    assert "hᵀ @ g" in mm.local[1] and "W2ᵀ" in mm.local[0]
    np.testing.assert_allclose(mm.sent[1], hy.T @ mm.upstream, rtol=1e-6)
    np.testing.assert_allclose(mm.sent[0], mm.upstream @ params["W2"].data.T, rtol=1e-6)
    # x and the target need no gradient.
    first = steps[steps["z1"].inputs[0]]
    assert first.inputs == ["x", "W1"] and first.sent[0] is None and first.local[0] is None


def test_leaf_steps_are_the_parameters_and_fill_grad():
    loss, params = tiny_net(np.ones((3, 2)), np.eye(2), np.zeros(2), np.ones((2, 1)), np.zeros(1), np.ones((3, 1)))
    steps = run_all(loss)
    leaves = [s for s in steps if s.is_leaf]
    assert sorted(s.label for s in leaves) == sorted(params)
    for s in leaves:
        np.testing.assert_array_equal(params[s.label].grad, s.upstream)


def test_stopping_early_leaves_the_parameters_untouched():
    loss, params = tiny_net(np.ones((3, 2)), np.eye(2), np.zeros(2), np.ones((2, 1)), np.zeros(1), np.ones((3, 1)))
    gen = backprop_steps(loss)
    assert isinstance(next(gen), BackpropStep)
    gen.close()
    assert all(p.grad is None for p in params.values())


def test_the_graph_is_released_unless_retained():
    loss, params = diamond(np.ones(3))
    run_all(loss, retain_graph=True)
    first = params["w"].grad.copy()
    loss.backward(retain_graph=True)  # still possible: the graph was kept, and .grad accumulates
    np.testing.assert_allclose(params["w"].grad, 2 * first)
    run_all(loss)
    with pytest.raises(RuntimeError, match=r"second time.*retain_graph=True"):
        run_all(loss)


def test_hooks_change_the_gradient_as_in_backward():
    def build():
        w = Tensor(np.array([0.5, -1.0]), requires_grad=True)
        a = w * w
        a.register_hook(lambda g: g * 10)
        return (a.exp() + a).sum(), w

    loss, w = build()
    run_all(loss)
    ref_loss, ref_w = build()
    ref_loss.backward()
    np.testing.assert_array_equal(w.grad, ref_w.grad)


def test_non_scalar_loss_needs_grad():
    w = Tensor(np.ones(3), requires_grad=True)
    with pytest.raises(RuntimeError, match="scalar"):
        run_all(w * 2)
    steps = run_all(w * 2, grad=np.array([1.0, 2.0, 3.0]))
    np.testing.assert_array_equal(w.grad, [2.0, 4.0, 6.0])
    assert steps[0].op == "Mul"
    with pytest.raises(RuntimeError, match="requires grad"):
        run_all(Tensor(1.0))


def test_format_step_names_the_op_inputs_and_gradients():
    loss, _ = tiny_net(np.ones((1, 2)), np.eye(2), np.zeros(2), np.ones((2, 1)), np.zeros(1), np.ones((1, 1)))
    steps = {s.label: s for s in backprop_steps(loss)}
    text = format_step(steps["h"])
    assert text.splitlines()[0].startswith(f"[{steps['h'].index}] h = Sigmoid(z1)")
    assert "上流の勾配" in text and "局所微分 ∂h/∂z1" in text and "送る勾配 ∂L/∂z1" in text
    assert "勾配は不要" in format_step(steps[steps["z1"].inputs[0]])  # x needs none
    assert ".grad" in format_step(steps["W1"])


def test_print_backprop_prints_every_step_and_returns_them():
    loss, params = tiny_net(np.ones((1, 2)), np.eye(2), np.zeros(2), np.ones((2, 1)), np.zeros(1), np.ones((1, 1)))
    out = io.StringIO()
    steps = print_backprop(loss, file=out)
    text = out.getvalue()
    assert text.strip() == format_steps(steps)
    for name in ("loss", "y", "h", "z1", "x", "t", *params):
        assert name in text
    assert all(p.grad is not None for p in params.values())


def test_a_fused_linear_layer_is_explained_and_matches_backward():
    from tinygrad_jp import nn

    def build():
        layer = nn.Linear(2, 3, rng=np.random.default_rng(0))
        x = Tensor(np.arange(8, dtype=np.float32).reshape(4, 2), name="x")
        return (layer(x).tanh() ** 2).sum(), layer, x

    loss, layer, x = build()
    steps = list(backprop_steps(loss))
    ref_loss, ref_layer, _ = build()
    ref_loss.backward()
    np.testing.assert_array_equal(layer.W.grad, ref_layer.W.grad)
    np.testing.assert_array_equal(layer.b.grad, ref_layer.b.grad)
    lin = next(s for s in steps if s.op == "LinearFunction")
    assert "xᵀ @ g" in lin.local[1]
    np.testing.assert_allclose(lin.sent[1], x.data.T @ lin.upstream, rtol=1e-6)
    np.testing.assert_allclose(lin.sent[2], lin.upstream.sum(axis=0), rtol=1e-6)


def test_one_dimensional_matmuls_step_like_backward():
    x = Tensor(np.array([1.0, 2.0]), name="x")
    w = Tensor(np.arange(6.0).reshape(2, 3), requires_grad=True, name="W")
    v = Tensor(np.array([0.5, -1.0, 2.0]), requires_grad=True, name="v")
    steps = list(backprop_steps((x @ w) @ v, retain_graph=True))
    assert [s.op for s in steps if s.op] == ["MatMul", "MatMul"]  # no hidden reshapes for 1-D operands
    got = {"W": w.grad.copy(), "v": v.grad.copy()}
    w.grad = v.grad = None
    ((x @ w) @ v).backward()
    np.testing.assert_array_equal(got["W"], w.grad)
    np.testing.assert_array_equal(got["v"], v.grad)
