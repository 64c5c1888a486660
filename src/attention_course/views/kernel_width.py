r"""The kernel-width view: Nadaraya-Watson regression as the kernel width sigma moves.

A log-scale slider for sigma and a menu of kernels update three panels together:

1. the prediction :math:`\hat f(x)` against the truth and the training data,
2. the attention weights :math:`\alpha(x, x_i)` (test inputs against training inputs,
   drawn in x coordinates, so the bright band has a width of about sigma),
3. the training and test error against sigma, with the current sigma marked.

Nothing is trained on a move. The error curves are computed once, when the view is
built; a move evaluates one (Q, N) softmax, a fraction of a millisecond for 50 x 50.

Shapes: Q test inputs, N training pairs, S sigmas on the grid.
"""

from __future__ import annotations

from collections.abc import Sequence

import ipywidgets as widgets
import numpy as np
import torch
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


def build_kernel_width_view(
    x_train: Tensor,
    y_train: Tensor,
    x_test: Tensor,
    y_test: Tensor,
    sigma: float = 1.0,
    kernel: str = "gaussian",
    log10_range: tuple[float, float] = (-2.0, 1.5),
    step: float = 0.05,
) -> View:
    """The interactive view: sigma on a log slider and a kernel menu, three linked panels.

    ``view.controls`` holds ``"sigma"`` (a ``FloatLogSlider``) and ``"kernel"`` (a
    ``Dropdown``); ``view.state`` holds the last :func:`kernel_width_state`; the panels
    are ``view.figure.axes[:3]`` (prediction, weights, errors). ``x_train`` and
    ``x_test`` must be sorted (the weights are drawn in x coordinates).

    Shapes:
        x_train, y_train (N,); x_test, y_test (Q,)

    Taught in chapters/02_nadaraya_watson.ipynb.
    """
    lo, hi = log10_range
    if not lo < hi:
        raise ValueError(f"log10_range: expected (low, high) with low < high, got {log10_range}")
    first = kernel_width_state(x_train, y_train, x_test, y_test, sigma, kernel)  # validates
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
            continuous_update=False,  # redraw on release
        ),
        "kernel": widgets.Dropdown(options=list(KERNELS), value=kernel, description="kernel"),
    }
    live = LiveFigure(figsize=(12.0, 3.6))
    ax_fit, ax_w, ax_err = live.figure.subplots(1, 3, width_ratios=(1.15, 1.0, 1.0))
    xs, ts = x_test.numpy(), y_test.numpy()

    ax_fit.plot(xs, ts, color=OKABE_ITO[0], label="truth")
    (pred_line,) = ax_fit.plot(
        xs, first["predictions"].numpy(), color=OKABE_ITO[6], lw=2, label="prediction"
    )
    ax_fit.scatter(
        x_train.numpy(), y_train.numpy(), s=12, color=OKABE_ITO[5], alpha=0.6, label="training data"
    )
    ax_fit.set(xlabel="x", ylabel="y")
    ax_fit.legend(loc="lower left", fontsize=8)

    mesh = ax_w.pcolormesh(
        cell_edges(x_train), cell_edges(x_test), first["weights"].numpy(), cmap="Reds", vmin=0.0
    )
    colorbar = live.figure.colorbar(mesh, ax=ax_w, label="attention weight")
    # few, short tick labels: the layout is frozen after the first draw
    colorbar.locator = MaxNLocator(nbins=3, steps=[1, 2, 5, 10])
    colorbar.formatter = FormatStrFormatter("%g")
    ax_w.set(
        xlabel="training input xᵢ (key)",
        ylabel="test input x (query)",
        title="attention weights α(x, xᵢ)",
    )
    ax_w.invert_yaxis()

    top = max(float(np.max(c[split])) for c in curves.values() for split in ("train", "test"))
    (train_line,) = ax_err.plot(
        sigmas, curves[kernel]["train"], color=OKABE_ITO[2], label="training (in-sample)"
    )
    (test_line,) = ax_err.plot(
        sigmas, curves[kernel]["test"], color=OKABE_ITO[1], label="test (vs truth)"
    )
    (marker,) = ax_err.plot([], [], "o", color=OKABE_ITO[0], ms=5, label="current σ")
    now = ax_err.axvline(sigma, color=OKABE_ITO[0], lw=0.8, ls=":")
    ax_err.set(
        xscale="log",
        xlabel="kernel width σ (log scale)",
        ylabel="mean squared error",
        ylim=(0.0, 1.05 * top),
    )
    ax_err.legend(loc="upper left", fontsize=8)
    view = View(controls, live)

    def update(_change: object = None) -> None:
        state = kernel_width_state(
            x_train,
            y_train,
            x_test,
            y_test,
            float(controls["sigma"].value),
            controls["kernel"].value,
        )
        s, name, weights = state["sigma"], state["kernel"], state["weights"]
        pred_line.set_ydata(state["predictions"].numpy())
        ax_fit.set_title(f"{name} kernel, σ = {s:.3g}")
        mesh.set_array(weights.numpy())
        mesh.set_clim(0.0, float(weights.max()))
        train_line.set_ydata(curves[name]["train"])
        test_line.set_ydata(curves[name]["test"])
        marker.set_data([s, s], [state["train_mse"], state["test_mse"]])
        now.set_xdata([s, s])
        ax_err.set_title(f"test MSE {state['test_mse']:.3f}, training {state['train_mse']:.3f}")
        view.state = state
        live.redraw()

    for control in controls.values():
        control.observe(update, names="value")
    view.curves = curves  # type: ignore[attr-defined]
    view.sigmas = sigmas  # type: ignore[attr-defined]
    update()
    live.figure.set_layout_engine("none")  # keep the first layout: redraws are faster
    return view
