"""Figures for attention weights.

Colour maps and colours are colour-blind safe: sequential maps for weights, the
Okabe-Ito palette for lines. Nothing here changes matplotlib's global rcParams.
"""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.figure import Figure

#: Okabe & Ito (2008) colour-blind-safe palette, for lines and markers.
OKABE_ITO: tuple[str, ...] = (
    "#000000",
    "#E69F00",
    "#56B4E9",
    "#009E73",
    "#F0E442",
    "#0072B2",
    "#D55E00",
    "#CC79A7",
)


class HeatmapFigure(Figure):
    """The Figure ``show_heatmaps`` returns: Jupyter shows it once, not twice.

    With the inline backend every open figure is drawn when the cell ends; a Figure that
    is also the cell's last value would be drawn a second time. ``_ipython_display_`` (the
    hook IPython calls both for a cell's value and for ``plt.show()``) draws it once and
    closes it, so the end-of-cell pass finds nothing left to draw.
    """

    def _ipython_display_(self) -> None:
        """Show the figure as a PNG, then close it so that it is not shown again."""
        import matplotlib.pyplot as plt
        from IPython.core.pylabtools import print_figure
        from IPython.display import display

        display({"image/png": print_figure(self, "png"), "text/plain": repr(self)}, raw=True)
        plt.close(self)

    def __repr__(self) -> str:
        """``<Figure size 250x250 with 2 Axes>``, as for any matplotlib figure."""
        return super().__repr__().replace(type(self).__name__, "Figure", 1)


def to_numpy(x: torch.Tensor | np.ndarray) -> np.ndarray:
    """A NumPy copy of a tensor (detached, on the CPU, float32) or an array."""
    if isinstance(x, torch.Tensor):
        return x.detach().to("cpu", torch.float32).numpy()
    if isinstance(x, np.ndarray):
        return x
    raise TypeError(f"matrices: expected a torch.Tensor or numpy.ndarray, got {type(x).__name__}")


def show_heatmaps(
    matrices: torch.Tensor | np.ndarray,
    xlabel: str,
    ylabel: str,
    titles: Sequence[str] | None = None,
    figsize: tuple[float, float] = (2.5, 2.5),
    cmap: str = "Reds",
    colorbar_label: str = "attention weight",
) -> Figure:
    """Draw a grid of heatmaps with one shared colour bar (d2l's signature).

    Args:
        matrices: a (rows, cols, Q, K) grid of weight matrices, e.g. (1, 1, Q, K) for
            one matrix or (1, H, Q, K) for H heads.
        xlabel: label of the K axis (usually "Keys"), on the bottom row.
        ylabel: label of the Q axis (usually "Queries"), on the left column.
        titles: optional one title per column.
        figsize: the size of the whole figure in inches, as in d2l.
        cmap: a matplotlib colour map name.
        colorbar_label: the label of the shared colour bar.

    Returns:
        The matplotlib Figure, shown once by Jupyter's inline backend (also when
        ``show_heatmaps(...)`` is the last line of a cell).

    Shapes:
        matrices (rows, cols, Q, K)

    Taught in chapters/01_queries_keys_values.ipynb.
    """
    data = to_numpy(matrices)
    if data.ndim != 4:
        raise ValueError(
            f"matrices: expected a (rows, cols, Q, K) grid, got shape {data.shape} "
            f"({data.ndim}-D); use m[None, None] for a single (Q, K) matrix"
        )
    rows, cols = data.shape[:2]
    if titles is not None and len(titles) != cols:
        raise ValueError(f"titles: expected {cols} titles (one per column), got {len(titles)}")
    vmin, vmax = float(np.nanmin(data)), float(np.nanmax(data))
    fig, axes = plt.subplots(
        rows,
        cols,
        figsize=figsize,
        sharex=True,
        sharey=True,
        squeeze=False,
        FigureClass=HeatmapFigure,
    )
    image = None
    for i in range(rows):
        for j in range(cols):
            ax = axes[i, j]
            image = ax.imshow(data[i, j], cmap=cmap, vmin=vmin, vmax=vmax)
            if i == rows - 1:
                ax.set_xlabel(xlabel)
            if j == 0:
                ax.set_ylabel(ylabel)
            if titles is not None:
                ax.set_title(titles[j])
    fig.colorbar(image, ax=axes, shrink=0.6, label=colorbar_label)
    return fig
