r"""The entropy-alpha view: what an entropy penalty with target alpha does to a trained model.

The loss was :math:`\mathcal{L}_{\text{task}} + \lambda \cdot \mathrm{mean}_r (H_r - \alpha)^2`.
A grid of models, one per alpha, is trained once (in the chapter, with a progress bar);
a slider over alpha then picks one and shows, together:

1. its attention weights on one held-out example, one heatmap per head, with the key
   each query should find marked,
2. the achieved mean entropy against the target alpha for the whole grid (the diagonal
   is "achieved = target"), the current model marked,
3. the held-out task loss against alpha, the current model marked.

Nothing is trained or recomputed on a move: the slider only picks a precomputed run.

Shapes: H heads, Q queries, K keys, R runs (alphas) on the grid.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import ipywidgets as widgets
import numpy as np

from ..plotting import OKABE_ITO
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
        upper = math.log(w.shape[-1])
        if not 0.0 <= self.alpha <= upper + 1e-6:
            raise ValueError(
                f"alpha: expected a target entropy in [0, ln K] = [0, {upper:.4f}], "
                f"got {self.alpha}"
            )


def row_entropy(weights: np.ndarray) -> np.ndarray:
    r"""Entropy :math:`-\sum_k p_k \ln p_k` of each row (last axis), with 0 ln 0 = 0.

    Shapes:
        (..., K) -> (...)

    Taught in chapters/06_entropy_regularization.ipynb.
    """
    w = np.asarray(weights, dtype=np.float64)
    return -(w * np.log(np.where(w > 0, w, 1.0))).sum(-1)


def nearest_run(runs: Sequence[AlphaRun], alpha: float) -> int:
    """Index of the run whose target is closest to ``alpha`` (the first one on a tie).

    Taught in chapters/06_entropy_regularization.ipynb.
    """
    if len(runs) == 0:
        raise ValueError("runs: expected at least one trained run, got none")
    upper = math.log(runs[0].weights.shape[-1])
    if isinstance(alpha, bool) or not isinstance(alpha, int | float):
        raise TypeError(f"alpha: expected a number, got {type(alpha).__name__}")
    if not 0.0 <= alpha <= upper + 1e-6:
        raise ValueError(f"alpha: expected a value in [0, ln K] = [0, {upper:.4f}], got {alpha}")
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


def build_entropy_alpha_view(
    runs: Sequence[AlphaRun],
    targets: Sequence[int] | np.ndarray | None = None,
    baseline: AlphaRun | None = None,
    alpha: float | None = None,
) -> View:
    """The interactive view: an alpha slider over a precomputed grid, three linked panels.

    ``view.controls["alpha"]`` is a ``SelectionSlider`` over the runs' targets;
    ``view.state`` holds the last :func:`entropy_alpha_state`. The axes are
    ``view.figure.axes``: H heatmaps, then the entropy panel, the loss panel and the
    colour bar.

    Args:
        runs: the grid, sorted by alpha, all with weights of the same shape.
        targets: optional (Q,) index of the key each query should attend to, marked.
        baseline: optional run trained without the penalty (lambda = 0), drawn as a
            dotted line; its ``alpha`` is ignored.
        alpha: the starting alpha (default: the grid's first).

    Taught in chapters/06_entropy_regularization.ipynb.
    """
    if len(runs) == 0:
        raise ValueError("runs: expected at least one trained run, got none")
    alphas = np.array([run.alpha for run in runs])  # (R,)
    if np.any(np.diff(alphas) <= 0):
        raise ValueError(f"runs: expected increasing alphas, got {alphas.round(3).tolist()}")
    shape = runs[0].weights.shape
    if any(run.weights.shape != shape for run in runs):
        raise ValueError(f"runs: expected weights of one shape {shape} in every run")
    H, Q, K = shape
    if targets is not None and np.shape(targets) != (Q,):
        raise ValueError(
            f"targets: expected shape ({Q},) (one key per query), got {np.shape(targets)}"
        )
    first = entropy_alpha_state(runs, float(alphas[0] if alpha is None else alpha))
    control = widgets.SelectionSlider(
        options=[(f"{a:.2f}", float(a)) for a in alphas],
        value=float(runs[first["index"]].alpha),
        description="target α",
        continuous_update=True,
    )
    live = LiveFigure(figsize=(3.0 + 1.9 * H + 5.4, 2.9))
    axes = live.figure.subplots(1, H + 2, width_ratios=[1.0] * H + [1.35, 1.35])
    images = []
    for h in range(H):
        ax = axes[h]
        images.append(ax.imshow(first["weights"][h], cmap="Reds", vmin=0.0, vmax=1.0))
        if targets is not None:
            ax.plot(
                np.asarray(targets),
                np.arange(Q),
                "o",
                mfc="none",
                mec=OKABE_ITO[5],
                ms=9,
                mew=1.5,
                label="correct key",
            )
        ax.set(xlabel="keys", xticks=range(K), yticks=range(Q))
        if h == 0:
            ax.set_ylabel("queries")
    if targets is not None:
        axes[0].legend(loc="upper center", bbox_to_anchor=(0.5, -0.35), fontsize=8, frameon=False)
    live.figure.colorbar(images[-1], ax=list(axes[:H]), shrink=0.8, label="attention weight")

    ax_h, ax_loss = axes[H], axes[H + 1]
    entropies = np.array([run.mean_entropy for run in runs])
    losses = np.array([run.task_loss for run in runs])
    ln_k = math.log(K)
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
    ax_h.legend(fontsize=7, loc="upper left")
    ax_loss.legend(fontsize=7, loc="upper left")
    view = View({"alpha": control}, live)

    def update(_change: object = None) -> None:
        state = entropy_alpha_state(runs, float(control.value))
        for h, image in enumerate(images):
            image.set_data(state["weights"][h])
            axes[h].set_title(f"head {h + 1}: H = {state['row_entropy'][h].mean():.2f}", fontsize=9)
        h_marker.set_data([state["alpha"]], [state["mean_entropy"]])
        loss_marker.set_data([state["alpha"]], [state["task_loss"]])
        ax_h.set_title(
            f"α = {state['alpha']:.2f}: achieved {state['mean_entropy']:.2f}", fontsize=9
        )
        ax_loss.set_title(f"task loss {state['task_loss']:.3f}", fontsize=9)
        view.state = state
        live.redraw()

    control.observe(update, names="value")
    update()
    return view
