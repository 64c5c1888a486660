r"""The flash-blocks view: what the block size of tiled attention costs in memory and time.

``flash_attention`` visits the keys ``block_size`` at a time. Small blocks keep little
in memory but take many small steps (Python and kernel overhead per step); large blocks
take few steps but hold a (Q, block_size) piece of the scores. The view measures each
block size once (peak memory counted exactly, time the fastest of a few calls), then a
slider over the block size picks one and shows both curves, with naive attention and
the fused kernel (``F.scaled_dot_product_attention``) as reference lines.

Nothing is measured on a move: the slider only picks a precomputed run.

Shapes: B = 1, H heads, T tokens (Q = K = T), Dh head dim; R runs (block sizes).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import ipywidgets as widgets
import numpy as np
import torch
import torch.nn.functional as F
from matplotlib.artist import Artist
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from ..cost import measure_allocations, time_call
from ..flash import flash_attention
from ..plotting import OKABE_ITO
from ..scoring import DotProductAttention
from .live import LiveFigure, View

MIB = 2**20


@dataclass(frozen=True)
class BlockRun:
    """One measured configuration: its block size (0 for a reference), peak bytes, seconds.

    Taught in chapters/11_memory_efficient_attention.ipynb.
    """

    label: str
    block_size: int
    peak_bytes: int
    seconds: float

    def __post_init__(self) -> None:
        if self.peak_bytes < 0 or not self.seconds > 0:
            raise ValueError(
                f"peak_bytes, seconds: expected bytes >= 0 and seconds > 0, got "
                f"{self.peak_bytes}, {self.seconds}"
            )


def measure_block_sizes(
    tokens: int,
    block_sizes: Sequence[int],
    *,
    heads: int = 2,
    head_dim: int = 32,
    repeats: int = 2,
    threads: int | None = 1,
    seed: int = 0,
) -> tuple[list[BlockRun], list[BlockRun]]:
    """Measure ``flash_attention`` at each block size, and the naive and fused references.

    Peak memory is :func:`attention_course.cost.measure_allocations` (exact, the same on
    every run); its call also warms up, then time is the fastest of ``repeats`` calls
    (noisy). The naive reference is the package's ``DotProductAttention``, which returns
    its weights. Everything runs forward only, under ``torch.no_grad()``, on ``threads``
    threads (default one; ``None`` keeps PyTorch's setting), restored afterwards: small
    blocks mean many tiny operations, and on a shared machine several threads per tiny
    operation mostly wait on each other.

    Returns:
        ``(runs, references)``: one :class:`BlockRun` per block size, in the given order,
        then the naive and the fused reference (``block_size`` 0).

    Shapes:
        q, k, v (1, heads, tokens, head_dim)

    Taught in chapters/11_memory_efficient_attention.ipynb.
    """
    g = torch.Generator().manual_seed(seed)
    q, k, v = (torch.randn(1, heads, tokens, head_dim, generator=g) for _ in range(3))
    calls: list[tuple[str, int, Callable[[], object]]] = [
        (f"block {b}", int(b), functools.partial(flash_attention, q, k, v, block_size=int(b)))
        for b in block_sizes
    ]
    calls += [
        ("naive (weights kept)", 0, functools.partial(DotProductAttention().eval(), q, k, v)),
        ("fused SDPA", 0, functools.partial(F.scaled_dot_product_attention, q, k, v)),
    ]
    measured = []
    before = torch.get_num_threads()
    try:
        if threads is not None:
            torch.set_num_threads(threads)
        with torch.no_grad():
            for label, block, fn in calls:
                peak = measure_allocations(fn).peak_bytes  # also the warm-up call
                seconds = min(time_call(fn, repeats=repeats, warmup=0))
                measured.append(BlockRun(label, block, peak, max(seconds, 1e-9)))
    finally:
        torch.set_num_threads(before)
    return measured[: len(block_sizes)], measured[len(block_sizes) :]


def block_state(runs: Sequence[BlockRun], block_size: float) -> dict[str, object]:
    """The run whose block size is nearest ``block_size`` on a log scale, and its numbers.

    Returns:
        A dict with ``index``, ``block_size``, ``peak_mib`` and ``ms``.

    Taught in chapters/11_memory_efficient_attention.ipynb.
    """
    if len(runs) == 0:
        raise ValueError("runs: expected at least one measured block size, got none")
    if isinstance(block_size, bool) or not isinstance(block_size, int | float | np.number):
        raise TypeError(f"block_size: expected a number, got {type(block_size).__name__}")
    if not block_size > 0:
        raise ValueError(f"block_size: expected a number > 0, got {block_size}")
    distance = [abs(math.log(run.block_size) - math.log(block_size)) for run in runs]
    index = int(np.argmin(distance))
    run = runs[index]
    return {
        "index": index,
        "block_size": run.block_size,
        "peak_mib": run.peak_bytes / MIB,
        "ms": 1000 * run.seconds,
    }


def _check_runs(runs: Sequence[BlockRun]) -> np.ndarray:
    if len(runs) == 0:
        raise ValueError("runs: expected at least one measured block size, got none")
    sizes = np.array([run.block_size for run in runs])  # (R,)
    if np.any(sizes < 1) or np.any(np.diff(sizes) <= 0):
        raise ValueError(f"runs: expected increasing block sizes >= 1, got {sizes.tolist()}")
    return sizes


def draw_flash_blocks(
    figure: Figure, runs: Sequence[BlockRun], references: Sequence[BlockRun] = ()
) -> tuple[list[Axes], Callable[[float], dict[str, object]], list[Artist]]:
    """Draw both panels on ``figure``; return the axes, a function marking one block, and
    the artists that function changes.

    The returned ``select(block_size)`` moves the markers and titles to the nearest run
    and returns its :func:`block_state`; the curves themselves are drawn once. The
    changed artists (two markers, two titles) are what a ``LiveFigure`` animates.

    Taught in chapters/11_memory_efficient_attention.ipynb.
    """
    sizes = _check_runs(runs)
    peaks = np.array([run.peak_bytes / MIB for run in runs])  # (R,)
    ms = np.array([1000 * run.seconds for run in runs])  # (R,)
    ax_mem, ax_time = figure.subplots(1, 2)
    ax_mem.loglog(sizes, peaks, "o-", color=OKABE_ITO[5], base=2, label="flash_attention")
    ax_time.loglog(sizes, ms, "o-", color=OKABE_ITO[5], base=2, label="flash_attention")
    for i, ref in enumerate(references):
        style = {"ls": "--" if i == 0 else ":", "color": OKABE_ITO[1 + 5 * i], "lw": 1.5}
        ax_mem.axhline(ref.peak_bytes / MIB, label=ref.label, **style)
        ax_time.axhline(1000 * ref.seconds, label=ref.label, **style)
    (mem_marker,) = ax_mem.plot([], [], "o", ms=12, mfc="none", mec=OKABE_ITO[0], mew=2)
    (time_marker,) = ax_time.plot([], [], "o", ms=12, mfc="none", mec=OKABE_ITO[0], mew=2)
    ax_mem.set(xlabel="block size (keys per step)", ylabel="peak memory (MiB)")
    ax_time.set(xlabel="block size (keys per step)", ylabel="forward time (ms)")
    ax_mem.legend(fontsize=7, loc="upper left")
    ax_time.legend(fontsize=7, loc="upper right")

    def select(block_size: float) -> dict[str, object]:
        state = block_state(runs, block_size)
        mem_marker.set_data([state["block_size"]], [state["peak_mib"]])
        time_marker.set_data([state["block_size"]], [state["ms"]])
        ax_mem.set_title(
            f"block {state['block_size']}: peak {state['peak_mib']:.2f} MiB", fontsize=9
        )
        ax_time.set_title(f"block {state['block_size']}: {state['ms']:.1f} ms", fontsize=9)
        return state

    animated: list[Artist] = [mem_marker, time_marker, ax_mem.title, ax_time.title]
    return [ax_mem, ax_time], select, animated


def build_flash_blocks_view(
    runs: Sequence[BlockRun],
    references: Sequence[BlockRun] = (),
    block_size: int | None = None,
) -> View:
    """The interactive view: a block-size slider over precomputed runs, two panels.

    ``view.controls["block_size"]`` is a ``SelectionSlider`` over the runs' block sizes;
    ``view.state`` holds the last :func:`block_state`.

    Args:
        runs: from :func:`measure_block_sizes`, increasing block sizes.
        references: reference lines (naive, fused), drawn as horizontal lines.
        block_size: the starting block size (default: the nearest to 64).

    Taught in chapters/11_memory_efficient_attention.ipynb.
    """
    sizes = _check_runs(runs)
    first = block_state(runs, 64 if block_size is None else block_size)
    control = widgets.SelectionSlider(
        options=[(str(b), int(b)) for b in sizes],
        value=int(first["block_size"]),
        description="block size",
        continuous_update=True,
    )
    live = LiveFigure(figsize=(9.0, 3.2))
    _, select, animated = draw_flash_blocks(live.figure, runs, references)
    live.animate(*animated)  # a move changes the markers and titles only
    view = View({"block_size": control}, live)

    def update() -> None:  # reads the control's current value (moves may be coalesced)
        view.state = select(int(control.value))

    control.observe(lambda _change: live.redraw(update), names="value")
    live.redraw(update)
    return view


#: the block sizes of the chapter's slider and of the static twin: 4 to 1024, in steps of sqrt(2)
BLOCK_SIZES = tuple(round(4 * 2 ** (i / 2)) for i in range(17))


@functools.lru_cache(maxsize=1)
def _twin_runs() -> tuple[list[BlockRun], list[BlockRun]]:
    return measure_block_sizes(1024, BLOCK_SIZES)


def static_twin_frames() -> tuple[
    str, list[float], Callable[[float], Figure], Callable[[float], str]
]:
    """The static twin: the block sizes of the slider, a function drawing one frame, and
    one naming a value for the control (``static.build_twin`` accepts it fourth).

    The runs are measured once (T = 1024, 2 heads of 32) on the machine building the
    site, the first time a frame is drawn.

    Taught in chapters/11_memory_efficient_attention.ipynb.
    """

    def frame(block_size: float) -> Figure:
        runs, references = _twin_runs()
        figure = Figure(figsize=(9.0, 3.2), layout="constrained")
        _, select, _ = draw_flash_blocks(figure, runs, references)
        select(block_size)
        return figure

    def readout(block_size: float) -> str:
        return f"block size = {int(block_size)} keys"

    return "block size", [float(b) for b in BLOCK_SIZES], frame, readout
