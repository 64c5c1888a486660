"""Write the build copy that `make book` turns into the site: the sources are never edited.

    python book/site_copy.py build/site-src

The copy has the repository's layout (``book/`` and ``chapters/``), so page names, and
with them the Binder links, are ``chapters/NN_name``. On the copied notebooks only:

* each Markdown cell ``### Exercise N: title`` tagged ``exercise`` becomes that heading
  and a sphinx-exercise ``{exercise}`` box with the task, labelled ``ex-<notebook>-N``;
* each run of cells tagged ``solution`` is wrapped in ``{solution-start}`` /
  ``{solution-end}`` cells for that exercise, shown as a collapsed dropdown;
* live ipywidgets outputs and the notebook's widget state are dropped: without a kernel
  they cannot draw, and the page loads no widget code;
* each code cell tagged ``live-view`` gets, as its output, the view's static twin:
  frames drawn now from ``static_twin_frames()`` of the module that its cell metadata
  ``"view"`` names (``attention_course.views.<view>``), written under
  ``site-assets/twins/``, behind a labelled range control. Twin cells that a notebook
  still stores (``static_twin(...)``) are dropped;
* ``# noqa`` comments (for the linter, not the reader) are removed from code.
"""

from __future__ import annotations

import copy
import importlib
import re
import shutil
import sys
from collections.abc import Callable
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
sys.path.insert(0, str(ROOT / "book"))
from glossary import course_glossary  # noqa: E402
from nbtags import EXERCISE as EXERCISE_TAG  # noqa: E402
from nbtags import SOLUTION, has_tag, view_module  # noqa: E402

BOOK_FILES = (
    "_config.yml",
    "_toc.yml",
    "intro.md",
    "instructors.md",
    "references.bib",
    "mathjax_everywhere.py",
    "_static/course.css",
)
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
EXERCISE = re.compile(r"### Exercise (\d+): (.+)")
#: a stored twin cell: it calls ``static_twin(`` (the site draws its own)
STORED_TWIN = re.compile(r"^[^#\n]*\bstatic_twin\(", re.MULTILINE)
#: a linter directive comment (no-qa) and what follows it on the line
NOQA = re.compile(r"[ \t]*# noqa\b.*$", re.MULTILINE)
#: the folder of the build copy, and of the site, that holds the twins' frames
TWINS = "twins"

#: builds the twin of a view module: (module name, cell id) -> HTML of the twin
TwinMaker = Callable[[str, str], str]


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


def site_notebook(
    nb: nbformat.NotebookNode, stem: str, twin: TwinMaker | None = None
) -> nbformat.NotebookNode:
    """The copy of ``nb`` that the site renders (``nb`` itself is left unchanged).

    Args:
        nb: a course notebook.
        stem: its file name without ``.ipynb``, the prefix of the exercise labels.
        twin: makes the HTML of a view's static twin (see :func:`twin_maker`); None
            leaves live-view cells without one.
    """
    cells: list[nbformat.NotebookNode] = []
    label: str | None = None
    in_solution = False
    for cell in nb.cells:
        if cell.cell_type == "code" and STORED_TWIN.search(cell.source):
            continue
        is_solution = has_tag(cell, SOLUTION)
        if in_solution and not is_solution:
            cells.append(marker("```{solution-end}\n```", f"{label}-end"))
            in_solution = False
        if cell.cell_type == "markdown" and has_tag(cell, EXERCISE_TAG):
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
            cell.source = NOQA.sub("", cell.source)
            cell.outputs = [o for o in cell.outputs if WIDGET_VIEW not in o.get("data", {})]
            module = view_module(cell)
            if module is not None and twin is not None:
                html = twin(module, f"twin-{stem}-{len(cells)}")
                cell.outputs.append(
                    nbformat.v4.new_output("display_data", data={"text/html": html})
                )
        cells.append(cell)
    if in_solution:
        cells.append(marker("```{solution-end}\n```", f"{label}-end"))
    new = copy.deepcopy(nb)
    new.cells = cells
    new.metadata.pop("widgets", None)  # no widget state: the page loads no widget code
    return new


def twin_maker(destination: Path) -> TwinMaker:
    """A :data:`TwinMaker` that draws each view module's frames once, writes them into
    ``destination/site-assets/twins/`` and returns the twin's HTML (frames addressed from
    a page in ``chapters/``)."""
    from attention_course.views.static import build_twin, twin_html

    folder = destination / "site-assets" / TWINS
    built: dict[str, list[str]] = {}
    twins: dict[str, object] = {}

    def make(module: str, element_id: str) -> str:
        if module not in twins:
            twin = build_twin(importlib.import_module(f"attention_course.views.{module}"))
            folder.mkdir(parents=True, exist_ok=True)
            urls = []
            for k, png in enumerate(twin.frames):
                (folder / f"{module}-{k:02d}.png").write_bytes(png)
                urls.append(f"../{TWINS}/{module}-{k:02d}.png")
            twins[module], built[module] = twin, urls
            print(f"site copy: static twin of {module}, {len(urls)} frames", flush=True)
        return twin_html(twins[module], built[module], element_id)  # type: ignore[arg-type]

    return make


def write_copy(
    destination: Path, root: Path = ROOT, twin: TwinMaker | None | bool = True
) -> list[Path]:
    """Write the build copy of ``root`` into ``destination`` (emptied first).

    Args:
        destination: the build folder.
        root: the repository.
        twin: True draws the static twins (:func:`twin_maker`), False or None leaves
            them out, or a :data:`TwinMaker` of one's own.

    Returns:
        The notebooks written.
    """
    if destination.resolve() in (root.resolve(), (root / "chapters").resolve()):
        raise ValueError(f"destination: expected a build folder, got the sources {destination}")
    shutil.rmtree(destination, ignore_errors=True)
    (destination / "book").mkdir(parents=True)
    (destination / "chapters").mkdir()
    for name in BOOK_FILES:
        (destination / "book" / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(root / "book" / name, destination / "book" / name)
    # the course glossary: every chapter's glossary table in one page
    (destination / "book" / "glossary.md").write_text(course_glossary(root / "chapters"))
    make = twin_maker(destination) if twin is True else twin or None
    written = []
    for path in sorted((root / "chapters").glob("*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        target = destination / "chapters" / path.name
        nbformat.write(site_notebook(nb, path.stem, make), target)
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
