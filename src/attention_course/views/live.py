"""A matplotlib figure that an interactive view redraws in place."""

from __future__ import annotations

import ipywidgets as widgets
from IPython.display import clear_output, display
from matplotlib.figure import Figure


class LiveFigure:
    """A Figure shown inside an ``ipywidgets.Output`` and redrawn on demand.

    The figure is made with ``matplotlib.figure.Figure`` (not pyplot), so Jupyter's
    inline backend does not show a second, stale copy, and closed views leak nothing.
    Callbacks update the artists' data and call :meth:`redraw`.

    Taught in chapters/02_nadaraya_watson.ipynb.
    """

    def __init__(self, figsize: tuple[float, float] = (8.0, 3.0), **subplot_kw: object) -> None:
        self.figure = Figure(figsize=figsize, layout="constrained")
        self.output = widgets.Output()
        self._subplot_kw = subplot_kw

    def redraw(self) -> None:
        """Show the current state of the figure in the output area."""
        with self.output:
            clear_output(wait=True)
            display(self.figure)


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
