"""Write the build copy that `make book` turns into the site: the sources are never edited.

    python book/site_copy.py build/site-src

The copy has the repository's layout (``book/`` and ``chapters/``), so page names, and
with them the Binder links, are ``chapters/NN_name``. On the copied notebooks only:

* each Markdown cell ``### Exercise N: title`` tagged ``exercise`` becomes that heading
  and a sphinx-exercise ``{exercise}`` box with the task, labelled ``ex-<notebook>-N``;
* each run of cells tagged ``solution`` is wrapped in ``{solution-start}`` /
  ``{solution-end}`` cells for that exercise, shown as a collapsed dropdown;
* live ipywidgets outputs are dropped: without a kernel they cannot draw, and the cell
  after each live view shows its static twin (``attention_course.views.static``).
"""

from __future__ import annotations

import copy
import re
import shutil
import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
BOOK_FILES = (
    "_config.yml",
    "_toc.yml",
    "intro.md",
    "instructors.md",
    "references.bib",
    "mathjax_everywhere.py",
)
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
EXERCISE = re.compile(r"### Exercise (\d+): (.+)")


def tags(cell: nbformat.NotebookNode) -> list[str]:
    """The cell's tags (an empty list when it has none)."""
    return list(cell.metadata.get("tags", []))


def fence(body: str) -> str:
    """A backtick fence longer than any run of backticks in ``body``."""
    longest = max((len(run) for run in re.findall(r"`+", body)), default=0)
    return "`" * max(3, longest + 1)


def exercise_cells(cell: nbformat.NotebookNode, label: str) -> list[nbformat.NotebookNode]:
    """The ``### Exercise N: title`` Markdown cell as its heading and an ``{exercise}`` box.

    The heading keeps the notebook's number and the page's table of contents; the box is
    unnumbered (sphinx-exercise would number the exercises of the whole book in a row).
    """
    first, _, body = cell.source.partition("\n")
    if EXERCISE.fullmatch(first.strip()) is None:
        raise ValueError(f"cell: expected '### Exercise N: title' first, got {first!r}")
    heading = copy.deepcopy(cell)
    heading.source = first.strip()
    ticks = fence(body)
    box = nbformat.v4.new_markdown_cell(
        f"{ticks}{{exercise}}\n:label: {label}\n:nonumber:\n\n{body.strip()}\n{ticks}", id=label
    )
    box.metadata = copy.deepcopy(cell.metadata)
    return [heading, box]


def marker(text: str, cell_id: str) -> nbformat.NotebookNode:
    """A Markdown cell holding one gated directive line."""
    return nbformat.v4.new_markdown_cell(text, id=cell_id)


def site_notebook(nb: nbformat.NotebookNode, stem: str) -> nbformat.NotebookNode:
    """The copy of ``nb`` that the site renders (``nb`` itself is left unchanged).

    Args:
        nb: a course notebook.
        stem: its file name without ``.ipynb``, the prefix of the exercise labels.
    """
    cells: list[nbformat.NotebookNode] = []
    label: str | None = None
    in_solution = False
    for cell in nb.cells:
        is_solution = "solution" in tags(cell)
        if in_solution and not is_solution:
            cells.append(marker("```{solution-end}\n```", f"{label}-end"))
            in_solution = False
        if cell.cell_type == "markdown" and "exercise" in tags(cell):
            found = EXERCISE.match(cell.source)
            if found:
                label = f"ex-{stem}-{found.group(1)}"
                cells.extend(exercise_cells(cell, label))
                continue
        if is_solution and not in_solution:
            if label is None:
                raise ValueError(f"{stem}: a solution cell comes before any exercise")
            cells.append(
                marker(f"```{{solution-start}} {label}\n:class: dropdown\n```", f"{label}-start")
            )
            in_solution = True
        cell = copy.deepcopy(cell)
        if cell.cell_type == "code":
            cell.outputs = [o for o in cell.outputs if WIDGET_VIEW not in o.get("data", {})]
        cells.append(cell)
    if in_solution:
        cells.append(marker("```{solution-end}\n```", f"{label}-end"))
    new = copy.deepcopy(nb)
    new.cells = cells
    return new


def write_copy(destination: Path, root: Path = ROOT) -> list[Path]:
    """Write the build copy of ``root`` into ``destination`` (emptied first).

    Returns:
        The notebooks written.
    """
    if destination.resolve() in (root.resolve(), (root / "chapters").resolve()):
        raise ValueError(f"destination: expected a build folder, got the sources {destination}")
    shutil.rmtree(destination, ignore_errors=True)
    (destination / "book").mkdir(parents=True)
    (destination / "chapters").mkdir()
    for name in BOOK_FILES:
        shutil.copy2(root / "book" / name, destination / "book" / name)
    written = []
    for path in sorted((root / "chapters").glob("*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        target = destination / "chapters" / path.name
        nbformat.write(site_notebook(nb, path.stem), target)
        written.append(target)
    return written


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__)
        return 2
    written = write_copy(Path(argv[0]))
    print(f"site copy: {len(written)} notebooks in {argv[0]}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
