"""The PyTorch bridge: to_torch and from_torch keep weights, outputs (train and eval), running statistics and
gradients, both ways; anything they cannot convert is an error naming the layer. Skipped without PyTorch."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

torch = pytest.importorskip("torch")

from tinygrad_jp import Tensor, nn, optim  # noqa: E402
from tinygrad_jp.interop import from_torch, to_torch  # noqa: E402

TOL = {"rtol": 1e-4, "atol": 1e-5}

ACTIVATIONS = st.one_of(
    st.sampled_from([nn.Sigmoid, nn.Tanh, nn.ReLU, nn.GELU, nn.Softplus, nn.Identity]).map(lambda cls: cls()),
    st.floats(0.0, 3.0).map(nn.LeakyReLU),
    st.floats(0.1, 3.0).map(nn.ELU),
    st.sampled_from([1.0, 0.5, 1.7, 4.0]).map(nn.Swish),
)


def _randomise_batchnorm(bn: nn.BatchNorm1d, rng: np.random.Generator, momentum: float) -> nn.BatchNorm1d:
    """A BatchNorm1d whose γ, β and running statistics are not their initial values."""
    n = bn.num_features
    bn.gamma.data[...] = rng.uniform(0.5, 2.0, n)
    bn.beta.data[...] = rng.normal(0.0, 1.0, n)
    bn.running_mean[...] = rng.normal(0.0, 1.0, n)
    bn.running_var[...] = rng.uniform(0.5, 2.0, n)
    bn.momentum = momentum
    return bn


@st.composite
def models(draw, dropout: bool = False):
    """A random model of every kind of layer the bridge covers, with its input width."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    width = draw(st.integers(2, 6))
    layers = [nn.Linear(width, width, bias=draw(st.booleans()), rng=rng)]
    for _ in range(draw(st.integers(1, 5))):
        kind = draw(st.sampled_from(["linear", "activation", "batchnorm", "residual", "nested", "dropout"]))
        if kind == "linear":
            n_out = draw(st.integers(2, 6))
            layers.append(nn.Linear(width, n_out, bias=draw(st.booleans()), rng=rng))
            width = n_out
        elif kind == "activation":
            layers.append(draw(ACTIVATIONS))
        elif kind == "batchnorm":
            layers.append(_randomise_batchnorm(nn.BatchNorm1d(width, eps=draw(st.sampled_from([1e-5, 1e-3]))), rng,
                                               momentum=draw(st.sampled_from([0.1, 0.5, 1.0]))))
        elif kind == "residual":
            layers.append(nn.Residual(nn.Sequential(nn.Linear(width, width, rng=rng), draw(ACTIVATIONS))))
        elif kind == "nested":
            layers.append(nn.Sequential(draw(ACTIVATIONS), nn.Linear(width, width, rng=rng)))
        else:
            layers.append(nn.Dropout(draw(st.floats(0.1, 0.9)) if dropout else 0.0))
    if draw(st.booleans()):
        layers.append(draw(st.sampled_from([nn.Softmax, nn.LogSoftmax]))(axis=draw(st.sampled_from([-1, 1]))))
    return nn.Sequential(*layers), layers[0].in_features


TORCH_NAMES = {"W": "weight", "gamma": "weight", "b": "bias", "beta": "bias"}


def _torch_name(name: str) -> str:
    """Our parameter name -> PyTorch's: W and γ are weight, b and β are bias."""
    head, _, last = name.rpartition(".")
    return f"{head}.{TORCH_NAMES[last]}" if head else TORCH_NAMES[last]


def _assert_same_weights(ours, theirs, **tol):
    ours_params = dict(ours.named_parameters())
    theirs_params = dict(theirs.named_parameters())
    assert sorted(map(_torch_name, ours_params)) == sorted(theirs_params)
    for name, p in ours_params.items():
        expected = p.data.T if name.endswith(".W") else p.data
        np.testing.assert_allclose(theirs_params[_torch_name(name)].detach().numpy(), expected, err_msg=name, **tol)
    theirs_buffers = dict(theirs.named_buffers())
    for name, b in ours.named_buffers():
        np.testing.assert_allclose(theirs_buffers[name].numpy(), b, err_msg=name, **tol)


def _forward_and_backward(ours, theirs, x: np.ndarray, seed: int):
    """Both outputs, after backpropagating the same loss Σ out · weights (random weights) through both."""
    ours.zero_grad()
    theirs.zero_grad()
    y = ours(Tensor(x))
    weights = np.random.default_rng(seed).normal(size=y.shape).astype(np.float32)
    (y * Tensor(weights)).sum().backward()
    y_t = theirs(torch.from_numpy(x))
    (y_t * torch.from_numpy(weights)).sum().backward()
    return y.data, y_t.detach().numpy()


def _assert_same_grads(ours, theirs):
    theirs_params = dict(theirs.named_parameters())
    for name, p in ours.named_parameters():
        expected = p.grad.T if name.endswith(".W") else p.grad
        np.testing.assert_allclose(theirs_params[_torch_name(name)].grad.numpy(), expected, err_msg=name, **TOL)


def _batch(width: int, seed: int, n: int = 8) -> np.ndarray:
    return np.random.default_rng(seed).normal(0.0, 1.0, (n, width)).astype(np.float32)


# ---------------------------------------------------------------------- to_torch
@given(models(), st.integers(0, 1000), st.booleans())
def test_to_torch_gives_the_same_weights_outputs_running_stats_and_gradients(model_and_width, seed, training):
    model, width = model_and_width
    model.train(training)
    torch_model = to_torch(model)
    _assert_same_weights(model, torch_model, rtol=0, atol=0)
    assert all(m.training == training for m in torch_model.modules())
    ours, theirs = _forward_and_backward(model, torch_model, _batch(width, seed), seed)
    np.testing.assert_allclose(theirs, ours, **TOL)
    _assert_same_grads(model, torch_model)
    # Train mode updated the running statistics of both the same way; eval mode left them alone.
    _assert_same_weights(model, torch_model, **TOL)


@given(models(), st.integers(0, 1000))
def test_round_trip_through_torch_gives_back_the_same_model(model_and_width, seed):
    model, width = model_and_width
    back = from_torch(to_torch(model))
    assert repr(back) == repr(model).replace("MLP(", "Sequential(")
    state, back_state = model.state_dict(), back.state_dict()
    assert list(back_state) == list(state)
    for name in state:
        np.testing.assert_array_equal(back_state[name], state[name], err_msg=name)
        assert back_state[name].dtype == state[name].dtype
    model.eval()
    back.eval()
    x = _batch(width, seed)
    np.testing.assert_array_equal(back(Tensor(x)).data, model(Tensor(x)).data)


def test_mlp_with_batchnorm_and_residual_converts_to_a_torch_sequential():
    model = nn.MLP([3, 8, 8, 2], activation="tanh", batchnorm=True, residual=True, rng=0)
    torch_model = to_torch(model)
    assert type(torch_model) is torch.nn.Sequential
    kinds = [type(m).__name__ for m in torch_model]
    assert kinds == ["Linear", "BatchNorm1d", "Tanh", "Residual", "Linear"]
    ours, theirs = _forward_and_backward(model, torch_model, _batch(3, 1), 1)
    np.testing.assert_allclose(theirs, ours, **TOL)
    _assert_same_grads(model, torch_model)


def test_weights_are_copied_not_shared():
    model = nn.Sequential(nn.Linear(2, 3, rng=0))
    torch_model = to_torch(model)
    before = model[0].W.data.copy()
    with torch.no_grad():
        torch_model[0].weight.add_(1.0)
    np.testing.assert_array_equal(model[0].W.data, before)
    back = from_torch(torch_model)
    back[0].W.data += 1.0
    np.testing.assert_array_equal(torch_model[0].weight.detach().numpy(), (before + 1.0).T)


def test_swish_uses_silu_for_beta_one_and_keeps_other_betas():
    assert type(to_torch(nn.Swish(1.0))) is torch.nn.SiLU
    other = to_torch(nn.Swish(2.5))
    x = torch.linspace(-30, 30, 601)
    np.testing.assert_allclose(other(x).numpy(), nn.Swish(2.5)(x.numpy()), **TOL)
    assert from_torch(other).beta == 2.5


def test_gelu_maps_to_the_tanh_approximation_and_matches_it_everywhere():
    x = torch.linspace(-40, 40, 8001)
    theirs = to_torch(nn.GELU())
    assert theirs.approximate == "tanh"
    np.testing.assert_allclose(theirs(x).numpy(), nn.GELU()(x.numpy()), **TOL)


@pytest.mark.parametrize("p", [0.2, 0.5, 0.9])
def test_dropout_keeps_p_and_scales_the_kept_units_by_one_over_one_minus_p(p):
    torch_dropout = to_torch(nn.Dropout(p))
    assert torch_dropout.p == p and from_torch(torch_dropout).p == p
    x = torch.full((20_000,), 3.0)
    y = torch_dropout(x).numpy()
    kept = y != 0
    np.testing.assert_allclose(y[kept], 3.0 / (1 - p), rtol=1e-6)
    assert abs(kept.mean() - (1 - p)) < 5 * np.sqrt(p * (1 - p) / x.numel())
    torch_dropout.eval()
    np.testing.assert_array_equal(torch_dropout(x).numpy(), x.numpy())


def test_training_side_by_side_keeps_both_models_equal():
    """Ten SGD steps with ours and with PyTorch's optimizer, starting from the same converted weights."""
    model = nn.MLP([4, 16, 16, 3], activation="relu", batchnorm=True, rng=3)
    torch_model = to_torch(model)
    opt = optim.SGD(model.parameters(), lr=0.1)
    torch_opt = torch.optim.SGD(torch_model.parameters(), lr=0.1)
    for step in range(10):
        ours, theirs = _forward_and_backward(model, torch_model, _batch(4, step, n=16), step)
        np.testing.assert_allclose(theirs, ours, rtol=1e-3, atol=1e-4)
        opt.step()
        torch_opt.step()
    _assert_same_weights(model, torch_model, rtol=1e-3, atol=1e-4)


# ---------------------------------------------------------------------- from_torch
def _torch_model() -> torch.nn.Sequential:
    torch.manual_seed(0)
    bn = torch.nn.BatchNorm1d(8, eps=1e-3, momentum=0.3)
    with torch.no_grad():
        bn.running_mean.normal_()
        bn.running_var.uniform_(0.5, 2.0)
        bn.weight.uniform_(0.5, 2.0)
        bn.bias.normal_()
    return torch.nn.Sequential(
        torch.nn.Linear(5, 8),
        bn,
        torch.nn.LeakyReLU(0.2),
        torch.nn.Sequential(torch.nn.Linear(8, 8, bias=False), torch.nn.ELU(alpha=0.5), torch.nn.SiLU()),
        torch.nn.GELU(approximate="tanh"),
        torch.nn.Softplus(),
        torch.nn.Dropout(0.0),
        torch.nn.Linear(8, 6),
        torch.nn.Tanh(),
        torch.nn.Sigmoid(),
        torch.nn.Identity(),
        torch.nn.ReLU(),
        torch.nn.Linear(6, 4),
        torch.nn.Softmax(dim=1),
    )


@pytest.mark.parametrize("training", [True, False])
def test_from_torch_gives_the_same_outputs_running_stats_and_gradients(training):
    torch_model = _torch_model().train(training)
    model = from_torch(torch_model)
    assert type(model) is nn.Sequential and type(model[3]) is nn.Sequential
    assert model[2].alpha == pytest.approx(0.2) and model[3][1].alpha == 0.5 and model[1].momentum == 0.3
    assert model[1].eps == 1e-3
    _assert_same_weights(model, torch_model, rtol=0, atol=0)
    for step in range(3):
        ours, theirs = _forward_and_backward(model, torch_model, _batch(5, step), step)
        np.testing.assert_allclose(ours, theirs, **TOL)
        _assert_same_grads(model, torch_model)
        _assert_same_weights(model, torch_model, **TOL)


def test_from_torch_keeps_each_modules_mode_and_the_parameter_dtype():
    torch_model = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.Dropout(0.5)).double()
    torch_model[1].eval()
    model = from_torch(torch_model)
    assert model.training and model[0].training and not model[1].training
    assert model[0].W.dtype == np.float64
    assert to_torch(model)[0].weight.dtype == torch.float64


def test_a_single_layer_converts_to_a_single_layer():
    assert type(from_torch(torch.nn.ReLU())) is nn.ReLU
    assert type(to_torch(nn.Linear(2, 3))) is torch.nn.Linear


# ---------------------------------------------------------------------- what cannot be converted
class Square(nn.Activation):
    def f(self, x):
        return x * x

    def df(self, x, y):
        return 2 * x


class ShiftedReLU(nn.ReLU):
    def f(self, x):
        return np.maximum(x, 0) + 1


def test_to_torch_names_the_position_and_type_of_an_unsupported_layer():
    model = nn.Sequential(nn.Linear(2, 2), nn.Residual(nn.Sequential(nn.Linear(2, 2), Square())))
    with pytest.raises(TypeError, match=r"'1\.block\.1' \(Square\)"):
        to_torch(model)
    # A subclass of a built-in layer may compute something else: it is not taken for its base.
    with pytest.raises(TypeError, match=r"'0' \(ShiftedReLU\)"):
        to_torch(nn.Sequential(ShiftedReLU()))
    with pytest.raises(TypeError, match=r"the model itself \(Square\)"):
        to_torch(Square())


@pytest.mark.parametrize("module, match", [
    (lambda: torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.Conv1d(1, 1, 1)), r"'1' \(Conv1d\)"),
    (lambda: torch.nn.Sequential(torch.nn.Sequential(torch.nn.ReLU6())), r"'0\.0' \(ReLU6\)"),
    (lambda: torch.nn.Sequential(torch.nn.GELU()), r"'0' \(GELU\).*approximate='none'"),
    (lambda: torch.nn.Sequential(torch.nn.Softplus(beta=2.0)), r"'0' \(Softplus\).*beta=2"),
    (lambda: torch.nn.Sequential(torch.nn.BatchNorm1d(2, momentum=None)), r"'0' \(BatchNorm1d\).*momentum=None"),
    (lambda: torch.nn.Sequential(torch.nn.BatchNorm1d(2, affine=False)), r"'0' \(BatchNorm1d\).*affine=False"),
    (lambda: torch.nn.Sequential(torch.nn.Dropout(1.0)), r"'0' \(Dropout\).*p=1"),
    (lambda: torch.nn.Sequential(torch.nn.Softmax()), r"'0' \(Softmax\).*dim=None"),
    (lambda: torch.nn.Sequential(torch.nn.Linear(2, 2).to(torch.bfloat16)), r"'0' \(Linear\).*bfloat16"),
])
def test_from_torch_names_the_position_and_type_of_what_it_cannot_convert(module, match):
    with pytest.raises((TypeError, ValueError), match=match):
        from_torch(module())


def test_each_function_refuses_the_other_frameworks_model():
    with pytest.raises(TypeError, match="from_torch"):
        to_torch(torch.nn.Linear(2, 2))
    with pytest.raises(TypeError, match="to_torch"):
        from_torch(nn.Linear(2, 2))


# ---------------------------------------------------------------------- PyTorch stays optional
def test_importing_the_library_and_the_bridge_does_not_import_torch():
    code = "import sys, tinygrad_jp, tinygrad_jp.interop, tinygrad_jp.data; print('torch' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert result.stdout.strip() == "False"


def test_without_torch_the_bridge_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)  # makes `import torch` fail as if it were not installed
    with pytest.raises(ImportError, match=r"pip install"):
        to_torch(nn.Linear(2, 2))


def test_the_bridge_is_reachable_as_an_attribute_of_the_package():
    import tinygrad_jp as tg

    assert tg.interop.to_torch is to_torch and tg.interop.from_torch is from_torch
