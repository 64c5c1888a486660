"""The entropy-alpha view: pure functions against the package entropy, the slider moved."""

import math

import numpy as np
import pytest
import torch

from attention_course import attention_entropy
from attention_course.views.entropy_alpha import (
    AlphaRun,
    build_entropy_alpha_view,
    entropy_alpha_state,
    nearest_run,
    row_entropy,
)

H, Q, K = 3, 4, 6
ALPHAS = [0.0, 0.5, 1.0, 1.5, math.log(K)]


@pytest.fixture
def runs():
    """Synthetic runs: softmax rows that get flatter as alpha grows."""
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(H, Q, K, generator=g) * 4
    out = []
    for i, a in enumerate(ALPHAS):
        w = torch.softmax(logits / (0.2 + 4 * a), dim=-1).double()  # (H, Q, K)
        out.append(
            AlphaRun(
                alpha=a,
                weights=w.numpy(),
                mean_entropy=float(attention_entropy(w).mean()),
                task_loss=0.1 + 0.05 * i**2,
            )
        )
    return out


def test_row_entropy_matches_the_package(runs):
    for run in runs:
        expected = attention_entropy(torch.from_numpy(run.weights)).numpy()
        np.testing.assert_allclose(row_entropy(run.weights), expected, atol=1e-12)
    np.testing.assert_allclose(row_entropy(np.eye(K)), np.zeros(K))
    np.testing.assert_allclose(row_entropy(np.full((2, K), 1 / K)), [math.log(K)] * 2)


def test_nearest_run_and_state(runs):
    assert nearest_run(runs, 0.0) == 0
    assert nearest_run(runs, 0.74) == 1
    assert nearest_run(runs, 0.76) == 2
    assert nearest_run(runs, math.log(K)) == len(runs) - 1
    state = entropy_alpha_state(runs, 1.1)
    assert state["index"] == 2 and state["alpha"] == 1.0
    np.testing.assert_array_equal(state["weights"], runs[2].weights)
    np.testing.assert_allclose(state["row_entropy"], row_entropy(runs[2].weights))
    assert state["task_loss"] == runs[2].task_loss


def test_moving_alpha_redraws_every_panel(runs):
    targets = np.array([0, 2, 5, 1])
    view = build_entropy_alpha_view(runs, targets=targets, baseline=runs[2])
    axes = view.figure.axes
    images = [axes[h].images[0] for h in range(H)]
    h_marker, loss_marker = axes[H].lines[-1], axes[H + 1].lines[-1]
    np.testing.assert_allclose(images[0].get_array(), runs[0].weights[0])
    assert view.state["index"] == 0

    for i in (3, 1, len(runs) - 1):
        before = [np.asarray(im.get_array()).copy() for im in images]
        before_state = dict(view.state)
        view.controls["alpha"].value = ALPHAS[i]
        assert view.state["index"] == i and view.state["index"] != before_state["index"]
        for h, image in enumerate(images):
            drawn = np.asarray(image.get_array())
            assert not np.allclose(drawn, before[h]), "the heatmap did not change"
            np.testing.assert_allclose(drawn, runs[i].weights[h])
            assert f"{row_entropy(runs[i].weights[h]).mean():.2f}" in axes[h].get_title()
        np.testing.assert_allclose(h_marker.get_xdata(), [ALPHAS[i]])
        np.testing.assert_allclose(h_marker.get_ydata(), [runs[i].mean_entropy])
        np.testing.assert_allclose(loss_marker.get_ydata(), [runs[i].task_loss])
        assert view.state["mean_entropy"] == runs[i].mean_entropy
    # the grid curves are drawn once and do not move
    np.testing.assert_allclose(axes[H].lines[1].get_ydata(), [r.mean_entropy for r in runs])
    np.testing.assert_allclose(axes[H + 1].lines[0].get_ydata(), [r.task_loss for r in runs])
    np.testing.assert_array_equal(axes[0].lines[0].get_xdata(), targets)


def test_the_starting_alpha_picks_the_nearest_run(runs):
    view = build_entropy_alpha_view(runs, alpha=1.45)
    assert view.controls["alpha"].value == 1.5
    np.testing.assert_allclose(view.figure.axes[1].images[0].get_array(), runs[3].weights[1])


def test_bad_inputs_name_the_argument(runs):
    good = runs[0].weights
    with pytest.raises(ValueError, match="weights"):
        AlphaRun(0.1, good[0], 0.0, 0.0)
    with pytest.raises(ValueError, match="weights"):
        AlphaRun(0.1, good * 2, 0.0, 0.0)
    with pytest.raises(ValueError, match="alpha"):
        AlphaRun(math.log(K) + 0.01, good, 0.0, 0.0)
    with pytest.raises(ValueError, match="alpha"):
        nearest_run(runs, -0.5)
    with pytest.raises(TypeError, match="alpha"):
        nearest_run(runs, "1.0")
    with pytest.raises(ValueError, match="runs"):
        nearest_run([], 0.0)
    with pytest.raises(ValueError, match="runs"):
        build_entropy_alpha_view(runs[::-1])
    with pytest.raises(ValueError, match="targets"):
        build_entropy_alpha_view(runs, targets=[0, 1])
