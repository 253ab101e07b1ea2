"""Saving: bit-exact round trips, atomic writes, no pickle, and loads that change nothing when they fail."""

import os

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import tinygrad_jp as tg
from tinygrad_jp import nn


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
