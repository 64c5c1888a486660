"""A matplotlib figure that an interactive view redraws in place, fast enough to drag.

Why it is built this way (the slider goal is under 60 ms from a key press to the new
picture in the browser, on a 2-core machine):

* one figure and one Agg canvas for the view's life: callbacks change the artists' data;
* the layout is computed once, at the first draw, then frozen;
* blitting: what never changes (axes, ticks, labels) is drawn once and kept as a
  background; a move restores it and redraws only the artists marked with
  :meth:`LiveFigure.animate`;
* the picture goes to the browser as the raw bytes of an ``ipywidgets.Image`` (no base64,
  no output area rebuilt), encoded as an unfiltered, fast-deflated PNG (about 1.5 ms
  where matplotlib's PNG writer takes 8-15 ms);
* moves that come from the browser are drawn on a worker thread and coalesced: while one
  picture is being drawn, later moves only record that another is needed, so a drag
  never queues stale pictures and the last picture always shows the last value. Moves
  made from Python (a test, a notebook cell) are drawn at once, before the call returns.
"""

from __future__ import annotations

import struct
import threading
import time
import zlib
from collections.abc import Callable

import ipywidgets as widgets
import numpy as np
from IPython.display import display
from matplotlib.artist import Artist
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure


def encode_png(rgba: np.ndarray, level: int = 1) -> bytes:
    """A PNG of an (h, w, 4) uint8 image, alpha dropped, rows unfiltered, deflate ``level``.

    Plots are mostly flat colour, which deflate compresses well without PNG's per-row
    filters; skipping them is what makes this fast.

    Shapes:
        rgba (h, w, 4) -> PNG bytes of an (h, w) RGB image

    Taught in chapters/02_nadaraya_watson.ipynb.
    """
    if rgba.ndim != 3 or rgba.shape[2] not in (3, 4) or rgba.dtype != np.uint8:
        raise ValueError(f"rgba: expected an (h, w, 3 or 4) uint8 image, got {rgba.shape}")
    h, w = rgba.shape[:2]
    rows = np.zeros((h, 1 + 3 * w), np.uint8)  # each row: filter byte 0, then R G B ...
    rows[:, 1:] = rgba[..., :3].reshape(h, 3 * w)  # (h, w, 3) -> (h, 3w)

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))

    header = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)  # 8-bit RGB, no interlace
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows.tobytes(), level))
        + chunk(b"IEND", b"")
    )


def _from_browser() -> bool:
    """True while the kernel handles a message from the front end (a widget moved)."""
    try:
        from ipykernel.kernelbase import Kernel
    except ImportError:  # pragma: no cover - ipykernel ships with the course
        return False
    if not Kernel.initialized():
        return False
    parent = Kernel.instance().get_parent()
    return bool(parent) and parent.get("header", {}).get("msg_type") == "comm_msg"


class LiveFigure:
    """A Figure shown as an ``ipywidgets.Image`` and redrawn on demand (see the module doc).

    The figure is made with ``matplotlib.figure.Figure`` (not pyplot), so Jupyter's
    inline backend does not show a second copy, and closed views leak nothing.

    Use: lay out the figure, mark what a move changes with :meth:`animate` (artists or
    whole axes), and call :meth:`redraw` with a function that sets the artists' data.
    Without :meth:`animate` every move redraws the whole (frozen-layout) figure, which is
    correct but slower. Call :meth:`invalidate` after changing anything not animated.

    Args:
        figsize: the figure size in inches.
        dpi: pixels per inch of the picture (its size on screen at 100% zoom).
        layout: the layout engine for the first draw (then frozen).

    Taught in chapters/02_nadaraya_watson.ipynb.
    """

    def __init__(
        self,
        figsize: tuple[float, float] = (8.0, 3.0),
        dpi: int = 80,
        layout: str | None = "constrained",
    ) -> None:
        if dpi <= 0:
            raise ValueError(f"dpi: expected a positive resolution, got {dpi}")
        self.figure = Figure(figsize=figsize, dpi=dpi, layout=layout)
        self.canvas = FigureCanvasAgg(self.figure)
        self.dpi = dpi
        width, height = (int(round(s * dpi)) for s in figsize)
        # shown at its pixel size, narrowed (never widened) to fit the page
        self.image = widgets.Image(
            format="png",
            layout=widgets.Layout(width=f"{width}px", max_width="100%", height="auto"),
        )
        self.png = b""
        #: milliseconds of the last picture: ``update`` (the view's function), ``draw``, ``encode``
        self.timings: dict[str, float] = {}
        #: pictures drawn, and moves from the browser folded into a later picture
        self.drawn = 0
        self.coalesced = 0
        self._animated: list[Artist] = []
        self._background: object | None = None
        self._lock = threading.Lock()  # one picture at a time
        self._pending: Callable[[], None] | None = None
        self._worker_busy = False
        self._queue_lock = threading.Lock()

    @property
    def output(self) -> widgets.Image:
        """The widget that shows the picture (kept for views written before ``image``)."""
        return self.image

    def animate(self, *artists: Artist) -> None:
        """Mark ``artists`` (lines, images, texts, or whole axes) as the ones a move changes.

        They are left out of the kept background and drawn on it, in this order, on every
        redraw. An animated Axes is drawn whole (ticks, labels, title): use it for axes
        whose limits or ticks change.
        """
        for artist in artists:
            artist.set_animated(True)
            self._animated.append(artist)
        self._background = None

    def invalidate(self) -> None:
        """Redraw the background on the next picture (something not animated changed)."""
        self._background = None

    def redraw(self, update: Callable[[], None] | None = None) -> None:
        """Run ``update`` (which sets the artists' data), draw the picture and show it.

        From a browser move the work runs on a worker thread, coalesced with any moves
        that arrive meanwhile (``update`` should read the controls' current values, so
        the last picture shows the last move). From Python it runs now.
        """
        work = update or _nothing
        if not _from_browser():
            self._draw_now(work)
            return
        with self._queue_lock:
            if self._pending is not None:
                self.coalesced += 1
            self._pending = work
            if self._worker_busy:
                return
            self._worker_busy = True
        threading.Thread(target=self._drain, name="LiveFigure", daemon=True).start()

    def _drain(self) -> None:
        while True:
            with self._queue_lock:
                work, self._pending = self._pending, None
                if work is None:
                    self._worker_busy = False
                    return
            try:
                self._draw_now(work)
            except Exception as error:  # shown in the log, never lost silently
                import logging

                logging.getLogger(__name__).exception("redraw failed: %s", error)

    def _draw_now(self, work: Callable[[], None]) -> None:
        with self._lock:
            start = time.perf_counter()
            work()
            drawn = time.perf_counter()
            rgba = self.render()
            rendered = time.perf_counter()
            self.png = encode_png(rgba)
            self.image.value = self.png
            done = time.perf_counter()
            self.drawn += 1
            self.timings = {
                "update": 1e3 * (drawn - start),
                "draw": 1e3 * (rendered - drawn),
                "encode": 1e3 * (done - rendered),
            }

    def render(self) -> np.ndarray:
        """Draw the figure (blitting where it can) and return its pixels, (h, w, 4) uint8."""
        figure, canvas = self.figure, self.canvas
        if self._background is None or not self._animated:  # nothing marked: draw it all
            canvas.draw()  # lays out (first time only), then draws all but the animated
            if figure.get_layout_engine() is not None:
                figure.set_layout_engine("none")  # freeze the layout: later draws skip it
            self._background = canvas.copy_from_bbox(figure.bbox)
        else:
            canvas.restore_region(self._background)
        for artist in self._animated:
            if artist.get_visible():
                figure.draw_artist(artist)
        return np.asarray(canvas.buffer_rgba())

    def to_figure_png(self) -> bytes:
        """The figure as drawn now, as PNG bytes (the picture the browser shows)."""
        return encode_png(self.render())


def _nothing() -> None:
    """The update of a redraw that only repaints."""


class View:
    """An interactive view: named controls, a :class:`LiveFigure`, and the laid-out widget.

    Displaying a ``View`` in a notebook shows its widget. Tests drive it by setting
    ``view.controls[name].value`` and reading the figure's artists or ``view.state``,
    the numbers the last redraw was computed from.

    Args:
        controls: the controls by name, shown in one row above the picture.
        live: the figure.
        extra: widgets shown between the controls and the picture (rows of controls).
        rows: if given, the control rows to show instead of one row of all controls.

    Taught in chapters/02_nadaraya_watson.ipynb.
    """

    def __init__(
        self,
        controls: dict[str, widgets.Widget],
        live: LiveFigure,
        extra: list[widgets.Widget] | None = None,
        rows: list[widgets.Widget] | None = None,
    ) -> None:
        self.controls = controls
        self.live = live
        self.state: dict[str, object] = {}
        top = rows if rows is not None else [widgets.HBox(list(controls.values()))]
        self.widget = widgets.VBox([*top, *(extra or []), live.image])

    @property
    def figure(self) -> Figure:
        """The figure the view draws on."""
        return self.live.figure

    def _ipython_display_(self) -> None:
        display(self.widget)
