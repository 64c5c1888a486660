r"""Why scaled dot-product attention divides by :math:`\sqrt{d}`: a slider over d.

With :math:`q, k \sim \mathcal{N}(0, I_d)` the dot product :math:`q^\top k` has variance
d, so the softmax over a row of such scores saturates towards one-hot as d grows and
its gradient vanishes. Dividing by :math:`\sqrt{d}` keeps the variance at 1.

The pure functions below compute everything the view draws; :func:`build_score_scaling_view`
only wires two controls (d and the scaling) to them. All samples are drawn once, when the
view is built: moving a control only looks numbers up and rescales them.

Shapes: N queries (one row of K scores each), K keys, d query/key size.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import ipywidgets as widgets
import numpy as np
import torch
from matplotlib.artist import Artist
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from torch import Tensor

from .._validation import require_choice, require_floating, require_ndim, require_tensor
from ..plotting import OKABE_ITO, to_numpy
from .live import LiveFigure, View

#: The ways to scale q.k: not at all, by 1/sqrt(d) (the Transformer's choice) or by 1/d.
SCALINGS: tuple[str, ...] = ("none", "1/sqrt(d)", "1/d")
#: The query/key sizes the slider offers: 1, 2, 4, ..., 1024.
DIMENSIONS: tuple[int, ...] = tuple(2**i for i in range(11))
#: One Okabe-Ito colour per scaling (vermilion, blue, bluish green), as in the chapter's figures.
SCALING_COLORS: dict[str, str] = {
    "none": OKABE_ITO[6],
    "1/sqrt(d)": OKABE_ITO[5],
    "1/d": OKABE_ITO[3],
}


def scale_factor(d: int, scaling: str) -> float:
    """The number the scores q.k are multiplied by: 1, 1/sqrt(d) or 1/d.

    Args:
        d: the query/key size, a positive integer.
        scaling: one of :data:`SCALINGS`.

    Taught in chapters/03_scoring_functions.ipynb.
    """
    require_choice("scaling", scaling, SCALINGS)
    if isinstance(d, bool) or not isinstance(d, int) or d < 1:
        raise ValueError(f"d: expected a positive integer, got {d!r}")
    return {"none": 1.0, "1/sqrt(d)": 1.0 / math.sqrt(d), "1/d": 1.0 / d}[scaling]


def sample_dot_products(
    d: int, num_queries: int = 512, num_keys: int = 16, seed: int = 0
) -> Tensor:
    r"""Unscaled scores :math:`q_n^\top k_{n,j}` with every entry of q and k drawn from N(0, 1).

    Each query gets its own ``num_keys`` keys, so all scores are independent draws of
    the same distribution (mean 0, variance d).

    Shapes:
        -> (num_queries, num_keys)

    Taught in chapters/03_scoring_functions.ipynb.
    """
    for name, value in (("d", d), ("num_queries", num_queries), ("num_keys", num_keys)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name}: expected a positive integer, got {value!r}")
    g = torch.Generator().manual_seed(seed)
    q = torch.randn(num_queries, 1, d, generator=g)  # (N, 1, d)
    k = torch.randn(num_queries, num_keys, d, generator=g)  # (N, K, d)
    # s_nj = q_n . k_nj
    return (q * k).sum(-1)  # (N, 1, d) * (N, K, d) -> (N, K, d) -> (N, K)


def softmax_jacobian_norm(weights: Tensor) -> Tensor:
    r"""Frobenius norm of the softmax Jacobian :math:`J = \mathrm{diag}(p) - p p^\top`, per row.

    About :math:`1/\sqrt{K}` for uniform weights and 0 for one-hot weights, where the
    softmax passes no gradient back to the scores. J is built explicitly for every row:
    the closed form :math:`\sum_i p_i^2 - 2\sum_i p_i^3 + (\sum_i p_i^2)^2` cancels
    catastrophically (1 - 2 + 1) for nearly one-hot rows in float32.

    Shapes:
        weights (..., K) -> (...)

    Taught in chapters/03_scoring_functions.ipynb.
    """
    require_tensor("weights", weights)
    require_floating("weights", weights)
    require_ndim("weights", weights, tuple(range(1, 9)), "(..., K)")
    # J = diag(p) - p p^T
    jac = torch.diag_embed(weights) - weights[..., :, None] * weights[..., None, :]  # (..., K, K)
    return jac.square().sum((-2, -1)).sqrt()  # (...)


def score_statistics(scores: Tensor) -> dict[str, float]:
    """Summaries of rows of scores and of their softmax, averaged over the rows.

    Returns a dict with ``variance`` (of all scores), ``max_weight`` (mean largest
    softmax weight per row), ``entropy`` (mean entropy of a row's weights, in nats; ln K
    is uniform) and ``grad_norm`` (mean :func:`softmax_jacobian_norm`).

    Shapes:
        scores (N, K)

    Taught in chapters/03_scoring_functions.ipynb.
    """
    require_tensor("scores", scores)
    require_floating("scores", scores)
    require_ndim("scores", scores, (2,), "(N, K)")
    weights = torch.softmax(scores, dim=-1)  # (N, K)
    plogp = torch.where(weights > 0, weights * torch.log(weights), torch.zeros_like(weights))
    return {
        "variance": scores.var().item(),
        "max_weight": weights.max(-1).values.mean().item(),
        "entropy": (-plogp.sum(-1)).mean().item(),
        "grad_norm": softmax_jacobian_norm(weights).mean().item(),
    }


@dataclass(frozen=True)
class ScalingTable:
    """Samples and statistics for every d in ``dims`` and every scaling in :data:`SCALINGS`.

    ``raw[d]`` are the unscaled scores (N, K); ``stats[scaling][name]`` is an array over
    ``dims`` of the statistic ``name`` from :func:`score_statistics`.
    """

    dims: tuple[int, ...]
    raw: dict[int, Tensor]
    stats: dict[str, dict[str, np.ndarray]]

    def scores(self, d: int, scaling: str) -> Tensor:
        """The scores for size ``d`` after ``scaling``, (N, K)."""
        if d not in self.raw:
            raise ValueError(f"d: expected one of {self.dims}, got {d!r}")
        return self.raw[d] * scale_factor(d, scaling)


def scaling_table(
    dims: tuple[int, ...] = DIMENSIONS, num_queries: int = 512, num_keys: int = 16, seed: int = 0
) -> ScalingTable:
    """Draw the scores once for every d and compute every statistic for every scaling.

    Taught in chapters/03_scoring_functions.ipynb.
    """
    if not dims:
        raise ValueError("dims: expected at least one query/key size, got none")
    raw = {d: sample_dot_products(d, num_queries, num_keys, seed + i) for i, d in enumerate(dims)}
    stats: dict[str, dict[str, np.ndarray]] = {}
    for scaling in SCALINGS:
        rows = [score_statistics(raw[d] * scale_factor(d, scaling)) for d in dims]
        stats[scaling] = {name: np.array([r[name] for r in rows]) for name in rows[0]}
    return ScalingTable(tuple(dims), raw, stats)


def draw_score_scaling(
    figure: Figure, table: ScalingTable, bins: int = 40, stacked: bool = False
) -> tuple[Callable[[int, str], dict[str, object]], list[Artist]]:
    """Lay out the three panels on ``figure``; return ``update(d, scaling)`` and the
    artists that a change of d alone changes (a change of scaling changes more).

    Left: histogram of the scores with their measured variance. Middle: the softmax
    weights of one query over its K keys, largest first. Right: mean largest weight
    and mean softmax-gradient norm against d for the chosen scaling, the current d
    marked. ``stacked`` puts the right panel under the other two (for a narrow page).

    Taught in chapters/03_scoring_functions.ipynb.
    """
    dims = table.dims
    num_keys = next(iter(table.raw.values())).shape[-1]
    if stacked:
        grid = figure.add_gridspec(2, 2)
        ax_hist, ax_bar = figure.add_subplot(grid[0, 0]), figure.add_subplot(grid[0, 1])
        ax_curve = figure.add_subplot(grid[1, :])
    else:
        ax_hist, ax_bar, ax_curve = figure.subplots(1, 3)
    hist = ax_hist.stairs(np.zeros(bins), np.arange(bins + 1.0), fill=True, alpha=0.7)
    ax_hist.set_xlabel("score s = c · qᵀk")
    ax_hist.set_ylabel("density")
    ax_hist.set_yticks([])  # the spread is the point, not the density's values
    ax_hist.xaxis.set_major_locator(MaxNLocator(nbins=5))
    bars = ax_bar.bar(np.arange(num_keys), np.zeros(num_keys))
    ax_bar.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax_bar.axhline(1 / num_keys, color=OKABE_ITO[0], ls=":", label=f"uniform 1/{num_keys}")
    ax_bar.set_ylim(0, 1)
    ax_bar.set_xlabel("key (sorted by weight)")
    ax_bar.set_ylabel("softmax weight")
    ax_bar.legend(loc="upper right", fontsize=8)
    x = np.array(dims, dtype=float)
    (max_line,) = ax_curve.plot(x, np.zeros_like(x), "o-", label="max weight")
    (grad_line,) = ax_curve.plot(x, np.zeros_like(x), "s--", label="softmax gradient norm")
    marker = ax_curve.axvline(dims[0], color=OKABE_ITO[0], lw=1, alpha=0.5)
    ax_curve.set_xscale("log", base=2)
    ax_curve.set_ylim(0, 1.05)
    ax_curve.set_xlabel("query/key size d")
    ax_curve.set_ylabel("mean over queries")
    legend = ax_curve.legend(loc="upper left", fontsize=8)

    def update(d: int, scaling: str) -> dict[str, object]:
        scores = table.scores(d, scaling)  # (N, K)
        counts, edges = np.histogram(to_numpy(scores).ravel(), bins=bins, density=True)
        color = SCALING_COLORS[scaling]
        hist.set_data(counts, edges)
        hist.set_color(color)
        ax_hist.set_xlim(edges[0], edges[-1])
        ax_hist.set_ylim(0, 1.1 * counts.max())
        i = dims.index(d)
        stats = {name: float(values[i]) for name, values in table.stats[scaling].items()}
        ax_hist.set_title(f"Var(s) = {stats['variance']:.3g}", fontsize=10)
        weights = torch.sort(torch.softmax(scores[0], dim=-1), descending=True).values  # (K,)
        for bar, w in zip(bars, to_numpy(weights), strict=True):
            bar.set_height(float(w))
            bar.set_color(color)
        ax_bar.set_title(f"one query: max weight {float(weights[0]):.2f}", fontsize=10)
        max_line.set_ydata(table.stats[scaling]["max_weight"])
        grad_line.set_ydata(table.stats[scaling]["grad_norm"])
        for artist in (max_line, grad_line, *legend.get_lines()):
            artist.set_color(color)
        marker.set_xdata([d, d])
        ax_curve.set_title(
            f"entropy {stats['entropy']:.2f} nats (uniform: ln {num_keys} = "
            f"{math.log(num_keys):.2f})",
            fontsize=10,
        )
        return {"d": d, "scaling": scaling, "weights": weights, **stats}

    animated = [hist, ax_hist.xaxis, ax_hist.title, *bars, ax_bar.title, marker]
    return update, [*animated, ax_curve.title]


def build_score_scaling_view(table: ScalingTable | None = None, bins: int = 40) -> View:
    """A slider over d and a choice of scaling, drawing the panels of :func:`draw_score_scaling`.

    ``view.state`` holds the numbers of the last redraw.

    Taught in chapters/03_scoring_functions.ipynb.
    """
    table = scaling_table() if table is None else table
    dims = table.dims
    d_slider = widgets.SelectionSlider(
        options=list(dims), value=dims[len(dims) // 2], description="d", continuous_update=True
    )
    scaling_buttons = widgets.ToggleButtons(
        options=list(SCALINGS), value="none", description="scaling"
    )
    live = LiveFigure(figsize=(10.0, 3.2), dpi=96)
    update_panels, animated = draw_score_scaling(live.figure, table, bins)
    live.animate(*animated)
    view = View({"d": d_slider, "scaling": scaling_buttons}, live)

    def update() -> None:
        view.state = update_panels(d_slider.value, scaling_buttons.value)

    def new_scaling(_change: object) -> None:
        live.invalidate()  # the curves and their legend change colour: draw everything
        live.redraw(update)

    d_slider.observe(lambda _change: live.redraw(update), names="value")
    scaling_buttons.observe(new_scaling, names="value")
    live.redraw(update)
    return view


#: the query/key sizes of the static twin: about four per octave from 1 to 1024
TWIN_DIMENSIONS: tuple[int, ...] = (
    1,
    2,
    3,
    4,
    6,
    8,
    12,
    16,
    24,
    32,
    48,
    64,
    96,
    128,
    192,
    256,
    384,
    512,
    768,
    1024,
)


def static_twin_frames() -> tuple[str, list[float], Callable[[float], Figure]]:
    """The site's static twin: (label, 20 sizes d from 1 to 1024, draw one frame).

    Each frame is the live view's panels for unscaled scores (the chapter's table:
    512 queries, 16 keys, seed 0), with the right panel under the other two.

    Taught in chapters/03_scoring_functions.ipynb.
    """
    table = scaling_table(TWIN_DIMENSIONS, num_queries=512, num_keys=16, seed=0)

    def frame(d: float) -> Figure:
        figure = Figure(figsize=(6.8, 5.4), dpi=100, layout="constrained")
        update, _ = draw_score_scaling(figure, table, stacked=True)
        update(int(round(d)), "none")
        return figure

    return "d (unscaled scores q·k)", [float(d) for d in TWIN_DIMENSIONS], frame
