"""Run saved chapters top to bottom in a fresh kernel and list their self-checks.

    python tools/check_exercises.py chapters/04_masked_softmax.ipynb [more ...]
                                                   (what `make check NB=...` runs)

Each self-check cell (a cell of an exercise that calls a ``check_...`` function or
asserts) is reported as passed, failed (with the first line of its message) or not
reached. The notebooks on disk are only read: save yours in JupyterLab first. Exits 1
when a self-check fails.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import nbformat
from nbclient import NotebookClient


def self_checks(nb: nbformat.NotebookNode) -> list[tuple[int, str]]:
    """(cell index, exercise title) of every self-check cell, in order."""
    found, title = [], "before the exercises"
    for index, cell in enumerate(nb.cells):
        if "exercise" not in cell.metadata.get("tags", []):
            continue
        heading = re.match(r"###\s*(Exercise \d+[^\n]*)", cell.source)
        if cell.cell_type == "markdown" and heading:
            title = heading.group(1).strip()
        elif cell.cell_type == "code" and re.search(r"\bcheck_\w+\(|\bassert\b", cell.source):
            found.append((index, title))
    return found


def first_line(cell: nbformat.NotebookNode) -> str | None:
    """The error of a cell as one line, or None when it ran without one."""
    for output in cell.get("outputs", []):
        if output.output_type == "error":
            return f"{output.ename}: {output.evalue}".splitlines()[0][:300]
    return None


def check(path: Path) -> bool:
    """Run ``path`` in a fresh kernel; print one line per self-check; True if all passed."""
    nb = nbformat.read(path, as_version=4)
    NotebookClient(
        nb,
        timeout=600,
        kernel_name="python3",
        allow_errors=True,
        resources={"metadata": {"path": str(path.parent)}},
    ).execute()
    print(path.name)
    ok = True
    for index, title in self_checks(nb):
        cell = nb.cells[index]
        error = first_line(cell)
        if cell.get("execution_count") is None and not cell.get("outputs"):
            ok, status = False, "not reached"
        elif error:
            ok, status = False, f"FAILED  {error}"
        else:
            status = "passed"
        print(f"  {title}: {status}")
    return ok


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__)
        return 2
    results = [check(Path(name)) for name in argv]
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
