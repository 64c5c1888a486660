"""Interactive view: pick a head to see where it looks; prune heads to see the accuracy.

Everything drawn is precomputed (one weight map per head, one accuracy per set of
pruned heads); a control change only looks numbers up and redraws the heatmap, the
bars and the titles (the axes are kept).

Shapes: H heads, Q queries, K keys.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping, Sequence

import ipywidgets as widgets
import numpy as np
import torch
from matplotlib.artist import Artist
from matplotlib.figure import Figure
from torch import nn

from ..head_importance import neighbour_difference_task, pruned_accuracy_table
from ..multihead import MultiHeadAttention
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


def draw_head_pruning(
    figure: Figure,
    mean_weights: torch.Tensor | np.ndarray,
    accuracies: Mapping[tuple[int, ...], float],
    chance: float | None = None,
) -> tuple[Callable[[int, Sequence[int]], dict[str, object]], list[Artist]]:
    """Lay out the heatmap and the accuracy bars on ``figure``; return
    ``update(head, pruned)`` (which returns :func:`head_pruning_frame`) and the artists
    it changes.

    Taught in chapters/05_multihead_attention.ipynb.
    """
    ax_map, ax_bar = figure.subplots(1, 2, width_ratios=(1.1, 1))
    first = head_pruning_frame(mean_weights, accuracies, 0, ())
    image = ax_map.imshow(first["weights"], cmap="Reds", vmin=0.0, vmax=1.0)
    figure.colorbar(image, ax=ax_map, label="attention weight")
    ax_map.set(xlabel="key position", ylabel="query position")
    bars = ax_bar.bar(
        ["all heads", "after pruning"], [0.0, 0.0], color=[OKABE_ITO[5], OKABE_ITO[1]]
    )
    on_top = []  # the chance line is drawn over the bars, which a move changes
    if chance is not None:
        on_top.append(
            ax_bar.axhline(
                chance, color=OKABE_ITO[0], linestyle="--", label=f"chance ({chance:.2f})"
            )
        )
        ax_bar.legend(loc="upper right", fontsize=9)  # above the tallest bar (1.0 of 1.15)
    ax_bar.set(ylim=(0, 1.15), ylabel="test accuracy")
    labels = [
        ax_bar.text(b.get_x() + b.get_width() / 2, 0, "", ha="center", va="bottom") for b in bars
    ]
    H = to_numpy(mean_weights).shape[0]

    def update(head: int, pruned: Sequence[int]) -> dict[str, object]:
        frame = head_pruning_frame(mean_weights, accuracies, head, pruned)
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
        return frame

    return update, [image, ax_map.title, *bars, *labels, *on_top, ax_bar.title]


def build_head_pruning_view(
    mean_weights: torch.Tensor | np.ndarray,
    accuracies: Mapping[tuple[int, ...], float],
    chance: float | None = None,
) -> View:
    """A head selector and one "prune" checkbox per head, over a heatmap and accuracy bars.

    Controls: ``head`` (ToggleButtons labelled 0 ... H-1, value an int) and ``prune_0``
    ... ``prune_{H-1}`` (Checkboxes labelled "head h", in a row after "prune:").
    ``view.state`` holds the last :func:`head_pruning_frame`.

    Taught in chapters/05_multihead_attention.ipynb.
    """
    H = to_numpy(mean_weights).shape[0]
    label_style = {"description_width": "initial"}
    head = widgets.ToggleButtons(
        options=[(str(h), h) for h in range(H)],
        value=0,
        description="show head:",
        tooltips=[f"show the mean attention weights of head {h}" for h in range(H)],
        style={**label_style, "button_width": "42px"},
    )
    boxes = {
        f"prune_{h}": widgets.Checkbox(
            value=False,
            description=f"head {h}",
            indent=False,
            # the gap after each label shows which box it belongs to
            layout=widgets.Layout(width="auto", margin="0 22px 0 0"),
        )
        for h in range(H)
    }
    prune_row = widgets.HBox(
        [widgets.Label("prune:", layout=widgets.Layout(width="90px")), *boxes.values()]
    )
    live = LiveFigure(figsize=(8.6, 3.3), dpi=96)
    live.figure.get_layout_engine().set(w_pad=0.1, wspace=0.1)  # colour bar vs accuracy axis
    update_panels, animated = draw_head_pruning(live.figure, mean_weights, accuracies, chance)
    live.animate(*animated)
    view = View({"head": head, **boxes}, live, rows=[widgets.HBox([head]), prune_row])

    def update() -> None:
        pruned = [h for h in range(H) if boxes[f"prune_{h}"].value]
        view.state = update_panels(head.value, pruned)

    for control in view.controls.values():
        control.observe(lambda _change: live.redraw(update), names="value")
    live.redraw(update)
    return view


class _NeighbourTagger(nn.Module):
    """Chapter 05's model: embeddings, one multi-head attention layer, an MLP per token."""

    def __init__(self, vocab_size: int, seq_len: int, num_hiddens: int, num_heads: int) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab_size, num_hiddens)
        self.pos = nn.Parameter(torch.randn(seq_len, num_hiddens))
        self.attention = MultiHeadAttention(num_hiddens, num_heads)
        self.mlp = nn.Sequential(nn.Linear(num_hiddens, 32), nn.ReLU(), nn.Linear(32, vocab_size))

    def forward(
        self, tokens: torch.Tensor, head_mask: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        X = self.embed(tokens) + self.pos  # (N, T, D) + (T, D) -> (N, T, D)
        out, weights = self.attention(X, X, X, head_mask=head_mask)  # (N, T, D), (N, H, T, T)
        return self.mlp(out), weights  # (N, T, V), (N, H, T, T)


def chapter_model_data(
    num_heads: int = 4, steps: int = 120
) -> tuple[np.ndarray, dict[tuple[int, ...], float], float]:
    """Train chapter 05's tagger as the chapter does; return what the view draws.

    The neighbour-difference task (T = 8 tokens, V = 5 symbols, 384 training and 512
    test sequences from seed 0), the model seeded 0, full-batch Adam (lr 3e-2). The
    global random state is left as it was.

    Returns:
        ``(mean_weights (H, T, T), {pruned heads: test accuracy}, chance)``.

    Taught in chapters/05_multihead_attention.ipynb.
    """
    T, V = 8, 5
    data_gen = torch.Generator().manual_seed(0)
    train_tokens, train_labels = neighbour_difference_task(384, T, V, generator=data_gen)
    test_tokens, test_labels = neighbour_difference_task(512, T, V, generator=data_gen)
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = _NeighbourTagger(V, T, num_hiddens=16, num_heads=num_heads)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-2)
    for _ in range(steps):
        logits, _ = model(train_tokens)  # (N, T, V)
        loss = nn.functional.cross_entropy(logits.reshape(-1, V), train_labels.reshape(-1))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    with torch.no_grad():
        _, weights = model(test_tokens)  # (N, H, T, T)
    table = pruned_accuracy_table(model, test_tokens, test_labels, num_heads)
    return weights.mean(0).numpy(), table, 1 / V


def _pruned_label(pruned: Sequence[int]) -> str:
    return "none pruned" if not pruned else "pruned: head " + ", ".join(map(str, pruned))


def static_twin_frames() -> tuple[
    str, list[float], Callable[[float], Figure], Callable[[float], str]
]:
    """The site's static twin: every set of pruned heads, fewest first (16 for 4 heads).

    Frame i shows every head's mean weights (pruned heads greyed) and the accuracy with
    the i-th set of heads pruned, for the chapter's trained model. The fourth item
    names the set for the twin's readout.

    Taught in chapters/05_multihead_attention.ipynb.
    """
    mean_weights, table, chance = chapter_model_data()
    H = mean_weights.shape[0]
    subsets = [s for k in range(H + 1) for s in itertools.combinations(range(H), k)]

    def frame(index: float) -> Figure:
        pruned = subsets[int(round(index))]
        figure = Figure(figsize=(6.8, 4.2), dpi=100, layout="constrained")
        grid = figure.add_gridspec(2, H, height_ratios=(1.0, 0.9))
        for h in range(H):
            ax = figure.add_subplot(grid[0, h])
            off = h in pruned
            ax.imshow(mean_weights[h], cmap="Greys" if off else "Reds", vmin=0.0, vmax=1.0)
            ax.set_title(f"head {h}" + (" (pruned)" if off else ""), fontsize=10)
            ax.set(xticks=[], yticks=[], xlabel="keys")
            if h == 0:
                ax.set_ylabel("queries")
        ax_bar = figure.add_subplot(grid[1, :])
        accuracy = table[tuple(pruned)]
        bars = ax_bar.barh(
            ["all heads", "after pruning"],
            [table[()], accuracy],
            color=[OKABE_ITO[5], OKABE_ITO[1]],
        )
        for bar in bars:
            width = bar.get_width()
            ax_bar.text(
                width + 0.01, bar.get_y() + bar.get_height() / 2, f"{width:.3f}", va="center"
            )
        ax_bar.axvline(chance, color=OKABE_ITO[0], linestyle="--", label=f"chance ({chance:.2f})")
        ax_bar.set(xlim=(0, 1.12), xlabel="test accuracy")
        ax_bar.set_title(_pruned_label(pruned), fontsize=10)
        ax_bar.legend(loc="lower right", fontsize=9)
        return figure

    return (
        "pruned heads",
        [float(i) for i in range(len(subsets))],
        frame,
        lambda index: _pruned_label(subsets[int(round(index))]),
    )
