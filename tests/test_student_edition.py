"""The student edition: a course of its own, with no solution in it, whose self-checks pass
once the instructors' solutions are pasted back.

The edition is built once per session into a temporary folder; the sources are never
written. Each chapter is then run once, in a fresh kernel, with its solutions pasted back
into a copy of the *student* notebook: the cells before the first exercise are the
edition's own (so the edition runs up to its first exercise), and every self-check after
them must pass (so the stubs, the dropped imports and the adapted cells still fit the
solutions).
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
from student_edition import YOUR_CODE, student_notebook, write_student_edition  # noqa: E402

NOTEBOOKS = sorted((ROOT / "chapters").glob("*.ipynb"))
CHAPTERS = [p for p in NOTEBOOKS if not p.name.startswith("00_")]
SELF_CHECK = re.compile(r"\bcheck_\w+\(|\bassert\b")


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


def with_solutions(original, student):
    """A copy of the student notebook with the original's solution cells pasted back."""
    kept = iter(student.cells)
    cells = [cell if "solution" in tags(cell) else next(kept) for cell in original.cells]
    assert next(kept, None) is None, "the edition has cells the original does not"
    return nbformat.from_dict({**student, "cells": cells})


@pytest.fixture(scope="module")
def edition(tmp_path_factory):
    before = {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in NOTEBOOKS}
    destination = tmp_path_factory.mktemp("course") / "student"
    written = write_student_edition(destination, solutions_url="https://example.org/course/")
    after = {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in NOTEBOOKS}
    assert before == after, "the sources must not change"
    return destination, written


def test_every_chapter_and_what_it_needs_to_run(edition):
    destination, written = edition
    assert [p.name for p in written] == [p.name for p in NOTEBOOKS], "new chapters are picked up"
    for name in ("README.md", "Makefile", "pyproject.toml", "environment.yml", "postBuild"):
        assert (destination / name).is_file(), name
    assert (destination / "src" / "attention_course" / "checks.py").is_file()
    tools = sorted(p.name for p in (destination / "tools").iterdir())
    assert tools == ["check_exercises.py", "deps.py"], tools
    for developer in ("tests", "bench", "book", ".ci"):
        assert not (destination / developer).exists(), f"{developer}/ is not handed out"


def test_readme_is_for_students(edition):
    destination, written = edition
    readme = (destination / "README.md").read_text(encoding="utf-8")
    assert readme.startswith("# Attention, hands-on: student edition")
    for step in ("make setup", "make lab", "make check NB=", "Binder", "Colab", "# YOUR CODE HERE"):
        assert step in readme, step
    assert "https://example.org/course/" in readme, "where the solutions live"
    for name in (p.stem for p in written):
        assert f"| `{name}` |" in readme, f"{name} missing from the chapter table"
    for developer in ("make test", "make book", "make bench", "make student", "nbval", "mutants"):
        assert developer not in readme, developer
    assert "@" not in re.sub(r"\S+@\S+", "", readme), "a template placeholder is left"


def make(destination, *args, venv=None):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    extra = []
    if venv is not None:  # use the course's venv; never (re)build it from the edition
        extra = [f"VENV={venv}", "-o", f"{venv}/.installed"]
    return subprocess.run(
        ["make", "--no-print-directory", *args, *extra],
        cwd=destination,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_every_listed_make_target_works(edition, tmp_path):
    destination, _ = edition
    listed = make(destination, "help")
    assert listed.returncode == 0, listed.stderr
    targets = re.findall(r"make (\S+)", listed.stdout)
    assert targets == ["help", "setup", "lab", "check"], targets
    # setup and lab: the commands they would run refer to files the edition has
    dry = make(destination, "-n", "setup", "lab", f"VENV={tmp_path / 'venv'}")
    assert dry.returncode == 0, dry.stderr
    for needed in re.findall(r"(tools/\S+\.py|requirements[-\w]*\.txt)", dry.stdout):
        assert (destination / needed).is_file(), needed
    assert "jupyter lab" in dry.stdout and "root_dir=chapters" in dry.stdout
    # check: really runs a saved chapter and reports its self-checks (failing: no solutions)
    chapter = CHAPTERS[0].name
    checked = make(destination, "check", f"NB=chapters/{chapter}", venv=Path(sys.prefix))
    assert checked.returncode != 0, checked.stdout + checked.stderr
    assert "Exercise 1" in checked.stdout and "FAILED" in checked.stdout, checked.stdout
    assert "NotImplementedError" in checked.stdout or "AssertionError" in checked.stdout
    missing = make(destination, "check", venv=Path(sys.prefix))
    assert missing.returncode != 0 and "say which chapter" in missing.stderr


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
    kept = [c for c in original.cells if "solution" not in tags(c)]
    assert len(student.cells) == len(kept), "every other cell is kept, in order"
    for mine, theirs in zip(student.cells, kept, strict=True):
        assert mine.cell_type == theirs.cell_type and tags(mine) == tags(theirs)


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.name)
def test_exercises_are_ready_for_students(edition, path):
    destination, _ = edition
    student = nbformat.read(destination / "chapters" / path.name, as_version=4)
    exercise_code = [c for c in student.cells if c.cell_type == "code" and "exercise" in tags(c)]
    assert exercise_code
    for cell in exercise_code:
        assert cell.outputs == [] and cell.execution_count is None, cell.source[:60]
        lines = cell.source.splitlines()
        for i, line in enumerate(lines):
            if line.strip().startswith("raise NotImplementedError("):
                assert i and lines[i - 1].strip() == YOUR_CODE, cell.source
    assert any(YOUR_CODE in c.source for c in exercise_code), "no stub is marked"
    # the teaching cells keep their outputs
    original = nbformat.read(path, as_version=4)
    teaching = [
        c.get("outputs") for c in original.cells if not {"exercise", "solution"} & set(tags(c))
    ]
    assert [c.get("outputs") for c in student.cells if "exercise" not in tags(c)] == teaching
    # prose written for the instructors' edition is adapted
    for cell in student.cells:
        if cell.cell_type == "markdown":
            stale = re.search(
                r"solutions? (?:is|are) (?:collapsed|hidden)|(?:hidden|collapsed) solution|"
                r"click to expand|student\s+edition the|after the solution",
                cell.source,
                re.I,
            )
            assert not stale, f"{path.name}: {cell.source[:200]!r}"
    exercises = [c for c in student.cells if c.source.startswith("## Exercises")]
    assert exercises and "the student edition" in exercises[0].source


def lint(folder: Path, config: Path) -> list[str]:
    """ruff's findings on folder/chapters as 'notebook: CODE message' (cell and line dropped)."""
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "ruff",
            "check",
            "--config",
            str(config),
            "--output-format",
            "concise",
            "--no-fix",
            "chapters",
        ],  # fmt: skip
        cwd=folder,
        capture_output=True,
        text=True,
    )
    found = re.findall(
        r"^chapters/(\S+\.ipynb):cell \d+:\d+:\d+: (\w+\d+) (.*)$", result.stdout, re.M
    )
    return sorted(f"{name}: {code} {message}" for name, code, message in found)


def test_edition_notebooks_lint_clean(edition):
    """Imports only the removed solutions used are dropped (those an exercise names stay),
    and the edition adds no finding to the sources' own (ruff, the course's config)."""
    destination, _ = edition
    mine = lint(destination, destination / "pyproject.toml")
    theirs = lint(ROOT, ROOT / "pyproject.toml")
    assert not [f for f in mine if " F401 " in f], mine
    new = [f for f in mine if f not in theirs]
    assert not new, new
    setup = nbformat.read(destination / "chapters" / "03_scoring_functions.ipynb", as_version=4)
    assert "masked_softmax" in "".join(c.source for c in setup.cells if "import" in c.source), (
        "exercise 1 of chapter 03 tells students to use masked_softmax: its import stays"
    )


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_runs_and_every_self_check_passes_with_the_solutions(edition, path):
    from nbclient import NotebookClient

    destination, _ = edition
    original = nbformat.read(path, as_version=4)
    student = nbformat.read(destination / "chapters" / path.name, as_version=4)
    restored = with_solutions(original, student)
    env = {"OMP_NUM_THREADS": "1"}  # as `make` sets it: 2 cores, 2 workers
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        NotebookClient(
            restored,
            timeout=600,
            kernel_name="python3",
            allow_errors=True,
            resources={"metadata": {"path": str(destination / "chapters")}},
            store_widget_state=False,
        ).execute()
    finally:
        for k, v in old.items():
            os.environ.pop(k) if v is None else os.environ.__setitem__(k, v)
    failures = [
        f"cell {i} ({'self-check' if 'exercise' in tags(c) else 'teaching'}): "
        f"{o.ename}: {o.evalue.splitlines()[0] if o.evalue else ''}"
        for i, c in enumerate(restored.cells)
        for o in c.get("outputs", [])
        if o.output_type == "error"
    ]
    assert not failures, f"{path.name}: {failures}"
    checks = [
        c
        for c in restored.cells
        if c.cell_type == "code" and "exercise" in tags(c) and SELF_CHECK.search(c.source)
    ]
    assert checks or path.name.startswith("00_"), f"{path.name}: no self-check found"
    assert all(c.execution_count is not None for c in checks)


def test_student_notebook_on_a_small_notebook():
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell("x = 1", outputs=[], execution_count=1),
        nbformat.v4.new_code_cell(
            'def f():\n    raise NotImplementedError("Exercise 1")', execution_count=2
        ),
        nbformat.v4.new_code_cell("def f(): return 42  # the answer", execution_count=3),
        nbformat.v4.new_code_cell("assert f() == 42", execution_count=4),
        nbformat.v4.new_markdown_cell("## Exercises\n\nThe solutions are collapsed: try first."),
    ]
    nb.cells[1].metadata.tags = ["exercise"]
    nb.cells[2].metadata.tags = ["solution"]
    nb.cells[3].metadata.tags = ["exercise"]
    nb.cells[3].outputs = [nbformat.v4.new_output("stream", text="ok\n")]
    student = student_notebook(nb)
    assert [c.source for c in student.cells][:3] == [
        "x = 1",
        'def f():\n    # YOUR CODE HERE\n    raise NotImplementedError("Exercise 1")',
        "assert f() == 42",
    ]
    assert student.cells[3].source.startswith("## Exercises\n\n*This is the student edition")
    assert student.cells[2].outputs == [] and student.cells[2].execution_count is None
    assert student.cells[0].execution_count == 1
    assert len(nb.cells) == 5 and nb.cells[3].outputs, "the input notebook is not changed"


def test_refuses_to_overwrite_the_sources():
    with pytest.raises(ValueError, match="destination"):
        write_student_edition(ROOT)
