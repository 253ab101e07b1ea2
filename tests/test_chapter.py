"""The chapter's own code examples run on this library after exactly the changes docs/chapter_map.md states.

The chapter's text is not part of the repository. CI checks it out beside the clone
(``<clone>/../shared/CHAPTER3.md``); elsewhere set TINYGRAD_JP_CHAPTER to its path, or these tests skip.
The chapter's code is read from that file, never copied here: what the tests know is the procedure the
chapter map describes (its import block, and its table of line replacements), which they apply and run.
"""

from __future__ import annotations

import ast
import os
import re
import textwrap
import warnings
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import pytest

import tinygrad_jp.random as tg_random

ROOT = Path(__file__).resolve().parent.parent
MAP = ROOT / "docs" / "chapter_map.md"
CHAPTER = Path(os.environ.get("TINYGRAD_JP_CHAPTER", ROOT.parent / "shared" / "CHAPTER3.md"))

# The names the chapter's examples define, one example each (the chapter's own order).
EXAMPLES = ["sigmoid", "tanh", "relu", "leaky_relu", "elu", "demonstrate_vanishing_gradient", "SGD", "Momentum",
            "AdaGrad", "RMSprop", "Adam", "compare_optimizers", "xavier_init", "he_init"]

needs_chapter = pytest.mark.skipif(not CHAPTER.is_file(), reason=f"the chapter's text is not at {CHAPTER}")


# ---------------------------------------------------------------------- reading the chapter and the map
def chapter_examples(text: str) -> list[str]:
    """The chapter's code examples: its indented blocks that are Python (prose lists and diagrams are not)."""
    blocks, current = [], []
    for line in text.splitlines() + [""]:
        if line.startswith("    ") or (current and not line.strip()):
            current.append(line)
            continue
        if current:
            blocks.append(textwrap.dedent("\n".join(current)).strip() + "\n")
        current = []
    examples = []
    for block in blocks:
        try:
            ast.parse(block)
        except SyntaxError:
            continue
        examples.append(block)
    return examples


def defined_names(code: str) -> list[str]:
    return [n.name for n in ast.parse(code).body if isinstance(n, (ast.FunctionDef, ast.ClassDef))]


def map_section() -> str:
    text = MAP.read_text(encoding="utf-8")
    start = text.index("## 本文のコードを動かす")
    end = text.find("\n## ", start + 1)
    return text[start:end if end != -1 else None]


def map_prelude() -> str:
    """The code the map says to put first (its first python block in that section)."""
    return re.search(r"```python\n(.*?)```", map_section(), re.S).group(1)


def map_replacements() -> list[tuple[str, str]]:
    """(the chapter's line, what replaces it) for every row of the map's replacement table."""
    rows = re.findall(r"^\| [^|]+ \| `([^`]+)` \| `([^`]+)` \|", map_section(), re.M)
    assert rows, "chapter_map.md states no replacement"
    return rows


def imported_names(code: str) -> set[str]:
    return {alias.asname or alias.name for node in ast.parse(code).body if isinstance(node, ast.ImportFrom)
            for alias in node.names}


def without_definitions(code: str, names: set[str]) -> str:
    """`code` with its top-level def/class of the given names removed (the map's change 1)."""
    lines = code.splitlines()
    drop = set()
    for node in ast.parse(code).body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)) and node.name in names:
            drop.update(range(node.lineno - 1, node.end_lineno))
    return "\n".join(line for i, line in enumerate(lines) if i not in drop) + "\n"


def as_the_map_says(examples: list[str], *, font: bool = True, skip_row: int | None = None) -> list[str]:
    """The chapter's examples after the map's changes; `font=False` or `skip_row` leave one change out."""
    prelude = map_prelude()
    if not font:
        prelude = prelude.replace("viz.use_japanese_font()", "")
    provided = imported_names(prelude)
    changed = [prelude]
    for code in examples:
        code = without_definitions(code, provided)
        for i, (original, replacement) in enumerate(map_replacements()):
            if i != skip_row:
                code = code.replace(original, replacement)
        changed.append(code)
    return changed


# ---------------------------------------------------------------------- running them
def run(blocks: list[str]) -> str:
    """Run the blocks in order in one namespace; plt.show draws each figure (where a missing glyph would warn)."""
    printed = []

    def show():
        for number in plt.get_fignums():
            plt.figure(number).canvas.draw()
        plt.close("all")

    namespace = {"__name__": "chapter", "print": lambda *a, **k: printed.append(" ".join(map(str, a)))}
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=".*missing from font")
        original_show, plt.show = plt.show, show
        try:
            for number, code in enumerate(blocks):
                exec(compile(code, f"chapter example {number}", "exec"), namespace)
        finally:
            plt.show = original_show
            plt.close("all")
    return "\n".join(printed)


@pytest.fixture
def fresh_matplotlib(monkeypatch):
    """Matplotlib's default font, as a learner's fresh session has, and the global RNG restored afterwards."""
    monkeypatch.setattr(tg_random, "_rng", tg_random._rng)
    with matplotlib.rc_context({"font.family": matplotlib.rcParamsDefault["font.family"]}):
        yield


@needs_chapter
def test_the_chapter_has_one_example_per_name_the_map_covers():
    examples = chapter_examples(CHAPTER.read_text(encoding="utf-8"))
    assert [defined_names(code)[0] for code in examples] == EXAMPLES
    # The number of examples the docs state is the number the chapter has.
    assert f"{len(EXAMPLES)} 個の関数・クラスの定義" in MAP.read_text(encoding="utf-8")
    assert f"本文の {len(EXAMPLES)} 個のコード例" in (ROOT / "docs" / "index.md").read_text(encoding="utf-8")


@needs_chapter
def test_every_example_of_the_chapter_runs_after_the_maps_changes(fresh_matplotlib):
    examples = chapter_examples(CHAPTER.read_text(encoding="utf-8"))
    for original, _ in map_replacements():
        assert any(original in code for code in examples), f"the map replaces a line the chapter lacks: {original}"
    printed = run(as_the_map_says(examples))
    # What the chapter prints: ten layers of gradients, then the initialisers' statistics.
    assert len(re.findall(r"^第\d+層: \d\.\d{10}$", printed, re.M)) == 10
    assert re.search(r"^Xavier初期化: 平均=-?\d\.\d{4}, 標準偏差=0\.1\d{3}$", printed, re.M)
    assert re.search(r"^He初期化: 平均=-?\d\.\d{4}, 標準偏差=0\.1\d{3}$", printed, re.M)


@needs_chapter
def test_without_the_japanese_font_the_chapters_figures_lose_their_text(fresh_matplotlib):
    examples = chapter_examples(CHAPTER.read_text(encoding="utf-8"))
    with pytest.raises(UserWarning, match="missing from font"):
        run(as_the_map_says(examples, font=False))


@needs_chapter
@pytest.mark.parametrize("row", range(len(map_replacements())))
def test_each_replacement_of_the_map_is_needed(row, fresh_matplotlib):
    examples = chapter_examples(CHAPTER.read_text(encoding="utf-8"))
    with pytest.raises(TypeError):
        run(as_the_map_says(examples, skip_row=row))


def test_the_maps_import_block_provides_every_definition_it_replaces():
    provided = imported_names(map_prelude())
    assert set(EXAMPLES) - {"demonstrate_vanishing_gradient", "compare_optimizers"} <= provided
