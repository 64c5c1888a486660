"""Insert or update the Colab set-up cell in chapters, without re-executing them.

    python tools/colab.py chapters/*.ipynb         # insert or update the cell
    python tools/colab.py --check chapters/*.ipynb # exit 1 if a notebook lacks the
                                                   # current cell (or has an old one)

The cell is the first code cell of every chapter (right under the title cell). On Google
Colab it installs what Colab lacks: this course's package from the repository and d2l
without its stale pins (both with ``--no-deps``: Colab's own torch, numpy, matplotlib,
ipywidgets and IPython are inside the ranges the course supports, and replacing them
would break the runtime). Anywhere else it does nothing and prints nothing.

The repository comes from ``repository.url`` in book/_config.yml (the one place it is
set) and the d2l pin from pyproject.toml. Inserting or updating the cell is idempotent:
an existing cell (found by its tag) is updated in place; execution counts are renumbered
as a run top to bottom would number them, and no other cell or output changes.
tools/colab_check.sh runs the cell the way Colab would.
"""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat
import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
from deps import install_without_deps  # noqa: E402
from notebooks import clean  # noqa: E402

TAG = "colab-setup"
#: ``remove-cell`` keeps the cell off the course site (Jupyter Book); it stays in the
#: notebook that the site's Colab button opens.
TAGS = [TAG, "remove-cell"]


def repository_url() -> str:
    """``repository.url`` from book/_config.yml."""
    config = yaml.safe_load((ROOT / "book" / "_config.yml").read_text())
    return str(config["repository"]["url"]).rstrip("/")


def cell_source(url: str | None = None, d2l: str | None = None) -> str:
    """The cell's code: pip commands only when running on Colab, for what is missing."""
    url = url or repository_url()
    (d2l,) = [d2l] if d2l else install_without_deps()
    return (
        "# Google Colab only: install what Colab lacks (this course's package, and d2l\n"
        "# without its stale pins). Anywhere else this cell does nothing.\n"
        "import sys\n"
        "\n"
        'if "google.colab" in sys.modules:\n'
        "    import importlib.util\n"
        "\n"
        '    if importlib.util.find_spec("attention_course") is None:\n'
        f"        %pip install --quiet --no-deps git+{url}\n"
        '    if importlib.util.find_spec("d2l") is None:\n'
        f"        %pip install --quiet --no-deps {d2l}\n"
        "    importlib.invalidate_caches()"
    )


def find_cell(nb: nbformat.NotebookNode) -> int | None:
    """Index of the Colab cell, or None."""
    for i, cell in enumerate(nb.cells):
        if TAG in cell.metadata.get("tags", []):
            return i
    return None


def with_colab_cell(nb: nbformat.NotebookNode, source: str) -> nbformat.NotebookNode:
    """A copy of ``nb`` whose Colab cell (inserted under the title if absent) is ``source``."""
    nb = nbformat.from_dict(nb)
    index = find_cell(nb)
    if index is None:
        cell = nbformat.v4.new_code_cell(source, metadata={"tags": list(TAGS)})
        cell.id = TAG  # a fixed id: the same bytes whichever run inserted it
        cell.execution_count = 0  # counted; clean() renumbers every cell in order
        first = 1 if nb.cells and nb.cells[0].cell_type == "markdown" else 0
        nb.cells.insert(first, cell)
    else:
        cell = nb.cells[index]
        cell.source = source
        cell.outputs = []
        cell.metadata["tags"] = list(TAGS) + [
            t for t in cell.metadata.get("tags", []) if t not in TAGS
        ]
        if cell.execution_count is None:
            cell.execution_count = 0
    return clean(nb)


def main(argv: list[str]) -> int:
    check = "--check" in argv
    paths = [Path(a) for a in argv if a != "--check"]
    if not paths:
        print(__doc__)
        return 2
    source = cell_source()
    stale = []
    for path in paths:
        nb = nbformat.read(path, as_version=4)
        updated = with_colab_cell(nb, source)
        if updated == nb:
            continue
        stale.append(path)
        if not check:
            nbformat.write(updated, path)
            print(f"{path}: Colab cell {'updated' if find_cell(nb) is not None else 'inserted'}")
    if check and stale:
        print("no current Colab cell (run `python tools/colab.py`):", *stale, sep="\n  ")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
