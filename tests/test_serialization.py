"""Saving: bit-exact round trips, atomic writes, no pickle, loads that change nothing when they fail, frozen
parameters kept, damaged files and file system errors that name the file, symlinks kept, no leftovers."""

import os
import shutil
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import tinygrad_jp as tg
from tinygrad_jp import nn

ROOT = Path(__file__).resolve().parent.parent


def _model(seed=0, width=8):
    m = nn.MLP([3, width, width, 2], batchnorm=True, residual=True, rng=seed)
    m(np.random.default_rng(seed).standard_normal((5, 3)).astype(np.float32))  # move the running statistics
    return m


def _snapshot(model):
    return {name: value.copy() for name, value in model.state_dict().items()}


def test_model_round_trip_is_bit_exact(tmp_path):
    path = tmp_path / "model.npz"
    m = _model(0)
    tg.save(m, path)
    loaded = tg.load(path)
    state = m.state_dict()
    assert list(loaded) == list(state)
    for name in state:
        assert loaded[name].dtype == state[name].dtype
        np.testing.assert_array_equal(loaded[name], state[name], strict=True)
    other = _model(1)
    other.load_state_dict(loaded)
    for name, value in other.state_dict().items():
        assert value.tobytes() == state[name].tobytes(), name


@given(arrays=st.dictionaries(
    st.text(st.characters(codec="ascii", categories=["L", "N"]), min_size=1, max_size=8),
    hnp.arrays(st.sampled_from([np.float32, np.float64, np.int64, np.uint8, np.bool_]), hnp.array_shapes(min_dims=0)),
    max_size=4,
))
def test_any_dict_of_numeric_arrays_round_trips_exactly(tmp_path_factory, arrays):
    path = tmp_path_factory.mktemp("d") / "state.npz"
    tg.save(arrays, path)
    loaded = tg.load(path)
    assert list(loaded) == list(arrays)
    for name, arr in arrays.items():
        assert loaded[name].dtype == arr.dtype and loaded[name].shape == arr.shape
        assert loaded[name].tobytes() == arr.tobytes()  # bitwise, so NaN payloads and -0.0 count too


def test_names_numpy_reserves_are_fine(tmp_path):
    state = {"file": np.arange(3), "allow_pickle": np.ones(2, np.float32), "0.W": np.zeros((2, 2))}
    tg.save(state, tmp_path / "s.npz")
    assert list(tg.load(tmp_path / "s.npz")) == list(state)


def test_tensors_in_a_dict_are_saved_as_their_data(tmp_path):
    t = tg.Tensor(np.arange(4, dtype=np.float32), requires_grad=True)
    tg.save({"t": t}, tmp_path / "t.npz")
    np.testing.assert_array_equal(tg.load(tmp_path / "t.npz")["t"], t.data)


def test_path_is_used_as_given(tmp_path):
    path = tmp_path / "weights.bin"
    tg.save({"a": np.ones(2)}, str(path))
    assert os.listdir(tmp_path) == ["weights.bin"]


def test_a_failed_write_leaves_the_old_file_intact_and_no_temporary_file(tmp_path, monkeypatch):
    path = tmp_path / "model.npz"
    tg.save(_model(0), path)
    before = path.read_bytes()
    real_write = np.lib.format.write_array
    calls = []

    def write_half_then_fail(fp, array, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            fp.write(b"\x93NUMPY partial")
            raise OSError("disk full")
        real_write(fp, array, **kwargs)

    monkeypatch.setattr(np.lib.format, "write_array", write_half_then_fail)
    with pytest.raises(OSError, match="disk full"):
        tg.save(_model(1), path)
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["model.npz"]


def test_a_failed_first_write_leaves_nothing(tmp_path, monkeypatch):
    def fail(fp, array, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(np.lib.format, "write_array", fail)
    with pytest.raises(KeyboardInterrupt):
        tg.save({"a": np.ones(3)}, tmp_path / "new.npz")
    assert os.listdir(tmp_path) == []


def test_object_arrays_are_refused_on_save_and_on_load(tmp_path):
    with pytest.raises(ValueError, match="'bad' is an array of Python objects"):
        tg.save({"bad": np.array([{}, 1], dtype=object)}, tmp_path / "x.npz")
    assert os.listdir(tmp_path) == []
    np.savez(tmp_path / "pickled.npz", ok=np.ones(2), bad=np.array([{"a": 1}], dtype=object))
    with pytest.raises(ValueError, match=r"entry 'bad' .* without pickle"):
        tg.load(tmp_path / "pickled.npz")


def test_load_refuses_a_single_npy_and_garbage(tmp_path):
    np.save(tmp_path / "one.npy", np.ones(3))
    with pytest.raises(ValueError, match="single array"):
        tg.load(tmp_path / "one.npy")
    (tmp_path / "junk.npz").write_bytes(b"not a zip file at all")
    with pytest.raises(ValueError, match=r"not an \.npz archive"):
        tg.load(tmp_path / "junk.npz")


def test_save_rejects_what_is_not_a_model_or_dict(tmp_path):
    with pytest.raises(TypeError, match="Layer or a dict"):
        tg.save([np.ones(2)], tmp_path / "x.npz")
    with pytest.raises(TypeError, match="names must be strings"):
        tg.save({1: np.ones(2)}, tmp_path / "x.npz")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda s: s.pop("3.block.0.W"), "missing entry '3.block.0.W'"),
        (lambda s: s.update(extra=np.ones(2, np.float32)), "unexpected entry 'extra'"),
        (lambda s: s.update({"4.W": np.ones((8, 3), np.float32)}),
         r"'4.W' has shape \(8, 3\) in the state but \(8, 2\)"),
        (lambda s: s.update({"1.running_var": np.ones(7, np.float32)}), "'1.running_var' has shape"),
    ],
)
def test_a_mismatching_file_raises_naming_the_difference_and_changes_nothing(tmp_path, change, message):
    target = _model(0)
    state = _model(1).state_dict()
    change(state)
    tg.save(state, tmp_path / "other.npz")
    before = _snapshot(target)
    with pytest.raises(ValueError, match=message):
        target.load_state_dict(tg.load(tmp_path / "other.npz"))
    after = _snapshot(target)
    assert list(after) == list(before)
    for name in before:
        assert after[name].tobytes() == before[name].tobytes(), name


def test_a_file_from_a_different_architecture_is_refused(tmp_path):
    tg.save(_model(0, width=8), tmp_path / "wide.npz")
    narrow = _model(0, width=4)
    before = _snapshot(narrow)
    with pytest.raises(ValueError, match=r"'0.W' has shape \(3, 8\) in the state but \(3, 4\)"):
        narrow.load_state_dict(tg.load(tmp_path / "wide.npz"))
    assert all(np.array_equal(v, before[k]) for k, v in narrow.state_dict().items())


# ---------------------------------------------------------------------- frozen parameters
def _freeze(model, names):
    for name, p in model.named_parameters():
        if name in names:
            p.requires_grad_(False)


FROZEN = [set(), {"0.W"}, {"0.W", "0.b", "1.gamma", "1.beta"}, {"4.W", "4.b", "3.block.0.W"}]


@pytest.mark.parametrize("frozen", FROZEN, ids=lambda f: ",".join(sorted(f)) or "none")
def test_a_state_dict_holds_every_parameter_and_buffer_frozen_or_not(frozen):
    m = _model(0)
    names = list(m.state_dict())
    _freeze(m, frozen)
    assert list(m.state_dict()) == names
    assert [n for n, _ in m.named_parameters()] == [n for n, _ in _model(0).named_parameters()]
    assert len(m.parameters()) == len(_model(0).parameters())


def _by_name(model, name):
    """The Tensor or buffer a state name such as "3.block.0.W" stands for, found without the state dict."""
    obj = model
    for part in name.split("."):
        obj = obj[int(part)] if part.isdigit() else getattr(obj, part)
    return obj.data if isinstance(obj, tg.Tensor) else obj


@pytest.mark.parametrize("frozen", FROZEN[1:], ids=lambda f: ",".join(sorted(f)))
def test_frozen_weights_are_saved_and_loaded_into_an_identically_frozen_model(tmp_path, frozen):
    source, target = _model(0), _model(1)
    names = list(source.state_dict())
    _freeze(source, frozen)
    _freeze(target, frozen)
    tg.save(source, tmp_path / "frozen.npz")
    target.load_state_dict(tg.load(tmp_path / "frozen.npz"))
    for name in names:
        assert _by_name(target, name).tobytes() == _by_name(source, name).tobytes(), name
    # Still frozen after the load, and an optimizer over all parameters leaves the frozen ones alone.
    opt = tg.optim.SGD(target.parameters(), lr=0.5)
    before = _snapshot(target)
    opt.zero_grad()
    (target(np.ones((4, 3), np.float32)) ** 2).mean().backward()
    opt.step()
    for name, p in target.named_parameters():
        assert p.requires_grad == (name not in frozen) and (p.grad is None) == (name in frozen), name
        if name in frozen:
            assert p.data.tobytes() == before[name].tobytes(), name


def test_a_mismatching_file_changes_no_parameter_frozen_or_not():
    target = _model(0)
    _freeze(target, {"0.W", "1.gamma"})
    state = _model(1).state_dict()
    state["4.b"] = np.ones(5, np.float32)
    before = _snapshot(target)
    with pytest.raises(ValueError, match=r"'4.b' has shape \(5,\)"):
        target.load_state_dict(state)
    assert {k: v.tobytes() for k, v in _snapshot(target).items()} == {k: v.tobytes() for k, v in before.items()}


def test_loading_counts_as_an_in_place_change_of_every_parameter_it_overwrites():
    target = _model(0)
    _freeze(target, {"0.W"})
    # Each graph reads a parameter in its backward (frozen ones too, through a factor that wants a gradient).
    made_before = [(p * tg.Tensor(np.ones(p.shape), requires_grad=True)).sum() for p in target.parameters()]
    target.load_state_dict(_model(1).state_dict())
    for y in made_before:
        with pytest.raises(tg.BackwardError, match="in-place"):
            y.backward()


def test_a_parameter_frozen_in_the_constructor_of_a_custom_layer_stays_a_parameter():
    class Frozen(nn.Layer):
        def __init__(self):
            self.scale = tg.Tensor(np.full(3, 2.0, np.float32), requires_grad=True)
            self.scale.requires_grad_(False)
            self.offset = tg.Tensor(np.zeros(3, np.float32))  # never trainable: a constant, not a parameter

        def forward(self, x):
            return x * self.scale + self.offset

    layer = Frozen()
    assert [n for n, _ in layer.named_parameters()] == ["scale"]
    assert list(layer.state_dict()) == ["scale"]


# ---------------------------------------------------------------------- broken files
@pytest.fixture(scope="module")
def saved_bytes(tmp_path_factory):
    path = tmp_path_factory.mktemp("good") / "model.npz"
    tg.save(nn.MLP([3, 4, 2], batchnorm=True, rng=0), path)
    return path.read_bytes(), tg.load(path)


def _load_or_valueerror(path):
    """What tg.load makes of a file: its arrays, or the message of the ValueError (any other error fails)."""
    try:
        return tg.load(path)
    except ValueError as e:
        assert str(path) in str(e), f"the message does not name the file: {e}"
        return str(e)


def test_a_truncated_file_is_a_valueerror_naming_it_wherever_it_is_cut(tmp_path, saved_bytes):
    good, _ = saved_bytes
    path = tmp_path / "cut.npz"
    # Every cut in the first and last 64 bytes (headers, end record) and every 11th one between.
    for n in sorted({*range(64), *range(len(good) - 64, len(good)), *range(0, len(good), 11)}):
        path.write_bytes(good[:n])
        assert isinstance(_load_or_valueerror(path), str), f"cut at {n} of {len(good)} bytes loaded"


def test_an_empty_file_says_so(tmp_path):
    path = tmp_path / "empty.npz"
    path.write_bytes(b"")
    with pytest.raises(ValueError, match=r"empty\.npz.*empty"):
        tg.load(path)


@given(flips=st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 7)), min_size=1, max_size=4))
def test_flipped_bits_give_a_valueerror_naming_the_file_or_exactly_the_saved_arrays(tmp_path_factory, saved_bytes,
                                                                                    flips):
    good, saved = saved_bytes
    damaged = bytearray(good)
    for position, bit in flips:
        damaged[position % len(good)] ^= 1 << bit
    path = tmp_path_factory.mktemp("bad") / "model.npz"
    path.write_bytes(bytes(damaged))
    result = _load_or_valueerror(path)
    if not isinstance(result, str):  # a bit the archive does not depend on (a time stamp): nothing changed
        assert list(result) == list(saved)
        assert all(result[k].dtype == saved[k].dtype and result[k].tobytes() == saved[k].tobytes() for k in saved)


def test_a_damaged_array_is_named_with_the_file(tmp_path, saved_bytes):
    good, _ = saved_bytes
    damaged = bytearray(good)
    at = good.index(b"\x93NUMPY") + 130  # past its 128-byte header, in the first entry's data: the CRC fails
    damaged[at] ^= 0xFF
    (tmp_path / "crc.npz").write_bytes(bytes(damaged))
    with pytest.raises(ValueError, match=r"entry '0\.W' of .*crc\.npz.* damaged"):
        tg.load(tmp_path / "crc.npz")


def test_a_missing_file_is_the_usual_filenotfounderror(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"nowhere\.npz"):
        tg.load(tmp_path / "nowhere.npz")


# ---------------------------------------------------------------------- saving: errors name the target
def _no_temporary_named(err):
    assert ".tmp" not in str(err), f"the message names the temporary file: {err}"


def test_saving_into_a_missing_folder_names_the_target_and_the_folder(tmp_path):
    path = tmp_path / "no" / "such" / "model.npz"
    with pytest.raises(FileNotFoundError) as info:
        tg.save({"a": np.ones(2)}, path)
    assert str(path) in str(info.value) and str(path.parent) in str(info.value) and "does not exist" in str(info.value)
    _no_temporary_named(info.value)
    assert os.listdir(tmp_path) == []


def test_saving_onto_a_folder_is_refused_and_leaves_it_as_it_was(tmp_path):
    folder = tmp_path / "model.npz"
    folder.mkdir()
    (folder / "keep.txt").write_text("x")
    with pytest.raises(IsADirectoryError, match="is a folder") as info:
        tg.save({"a": np.ones(2)}, folder)
    assert str(folder) in str(info.value)
    _no_temporary_named(info.value)
    assert os.listdir(folder) == ["keep.txt"] and os.listdir(tmp_path) == ["model.npz"]


def test_a_read_only_file_is_not_replaced(tmp_path):
    path = tmp_path / "model.npz"
    tg.save({"a": np.ones(2)}, path)
    before = path.read_bytes()
    path.chmod(0o444)
    try:
        with pytest.raises(PermissionError, match="read-only") as info:
            tg.save({"a": np.zeros(2)}, path)
    finally:
        path.chmod(0o644)
    assert str(path) in str(info.value)
    assert path.read_bytes() == before and os.listdir(tmp_path) == ["model.npz"]


def test_a_replaced_file_keeps_its_permissions(tmp_path):
    path = tmp_path / "model.npz"
    tg.save({"a": np.ones(2)}, path)
    path.chmod(0o600)
    tg.save({"a": np.zeros(2)}, path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


@pytest.fixture
def read_only_file_system(tmp_path):
    """A real read-only file system (a tmpfs remounted read-only) holding model.npz; skipped without mount rights."""
    mount = shutil.which("mount")
    point = tmp_path / "ro"
    point.mkdir()
    if mount is None or subprocess.run([mount, "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(point)],
                                       capture_output=True).returncode != 0:
        pytest.skip("cannot mount a file system here (needs root)")
    try:
        tg.save({"a": np.ones(2)}, point / "model.npz")
        subprocess.run([mount, "-o", "remount,ro", str(point)], check=True, capture_output=True)
        yield point
    finally:
        subprocess.run([shutil.which("umount"), str(point)], check=True, capture_output=True)


def test_a_read_only_file_system_is_an_oserror_naming_the_target(read_only_file_system):
    old = read_only_file_system / "model.npz"
    before = old.read_bytes()
    for path in (old, read_only_file_system / "new.npz"):
        with pytest.raises(OSError) as info:
            tg.save({"a": np.zeros(2)}, path)
        assert str(path) in str(info.value), info.value
        _no_temporary_named(info.value)
    assert old.read_bytes() == before
    assert os.listdir(read_only_file_system) == ["model.npz"]


# ---------------------------------------------------------------------- symlinks
@pytest.mark.parametrize("relative", [False, True], ids=["absolute", "relative"])
def test_saving_through_a_symlink_replaces_the_file_it_points_to_and_keeps_the_link(tmp_path, relative):
    real = tmp_path / "store" / "model.npz"
    real.parent.mkdir()
    tg.save({"a": np.ones(2)}, real)
    link = tmp_path / "latest.npz"
    link.symlink_to(os.path.relpath(real, tmp_path) if relative else real)
    tg.save({"a": np.arange(3)}, link)
    assert link.is_symlink() and link.resolve() == real.resolve()
    np.testing.assert_array_equal(tg.load(real)["a"], np.arange(3))
    assert sorted(os.listdir(real.parent)) == ["model.npz"] and sorted(os.listdir(tmp_path)) == ["latest.npz", "store"]


def test_saving_through_a_dangling_symlink_creates_the_file_it_names(tmp_path):
    link = tmp_path / "latest.npz"
    link.symlink_to(tmp_path / "target.npz")
    tg.save({"a": np.ones(2)}, link)
    assert link.is_symlink() and (tmp_path / "target.npz").is_file()


# ---------------------------------------------------------------------- a save killed half-way
_SLOW_SAVE = """
import sys, time
import numpy as np
import tinygrad_jp as tg

real_write = np.lib.format.write_array
def write_then_wait(fp, array, **kwargs):
    real_write(fp, array, **kwargs)
    open(sys.argv[2], "w").close()  # the first entry is written: tell the test, then hang
    time.sleep(600)

np.lib.format.write_array = write_then_wait
tg.save({"a": np.ones(10**5), "b": np.ones(3)}, sys.argv[1])
"""


def _start_slow_save(target, ready):
    proc = subprocess.Popen([sys.executable, "-c", _SLOW_SAVE, str(target), str(ready)],
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    deadline = time.monotonic() + 120  # a wait for the child, not a measurement
    while not ready.exists():
        assert proc.poll() is None, "the saving process ended before it began writing"
        assert time.monotonic() < deadline, "the saving process never began writing"
        time.sleep(0.02)
    return proc


def _hidden(folder):
    return sorted(name for name in os.listdir(folder) if name.startswith("."))


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
def test_the_next_save_removes_what_a_killed_save_left_and_spares_a_running_one(tmp_path):
    folder = tmp_path / "models"
    folder.mkdir()
    target = folder / "model.npz"
    tg.save({"old": np.zeros(2)}, target)
    proc = _start_slow_save(target, tmp_path / "ready")
    try:
        assert len(_hidden(folder)) == 1  # its temporary file, being written
        tg.save({"new": np.ones(2)}, target)  # while the other save still runs: its file is kept
        assert len(_hidden(folder)) == 1
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    left = _hidden(folder)
    assert len(left) == 1  # killed: nothing cleans up after it
    tg.save({"newer": np.ones(2)}, target)
    assert os.listdir(folder) == ["model.npz"]
    assert list(tg.load(target)) == ["newer"]


def test_a_save_of_another_file_leaves_a_killed_saves_leftover_alone(tmp_path):
    leftover = tmp_path / f".model.npz.{_dead_pid()}.0123456789ab.tmp"
    leftover.write_bytes(b"partial")
    tg.save({"a": np.ones(2)}, tmp_path / "other.npz")
    assert leftover.exists()
    tg.save({"a": np.ones(2)}, tmp_path / "model.npz")
    assert not leftover.exists()


def _dead_pid():
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


# ---------------------------------------------------------------------- optimizers
def _adam_run(model, opt, steps, seed):
    rng = np.random.default_rng(seed)
    for _ in range(steps):
        opt.zero_grad()
        (model(rng.standard_normal((8, 3)).astype(np.float32)) ** 2).mean().backward()
        opt.step()


def test_an_optimizer_saved_with_tg_save_resumes_bit_identically(tmp_path):
    model = _model(0)
    opt = tg.optim.Adam(model.parameters(), lr=0.01)
    _adam_run(model, opt, 3, seed=1)
    tg.save(model, tmp_path / "model.npz")
    tg.save(opt, tmp_path / "adam.npz")
    _adam_run(model, opt, 2, seed=2)

    resumed = _model(5)
    resumed.load_state_dict(tg.load(tmp_path / "model.npz"))
    opt2 = tg.optim.Adam(resumed.parameters(), lr=0.5)
    opt2.load_state_dict(tg.load(tmp_path / "adam.npz"))
    assert opt2.lr == 0.01
    _adam_run(resumed, opt2, 2, seed=2)
    for (name, a), (_, b) in zip(model.named_parameters(), resumed.named_parameters()):
        assert a.data.tobytes() == b.data.tobytes(), name
