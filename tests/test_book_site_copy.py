"""The site's build copy (book/site_copy.py): exercise boxes, solution dropdowns, no live
widget outputs, static twins after live views, no stored twins or noqa comments, and the
sources left as they were."""

import hashlib
import importlib.util
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
spec = importlib.util.spec_from_file_location("site_copy", ROOT / "book" / "site_copy.py")
site_copy = importlib.util.module_from_spec(spec)
spec.loader.exec_module(site_copy)

NOTEBOOKS = sorted((ROOT / "chapters").glob("*.ipynb"))


def small_notebook():
    nb = nbformat.v4.new_notebook()
    md = nbformat.v4.new_markdown_cell
    code = nbformat.v4.new_code_cell
    nb.cells = [
        code(
            "view",
            outputs=[
                nbformat.v4.new_output(
                    "display_data",
                    data={site_copy.WIDGET_VIEW: {"model_id": "0" * 32}, "text/plain": "VBox()"},
                ),
                nbformat.v4.new_output("stream", text="built\n"),
            ],
        ),
        md("### Exercise 1: add one\n\nWrite ````f````, with `x + 1`."),
        code("def f(x):\n    raise NotImplementedError"),
        code("# Solution to exercise 1\ndef f(x):\n    return x + 1"),
        md("**Solution to exercise 1.** More words."),
        code("assert f(1) == 2"),
        md("### Exercise 2: written\n\nWhy?"),
        md("**Solution to exercise 2.** Because."),
    ]
    for i in (1, 2, 5, 6):
        nb.cells[i].metadata.tags = ["exercise"]
    for i in (3, 4, 7):
        nb.cells[i].metadata.tags = ["solution"]
        nb.cells[i].metadata.jupyter = {"source_hidden": True}
    return nb


def test_exercises_become_boxes_and_solutions_dropdowns():
    nb = small_notebook()
    before = nbformat.writes(nb)
    site = site_copy.site_notebook(nb, "09_demo")
    assert nbformat.writes(nb) == before, "the input notebook is not changed"
    sources = [c.source for c in site.cells]
    assert sources[1] == "### Exercise 1: add one"
    # the body holds a run of 4 backticks, so the fence needs 5
    assert sources[2] == (
        "`````{exercise}\n:label: ex-09_demo-1\n:nonumber:\n\nWrite ````f````, with `x + 1`.\n`````"
    )
    assert sources[4] == "```{solution-start} ex-09_demo-1\n:class: dropdown\n```"
    assert sources[5].startswith("# Solution to exercise 1")
    assert sources[6].startswith("**Solution to exercise 1.**")
    assert sources[7] == "```{solution-end}\n```"
    assert sources[8] == "assert f(1) == 2"
    assert sources[-3] == "```{solution-start} ex-09_demo-2\n:class: dropdown\n```"
    assert sources[-1] == "```{solution-end}\n```", "a solution at the very end is closed"
    assert len(site.cells) == len(nb.cells) + 2 + 4  # two boxes, two start/end pairs
    assert len({c.id for c in site.cells}) == len(site.cells), "cell ids stay unique"
    nbformat.validate(site)


def test_live_widget_outputs_are_dropped_and_the_rest_kept():
    site = site_copy.site_notebook(small_notebook(), "09_demo")
    assert [o.output_type for o in site.cells[0].outputs] == ["stream"]


def test_a_solution_before_any_exercise_is_an_error():
    nb = small_notebook()
    nb.cells = nb.cells[3:4]
    with pytest.raises(ValueError, match="solution"):
        site_copy.site_notebook(nb, "09_demo")


def live_view_notebook():
    nb = nbformat.v4.new_notebook()
    code = nbformat.v4.new_code_cell
    nb.cells = [
        code("from attention_course.views.demo import build_demo_view\nview = build_demo_view()"),
        code("x = 1  # noqa: F811 (replaces the stub)\ny = 2"),
        code(
            "from attention_course.views.static import static_twin\n\n"
            "# Collapsed here: in JupyterLab, use the live view above.\n"
            'static_twin(view, "x", [1, 2])'
        ),
    ]
    nb.cells[0].metadata.tags = ["live-view", "nbval-ignore-output"]
    nb.cells[0].metadata.view = "demo"
    nb.cells[0].outputs = [
        nbformat.v4.new_output(
            "display_data",
            data={site_copy.WIDGET_VIEW: {"model_id": "0" * 32}, "text/plain": "VBox()"},
        )
    ]
    nb.metadata.widgets = {"application/vnd.jupyter.widget-state+json": {"state": {}}}
    return nb


def test_live_views_get_their_twin_and_stored_twins_go():
    calls = []

    def twin(module, element_id):
        calls.append((module, element_id))
        return f'<div class="static-twin" id="{element_id}"></div>'

    site = site_copy.site_notebook(live_view_notebook(), "09_demo", twin)
    assert calls == [("demo", "twin-09_demo-0")]
    assert [o.output_type for o in site.cells[0].outputs] == ["display_data"]
    assert 'class="static-twin"' in site.cells[0].outputs[0].data["text/html"]
    assert len(site.cells) == 2, "the stored twin cell is dropped"
    assert site.cells[1].source == "x = 1\ny = 2", "noqa comments are not shown"
    assert "widgets" not in site.metadata, "no widget state: the page loads no widget code"
    nbformat.validate(site)
    # the module's name comes from the cell's code when the metadata lost it
    nb = live_view_notebook()
    del nb.cells[0].metadata["view"]
    site_copy.site_notebook(nb, "09_demo", twin)
    assert calls[-1][0] == "demo"


def test_copy_of_the_course(tmp_path):
    before = {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in NOTEBOOKS}
    made = []
    written = site_copy.write_copy(
        tmp_path / "site-src", twin=lambda module, element_id: made.append(module) or "<p></p>"
    )
    assert {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in NOTEBOOKS} == before
    assert [p.name for p in written] == [p.name for p in NOTEBOOKS]
    for name in site_copy.BOOK_FILES:
        assert (tmp_path / "site-src" / "book" / name).is_file()
    for path in written:
        nb = nbformat.read(path, as_version=4)
        text = nbformat.writes(nb)
        assert site_copy.WIDGET_VIEW not in text, path.name
        starts = sum(c.source.startswith("```{solution-start}") for c in nb.cells)
        ends = sum(c.source.startswith("```{solution-end}") for c in nb.cells)
        assert starts == ends, path.name
        if not path.name.startswith("00_"):
            assert starts >= 3 and "{exercise}" in text, path.name
        assert "static_twin(" not in text, path.name
    with pytest.raises(ValueError, match="destination"):
        site_copy.write_copy(ROOT)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_every_toc_entry_is_a_chapter(path):
    toc = (ROOT / "book" / "_toc.yml").read_text()
    assert f"file: chapters/{path.stem}\n" in toc, f"{path.name} is missing from book/_toc.yml"


def test_course_glossary_has_every_chapters_terms(tmp_path):
    glossary = importlib.util.spec_from_file_location("glossary", ROOT / "book" / "glossary.py")
    module = importlib.util.module_from_spec(glossary)
    glossary.loader.exec_module(module)
    page = module.course_glossary(ROOT / "chapters")
    for path in sorted((ROOT / "chapters").glob("*.ipynb")):
        for term, _zh, _meaning in module.chapter_terms(path):
            row = next((line for line in page.splitlines() if line.startswith(f"| {term} |")), None)
            assert row is not None, f"{path.name}: {term!r} is missing from the course glossary"
            assert path.name in row, f"{term!r}: the glossary row does not link {path.name}"
