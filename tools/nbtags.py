"""The course's notebook cell tags and cell metadata, read in one place.

Used by ``book/site_copy.py`` (the site) and ``tools/student_edition.py`` (the student
edition); both put this folder on ``sys.path`` and ``from nbtags import ...``.

Tags (CONTRIBUTING.md): ``exercise`` (a task, its stub or its self-check), ``solution``
(collapsed in JupyterLab, removed from the student edition), ``nbval-ignore-output``,
and ``live-view`` on the cell that builds an interactive view, whose cell metadata
``"view"`` names its module under ``attention_course.views``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

EXERCISE = "exercise"
SOLUTION = "solution"
IGNORE_OUTPUT = "nbval-ignore-output"
LIVE_VIEW = "live-view"


def tags(cell: Mapping[str, Any]) -> list[str]:
    """The cell's tags (an empty list when it has none)."""
    return list(cell.get("metadata", {}).get("tags", []))


def has_tag(cell: Mapping[str, Any], tag: str) -> bool:
    """True if the cell carries ``tag``."""
    return tag in tags(cell)


#: what names a view module in a cell's code: an import, else the builder's name
_IMPORTED = re.compile(r"\battention_course\.views\.(\w+)")
_BUILDER = re.compile(r"\bbuild_(\w+)_view\(")


def view_module(cell: Mapping[str, Any]) -> str | None:
    """The view module a ``live-view`` cell builds, else None (not a live-view cell).

    The cell metadata ``"view"`` names it. A cell whose metadata lost the name (a tool
    that strips unknown metadata) falls back on its code: the one module it imports from
    ``attention_course.views``, else the one ``build_<name>_view(`` it calls.

    Raises:
        ValueError: a ``live-view`` cell that names no module, or more than one.
    """
    if not has_tag(cell, LIVE_VIEW):
        return None
    name = cell.get("metadata", {}).get("view")
    if name is None:
        source = cell.get("source", "")
        source = "".join(source) if isinstance(source, list) else source
        found = set(_IMPORTED.findall(source)) or set(_BUILDER.findall(source))
        name = found.pop() if len(found) == 1 else None
    if not isinstance(name, str) or not name.isidentifier():
        raise ValueError(
            f"cell metadata 'view': expected the module name of a live-view cell "
            f"(e.g. 'kernel_width'), got {cell.get('metadata', {}).get('view')!r}"
        )
    return name
