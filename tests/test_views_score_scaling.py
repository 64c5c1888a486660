"""Tests of the sqrt(d) scaling view: its pure functions against oracles, then its controls."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from attention_course.views.score_scaling import (
    DIMENSIONS,
    SCALINGS,
    build_score_scaling_view,
    sample_dot_products,
    scale_factor,
    scaling_table,
    score_statistics,
    softmax_jacobian_norm,
)


@pytest.fixture(scope="module")
def table():
    return scaling_table(dims=(1, 4, 16, 64, 256), num_queries=256, num_keys=8, seed=0)


def test_scale_factor_values_and_errors():
    assert scale_factor(64, "none") == 1.0
    assert scale_factor(64, "1/sqrt(d)") == pytest.approx(1 / 8)
    assert scale_factor(64, "1/d") == pytest.approx(1 / 64)
    with pytest.raises(ValueError, match="scaling"):
        scale_factor(64, "sqrt")
    with pytest.raises(ValueError, match="d: expected a positive integer"):
        scale_factor(0, "none")


def test_dot_products_have_variance_d():
    for d in (1, 16, 256):
        scores = sample_dot_products(d, num_queries=2000, num_keys=8, seed=1)
        assert scores.shape == (2000, 8)
        # Var(q.k) = d; the 8 keys of a query share q, so allow 15%
        assert scores.var().item() == pytest.approx(d, rel=0.15), d
        assert scores.mean().item() == pytest.approx(0.0, abs=0.1 * math.sqrt(d))
    assert torch.equal(sample_dot_products(8, 4, 3, seed=5), sample_dot_products(8, 4, 3, seed=5))
    with pytest.raises(ValueError, match="num_keys"):
        sample_dot_products(8, 4, 0)


def test_jacobian_norm_matches_autograd():
    g = torch.Generator().manual_seed(0)
    for scale in (0.1, 1.0, 10.0):
        s = torch.randn(6, generator=g, dtype=torch.float64) * scale
        jac = torch.autograd.functional.jacobian(lambda x: torch.softmax(x, -1), s)  # (K, K)
        expected = torch.linalg.matrix_norm(jac)  # Frobenius
        got = softmax_jacobian_norm(torch.softmax(s, -1))
        torch.testing.assert_close(got, expected)
    uniform = torch.full((3, 16), 1 / 16)
    torch.testing.assert_close(
        softmax_jacobian_norm(uniform), torch.full((3,), math.sqrt(1 / 16 - 1 / 256))
    )
    # nearly one-hot float32 rows: no cancellation, agrees with the float64 Jacobian
    s32 = torch.tensor([30.0, 20.0, 12.0, 0.0])
    jac64 = torch.autograd.functional.jacobian(lambda x: torch.softmax(x, -1), s32.double())
    torch.testing.assert_close(
        softmax_jacobian_norm(torch.softmax(s32, -1)).double(),
        torch.linalg.matrix_norm(jac64),
        rtol=1e-4,
        atol=0,
    )
    one_hot = torch.eye(5)
    torch.testing.assert_close(softmax_jacobian_norm(one_hot), torch.zeros(5))
    with pytest.raises(TypeError, match="weights"):
        softmax_jacobian_norm(torch.ones(3, dtype=torch.long))


def test_score_statistics_against_direct_computation():
    scores = torch.tensor([[0.0, 0.0, 0.0, 0.0], [10.0, 0.0, 0.0, 0.0]])
    stats = score_statistics(scores)
    p = torch.softmax(scores, -1)
    assert stats["variance"] == pytest.approx(scores.var().item())
    assert stats["max_weight"] == pytest.approx(p.max(-1).values.mean().item())
    entropy = -(p * p.log()).sum(-1).mean().item()
    assert stats["entropy"] == pytest.approx(entropy, rel=1e-5)
    assert stats["grad_norm"] == pytest.approx(softmax_jacobian_norm(p).mean().item())
    with pytest.raises(ValueError, match="scores"):
        score_statistics(torch.zeros(3))


def test_table_shows_saturation_without_scaling_and_none_with_it(table):
    none, sqrt = table.stats["none"], table.stats["1/sqrt(d)"]
    # unscaled: variance ~ d, the softmax saturates and its gradient vanishes as d grows
    np.testing.assert_allclose(none["variance"], table.dims, rtol=0.15)
    assert none["max_weight"][-1] > 0.9 and none["grad_norm"][-1] < 0.1
    # scaled by 1/sqrt(d): variance ~ 1 for every d, the statistics stay put
    np.testing.assert_allclose(sqrt["variance"], 1.0, rtol=0.15)
    assert np.ptp(sqrt["max_weight"]) < 0.1 and sqrt["grad_norm"].min() > 0.25
    # scaled by 1/d: the weights flatten towards uniform 1/K
    assert table.stats["1/d"]["max_weight"][-1] < 1.5 / 8


def test_view_controls_change_drawn_data_and_match_direct_computation(table):
    view = build_score_scaling_view(table)
    assert set(view.controls) == {"d", "scaling"}
    ax_hist, ax_bar, ax_curve = view.figure.axes
    max_line, grad_line = ax_curve.get_lines()[:2]

    def drawn():
        return (
            [b.get_height() for b in ax_bar.patches],
            max_line.get_ydata().copy(),
            dict(view.state),
        )

    def expect_matches_direct(d, scaling):
        scores = table.raw[d] * scale_factor(d, scaling)
        direct = score_statistics(scores)
        for name, value in direct.items():
            assert view.state[name] == pytest.approx(value, rel=1e-5), name
        weights = torch.sort(torch.softmax(scores[0], -1), descending=True).values
        np.testing.assert_allclose(
            [b.get_height() for b in ax_bar.patches][: len(weights)], weights.numpy(), rtol=1e-6
        )
        np.testing.assert_allclose(
            max_line.get_ydata(),
            [
                score_statistics(table.raw[e] * scale_factor(e, scaling))["max_weight"]
                for e in table.dims
            ],
            rtol=1e-5,
        )
        assert view.state["variance"] == pytest.approx(scores.var().item(), rel=1e-5)

    view.controls["scaling"].value = "none"
    view.controls["d"].value = 4
    before = drawn()
    expect_matches_direct(4, "none")

    png_before = view.live.png
    view.controls["d"].value = 256
    after_d = drawn()
    assert view.live.image.value == view.live.png, "each redraw replaces the picture"
    assert view.live.png != png_before
    assert view.state["d"] == 256
    assert after_d[2]["variance"] > 10 * before[2]["variance"]
    assert after_d[0] != before[0]
    expect_matches_direct(256, "none")

    view.controls["scaling"].value = "1/sqrt(d)"
    after_scaling = drawn()
    assert view.state["scaling"] == "1/sqrt(d)"
    assert after_scaling[2]["variance"] < after_d[2]["variance"] / 10
    assert not np.allclose(after_scaling[1], after_d[1])
    assert grad_line.get_ydata()[-1] > 0.25
    expect_matches_direct(256, "1/sqrt(d)")
    # the marker follows the slider
    assert list(ax_curve.get_lines()[2].get_xdata()) == [256, 256]


def test_default_view_uses_all_dimensions():
    assert DIMENSIONS[0] == 1 and DIMENSIONS[-1] == 1024
    assert SCALINGS == ("none", "1/sqrt(d)", "1/d")
