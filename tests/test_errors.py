"""Errors that teach: every mistake a learner can make ends in an exception of the right type whose
message names what was expected and what was given (the shapes, values and names involved).

Each case below is one test: the exact exception type, and every listed fragment (plain text, not a
regular expression) must appear in the message. Loads that fail must leave the model and the
optimizer exactly as they were.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pytest

import tinygrad_jp as tg
from tinygrad_jp import F, Tensor, nn, optim
from tinygrad_jp.optim import lr_scheduler as sched


@dataclass
class Case:
    id: str
    fn: Callable[[], object]
    exc: type[Exception]
    fragments: tuple[str, ...]


def _x(*shape: int) -> Tensor:
    return Tensor(np.ones(shape, dtype=np.float32), requires_grad=True)


def _second_backward():
    x = _x(3)
    loss = (x * x).sum()
    loss.backward()
    loss.backward()


def _step_with_a_wrong_grad():
    p = _x(2, 3)
    opt = optim.SGD([p], lr=0.1)
    p.grad = np.ones((3, 2), dtype=np.float32)
    opt.step()


def _opt():
    return optim.SGD([_x(2)], lr=0.1)


def _in_a_folder(action: Callable[[str], object]) -> Callable[[], object]:
    """Run action(folder) in a fresh temporary folder (removed afterwards, also when action raises)."""

    def run():
        with tempfile.TemporaryDirectory() as folder:
            return action(folder)

    return run


def _load_bytes(content: bytes) -> Callable[[str], object]:
    def action(folder):
        path = os.path.join(folder, "model.npz")
        with open(path, "wb") as f:
            f.write(content)
        return tg.load(path)

    return action


def _saved_bytes() -> bytes:
    with tempfile.TemporaryDirectory() as folder:
        tg.save({"W": np.arange(12.0).reshape(3, 4)}, os.path.join(folder, "model.npz"))
        with open(os.path.join(folder, "model.npz"), "rb") as f:
            return f.read()


def _with_a_damaged_array(good: bytes) -> bytes:
    damaged = bytearray(good)
    damaged[good.index(b"\x93NUMPY") + 130] ^= 0xFF  # in the data, past the 128-byte header: the CRC fails
    return bytes(damaged)


def _save_onto_a_folder(folder):
    os.mkdir(os.path.join(folder, "model.npz"))
    tg.save({"a": np.ones(2)}, os.path.join(folder, "model.npz"))


def _save_onto_a_read_only_file(folder):
    path = os.path.join(folder, "model.npz")
    tg.save({"a": np.ones(2)}, path)
    os.chmod(path, 0o444)
    tg.save({"a": np.zeros(2)}, path)


def _diverging_fit():
    X, y = tg.data.moons(8, rng=0)
    model = nn.MLP([2, 4, 2], rng=0)
    tg.train.fit(model, lambda out, yb: F.softmax_cross_entropy(out, yb) * float("nan"),
                 optim.SGD(model.parameters(), lr=0.1), tg.data.DataLoader(X, y, 4, rng=0), 3, progress=False)


CASES = [
    # ------------------------------------------------------------------ shapes
    Case("matmul_2d", lambda: _x(2, 3) @ _x(4, 5), ValueError,
         ("matmul", "(2, 3)", "(4, 5)", "(3)", "(4)")),
    Case("matmul_vector", lambda: _x(2, 3) @ _x(4), ValueError, ("(2, 3)", "(4,)", "only dimension (4)")),
    Case("matmul_batched", lambda: _x(2, 3, 4) @ _x(2, 5, 6), ValueError, ("(2, 3, 4)", "(2, 5, 6)")),
    Case("matmul_scalar", lambda: _x() @ _x(3), ValueError, ("at least one dimension", "()", "(3,)")),
    Case("broadcast_add", lambda: _x(2, 3) + _x(4), ValueError, ("Add", "(2, 3)", "(4,)")),
    Case("broadcast_mul_ndarray", lambda: _x(2, 3) * np.ones((2, 4)), ValueError, ("Mul", "(2, 3)", "(2, 4)")),
    Case("broadcast_to", lambda: _x(2, 3).broadcast_to((3, 3)), ValueError, ("BroadcastTo", "(2, 3)", "(3,3)")),
    Case("reshape", lambda: _x(2, 3).reshape(4, 2), ValueError, ("(2, 3)", "6 elements", "(4, 2)")),
    Case("reshape_infer", lambda: _x(2, 3).reshape(-1, 4), ValueError, ("(2, 3)", "6 elements", "(-1, 4)")),
    Case("squeeze", lambda: _x(2, 3).squeeze(0), ValueError, ("axis 0", "size 2", "(2, 3)")),
    Case("sum_axis", lambda: _x(2, 3).sum(axis=2), ValueError, ("Sum", "(2, 3)", "axis 2")),
    Case("concatenate", lambda: tg.concatenate([_x(2, 3), _x(2, 4)]), ValueError, ("(2, 3)", "(2, 4)")),
    Case("stack", lambda: tg.stack([_x(2, 3), _x(2, 4)]), ValueError, ("(2, 3)", "(2, 4)")),
    Case("item", lambda: _x(2, 3).item(), ValueError, ("exactly one element", "(2, 3)")),
    # ------------------------------------------------------------------ indexing
    Case("index_first_axis", lambda: _x(2, 3)[5], IndexError, ("index 5", "(2, 3)", "size 2")),
    Case("index_second_axis", lambda: _x(2, 3)[0, 7], IndexError, ("(0, 7)", "(2, 3)", "axis 1 with size 3")),
    Case("index_array", lambda: _x(2, 3)[np.array([0, 3])], IndexError, ("(2, 3)", "index 3", "size 2")),
    # ------------------------------------------------------------------ gradients
    Case("int_tensor_requires_grad", lambda: Tensor(np.arange(3), requires_grad=True), TypeError,
         ("floating-point", "int64")),
    Case("int_tensor_requires_grad_", lambda: Tensor(np.arange(3)).requires_grad_(), TypeError,
         ("floating-point", "int64")),
    # BackwardError is both PyTorch's RuntimeError and a ValueError (tested below).
    Case("backward_non_scalar", lambda: (_x(2, 3) * 2).backward(), tg.BackwardError, ("scalar", "(2, 3)", "grad=")),
    Case("backward_released_graph", _second_backward, tg.BackwardError, ("second time", "Sum", "retain_graph=True")),
    Case("backward_nothing_requires_grad", lambda: Tensor([1.0, 2.0]).sum().backward(), tg.BackwardError,
         ("requires grad", "no_grad")),
    Case("backward_grad_shape", lambda: (_x(2, 3) * 2).backward(np.ones(3)), ValueError, ("(2, 3)", "(3,)")),
    Case("grad_input_without_requires_grad", lambda: tg.grad((_x(2) * 2).sum(), Tensor([1.0, 2.0])), ValueError,
         ("input 0", "requires_grad=True")),
    # ------------------------------------------------------------------ losses and labels
    Case("label_too_large", lambda: F.softmax_cross_entropy(_x(2, 3), np.array([0, 3])), ValueError,
         ("[0, 3)", "got 3 at position 1")),
    Case("label_negative", lambda: F.softmax_cross_entropy(_x(2, 3), np.array([-1, 0])), ValueError,
         ("[0, 3)", "got -1 at position 0")),
    Case("labels_wrong_length", lambda: F.softmax_cross_entropy(_x(2, 3), np.array([0, 1, 2])), ValueError,
         ("(2,)", "(2, 3)", "got shape (3,)")),
    Case("labels_float", lambda: F.softmax_cross_entropy(_x(2, 3), np.array([0.0, 1.0])), ValueError,
         ("integers", "float64")),
    Case("onehot_wrong_shape", lambda: F.softmax_cross_entropy(_x(2, 3), np.eye(2)), ValueError,
         ("(2, 3)", "got shape (2, 2)")),
    Case("onehot_row_sum", lambda: F.softmax_cross_entropy(_x(2, 3), np.array([[1.0, 0, 0], [0.5, 0, 0]])),
         ValueError, ("sum to 1", "row 1", "0.5")),
    Case("mse_shapes", lambda: F.mse_loss(_x(4, 1), np.ones(4)), ValueError, ("same shape", "(4, 1)", "(4,)")),
    Case("bce_shapes", lambda: F.binary_cross_entropy_with_logits(_x(4), np.ones((4, 1))), ValueError,
         ("same shape", "(4,)", "(4, 1)")),
    Case("accuracy_labels_length", lambda: F.accuracy(np.ones((3, 2)), np.array([0, 1])), ValueError,
         ("(3,)", "got shape (2,)")),
    # ------------------------------------------------------------------ layers
    Case("linear_features", lambda: nn.Linear(3, 4, rng=0)(np.ones((2, 5), np.float32)), ValueError,
         ("Linear(in_features=3, out_features=4", "expects 3 input features", "got 5", "(2, 5)")),
    Case("linear_in_sequential_names_position",
         lambda: nn.Sequential(nn.Linear(3, 4, rng=0), nn.ReLU(), nn.Linear(5, 2, rng=0))(np.ones((2, 3), np.float32)),
         ValueError, ("Sequential[2] (Linear)", "expects 5 input features", "got 4")),
    Case("linear_in_mlp_names_position",
         lambda: nn.MLP([3, 4, 4, 2], residual=True, rng=0)(np.ones((2, 4), np.float32)),
         ValueError, ("MLP[0] (Linear)", "expects 3 input features", "got 4")),
    Case("linear_size", lambda: nn.Linear(0, 3), ValueError, ("in_features", "positive integer", "got 0")),
    Case("linear_init_name", lambda: nn.Linear(3, 4, init="kaiming"), ValueError, ("'kaiming'", "he", "xavier")),
    Case("sequential_function", lambda: nn.Sequential(nn.Linear(3, 4), np.tanh), TypeError,
         ("position 1", "Layer", "ufunc")),
    Case("sequential_class", lambda: nn.Sequential(nn.Linear(3, 4), nn.ReLU), TypeError,
         ("position 1", "class ReLU", "ReLU()")),
    Case("residual_non_layer", lambda: nn.Residual(lambda x: x), TypeError, ("Layer", "function")),
    Case("mlp_sizes", lambda: nn.MLP([3]), ValueError, ("at least an input and an output", "[3]")),
    Case("mlp_activation", lambda: nn.MLP([3, 4, 2], activation="relu6"), ValueError, ("'relu6'", "relu", "tanh")),
    Case("batchnorm_features", lambda: nn.BatchNorm1d(4)(np.ones((3, 5), np.float32)), ValueError,
         ("(N, 4)", "(3, 5)")),
    Case("batchnorm_size", lambda: nn.BatchNorm1d(0), ValueError, ("num_features", "got 0")),
    Case("batchnorm_momentum", lambda: nn.BatchNorm1d(4, momentum=2), ValueError, ("momentum", "[0, 1]", "got 2")),
    Case("batchnorm_eps", lambda: nn.BatchNorm1d(4, eps=0), ValueError, ("eps", "positive", "got 0")),
    Case("batchnorm_one_sample", lambda: nn.BatchNorm1d(2)(np.ones((1, 2), np.float32)), ValueError,
         ("more than one sample", "(1, 2)")),
    Case("dropout_one", lambda: nn.Dropout(1.0), ValueError, ("[0, 1)", "got 1.0")),
    Case("dropout_negative", lambda: nn.Dropout(-0.1), ValueError, ("[0, 1)", "got -0.1")),
    Case("dropout_string", lambda: nn.Dropout("0.5"), TypeError, ("number", "str", "'0.5'")),
    Case("softmax_axis", lambda: F.softmax(_x(2, 3), axis=2), ValueError, ("axis 2", "(2, 3)")),
    # ------------------------------------------------------------------ optimizers
    Case("sgd_lr_negative", lambda: optim.SGD([_x(2)], lr=-1), ValueError, ("lr", ">= 0", "lr=-1")),
    Case("sgd_lr_nan", lambda: optim.SGD([_x(2)], lr=float("nan")), ValueError, ("lr", "nan")),
    Case("sgd_lr_string", lambda: optim.SGD([_x(2)], lr="0.1"), TypeError, ("lr", "real number", "'0.1'")),
    Case("momentum_range", lambda: optim.Momentum([_x(2)], momentum=1.5), ValueError,
         ("momentum", "[0, 1)", "1.5")),
    Case("adam_beta1", lambda: optim.Adam([_x(2)], beta1=1.0), ValueError, ("beta1", "[0, 1)", "1.0")),
    Case("adam_beta2", lambda: optim.Adam([_x(2)], beta2=-0.1), ValueError, ("beta2", "[0, 1)", "-0.1")),
    Case("adam_eps", lambda: optim.Adam([_x(2)], eps=0), ValueError, ("eps", "> 0", "eps=0")),
    Case("adamw_weight_decay", lambda: optim.AdamW([_x(2)], weight_decay=-0.1), ValueError,
         ("weight_decay", ">= 0", "-0.1")),
    Case("rmsprop_decay_rate", lambda: optim.RMSprop([_x(2)], decay_rate=2), ValueError,
         ("decay_rate", "[0, 1]", "2")),
    Case("adagrad_eps", lambda: optim.AdaGrad([_x(2)], eps=-1), ValueError, ("eps", "> 0", "-1")),
    Case("optimizer_no_params", lambda: optim.SGD([]), ValueError, ("params is empty",)),
    Case("optimizer_duplicate_param", lambda: (lambda p: optim.SGD([p, p]))(_x(2)), ValueError,
         ("params[1]", "more than once")),
    Case("optimizer_state_dict_as_params", lambda: optim.SGD(nn.Linear(2, 2).state_dict()), TypeError,
         ("iterable of Tensors", "dict")),
    Case("optimizer_grad_shape", _step_with_a_wrong_grad, ValueError, ("parameter 0", "(3, 2)", "(2, 3)")),
    Case("clip_grad_norm", lambda: nn.utils.clip_grad_norm_([_x(2)], -1), ValueError, ("max_norm", "-1")),
    # ------------------------------------------------------------------ schedulers
    Case("steplr_step_size", lambda: sched.StepLR(_opt(), step_size=0), ValueError, ("step_size", ">= 1", "0")),
    Case("steplr_gamma", lambda: sched.StepLR(_opt(), step_size=2, gamma=-0.5), ValueError, ("gamma", "-0.5")),
    Case("exponentiallr_gamma", lambda: sched.ExponentialLR(_opt(), gamma=-1), ValueError, ("gamma", "-1")),
    Case("cosine_t_max", lambda: sched.CosineAnnealingLR(_opt(), T_max=0), ValueError, ("T_max", ">= 1", "0")),
    Case("warmup_steps", lambda: sched.LinearWarmup(_opt(), warmup_steps=0), ValueError, ("warmup_steps", "0")),
    Case("warmup_cosine_total", lambda: sched.WarmupCosine(_opt(), warmup_steps=10, total_steps=5), ValueError,
         ("total_steps must exceed warmup_steps", "total_steps=5", "warmup_steps=10")),
    Case("lambdalr_not_callable", lambda: sched.LambdaLR(_opt(), 0.5), TypeError, ("lr_lambda", "float")),
    Case("plateau_factor", lambda: sched.ReduceLROnPlateau(_opt(), factor=1.5), ValueError, ("factor", "1.5")),
    Case("plateau_mode", lambda: sched.ReduceLROnPlateau(_opt(), mode="up"), ValueError, ("'min' or 'max'", "'up'")),
    # ------------------------------------------------------------------ data and seeds
    Case("dataloader_lengths", lambda: tg.data.DataLoader(np.ones((10, 2)), np.ones(9)), ValueError,
         ("same number of samples", "len(X)=10", "len(y)=9")),
    Case("dataloader_batch_size", lambda: tg.data.DataLoader(np.ones((10, 2)), np.ones(10), batch_size=0), ValueError,
         ("batch_size", ">= 1", "0")),
    Case("dataloader_empty", lambda: tg.data.DataLoader(np.ones((0, 2)), np.ones(0)), ValueError, ("empty",)),
    Case("dataset_size", lambda: tg.data.spiral(0), ValueError, ("n_per_class", ">= 1", "0")),
    Case("manual_seed_type", lambda: tg.manual_seed("42"), TypeError, ("seed", "int", "'42'")),
    Case("rng_type", lambda: nn.Dropout(0.5, rng="seed"), TypeError, ("Generator", "int", "str")),
    Case("fit_epochs", lambda: tg.train.fit(nn.Linear(2, 2), F.mse_loss, _opt(), [], epochs=-1), ValueError,
         ("epochs", "-1")),
    Case("fit_nonfinite_loss", _diverging_fit, tg.train.NonFiniteLossError,
         ("loss is nan", "epoch 1/3, batch 1", "diverged", ".history")),
    # ------------------------------------------------------------------ dtypes and empty reductions
    Case("default_dtype_float16", lambda: tg.set_default_dtype(np.float16), TypeError,
         ("float32 or float64", "got float16")),
    Case("max_of_nothing", lambda: _x(0, 3).max(axis=0), ValueError, ("max(axis=0)", "(0, 3)", "axis 0 has length 0")),
    Case("min_of_empty", lambda: _x(2, 0).min(), ValueError, ("min(axis=None)", "(2, 0)", "axis 1 has length 0")),
    # ------------------------------------------------------------------ files: the message names the file
    Case("load_empty_file", _in_a_folder(_load_bytes(b"")), ValueError, ("model.npz", "empty")),
    Case("load_truncated_file", _in_a_folder(_load_bytes(_saved_bytes()[:100])), ValueError,
         ("model.npz", "not an .npz archive")),
    Case("load_damaged_array", _in_a_folder(_load_bytes(_with_a_damaged_array(_saved_bytes()))), ValueError,
         ("entry 'W'", "model.npz", "damaged", "CRC")),
    Case("save_missing_folder", _in_a_folder(lambda d: tg.save({"a": np.ones(2)}, os.path.join(d, "no", "m.npz"))),
         FileNotFoundError, ("save: cannot write", os.path.join("no", "m.npz"), "does not exist")),
    Case("save_onto_a_folder", _in_a_folder(_save_onto_a_folder), IsADirectoryError, ("model.npz", "is a folder")),
    Case("save_onto_a_read_only_file", _in_a_folder(_save_onto_a_read_only_file), PermissionError,
         ("model.npz", "read-only")),
    Case("save_a_list", lambda: tg.save([np.ones(2)], "unused.npz"), TypeError,
         ("Layer or a dict", "optimizer", "list")),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_the_error_names_what_was_expected_and_what_was_given(case):
    with pytest.raises(Exception) as info:
        case.fn()
    assert type(info.value) is case.exc, f"{type(info.value).__name__}: {info.value}"
    message = str(info.value)
    missing = [f for f in case.fragments if f not in message]
    assert not missing, f"{missing} not in {message!r}"


def test_backward_errors_are_runtime_errors_and_value_errors():
    assert issubclass(tg.BackwardError, RuntimeError) and issubclass(tg.BackwardError, ValueError)


def test_every_case_has_a_unique_id_and_names_something_given():
    assert len({c.id for c in CASES}) == len(CASES)
    assert all(c.fragments for c in CASES)


def test_a_ragged_list_says_the_tensor_needs_a_rectangular_shape():
    with pytest.raises(ValueError, match=r"Tensor.*\[\[1, 2\], \[3\]\]"):
        Tensor([[1, 2], [3]])


# ---------------------------------------------------------------------- failed loads change nothing
def _model(seed: int) -> nn.Layer:
    m = nn.MLP([3, 5, 2], batchnorm=True, rng=seed)
    m(np.random.default_rng(seed).standard_normal((4, 3)).astype(np.float32))
    return m


def _bytes(model: nn.Layer) -> dict[str, bytes]:
    return {k: v.tobytes() for k, v in model.state_dict().items()}


def test_model_load_names_the_first_difference_in_model_order_and_changes_nothing():
    target = _model(0)
    state = _model(1).state_dict()
    # Every entry before the bad ones is valid, so a load that wrote as it went would change the model.
    state["3.W"] = np.ones((2, 5), np.float32)
    state["0.W"] = np.ones((4, 5), np.float32)
    before = _bytes(target)
    with pytest.raises(ValueError, match=r"'0\.W' has shape \(4, 5\) in the state but \(3, 5\)"):
        target.load_state_dict(state)
    assert _bytes(target) == before


def test_model_load_refuses_a_dtype_that_cannot_be_cast_and_changes_nothing():
    target = _model(0)
    state = _model(1).state_dict()
    state["1.running_var"] = state["1.running_var"].astype(np.complex64)
    before = _bytes(target)
    with pytest.raises(ValueError, match=r"'1\.running_var' has dtype complex64 in the state but float32"):
        target.load_state_dict(state)
    assert _bytes(target) == before


def _trained_adam(seed: int) -> tuple[optim.Adam, list[Tensor]]:
    model = nn.Linear(3, 2, rng=seed)
    opt = optim.Adam(model.parameters(), lr=0.01)
    rng = np.random.default_rng(seed)
    for _ in range(3):
        opt.zero_grad()
        (model(rng.standard_normal((4, 3)).astype(np.float32)) ** 2).mean().backward()
        opt.step()
    return opt, model.parameters()


def _opt_bytes(opt) -> dict[str, bytes]:
    return {k: np.asarray(v).tobytes() for k, v in opt.state_dict().items()}


@pytest.mark.parametrize(("change", "fragments"), [
    (lambda s: s.update(beta1=1.5), ("beta1", "[0, 1)", "1.5")),
    (lambda s: s.update(t=-2), ("'t'", "non-negative integer", "-2")),
    (lambda s: s.update({"m.1": np.array(["a", "b"])}), ("'m.1'", "dtype <U1", "float")),
    (lambda s: s.update(eps=float("inf")), ("'eps'", "finite", "inf")),
], ids=["hyperparameter_range", "negative_count", "string_buffer", "infinite_eps"])
def test_optimizer_load_refuses_bad_values_and_changes_nothing(change, fragments):
    opt, _ = _trained_adam(0)
    state = _trained_adam(1)[0].state_dict()
    change(state)
    before = _opt_bytes(opt)
    lr = opt.lr
    with pytest.raises(ValueError) as info:
        opt.load_state_dict(state)
    assert all(f in str(info.value) for f in fragments), str(info.value)
    assert _opt_bytes(opt) == before and opt.lr == lr


def test_optimizer_state_from_a_bigger_model_is_refused_naming_the_parameter():
    big = nn.MLP([3, 4, 2], rng=0)
    opt_big = optim.Momentum(big.parameters(), lr=0.1)
    for p in big.parameters():
        p.grad = np.ones_like(p.data)
    opt_big.step()
    small = nn.Linear(3, 4, rng=0)
    opt_small = optim.Momentum(small.parameters(), lr=0.5)
    with pytest.raises(ValueError, match=r"'velocity\.2' names parameter 2, but the optimizer has 2 parameters"):
        opt_small.load_state_dict(opt_big.state_dict())
    assert opt_small.lr == 0.5 and opt_small.velocity == {}


# ---------------------------------------------------------------------- saving never loses the old file
def test_a_save_that_fails_at_the_final_rename_keeps_the_old_file_and_no_temporary(tmp_path, monkeypatch):
    path = tmp_path / "model.npz"
    tg.save(_model(0), path)
    before = path.read_bytes()

    def no_rename(src, dst):
        raise OSError("rename failed")

    monkeypatch.setattr(os, "replace", no_rename)
    with pytest.raises(OSError, match="rename failed"):
        tg.save(_model(1), path)
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["model.npz"]


def test_load_never_unpickles_even_an_object_array_alone(tmp_path):
    # np.savez pickles object arrays; loading one would run code chosen by whoever wrote the file.
    np.savez(tmp_path / "evil.npz", payload=np.array([print], dtype=object))
    with pytest.raises(ValueError, match=r"'payload'.*without pickle"):
        tg.load(tmp_path / "evil.npz")
