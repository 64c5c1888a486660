"""Write the student edition of the course: solutions removed, exercise outputs cleared.

    python tools/student_edition.py build/student        (what `make student` runs)

The destination is emptied and filled with the chapters (cells tagged ``solution``
removed, outputs and execution counts of cells tagged ``exercise`` cleared) and what a
student needs to set up and run them. The sources are only read, never written.
"""

from __future__ import annotations

import copy
import shutil
import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
#: copied as they are: enough for `make setup` and `make lab` in the student edition
COURSE_FILES = (
    "README.md",
    "LICENSE",
    "Makefile",
    "pyproject.toml",
    "requirements.txt",
    "environment.yml",
    "postBuild",
)
COURSE_DIRS = ("src", "tools")
IGNORED = shutil.ignore_patterns("__pycache__", "*.egg-info", ".ipynb_checkpoints")
#: put at the top of the student edition's README.md
PREFACE = """> **Student edition.** The solutions are removed from these notebooks: write your own
> code in each exercise's stub, then run the self-check cell after it, which fails until
> your code is right. Set up with `make setup`, then start with `make lab`. The course's
> tests (`make test`) are not part of this edition.

"""


def tags(cell: nbformat.NotebookNode) -> list[str]:
    """The cell's tags (an empty list when it has none)."""
    return list(cell.metadata.get("tags", []))


def student_notebook(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """A copy of ``nb`` without its solution cells and with exercise outputs cleared.

    Execution counts of the remaining cells are left as stored (the cells before the
    exercises keep their outputs, the exercise cells have none).
    """
    new = copy.deepcopy(nb)
    new.cells = [cell for cell in new.cells if "solution" not in tags(cell)]
    for cell in new.cells:
        if cell.cell_type == "code" and "exercise" in tags(cell):
            cell.outputs = []
            cell.execution_count = None
    return new


def write_student_edition(destination: Path, root: Path = ROOT) -> list[Path]:
    """Write the student edition of the course at ``root`` into ``destination``.

    Returns:
        The student notebooks written, in chapter order.
    """
    destination = destination.resolve()
    if destination == root.resolve() or root.resolve().is_relative_to(destination):
        raise ValueError(f"destination: expected a build folder, got {destination}")
    shutil.rmtree(destination, ignore_errors=True)
    destination.mkdir(parents=True)
    for name in COURSE_FILES:
        shutil.copy2(root / name, destination / name)
    readme = destination / "README.md"
    readme.write_text(PREFACE + readme.read_text(encoding="utf-8"), encoding="utf-8")
    for name in COURSE_DIRS:
        shutil.copytree(root / name, destination / name, ignore=IGNORED)
    (destination / "chapters").mkdir()
    written = []
    for path in sorted((root / "chapters").glob("*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        target = destination / "chapters" / path.name
        nbformat.write(student_notebook(nb), target)
        written.append(target)
    return written


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__)
        return 2
    written = write_student_edition(Path(argv[0]))
    print(f"student edition: {len(written)} notebooks in {argv[0]}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
