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
from section import Goal, Section


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


def section(quick: bool) -> Section:
    """Each notebook's run time, and the goals: every one under 15 s, the course under 2 min."""
    del quick  # a notebook runs once either way
    chapters = Path(__file__).resolve().parent.parent / "chapters"
    section = Section("Course run time (each notebook in a fresh kernel, nbclient, in sequence)")
    section.markdown += [
        "Wall time of `NotebookClient.execute()`: kernel start, every cell, shutdown.",
        "",
        "| notebook | seconds |",
        "|---|---:|",
    ]
    seconds = bench_notebooks(chapters)
    for name, s in seconds.items():
        section.markdown.append(f"| {name} | {s:.1f} |")
        section.rows.append(
            {
                "section": "notebook",
                "case": name,
                "mode": "execute",
                "implementation": "nbclient",
                "median_ms": f"{1000 * s:.0f}",
            }
        )
    total = sum(seconds.values())
    slowest = max(seconds, key=seconds.__getitem__)
    section.markdown += [f"| **total** | **{total:.1f}** |", ""]
    budget = 15 * len(seconds)
    section.goals += [
        Goal(
            "every notebook under 15 s",
            f"slowest {seconds[slowest]:.1f} s ({slowest})",
            seconds[slowest] < 15,
        ),  # fmt: skip
        Goal(
            f"whole course under {budget} s (15 s per notebook)", f"{total:.1f} s", total < budget
        ),
    ]
    return section
