"""The browser tests' own helpers, without a browser: URL filter, notebook scan, link walk."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from browser_support import is_local, notebooks_with_sliders
from test_site import _resolve


@pytest.mark.parametrize(
    ("url", "local"),
    [
        ("http://127.0.0.1:8888/lab?token=x", True),
        ("ws://127.0.0.1:8888/api/kernels/1/channels", True),
        ("data:image/png;base64,AAAA", True),
        ("https://cdn.jsdelivr.net/npm/mathjax@3/es5/tex-mml-chtml.js", False),
        ("http://localhost:8888/", False),  # the servers listen on 127.0.0.1 only
        ("https://127.0.0.1.example.org/", False),
    ],
)
def test_is_local(url: str, local: bool) -> None:
    assert is_local(url) is local


def _notebook(folder: Path, name: str, code: str) -> None:
    cell = {"cell_type": "code", "source": code, "metadata": {}, "outputs": []}
    text = {"cell_type": "markdown", "source": "import ipywidgets in prose", "metadata": {}}
    (folder / name).write_text(json.dumps({"cells": [text, cell]}), encoding="utf-8")


def test_notebooks_with_sliders_reads_code_imports_only(tmp_path: Path) -> None:
    _notebook(tmp_path, "a.ipynb", "from attention_course.views.kernel_width import build")
    _notebook(tmp_path, "b.ipynb", "import torch\nimport ipywidgets as widgets")
    _notebook(tmp_path, "c.ipynb", "from attention_course import views")
    _notebook(tmp_path, "d.ipynb", "# import ipywidgets\nx = 'from ipywidgets'")
    _notebook(tmp_path, "e.ipynb", "from attention_course.viewsx import y")
    assert [p.name for p in notebooks_with_sliders(tmp_path)] == ["a.ipynb", "b.ipynb", "c.ipynb"]


@pytest.mark.parametrize(
    ("page", "href", "target"),
    [
        ("chapters/02_x.html", "../book/intro.html#top", "book/intro.html"),
        ("chapters/02_x.html", "03_y.html", "chapters/03_y.html"),
        ("index.html", "book/intro.html", "book/intro.html"),
        ("chapters/02_x.html", "#section", None),
        ("chapters/02_x.html", "https://mybinder.org/v2/gh/o/r/main", None),
        ("chapters/02_x.html", "../_sources/chapters/02_x.ipynb", None),
    ],
)
def test_resolve_links(page: str, href: str, target: str | None) -> None:
    assert _resolve(page, href) == target
