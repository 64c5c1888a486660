"""The course's run time: each chapter notebook executed in a fresh kernel with nbclient.

The notebooks are read, run in memory and never written back. The time of a notebook
is the wall time of ``NotebookClient.execute()``: kernel start, every cell, shutdown,
as a student's "Restart kernel and run all" would take.
"""

from __future__ import annotations

import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient


def run_notebook(path: Path, timeout: int = 300) -> float:
    """Execute ``path`` top to bottom in a fresh ``python3`` kernel; return wall seconds."""
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(
        nb,
        timeout=timeout,
        kernel_name="python3",
        resources={"metadata": {"path": str(path.parent)}},
        store_widget_state=False,
    )
    start = time.perf_counter()
    client.execute()
    return time.perf_counter() - start


def bench_notebooks(chapters: Path) -> dict[str, float]:
    """Seconds per notebook in ``chapters``, in course order, printed as they finish."""
    seconds = {}
    for path in sorted(chapters.glob("*.ipynb")):
        seconds[path.name] = run_notebook(path)
        print(f"notebook {path.name}: {seconds[path.name]:.1f} s", flush=True)
    return seconds
