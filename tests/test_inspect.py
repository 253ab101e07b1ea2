"""逆伝播のステップ実行: 最後の勾配は backward() と完全に一致し、各ステップの中身は連鎖律どおり。"""

import io
import re

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

import tinygrad_jp as tg
from tinygrad_jp import F, Tensor, nn, ops
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
    # h @ W2: the local derivatives are W2ᵀ (for h) and h (for W2); what is sent is g @ W2ᵀ and hᵀ @ g.
    mm = steps[y.inputs[0]]
    assert mm.op == "MatMul" and mm.inputs == ["h", "W2"]
    assert mm.local[0].startswith("W2ᵀ = ") and mm.local[1].startswith("h = ")
    assert mm.rule == ["g @ W2ᵀ", "hᵀ @ g"]
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
    assert "上流の勾配 g = ∂L/∂h" in text and "局所微分 ∂h/∂z1" in text and "送る勾配 ∂L/∂z1 = g ⊙ ∂h/∂z1 = " in text
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
    assert lin.inputs == ["x", "W", "b"] and lin.rule == [None, "xᵀ @ g", "g の行についての和 Σₙ g[n, :]"]
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


# ---------------------------------------------------------------------- the words of every op kind
# For each kind of op: the op applied to inputs a (and b), the output named y. What the step must say:
# the local derivative ∂y/∂x per input (a pattern, and for some the matrix it shows), and the rule
# that forms ∂L/∂x from g. The values sent are checked against central differences of the op's forward.
def _tensor(shape, rng, name, positive=False):
    data = rng.uniform(0.5, 2.0, shape) if positive else rng.permutation(np.linspace(-1.7, 1.9, int(np.prod(shape))))
    return Tensor(np.reshape(data, shape), requires_grad=True, dtype=np.float64, name=name)


def _onehot(labels, n_classes):
    return np.eye(n_classes)[labels]


def _softmax_rows(x):
    e = np.exp(x - x.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


LABELS = np.array([0, 2, 1])

KINDS = {
    "MatMul": dict(shapes=[(3, 2), (2, 4)], make=lambda a, b: a @ b, op="MatMul",
                   local=["bᵀ = ", "a = "], rule=["g @ bᵀ", "aᵀ @ g"],
                   shown=[lambda a, b: b.T, lambda a, b: a]),
    "MatMul 1-D": dict(shapes=[(2,), (2, 3)], make=lambda a, b: a @ b, op="MatMul",
                       local=["bᵀ = ", "a = "], rule=["g @ bᵀ", "aᵀ @ g"],
                       shown=[lambda a, b: b.T, lambda a, b: a]),
    "Sum": dict(shapes=[(2, 3)], make=lambda a: a.sum(), op="Sum",
                local=["1 (各要素)"], rule=["g を a の形 (2, 3) に広げる"]),
    "Sum over an axis": dict(shapes=[(2, 3)], make=lambda a: a.sum(axis=0), op="Sum",
                             local=["1 (各要素)"], rule=["g を a の形 (2, 3) に広げる"]),
    "Mean": dict(shapes=[(2, 3)], make=lambda a: a.mean(), op="Mean",
                 local=["1/6 (各要素)"], rule=["g/6 を a の形 (2, 3) に広げる"]),
    "Mean over an axis": dict(shapes=[(2, 3)], make=lambda a: a.mean(axis=1), op="Mean",
                              local=["1/3 (各要素)"], rule=["g/3 を a の形 (2, 3) に広げる"]),
    "Max": dict(shapes=[(2, 3)], make=lambda a: a.max(axis=1), op="Max",
                local=["1 (最大値の位置"], rule=["g を最大値の位置に送り"]),
    "Min": dict(shapes=[(2, 3)], make=lambda a: a.min(), op="Min",
                local=["1 (最小値の位置"], rule=["g を最小値の位置に送り"]),
    "Reshape": dict(shapes=[(2, 3)], make=lambda a: a.reshape(3, 2), op="Reshape",
                    local=["1 (同じ要素が形を変えただけ)"], rule=["g を a の形 (2, 3) に戻す"]),
    "Transpose": dict(shapes=[(2, 3)], make=lambda a: a.T, op="Transpose",
                      local=["1 (同じ要素が並べ替わっただけ)"], rule=["g を転置して戻す"]),
    "Transpose with axes": dict(shapes=[(2, 3, 2)], make=lambda a: a.transpose(1, 2, 0), op="Transpose",
                                local=["1 (同じ要素が並べ替わっただけ)"], rule=["g の軸を (2, 0, 1) の順に並べて戻す"]),
    "BroadcastTo": dict(shapes=[(2, 3)], make=lambda a: a.broadcast_to((4, 2, 3)), op="BroadcastTo",
                        local=["1 (コピーされた各要素)"], rule=["広げた軸について g の和をとり a の形 (2, 3) に戻す"]),
    "GetItem": dict(shapes=[(3, 2)], make=lambda a: a[[0, 2, 0]], op="GetItem",
                    local=["1 (取り出した位置)、他は 0"], rule=["取り出した位置に g を置き"]),
    "Concatenate": dict(shapes=[(2, 3), (2, 2)], make=lambda a, b: ops.concatenate([a, b], axis=1),
                        op="Concatenate", local=["1 (y の軸 1 の区間 [0:3])", "1 (y の軸 1 の区間 [3:5])"],
                        rule=["g の軸 1 の区間 [0:3] を切り出す", "g の軸 1 の区間 [3:5] を切り出す"]),
    "Stack": dict(shapes=[(3,), (3,)], make=lambda a, b: ops.stack([a, b], axis=1), op="Stack",
                  local=["1 (y の軸 1 の 0 番目)", "1 (y の軸 1 の 1 番目)"],
                  rule=["g の軸 1 の 0 番目を取り出す", "g の軸 1 の 1 番目を取り出す"]),
    "Softmax": dict(shapes=[(2, 3)], make=lambda a: F.softmax(a), op="Softmax",
                    local=["yᵢ(δᵢⱼ − yⱼ)"], rule=["y ⊙ (g − Σ g ⊙ y)"]),
    "LogSoftmax": dict(shapes=[(2, 3)], make=lambda a: F.log_softmax(a), op="LogSoftmax",
                       local=["δᵢⱼ − softmax(a)ⱼ"], rule=["g − softmax(a) ⊙ Σ g"]),
    "softmax cross-entropy": dict(
        shapes=[(3, 3)], make=lambda a: F.softmax_cross_entropy(a, LABELS), op="SoftmaxCrossEntropy",
        local=["(softmax(a) − onehot)/3 = "], rule=["g × (softmax(a) − onehot)/3"],
        shown=[lambda a: (_softmax_rows(a) - _onehot(LABELS, 3)) / 3]),
    "mean squared error": dict(
        shapes=[(2, 3), (2, 3)], make=lambda a, b: F.mse_loss(a, b), op="MeanSquaredError",
        local=["2(a − b)/6 = ", "−2(a − b)/6 = "], rule=["g × 2(a − b)/6", "g × −2(a − b)/6"],
        shown=[lambda a, b: 2 * (a - b) / 6, lambda a, b: -2 * (a - b) / 6]),
}


def _numbers(text: str) -> np.ndarray:
    """The numbers of the first value a text shows after '= ' (a scalar or a bracketed array)."""
    shown = re.search(r"= (\[[^()]*\]|-?[\d.]+(?:e[-+]?\d+)?)", text).group(1)
    return np.array([float(v) for v in re.findall(r"-?\d+\.?\d*(?:e[-+]?\d+)?", shown)])


def _numerical_vjp(fn, xs, i, g, eps=1e-6):
    """Σ g ⊙ ∂y/∂x_i by central differences of the op's forward (float64), independent of its backward."""
    out = np.zeros_like(xs[i])
    for k in np.ndindex(xs[i].shape):
        values = []
        for step in (eps, -eps):
            moved = [x.copy() for x in xs]
            moved[i][k] += step
            values.append(np.sum(g * fn.forward(*moved)))
        out[k] = (values[0] - values[1]) / (2 * eps)
    return out


def _step_of_y(make, inputs):
    y = make(*inputs)
    y.name = "y"
    weights = Tensor(np.linspace(0.5, 1.5, y.size).reshape(y.shape))  # a g that is not all ones
    loss = (y * weights).sum()
    steps = {s.label: s for s in backprop_steps(loss, retain_graph=True)}
    return steps["y"]


def _check_sent_against_central_differences(step):
    fn = step.tensor.grad_fn
    xs = [p.data for p in fn.parents]
    for i, sent in enumerate(step.sent):
        if sent is not None:
            np.testing.assert_allclose(sent, _numerical_vjp(fn, xs, i, step.upstream), rtol=1e-5, atol=1e-7,
                                       err_msg=f"{step.op}: gradient sent to input {i}")


@pytest.mark.parametrize("kind", list(KINDS))
def test_each_op_kind_names_its_local_derivative_and_sends_the_right_gradient(kind):
    case = KINDS[kind]
    rng = np.random.default_rng(0)
    inputs = [_tensor(shape, rng, name) for shape, name in zip(case["shapes"], "ab")]
    step = _step_of_y(case["make"], inputs)
    assert step.op == case["op"] and step.inputs == ["a", "b"][:len(inputs)]
    for i, (local, rule) in enumerate(zip(step.local, step.rule)):
        assert isinstance(local, str) and local.startswith(case["local"][i]), (local, case["local"][i])
        assert rule.startswith(case["rule"][i]), (rule, case["rule"][i])
        # The local derivative is a property of the op alone: it never involves the upstream gradient g.
        assert not re.search(r"(?<![A-Za-z])g(?![A-Za-z])", local), local
    for i, expected in enumerate(case.get("shown", [])):
        shown = expected(*[x.data for x in inputs])
        np.testing.assert_allclose(_numbers(step.local[i]), np.ravel(shown), rtol=1e-3, atol=1e-4)
    _check_sent_against_central_differences(step)
    text = format_step(step)
    for name, local, rule in zip(step.inputs, step.local, step.rule):
        assert f"局所微分 ∂y/∂{name} = {local}" in text
        assert f"送る勾配 ∂L/∂{name} = {rule} = " in text


def test_the_fused_linear_layer_names_w_transposed_the_input_and_one():
    rng = np.random.default_rng(0)
    a = _tensor((4, 2), rng, "a")
    layer = nn.Linear(2, 3, rng=np.random.default_rng(1), dtype=np.float64)
    layer.b.data[:] = [0.1, -0.2, 0.3]
    step = _step_of_y(layer, [a])
    assert step.op == "LinearFunction" and step.inputs == ["a", "W", "b"]
    assert [loc.split(" = ")[0] for loc in step.local[:2]] == ["Wᵀ", "a"]
    np.testing.assert_allclose(_numbers(step.local[0]), layer.W.data.T.ravel(), rtol=1e-3, atol=1e-4)
    np.testing.assert_allclose(_numbers(step.local[1]), a.data.ravel(), rtol=1e-3, atol=1e-4)
    assert step.local[2].startswith("1 (") and step.rule == ["g @ Wᵀ", "aᵀ @ g", "g の行についての和 Σₙ g[n, :]"]
    _check_sent_against_central_differences(step)


ELEMENTWISE = {
    "Add (broadcast)": ([(2, 3), (3,)], lambda a, b: a + b),
    "Sub": ([(2, 3), (2, 3)], lambda a, b: a - b),
    "Mul": ([(2, 3), (2, 3)], lambda a, b: a * b),
    "Div": ([(2, 3), (2, 3)], lambda a, b: a / b),
    "Pow": ([(2, 3), (2, 3)], lambda a, b: a ** b),
    "Neg": ([(2, 3)], lambda a: -a),
    "Abs": ([(2, 3)], lambda a: abs(a)),
    "Exp": ([(2, 3)], lambda a: a.exp()),
    "Log": ([(2, 3)], lambda a: a.log()),
    "Sqrt": ([(2, 3)], lambda a: a.sqrt()),
    "Sin": ([(2, 3)], lambda a: a.sin()),
    "Clip": ([(2, 3)], lambda a: a.clip(-1.0, 1.0)),
    "Maximum": ([(2, 3), (2, 3)], lambda a, b: a.maximum(b)),
    "Where": ([(2, 3), (2, 3)], lambda a, b: ops.where(np.array([[True, False, True], [False, True, False]]), a, b)),
    "Sigmoid": ([(2, 3)], lambda a: a.sigmoid()),
    "ReLU": ([(2, 3)], lambda a: F.relu(a)),
    "ELU": ([(2, 3)], lambda a: nn.ELU()(a)),
    "GELU": ([(2, 3)], lambda a: nn.GELU()(a)),
}
POSITIVE = {"Log", "Sqrt", "Pow", "Div"}  # kept where the function is smooth and defined


@pytest.mark.parametrize("kind", list(ELEMENTWISE))
def test_elementwise_ops_show_the_derivative_of_each_element(kind):
    shapes, make = ELEMENTWISE[kind]
    rng = np.random.default_rng(1)
    inputs = [_tensor(shape, rng, name, positive=kind in POSITIVE) for shape, name in zip(shapes, "ab")]
    step = _step_of_y(make, inputs)
    fn = step.tensor.grad_fn
    xs = [p.data for p in fn.parents]
    for i, (local, rule) in enumerate(zip(step.local, step.rule)):
        # ∂y_k/∂x_k for every element k: perturbing the whole input moves each y_k by its own derivative only.
        moved = [[x + (eps if j == i else 0) for j, x in enumerate(xs)] for eps in (1e-6, -1e-6)]
        central = (fn.forward(*moved[0]) - fn.forward(*moved[1])) / 2e-6
        assert isinstance(local, np.ndarray) and local.shape == step.shape
        np.testing.assert_allclose(local, central, rtol=1e-5, atol=1e-7)
        assert rule.startswith(f"g ⊙ ∂y/∂{step.inputs[i]}")
        assert ("広げた軸" in rule) == (xs[i].shape != step.shape)  # a broadcast input is summed back to its shape
    _check_sent_against_central_differences(step)


def test_an_op_without_words_says_so_and_still_shows_what_it_sends():
    class Outer(tg.Function):
        def forward(self, a, b):
            return np.outer(a, b)

        def backward(self, g, y, a, b):
            return g @ b, a @ g

    class Dot(tg.Function):
        def forward(self, a, b):
            return np.dot(a, b)

        def backward(self, g, y, a, b):
            return g * b, g * a

    rng = np.random.default_rng(2)
    a, b = _tensor((3,), rng, "a"), _tensor((2,), rng, "b")
    step = _step_of_y(lambda a, b: Outer()(a, b), [a, b])
    assert step.rule == ["Outer.backward(g)", "Outer.backward(g)"]
    assert all(local.startswith("(説明なし") for local in step.local)
    _check_sent_against_central_differences(step)
    # With a one-element output, backward(1) is the local derivative itself.
    c = _tensor((3,), rng, "c")
    step = _step_of_y(lambda a, c: Dot()(a, c), [a, c])
    np.testing.assert_allclose(_numbers(step.local[0]), c.data, rtol=1e-3)
    np.testing.assert_allclose(_numbers(step.local[1]), a.data, rtol=1e-3)
    _check_sent_against_central_differences(step)


def test_an_op_using_one_tensor_twice_reports_what_each_operand_receives():
    a = _tensor((2, 2), np.random.default_rng(3), "a")
    step = _step_of_y(lambda a: a * a, [a])
    np.testing.assert_allclose(step.sent[0], step.upstream * a.data)
    np.testing.assert_allclose(step.sent[1], step.upstream * a.data)
