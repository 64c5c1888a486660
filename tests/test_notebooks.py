"""Every notebook is committed executed and clean, and every chapter has the course's anatomy.

The rules are those of CONTRIBUTING.md; strict nbval (`make notebooks-test`) then proves
the stored outputs reproduce.
"""

import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
from notebooks import clean  # noqa: E402

NOTEBOOKS = sorted((ROOT / "chapters").glob("*.ipynb"))
CHAPTERS = [nb for nb in NOTEBOOKS if not nb.name.startswith("00_")]
IGNORE_TAGS = {"nbval-ignore-output", "nbval-skip"}


def load(path: Path) -> nbformat.NotebookNode:
    return nbformat.read(path, as_version=4)


def code_cells(nb):
    return [c for c in nb.cells if c.cell_type == "code"]


def tagged(nb, tag):
    return [c for c in nb.cells if tag in c.metadata.get("tags", [])]


def test_the_course_has_notebooks():
    assert (ROOT / "chapters" / "00_setup.ipynb") in NOTEBOOKS


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_clean_and_executed(path):
    nb = load(path)
    assert clean(nb) == nb, f"{path.name} needs cleaning: make clean-notebooks (or make execute)"
    counts = [c.execution_count for c in code_cells(nb)]
    assert counts == list(range(1, len(counts) + 1)), (
        f"{path.name}: not executed top to bottom in one run (make execute NB=chapters/{path.name})"
    )
    errors = [o for c in code_cells(nb) for o in c.outputs if o.output_type == "error"]
    assert not errors, f"{path.name}: stored outputs contain an error"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_at_most_one_code_cell_in_four_escapes_nbval(path):
    cells = code_cells(load(path))
    escaped = [c for c in cells if IGNORE_TAGS & set(c.metadata.get("tags", []))]
    assert 4 * len(escaped) <= len(cells), (
        f"{path.name}: {len(escaped)} of {len(cells)} code cells are output-ignored or skipped"
    )
    for cell in cells:
        if "nbval-skip" in cell.metadata.get("tags", []):
            assert cell.source.lstrip().startswith("#"), (
                f"{path.name}: an nbval-skip cell must start with a comment saying why"
            )


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.name)
def test_chapter_anatomy(path):
    nb = load(path)
    markdown = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    assert nb.cells[0].cell_type == "markdown" and nb.cells[0].source.startswith(
        f"# {path.name[:2]} "
    )
    for heading in (
        "Learning objectives",
        "Prerequisites",
        "Estimated time",
        "> **Common pitfalls**",
        "## Exercises",
        "## Summary",
        "## References",
        "## Glossary",
    ):
        assert heading in markdown, f"{path.name}: missing '{heading}'"
    exercises = [
        c
        for c in tagged(nb, "exercise")
        if c.cell_type == "markdown" and c.source.startswith("### Exercise")
    ]
    assert len(exercises) >= 3, f"{path.name}: {len(exercises)} exercises, expected at least 3"
    self_checks = [
        c
        for c in tagged(nb, "exercise")
        if c.cell_type == "code" and ("check_" in c.source or "assert " in c.source)
    ]
    assert len(self_checks) >= 2, f"{path.name}: expected at least 2 self-checking exercise cells"
    solutions = tagged(nb, "solution")
    assert solutions, f"{path.name}: no cells tagged 'solution'"
    for cell in solutions:
        assert cell.metadata.get("jupyter", {}).get("source_hidden") is True, (
            f"{path.name}: solution cells are collapsed (jupyter.source_hidden) in JupyterLab"
        )
        first = cell.source.lstrip()
        assert first.startswith(
            "# Solution to exercise" if cell.cell_type == "code" else "**Solution to exercise"
        ), f"{path.name}: {first[:60]!r}"
