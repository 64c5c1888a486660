"""Fixtures of the browser tests: Debian's Chromium, a fresh JupyterLab, the built site.

Each fixture lives for the whole test session and cleans up after itself. Screenshots
and logs go to build/browser-artifacts/ (see ``browser_support.artifact``); they are not
emptied first (a second run may be going on in the same checkout): `make clean` does.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from browser_support import (
    CHROMIUM,
    CHROMIUM_ARGS,
    SITE,
    LabError,
    LabServer,
    jupyterlab,
    serve_folder,
)
from playwright.sync_api import Browser, sync_playwright


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    """Headless Debian Chromium driven by Python Playwright."""
    if not CHROMIUM.exists():
        pytest.fail(
            f"{CHROMIUM} not found: install Debian's Chromium (`apt-get install -y chromium`) "
            "or set CHROMIUM to its path; never `playwright install`."
        )
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture(scope="session")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabServer]:
    """A fresh JupyterLab on 127.0.0.1 (free port, fixed token) serving a copy of chapters/
    (next to copies of the root files the notebooks read); see ``browser_support.jupyterlab``.
    """
    base = tmp_path_factory.mktemp("jupyterlab")
    try:
        with jupyterlab(base) as server:
            yield server
    except LabError as error:
        pytest.fail(str(error))


@pytest.fixture(scope="session")
def site() -> Iterator[str]:
    """The built site (book/_build/html) served on 127.0.0.1 by a thread; yields its URL.

    Skips, saying why, when the site has not been built (CI runs `make book` first); a
    site folder without index.html fails.
    """
    if not SITE.exists():
        pytest.skip(f"{SITE} does not exist: run `make book` first")
    assert (SITE / "index.html").is_file(), f"{SITE} exists but has no index.html"
    with serve_folder(SITE) as url:
        yield url
