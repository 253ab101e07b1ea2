"""The notebooks in docs/notebooks: each runs top to bottom in a fresh kernel, is committed without
outputs, starts with an install cell that does nothing where the package is installed, and is
linked from the README and docs/index.md with an "Open in Colab" badge."""

from __future__ import annotations

import re

import nbformat
import pytest

from kernel import ROOT, run_notebook, with_mime

NOTEBOOKS = sorted((ROOT / "docs" / "notebooks").glob("*.ipynb"))
SECTIONS = ["first_steps", "activations", "vanishing_gradient", "optimizers", "lr_scheduling", "initialization",
            "backprop_stepper"]
COLAB = "https://colab.research.google.com/github/{repo}/blob/main/docs/notebooks/{name}"


def _read(path):
    return nbformat.read(path, as_version=4)


def _repository() -> str:
    """owner/name of the repository, as the README's Colab badges name it."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    found = set(re.findall(r"colab\.research\.google\.com/github/([\w.-]+/[\w.-]+)/blob/", readme))
    assert len(found) == 1, f"the README's Colab badges name {sorted(found)}, expected one repository"
    return found.pop()


def test_a_notebook_per_section_of_the_chapter_plus_first_steps_and_the_stepper():
    names = [path.stem for path in NOTEBOOKS]
    assert [re.sub(r"^\d+_", "", name) for name in names] == SECTIONS


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_committed_without_outputs(path):
    nb = _read(path)
    nbformat.validate(nb)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, f"{path.name}: a code cell has outputs"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_first_code_cell_installs_from_the_repository_only_when_missing(path):
    first = next(cell for cell in _read(path).cells if cell.cell_type == "code")
    lines = first.source.splitlines()
    code = [line for line in lines if not line.lstrip().startswith("#")]
    assert code[:3] == ["try:", "    import tinygrad_jp", "except ImportError:"]
    assert code[3].startswith("    %pip install") and f"git+https://github.com/{_repository()}" in code[3]


@pytest.mark.parametrize("page", ["README.md", "docs/index.md"])
def test_every_notebook_has_an_open_in_colab_badge(page):
    text = (ROOT / page).read_text(encoding="utf-8")
    for path in NOTEBOOKS:
        url = COLAB.format(repo=_repository(), name=path.name)
        assert f"colab-badge.svg)]({url})" in text, f"{page} has no Colab badge for {path.name}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_runs_top_to_bottom_in_a_fresh_kernel(path, tmp_path):
    nb = run_notebook(_read(path), tmp_path)
    outputs = [o for cell in nb.cells if cell.cell_type == "code" for o in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    # Every figure a cell leaves as its value or shows is one PNG: a notebook that draws shows them.
    assert with_mime(outputs, "image/png") or with_mime(outputs, "image/gif") or path.stem == "06_backprop_stepper"
