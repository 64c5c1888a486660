r"""The entropy-alpha view: what an entropy penalty with target alpha does to a trained model.

The loss was :math:`\mathcal{L}_{\text{task}} + \lambda \cdot \mathrm{mean}_r (H_r - \alpha)^2`.
A grid of models, one per alpha, is trained once (in the chapter, with a progress bar);
a slider over alpha then picks one and shows, together:

1. its attention weights on one held-out example, one heatmap per head, with the key
   each query should find marked,
2. the achieved mean entropy against the target alpha for the whole grid (the diagonal
   is "achieved = target"), the current model marked,
3. the held-out task loss against alpha, the current model marked.

Nothing is trained or recomputed on a move: the slider only picks a precomputed run and
redraws the heatmaps, the two markers and the titles (the axes are kept). Entropy and
the alpha range [0, ln K] have one definition, in ``attention_course.regularization``.

Shapes: H heads, Q queries, K keys, R runs (alphas) on the grid.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import ipywidgets as widgets
import numpy as np
import torch
from matplotlib.artist import Artist
from matplotlib.figure import Figure
from torch import nn

from ..cross_attention import CrossAttention
from ..plotting import OKABE_ITO
from ..regularization import (
    attention_entropy,
    entropy_penalty,
    max_entropy,
    require_target_entropy,
)
from .live import LiveFigure, View


@dataclass(frozen=True)
class AlphaRun:
    """One trained model of the grid: its target, what it achieved, one example's weights.

    Args:
        alpha: the target entropy it was trained with, in [0, ln K].
        weights: its attention weights on the example the view shows, (H, Q, K); each
            row sums to 1.
        mean_entropy: its mean row entropy in nats (over the held-out set, heads and
            queries).
        task_loss: its held-out task loss.

    Shapes:
        weights (H, Q, K)

    Taught in chapters/06_entropy_regularization.ipynb.
    """

    alpha: float
    weights: np.ndarray
    mean_entropy: float
    task_loss: float

    def __post_init__(self) -> None:
        w = np.asarray(self.weights, dtype=np.float64)
        if w.ndim != 3:
            raise ValueError(f"weights: expected shape (H, Q, K), got shape {w.shape}")
        if np.any(w < 0) or not np.allclose(w.sum(-1), 1.0, atol=1e-4):
            raise ValueError("weights: expected non-negative rows that sum to 1")
        check_alpha(self.alpha, w.shape[-1])


def check_alpha(alpha: float, num_keys: int) -> None:
    """Raise unless ``alpha`` is a target entropy for ``num_keys`` keys, in [0, ln K].

    ``regularization.require_target_entropy``: the one definition of the range, shared
    with the penalty, so the view and the loss cannot disagree.

    Taught in chapters/06_entropy_regularization.ipynb.
    """
    require_target_entropy(alpha, num_keys)


def row_entropy(weights: np.ndarray) -> np.ndarray:
    r"""Entropy :math:`-\sum_k p_k \ln p_k` of each row (last axis), with 0 ln 0 = 0.

    ``regularization.attention_entropy`` on a float64 copy, as a NumPy array.

    Shapes:
        (..., K) -> (...)

    Taught in chapters/06_entropy_regularization.ipynb.
    """
    w = torch.as_tensor(np.asarray(weights, dtype=np.float64))
    return attention_entropy(w).numpy()


def nearest_run(runs: Sequence[AlphaRun], alpha: float) -> int:
    """Index of the run whose target is closest to ``alpha`` (the first one on a tie).

    Taught in chapters/06_entropy_regularization.ipynb.
    """
    if len(runs) == 0:
        raise ValueError("runs: expected at least one trained run, got none")
    check_alpha(alpha, runs[0].weights.shape[-1])
    return int(np.argmin([abs(run.alpha - alpha) for run in runs]))


def entropy_alpha_state(runs: Sequence[AlphaRun], alpha: float) -> dict[str, object]:
    """Everything the view draws for the run nearest to ``alpha``.

    Returns:
        A dict with ``index``, ``alpha`` (the run's target), ``weights`` (H, Q, K),
        ``row_entropy`` (H, Q), ``mean_entropy`` and ``task_loss``.

    Taught in chapters/06_entropy_regularization.ipynb.
    """
    index = nearest_run(runs, alpha)
    run = runs[index]
    return {
        "index": index,
        "alpha": run.alpha,
        "weights": np.asarray(run.weights),  # (H, Q, K)
        "row_entropy": row_entropy(run.weights),  # (H, Q)
        "mean_entropy": run.mean_entropy,
        "task_loss": run.task_loss,
    }


def _check_grid(runs: Sequence[AlphaRun], targets: Sequence[int] | np.ndarray | None) -> None:
    if len(runs) == 0:
        raise ValueError("runs: expected at least one trained run, got none")
    alphas = np.array([run.alpha for run in runs])  # (R,)
    if np.any(np.diff(alphas) <= 0):
        raise ValueError(f"runs: expected increasing alphas, got {alphas.round(3).tolist()}")
    shape = runs[0].weights.shape
    if any(run.weights.shape != shape for run in runs):
        raise ValueError(f"runs: expected weights of one shape {shape} in every run")
    Q = shape[1]
    if targets is not None and np.shape(targets) != (Q,):
        raise ValueError(
            f"targets: expected shape ({Q},) (one key per query), got {np.shape(targets)}"
        )


def draw_entropy_alpha(
    figure: Figure,
    runs: Sequence[AlphaRun],
    targets: Sequence[int] | np.ndarray | None = None,
    baseline: AlphaRun | None = None,
) -> tuple[Callable[[float], dict[str, object]], list[Artist]]:
    """Lay out the panels on ``figure``: the H heatmaps in a row, the entropy and loss
    panels under them. Return ``update(alpha)`` (which returns
    :func:`entropy_alpha_state`) and the artists it changes.

    The axes are ``figure.axes``: H heatmaps, the entropy panel, the loss panel, then
    the colour bar.

    Taught in chapters/06_entropy_regularization.ipynb.
    """
    _check_grid(runs, targets)
    H, Q, K = runs[0].weights.shape
    alphas = np.array([run.alpha for run in runs])  # (R,)
    top, bottom = figure.subfigures(2, 1, height_ratios=(1.0, 1.05))
    heads = top.subplots(1, H)
    ax_h, ax_loss = bottom.subplots(1, 2)
    images = []
    for h in range(H):
        ax = heads[h]
        images.append(ax.imshow(runs[0].weights[h], cmap="Reds", vmin=0.0, vmax=1.0))
        if targets is not None:
            ax.plot(
                np.asarray(targets),
                np.arange(Q),
                "o",
                mfc="none",
                mec=OKABE_ITO[5],
                ms=8,
                mew=1.5,
                label="correct key",
            )
        ax.set(xlabel="keys", xticks=range(K), yticks=range(Q))
        ax.set_title(f"head {h + 1}: H = 0.00", fontsize=10)
        if h == 0:
            ax.set_ylabel("queries")
    top.colorbar(images[-1], ax=list(heads), shrink=0.9, label="attention weight")
    if targets is not None:
        heads[0].legend(loc="lower left", bbox_to_anchor=(0.0, 1.12), fontsize=9, frameon=False)

    entropies = np.array([run.mean_entropy for run in runs])
    losses = np.array([run.task_loss for run in runs])
    ln_k = max_entropy(K)
    ax_h.plot([0, ln_k], [0, ln_k], "--", color=OKABE_ITO[0], lw=1, label="target (H = α)")
    ax_h.plot(alphas, entropies, "o-", color=OKABE_ITO[1], label="achieved")
    ax_loss.plot(alphas, losses, "o-", color=OKABE_ITO[6], label="held-out task loss")
    if baseline is not None:
        ax_h.axhline(baseline.mean_entropy, ls=":", color=OKABE_ITO[3], label="no penalty")
        ax_loss.axhline(baseline.task_loss, ls=":", color=OKABE_ITO[3], label="no penalty")
    (h_marker,) = ax_h.plot([], [], "o", ms=11, mfc="none", mec=OKABE_ITO[0], mew=2)
    (loss_marker,) = ax_loss.plot([], [], "o", ms=11, mfc="none", mec=OKABE_ITO[0], mew=2)
    ax_h.set(
        xlabel="target α (nats)",
        ylabel="mean entropy (nats)",
        xlim=(-0.1, ln_k + 0.1),
        ylim=(-0.1, ln_k + 0.1),
    )
    ax_loss.set(xlabel="target α (nats)", ylabel="task loss (BCE)", xlim=(-0.1, ln_k + 0.1))
    ax_h.legend(fontsize=9, loc="upper left")
    ax_loss.legend(fontsize=9, loc="upper left")
    ax_h.set_title("α = 0.00: achieved 0.00", fontsize=10)
    ax_loss.set_title("task loss 0.000", fontsize=10)

    def update(alpha: float) -> dict[str, object]:
        state = entropy_alpha_state(runs, alpha)
        for h, image in enumerate(images):
            image.set_data(state["weights"][h])
            heads[h].set_title(
                f"head {h + 1}: H = {state['row_entropy'][h].mean():.2f}", fontsize=10
            )
        h_marker.set_data([state["alpha"]], [state["mean_entropy"]])
        loss_marker.set_data([state["alpha"]], [state["task_loss"]])
        ax_h.set_title(
            f"α = {state['alpha']:.2f}: achieved {state['mean_entropy']:.2f}", fontsize=10
        )
        ax_loss.set_title(f"task loss {state['task_loss']:.3f}", fontsize=10)
        return state

    titles = [ax.title for ax in heads]
    animated = [*images, *titles, h_marker, loss_marker, ax_h.title, ax_loss.title]
    if targets is not None:  # the rings sit on top of the heatmaps
        animated += [ax.lines[0] for ax in heads]
    return update, animated


def build_entropy_alpha_view(
    runs: Sequence[AlphaRun],
    targets: Sequence[int] | np.ndarray | None = None,
    baseline: AlphaRun | None = None,
    alpha: float | None = None,
) -> View:
    """The interactive view: an alpha slider over a precomputed grid, linked panels.

    ``view.controls["alpha"]`` is a ``SelectionSlider`` over the runs' targets (redrawn
    while dragging); ``view.state`` holds the last :func:`entropy_alpha_state`. The
    axes are those of :func:`draw_entropy_alpha`.

    Args:
        runs: the grid, sorted by alpha, all with weights of the same shape.
        targets: optional (Q,) index of the key each query should attend to, marked.
        baseline: optional run trained without the penalty (lambda = 0), drawn as a
            dotted line; its ``alpha`` is ignored.
        alpha: the starting alpha (default: the grid's first).

    Taught in chapters/06_entropy_regularization.ipynb.
    """
    _check_grid(runs, targets)
    alphas = np.array([run.alpha for run in runs])  # (R,)
    first = entropy_alpha_state(runs, float(alphas[0] if alpha is None else alpha))
    control = widgets.SelectionSlider(
        options=[(f"{a:.2f}", float(a)) for a in alphas],
        value=float(runs[first["index"]].alpha),
        description="target α",
        continuous_update=True,
    )
    live = LiveFigure(figsize=(9.0, 5.4), dpi=96)
    update_panels, animated = draw_entropy_alpha(live.figure, runs, targets, baseline)
    live.animate(*animated)
    view = View({"alpha": control}, live)

    def update() -> None:
        view.state = update_panels(float(control.value))

    control.observe(lambda _change: live.redraw(update), names="value")
    live.redraw(update)
    return view


def retrieval_batch(
    batch_size: int,
    generator: torch.Generator,
    num_queries: int = 4,
    num_keys: int = 6,
    size: int = 16,
    address: int = 8,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Chapter 06's retrieval task: each query holds the address of one of K items and
    asks whether that item's first content feature is positive.

    Returns:
        ``(queries (B, Q, D), key_values (B, K, D), labels (B, Q), targets (B, Q))``.

    Taught in chapters/06_entropy_regularization.ipynb.
    """
    key_values = torch.randn(batch_size, num_keys, size, generator=generator)  # (B, K, D)
    order = torch.rand(batch_size, num_keys, generator=generator).argsort(-1)  # (B, K)
    targets = order[:, :num_queries]  # (B, Q): distinct items per example
    picked = torch.gather(key_values, 1, targets[..., None].expand(-1, -1, size))  # (B, Q, D)
    padding = torch.zeros(batch_size, num_queries, size - address)
    queries = torch.cat([picked[..., :address], padding], dim=-1)  # (B, Q, D): address only
    labels = (picked[..., address] > 0).float()  # (B, Q)
    return queries, key_values, labels, targets


class _Retriever(nn.Module):
    """Chapter 06's model: cross-attention, then one logit per query."""

    def __init__(self, size: int = 16) -> None:
        super().__init__()
        self.attention = CrossAttention(size, size, num_heads=3, head_dim=16)
        self.readout = nn.Linear(size, 1)

    def forward(
        self, queries: torch.Tensor, key_values: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        Y, weights = self.attention(queries, key_values)  # (B, Q, D), (B, H, Q, K)
        return self.readout(Y).squeeze(-1), weights  # (B, Q), (B, H, Q, K)


def train_alpha_grid(
    alphas: Sequence[float], steps: int = 300, batch: int = 64
) -> tuple[list[AlphaRun], AlphaRun, np.ndarray]:
    """Train chapter 06's retriever once per target alpha, and once without the penalty.

    Each model starts from seed 0 and takes ``steps`` Adam steps (lr 1e-2) on the same
    stream (seed 1) with loss ``task + entropy_penalty(weights, alpha)``; it is scored
    on 256 held-out examples (seed 2). The global random state is left as it was.

    Returns:
        ``(runs, baseline, targets)``: one :class:`AlphaRun` per alpha, the run without
        the penalty, and the first held-out example's target keys (Q,).

    Taught in chapters/06_entropy_regularization.ipynb.
    """
    stream = retrieval_batch(steps * batch, torch.Generator().manual_seed(1))
    train_q, train_kv, train_y, _ = (t.reshape(steps, batch, *t.shape[1:]) for t in stream)
    test_q, test_kv, test_y, test_targets = retrieval_batch(256, torch.Generator().manual_seed(2))
    results = []
    for alpha in [None, *alphas]:
        with torch.random.fork_rng():
            torch.manual_seed(0)
            model = _Retriever()
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
        for step in range(steps):
            logits, weights = model(train_q[step], train_kv[step])
            loss = nn.functional.binary_cross_entropy_with_logits(logits, train_y[step])
            if alpha is not None:
                loss = loss + entropy_penalty(weights, alpha)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        with torch.no_grad():
            logits, weights = model(test_q, test_kv)  # (256, Q), (256, H, Q, K)
        results.append(
            AlphaRun(
                alpha=0.0 if alpha is None else alpha,
                weights=weights[0].double().numpy(),  # the first example, (H, Q, K)
                mean_entropy=attention_entropy(weights).mean().item(),
                task_loss=nn.functional.binary_cross_entropy_with_logits(logits, test_y).item(),
            )
        )
    return results[1:], results[0], test_targets[0].numpy()


def static_twin_frames() -> tuple[str, list[float], Callable[[float], Figure]]:
    """The site's static twin: 12 target entropies from 0 to ln 6, one trained model each.

    The grid is trained when the site is built (:func:`train_alpha_grid`, about 10 s);
    each frame is the live view's panels for one model.

    Taught in chapters/06_entropy_regularization.ipynb.
    """
    alphas = [i * max_entropy(6) / 11 for i in range(12)]
    runs, baseline, targets = train_alpha_grid(alphas)

    def frame(alpha: float) -> Figure:
        figure = Figure(figsize=(6.8, 5.6), dpi=100, layout="constrained")
        update, _ = draw_entropy_alpha(figure, runs, targets, baseline)
        update(alpha)
        return figure

    return "target entropy α (nats)", alphas, frame
