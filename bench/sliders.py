"""Slider latency of every interactive view: from ``control.value = x`` to the redrawn figure.

Each view is built at the size its chapter uses, from synthetic data of the same
shapes (the latency depends on the shapes, not on what was trained). A view's
callback recomputes the figure data, sets it on the artists, then calls
``LiveFigure.redraw`` (PNG render). The benchmark wraps ``redraw`` to take two times
per move: (a) data, when ``redraw`` is entered (the data is on the artists), and
(b) full, when it returns (the PNG is in the Output widget).
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import torch

from attention_course import attention_entropy
from attention_course.views import View
from attention_course.views.entropy_alpha import AlphaRun, build_entropy_alpha_view
from attention_course.views.head_pruning import build_head_pruning_view
from attention_course.views.kernel_width import build_kernel_width_view
from attention_course.views.score_scaling import build_score_scaling_view, scaling_table


@dataclass(frozen=True)
class Latency:
    """Milliseconds per move of one view: to the figure data, and to the rendered PNG."""

    view: str
    data_ms: tuple[float, ...]
    full_ms: tuple[float, ...]


def kernel_width() -> View:
    """Chapter 02's view: 50 noisy training points, 50 test inputs on [0, 5)."""
    g = torch.Generator().manual_seed(0)
    x_train = torch.sort(torch.rand(50, generator=g) * 5).values
    y_train = 2 * torch.sin(x_train) + x_train**0.8 + 0.5 * torch.randn(50, generator=g)
    x_test = torch.arange(0, 5, 0.1)
    return build_kernel_width_view(x_train, y_train, x_test, 2 * torch.sin(x_test) + x_test**0.8)


def score_scaling() -> View:
    """Chapter 03's view: the scaling table with 512 queries and 16 keys."""
    return build_score_scaling_view(scaling_table(num_queries=512, num_keys=16, seed=0))


def head_pruning() -> View:
    """Chapter 05's view: 4 heads over 8 x 8 weights, an accuracy for every pruned set."""
    H, T = 4, 8
    g = torch.Generator().manual_seed(0)
    weights = torch.softmax(torch.randn(H, T, T, generator=g) * 3, dim=-1)  # (H, T, T)
    table = {
        off: 0.95 - 0.15 * len(off)
        for k in range(H + 1)
        for off in itertools.combinations(range(H), k)
    }
    return build_head_pruning_view(weights, table, chance=0.2)


def entropy_alpha() -> View:
    """Chapter 06's view: 3 heads, 6 keys, six runs on the alpha grid and a baseline."""
    H, Q, K = 3, 4, 6
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(H, Q, K, generator=g) * 4
    runs = []
    for i in range(6):
        alpha = i * math.log(K) / 5
        w = torch.softmax(logits / (0.2 + 2 * alpha), dim=-1).double()  # (H, Q, K)
        entropy = float(attention_entropy(w).mean())
        runs.append(AlphaRun(alpha=alpha, weights=w.numpy(), mean_entropy=entropy, task_loss=0.1))
    return build_entropy_alpha_view(runs, targets=np.arange(Q) % K, baseline=runs[0])


def _moves(view: View) -> Iterator[tuple[str, object]]:
    """Endless (control, value) moves: through each control's options, back and forth."""
    plans = []
    for name, control in view.controls.items():
        if hasattr(control, "options") and control.options:
            values = [v[1] if isinstance(v, tuple) else v for v in control.options]
        elif hasattr(control, "min") and hasattr(control, "base"):  # FloatLogSlider
            values = list(control.base ** np.linspace(control.min, control.max, 12))
        else:  # Checkbox
            values = [True, False]
        plans.append([(name, v) for v in values + values[-2:0:-1]])
    main = plans[0]  # the slider: most moves; the other controls now and then
    others = [m for plan in plans[1:] for m in plan]
    for i in itertools.count():
        yield main[i % len(main)]
        if others and i % 5 == 4:
            yield others[(i // 5) % len(others)]


def measure(view: View, moves: int = 60, warmup: int = 5) -> tuple[list[float], list[float]]:
    """Move the controls ``warmup + moves`` times; return the data and full times in ms."""
    live = view.live
    render = live.redraw
    stamps: list[float] = []

    def timed_redraw() -> None:
        stamps.append(time.perf_counter())  # (a) the data is on the artists
        render()

    live.redraw = timed_redraw  # type: ignore[method-assign]
    data, full = [], []
    plan = _moves(view)
    try:
        done = 0
        while done < warmup + moves:
            name, value = next(plan)
            control = view.controls[name]
            if control.value == value:
                continue  # no change, no callback
            stamps.clear()
            start = time.perf_counter()
            control.value = value
            end = time.perf_counter()
            if len(stamps) != 1:
                raise RuntimeError(f"{name}: expected one redraw per move, got {len(stamps)}")
            if done >= warmup:
                data.append(1000 * (stamps[0] - start))
                full.append(1000 * (end - start))
            done += 1
    finally:
        live.redraw = render  # type: ignore[method-assign]
    return data, full


VIEWS: dict[str, Callable[[], View]] = {
    "kernel_width (02)": kernel_width,
    "score_scaling (03)": score_scaling,
    "head_pruning (05)": head_pruning,
    "entropy_alpha (06)": entropy_alpha,
}


def bench_sliders(moves: int = 60) -> list[Latency]:
    """Latency of every view in ``VIEWS``."""
    out = []
    for name, build in VIEWS.items():
        data, full = measure(build(), moves=moves)
        out.append(Latency(name, tuple(data), tuple(full)))
    return out
