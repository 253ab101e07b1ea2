"""model.summary(): a table of layers, output shapes and parameter counts that leaves the model untouched."""

import unicodedata

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tinygrad_jp import Tensor, nn

sizes = st.lists(st.integers(1, 6), min_size=2, max_size=5)


def width(text):
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


@given(sizes, st.booleans(), st.booleans(), st.integers(1, 4))
def test_total_counts_every_parameter_once_and_shapes_follow_the_forward_pass(sizes, batchnorm, residual, batch):
    model = nn.MLP(sizes, batchnorm=batchnorm, residual=residual, rng=0)
    table = model.summary(input_shape=(batch, sizes[0]))
    assert table.total_params == sum(p.size for p in model.parameters())
    out = model.eval()(Tensor(np.zeros((batch, sizes[0]), dtype=np.float32)))
    top = [row for row in table.rows if row.depth == 0]
    assert [row.name for row in top] == [str(i) for i in range(len(model))]
    assert top[-1].output_shape == out.shape
    for row, layer in zip(top, model):
        if isinstance(layer, nn.Linear):
            assert row.output_shape == (batch, layer.out_features)
            assert row.params == layer.W.size + layer.b.size


def test_the_model_is_left_as_it_was():
    model = nn.MLP([3, 4, 4, 2], batchnorm=True, residual=True, rng=0)
    model.train()
    model[0].eval()  # mixed modes must come back as they were
    before = {name: value.copy() for name, value in model.state_dict().items()}
    modes = [m.training for m in model.modules()]
    model.summary(input_shape=(5, 3))
    assert [m.training for m in model.modules()] == modes
    assert all("forward" not in vars(m) for m in model.modules())
    after = model.state_dict()
    assert all(np.array_equal(before[name], after[name]) for name in before)


def test_in_a_script_it_prints_the_table_it_returns(capsys):
    model = nn.Sequential(nn.Linear(2, 8, rng=0), nn.ReLU(), nn.Linear(8, 3, rng=1))
    table = model.summary(input_shape=(16, 2))
    printed = capsys.readouterr().out
    assert printed == str(table) + "\n"
    lines = printed.splitlines()
    assert "出力の形" in lines[2] and "(16, 8)" in printed and "(16, 3)" in printed
    assert f"合計パラメータ数: {2 * 8 + 8 + 8 * 3 + 3:,}" in lines[-1]
    # Columns line up by display width, with Japanese headers taking two columns a character.
    header_and_rows = lines[2:3] + lines[4:7]
    assert len({width(line) for line in header_and_rows}) == 1


def test_without_an_input_shape_there_is_no_shape_column(capsys):
    table = nn.Linear(2, 3, rng=0).summary()
    assert "出力の形" not in str(table) and table.rows[0].output_shape is None
    assert table.total_params == 9


@pytest.mark.parametrize("bad", [(0, 2), (2, -1), (), (2.0, 2), "32"])
def test_a_bad_input_shape_is_rejected(bad):
    with pytest.raises(ValueError, match="input_shape"):
        nn.Linear(2, 3).summary(input_shape=bad)


def test_an_input_the_model_cannot_take_is_reported_with_its_shape():
    with pytest.raises(ValueError, match=r"\(4, 5\)"):
        nn.Linear(2, 3).summary(input_shape=(4, 5))
