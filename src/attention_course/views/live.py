"""A matplotlib figure that an interactive view redraws in place."""

from __future__ import annotations

import base64
import io

import ipywidgets as widgets
from IPython.display import display
from matplotlib.figure import Figure


class LiveFigure:
    """A Figure shown inside an ``ipywidgets.Output`` and redrawn on demand.

    The figure is made with ``matplotlib.figure.Figure`` (not pyplot), so Jupyter's
    inline backend does not show a second, stale copy, and closed views leak nothing.
    Callbacks update the artists' data and call :meth:`redraw`, which renders a PNG and
    makes it the ``Output`` widget's only output. Setting ``output.outputs`` (rather than
    capturing ``display()`` with ``with output:``) works the same in JupyterLab, under
    nbclient (``make execute``, which raises ``KeyError`` on captured output when widget
    state is not stored) and under nbval, needs no kernel, and does not depend on the
    matplotlib backend.

    Args:
        figsize: the figure size in inches.
        dpi: the resolution of the PNG sent on each redraw (lower is faster).

    Taught in chapters/02_nadaraya_watson.ipynb.
    """

    def __init__(self, figsize: tuple[float, float] = (8.0, 3.0), dpi: int = 80) -> None:
        self.figure = Figure(figsize=figsize, layout="constrained")
        self.output = widgets.Output()
        self.dpi = dpi

    def redraw(self) -> None:
        """Render the figure to PNG and make it the ``Output`` widget's only output."""
        buffer = io.BytesIO()
        self.figure.savefig(buffer, format="png", dpi=self.dpi)
        data = {
            "image/png": base64.b64encode(buffer.getvalue()).decode("ascii"),
            "text/plain": repr(self.figure),
        }
        self.output.outputs = ({"output_type": "display_data", "data": data, "metadata": {}},)


class View:
    """An interactive view: named controls, a :class:`LiveFigure`, and the laid-out widget.

    Displaying a ``View`` in a notebook shows its widget. Tests drive it by setting
    ``view.controls[name].value`` and reading the figure's artists or ``view.state``,
    the numbers the last redraw was computed from.

    Taught in chapters/02_nadaraya_watson.ipynb.
    """

    def __init__(
        self,
        controls: dict[str, widgets.Widget],
        live: LiveFigure,
        extra: list[widgets.Widget] | None = None,
    ) -> None:
        self.controls = controls
        self.live = live
        self.state: dict[str, object] = {}
        self.widget = widgets.VBox(
            [widgets.HBox(list(controls.values())), *(extra or []), live.output]
        )

    @property
    def figure(self) -> Figure:
        """The figure the view draws on."""
        return self.live.figure

    def _ipython_display_(self) -> None:
        display(self.widget)
