"""End-to-end slider latency of every live view, in JupyterLab in headless Chromium.

    .venv/bin/python bench/browser_latency.py [--moves 20] [chapters/NN_x.ipynb ...]

For each chapter with a code cell tagged ``live-view`` (all of them by default): a copy
of the notebook up to its last live view is opened in a fresh JupyterLab on 127.0.0.1
(with a token), run, and each view's first slider is moved by key presses (a view with
no slider: its toggle buttons are clicked). One move is timed from the key press (the
``keydown`` event in the page), or from the release of a click (``pointerup``: a button
acts when it is released, and how long it is held is the user's, not the view's), until
the view's new picture is decoded and painted (the next animation frame after
``img.decode()``). Moves are spaced (each waits for its
picture), so each one is the latency a student feels on a single step.

First, the floor: a slider that only swaps two ready-made pictures, the cost of the
browser, the server and the kernel's messaging on this machine at this load.

Two more checks per view: *none lost* (every move brought a new picture) and *final
matches* (after a burst of key presses faster than the view can draw, the picture that
stays is byte-for-byte the picture drawn for that value when it is reached slowly).

Debian's Chromium (``apt-get install -y chromium``), driven by the Python Playwright
package; never ``playwright install``. The load average is printed with the figures:
on a shared 2-core machine it moves them a lot.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "browser"))
sys.path.insert(0, str(ROOT / "tools"))
from browser_support import (  # noqa: E402
    CHAPTERS,
    CHROMIUM,
    CHROMIUM_ARGS,
    LabServer,
    jupyterlab,
)
from nbtags import LIVE_VIEW, has_tag, view_module  # noqa: E402

BUILDER = re.compile(r"^\s*\w+\s*=\s*build_(\w+)_view\(", re.MULTILINE)
#: at most this long for one picture; a move that brings none within it is "lost"
MOVE_TIMEOUT_S = 5.0
RUN_ALL_TIMEOUT_S = 300.0

# Installed once per page: timestamps of key presses / clicks, and of each new picture
# of a view's image once decoded and painted.
INSTRUMENT_JS = """cell => {
  const img = cell.querySelector('img.widget-image');
  if (!img) return false;
  const probe = {inputs: [], frames: []};
  window.__probe = probe;
  const mark = () => probe.inputs.push(performance.now());
  document.addEventListener('keydown', mark, true);
  document.addEventListener('pointerup', mark, true);
  new MutationObserver(() => {
    const src = img.src, set = performance.now();
    img.decode().then(() => requestAnimationFrame(
      () => probe.frames.push({set: set, t: performance.now(), src: src}))).catch(() => {});
  }).observe(img, {attributes: true, attributeFilter: ['src']});
  return true;
}"""
# SHA-256 of the picture the view shows now
IMAGE_HASH_JS = """async cell => {
  const img = cell.querySelector('img.widget-image');
  const bytes = await (await fetch(img.src)).arrayBuffer();
  const digest = await crypto.subtle.digest('SHA-256', bytes);
  return [...new Uint8Array(digest)].map(b => b.toString(16).padStart(2, '0')).join('');
}"""


@dataclass
class ViewLatency:
    """Milliseconds from a move to its picture on screen, for one view."""

    notebook: str
    view: str
    control: str
    latencies_ms: list[float] = field(default_factory=list)
    #: of each latency: until the new picture reached the page (key press, kernel, back)
    arrival_ms: list[float] = field(default_factory=list)
    lost: int = 0
    final_matches: bool | None = None

    @property
    def median_ms(self) -> float:
        return statistics.median(self.latencies_ms) if self.latencies_ms else float("nan")

    @property
    def p95_ms(self) -> float:
        if not self.latencies_ms:
            return float("nan")
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def _view_cells(cells: list[dict]) -> list[tuple[int, str]]:
    """(index, module) of the cells tagged ``live-view``; in a notebook that tags none
    yet, of the code cells that call a ``build_<name>_view(``."""
    tagged = [
        (i, view_module(c) or "?")
        for i, c in enumerate(cells)
        if c["cell_type"] == "code" and has_tag(c, LIVE_VIEW)
    ]
    if tagged:
        return tagged
    return [
        (i, found.group(1))
        for i, c in enumerate(cells)
        if c["cell_type"] == "code"
        and not has_tag(c, "solution")
        and (found := BUILDER.search("".join(c["source"])))
    ]


def live_view_notebooks(folder: Path = CHAPTERS) -> list[Path]:
    """The notebooks with at least one live view."""
    return [
        path
        for path in sorted(folder.glob("*.ipynb"))
        if _view_cells(json.loads(path.read_text(encoding="utf-8"))["cells"])
    ]


def _truncated_copy(path: Path, folder: Path) -> list[tuple[int, str]]:
    """Copy ``path`` into ``folder`` up to its last live view, outputs cleared; return the
    (cell index, view module) of each live view."""
    nb = json.loads(path.read_text(encoding="utf-8"))
    views = _view_cells(nb["cells"])
    nb["cells"] = nb["cells"][: views[-1][0] + 1]
    for cell in nb["cells"]:
        if cell["cell_type"] == "code":
            cell["outputs"], cell["execution_count"] = [], None
    nb["metadata"].pop("widgets", None)
    (folder / path.name).write_text(json.dumps(nb), encoding="utf-8")
    return views


# The pipeline's floor: a slider whose callback only swaps two tiny ready-made pictures
# (no figure drawn): what the browser, the server and the kernel cost on this machine now.
FLOOR_NOTEBOOK = "zz_latency_floor.ipynb"
FLOOR_CODE = """import ipywidgets as widgets
from attention_course.views.live import encode_png
import numpy as np

pictures = [encode_png(np.full((20, 20, 4), v, np.uint8)) for v in (60, 200)]
slider = widgets.IntSlider(value=0, min=0, max=100, description="floor")
image = widgets.Image(value=pictures[0], format="png")
slider.observe(lambda change: setattr(image, "value", pictures[change["new"] % 2]), "value")
widgets.VBox([slider, image])"""


def _floor_notebook(folder: Path) -> list[tuple[int, str]]:
    cell = {
        "cell_type": "code",
        "source": FLOOR_CODE,
        "metadata": {"tags": [LIVE_VIEW]},
        "outputs": [],
        "execution_count": None,
    }
    nb = {
        "cells": [cell],
        "metadata": {
            "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}
        },
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    (folder / FLOOR_NOTEBOOK).write_text(json.dumps(nb), encoding="utf-8")
    return [(0, "(floor: no drawing)")]


def _wait(condition, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout_s:.0f} s waiting for {what}")
        time.sleep(0.1)


def _kernel_idle(lab: LabServer, name: str) -> bool:
    sessions = lab.api("/api/sessions")
    states = [s["kernel"]["execution_state"] for s in sessions if s["path"] == name]  # type: ignore[union-attr,index]
    return bool(states) and states[0] == "idle"


def _run_all(page, lab: LabServer, name: str) -> None:
    _wait(lambda: _kernel_idle(lab, name), 120, f"the kernel of {name}")
    page.get_by_role("menuitem", name="Run", exact=True).click()
    page.get_by_role("menuitem", name=re.compile(r"^Run All Cells(?!\w| As)")).click()
    prompts = page.locator(".jp-CodeCell .jp-InputPrompt")

    def finished() -> bool:
        texts = prompts.all_inner_texts()
        done = all(any(ch.isdigit() for ch in t) for t in texts)
        return done and not any("*" in t for t in texts) and _kernel_idle(lab, name)

    _wait(finished, RUN_ALL_TIMEOUT_S, f"Run All of {name}")


def _probe(page) -> dict:
    return page.evaluate("() => window.__probe")


def _move(page, target, kind: str, step: int) -> None:
    """One move: a key press on the slider handle (direction by position), or a click on
    the next toggle button."""
    if kind == "slider":
        at_max = target.get_attribute("aria-valuenow") == target.get_attribute("aria-valuemax")
        at_min = target.get_attribute("aria-valuenow") == target.get_attribute("aria-valuemin")
        forward = (step // 8) % 2 == 0  # eight steps one way, eight back
        key = "ArrowRight" if (forward and not at_max) or at_min else "ArrowLeft"
        target.press(key)
    else:
        buttons = target.locator("button")
        active = buttons.evaluate_all("bs => bs.findIndex(b => b.classList.contains('mod-active'))")
        buttons.nth((active + 1) % buttons.count()).click()


def measure_view(page, cell, result: ViewLatency, moves: int) -> None:
    """Time ``moves`` spaced moves of the view in ``cell``, then the burst check."""
    if not cell.evaluate(INSTRUMENT_JS):
        raise RuntimeError(f"{result.view}: no live picture (img.widget-image) in the cell")
    handle = cell.locator(".widget-slider .noUi-handle").first
    if handle.count():
        target, kind = handle, "slider"
        result.control = "slider (key press)"
        handle.focus()
    else:
        target, kind = cell.locator(".widget-toggle-buttons").first, "buttons"
        result.control = "toggle buttons (click)"
    for step in range(moves + 2):  # two warm-up moves
        before = len(_probe(page)["frames"])
        _move(page, target, kind, step)
        try:
            _wait(lambda n=before: len(_probe(page)["frames"]) > n, MOVE_TIMEOUT_S, "a picture")
        except TimeoutError:
            result.lost += 1
            continue
        probe = _probe(page)
        if step >= 2:
            frame, pressed = probe["frames"][before], probe["inputs"][-1]
            result.latencies_ms.append(frame["t"] - pressed)
            result.arrival_ms.append(frame["set"] - pressed)
        time.sleep(0.05)
    if kind != "slider":
        return
    # burst: 6 key presses without waiting, then the value reached slowly from one side
    for _ in range(6):
        target.press("ArrowLeft")
    time.sleep(1.5)
    burst = cell.evaluate(IMAGE_HASH_JS)
    target.press("ArrowRight")
    time.sleep(1.0)
    target.press("ArrowLeft")
    time.sleep(1.0)
    result.final_matches = burst == cell.evaluate(IMAGE_HASH_JS)


def measure(notebooks: list[Path] | None = None, moves: int = 20) -> list[ViewLatency]:
    """End-to-end latency of every live view of ``notebooks`` (default: all with one)."""
    from playwright.sync_api import sync_playwright

    if not CHROMIUM.exists():
        raise FileNotFoundError(
            f"{CHROMIUM}: install Debian's chromium (apt-get install -y chromium)"
        )
    notebooks = live_view_notebooks() if notebooks is None else notebooks
    results: list[ViewLatency] = []
    with tempfile.TemporaryDirectory(prefix="latency-") as tmp:
        copies = Path(tmp) / "chapters"
        copies.mkdir()
        plan = {FLOOR_NOTEBOOK: _floor_notebook(copies)}
        plan.update({path.name: _truncated_copy(path, copies) for path in notebooks})
        with jupyterlab(Path(tmp) / "lab", copies, "jupyterlab-latency.log") as lab:
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(
                    executable_path=str(CHROMIUM), args=CHROMIUM_ARGS
                )
                for name, views in plan.items():
                    context = browser.new_context(viewport={"width": 1400, "height": 1000})
                    page = context.new_page()
                    page.goto(f"{lab.url}/lab/tree/{name}?reset&token={lab.token}")
                    page.locator(".jp-NotebookPanel .jp-Cell").first.wait_for(timeout=60_000)
                    _run_all(page, lab, name)
                    cells = page.locator(".jp-Notebook .jp-Cell")
                    for index, module in views:
                        cell = cells.nth(index)
                        cell.scroll_into_view_if_needed()
                        result = ViewLatency(name, module, "")
                        cell.locator("img.widget-image").wait_for(timeout=30_000)
                        measure_view(page, cell, result, moves)
                        results.append(result)
                        print(_row(result), flush=True)
                    context.close()
                browser.close()
    return results


def load_average() -> str:
    """The 1-, 5- and 15-minute load averages, as text."""
    return ", ".join(f"{x:.1f}" for x in os.getloadavg())


def _row(r: ViewLatency) -> str:
    final = {None: "n/a", True: "yes", False: "NO"}[r.final_matches]
    arrival = statistics.median(r.arrival_ms) if r.arrival_ms else float("nan")
    return (
        f"{r.notebook} {r.view} ({r.control}): median {r.median_ms:.0f} ms "
        f"(picture in the page after {arrival:.0f}), "
        f"p95 {r.p95_ms:.0f} ms over {len(r.latencies_ms)} moves, lost {r.lost}, "
        f"final picture matches {final}; load {load_average()}"
    )


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("notebooks", nargs="*", type=Path)
    parser.add_argument("--moves", type=int, default=20)
    args = parser.parse_args(argv)
    print(f"load average before: {load_average()}")
    measure([p.resolve() for p in args.notebooks] or None, args.moves)
    print(f"load average after: {load_average()}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
