r"""The kernel-width view: Nadaraya-Watson regression as the kernel width sigma moves.

A log-scale slider for sigma and a menu of kernels update three panels together:

1. the prediction :math:`\hat f(x)` against the truth and the training data,
2. the attention weights :math:`\alpha(x, x_i)` (test inputs against training inputs,
   drawn in x coordinates, so the bright band has a width of about sigma),
3. the training and test error against sigma, with the current sigma marked.

Nothing is trained on a move. The error curves are computed once, when the view is
built; a move evaluates one (Q, N) softmax, a fraction of a millisecond for 50 x 50,
and redraws only what changed (the axes, ticks and labels are kept).

Shapes: Q test inputs, N training pairs, S sigmas on the grid.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import ipywidgets as widgets
import numpy as np
import torch
from matplotlib.artist import Artist
from matplotlib.figure import Figure
from matplotlib.ticker import FormatStrFormatter, MaxNLocator
from torch import Tensor

from .._validation import require_floating, require_ndim, require_positive, require_tensor
from ..kernel_regression import KERNELS, nadaraya_watson
from ..plotting import OKABE_ITO
from .live import LiveFigure, View


def _check_pairs(inputs: Tensor, targets: Tensor, inputs_name: str, targets_name: str) -> None:
    for name, x in ((inputs_name, inputs), (targets_name, targets)):
        require_tensor(name, x)
        require_floating(name, x)
        require_ndim(name, x, (1,), "(N,)" if name.endswith("train") else "(Q,)")
    if inputs.shape != targets.shape:
        raise ValueError(
            f"{targets_name}: expected the shape of {inputs_name} {tuple(inputs.shape)}, "
            f"got {tuple(targets.shape)}"
        )


def mean_squared_error(predictions: Tensor, targets: Tensor) -> float:
    """The mean of ``(predictions - targets) ** 2`` as a Python float.

    Shapes:
        predictions (Q,), targets (Q,) -> a float

    Taught in chapters/02_nadaraya_watson.ipynb.
    """
    if predictions.shape != targets.shape:
        raise ValueError(
            f"targets: expected the shape of predictions {tuple(predictions.shape)}, "
            f"got {tuple(targets.shape)}"
        )
    return float(((predictions - targets) ** 2).mean())


def kernel_width_state(
    x_train: Tensor,
    y_train: Tensor,
    x_test: Tensor,
    y_test: Tensor,
    sigma: float,
    kernel: str = "gaussian",
) -> dict[str, object]:
    """Everything the view draws for one ``(sigma, kernel)``.

    Args:
        x_train, y_train: the training pairs (keys and values), (N,) each.
        x_test, y_test: the test inputs (queries) and their targets, (Q,) each; the
            chapter uses the noise-free truth as ``y_test``.
        sigma: the kernel width, > 0.
        kernel: one of ``KERNELS``.

    Returns:
        A dict with ``sigma``, ``kernel``, ``predictions`` (Q,), ``weights`` (Q, N),
        ``test_mse`` and ``train_mse`` (the in-sample error: each training input
        predicted from all training pairs, itself included).

    Shapes:
        x_train, y_train (N,); x_test, y_test (Q,) -> predictions (Q,), weights (Q, N)

    Taught in chapters/02_nadaraya_watson.ipynb.
    """
    _check_pairs(x_train, y_train, "x_train", "y_train")
    _check_pairs(x_test, y_test, "x_test", "y_test")
    sigma = require_positive("sigma", sigma)
    with torch.no_grad():
        predictions, weights = nadaraya_watson(x_test, x_train, y_train, sigma, kernel)
        fitted, _ = nadaraya_watson(x_train, x_train, y_train, sigma, kernel)  # (N,)
    return {
        "sigma": sigma,
        "kernel": kernel,
        "predictions": predictions,  # (Q,)
        "weights": weights,  # (Q, N)
        "test_mse": mean_squared_error(predictions, y_test),
        "train_mse": mean_squared_error(fitted, y_train),
    }


def error_curves(
    x_train: Tensor,
    y_train: Tensor,
    x_test: Tensor,
    y_test: Tensor,
    sigmas: Sequence[float] | np.ndarray,
    kernels: Sequence[str] = KERNELS,
) -> dict[str, dict[str, np.ndarray]]:
    """In-sample (training) and test mean squared error at every sigma, for each kernel.

    Returns:
        ``{kernel: {"train": (S,), "test": (S,)}}`` as NumPy arrays.

    Shapes:
        x_train, y_train (N,); x_test, y_test (Q,); sigmas (S,) -> (S,) per curve

    Taught in chapters/02_nadaraya_watson.ipynb.
    """
    if len(sigmas) == 0:
        raise ValueError("sigmas: expected at least one kernel width, got none")
    curves: dict[str, dict[str, np.ndarray]] = {}
    for kernel in kernels:
        states = [
            kernel_width_state(x_train, y_train, x_test, y_test, float(s), kernel) for s in sigmas
        ]
        curves[kernel] = {
            split: np.array([st[f"{split}_mse"] for st in states]) for split in ("train", "test")
        }
    return curves


def cell_edges(centres: Tensor) -> np.ndarray:
    """Edges of the cells around sorted points: midpoints, padded by half a gap each end.

    Used to draw a heatmap in x coordinates (``pcolormesh``) when the points are not
    evenly spaced.

    Shapes:
        centres (N,) -> edges (N + 1,)

    Taught in chapters/02_nadaraya_watson.ipynb.
    """
    c = centres.detach().to(torch.float64).cpu().numpy()
    if c.ndim != 1 or c.size < 2 or np.any(np.diff(c) < 0):
        raise ValueError(f"centres: expected a sorted 1-D tensor of 2 or more points, got {c}")
    mid = (c[1:] + c[:-1]) / 2
    return np.concatenate([[c[0] - (mid[0] - c[0])], mid, [c[-1] + (c[-1] - mid[-1])]])


#: the slider's range, log10 of sigma, and its step
LOG10_RANGE: tuple[float, float] = (-2.0, 1.5)
LOG10_STEP = 0.05


def draw_kernel_width(
    figure: Figure,
    x_train: Tensor,
    y_train: Tensor,
    x_test: Tensor,
    y_test: Tensor,
    sigmas: np.ndarray,
    curves: dict[str, dict[str, np.ndarray]],
    stacked: bool = False,
) -> tuple[Callable[[float, str], dict[str, object]], list[Artist]]:
    """Lay out the three panels on ``figure``; return ``update(sigma, kernel)`` and the
    artists that a change of sigma alone changes (a change of kernel changes more).

    ``update`` computes :func:`kernel_width_state`, sets it on the artists and returns
    it. The panels are ``figure.axes[:3]`` (prediction, weights, errors), then the colour
    bar. ``stacked`` puts the prediction on top and the other two below it (for a
    narrow page) instead of three in a row.

    Shapes:
        x_train, y_train (N,); x_test, y_test (Q,); sigmas (S,)

    Taught in chapters/02_nadaraya_watson.ipynb.
    """
    if stacked:
        grid = figure.add_gridspec(2, 2)
        ax_fit = figure.add_subplot(grid[0, :])
        ax_w, ax_err = figure.add_subplot(grid[1, 0]), figure.add_subplot(grid[1, 1])
    else:
        ax_fit, ax_w, ax_err = figure.subplots(1, 3, width_ratios=(1.1, 1.0, 1.0))
    xs, ts = x_test.numpy(), y_test.numpy()
    ax_fit.plot(xs, ts, color=OKABE_ITO[0], label="truth")
    (pred_line,) = ax_fit.plot(xs, np.zeros_like(xs), color=OKABE_ITO[6], lw=2, label="prediction")
    ax_fit.scatter(
        x_train.numpy(), y_train.numpy(), s=12, color=OKABE_ITO[5], alpha=0.6, label="training data"
    )
    low = min(float(y_train.min()), float(y_test.min()))
    high = max(float(y_train.max()), float(y_test.max()))
    ax_fit.set(xlabel="x", ylabel="y", ylim=(low - 0.1 * (high - low), high + 0.1 * (high - low)))
    ax_fit.legend(loc="lower left", fontsize=8)

    mesh = ax_w.pcolormesh(
        cell_edges(x_train), cell_edges(x_test), np.zeros((len(xs), len(x_train))), cmap="Reds"
    )
    colorbar = figure.colorbar(mesh, ax=ax_w, label="weight", pad=0.03)
    # few, short tick labels: the layout is frozen after the first draw
    colorbar.locator = MaxNLocator(nbins=3, steps=[1, 2, 5, 10])
    colorbar.formatter = FormatStrFormatter("%g")
    ax_w.set(xlabel="training input xᵢ (key)", ylabel="test input x (query)")
    ax_w.set_title("attention weights α(x, xᵢ)", fontsize=10)
    ax_w.invert_yaxis()

    top = max(float(np.max(c[split])) for c in curves.values() for split in ("train", "test"))
    (train_line,) = ax_err.plot(sigmas, sigmas * 0, color=OKABE_ITO[2], label="training")
    (test_line,) = ax_err.plot(sigmas, sigmas * 0, color=OKABE_ITO[1], label="test")
    (marker,) = ax_err.plot([], [], "o", color=OKABE_ITO[0], ms=5, label="current σ")
    now = ax_err.axvline(1.0, color=OKABE_ITO[0], lw=0.8, ls=":")
    ax_err.set(xscale="log", xlabel="kernel width σ (log scale)", ylim=(0.0, 1.05 * top))
    ax_err.set_ylabel("mean squared error")
    ax_err.legend(loc="upper left", fontsize=8)

    seen: dict[tuple[str, float], dict[str, object]] = {}  # a value met again is looked up

    def update(sigma: float, kernel: str) -> dict[str, object]:
        key = (kernel, float(sigma))
        if key not in seen:
            if len(seen) >= 1024:  # the slider's grid is 71 widths x 4 kernels
                seen.clear()
            seen[key] = kernel_width_state(x_train, y_train, x_test, y_test, sigma, kernel)
        state = seen[key]
        s, name, weights = state["sigma"], state["kernel"], state["weights"]
        pred_line.set_ydata(state["predictions"].numpy())
        ax_fit.set_title(f"{name} kernel, σ = {s:.3g}", fontsize=10)
        mesh.set_array(weights.numpy())
        mesh.set_clim(0.0, float(weights.max()))
        train_line.set_ydata(curves[name]["train"])
        test_line.set_ydata(curves[name]["test"])
        marker.set_data([s, s], [state["train_mse"], state["test_mse"]])
        now.set_xdata([s, s])
        ax_err.set_title(
            f"test MSE {state['test_mse']:.3f}, training {state['train_mse']:.3f}", fontsize=10
        )
        return state

    # the colour bar's gradient stays; its ticks follow the largest weight
    animated = [pred_line, ax_fit.title, mesh, colorbar.ax.yaxis, now, marker]
    return update, [*animated, ax_err.title]


def build_kernel_width_view(
    x_train: Tensor,
    y_train: Tensor,
    x_test: Tensor,
    y_test: Tensor,
    sigma: float = 1.0,
    kernel: str = "gaussian",
    log10_range: tuple[float, float] = LOG10_RANGE,
    step: float = LOG10_STEP,
) -> View:
    """The interactive view: sigma on a log slider and a kernel menu, three linked panels.

    ``view.controls`` holds ``"sigma"`` (a ``FloatLogSlider``, redrawn while dragging)
    and ``"kernel"`` (a ``Dropdown``); ``view.state`` holds the last
    :func:`kernel_width_state`; the panels are ``view.figure.axes[:3]`` (prediction,
    weights, errors). ``x_train`` and ``x_test`` must be sorted (the weights are drawn in
    x coordinates).

    Shapes:
        x_train, y_train (N,); x_test, y_test (Q,)

    Taught in chapters/02_nadaraya_watson.ipynb.
    """
    lo, hi = log10_range
    if not lo < hi:
        raise ValueError(f"log10_range: expected (low, high) with low < high, got {log10_range}")
    kernel_width_state(x_train, y_train, x_test, y_test, sigma, kernel)  # validates
    sigmas = 10.0 ** np.arange(lo, hi + step / 2, step)  # (S,)
    curves = error_curves(x_train, y_train, x_test, y_test, sigmas)  # precomputed, once
    controls: dict[str, widgets.Widget] = {
        "sigma": widgets.FloatLogSlider(
            value=sigma,
            base=10,
            min=lo,
            max=hi,
            step=step,
            description="σ",
            readout_format=".3g",
            continuous_update=True,
        ),
        "kernel": widgets.Dropdown(options=list(KERNELS), value=kernel, description="kernel"),
    }
    live = LiveFigure(figsize=(10.0, 3.3), dpi=96)
    live.figure.get_layout_engine().set(w_pad=0.06, wspace=0.04)
    update_panels, animated = draw_kernel_width(
        live.figure, x_train, y_train, x_test, y_test, sigmas, curves
    )
    live.animate(*animated)
    view = View(controls, live)

    def update() -> None:
        view.state = update_panels(float(controls["sigma"].value), controls["kernel"].value)

    def new_kernel(_change: object) -> None:
        live.invalidate()  # the error curves change: draw everything
        live.redraw(update)

    controls["sigma"].observe(lambda _change: live.redraw(update), names="value")
    controls["kernel"].observe(new_kernel, names="value")
    view.curves = curves  # type: ignore[attr-defined]
    view.sigmas = sigmas  # type: ignore[attr-defined]
    live.redraw(update)
    return view


def chapter_data() -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """The data of chapters/02_nadaraya_watson.ipynb, drawn the same way from seed 0.

    ``f(x) = 2 sin(x) + x^0.8``; 50 sorted training inputs on [0, 5) with noise
    N(0, 0.5^2); test inputs 0, 0.1, ..., 4.9 with the noise-free targets.

    Returns:
        ``(x_train, y_train, x_test, y_test)``, shapes (N,), (N,), (Q,), (Q,).

    Taught in chapters/02_nadaraya_watson.ipynb.
    """
    g = torch.Generator().manual_seed(0)
    x_train, _ = torch.sort(torch.rand(50, generator=g) * 5)  # (N,)
    y_train = 2 * torch.sin(x_train) + x_train**0.8 + torch.normal(0.0, 0.5, (50,), generator=g)
    x_test = torch.arange(0, 5, 0.1)  # (Q,)
    return x_train, y_train, x_test, 2 * torch.sin(x_test) + x_test**0.8


def static_twin_frames() -> tuple[str, list[float], Callable[[float], Figure]]:
    """The site's static twin: (label, 15 log-spaced sigmas over the slider's range, draw).

    Each frame is the live view's three panels for the chapter's data and the Gaussian
    kernel, stacked to read at a page's width.

    Taught in chapters/02_nadaraya_watson.ipynb.
    """
    x_train, y_train, x_test, y_test = chapter_data()
    lo, hi = LOG10_RANGE
    sigmas = 10.0 ** np.arange(lo, hi + LOG10_STEP / 2, LOG10_STEP)  # (S,)
    curves = error_curves(x_train, y_train, x_test, y_test, sigmas, kernels=("gaussian",))

    def frame(sigma: float) -> Figure:
        figure = Figure(figsize=(6.8, 5.6), dpi=100, layout="constrained")
        update, _ = draw_kernel_width(
            figure, x_train, y_train, x_test, y_test, sigmas, curves, stacked=True
        )
        update(sigma, "gaussian")
        return figure

    values = [float(f"{v:.3g}") for v in np.logspace(lo, hi, 15)]
    return "σ (Gaussian kernel)", values, frame
