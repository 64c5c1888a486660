"""Write the student edition of the course: solutions removed, a course of its own.

    python tools/student_edition.py build/student        (what `make student` runs)
    python tools/student_edition.py DEST --solutions-url URL   (where students find them)

The destination is emptied and filled with:

* every ``chapters/*.ipynb`` (new chapters are picked up by the glob), passed through
  nbconvert's ``TagRemovePreprocessor`` (cells tagged ``solution`` removed, outputs and
  execution counts of cells tagged ``exercise`` cleared) and two small preprocessors of
  the same kind: each stub's ``raise NotImplementedError`` gets a ``# YOUR CODE HERE``
  line above it, and prose about collapsed or hidden solutions is rewritten for an
  edition without them. Imports that only the removed solutions used are then dropped
  with ``ruff --fix`` (rule F401), so the edition lints clean;
* the students' own ``README.md`` and ``Makefile`` (``help``, ``setup``, ``lab``,
  ``check``) from ``tools/student/``, with the chapter table written from the notebooks;
* what ``make setup``, Binder and conda need: ``pyproject.toml``, the runtime lock,
  ``environment.yml``, ``postBuild``, ``LICENSE``, ``src/``, ``tools/deps.py``, and
  ``tools/check_exercises.py`` for ``make check``.

Nothing for developers (tests, benchmarks, the site, the mutants) is copied. The sources
are only read, never written.
"""

from __future__ import annotations

import argparse
import ast
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import yaml
from nbconvert.preprocessors import Preprocessor, TagRemovePreprocessor
from nbtags import EXERCISE, SOLUTION, has_tag

ROOT = Path(__file__).resolve().parent.parent
TEMPLATES = ROOT / "tools" / "student"
#: copied as they are when they exist: enough for `make setup`, Binder and conda
COURSE_FILES = (
    "LICENSE",
    "pyproject.toml",
    "requirements-runtime.txt",
    "requirements.txt",
    "environment.yml",
    "postBuild",
)
IGNORED = shutil.ignore_patterns("__pycache__", "*.egg-info", ".ipynb_checkpoints")
STUB = re.compile(r"^(?P<indent>[ \t]*)raise NotImplementedError\(", re.MULTILINE)
YOUR_CODE = "# YOUR CODE HERE"
#: prose written for the instructors' edition -> the student edition (applied in order)
PROSE = (
    # "The solutions are collapsed: open them only after trying." and the like
    (re.compile(r"\s*The solutions? (?:is|are) (?:collapsed|hidden)[^.]*\.", re.I), ""),
    # "a stub to fill in, a hidden solution (click to expand it ...) and a cell that checks"
    (re.compile(r",?\s+an?\s+(?:hidden|collapsed)\s+solution(?:\s*\([^)]*\))?", re.I), ""),
    # a sentence about the student edition itself
    (re.compile(r"\s*[^.\n]*(?:\n[^.\n]*)?\bstudent\s+edition\b[^.]*\.", re.I), ""),
    (re.compile(r"\bthe cell after the solution\b", re.I), "the check cell after your code"),
)
EXERCISES_NOTE = (
    "\n\n*This is the student edition: write your code where a cell says `# YOUR CODE HERE`,"
    " then run the self-check cell after it, which fails until your code is right. The"
    " solutions are on the course site.*"
)


class MarkStubs(Preprocessor):
    """Put ``# YOUR CODE HERE`` above each ``raise NotImplementedError(`` of an exercise stub."""

    def preprocess_cell(self, cell, resources, index):  # noqa: ANN001 - nbconvert's API
        if cell.cell_type == "code" and has_tag(cell, EXERCISE):
            if YOUR_CODE not in cell.source:
                cell.source = STUB.sub(rf"\g<indent>{YOUR_CODE}\n\g<0>", cell.source)
        return cell, resources


class AdaptProse(Preprocessor):
    """Rewrite sentences about collapsed solutions; say how the edition works under
    ``## Exercises``."""

    def preprocess_cell(self, cell, resources, index):  # noqa: ANN001 - nbconvert's API
        if cell.cell_type != "markdown":
            return cell, resources
        text = cell.source
        for pattern, replacement in PROSE:
            text = pattern.sub(replacement, text)
        if text.lstrip().startswith("## Exercises"):
            text = text.rstrip() + EXERCISES_NOTE
        cell.source = text
        return cell, resources


def student_notebook(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """A copy of ``nb`` for students (the input is not changed).

    Solution cells are removed, exercise cells lose their outputs and execution counts,
    stubs are marked ``# YOUR CODE HERE``, and prose about collapsed solutions is adapted.
    The cells before the exercises keep their outputs and execution counts.
    """
    new = nbformat.from_dict(nb)  # a deep copy
    resources: dict = {}
    remove = TagRemovePreprocessor(remove_cell_tags={SOLUTION}, remove_all_outputs_tags={EXERCISE})
    for preprocessor in (remove, MarkStubs(), AdaptProse()):
        new, resources = preprocessor.preprocess(new, resources)
    return new


def chapter_table(notebooks: list[Path]) -> str:
    """Markdown table rows ``| `name` | title |`` from each notebook's first heading."""
    rows = []
    for path in notebooks:
        nb = nbformat.read(path, as_version=4)
        title = next(
            (
                line.lstrip("# ").strip()
                for cell in nb.cells
                if cell.cell_type == "markdown"
                for line in cell.source.splitlines()
                if line.startswith("# ")
            ),
            path.stem,
        )
        title = re.sub(r"^\d+\s*[·:.-]\s*", "", title)  # "04 · Masked softmax" -> "Masked softmax"
        rows.append(f"| `{path.stem}` | {title} |")
    return "\n".join(rows)


def site_url(root: Path = ROOT) -> str:
    """The course site (GitHub Pages of ``repository.url`` in book/_config.yml)."""
    config = yaml.safe_load((root / "book" / "_config.yml").read_text(encoding="utf-8"))
    url = str(config["repository"]["url"]).rstrip("/")
    match = re.fullmatch(r"https://github\.com/([^/]+)/([^/]+)", url)
    return f"https://{match.group(1)}.github.io/{match.group(2)}/" if match else url


def _ruff(chapters: Path, *args: str) -> subprocess.CompletedProcess:
    """ruff on the student notebooks with the edition's own configuration."""
    return subprocess.run(
        [sys.executable, "-m", "ruff", "check", "--config", "../pyproject.toml", *args]
        + sorted(p.name for p in chapters.glob("*.ipynb")),
        cwd=chapters,
        capture_output=True,
        text=True,
    )


def keep_imports_the_exercises_name(chapters: Path) -> list[str]:
    """Mark ``# noqa: F401`` the unused imports that an exercise's text names.

    Removing a solution can leave an import unused that the exercise still asks the
    student to use (chapter 03: "use `masked_softmax`"): that import stays.

    Returns:
        ``notebook: name`` of every import kept this way.
    """
    found = _ruff(chapters, "--select", "F401", "--output-format", "json", "--exit-zero")
    unused: dict[str, set[str]] = {}
    for item in json.loads(found.stdout or "[]"):
        match = re.search(r"`([\w.]+)` imported but unused", item["message"])
        if match:
            unused.setdefault(item["filename"], set()).add(match.group(1).rsplit(".", 1)[-1])
    kept = []
    for filename, names in sorted(unused.items()):
        path = Path(filename)
        nb = nbformat.read(path, as_version=4)
        task = "\n".join(
            c.source for c in nb.cells if c.cell_type == "markdown" and has_tag(c, EXERCISE)
        )
        wanted = {name for name in names if re.search(rf"\b{re.escape(name)}\b", task)}
        for cell in nb.cells:
            if cell.cell_type != "code" or not wanted:
                continue
            code = re.sub(r"^[ \t]*[%!].*$", "", cell.source, flags=re.MULTILINE)  # magics
            try:
                tree = ast.parse(code)
            except SyntaxError:
                continue
            lines = cell.source.split("\n")
            for node in ast.walk(tree):
                if isinstance(node, ast.Import | ast.ImportFrom):
                    for alias in node.names:
                        bound = alias.asname or alias.name
                        row = alias.lineno - 1
                        if bound in wanted and "#" not in lines[row]:
                            lines[row] += "  # noqa: F401 (an exercise uses it)"
                            kept.append(f"{path.name}: {bound}")
            cell.source = "\n".join(lines)
        nbformat.write(nb, path)
    return kept


def drop_unused_imports(chapters: Path) -> None:
    """``ruff check --fix --select F401``: drop the imports only the solutions used."""
    keep_imports_the_exercises_name(chapters)
    result = _ruff(chapters, "--select", "F401", "--fix", "--quiet")
    if result.returncode:
        raise RuntimeError(
            f"ruff could not drop the unused imports:\n{result.stdout}{result.stderr}"
        )


def write_student_edition(
    destination: Path, root: Path = ROOT, solutions_url: str | None = None
) -> list[Path]:
    """Write the student edition of the course at ``root`` into ``destination``.

    Returns:
        The student notebooks written, in chapter order.
    """
    destination = destination.resolve()
    if destination == root.resolve() or root.resolve().is_relative_to(destination):
        raise ValueError(f"destination: expected a build folder, got {destination}")
    shutil.rmtree(destination, ignore_errors=True)
    (destination / "chapters").mkdir(parents=True)
    for name in COURSE_FILES:
        if (root / name).exists():
            shutil.copy2(root / name, destination / name)
    shutil.copytree(root / "src", destination / "src", ignore=IGNORED)
    (destination / "tools").mkdir()
    shutil.copy2(root / "tools" / "deps.py", destination / "tools" / "deps.py")
    shutil.copy2(TEMPLATES / "check_exercises.py", destination / "tools" / "check_exercises.py")
    requirements = next(
        name for name in ("requirements-runtime.txt", "requirements.txt") if (root / name).exists()
    )
    makefile = (TEMPLATES / "Makefile").read_text(encoding="utf-8")
    (destination / "Makefile").write_text(makefile.replace("@REQUIREMENTS@", requirements))

    notebooks = sorted((root / "chapters").glob("*.ipynb"))
    written = []
    for path in notebooks:
        target = destination / "chapters" / path.name
        nbformat.write(student_notebook(nbformat.read(path, as_version=4)), target)
        written.append(target)
    for other in sorted((root / "chapters").iterdir()):  # data or images next to the chapters
        if other.suffix != ".ipynb" and not other.name.startswith("."):
            copy = shutil.copytree if other.is_dir() else shutil.copy2
            copy(other, destination / "chapters" / other.name)
    drop_unused_imports(destination / "chapters")

    readme = (TEMPLATES / "README.md").read_text(encoding="utf-8")
    readme = readme.replace("@CHAPTERS@", chapter_table(notebooks))
    readme = readme.replace("@SOLUTIONS_URL@", solutions_url or site_url(root))
    (destination / "README.md").write_text(readme, encoding="utf-8")
    return written


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("destination", type=Path)
    parser.add_argument("--solutions-url", help="where students find the solutions")
    args = parser.parse_args(argv)
    written = write_student_edition(args.destination, solutions_url=args.solutions_url)
    print(f"student edition: {len(written)} notebooks in {args.destination}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
