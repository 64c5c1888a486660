"""Static twins of the interactive views: frames that need no kernel.

The course site builds them (``book/site_copy.py``) from each view module's
``static_twin_frames()`` with :func:`build_twin` and :func:`twin_html`: a labelled range
control that shows the parameter's value, over frames drawn when the site is built.

The older helpers below (:func:`static_twin`, a ``to_jshtml`` scrubber made by moving a
live view's control) stay for notebooks that still store a twin cell.

On the course site (a static page) an ipywidgets slider cannot recompute anything.
:func:`static_twin` moves one control of a :class:`~attention_course.views.live.View`
through a few values in Python, captures the view's figure after each move, and
returns a ``matplotlib.animation.FuncAnimation.to_jshtml`` scrubber: plain HTML and
JavaScript whose slider swaps precomputed frames. In JupyterLab the live view stays
the primary one; the twin is what the site shows where the slider is.

Shapes: F frames, each an (h, w, 4) RGBA image of the view's figure.
"""

from __future__ import annotations

import html
import io
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass

import ipywidgets as widgets
import numpy as np
from IPython.display import HTML
from matplotlib.animation import FuncAnimation
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.text import Text
from PIL import Image

from .live import LiveFigure, View

#: pixels of the strip above each frame that names the control's value
LABEL_HEIGHT = 24
#: the label's text height in pixels, whatever the dpi
LABEL_PIXELS = 15


def capture_frame(figure: Figure, dpi: int) -> np.ndarray:
    """Render ``figure`` at ``dpi`` to an RGBA array.

    Shapes:
        -> (h, w, 4) uint8, h and w the figure size in inches times ``dpi``

    Taught in chapters/02_nadaraya_watson.ipynb.
    """
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi)  # PNG carries its own size in pixels
    buffer.seek(0)
    with Image.open(buffer) as image:
        return np.asarray(image.convert("RGBA"))


def capture_frames(
    view: View, control: str, values: Sequence[object], dpi: int
) -> list[np.ndarray]:
    """Set ``view.controls[control]`` to each value in turn and capture the figure.

    The control is set exactly as a student's move sets it, so the view's own callback
    redraws the figure. The control's starting value is restored afterwards, so the
    live view is left as it was.

    Args:
        view: the interactive view.
        control: the name of one of ``view.controls``.
        values: the values to capture, each one the control accepts.
        dpi: the resolution of the frames.

    Returns:
        One RGBA frame per value, in order.

    Shapes:
        values (F,) -> F arrays of (h, w, 4)

    Taught in chapters/02_nadaraya_watson.ipynb.
    """
    if control not in view.controls:
        raise ValueError(f"control: expected one of {sorted(view.controls)}, got {control!r}")
    if len(values) == 0:
        raise ValueError("values: expected at least one value to capture, got none")
    if dpi <= 0:
        raise ValueError(f"dpi: expected a positive resolution, got {dpi}")
    widget = view.controls[control]
    start = widget.value
    frames = []
    try:
        for value in values:
            widget.value = value  # the view's own callback redraws (at once, from Python)
            frames.append(capture_frame(view.figure, dpi))
    finally:
        widget.value = start
    return frames


def _label(control: str, value: object) -> str:
    shown = f"{value:.3g}" if isinstance(value, float) else str(value)
    return f"{control} = {shown}"


def scrubber(frames: Sequence[np.ndarray], labels: Sequence[str], dpi: int) -> str:
    """A ``to_jshtml`` scrubber over ``frames``, each shown below its label.

    The frames are drawn pixel for pixel (a figure exactly their size, no resampling).

    Shapes:
        frames: F arrays of (h, w, 4), labels (F,) -> HTML with F embedded PNGs

    Taught in chapters/02_nadaraya_watson.ipynb.
    """
    if len(frames) != len(labels) or len(frames) == 0:
        raise ValueError(
            f"labels: expected one label per frame ({len(frames)} frames), got {len(labels)}"
        )
    height, width = frames[0].shape[:2]
    if any(f.shape != frames[0].shape for f in frames):
        raise ValueError(f"frames: expected frames of one shape {frames[0].shape}")
    total = height + LABEL_HEIGHT
    figure = Figure(figsize=(width / dpi, total / dpi), dpi=dpi)
    ax = figure.add_axes((0.0, 0.0, 1.0, height / total))
    ax.set_axis_off()
    image = ax.imshow(frames[0], interpolation="none", aspect="auto")
    text = figure.text(
        0.5,
        1 - 0.5 * LABEL_HEIGHT / total,
        labels[0],
        ha="center",
        va="center",
        fontsize=LABEL_PIXELS * 72 / dpi,  # points -> pixels at this dpi
    )

    def show(i: int) -> tuple[object, ...]:
        image.set_data(frames[i])
        text.set_text(labels[i])
        return image, text

    animation = FuncAnimation(figure, show, frames=len(frames), interval=800, blit=False)
    return offline(animation.to_jshtml(fps=1.25, default_mode="once"))


#: Font Awesome 4 icons of the ``to_jshtml`` buttons, and text that needs no icon font
ICONS = {
    "fa fa-minus": "\u2212",
    "fa fa-fast-backward": "\u21e4",
    "fa fa-step-backward": "\u25c0\u2223",
    "fa fa-play fa-flip-horizontal": "\u25c0",
    "fa fa-pause": "\u2016",
    "fa fa-play": "\u25b6",
    "fa fa-step-forward": "\u2223\u25b6",
    "fa fa-fast-forward": "\u21e5",
    "fa fa-plus": "+",
}


def offline(html: str) -> str:
    """``html`` from ``to_jshtml`` without its one request off the page.

    ``to_jshtml`` links Font Awesome 4 from a CDN for its button icons. The link is
    removed and each icon replaced by a Unicode symbol, so the scrubber makes no
    request and looks the same on the site, in JupyterLab and offline.

    Taught in chapters/02_nadaraya_watson.ipynb.
    """
    html = re.sub(r"<link[^>]*font-awesome[^>]*>\s*", "", html)
    for icon, text in ICONS.items():
        html = html.replace(f'<i class="{icon}"></i>', text)
    if "<link" in html or 'class="fa ' in html:
        raise ValueError("html: expected only the Font Awesome link and icons of to_jshtml")
    return html


def label_view(control: widgets.ValueWidget, label: widgets.Label, name: str) -> View:
    """A :class:`View` whose figure shows ``label.value``, for a slider that sets a Label.

    Lets :func:`static_twin` capture a view made of plain widgets (a slider whose callback
    writes a ``Label``, as in chapters/00_setup.ipynb). Call it after that callback is
    registered, so the label already holds the new text when the figure is redrawn.

    Args:
        control: the slider (any widget with a ``value``).
        label: the Label its callback writes.
        name: the control's name in ``view.controls``.

    Taught in chapters/00_setup.ipynb.
    """
    live = LiveFigure(figsize=(3.2, 0.6))
    text = live.figure.text(0.5, 0.5, label.value, ha="center", va="center", fontsize=13)
    view = View({name: control}, live)

    def update(_change: object = None) -> None:
        text.set_text(label.value)
        view.state = {name: control.value, "text": label.value}
        live.redraw()

    control.observe(update, names="value")
    update()
    return view


def static_twin(
    view: View, control: str, values: Sequence[object], dpi: int = 50, label: str | None = None
) -> HTML:
    """The static twin of ``view``: a frame scrubber over ``control`` at ``values``.

    Display the result in the cell after the live view. Few values and a low ``dpi``
    keep the notebook fast and the page small (each frame is one embedded PNG).

    Args:
        view: the interactive view (its control is restored after capturing).
        control: the name of the control the scrubber replaces.
        values: the values of that control to show, in scrubber order.
        dpi: the resolution of the frames.
        label: the name shown above each frame (default: ``control``).

    Returns:
        An ``IPython.display.HTML`` holding the ``to_jshtml`` scrubber.

    Taught in chapters/02_nadaraya_watson.ipynb.
    """
    frames = capture_frames(view, control, values, dpi)
    return HTML(scrubber(frames, [_label(label or control, v) for v in values], dpi))


# --- The site's static twins, built from each view module's ``static_twin_frames()`` ---

#: a twin needs at least this many frames
MIN_FRAMES = 12
#: the width, in pixels, a twin's frame gets on a page of the site (a 1280-pixel window)
PAGE_WIDTH_PX = 680
#: the smallest text of a live view, in pixels (8 pt at 96 dpi): a twin's is no smaller
TEXT_FLOOR_PX = 8 * 96 / 72


@dataclass(frozen=True)
class Twin:
    """The frames of one static twin, ready to be written next to a page.

    Args:
        label: the parameter's name, shown next to the range control.
        values: the parameter's value at each frame, (F,).
        readouts: the text the control shows at each frame, (F,).
        frames: each frame as PNG bytes, all of one size.
        size: (width, height) of a frame in pixels.
        min_text_px: the height of the smallest text in a frame, in pixels (font size at
            the frame's resolution), for the legibility check of the browser tests.

    Taught in chapters/02_nadaraya_watson.ipynb.
    """

    label: str
    values: tuple[float, ...]
    readouts: tuple[str, ...]
    frames: tuple[bytes, ...]
    size: tuple[int, int]
    min_text_px: float


def smallest_text_px(figure: Figure) -> float:
    """The font size, in pixels at the figure's dpi, of its smallest visible text.

    Call it after the figure was drawn (tick labels are filled in when drawn).

    Taught in chapters/02_nadaraya_watson.ipynb.
    """
    sizes = [
        t.get_fontsize()
        for t in figure.findobj(Text)
        if t.get_visible() and t.get_text().strip() and t.get_figure(root=True) is figure
    ]
    if not sizes:
        raise ValueError("figure: expected some text (titles, labels) in a twin's frame")
    return min(sizes) * figure.dpi / 72


def make_legible(
    figure: Figure, width_px: float = PAGE_WIDTH_PX, floor_px: float = TEXT_FLOOR_PX
) -> int:
    """Raise every text of ``figure`` that would show smaller than ``floor_px`` on a page
    where the figure is at most ``width_px`` wide; return how many were raised.

    A frame wider than the page is shown narrower, and its text with it: the floor in
    points is ``floor_px * 72 / (dpi * scale)``. Tick labels are raised through
    ``tick_params`` (they are made anew on each draw); the layout engine, if any, makes
    room on the next draw.

    Taught in chapters/02_nadaraya_watson.ipynb.
    """
    canvas = figure.canvas
    if not isinstance(canvas, FigureCanvasAgg):
        canvas = FigureCanvasAgg(figure)
    canvas.draw()  # fills in the tick labels
    scale = min(1.0, width_px / (figure.get_figwidth() * figure.dpi))
    floor_pt = floor_px * 72 / (figure.dpi * scale)
    raised = 0
    for ax in figure.get_axes():
        for axis, name in ((ax.xaxis, "x"), (ax.yaxis, "y")):
            labels = [t for t in axis.get_ticklabels() if t.get_text()]
            if labels and min(t.get_fontsize() for t in labels) < floor_pt:
                ax.tick_params(axis=name, which="both", labelsize=floor_pt)
                raised += 1
    for text in figure.findobj(Text):
        if text.get_visible() and text.get_text().strip() and text.get_fontsize() < floor_pt:
            text.set_fontsize(floor_pt)
            raised += 1
    return raised


def frame_png(figure: Figure) -> bytes:
    """``figure`` as a small PNG: drawn at its own dpi, reduced to a 256-colour palette."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=figure.dpi)
    buffer.seek(0)
    with Image.open(buffer) as image:
        palette = image.convert("RGB").quantize(256, method=Image.Quantize.FASTOCTREE, dither=0)
    out = io.BytesIO()
    palette.save(out, format="png", optimize=True)
    return out.getvalue()


def build_twin(module: object) -> Twin:
    """Render the static twin of a view module from its ``static_twin_frames()``.

    The module returns ``(label, values, draw)`` or ``(label, values, draw, readout)``:
    the parameter's name, its values (at least :data:`MIN_FRAMES`), a function drawing
    the figure for one value, and optionally one naming a value for the control
    (default ``"label = value"``).

    Raises:
        ValueError: fewer than :data:`MIN_FRAMES` values, frames of different sizes, or
            two neighbouring frames that look the same.

    Taught in chapters/02_nadaraya_watson.ipynb.
    """
    name = getattr(module, "__name__", repr(module))
    parts = module.static_twin_frames()  # type: ignore[attr-defined]
    label, values, draw = parts[:3]
    readout = parts[3] if len(parts) > 3 else (lambda v: f"{label} = {float(v):.3g}")
    if len(values) < MIN_FRAMES:
        raise ValueError(
            f"{name}.static_twin_frames: expected at least {MIN_FRAMES} values, got {len(values)}"
        )
    frames, smallest, size = [], float("inf"), None
    for value in values:
        figure = draw(value)
        if not isinstance(figure, Figure):
            raise ValueError(f"{name}: expected draw() to return a matplotlib Figure")
        make_legible(figure)
        png = frame_png(figure)  # drawn first: tick labels get their text when drawn
        smallest = min(smallest, smallest_text_px(figure))
        with Image.open(io.BytesIO(png)) as image:
            if size is not None and image.size != size:
                raise ValueError(f"{name}: frames of sizes {size} and {image.size}")
            size = image.size
        if frames and png == frames[-1]:
            raise ValueError(f"{name}: the frames at {value!r} and before it are the same")
        frames.append(png)
    assert size is not None
    return Twin(
        str(label),
        tuple(float(v) for v in values),
        tuple(readout(v) for v in values),
        tuple(frames),
        size,
        round(smallest, 2),
    )


def twin_html(twin: Twin, urls: Sequence[str], element_id: str, start: int | None = None) -> str:
    """The HTML of a static twin: a labelled range control that shows the value, and the
    frame for it. Plain HTML and a few lines of JavaScript: no kernel, no request off
    the site (``urls`` are the frames' addresses relative to the page).

    Taught in chapters/02_nadaraya_watson.ipynb.
    """
    if len(urls) != len(twin.frames):
        raise ValueError(f"urls: expected one per frame ({len(twin.frames)}), got {len(urls)}")
    if not re.fullmatch(r"[A-Za-z][\w-]*", element_id):
        raise ValueError(f"element_id: expected an HTML id, got {element_id!r}")
    last = len(urls) - 1
    index = last // 2 if start is None else start
    width, height = twin.size
    readout = html.escape(twin.readouts[index])
    return f"""<div class="static-twin" id="{element_id}" data-min-text-px="{twin.min_text_px}">
<div class="static-twin-control">
<label for="{element_id}-range">{html.escape(twin.label)}</label>
<input type="range" id="{element_id}-range" min="0" max="{last}" step="1" value="{index}" \
aria-valuetext="{readout}">
<output for="{element_id}-range">{readout}</output>
</div>
<img class="static-twin-frame" src="{html.escape(urls[index])}" width="{width}" \
height="{height}" alt="the view at {readout}">
<p class="static-twin-note">A static copy of the live view: {len(urls)} frames drawn when \
this page was built. Open the notebook to move the real controls.</p>
<script>
(function () {{
  var urls = {json.dumps(list(urls))}, readouts = {json.dumps(list(twin.readouts))};
  var root = document.getElementById("{element_id}");
  var input = root.querySelector("input"), out = root.querySelector("output");
  var img = root.querySelector("img");
  input.addEventListener("input", function () {{
    var i = Number(input.value);
    img.src = urls[i]; img.alt = "the view at " + readouts[i];
    out.textContent = readouts[i]; input.setAttribute("aria-valuetext", readouts[i]);
  }});
  urls.forEach(function (u) {{ new Image().src = u; }});  // fetch every frame once
}})();
</script>
</div>"""
