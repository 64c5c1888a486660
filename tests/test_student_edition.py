"""The student edition: no solution survives, exercise outputs are cleared, sources untouched,
and every student notebook still runs in a fresh kernel up to its first exercise."""

import hashlib
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
from student_edition import student_notebook, write_student_edition  # noqa: E402

NOTEBOOKS = sorted((ROOT / "chapters").glob("*.ipynb"))
CHAPTERS = [p for p in NOTEBOOKS if not p.name.startswith("00_")]


def tags(cell):
    return cell.metadata.get("tags", [])


def everything(nb) -> str:
    """All text of a notebook: sources and text outputs."""
    parts = []
    for cell in nb.cells:
        parts.append(cell.source)
        for output in cell.get("outputs", []):
            parts.append(str(output.get("text", "")))
            parts.extend(str(v) for v in output.get("data", {}).values())
    return "\n".join(parts)


def solution_only_lines(nb) -> set[str]:
    """Lines of the solution cells that appear nowhere else in the notebook (the oracle)."""
    rest = everything(
        nbformat.from_dict({"cells": [c for c in nb.cells if "solution" not in tags(c)]})
    )
    lines = {
        line.strip()
        for cell in nb.cells
        if "solution" in tags(cell)
        for line in cell.source.splitlines()
    }
    return {line for line in lines if len(line) >= 8 and line not in rest}


@pytest.fixture(scope="module")
def edition(tmp_path_factory):
    before = {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in NOTEBOOKS}
    destination = tmp_path_factory.mktemp("course") / "student"
    written = write_student_edition(destination)
    after = {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in NOTEBOOKS}
    assert before == after, "the sources must not change"
    return destination, written


def test_every_chapter_and_what_it_needs_to_run(edition):
    destination, written = edition
    assert [p.name for p in written] == [p.name for p in NOTEBOOKS]
    for name in ("README.md", "Makefile", "pyproject.toml", "requirements.txt", "postBuild"):
        assert (destination / name).is_file(), name
    assert (destination / "src" / "attention_course" / "checks.py").is_file()
    assert (destination / "tools" / "deps.py").is_file(), "make setup needs tools/deps.py"
    assert not (destination / "tests").exists(), "the course's tests are not handed out"
    readme = (destination / "README.md").read_text(encoding="utf-8")
    assert readme.startswith("> **Student edition.**")
    assert readme.endswith((ROOT / "README.md").read_text(encoding="utf-8"))


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.name)
def test_no_solution_text_survives(edition, path):
    destination, _ = edition
    original = nbformat.read(path, as_version=4)
    student = nbformat.read(destination / "chapters" / path.name, as_version=4)
    secret = solution_only_lines(original)
    assert secret, f"{path.name}: the oracle found no solution lines to look for"
    text = everything(student)
    leaked = sorted(line for line in secret if line in text)
    assert not leaked, f"{path.name}: solution lines in the student edition: {leaked[:3]}"
    assert "Solution to exercise" not in text
    assert not [c for c in student.cells if "solution" in tags(c)]
    # every other cell is kept, in order
    kept = [c.source for c in original.cells if "solution" not in tags(c)]
    assert [c.source for c in student.cells] == kept


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.name)
def test_exercise_outputs_are_cleared(edition, path):
    destination, _ = edition
    student = nbformat.read(destination / "chapters" / path.name, as_version=4)
    exercise_code = [c for c in student.cells if c.cell_type == "code" and "exercise" in tags(c)]
    assert exercise_code
    for cell in exercise_code:
        assert cell.outputs == [] and cell.execution_count is None, cell.source[:60]
    # the teaching cells keep their outputs
    assert any(c.get("outputs") for c in student.cells if "exercise" not in tags(c))


def test_student_notebook_on_a_small_notebook():
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell("x = 1", outputs=[], execution_count=1),
        nbformat.v4.new_code_cell("def f(): raise NotImplementedError", execution_count=2),
        nbformat.v4.new_code_cell("def f(): return 42  # the answer", execution_count=3),
        nbformat.v4.new_code_cell("assert f() == 42", execution_count=4),
    ]
    nb.cells[1].metadata.tags = ["exercise"]
    nb.cells[2].metadata.tags = ["solution"]
    nb.cells[3].metadata.tags = ["exercise"]
    nb.cells[3].outputs = [nbformat.v4.new_output("stream", text="ok\n")]
    student = student_notebook(nb)
    assert [c.source for c in student.cells] == ["x = 1", nb.cells[1].source, "assert f() == 42"]
    assert student.cells[2].outputs == [] and student.cells[2].execution_count is None
    assert student.cells[0].execution_count == 1
    assert len(nb.cells) == 4 and nb.cells[3].outputs, "the input notebook is not changed"


def test_refuses_to_overwrite_the_sources():
    with pytest.raises(ValueError, match="destination"):
        write_student_edition(ROOT)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_runs_up_to_the_first_exercise(edition, path, monkeypatch):
    from nbclient import NotebookClient

    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # as `make` sets it: 2 cores, 2 workers

    destination, _ = edition
    student = nbformat.read(destination / "chapters" / path.name, as_version=4)
    first = next((i for i, c in enumerate(student.cells) if "exercise" in tags(c)), None)
    if first is None:
        assert path.name.startswith("00_"), f"{path.name}: a chapter without exercises"
        first = len(student.cells)
    student.cells = student.cells[:first]
    NotebookClient(
        student,
        timeout=600,
        kernel_name="python3",
        resources={"metadata": {"path": str(destination / "chapters")}},
        store_widget_state=False,
    ).execute()  # raises CellExecutionError on the first failing cell
    errors = [o for c in student.cells for o in c.get("outputs", []) if o.output_type == "error"]
    assert not errors
