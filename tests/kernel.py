"""Running notebook cells in a real Jupyter kernel (nbclient + ipykernel), the way Jupyter and Colab run them."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import nbformat
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import AsyncKernelManager
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parent.parent
KERNEL = "tinygrad-jp-test"


def kernel_env(**changes: str | None) -> dict[str, str]:
    """The test's environment for a kernel that imports this checkout's package.

    MPLBACKEND is removed (CI sets Agg for the suite): a learner's kernel starts with ipykernel's own
    default. ``changes`` sets variables, or removes them when given None.
    """
    env = {k: v for k, v in os.environ.items() if k != "MPLBACKEND"}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])
    for key, value in changes.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return env


def _kernel_manager(folder: Path) -> AsyncKernelManager:
    """A kernel run by this interpreter (the installed "python3" spec runs whatever `python` comes first on PATH)."""
    spec = folder / "kernelspec" / KERNEL
    spec.mkdir(parents=True, exist_ok=True)
    argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    (spec / "kernel.json").write_text(json.dumps({"argv": argv, "display_name": KERNEL, "language": "python"}))
    specs = KernelSpecManager(kernel_dirs=[str(spec.parent)])
    return AsyncKernelManager(kernel_name=KERNEL, kernel_spec_manager=specs)


def run_notebook(nb: nbformat.NotebookNode, cwd: Path, env: dict[str, str] | None = None,
                 timeout: int = 120) -> nbformat.NotebookNode:
    """Execute every cell of `nb` in a fresh kernel started in `cwd`; a failing cell raises CellExecutionError."""
    client = NotebookClient(nb, km=_kernel_manager(Path(cwd)), timeout=timeout, allow_errors=False)
    client.execute(env=kernel_env() if env is None else env, cwd=str(cwd))
    return nb


def run_cells(cells: list[str], cwd: Path, env: dict[str, str] | None = None) -> list[list[dict]]:
    """Run `cells` in order in one fresh kernel; the outputs of each cell."""
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(source) for source in cells])
    run_notebook(nb, cwd, env)
    return [cell.outputs for cell in nb.cells]


def with_mime(outputs: list[dict], mime: str) -> list[dict]:
    """The outputs (display data or execute results) that carry `mime`."""
    return [o for o in outputs if mime in o.get("data", {})]


def stream_text(outputs: list[dict], name: str = "stdout") -> str:
    return "".join(o["text"] for o in outputs if o["output_type"] == "stream" and o["name"] == name)
