"""Execute and clean the course notebooks so stored outputs and diffs stay stable.

    python tools/notebooks.py execute chapters/02_nadaraya_watson.ipynb ...
    python tools/notebooks.py clean chapters/*.ipynb
    python tools/notebooks.py check chapters/*.ipynb   # exit 1 if any needs cleaning

Cleaning keeps only the metadata the course uses (kernelspec, a language name, cell
tags and JupyterLab's collapsed-source flag), drops saved widget state and
renumbers execution counts 1, 2, 3, ... in cell order.
"""

from __future__ import annotations

import copy
import sys
import time
from pathlib import Path

import nbformat

KERNELSPEC = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}
CELL_METADATA_KEYS = ("tags", "jupyter", "view")  # "view": the live view a cell builds


def clean(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """Return a cleaned copy of ``nb``."""
    nb = copy.deepcopy(nb)
    nb.metadata = nbformat.from_dict(
        {"kernelspec": KERNELSPEC, "language_info": {"name": "python"}}
    )
    count = 0
    for cell in nb.cells:
        cell.metadata = nbformat.from_dict(
            {k: cell.metadata[k] for k in CELL_METADATA_KEYS if k in cell.metadata}
        )
        if cell.cell_type != "code":
            cell.pop("outputs", None)
            cell.pop("execution_count", None)
            continue
        if cell.execution_count is None and not cell.outputs:
            continue
        count += 1
        cell.execution_count = count
        for output in cell.outputs:
            if output.output_type == "execute_result":
                output.execution_count = count
    return nb


def execute(path: Path) -> float:
    """Run ``path`` top to bottom in a fresh kernel, clean it, save it; return seconds."""
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    start = time.perf_counter()
    NotebookClient(
        nb,
        timeout=600,
        kernel_name="python3",
        resources={"metadata": {"path": str(path.parent)}},
        store_widget_state=False,
    ).execute()
    elapsed = time.perf_counter() - start
    nbformat.write(clean(nb), path)
    return elapsed


def main(argv: list[str]) -> int:
    if len(argv) < 2 or argv[0] not in ("execute", "clean", "check"):
        print(__doc__)
        return 2
    command, paths = argv[0], [Path(p) for p in argv[1:]]
    dirty = []
    for path in paths:
        if command == "execute":
            print(f"{path}: executed in {execute(path):.1f} s", flush=True)
            continue
        nb = nbformat.read(path, as_version=4)
        cleaned = clean(nb)
        if cleaned != nb:
            dirty.append(path)
            if command == "clean":
                nbformat.write(cleaned, path)
                print(f"{path}: cleaned")
    if command == "check" and dirty:
        print("notebooks need cleaning (run `make clean-notebooks`):", *dirty, sep="\n  ")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
