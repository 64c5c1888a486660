"""Interactive views (ipywidgets) for the chapters, one module per view.

Each view is split in two: pure functions that compute what is drawn (tested
directly), and a thin widget layer that calls them and redraws a figure. Setting a
control's ``.value`` in plain Python runs the same callback a browser would.
"""

from .live import LiveFigure, View

__all__ = ["LiveFigure", "View"]
