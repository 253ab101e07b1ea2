"""Every class of the package has a name of its own in its module: a second class of the same name would
silently replace the first (the registry of activations found them by name)."""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "tinygrad_jp"


@pytest.mark.parametrize("path", sorted(PACKAGE.rglob("*.py")), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_module_defines_two_classes_of_the_same_name(path):
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names = [node.name for node in tree.body if isinstance(node, ast.ClassDef)]
    repeated = sorted({n for n in names if names.count(n) > 1})
    assert not repeated, f"{path.name} defines {repeated} more than once"
