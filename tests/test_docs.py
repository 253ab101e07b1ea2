"""The documentation: every Python example runs, every link resolves, the API reference is complete and true."""

from __future__ import annotations

import ast
import importlib
import importlib.util
import inspect
import io
import re
import sys
import tokenize
import traceback
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import pytest

import tinygrad_jp.random as tg_random
from tinygrad_jp import datasets

from idx_files import write_fake_mnist

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
PAGES = [*sorted(DOCS.glob("*.md")), ROOT / "README.md"]

# A fence opens with ``` and an optional language, and closes with a bare ``` line.
FENCE = re.compile(r"^```([^\n`]*)\n(.*?)^```[ \t]*$", re.M | re.S)
# Languages a fence may carry: only python blocks run; py quotes source that does not run (docs/engine.md);
# bash holds commands; text holds printed output.
LANGUAGES = {"python", "py", "bash", "text", "dot"}

CHAPTER_PAGES = ["activations", "vanishing_gradient", "optimizers", "lr_scheduling", "initialization"]
REQUIRED_PAGES = ["index", "getting_started", *CHAPTER_PAGES, "api", "chapter_map", "custom"]

# Every module the API reference covers, under the prefix the reference writes it with.
API_MODULES = {
    "tg": "tinygrad_jp",
    "tg.nn": "tinygrad_jp.nn",
    "tg.nn.utils": "tinygrad_jp.nn.utils",
    "F": "tinygrad_jp.functional",
    "tg.activations": "tinygrad_jp.activations",
    "tg.losses": "tinygrad_jp.losses",
    "tg.init": "tinygrad_jp.init",
    "tg.optim": "tinygrad_jp.optim",
    "tg.optim.lr_scheduler": "tinygrad_jp.optim.lr_scheduler",
    "tg.data": "tinygrad_jp.data",
    "tg.datasets": "tinygrad_jp.datasets",
    "tg.interop": "tinygrad_jp.interop",
    "tg.train": "tinygrad_jp.train",
    "tg.probes": "tinygrad_jp.probes",
    "tg.inspect": "tinygrad_jp.inspect",
    "tg.viz": "tinygrad_jp.viz",
    "tg.ops": "tinygrad_jp.ops",
}

# The code examples of the chapter, by the name each defines.
CHAPTER_EXAMPLES = [
    "sigmoid", "tanh", "relu", "leaky_relu", "elu", "demonstrate_vanishing_gradient", "SGD", "Momentum",
    "AdaGrad", "RMSprop", "Adam", "compare_optimizers", "xavier_init", "he_init",
]


def fences(text: str) -> list[tuple[str, str, int]]:
    """(language, code, line number of the opening fence) for every fenced block of a Markdown text."""
    return [(m.group(1).strip(), m.group(2), text.count("\n", 0, m.start()) + 1) for m in FENCE.finditer(text)]


def public_names(module_name: str) -> list[str]:
    """The module's __all__, or else every name without a leading underscore that the module itself defines."""
    mod = importlib.import_module(module_name)
    if hasattr(mod, "__all__"):
        return list(mod.__all__)
    names = []
    for name, obj in vars(mod).items():
        if name.startswith("_") or inspect.ismodule(obj):
            continue
        if getattr(obj, "__module__", None) == module_name or type(obj).__module__ == module_name:
            names.append(name)
    return names


def resolve(qualified: str):
    """The object a reference name such as ``tg.nn.Linear`` or ``F.relu`` stands for."""
    prefix, _, name = qualified.rpartition(".")
    return getattr(importlib.import_module(API_MODULES[prefix]), name)


def parameter_names(signature_text: str) -> list[str]:
    """Parameter names of a written signature ``a, b=1, *, c=(1, 2)``, ignoring defaults."""
    names, depth, current = [], 0, ""
    for ch in signature_text + ",":
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        if ch == "," and depth == 0:
            name = current.split("=")[0].strip().lstrip("*")
            if name and name != "/":
                names.append(name)
            current = ""
        else:
            current += ch
    return names


# ---------------------------------------------------------------------- pages exist and code is labelled
def test_every_documentation_page_exists():
    missing = [name for name in REQUIRED_PAGES if not (DOCS / f"{name}.md").is_file()]
    assert not missing, f"missing pages: {missing}"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_code_fence_names_its_language(page):
    for lang, _, line in fences(page.read_text(encoding="utf-8")):
        assert lang in LANGUAGES, f"{page.name}:{line}: code fence with language {lang!r}, expected one of {LANGUAGES}"


# ---------------------------------------------------------------------- examples run
@pytest.fixture
def sandbox(tmp_path, monkeypatch):
    """A temporary working directory, headless matplotlib, the global RNG and rcParams restored afterwards, and
    small generated MNIST files in the (test's own) data cache, so that examples loading MNIST run offline."""
    monkeypatch.chdir(tmp_path)
    write_fake_mnist(datasets.cache_dir() / "mnist", n_train=200, n_test=100)
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.setattr(tg_random, "_rng", tg_random._rng)
    with matplotlib.rc_context():
        yield tmp_path
    import matplotlib.pyplot as plt

    plt.close("all")


# ---------------------------------------------------------------------- printed output matches the comments
# A comment on a print states what it prints after an arrow: `print(x.grad)  # dy/dx = 2x → [2. 4. 6.]`.
# Words before the arrow explain; after it comes the output, exactly (spacing aside), or after ≈ rounded.
ARROW = "→"
# A comment that starts like a printed value must use the arrow, so that it is checked too.
LOOKS_LIKE_OUTPUT = re.compile(r"^(?:[\[(<'\"\d≈-]|(?:True|False|None)\b|[A-Z]\w*\()")


def print_claims(code: str) -> dict[tuple[int, int], str]:
    """(first line, last line) of each print statement with a comment → the comment's text."""
    comments = {tok.start[0]: tok.string[1:].strip() for tok in tokenize.generate_tokens(io.StringIO(code).readline)
                if tok.type == tokenize.COMMENT}
    claims = {}
    for node in ast.walk(ast.parse(code)):
        call = getattr(node, "value", None)
        if isinstance(node, ast.Expr) and isinstance(call, ast.Call) and getattr(call.func, "id", None) == "print":
            comment = comments.get(node.end_lineno)
            if comment is not None:
                claims[(node.lineno, node.end_lineno)] = comment
    return claims


def normalized(text: str) -> str:
    text = " ".join(text.split())
    return re.sub(r" +([\])])", r"\1", re.sub(r"([\[(]) +", r"\1", text))


NUMBER = re.compile(r"-?\d+(?:\.\d*)?(?:e[-+]?\d+)?")


def matches(claim: str, printed: str) -> bool:
    """Whether `printed` is what `claim` says: the same text, or with ≈ the same numbers to the digits shown."""
    if not claim.startswith("≈"):
        return normalized(claim) == normalized(printed)
    shown, actual = NUMBER.findall(claim), [float(v) for v in NUMBER.findall(printed)]
    if len(shown) != len(actual):
        return False
    for token, value in zip(shown, actual):
        decimals = len(token.split(".")[1]) if "." in token else 0
        if abs(value - float(token)) > 0.5 * 10.0**-decimals + 1e-12 * abs(value):
            return False
    return True


def test_claims_compare_output_exactly_or_to_the_digits_shown():
    assert matches("[2. 4. 6.]", "[2. 4. 6.]\n") and matches("[[1. 2.] [3. 4.]]", "[[1. 2.]\n [3. 4.]]")
    assert matches("[0.01 1.]", "[0.01 1.  ]") and not matches("[2. 4. 6.]", "[2. 4. 7.]")
    assert matches("≈ [-1, -0.632, 1000]", "[-9.99954600e-01 -6.32120559e-01  1.00000000e+03]")
    assert not matches("≈ [-1, -0.632, 1000]", "[-9.99954600e-01 -6.33120559e-01  1.00000000e+03]")
    assert not matches("≈ [0.25]", "[0.25 0.1]")


class Printed:
    """A print for the examples: keeps what each line of each block printed (by file name and line)."""

    def __init__(self):
        self.by_line: dict[tuple[str, int], list[str]] = {}

    def __call__(self, *args, **kwargs):
        if kwargs.get("file") is not None:
            return print(*args, **kwargs)
        out = io.StringIO()
        print(*args, file=out, **kwargs)
        frame = sys._getframe(1)
        self.by_line.setdefault((frame.f_code.co_filename, frame.f_lineno), []).append(out.getvalue())
        return None


def check_claims(filename: str, code: str, printed: Printed) -> list[str]:
    problems = []
    for (first, last), comment in print_claims(code).items():
        where = f"{filename}, line {last}"
        if ARROW not in comment:
            if LOOKS_LIKE_OUTPUT.match(comment):
                problems.append(f"{where}: the comment '# {comment}' reads like output: write it as '# → {comment}'")
            continue
        claim = comment.rsplit(ARROW, 1)[1].strip()
        outputs = [text for (name, line), texts in printed.by_line.items() if name == filename
                   and first <= line <= last for text in texts]
        if len(outputs) != 1:
            problems.append(f"{where}: expected one printout to compare with '{claim}', got {len(outputs)}")
        elif not matches(claim, outputs[0]):
            problems.append(f"{where}: the comment says {claim!r} but it prints {outputs[0].rstrip()!r}")
    return problems


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_python_examples_run_in_order_and_print_what_their_comments_say(page, sandbox):
    blocks = [(code, line) for lang, code, line in fences(page.read_text(encoding="utf-8")) if lang == "python"]
    if any(re.search(r"^\s*(import|from) torch\b", code, re.M) for code, _ in blocks) and not importlib.util.find_spec(
            "torch"):
        pytest.skip(f"{page.name} needs PyTorch (the optional extra torch)")
    printed = Printed()
    namespace: dict = {"__name__": f"docs_{page.stem}", "print": printed}
    problems = []
    for number, (code, line) in enumerate(blocks, 1):
        filename = f"{page.name} (python block {number}, line {line})"
        try:
            exec(compile(code, filename, "exec"), namespace)
        except Exception:
            pytest.fail(f"{filename} failed:\n{traceback.format_exc()}", pytrace=False)
        problems += check_claims(filename, code, printed)
    assert not problems, "\n".join(problems)


def test_chapter_pages_have_examples_and_figures():
    for name in CHAPTER_PAGES:
        text = (DOCS / f"{name}.md").read_text(encoding="utf-8")
        langs = [lang for lang, _, _ in fences(text)]
        assert "python" in langs, f"{name}.md has no runnable example"
        assert re.search(r"!\[[^\]]*\]\(images/[\w.-]+\.png\)", text), f"{name}.md shows no figure"


# ---------------------------------------------------------------------- links
LINK = re.compile(r"(!?)\[[^\]]*\]\(([^)\s]+)\)")


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_relative_links_and_images_resolve(page):
    text = FENCE.sub("", page.read_text(encoding="utf-8"))
    for is_image, target in LINK.findall(text):
        if re.match(r"[a-z]+://", target) or target.startswith("#"):
            continue
        path = (page.parent / target.split("#")[0]).resolve()
        assert path.exists(), f"{page.name}: {'image' if is_image else 'link'} {target} points to nothing"


def test_index_links_every_page():
    index = (DOCS / "index.md").read_text(encoding="utf-8")
    for page in DOCS.glob("*.md"):
        if page.name != "index.md":
            assert f"({page.name})" in index, f"index.md does not link {page.name}"


def test_readme_links_the_docs_and_shows_figures():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "(docs/index.md)" in readme
    assert len(re.findall(r"!\[[^\]]*\]\(docs/images/[\w.-]+\.png\)", readme)) >= 3


def test_committed_figures_stay_small():
    images = list((DOCS / "images").glob("*.png"))
    total = sum(p.stat().st_size for p in images)
    assert total < 3_000_000, f"docs/images holds {total / 1e6:.1f} MB of PNG files, expected < 3 MB"


# ---------------------------------------------------------------------- API reference
@pytest.fixture(scope="module")
def api_text():
    return (DOCS / "api.md").read_text(encoding="utf-8")


@pytest.mark.parametrize("prefix", list(API_MODULES))
def test_api_reference_lists_every_public_name(prefix, api_text):
    missing = [n for n in public_names(API_MODULES[prefix]) if not re.search(rf"`{re.escape(prefix)}\.{n}\b", api_text)]
    assert not missing, f"api.md does not describe {prefix}.{{{', '.join(missing)}}}"


def test_api_reference_signatures_match_the_code(api_text):
    prefixes = "|".join(re.escape(p) for p in sorted(API_MODULES, key=len, reverse=True))
    entries = re.findall(rf"`((?:{prefixes})\.\w+)\(([^`]*)\)`", api_text)
    assert len(entries) > 100
    for qualified, written in entries:
        obj = resolve(qualified)
        actual = [p for p in inspect.signature(obj).parameters]
        assert parameter_names(written) == actual, f"api.md: {qualified}({written}) but the code has {actual}"


def test_parameter_names_reads_defaults_with_commas():
    assert parameter_names("f, trajectories, *, optimum=(0.0, 0.0), levels=20") == [
        "f", "trajectories", "optimum", "levels"]
    assert parameter_names("") == []


# ---------------------------------------------------------------------- chapter map
def test_chapter_map_names_every_code_example_of_the_chapter():
    text = (DOCS / "chapter_map.md").read_text(encoding="utf-8")
    rows = [line for line in text.splitlines() if line.startswith("|")]
    for name in CHAPTER_EXAMPLES:
        assert any(f"`{name}`" in row.split("|")[1] for row in rows if row.count("|") > 2), \
            f"chapter_map.md has no row for the chapter's {name}"
