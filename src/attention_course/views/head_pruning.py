"""Interactive view: pick a head to see where it looks; prune heads to see the accuracy.

Everything drawn is precomputed (one weight map per head, one accuracy per set of
pruned heads); a control change only looks numbers up and redraws.

Shapes: H heads, Q queries, K keys.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import ipywidgets as widgets
import numpy as np
import torch

from ..plotting import OKABE_ITO, to_numpy
from .live import LiveFigure, View


def head_pruning_frame(
    mean_weights: torch.Tensor | np.ndarray,
    accuracies: Mapping[tuple[int, ...], float],
    head: int,
    pruned: Sequence[int],
) -> dict[str, object]:
    """What the view shows for one choice of head and pruned heads.

    Args:
        mean_weights: (H, Q, K), e.g. each head's attention weights averaged over a
            test set.
        accuracies: accuracy for each sorted tuple of pruned heads, e.g. from
            ``head_importance.pruned_accuracy_table``; must hold ``()`` and every
            subset that is looked up.
        head: the head whose weights are shown.
        pruned: the heads switched off (any order).

    Returns:
        A dict with ``weights`` (Q, K) of ``head``, ``accuracy`` with ``pruned`` off,
        ``full_accuracy`` with every head on, ``pruned`` as a sorted tuple, and a
        ``title``.

    Taught in chapters/05_multihead_attention.ipynb.
    """
    weights = to_numpy(mean_weights)
    if weights.ndim != 3:
        raise ValueError(f"mean_weights: expected shape (H, Q, K), got {weights.shape}")
    H = weights.shape[0]
    if isinstance(head, bool) or not isinstance(head, int | np.integer) or not 0 <= head < H:
        raise ValueError(f"head: expected an int in [0, {H}), got {head!r}")
    key = tuple(sorted(int(h) for h in pruned))
    if any(not 0 <= h < H for h in key) or len(set(key)) != len(key):
        raise ValueError(f"pruned: expected distinct heads in [0, {H}), got {list(pruned)}")
    if key not in accuracies or () not in accuracies:
        raise ValueError(f"accuracies: no entry for pruned heads {key} (or for ())")
    status = "pruned" if head in key else "kept"
    return {
        "weights": weights[head],
        "accuracy": float(accuracies[key]),
        "full_accuracy": float(accuracies[()]),
        "pruned": key,
        "title": f"head {head} ({status}): mean attention weights",
    }


def build_head_pruning_view(
    mean_weights: torch.Tensor | np.ndarray,
    accuracies: Mapping[tuple[int, ...], float],
    chance: float | None = None,
) -> View:
    """A head selector and one "prune" checkbox per head, over a heatmap and accuracy bars.

    Controls: ``head`` (ToggleButtons, value an int) and ``prune_0`` ... ``prune_{H-1}``
    (Checkboxes). ``view.state`` holds the last :func:`head_pruning_frame`.

    Taught in chapters/05_multihead_attention.ipynb.
    """
    H = to_numpy(mean_weights).shape[0]
    head = widgets.ToggleButtons(
        options=[(f"head {h}", h) for h in range(H)],
        value=0,
        description="show",
        style={"button_width": "64px"},
    )
    boxes = {
        f"prune_{h}": widgets.Checkbox(
            value=False, description=f"prune {h}", indent=False, layout=widgets.Layout(width="auto")
        )
        for h in range(H)
    }
    live = LiveFigure(figsize=(8.0, 3.2))
    view = View({"head": head, **boxes}, live)
    ax_map, ax_bar = live.figure.subplots(1, 2, width_ratios=(1.1, 1))
    frame = head_pruning_frame(mean_weights, accuracies, 0, ())
    image = ax_map.imshow(frame["weights"], cmap="Reds", vmin=0.0, vmax=1.0)
    live.figure.colorbar(image, ax=ax_map, label="attention weight")
    ax_map.set(xlabel="key position", ylabel="query position")
    bars = ax_bar.bar(
        ["all heads", "after pruning"], [0.0, 0.0], color=[OKABE_ITO[5], OKABE_ITO[1]]
    )
    if chance is not None:
        ax_bar.axhline(chance, color=OKABE_ITO[0], linestyle="--", label=f"chance ({chance:.2f})")
        ax_bar.legend(loc="upper right")
    ax_bar.set(ylim=(0, 1.15), ylabel="test accuracy")
    labels = [
        ax_bar.text(b.get_x() + b.get_width() / 2, 0, "", ha="center", va="bottom") for b in bars
    ]

    def update(_change: object = None) -> None:
        pruned = [h for h in range(H) if boxes[f"prune_{h}"].value]
        frame = head_pruning_frame(mean_weights, accuracies, head.value, pruned)
        image.set_data(frame["weights"])
        ax_map.set_title(frame["title"], fontsize=10)
        for bar, text, value in zip(
            bars, labels, (frame["full_accuracy"], frame["accuracy"]), strict=True
        ):
            bar.set_height(value)
            text.set_y(value)
            text.set_text(f"{value:.3f}")
        kept = [h for h in range(H) if h not in frame["pruned"]]
        ax_bar.set_title(f"heads kept: {kept if kept else 'none'}", fontsize=10)
        view.state = frame
        live.redraw()

    for control in view.controls.values():
        control.observe(update, names="value")
    update()
    return view
