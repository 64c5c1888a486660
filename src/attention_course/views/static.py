"""Static twins of the interactive views: a frame scrubber that needs no kernel.

On the course site (a static page) an ipywidgets slider cannot recompute anything.
:func:`static_twin` moves one control of a :class:`~attention_course.views.live.View`
through a few values in Python, captures the view's figure after each move, and
returns a ``matplotlib.animation.FuncAnimation.to_jshtml`` scrubber: plain HTML and
JavaScript whose slider swaps precomputed frames. In JupyterLab the live view stays
the primary one; the twin is what the site shows where the slider is.

Shapes: F frames, each an (h, w, 4) RGBA image of the view's figure.
"""

from __future__ import annotations

import io
import re
from collections.abc import Sequence

import ipywidgets as widgets
import numpy as np
from IPython.display import HTML
from matplotlib.animation import FuncAnimation
from matplotlib.figure import Figure
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
    # the callbacks still update the figure; only the live PNG (not shown here) is skipped
    view.live.redraw = _skip  # type: ignore[method-assign]
    try:
        for value in values:
            widget.value = value
            frames.append(capture_frame(view.figure, dpi))
    finally:
        del view.live.redraw  # back to LiveFigure.redraw
        widget.value = start
        view.live.redraw()
    return frames


def _skip() -> None:
    """Stands in for ``LiveFigure.redraw`` while frames are captured."""


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
