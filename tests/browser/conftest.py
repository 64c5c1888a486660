"""Fixtures of the browser tests: Debian's Chromium, a fresh JupyterLab, the built site.

Each fixture lives for the whole test session and cleans up after itself. Screenshots
and logs go to build/browser-artifacts/ (see ``browser_support.artifact``); they are not
emptied first (a second run may be going on in the same checkout): `make clean` does.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import urllib.error
from collections.abc import Iterator
from pathlib import Path

import pytest
from browser_support import (
    CHAPTERS,
    CHROMIUM,
    CHROMIUM_ARGS,
    LOCAL_HOST,
    ROOT,
    SITE,
    LabServer,
    artifact,
    free_port,
    serve_folder,
)
from playwright.sync_api import Browser, sync_playwright

TOKEN = "attention-course-browser-tests"
LAB_START_TIMEOUT_S = 90.0
# 00_setup.ipynb compares the installed versions with the pins in the repository root.
COURSE_FILES_READ_BY_NOTEBOOKS = ("requirements.txt", "pyproject.toml")

# JupyterLab user settings for the test server: no news or update checks (no requests
# leave the machine), no autosave, and every cell attached to the DOM so that all
# prompts and outputs can be read (the default windowing skips off-screen cells).
LAB_SETTINGS = {
    "@jupyterlab/apputils-extension/notification": {
        "fetchNews": "false",
        "checkForUpdates": False,
    },
    "@jupyterlab/docmanager-extension/plugin": {"autosave": False},
    "@jupyterlab/notebook-extension/tracker": {"windowingMode": "none"},
}


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


def _write_lab_settings(folder: Path) -> None:
    for plugin, values in LAB_SETTINGS.items():
        path = folder / f"{plugin}.jupyterlab-settings"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values), encoding="utf-8")


def _wait_for_lab(server: LabServer, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + LAB_START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"JupyterLab exited with {process.returncode}; see {log}")
        try:
            server.api("/api/status")
            return
        except (urllib.error.URLError, ConnectionError):
            time.sleep(0.3)
    pytest.fail(f"JupyterLab did not answer within {LAB_START_TIMEOUT_S:.0f} s; see {log}")


@pytest.fixture(scope="session")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabServer]:
    """A fresh JupyterLab on 127.0.0.1 (free port, fixed token) serving a copy of chapters/
    (next to copies of the root files the notebooks read).

    The server runs on this interpreter (the course's .venv, whose kernel it starts), with
    its settings, workspaces, config, data and runtime folders all temporary, so nothing
    from the user's own Jupyter set-up leaks in and the sources are never touched.
    """
    base = tmp_path_factory.mktemp("jupyterlab")
    root = base / "course" / "chapters"
    shutil.copytree(CHAPTERS, root, ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    for name in COURSE_FILES_READ_BY_NOTEBOOKS:
        shutil.copy2(ROOT / name, root.parent / name)
    _write_lab_settings(base / "settings")
    env = dict(os.environ)
    env.update(
        JUPYTERLAB_SETTINGS_DIR=str(base / "settings"),
        JUPYTERLAB_WORKSPACES_DIR=str(base / "workspaces"),
        JUPYTER_CONFIG_DIR=str(base / "config"),
        JUPYTER_DATA_DIR=str(base / "data"),
        JUPYTER_RUNTIME_DIR=str(base / "runtime"),
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
        OMP_NUM_THREADS="1",
    )
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "jupyter",
        "lab",
        "--no-browser",
        f"--ServerApp.ip={LOCAL_HOST}",
        f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={TOKEN}",
        f"--ServerApp.root_dir={root}",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        "--LabApp.news_url=",
        "--LabApp.extension_manager=readonly",
    ]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        command.append("--allow-root")
    log = artifact("jupyterlab.log")
    with log.open("wb") as log_file:
        process = subprocess.Popen(command, env=env, stdout=log_file, stderr=subprocess.STDOUT)
        server = LabServer(url=f"http://{LOCAL_HOST}:{port}", token=TOKEN, root=root)
        try:
            _wait_for_lab(server, process, log)
            yield server
        finally:
            process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


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
