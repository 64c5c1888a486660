"""Shared pieces of the browser tests and of the browser latency bench: paths, Chromium,
notebook discovery, a request guard, a static file server for the built site, and a
fresh JupyterLab."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from playwright.sync_api import BrowserContext, Request

ROOT = Path(__file__).resolve().parents[2]
CHAPTERS = ROOT / "chapters"
# the built site (`make book`); BOOK_HTML points the site tests at another built copy
SITE = Path(os.environ.get("BOOK_HTML", ROOT / "book" / "_build" / "html"))
ARTIFACTS = ROOT / "build" / "browser-artifacts"

# Debian's Chromium (never a browser downloaded by `playwright install`); CHROMIUM overrides.
CHROMIUM = Path(os.environ.get("CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
LOCAL_HOST = "127.0.0.1"

# A code line that brings in the live sliders: the course's views or ipywidgets itself.
_SLIDER_IMPORT = re.compile(
    r"^\s*(from\s+attention_course\.views\b|import\s+attention_course\.views\b"
    r"|from\s+attention_course\s+import\s+.*\bviews\b|import\s+ipywidgets\b|from\s+ipywidgets\b)",
    re.MULTILINE,
)


def notebooks_with_sliders(folder: Path = CHAPTERS) -> list[Path]:
    """The notebooks whose code imports ``attention_course.views`` or ``ipywidgets``.

    Args:
        folder: the folder of ``*.ipynb`` files to scan.

    Returns:
        The matching notebooks, sorted by name.
    """
    found = []
    for path in sorted(folder.glob("*.ipynb")):
        cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
        code = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")
        if _SLIDER_IMPORT.search(code):
            found.append(path)
    return found


def live_view_notebooks(folder: Path = CHAPTERS) -> list[Path]:
    """The notebooks with a code cell tagged ``live-view`` (whose site page has a twin)."""
    found = []
    for path in sorted(folder.glob("*.ipynb")):
        cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
        if any(
            c["cell_type"] == "code" and "live-view" in c["metadata"].get("tags", []) for c in cells
        ):
            found.append(path)
    return found


def free_port() -> int:
    """A TCP port that was free on 127.0.0.1 a moment ago (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOCAL_HOST, 0))
        return int(sock.getsockname()[1])


def is_local(url: str) -> bool:
    """True for a URL that stays on this machine: 127.0.0.1, or data:/blob:/about: URLs."""
    parts = urlsplit(url)
    if parts.scheme in {"data", "blob", "about", "chrome-extension"}:
        return True
    return parts.hostname == LOCAL_HOST


def artifact(name: str) -> Path:
    """The path of a test artifact (a screenshot, a log) under build/browser-artifacts/."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS / name


@dataclass
class RequestGuard:
    """Records every request a browser context makes to a host other than 127.0.0.1.

    It listens rather than intercepts: routing every request through Playwright slows
    JupyterLab's start-up from about 4 s to over 15 s. Offline, such requests fail fast.
    """

    blocked: list[str] = field(default_factory=list)

    def attach(self, context: BrowserContext) -> RequestGuard:
        """Watch all of ``context``'s requests; returns the guard."""
        context.on("request", self._record)
        return self

    def _record(self, request: Request) -> None:
        if not is_local(request.url):
            self.blocked.append(request.url)


@dataclass(frozen=True)
class LabServer:
    """A running JupyterLab: its base URL, login token and the folder it serves."""

    url: str
    token: str
    root: Path

    def api(self, path: str, method: str = "GET") -> object:
        """Call the server's REST API (``path`` starts with ``/api/``); returns parsed JSON."""
        request = urllib.request.Request(
            f"{self.url}{path}", method=method, headers={"Authorization": f"token {self.token}"}
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            body = response.read()
        return json.loads(body) if body else None


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        """Keep the test output free of one line per request."""


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        """A browser closing a connection early (a closed page) is not an error here."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


@contextmanager
def serve_folder(folder: Path) -> Iterator[str]:
    """Serve ``folder`` over HTTP on 127.0.0.1 (a free port) from a thread; yields its URL."""
    server = _QuietServer((LOCAL_HOST, 0), partial(_QuietHandler, directory=str(folder)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://{LOCAL_HOST}:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


# --- A fresh JupyterLab for the tests and the latency bench ---

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


class LabError(RuntimeError):
    """JupyterLab did not start."""


def _write_lab_settings(folder: Path) -> None:
    for plugin, values in LAB_SETTINGS.items():
        path = folder / f"{plugin}.jupyterlab-settings"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values), encoding="utf-8")


def _wait_for_lab(server: LabServer, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + LAB_START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise LabError(f"JupyterLab exited with {process.returncode}; see {log}")
        try:
            server.api("/api/status")
            return
        except (urllib.error.URLError, ConnectionError):
            time.sleep(0.3)
    raise LabError(f"JupyterLab did not answer within {LAB_START_TIMEOUT_S:.0f} s; see {log}")


@contextmanager
def jupyterlab(base: Path, chapters: Path = CHAPTERS, log_name: str = "jupyterlab.log"):
    """A fresh JupyterLab on 127.0.0.1 (free port, fixed token) serving a copy of
    ``chapters`` in ``base`` (next to copies of the root files the notebooks read).

    The server runs on this interpreter (the course's .venv, whose kernel it starts), with
    its settings, workspaces, config, data and runtime folders all under ``base``, so
    nothing from the user's own Jupyter set-up leaks in and the sources are never touched.
    Yields a :class:`LabServer`; stops the server on leaving.

    Raises:
        LabError: the server exited or did not answer in time.
    """
    root = base / "course" / "chapters"
    shutil.copytree(chapters, root, ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
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
    log = artifact(log_name)
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
