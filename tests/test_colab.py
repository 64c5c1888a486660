"""The Colab cell: inserted idempotently, silent outside Colab, and in every chapter.

tools/colab_check.sh runs it for real, the way Colab would (a fresh venv, google.colab
imported at kernel start-up, every chapter executed).
"""

import contextlib
import importlib.util
import io
import re
import sys
from pathlib import Path

import nbformat
import pytest
from IPython.core.inputtransformer2 import TransformerManager

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
import colab  # noqa: E402
from notebooks import clean  # noqa: E402

NOTEBOOKS = sorted((ROOT / "chapters").glob("*.ipynb"))
URL = "https://github.com/attention-hands-on/attention-course"
REAL_FIND_SPEC = importlib.util.find_spec


def toy_notebook() -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_markdown_cell("# 99 Toy"),
        nbformat.v4.new_code_cell("x = 1\nx", execution_count=1),
        nbformat.v4.new_markdown_cell("text"),
        nbformat.v4.new_code_cell("print(x)", execution_count=2),
    ]
    nb.cells[1].outputs = [
        nbformat.v4.new_output("execute_result", {"text/plain": "1"}, execution_count=1)
    ]
    nb.cells[3].outputs = [nbformat.v4.new_output("stream", text="1\n")]
    return clean(nb)


def run_cell(source: str, *, on_colab: bool, missing: set[str], monkeypatch) -> list[str]:
    """Run the cell's code as IPython would; return the %pip lines it ran."""
    ran: list[str] = []

    class FakeShell:
        def run_line_magic(self, name: str, line: str) -> None:
            ran.append(f"%{name} {line}")

    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name in missing else REAL_FIND_SPEC(name, *a),
    )
    if on_colab:
        monkeypatch.setitem(sys.modules, "google.colab", type(sys)("google.colab"))
    else:
        monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    code = TransformerManager().transform_cell(source)
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        exec(code, {"get_ipython": FakeShell})
    assert out.getvalue() == ""
    return ran


def test_cell_installs_the_package_from_the_repository_and_d2l_without_deps():
    source = colab.cell_source()
    assert colab.repository_url() == URL
    assert f"%pip install --quiet --no-deps git+{URL}\n" in source
    assert "%pip install --quiet --no-deps d2l==1.0.3\n" in source
    assert source.count("%pip") == 2, "Colab's torch, numpy, IPython... are never replaced"


def test_cell_does_nothing_outside_colab(monkeypatch):
    ran = run_cell(
        colab.cell_source(),
        on_colab=False,
        missing={"attention_course", "d2l"},
        monkeypatch=monkeypatch,
    )
    assert ran == []


def test_on_colab_the_cell_installs_only_what_is_missing(monkeypatch):
    source = colab.cell_source()
    both = run_cell(
        source, on_colab=True, missing={"attention_course", "d2l"}, monkeypatch=monkeypatch
    )
    assert both == [
        f"%pip install --quiet --no-deps git+{URL}",
        "%pip install --quiet --no-deps d2l==1.0.3",
    ]
    assert run_cell(source, on_colab=True, missing={"d2l"}, monkeypatch=monkeypatch) == [
        "%pip install --quiet --no-deps d2l==1.0.3"
    ]
    assert run_cell(source, on_colab=True, missing=set(), monkeypatch=monkeypatch) == []


def test_insert_is_idempotent_and_leaves_every_other_cell_alone():
    nb = toy_notebook()
    once = colab.with_colab_cell(nb, colab.cell_source())
    twice = colab.with_colab_cell(once, colab.cell_source())
    assert once == twice
    assert [c.cell_type for c in once.cells] == ["markdown", "code", "code", "markdown", "code"]
    cell = once.cells[1]
    assert cell.id == "colab-setup" and cell.metadata.tags == colab.TAGS
    assert cell.outputs == [] and cell.source == colab.cell_source()
    # counts as one top-to-bottom run numbers them; outputs untouched
    assert [c.execution_count for c in once.cells if c.cell_type == "code"] == [1, 2, 3]
    assert once.cells[2].outputs[0].execution_count == 2
    assert once.cells[2].outputs[0].data == nb.cells[1].outputs[0].data
    assert once.cells[4].outputs == nb.cells[3].outputs
    nbformat.validate(once)


def test_update_replaces_an_old_cell_in_place():
    old = colab.with_colab_cell(toy_notebook(), colab.cell_source(url="https://example.org/x"))
    old.cells[1].metadata.tags.append("keep-me")
    new = colab.with_colab_cell(old, colab.cell_source())
    assert len(new.cells) == len(old.cells)
    assert new.cells[1].source == colab.cell_source()
    assert new.cells[1].metadata.tags == [*colab.TAGS, "keep-me"]


def test_check_mode_reports_a_missing_cell(tmp_path, capsys):
    path = tmp_path / "99_toy.ipynb"
    nbformat.write(toy_notebook(), path)
    assert colab.main(["--check", str(path)]) == 1
    assert colab.main([str(path)]) == 0
    assert colab.main(["--check", str(path)]) == 0
    assert "Colab cell inserted" in capsys.readouterr().out


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_every_chapter_opens_with_the_current_colab_cell(path):
    nb = nbformat.read(path, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code and code[0].source == colab.cell_source(), (
        f"{path.name}: no current Colab cell first: run python tools/colab.py {path}"
    )
    assert code[0].outputs == [], "the Colab cell prints nothing outside Colab"


def test_readme_colab_links_open_this_repository():
    readme = (ROOT / "README.md").read_text()
    slug = colab.repository_url().removeprefix("https://github.com/")
    links = re.findall(r"https://colab\.research\.google\.com/github/([^)\s]+)", readme)
    assert links, "README.md: no Open in Colab link"
    for link in links:
        assert link.startswith(f"{slug}/blob/main/chapters/"), link
        assert (ROOT / link.split("/blob/main/", 1)[1]).exists(), link
