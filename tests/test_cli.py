"""Command line: ``tinygrad-jp demo NAME [--out DIR]``, ``demo all``, help texts and errors."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tinygrad_jp import cli, demos

ROOT = Path(__file__).resolve().parent.parent


def test_help_lists_every_demo(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    for name in [*demos.DEMOS, "all"]:
        assert name in out


def test_demo_help_lists_every_demo(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["demo", "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert "--out" in out and "--show" in out and "--interactive" in out
    for name in demos.DEMOS:
        assert name in out


def test_no_command_prints_help(capsys):
    assert cli.main([]) == 0
    assert "demo" in capsys.readouterr().out


def test_unknown_demo_is_a_clear_error_listing_the_names(capsys, tmp_path):
    assert cli.main(["demo", "no_such_demo", "--out", str(tmp_path / "x")]) == 2
    captured = capsys.readouterr()
    assert "no_such_demo" in captured.err
    for name in [*demos.DEMOS, "all"]:
        assert name in captured.err
    assert not (tmp_path / "x").exists()


def test_out_into_a_missing_folder_creates_it_and_prints_the_paths(tmp_path, capsys):
    out = tmp_path / "a" / "b"
    assert cli.main(["demo", "graph", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    written = sorted(out.glob("*.png"))
    assert written
    for path in written:
        assert str(path) in printed
    assert "秒" in printed


class _Terminal(io.StringIO):
    def isatty(self):
        return True


def test_interactive_flag_reaches_the_stepper(tmp_path, capsys, monkeypatch):
    prompts = []
    monkeypatch.setattr("sys.stdin", _Terminal())
    monkeypatch.setattr("builtins.input", lambda prompt="": prompts.append(prompt) or "")
    assert cli.main(["demo", "backprop_steps", "--interactive", "--out", str(tmp_path)]) == 0
    steps = capsys.readouterr().out.count("\n[")
    assert steps > 5 and len(prompts) == steps - 1


def test_the_help_of_backprop_steps_names_what_the_demo_prints(tmp_path, capsys):
    cli.main(["demo", "backprop_steps", "--out", str(tmp_path)])
    printed = capsys.readouterr().out
    promised = re.search(r"\((.*)\)", demos.DEMOS["backprop_steps"][1]).group(1).split("・")
    assert len(promised) == 3
    for words in promised:
        assert words in printed, words


@pytest.mark.parametrize("name", ["backprop_steps", "all"])
def test_interactive_without_a_terminal_exits_with_2_and_one_line(name, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    assert cli.main(["demo", name, "--interactive", "--out", str(tmp_path)]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and not list(tmp_path.iterdir())
    assert len(captured.err.splitlines()) == 1
    assert "--interactive" in captured.err and "terminal" in captured.err


def test_interactive_cli_in_a_subprocess_without_stdin(tmp_path):
    """What a notebook's `!tinygrad-jp demo backprop_steps --interactive` does: no traceback, exit code 2."""
    result = subprocess.run([sys.executable, "-m", "tinygrad_jp", "demo", "backprop_steps", "--interactive",
                             "--out", str(tmp_path)], stdin=subprocess.DEVNULL, capture_output=True, text=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=120)
    assert result.returncode == 2
    assert result.stdout == "" and len(result.stderr.splitlines()) == 1 and "Traceback" not in result.stderr


def test_demo_all_runs_each_demo_in_order(tmp_path, capsys, monkeypatch):
    ran = []

    def fake_run(name, out_dir, show=False, **options):
        ran.append(name)
        path = Path(out_dir) / f"{name}.png"
        return [path]

    monkeypatch.setattr(demos, "run", fake_run)
    assert cli.main(["demo", "all", "--out", str(tmp_path)]) == 0
    # The test's data cache is empty, so the mnist demo is left out.
    chapter = [name for name in demos.DEMOS if name != "mnist"]
    assert ran == chapter
    out = capsys.readouterr().out
    for name in chapter:
        assert str(tmp_path / f"{name}.png") in out
    assert "合計" in out


def test_python_dash_m_and_the_demo_scripts_work(tmp_path):
    result = subprocess.run([sys.executable, "-m", "tinygrad_jp", "--help"], capture_output=True, text=True,
                            timeout=120, check=False)
    assert result.returncode == 0 and "vanishing_gradient" in result.stdout
    out = tmp_path / "figs"
    result = subprocess.run([sys.executable, str(ROOT / "demos" / "graph.py"), "--out", str(out)],
                            capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    assert (out / "graph_mlp.png").is_file() and str(out / "graph_mlp.png") in result.stdout
    assert result.stderr == ""
