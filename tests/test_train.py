"""The training loop: toy MLPs reach the chapter's accuracy with its 推奨設定, History records what happened,
modes and schedulers are driven per epoch, Ctrl-C stops cleanly, the bar appears only on a terminal."""

import io
import math
import signal

import numpy as np
import pytest

import tinygrad_jp as tg
from tinygrad_jp import F, Tensor, data, nn, optim, train
from tinygrad_jp.optim import lr_scheduler


def _full_accuracy(model, X, y):
    model.eval()
    with tg.no_grad():
        return F.accuracy(model(Tensor(X)), y)


def _full_loss(model, X, y):
    with tg.no_grad():
        return F.softmax_cross_entropy(model(Tensor(X)), y).item()


# ---------------------------------------------------------------------- toy MLPs train (ReLU, He, Adam 0.001)
def test_mlp_learns_the_three_class_spiral_with_the_recommended_setting():
    X, y = data.spiral(100, 3, rng=0)
    model = nn.MLP([2, 64, 64, 3], activation="relu", init="he", rng=0)
    opt = optim.Adam(model.parameters(), lr=0.001)
    history = train.fit(model, F.softmax_cross_entropy, opt, data.DataLoader(X, y, 32, rng=0), 150,
                        progress=False)
    assert len(X) == 300
    assert history.accuracy[-1] >= 0.98
    assert _full_accuracy(model, X, y) >= 0.98
    assert history.loss[-1] < 0.1 * history.loss[0]


def test_mlp_learns_moons_with_the_recommended_setting():
    X, y = data.moons(200, noise=0.1, rng=0)
    model = nn.MLP([2, 32, 32, 2], activation="relu", init="he", rng=0)
    opt = optim.Adam(model.parameters(), lr=0.001)
    history = train.fit(model, F.softmax_cross_entropy, opt, data.DataLoader(X, y, 32, rng=0), 150,
                        progress=False)
    assert history.accuracy[-1] >= 0.97
    assert _full_accuracy(model, X, y) >= 0.97


@pytest.mark.parametrize("opt_cls", [optim.SGD, optim.Momentum, optim.AdaGrad, optim.RMSprop, optim.Adam])
def test_each_chapter_optimizer_lowers_the_loss_of_the_same_toy_mlp(opt_cls):
    X, y = data.spiral(100, 3, rng=1)
    model = nn.MLP([2, 32, 3], rng=1)
    start = _full_loss(model, X, y)
    train.fit(model, F.softmax_cross_entropy, opt_cls(model.parameters()), data.DataLoader(X, y, 30, rng=1), 15,
              progress=False)
    assert _full_loss(model, X, y) < start


# ---------------------------------------------------------------------- what History records
def test_with_lr_zero_the_epoch_loss_and_accuracy_are_those_of_the_whole_data_set():
    X, y = data.spiral(40, 3, rng=2)
    model = nn.MLP([2, 16, 3], rng=2)
    expected_loss, expected_acc = _full_loss(model, X, y), _full_accuracy(model, X, y)
    # Batches of unequal size (120 = 7·16 + 8): the epoch mean must weight each batch by its size.
    history = train.fit(model, F.softmax_cross_entropy, optim.SGD(model.parameters(), lr=0.0),
                        data.DataLoader(X, y, 16, rng=2), 2, progress=False)
    assert history.loss == pytest.approx([expected_loss] * 2, rel=1e-5)
    assert history.accuracy == pytest.approx([expected_acc] * 2)


def test_gradient_norms_are_recorded_per_parameter_name():
    X, y = data.moons(50, rng=0)
    model = nn.MLP([2, 8, 2], rng=0)
    model.zero_grad()
    F.softmax_cross_entropy(model(Tensor(X)), y).backward()
    expected = {name: float(np.linalg.norm(p.grad)) for name, p in model.named_parameters()}
    model.zero_grad()
    history = train.fit(model, F.softmax_cross_entropy, optim.SGD(model.parameters(), lr=0.0),
                        data.DataLoader(X, y, 50, shuffle=False), 2, progress=False)
    assert list(history.grad_norms) == [name for name, _ in model.named_parameters()] == ["0.W", "0.b", "2.W", "2.b"]
    for name, norms in history.grad_norms.items():
        assert norms == pytest.approx([expected[name]] * 2, rel=1e-5)


def test_history_with_validation_and_a_scheduler():
    X, y = data.circles(120, rng=0)
    Xv, yv = data.circles(60, rng=1)
    model = nn.MLP([2, 16, 2], rng=0)
    opt = optim.Adam(model.parameters(), lr=0.01)
    sched = lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
    history = train.fit(model, F.softmax_cross_entropy, opt, data.DataLoader(X, y, 40, rng=0), 3,
                        val_loader=data.DataLoader(Xv, yv, 25, shuffle=False), scheduler=sched, progress=False)
    assert history.epochs == len(history) == 3 and not history.interrupted
    assert history.lr == pytest.approx([0.01, 0.005, 0.0025])
    assert opt.lr == pytest.approx(0.00125)
    assert len(history.val_loss) == len(history.val_accuracy) == len(history.epoch_time) == 3
    assert all(0 <= a <= 1 for a in history.accuracy + history.val_accuracy)
    model.eval()
    assert history.val_loss[-1] == pytest.approx(_full_loss(model, Xv, yv), rel=1e-5)
    assert history.val_accuracy[-1] == pytest.approx(_full_accuracy(model, Xv, yv))


class _SpyPlateau(lr_scheduler.ReduceLROnPlateau):
    def __init__(self, opt):
        super().__init__(opt)
        self.seen = []

    def step(self, metric):
        self.seen.append(metric)
        super().step(metric)


@pytest.mark.parametrize("with_val", [False, True])
def test_reduce_on_plateau_gets_the_validation_loss_or_else_the_training_loss(with_val):
    X, y = data.xor(64, rng=0)
    model = nn.MLP([2, 8, 2], rng=0)
    opt = optim.SGD(model.parameters(), lr=0.1)
    sched = _SpyPlateau(opt)
    val = data.DataLoader(X, y, 64, shuffle=False) if with_val else None
    history = train.fit(model, F.softmax_cross_entropy, opt, data.DataLoader(X, y, 16, rng=0), 4,
                        val_loader=val, scheduler=sched, progress=False)
    assert sched.seen == (history.val_loss if with_val else history.loss)


def test_loss_for_regression_targets_records_no_accuracy():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(64, 3)).astype(np.float32)
    t = (X @ np.array([[1.0], [-2.0], [0.5]], dtype=np.float32)).astype(np.float32)
    model = nn.Linear(3, 1, rng=0)
    history = train.fit(model, F.mse_loss, optim.Adam(model.parameters(), lr=0.05), data.DataLoader(X, t, 16, rng=0),
                        30, progress=False)
    assert history.accuracy == [] and len(history.loss) == 30
    assert history.loss[-1] < 0.05 * history.loss[0]


# ---------------------------------------------------------------------- modes
class _ModeSpy(nn.Layer):
    def __init__(self):
        self.net = nn.MLP([2, 8, 2], rng=0)
        self.modes = []

    def forward(self, x):
        self.modes.append((self.training, tg.is_grad_enabled()))
        return self.net(x)


def test_model_is_in_train_mode_for_training_and_eval_mode_without_grad_for_validation():
    X, y = data.moons(40, rng=0)
    model = _ModeSpy()
    model.eval()
    train.fit(model, F.softmax_cross_entropy, optim.SGD(model.parameters()), data.DataLoader(X, y, 10, rng=0), 2,
              val_loader=data.DataLoader(X, y, 20, shuffle=False), progress=False)
    # Per epoch: 4 training batches, then 2 validation batches.
    assert model.modes == ([(True, True)] * 4 + [(False, False)] * 2) * 2
    assert model.training is False  # the mode it had when fit was called


# ---------------------------------------------------------------------- Ctrl-C
def _counting_loss(trigger_at, action):
    calls = {"n": 0}

    def loss_fn(out, yb):
        calls["n"] += 1
        if calls["n"] == trigger_at:
            action()
        return F.softmax_cross_entropy(out, yb)

    return loss_fn, calls


def _raise_keyboard_interrupt():
    raise KeyboardInterrupt


def test_keyboard_interrupt_mid_epoch_returns_the_history_so_far():
    X, y = data.spiral(20, 3, rng=0)
    model = nn.MLP([2, 8, 3], rng=0)
    opt = optim.Adam(model.parameters())
    loss_fn, calls = _counting_loss(4 + 3, _raise_keyboard_interrupt)  # epoch 2, batch 3 (4 batches per epoch)
    history = train.fit(model, loss_fn, opt, data.DataLoader(X, y, 16, rng=0), 10, progress=False)
    assert history.interrupted
    assert history.epochs == 2  # one full epoch and the two finished batches of the second
    assert calls["n"] == 7
    assert opt.t == 4 + 2


def test_ctrl_c_finishes_the_current_batch_then_stops():
    X, y = data.spiral(20, 3, rng=0)
    model = nn.MLP([2, 8, 3], rng=0)
    opt = optim.Adam(model.parameters())
    handler_before = signal.getsignal(signal.SIGINT)
    loss_fn, calls = _counting_loss(3, lambda: signal.raise_signal(signal.SIGINT))
    history = train.fit(model, loss_fn, opt, data.DataLoader(X, y, 16, rng=0), 10, progress=False)
    assert history.interrupted and history.epochs == 1
    assert calls["n"] == 3 and opt.t == 3  # the interrupted batch was still applied
    assert signal.getsignal(signal.SIGINT) is handler_before


# ---------------------------------------------------------------------- progress bar
class _FakeTerminal(io.StringIO):
    def isatty(self):
        return True


def _small_fit(progress):
    X, y = data.moons(40, rng=0)
    model = nn.MLP([2, 4, 2], rng=0)
    return train.fit(model, F.softmax_cross_entropy, optim.Adam(model.parameters()), data.DataLoader(X, y, 10, rng=0),
                     2, progress=progress)


def test_one_plain_line_per_epoch_when_stdout_is_not_a_terminal(capsys):
    """A log file or a pipe gets readable lines, not a bar redrawn with carriage returns."""
    history = _small_fit(progress=True)
    captured = capsys.readouterr()
    lines = captured.out.splitlines()
    assert "\r" not in captured.out and captured.err == ""
    assert [line.split(":")[0] for line in lines] == ["epoch 1/2", "epoch 2/2"]
    for line, loss in zip(lines, history.loss):
        assert f"loss={loss:.4f}" in line and "acc=" in line


def test_the_epoch_line_carries_the_validation_loss(capsys):
    X, y = data.moons(40, rng=0)
    model = nn.MLP([2, 4, 2], rng=0)
    history = train.fit(model, F.softmax_cross_entropy, optim.Adam(model.parameters()),
                        data.DataLoader(X, y, 10, rng=0), 3, val_loader=data.DataLoader(X, y, 20, shuffle=False))
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3
    for line, val_loss in zip(lines, history.val_loss):
        assert line.endswith(f"val_loss={val_loss:.4f}")


def test_a_progress_bar_with_loss_and_accuracy_on_a_terminal(monkeypatch):
    fake = _FakeTerminal()
    monkeypatch.setattr("sys.stdout", fake)
    _small_fit(progress=True)
    out = fake.getvalue()
    assert "epoch 2/2" in out and "loss=" in out and "acc=" in out


def test_progress_false_prints_nothing_even_on_a_terminal(monkeypatch):
    fake = _FakeTerminal()
    monkeypatch.setattr("sys.stdout", fake)
    _small_fit(progress=False)
    assert fake.getvalue() == ""


# ---------------------------------------------------------------------- resuming and errors
def test_training_resumed_from_saved_model_and_optimizer_continues_bit_identically():
    X, y = data.spiral(30, 3, rng=0)
    loader = data.DataLoader(X, y, 16, shuffle=False)
    model = nn.MLP([2, 16, 3], rng=0)
    opt = optim.Adam(model.parameters(), lr=0.01)
    train.fit(model, F.softmax_cross_entropy, opt, loader, 3, progress=False)
    saved_model, saved_opt = model.state_dict(), opt.state_dict()
    train.fit(model, F.softmax_cross_entropy, opt, loader, 2, progress=False)

    resumed = nn.MLP([2, 16, 3], rng=99)
    resumed.load_state_dict(saved_model)
    opt2 = optim.Adam(resumed.parameters())
    opt2.load_state_dict(saved_opt)
    train.fit(resumed, F.softmax_cross_entropy, opt2, loader, 2, progress=False)
    for (name, a), (_, b) in zip(model.named_parameters(), resumed.named_parameters()):
        np.testing.assert_array_equal(a.data, b.data, err_msg=name)


def test_a_loss_that_is_not_a_scalar_tensor_is_refused():
    X, y = data.moons(20, rng=0)
    model = nn.MLP([2, 4, 2], rng=0)
    with pytest.raises(TypeError, match=r"scalar Tensor.*\(10, 2\)"):
        train.fit(model, lambda out, yb: out, optim.SGD(model.parameters()), data.DataLoader(X, y, 10), 1,
                  progress=False)


def test_a_loader_without_batches_is_refused():
    X, y = data.moons(20, rng=0)
    model = nn.MLP([2, 4, 2], rng=0)
    with pytest.raises(ValueError, match="no batches"):
        train.fit(model, F.softmax_cross_entropy, optim.SGD(model.parameters()),
                  data.DataLoader(X, y, 32, drop_last=True), 1, progress=False)
    with pytest.raises(ValueError, match="epochs"):
        train.fit(model, F.softmax_cross_entropy, optim.SGD(model.parameters()), data.DataLoader(X, y, 4), -1)


def test_an_epoch_of_the_spiral_mlp_is_fast():
    X, y = data.spiral(100, 3, rng=0)
    model = nn.MLP([2, 64, 64, 3], rng=0)
    history = train.fit(model, F.softmax_cross_entropy, optim.Adam(model.parameters()),
                        data.DataLoader(X, y, 32, rng=0), 5, progress=False)
    # 10 batches of 32 points: generous bound for a slow CI machine (it takes about 10 ms here).
    assert min(history.epoch_time) < 0.25
    assert all(math.isfinite(t) for t in history.epoch_time)
