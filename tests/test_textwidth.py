"""Console tables line up on a terminal: full-width (Japanese) characters take two columns."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tinygrad_jp.textwidth import display_width, format_table, pad, wrap

# Labels mixing kana, kanji, full-width forms, ASCII, Greek and subscripts, as the demos print them.
CELL = st.text(alphabet="設定第層勾配消失ウォームアップあいうＡＢ１abcXYZ 0.5+-()σ∂η₀×", min_size=1, max_size=12).map(
    str.strip).filter(bool)


def test_full_width_characters_count_two_columns():
    assert display_width("設定") == 4
    assert display_width("ReLU + He") == 9
    assert display_width("第1層/第10層") == 2 + 1 + 2 + 1 + 2 + 2 + 2
    assert display_width("ＡＢ") == 4  # full-width Latin letters (F)
    assert display_width("σ′ ≤ η₀") == 7  # ambiguous and narrow characters take one column
    assert display_width("e\u0301") == 1  # a combining accent takes none


@given(text=CELL, width=st.integers(0, 30), align=st.sampled_from("<>"))
def test_pad_reaches_the_width_and_keeps_the_text(text, width, align):
    padded = pad(text, width, align)
    assert display_width(padded) == max(width, display_width(text))
    assert padded.strip(" ") == text.strip(" ")
    assert padded.startswith(text) if align == "<" else padded.endswith(text)


@given(rows=st.integers(1, 6).flatmap(lambda n: st.lists(st.lists(CELL, min_size=n, max_size=n), min_size=1,
                                                              max_size=6)),
       data=st.data())
def test_every_row_of_a_table_has_the_same_display_width_and_columns_align(rows, data):
    n = len(rows[0])
    align = data.draw(st.text(alphabet="<>", min_size=n, max_size=n))
    lines = format_table(rows, align).splitlines()
    assert len(lines) == len(rows) + 1
    assert len({display_width(line) for line in lines}) == 1
    widths = [max(display_width(row[c]) for row in rows) for c in range(n)]
    for row, line in zip(rows, lines[:1] + lines[2:]):
        # Rebuild each line from its cells: each cell padded to its column's width, two spaces between.
        assert line == "  ".join(pad(cell, w, a) for cell, w, a in zip(row, widths, align))
        # Each cell sits at the same display column on every line (its column's left or right edge).
        column = 0
        for cell, w, a in zip(row, widths, align):
            start = column + (0 if a == "<" else w - display_width(cell))
            before = _prefix(line, start)
            assert display_width(before) == start and line[len(before):].startswith(cell)
            column += w + 2


def _prefix(line: str, width: int) -> str:
    """The longest start of ``line`` whose display width is at most ``width``."""
    out, used = "", 0
    for ch in line:
        if used + display_width(ch) > width:
            break
        out += ch
        used += display_width(ch)
    return out


def test_japanese_header_over_ascii_rows_lines_up():
    table = format_table([["設定", "第1層", "第1層/第10層"], ["ReLU + He", "0.00921", "1.08"],
                          ["Sigmoid + N(0, 1)", "0.0106", "0.506"]])
    lines = table.splitlines()
    assert len({display_width(line) for line in lines}) == 1
    # Padding by character count, as f"{label:<20}" does, is what misaligns such a table.
    by_count = [f"{'設定':<20}|", f"{'ReLU + He':<20}|"]
    assert len({display_width(line) for line in by_count}) == 2


@pytest.mark.parametrize("rows, align, message", [
    ([], None, "header"),
    ([["a", "b"], ["c"]], None, "rows \\[1\\]"),
    ([["a", "b"]], "<", "one of"),
])
def test_bad_tables_are_refused(rows, align, message):
    with pytest.raises(ValueError, match=message):
        format_table(rows, align)


@given(st.lists(st.sampled_from(["勾配", "g", "=", " ", "[1.2, -0.3]", "局所微分", "∂L/∂W"]), max_size=40),
       st.integers(12, 40))
def test_wrapped_lines_fit_the_width_and_keep_every_character(words, width):
    text = "".join(words)
    wrapped = wrap(text, width)
    assert all(display_width(line) <= width for line in wrapped.split("\n"))
    assert wrapped.replace("\n", "").replace(" ", "") == text.replace(" ", "")


def test_wrapping_narrower_than_the_indent_allows_is_refused():
    with pytest.raises(ValueError, match="room after the indent"):
        wrap("勾配" * 10, 9)
    assert wrap("勾配" * 10, 10).count("\n") > 0
