"""The course glossary: every chapter's glossary table in one page, built with the site.

    python book/glossary.py          # print the page (``write_copy`` writes it)

Each chapter ends with ``## Glossary``, a table ``term | d2l-zh term | meaning``. This page
lists every term once, alphabetically, with the chapters that define it (the first
chapter's d2l-zh term and meaning), so it can never disagree with the chapters.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
#: a table cell separator: a pipe not escaped with a backslash
SEPARATOR = re.compile(r"(?<!\\)\|")


def chapter_terms(path: Path) -> list[tuple[str, str, str]]:
    """(term, d2l-zh term, meaning) rows of the chapter's ``## Glossary`` table."""
    nb = nbformat.read(path, as_version=4)
    rows = []
    for cell in nb.cells:
        if cell.cell_type != "markdown" or "## Glossary" not in cell.source:
            continue
        table = cell.source.split("## Glossary", 1)[1]
        for line in table.splitlines():
            cells = [c.strip() for c in SEPARATOR.split(line.strip())[1:-1]]
            if len(cells) != 3 or set(cells[0]) <= set("-: ") or cells[0].lower() == "term":
                continue
            rows.append((cells[0], cells[1], cells[2]))
    return rows


def course_glossary(chapters: Path = ROOT / "chapters") -> str:
    """The glossary page (MyST Markdown) from every chapter in ``chapters``."""
    terms: dict[str, tuple[str, str, str, list[str]]] = {}
    for path in sorted(chapters.glob("*.ipynb")):
        number = path.stem.split("_", 1)[0]
        link = f"[{number}](../chapters/{path.name})"
        for term, zh, meaning in chapter_terms(path):
            key = term.strip("*`").lower()
            if key in terms:
                terms[key][3].append(link)
            else:
                terms[key] = (term, zh, meaning, [link])
    lines = [
        "# Glossary",
        "",
        "Every term the chapters define, with the term d2l-zh (the Chinese edition of *Dive",
        "into Deep Learning*) uses for it and the chapters whose glossary has it (the first",
        "one's meaning is shown). Made from the chapters' own glossaries when the site is built.",
        "",
        "| term | d2l-zh term | meaning | chapters |",
        "|---|---|---|---|",
    ]
    for key in sorted(terms):
        term, zh, meaning, links = terms[key]
        lines.append(f"| {term} | {zh} | {meaning} | {', '.join(links)} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.stdout.write(course_glossary())
