"""端末での表示幅で文字列をそろえる: 全角の文字 (日本語など) は 2 桁ぶんの幅をとる。

``str.ljust`` や ``f"{s:<10}"`` は文字数でそろえるので、「設定」のような全角の文字を含む列はずれる。
ここでは ``unicodedata.east_asian_width`` が W (全角) か F (全角英数) の文字を 2 桁、結合文字を 0 桁、
それ以外を 1 桁と数える::

    print(format_table([["設定", "比"], ["ReLU + He", "1.08"]], align="<>"))
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence

__all__ = ["display_width", "format_table", "pad", "wrap"]


def display_width(text: str) -> int:
    """``text`` を端末に表示したときの桁数 (全角 2、結合文字 0、それ以外 1)。"""
    width = 0
    for ch in text:
        if unicodedata.combining(ch):
            continue
        width += 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1
    return width


def pad(text: str, width: int, align: str = "<") -> str:
    """表示幅が ``width`` 桁になるよう空白を足す (``align``: "<" 左寄せ、">" 右寄せ)。長ければそのまま。"""
    if align not in ("<", ">"):
        raise ValueError(f"align must be '<' or '>', got {align!r}")
    fill = " " * max(0, width - display_width(text))
    return text + fill if align == "<" else fill + text


def format_table(rows: Sequence[Sequence[str]], align: str | None = None, sep: str = "  ") -> str:
    """文字列の行の列を表示幅でそろえた表にする (1 行目を見出しとして、その下に罫線を引く)。

    どの行も同じ表示幅になる (左寄せの最後の列は空白で埋める)。
    ``align`` は列ごとの "<" (左寄せ) か ">" (右寄せ) を並べた文字列 (既定: 1 列目だけ左寄せ)。
    列と列の間には ``sep`` を入れる。``sep=" | "`` なら Markdown の表としても読める。
    """
    rows = [[str(cell) for cell in row] for row in rows]
    if not rows:
        raise ValueError("format_table needs at least a header row, got no rows")
    n = len(rows[0])
    bad = [i for i, row in enumerate(rows) if len(row) != n]
    if bad:
        raise ValueError(f"every row must have {n} cells like the header; rows {bad} do not")
    align = "<" + ">" * (n - 1) if align is None else align
    if len(align) != n:
        raise ValueError(f"align must give one of '<' or '>' per column ({n}), got {align!r}")
    widths = [max(display_width(row[c]) for row in rows) for c in range(n)]
    lines = [sep.join(pad(cell, w, a) for cell, w, a in zip(row, widths, align)) for row in rows]
    lines.insert(1, sep.join("-" * w for w in widths))
    return "\n".join(lines)


def wrap(text: str, width: int, indent: str = "        ") -> str:
    """表示幅が ``width`` 桁を超える行を折り返す (続きの行は ``indent`` で字下げする)。

    折り返すのは空白のところ (なければその桁)。改行はそのまま残す。
    """
    if width < display_width(indent) + 2:  # room for at least one full-width character after the indent
        raise ValueError(f"width must leave room after the indent, got width={width} for indent {indent!r}")
    out: list[str] = []
    for line in text.split("\n"):
        while display_width(line) > width:
            head = _cut(line, width)
            out.append(head.rstrip())
            line = indent + line[len(head):].lstrip()
        out.append(line)
    return "\n".join(out)


def _cut(line: str, width: int) -> str:
    """The longest start of ``line`` that fits ``width`` columns, ending after a space when there is one."""
    end, used = 0, 0
    while end < len(line) and used + display_width(line[end]) <= width:
        used += display_width(line[end])
        end += 1
    space = line.rfind(" ", 0, end)
    return line[: space + 1] if space > len(line) - len(line.lstrip()) else line[:end]

