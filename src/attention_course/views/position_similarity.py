r"""How similar are two positions k steps apart? A slider over the offset k and the frequency.

Three panels, all functions of the offset k only:

1. one (sin, cos) pair i of the sinusoidal table on its circle: moving k steps turns it by
   the angle :math:`k\omega_i`, whatever the starting position;
2. the similarity of encodings k apart, :math:`P_t \cdot P_{t+k} / (d/2) =
   \frac{2}{d}\sum_i \cos k\omega_i` (the same for every t), with pair i's term
   :math:`\cos k\omega_i`;
3. attention scores between a query at position m and a key at m + k, for several m:
   with rotary embeddings, :math:`\langle R_m q, R_{m+k} k\rangle`, the curves coincide
   (the score depends on k only); with sinusoids added, :math:`(q + P_m)\cdot(k + P_{m+k})`,
   they do not.

The pure functions compute everything; :class:`SimilarityTable` holds it all for the
slider's range, so a move only looks numbers up.

Shapes: d features (``num_hiddens``), K offsets, M query positions.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import ipywidgets as widgets
import numpy as np
import torch
from matplotlib.artist import Artist
from matplotlib.figure import Figure
from torch import Tensor

from .._validation import require_int, require_ndim, require_positive_int, require_tensor
from ..plotting import OKABE_ITO
from ..position import apply_rotary, position_frequencies, sinusoidal_encoding
from .live import LiveFigure, View

#: the feature size of the view's encodings
NUM_HIDDENS = 32
#: the largest offset the slider offers
MAX_OFFSET = 64
#: the query positions m of panel 3
QUERY_POSITIONS: tuple[int, ...] = (0, 10, 40)


def _offsets(offsets: Tensor) -> Tensor:
    require_tensor("offsets", offsets)
    require_ndim("offsets", offsets, (1,), "(K,)")
    return offsets.to(torch.float64)


def sinusoid_similarity(offsets: Tensor, num_hiddens: int) -> Tensor:
    r"""Cosine similarity of sinusoidal encodings k apart: :math:`\frac{2}{d}\sum_i \cos k\omega_i`.

    Every row of the table has norm :math:`\sqrt{d/2}`, and
    :math:`P_t\cdot P_{t+k} = \sum_i \cos k\omega_i` for every t.

    Shapes:
        offsets (K,) -> (K,) float64

    Taught in chapters/08_order_and_position.ipynb.
    """
    k = _offsets(offsets)
    omega = position_frequencies(num_hiddens)  # (d/2,)
    return torch.cos(k[:, None] * omega).mean(-1)  # (K, 1) * (d/2,) -> (K, d/2) -> (K,)


def pair_similarity(offsets: Tensor, num_hiddens: int, index: int) -> Tensor:
    r"""Pair i's term :math:`\cos k\omega_i`: the cosine of the angle pair i turns in k steps.

    Shapes:
        offsets (K,) -> (K,) float64

    Taught in chapters/08_order_and_position.ipynb.
    """
    k = _offsets(offsets)
    omega = position_frequencies(num_hiddens)  # (d/2,)
    index = require_int("index", index, low=0)
    if index >= len(omega):
        raise ValueError(f"index: expected a pair index in [0, {len(omega)}), got {index}")
    return torch.cos(k * omega[index])  # (K,)


def rotary_scores(q: Tensor, k: Tensor, query_positions: Tensor, offsets: Tensor) -> Tensor:
    r"""Scores :math:`\langle R_m q, R_{m+o} k\rangle` for each query position m and offset o.

    Shapes:
        q (d,), k (d,), query_positions (M,), offsets (K,) -> (M, K)

    Taught in chapters/08_order_and_position.ipynb.
    """
    m = _offsets(query_positions)[:, None]  # (M, 1)
    n = m + _offsets(offsets)  # key positions m + o: (M, K)
    q_rot = apply_rotary(q.double().expand(len(m), 1, -1), m)  # (M, 1, d)
    k_rot = apply_rotary(k.double().expand(*n.shape, -1), n)  # (M, K, d)
    return (q_rot * k_rot).sum(-1)  # (M, 1, d) * (M, K, d) -> (M, K)


def added_scores(q: Tensor, k: Tensor, query_positions: Tensor, offsets: Tensor) -> Tensor:
    r"""Scores :math:`(q + P_m)\cdot(k + P_{m+o})` with the sinusoidal table added.

    Shapes:
        q (d,), k (d,), query_positions (M,), offsets (K,) -> (M, K)

    Taught in chapters/08_order_and_position.ipynb.
    """
    m = _offsets(query_positions).long()  # (M,)
    o = _offsets(offsets).long()  # (K,)
    d = q.shape[-1]
    P = sinusoidal_encoding(int(m.max() + o.max()) + 1, d, dtype=torch.float64)  # (T, d)
    queries = q.double() + P[m]  # (M, d)
    keys = k.double() + P[m[:, None] + o]  # (M, K, d)
    return (queries[:, None, :] * keys).sum(-1)  # (M, 1, d) * (M, K, d) -> (M, K)


@dataclass(frozen=True)
class SimilarityTable:
    """Everything the view draws, for every offset 0..max_offset.

    ``similarity`` (K,), ``pairs`` (d/2, K) with row i = pair i's term, ``rotary`` and
    ``added`` (M, K) scores, ``omega`` (d/2,) frequencies.
    """

    num_hiddens: int
    offsets: np.ndarray
    omega: np.ndarray
    similarity: np.ndarray
    pairs: np.ndarray
    query_positions: tuple[int, ...]
    rotary: np.ndarray
    added: np.ndarray


def similarity_table(
    num_hiddens: int = NUM_HIDDENS,
    max_offset: int = MAX_OFFSET,
    query_positions: tuple[int, ...] = QUERY_POSITIONS,
    seed: int = 0,
) -> SimilarityTable:
    """Compute the view's numbers once: q and k are drawn from N(0, 1) with ``seed``.

    Taught in chapters/08_order_and_position.ipynb.
    """
    max_offset = require_positive_int("max_offset", max_offset)
    offsets = torch.arange(max_offset + 1)  # (K,)
    g = torch.Generator().manual_seed(seed)
    q, k = torch.randn(2, num_hiddens, generator=g, dtype=torch.float64)  # (d,) each
    positions = torch.tensor(query_positions)  # (M,)
    pairs = torch.stack(
        [pair_similarity(offsets, num_hiddens, i) for i in range(num_hiddens // 2)]
    )  # (d/2, K)
    return SimilarityTable(
        num_hiddens=num_hiddens,
        offsets=offsets.numpy(),
        omega=position_frequencies(num_hiddens).numpy(),
        similarity=sinusoid_similarity(offsets, num_hiddens).numpy(),
        pairs=pairs.numpy(),
        query_positions=tuple(query_positions),
        rotary=rotary_scores(q, k, positions, offsets).numpy(),
        added=added_scores(q, k, positions, offsets).numpy(),
    )


def draw_position_similarity(
    figure: Figure, table: SimilarityTable
) -> tuple[Callable[[int, int], dict[str, object]], list[Artist]]:
    """Lay out the three panels on ``figure``; return ``update(offset, index)`` and its artists.

    ``update`` sets the artists for offset k = ``offset`` and pair ``index`` and returns
    the numbers it drew (the view's ``state``). The artists are the only ones it changes
    (lines, markers and titles), for a :class:`LiveFigure` to blit.

    Taught in chapters/08_order_and_position.ipynb.
    """
    ax_circle, ax_sim, ax_score = figure.subplots(1, 3)
    offsets = table.offsets
    angle = np.linspace(0, 2 * np.pi, 200)
    ax_circle.plot(np.cos(angle), np.sin(angle), color=OKABE_ITO[0], lw=0.8, alpha=0.4)
    (trail,) = ax_circle.plot([], [], ".", color=OKABE_ITO[0], ms=3, alpha=0.5)
    (start,) = ax_circle.plot([0, 0], [0, 1], "-o", color=OKABE_ITO[5], label="$P_t$ (t = 0)")
    (moved,) = ax_circle.plot([], [], "-o", color=OKABE_ITO[6], label="$P_{t+k}$")
    ax_circle.set(xlim=(-1.15, 1.15), ylim=(-1.15, 1.4), aspect="equal")
    ax_circle.set_xlabel(r"$p_{t,2i} = \sin t\omega_i$")
    ax_circle.set_ylabel(r"$p_{t,2i+1} = \cos t\omega_i$")
    ax_circle.legend(loc="upper right", fontsize=7)

    ax_sim.plot(offsets, table.similarity, color=OKABE_ITO[5], label="all pairs (mean)")
    (pair_line,) = ax_sim.plot(
        offsets, table.pairs[0], "--", color=OKABE_ITO[1], lw=1, label="pair i: $\\cos k\\omega_i$"
    )
    sim_marker = ax_sim.axvline(0, color=OKABE_ITO[0], lw=1, alpha=0.6)
    (sim_dot,) = ax_sim.plot([], [], "o", color=OKABE_ITO[5])
    ax_sim.set(xlabel="offset k", ylabel="similarity of $P_t$ and $P_{t+k}$", ylim=(-1.05, 1.05))
    ax_sim.legend(loc="upper right", fontsize=7)

    styles = ("-", "--", ":")
    for j, m in enumerate(table.query_positions):
        style = styles[j % 3]
        ax_score.plot(offsets, table.rotary[j], style, color=OKABE_ITO[3], label=f"rotary, m={m}")
    for j, m in enumerate(table.query_positions):
        style = styles[j % 3]
        ax_score.plot(offsets, table.added[j], style, color=OKABE_ITO[6], label=f"added, m={m}")
    score_marker = ax_score.axvline(0, color=OKABE_ITO[0], lw=1, alpha=0.6)
    ax_score.set(xlabel="offset k (key at m + k)", ylabel="score $q_m \\cdot k_{m+k}$")
    ax_score.legend(fontsize=6, ncol=2, loc="lower right")

    def update(offset: int, index: int) -> dict[str, object]:
        k_pos = int(np.searchsorted(offsets, offset))
        if not 0 <= k_pos < len(offsets) or offsets[k_pos] != offset:
            raise ValueError(f"offset: expected one of 0..{offsets[-1]}, got {offset!r}")
        omega = float(table.omega[index])
        turned = offset * omega
        steps = np.arange(offset + 1)
        trail.set_data(np.sin(steps * omega), np.cos(steps * omega))
        moved.set_data([0, np.sin(turned)], [0, np.cos(turned)])
        ax_circle.set_title(
            f"pair i = {index}: $\\omega_i$ = {omega:.3g}, turned {turned:.2f} rad", fontsize=9
        )
        similarity = float(table.similarity[k_pos])
        pair = float(table.pairs[index, k_pos])
        pair_line.set_ydata(table.pairs[index])
        sim_marker.set_xdata([offset, offset])
        sim_dot.set_data([offset], [similarity])
        ax_sim.set_title(f"k = {offset}: similarity {similarity:.3f} for every t", fontsize=9)
        rotary, added = table.rotary[:, k_pos], table.added[:, k_pos]
        score_marker.set_xdata([offset, offset])
        rotary_spread = np.ptp(rotary)
        shown = "0 (rounding)" if rotary_spread < 1e-9 else f"{rotary_spread:.2g}"
        ax_score.set_title(
            f"k = {offset}: spread over m, rotary {shown}, added {np.ptp(added):.2f}", fontsize=9
        )
        return {
            "offset": offset,
            "index": index,
            "angle": turned,
            "similarity": similarity,
            "pair_similarity": pair,
            "rotary": rotary.copy(),
            "added": added.copy(),
        }

    changing = [trail, moved, pair_line, sim_marker, sim_dot, score_marker]
    return update, changing + [ax.title for ax in (ax_circle, ax_sim, ax_score)]


def build_position_similarity_view(table: SimilarityTable | None = None) -> View:
    """Sliders for the offset k and the frequency index i over the three panels.

    ``view.state`` holds the numbers of the last redraw (see :func:`draw_position_similarity`).

    Taught in chapters/08_order_and_position.ipynb.
    """
    table = similarity_table() if table is None else table
    offset_slider = widgets.IntSlider(
        value=4, min=0, max=int(table.offsets[-1]), description="offset k"
    )
    index_slider = widgets.IntSlider(
        value=0, min=0, max=table.num_hiddens // 2 - 1, description="frequency i"
    )
    live = LiveFigure(figsize=(10.6, 3.4), dpi=90)
    update, changing = draw_position_similarity(live.figure, table)
    live.animate(*changing)  # blitted: the axes, ticks and legends are drawn once
    view = View({"offset k": offset_slider, "frequency i": index_slider}, live)

    def draw() -> None:  # reads the controls' current values (moves may be coalesced)
        view.state = update(offset_slider.value, index_slider.value)

    offset_slider.observe(lambda _change: live.redraw(draw), names="value")
    index_slider.observe(lambda _change: live.redraw(draw), names="value")
    live.redraw(draw)
    return view


def static_twin_frames() -> tuple[str, list[float], Callable[[float], Figure]]:
    """The site's static twin: (label, 13 offsets k from 0 to 64, draw one frame).

    Each frame is the live view at frequency index i = 2 (a pair that turns visibly
    but not wildly), with the default table (d = 32, query positions 0, 10, 40).

    Taught in chapters/08_order_and_position.ipynb.
    """
    table = similarity_table()
    values = [float(k) for k in range(0, MAX_OFFSET + 1, 5)] + [float(MAX_OFFSET)]

    def frame(offset: float) -> Figure:
        figure = Figure(figsize=(12.0, 3.6), dpi=90, layout="constrained")
        update, _ = draw_position_similarity(figure, table)
        update(int(round(offset)), 2)
        return figure

    return "offset k", values, frame
