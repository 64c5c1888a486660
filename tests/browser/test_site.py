"""The built course site (book/_build/html, `make book`) in headless Chromium, offline.

Served on 127.0.0.1 by a thread, every page (reachable from index.html, or at the top
level) is opened: no console error, no request leaving 127.0.0.1, math typeset (no raw
``$`` or ``\\(`` left), the Binder launch button on chapter pages, one search box, code
that wraps instead of running off the page, no ``# noqa`` comments; each static twin of a
live view shows another frame and another value when its range control is moved by key
and by mouse, and its smallest text renders at least as large as the live view's. The
whole site stays under 15 MB. A canary page shows that each check fails when it should.
Skipped, saying so, when the site has not been built. Screenshots go to
build/browser-artifacts/.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from html.parser import HTMLParser
from pathlib import PurePosixPath
from urllib.parse import unquote, urldefrag

import pytest
from browser_support import (
    CHAPTERS,
    SITE,
    RequestGuard,
    artifact,
    live_view_notebooks,
    serve_folder,
)
from playwright.sync_api import Browser, ConsoleMessage, Locator, Page

# Raw TeX delimiters in text outside code: \( \[ $$ or $...$ that MathJax should have typeset.
RAW_MATH = re.compile(r"\\\(|\\\[|\$\$|\$[^$\s][^$]*\$")
RAW_MATH_JS = """() => {
  const skip = 'pre, code, script, style, noscript, template, textarea, mjx-container';
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  const texts = [];
  while (walker.nextNode()) {
    const node = walker.currentNode;
    if (!node.parentElement.closest(skip) && node.textContent.trim()) texts.push(node.textContent);
  }
  return texts;
}"""
MATHJAX_DONE_JS = """async () => {
  const startup = window.MathJax && window.MathJax.startup;
  if (!startup || !startup.promise) return false;
  await startup.promise;
  return true;
}"""
TWINS = ".static-twin:has(input[type=range])"
#: the live views' smallest text (8 pt at 96 dpi) in pixels; a twin's must not be smaller
LIVE_VIEW_TEXT_PX = 8 * 96 / 72
SITE_BUDGET_BYTES = 15 * 1024 * 1024
# What a reader sees that they should not: one line per problem.
PAGE_PROBLEMS_JS = r"""() => {
  const problems = [];
  const visible = el => el.offsetParent !== null;
  // search fields of the site's chrome (the search page's own form is its content)
  const searches = [...document.querySelectorAll(
    'input[type=search], .search-button-field, button.search-button')]
    .filter(el => visible(el) && !el.closest('.bd-article, #search-results'));
  const searchPage = location.pathname.endsWith('/search.html');  // its form is the page
  if (searches.length > 1 && !searchPage) problems.push(`${searches.length} search boxes`);
  for (const pre of document.querySelectorAll('div.highlight pre')) {
    if (visible(pre) && pre.scrollWidth > pre.clientWidth + 1)
      problems.push(`code runs off the page: ${pre.textContent.trim().slice(0, 60)}`);
  }
  if (/#\s*noqa/.test(document.body.innerText)) problems.push('a "# noqa" comment is shown');
  return problems;
}"""


class _Links(HTMLParser):
    """Collects the href of every <a> in a page, and the target of a meta refresh."""

    def __init__(self) -> None:
        super().__init__()
        self.hrefs: list[str] = []
        self.refresh: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        href = values.get("href")
        if tag == "a" and href:
            self.hrefs.append(href)
        refresh = re.match(r"\s*\d+\s*;\s*url=(.+)", values.get("content") or "", re.IGNORECASE)
        if tag == "meta" and (values.get("http-equiv") or "").lower() == "refresh" and refresh:
            self.refresh = refresh.group(1).strip().strip("'\"")
            self.hrefs.append(self.refresh)


def _links(page: str) -> _Links:
    parser = _Links()
    parser.feed((SITE / page).read_text(encoding="utf-8"))
    return parser


def _resolve(page: str, href: str) -> str | None:
    """The site path that ``href`` on ``page`` leads to, or None if it leaves the site's
    HTML pages (another host, mailto:, an in-page anchor, a download)."""
    target = unquote(urldefrag(href).url)
    if not target or ":" in target or not target.endswith(".html"):
        return None
    parts: list[str] = []
    for part in (PurePosixPath(page).parent / target).parts:
        if part == "..":
            parts = parts[:-1]
        elif part != ".":
            parts.append(part)
    return "/".join(parts)


def site_pages() -> list[str]:
    """The site's HTML pages: those reachable by links from index.html, and the top-level
    ones (search, index of terms), as paths under SITE.

    Returns ``["index.html"]`` when the site is not built, so that the tests are collected
    and then skipped by the ``site`` fixture with its message.
    """
    seen: set[str] = set()
    todo = ["index.html", *(path.name for path in SITE.glob("*.html"))]
    while todo:
        page = todo.pop()
        if page in seen or not (SITE / page).is_file():
            continue
        seen.add(page)
        todo += [t for href in _links(page).hrefs if (t := _resolve(page, href))]
    return sorted(seen) or ["index.html"]


PAGES = site_pages()
CHAPTER_PAGES = [f"chapters/{path.stem}.html" for path in sorted(CHAPTERS.glob("*.ipynb"))]
TWIN_PAGES = [f"chapters/{path.stem}.html" for path in live_view_notebooks()]


def _page_id(page: str) -> str:
    return page.removesuffix(".html")


def _console_error(message: ConsoleMessage) -> str | None:
    """The text and source of a console error, except Chromium's own favicon.ico probe
    (the browser asks every site for one; the 404 is not the page's doing)."""
    source = message.location.get("url", "")
    if message.type != "error" or source.endswith("/favicon.ico"):
        return None
    return f"{message.text} ({source})"


@contextmanager
def open_site_page(browser: Browser, site: str, path: str) -> Iterator[Page]:
    """The page ``path`` of the site served at ``site``, loaded and with MathJax done. On
    leaving, fails if a request left 127.0.0.1 or the console logged an error."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    guard = RequestGuard().attach(context)
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(e) if (e := _console_error(m)) else None)
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("response", lambda r: errors.append(f"{r.status} {r.url}") if r.status >= 400 else None)
    page.goto(f"{site}/{path}", wait_until="load")
    refresh = _links(path).refresh if (SITE / path).is_file() else None
    if refresh:  # index.html redirects: wait until the page it names has loaded
        page.wait_for_url(f"{site}/{_resolve(path, refresh)}", wait_until="load")
    page.evaluate(MATHJAX_DONE_JS)
    try:
        yield page
    finally:
        context.close()
    problems = [f"request left 127.0.0.1: {url}" for url in guard.blocked]
    problems += [f"console error: {error}" for error in errors]
    assert not problems, "\n".join(problems)


def math_problems(page: Page) -> list[str]:
    """Math that MathJax left as TeX: raw delimiters in text, or .math without output."""
    raw = [t.strip()[:80] for t in page.evaluate(RAW_MATH_JS) if RAW_MATH.search(t)]
    untypeset = page.locator(".math:not(:has(mjx-container))").all_inner_texts()
    return [f"raw math in the text: {t}" for t in raw] + [
        f"math element without MathJax output: {t[:80]}" for t in untypeset
    ]


def _frame(twin: Locator) -> str | None:
    return twin.locator("img").first.get_attribute("src")


def _readout(twin: Locator) -> str:
    return twin.locator("output").first.inner_text()


def _text_px(twin: Locator) -> float:
    """The twin's smallest text as rendered: its size in the frame times the frame's scale."""
    return twin.evaluate(
        """t => {
      const img = t.querySelector('img');
      return Number(t.dataset.minTextPx) * img.clientWidth / img.naturalWidth;
    }"""
    )


def _drag_range(page: Page, slider: Locator) -> None:
    """Drag the range's thumb from where it is to the far side of the track."""
    box = slider.bounding_box()
    assert box is not None, "the scrubber's slider is not visible"
    value, top = float(slider.input_value()), float(slider.get_attribute("max") or 1)
    fraction = value / top if top else 0.0
    y = box["y"] + box["height"] / 2
    page.mouse.move(box["x"] + 8 + (box["width"] - 16) * fraction, y)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * (0.1 if fraction > 0.5 else 0.9), y, steps=8)
    page.mouse.up()


def twin_problems(page: Page, shot: str) -> list[str]:
    """Move each static twin on ``page`` by key and by mouse; list the ones whose frame or
    readout did not change, or whose text renders too small (screenshots named
    ``shot``-twinN-before/after.png)."""
    twins = page.locator(TWINS)
    if not twins.count():
        return ["no static twin (a .static-twin with a range control) on the page"]
    problems = []
    for i in range(twins.count()):
        twin = twins.nth(i)
        slider = twin.locator("input[type=range]").first
        twin.scroll_into_view_if_needed()
        page.wait_for_function(
            "t => t.querySelector('img').complete && t.querySelector('img').naturalWidth > 0",
            arg=twin.element_handle(),
            timeout=10_000,
        )
        twin.screenshot(path=artifact(f"{shot}-twin{i}-before.png"))
        if not twin.locator("label").count() or not twin.locator("output").count():
            problems.append(f"twin {i}: the range control has no label or no readout")
        text_px = _text_px(twin)
        if text_px < LIVE_VIEW_TEXT_PX - 0.05:
            problems.append(
                f"twin {i}: smallest text {text_px:.1f} px, the live view's is "
                f"{LIVE_VIEW_TEXT_PX:.1f} px"
            )
        first, value = _frame(twin), _readout(twin)
        page.wait_for_timeout(300)
        if _frame(twin) != first:
            problems.append(f"twin {i} plays by itself: a move cannot be told from playback")
            continue
        slider.focus()
        page.keyboard.press("ArrowRight")
        after_key = _frame(twin)
        if after_key == first or _readout(twin) == value:
            problems.append(f"twin {i}: a key press did not change the frame and the value")
        top = int(slider.get_attribute("max") or 0)
        seen = {_frame(twin)}
        for step in range(top + 1):  # every step shows its own frame
            slider.evaluate("(s, v) => { s.value = v; s.dispatchEvent(new Event('input')); }", step)
            seen.add(_frame(twin))
        if len(seen) != top + 1:
            problems.append(f"twin {i}: {top + 1} steps showed {len(seen)} different frames")
        _drag_range(page, slider)
        if _frame(twin) == after_key and top > 1:
            problems.append(f"twin {i}: dragging did not change the frame")
        twin.screenshot(path=artifact(f"{shot}-twin{i}-after.png"))
    return problems


def page_problems(page: Page) -> list[str]:
    """Two search boxes, code cut off at the page's edge, shown ``# noqa`` comments."""
    return page.evaluate(PAGE_PROBLEMS_JS)


def test_site_is_lean(site: str) -> None:
    """The whole built site is under its size budget, with no source maps shipped."""
    files = [p for p in SITE.rglob("*") if p.is_file()]
    total = sum(p.stat().st_size for p in files)
    assert total < SITE_BUDGET_BYTES, f"the site is {total / 2**20:.1f} MB"
    maps = [str(p.relative_to(SITE)) for p in files if p.suffix == ".map"]
    assert not maps, f"source maps shipped: {maps[:5]}"


def test_site_has_every_chapter(site: str) -> None:
    """Every notebook in chapters/ is a page reachable from the home page."""
    missing = [page for page in CHAPTER_PAGES if page not in PAGES]
    assert not missing, f"chapters not linked from index.html: {missing}"


@pytest.mark.parametrize("path", PAGES, ids=_page_id)
def test_page_works_offline(browser: Browser, site: str, path: str) -> None:
    with open_site_page(browser, site, path) as page:
        page.screenshot(path=artifact(f"site-{_page_id(path).replace('/', '-')}.png"))
        problems = math_problems(page) + page_problems(page)
        assert not problems, "\n".join(problems)
        if path in CHAPTER_PAGES:
            notebook = path.removesuffix(".html") + ".ipynb"
            links = page.locator('a[href*="mybinder.org/v2/"]').evaluate_all(
                "links => links.map(a => a.href)"
            )
            assert any(
                "urlpath=lab/tree/" in unquote(h) and unquote(h).endswith(notebook) for h in links
            ), f"no Binder (JupyterLab) launch button for {notebook}: {links}"


@pytest.mark.parametrize("path", TWIN_PAGES, ids=_page_id)
def test_static_slider_twins_change_frame(browser: Browser, site: str, path: str) -> None:
    with open_site_page(browser, site, path) as page:
        problems = twin_problems(page, f"site-{PurePosixPath(path).stem}")
        assert not problems, "\n".join(problems)


# A page with the faults the tests above must catch: raw TeX, a console error, a request
# to another host, and a scrubber whose slider moves but whose frame never changes.
PIXEL = "data:image/gif;base64,R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7"
CANARY_PAGE = f"""<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>canary</title></head><body>
<p>Left raw: $x^2$ and \\(y\\).</p>
<div class="static-twin" data-min-text-px="4"><output>v = 0</output>
<input type="range" min="0" max="3" value="0"><img src="{PIXEL}" width="1" height="1"></div>
<input type="search"><input type="search">
<div class="highlight"><pre style="white-space: pre">x = 1  # noqa: E501 {"y" * 400}</pre></div>
<script>console.error("canary"); fetch("https://cdn.invalid/tex.js").catch(() => {{}});</script>
</body></html>
"""


def test_checks_catch_a_broken_page(
    browser: Browser, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """The checks of this file fail on a canary page with the faults they look for."""
    folder = tmp_path_factory.mktemp("canary-site")
    (folder / "canary.html").write_text(CANARY_PAGE, encoding="utf-8")
    with serve_folder(folder) as url, pytest.raises(AssertionError) as leaving:
        with open_site_page(browser, url, "canary.html") as page:
            math = math_problems(page)
            twins = twin_problems(page, "site-canary")
            shown = page_problems(page)
    assert math == ["raw math in the text: Left raw: $x^2$ and \\(y\\)."], math
    assert twins == [
        "twin 0: the range control has no label or no readout",
        f"twin 0: smallest text 4.0 px, the live view's is {LIVE_VIEW_TEXT_PX:.1f} px",
        "twin 0: a key press did not change the frame and the value",
        "twin 0: 4 steps showed 1 different frames",
        "twin 0: dragging did not change the frame",
    ], twins
    assert shown[0] == "2 search boxes", shown
    assert shown[1].startswith("code runs off the page: x = 1"), shown
    assert shown[2] == 'a "# noqa" comment is shown', shown
    assert "request left 127.0.0.1: https://cdn.invalid/tex.js" in str(leaving.value)
    assert "console error: canary" in str(leaving.value)
