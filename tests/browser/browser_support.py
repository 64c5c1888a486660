"""Shared pieces of the browser tests: paths, Chromium, notebook discovery, a request
guard, and a static file server for the built site."""

from __future__ import annotations

import json
import os
import re
import socket
import sys
import threading
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
