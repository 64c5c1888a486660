"""The live sliders in JupyterLab, in headless Chromium.

For each notebook that has a slider (its code imports ``attention_course.views`` or
``ipywidgets``), on a copy of chapters/ served by a fresh JupyterLab: clear the outputs,
Run All, wait until the kernel is idle, fail on any error output, any "Error displaying
widget" box or any widget shown as plain text; then move every slider with the keyboard
and by dragging (and click every toggle button, checkbox and menu of a view) and assert
that the figure in the view's output changed. A canary notebook shows that each check
fails when it should. Screenshots go to build/browser-artifacts/.
"""

from __future__ import annotations

import json
import re
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from browser_support import LabServer, RequestGuard, artifact, notebooks_with_sliders
from playwright.sync_api import Browser, Locator, Page

RUN_ALL_TIMEOUT_S = 300.0
REDRAW_TIMEOUT_S = 30.0
WIDGET_LOAD_TIMEOUT_S = 15.0

# What a view draws, read from a code cell: the src of each image in an Output widget, and
# the cell's output text without slider readouts and menus (a Label that a callback sets).
SIGNATURE_JS = """cell => {
  const images = [...cell.querySelectorAll('.widget-output img, img.widget-image')]
    .map(img => img.src);
  const copy = cell.querySelector('.jp-Cell-outputWrapper').cloneNode(true);
  copy.querySelectorAll('.widget-readout, select, .widget-output').forEach(e => e.remove());
  return {images: images, text: copy.textContent};
}"""

# A widget that the front end could not render is shown as its Python repr.
PLAIN_TEXT_WIDGET = re.compile(
    r"^\s*((?:[A-Z][A-Za-z]*)?(?:Slider|Box|Buttons?|Dropdown|Checkbox|Output|Label|Text"
    r"|Progress|Select|Image)|interactive)\("
)

Signature = dict[str, object]
# the controls of a view that the test moves or clicks
CONTROLS = (
    ".widget-slider .noUi-handle, .widget-toggle-buttons, "
    ".widget-checkbox input[type=checkbox], .widget-dropdown select"
)


def _menu(page: Page, menu: str, item: str) -> None:
    """Click ``item`` (its label, shortcut aside) in the main menu ``menu``."""
    page.get_by_role("menuitem", name=menu, exact=True).click()
    page.get_by_role("menuitem", name=re.compile(rf"^{re.escape(item)}(?!\w| As)")).click()


def _kernel_state(lab: LabServer, name: str) -> str | None:
    sessions = lab.api("/api/sessions")
    assert isinstance(sessions, list)
    states = [s["kernel"]["execution_state"] for s in sessions if s["path"] == name]
    return states[0] if states else None


def _wait_until(condition: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout_s:.0f} s waiting for {what}")
        time.sleep(0.25)


def _run_all(page: Page, lab: LabServer, name: str) -> None:
    """Clear all outputs, Run All, and return once every cell ran and the kernel is idle."""
    _wait_until(lambda: _kernel_state(lab, name) == "idle", 120, f"the kernel of {name}")
    _menu(page, "Edit", "Clear Outputs of All Cells")
    _menu(page, "Run", "Run All Cells")
    prompts = page.locator(".jp-CodeCell .jp-InputPrompt")

    def started() -> bool:
        return any("*" in t or any(ch.isdigit() for ch in t) for t in prompts.all_inner_texts())

    def finished() -> bool:
        texts = prompts.all_inner_texts()
        return not any("*" in t for t in texts) and _kernel_state(lab, name) == "idle"

    def finished_twice() -> bool:  # the kernel is briefly idle between two cells
        if not finished():
            return False
        time.sleep(0.5)
        return finished()

    _wait_until(started, 30, f"Run All of {name} to start")
    _wait_until(finished_twice, RUN_ALL_TIMEOUT_S, f"Run All of {name} to finish")


def _saved_errors(page: Page, path: Path) -> list[str]:
    """Save the notebook, then list its cells that raised or never ran."""
    before = path.stat().st_mtime_ns
    _menu(page, "File", "Save Notebook")
    _wait_until(lambda: path.stat().st_mtime_ns != before, 30, f"{path.name} to be saved")
    time.sleep(0.3)
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    problems = []
    for index, cell in enumerate(cells):
        if cell["cell_type"] != "code" or not "".join(cell["source"]).strip():
            continue
        first_line = "".join(cell["source"]).splitlines()[0]
        if cell.get("execution_count") is None:
            problems.append(f"cell {index} did not run: {first_line}")
        for output in cell.get("outputs", []):
            if output["output_type"] == "error":
                problems.append(f"cell {index} raised {output['ename']}: {output['evalue']}")
    return problems


def _widget_problems(page: Page) -> list[str]:
    """Widgets that did not render: error boxes, views still loading after a wait (their
    model never came), and widgets the front end left as their plain-text repr."""
    outputs = page.locator(".jp-OutputArea-output")
    loading = outputs.filter(has_text="Loading widget...")
    deadline = time.monotonic() + WIDGET_LOAD_TIMEOUT_S  # read at call time: the canary lowers it
    while loading.count() and time.monotonic() < deadline:
        time.sleep(0.25)
    problems = [f"widget never loaded: {t[:80]}" for t in loading.all_inner_texts()]
    problems += [
        f"error box: {t[:200]}"
        for t in outputs.filter(has_text="Error displaying widget").all_inner_texts()
    ]
    problems += [
        f"error box: {t[:200]}"
        for t in page.locator(".jp-OutputArea .jupyter-widgets-error-widget").all_inner_texts()
    ]
    texts = page.locator(
        '.jp-OutputArea-output[data-mime-type="text/plain"]:not(.widget-output *)'
    ).all_inner_texts()
    problems += [f"widget shown as text: {t[:120]}" for t in texts if PLAIN_TEXT_WIDGET.match(t)]
    return problems


def _signature(cell: Locator) -> Signature:
    return cell.evaluate(SIGNATURE_JS)


def _assert_redrawn(cell: Locator, before: Signature, what: str) -> Signature:
    """Wait until the view in ``cell`` drew something new after ``what``; return it."""
    key = "images" if before["images"] else "text"

    def changed() -> bool:
        return _signature(cell)[key] != before[key]

    deadline = time.monotonic() + REDRAW_TIMEOUT_S  # read at call time: the canary lowers it
    while not changed():
        assert time.monotonic() < deadline, f"the view's {key} did not change after {what}"
        time.sleep(0.2)
    time.sleep(0.3)  # let a burst of redraws settle before the next comparison
    return _signature(cell)


def _move_slider_by_keyboard(handle: Locator) -> None:
    handle.focus()
    at_max = handle.get_attribute("aria-valuenow") == handle.get_attribute("aria-valuemax")
    handle.press("ArrowLeft" if at_max else "ArrowRight")


def _drag_slider(page: Page, handle: Locator) -> None:
    track = handle.locator("xpath=ancestor::div[contains(@class, 'noUi-target')][1]")
    box, bar = handle.bounding_box(), track.bounding_box()
    assert box is not None and bar is not None, "the slider is not visible"
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    to_right = x < bar["x"] + bar["width"] / 2
    target = bar["x"] + bar["width"] * (0.85 if to_right else 0.15)
    page.mouse.move(x, y)
    page.mouse.down()
    page.mouse.move(target, y, steps=8)
    page.mouse.up()


@contextmanager
def open_notebook(browser: Browser, lab: LabServer, name: str) -> Iterator[Page]:
    """A page on the notebook ``name`` of ``lab``; on leaving, its kernel is shut down and
    no request may have left 127.0.0.1, nor an uncaught error happened in the page."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    guard = RequestGuard().attach(context)
    page = context.new_page()
    page_errors: list[str] = []
    page.on("pageerror", lambda error: page_errors.append(str(error)))
    page.goto(f"{lab.url}/lab/tree/{name}?reset&token={lab.token}")
    page.locator(".jp-NotebookPanel .jp-Cell").first.wait_for(timeout=60_000)
    try:
        yield page
    finally:
        context.close()
        sessions = lab.api("/api/sessions")
        assert isinstance(sessions, list)
        for session in sessions:
            if session["path"] == name:
                lab.api(f"/api/sessions/{session['id']}", method="DELETE")
    assert not guard.blocked, f"requests left 127.0.0.1: {guard.blocked}"
    assert not page_errors, f"uncaught errors in the page: {page_errors}"


# A live view's layout at this window width: its picture shown at (nearly) its own size,
# and no control whose text is cut off ("hea..."): the problems, one line each.
LAYOUT_JS = """cell => {
  const problems = [];
  for (const img of cell.querySelectorAll('img.widget-image')) {
    if (img.naturalWidth && img.clientWidth < 0.9 * img.naturalWidth)
      problems.push(`picture shrunk to ${img.clientWidth} of ${img.naturalWidth} px`);
  }
  const texts = cell.querySelectorAll(
    '.widget-toggle-button, .widget-button, .widget-label, .widget-checkbox label');
  for (const el of texts) {
    if (el.offsetParent && el.scrollWidth > el.clientWidth + 1)
      problems.push(`text cut off: "${el.textContent.trim()}"`);
  }
  return problems;
}"""


def _move_every_control(page: Page, cell: Locator, shot: str) -> int:
    """Move each slider (key, then drag) and click each button, box and menu of the view in
    ``cell``, asserting a redraw after each; returns how many moves were made. Screenshots:
    ``shot``-before.png, -sliderN-after-keyboard.png, -sliderN-after-drag.png, -after.png."""
    if not cell.locator(CONTROLS).count():
        return 0  # e.g. a progress bar
    moves = 0
    state = _signature(cell)
    cell.screenshot(path=artifact(f"{shot}-before.png"))
    layout = cell.evaluate(LAYOUT_JS)
    assert not layout, "the view does not read at this width: " + "; ".join(layout)
    handles = cell.locator(".widget-slider .noUi-handle")
    for s in range(handles.count()):
        handle = handles.nth(s)
        readout = handle.locator(
            "xpath=ancestor::div[contains(@class, 'widget-slider')][1]"
        ).locator(".widget-readout")
        value = readout.inner_text()
        _move_slider_by_keyboard(handle)
        state = _assert_redrawn(cell, state, f"a key press on slider {s}")
        assert readout.inner_text() != value, f"slider {s} is back at {value} after a key press"
        cell.screenshot(path=artifact(f"{shot}-slider{s}-after-keyboard.png"))
        value = readout.inner_text()
        _drag_slider(page, handle)
        state = _assert_redrawn(cell, state, f"dragging slider {s}")
        assert readout.inner_text() != value, f"slider {s} is back at {value} after a drag"
        cell.screenshot(path=artifact(f"{shot}-slider{s}-after-drag.png"))
        moves += 2
    for group in cell.locator(".widget-toggle-buttons").all():
        classes = group.locator("button").evaluate_all("bs => bs.map(b => b.className)")
        button = group.locator("button").nth(
            next(i for i, c in enumerate(classes) if "mod-active" not in c)
        )
        button.click()
        state = _assert_redrawn(cell, state, "a click on a toggle button")
        assert "mod-active" in (button.get_attribute("class") or ""), "the button did not stay on"
        moves += 1
    for box in cell.locator(".widget-checkbox input[type=checkbox]").all():
        was_checked = box.is_checked()
        box.click()
        state = _assert_redrawn(cell, state, "a click on a checkbox")
        assert box.is_checked() != was_checked, "the checkbox did not stay toggled"
        moves += 1
    for menu in cell.locator(".widget-dropdown select").all():
        values = menu.locator("option").evaluate_all("options => options.map(o => o.value)")
        choice = [v for v in values if v != menu.input_value()][0]
        menu.select_option(choice)
        state = _assert_redrawn(cell, state, "a choice in a menu")
        assert menu.input_value() == choice, "the menu did not keep the choice"
        moves += 1
    if moves:
        cell.screenshot(path=artifact(f"{shot}-after.png"))
    return moves


NOTEBOOKS = [path.name for path in notebooks_with_sliders()]


def test_slider_notebooks_are_found() -> None:
    """The discovery finds the chapters known to have sliders (a guard on the scan)."""
    known = {"00_setup.ipynb", "02_nadaraya_watson.ipynb", "06_entropy_regularization.ipynb"}
    assert known <= set(NOTEBOOKS)


@pytest.mark.parametrize("name", NOTEBOOKS, ids=lambda n: n.removesuffix(".ipynb"))
def test_sliders_redraw_in_jupyterlab(browser: Browser, lab: LabServer, name: str) -> None:
    stem = name.removesuffix(".ipynb")
    with open_notebook(browser, lab, name) as page:
        _run_all(page, lab, name)
        page.screenshot(path=artifact(f"lab-{stem}-run-all.png"))
        problems = _saved_errors(page, lab.root / name) + _widget_problems(page)
        assert not problems, "\n".join(problems)
        cells = page.locator(".jp-CodeCell").filter(has=page.locator(".jupyter-widgets"))
        assert cells.count() > 0, f"no rendered widget in {name}"
        moves = 0
        for c in range(cells.count()):
            cell = cells.nth(c)
            cell.scroll_into_view_if_needed()
            try:
                moves += _move_every_control(page, cell, f"lab-{stem}-cell{c}")
            except AssertionError as error:
                raise AssertionError(f"{name}, widget cell {c}: {error}") from error
        assert moves > 0, f"no control of a view was found in {name}"


# A notebook with the faults the test above must catch: a slider whose move redraws
# nothing, a widget shown as its plain-text repr, a view of a model that does not exist
# ("Loading widget...", then "Error displaying widget"), a view that fails to render, a
# cell that raises and one that therefore never runs. Its first cell also names the
# kernel's Python, which must be the one running these tests (the course's .venv).
CANARY_CELLS = [
    "import sys\nprint(sys.executable)",
    "import ipywidgets as widgets\n"
    "from IPython.display import display\n"
    'unwired = widgets.IntSlider(value=3, min=0, max=10, description="unwired")\n'
    "widgets.VBox([unwired, widgets.Output()])",
    'display({"text/plain": "IntSlider(value=3, description=\'x\')"}, raw=True)',
    'display({"application/vnd.jupyter.widget-view+json": {"model_id": "0" * 32, '
    '"version_major": 2, "version_minor": 0}, "text/plain": "a view"}, raw=True)',
    'broken = widgets.IntSlider()\nbroken._view_name = "NoSuchView"\nbroken',
    'raise RuntimeError("canary")',
    'print("never reached: Run All stops at an error")',
]


def test_checks_catch_broken_widgets(
    browser: Browser, lab: LabServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The checks of this file fail on a canary notebook with broken widgets."""
    monkeypatch.setattr(sys.modules[__name__], "REDRAW_TIMEOUT_S", 3.0)
    monkeypatch.setattr(sys.modules[__name__], "WIDGET_LOAD_TIMEOUT_S", 3.0)
    name = "zz_browser_test_canary.ipynb"
    notebook = {
        "cells": [
            {
                "cell_type": "code",
                "source": src,
                "metadata": {},
                "outputs": [],
                "execution_count": None,
            }
            for src in CANARY_CELLS
        ],
        "metadata": {
            "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}
        },
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    (lab.root / name).write_text(json.dumps(notebook), encoding="utf-8")
    with open_notebook(browser, lab, name) as page:
        _run_all(page, lab, name)
        page.screenshot(path=artifact("lab-canary-run-all.png"))
        errors = _saved_errors(page, lab.root / name)
        assert errors == [
            "cell 5 raised RuntimeError: canary",
            f"cell 6 did not run: {CANARY_CELLS[6]}",
        ]
        first = json.loads((lab.root / name).read_text(encoding="utf-8"))["cells"][0]
        kernel_python = "".join(first["outputs"][0]["text"]).strip()
        assert kernel_python == sys.executable, f"the kernel runs {kernel_python}"
        problems = _widget_problems(page)
        assert any(p.startswith("error box: Click to show") for p in problems), problems
        assert any(p.startswith("error box: Error displaying widget") for p in problems), problems
        assert any(p.startswith("widget shown as text: IntSlider(") for p in problems), problems
        cell = page.locator(".jp-CodeCell").filter(has=page.locator(".widget-slider")).first
        with pytest.raises(AssertionError, match="did not change after a key press"):
            _move_every_control(page, cell, "lab-canary")
