"""Tests of the position-similarity view: pure functions against direct sums, then controls."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from matplotlib.figure import Figure

from attention_course.position import apply_rotary, sinusoidal_encoding
from attention_course.views.position_similarity import (
    MAX_OFFSET,
    added_scores,
    build_position_similarity_view,
    pair_similarity,
    rotary_scores,
    similarity_table,
    sinusoid_similarity,
    static_twin_frames,
)


@pytest.fixture(scope="module")
def table():
    return similarity_table(num_hiddens=16, max_offset=20, query_positions=(0, 3, 9), seed=1)


def test_similarity_is_the_dot_product_of_table_rows_for_every_start():
    d, offsets = 16, torch.arange(12)
    P = sinusoidal_encoding(40, d, dtype=torch.float64)  # (T, d)
    expected = sinusoid_similarity(offsets, d)
    for t in (0, 5, 27):
        direct = (P[t] * P[t + offsets]).sum(-1) / (d / 2)  # P_t . P_{t+k} / (d/2)
        torch.testing.assert_close(direct, expected)
    assert expected[0].item() == pytest.approx(1.0)
    assert (expected[1:] < 1).all()


def test_pair_similarity_is_the_cosine_of_the_turned_angle():
    d, offsets = 16, torch.arange(10)
    P = sinusoidal_encoding(20, d, dtype=torch.float64)
    for i in (0, 3, 7):
        pair = P[:, 2 * i : 2 * i + 2]  # (T, 2): (sin, cos) of pair i
        direct = (pair[4] * pair[4 + offsets]).sum(-1)  # unit vectors: cos of the angle between
        torch.testing.assert_close(pair_similarity(offsets, d, i), direct)
    with pytest.raises(ValueError, match=r"index: expected a pair index in \[0, 8\)"):
        pair_similarity(offsets, d, 8)


def test_scores_against_direct_computation():
    g = torch.Generator().manual_seed(0)
    q, k = torch.randn(2, 8, generator=g, dtype=torch.float64)
    positions, offsets = torch.tensor([0, 4, 11]), torch.arange(6)
    rot = rotary_scores(q, k, positions, offsets)
    add = added_scores(q, k, positions, offsets)
    P = sinusoidal_encoding(30, 8, dtype=torch.float64)
    for a, m in enumerate(positions.tolist()):
        for b, o in enumerate(offsets.tolist()):
            qm = apply_rotary(q[None], torch.tensor([m]))[0]
            kn = apply_rotary(k[None], torch.tensor([m + o]))[0]
            assert rot[a, b].item() == pytest.approx((qm @ kn).item(), abs=1e-12)
            assert add[a, b].item() == pytest.approx(((q + P[m]) @ (k + P[m + o])).item())
    # rotary depends on the offset only; added sinusoids do not
    assert np.ptp(rot.numpy(), axis=0).max() < 1e-12
    assert np.ptp(add.numpy(), axis=0).max() > 0.1


def test_view_controls_change_drawn_data_and_match_direct_computation(table):
    view = build_position_similarity_view(table)
    assert set(view.controls) == {"offset k", "frequency i"}
    ax_circle, ax_sim, ax_score = view.figure.axes[:3]
    pair_line = ax_sim.get_lines()[1]
    moved = ax_circle.get_lines()[3]

    view.controls["frequency i"].value = 1
    view.controls["offset k"].value = 3
    first = dict(view.state)
    omega = 10000 ** (-2 / 16)
    assert first["angle"] == pytest.approx(3 * omega)
    np.testing.assert_allclose(moved.get_xydata()[1], [np.sin(3 * omega), np.cos(3 * omega)])
    np.testing.assert_allclose(pair_line.get_ydata(), np.cos(np.arange(21) * omega))
    assert first["similarity"] == pytest.approx(sinusoid_similarity(torch.tensor([3]), 16).item())
    assert first["pair_similarity"] == pytest.approx(np.cos(3 * omega))
    np.testing.assert_allclose(first["rotary"], table.rotary[:, 3])
    np.testing.assert_allclose(first["added"], table.added[:, 3])
    assert np.ptp(first["rotary"]) < 1e-12 < np.ptp(first["added"])

    png, drawn = view.live.png, view.live.drawn
    view.controls["offset k"].value = 17
    assert view.live.drawn == drawn + 1, "one picture per move"
    assert view.live.png != png, "the picture changed"
    second = dict(view.state)
    assert second["offset"] == 17 and second["similarity"] != first["similarity"]
    assert list(ax_sim.get_lines()[2].get_xdata()) == [17, 17]  # the marker follows k
    assert second["angle"] == pytest.approx(17 * omega)

    view.controls["frequency i"].value = 0
    third = dict(view.state)
    assert third["angle"] == pytest.approx(17.0)  # pair 0 turns 1 rad per step
    np.testing.assert_allclose(pair_line.get_ydata(), np.cos(np.arange(21.0)))
    assert third["similarity"] == second["similarity"]  # the mean over pairs does not change


def test_default_table_and_static_twin():
    table = similarity_table()
    assert table.offsets[-1] == MAX_OFFSET and table.num_hiddens == 32
    label, values, frame = static_twin_frames()
    assert label == "offset k"
    assert len(values) >= 12 and values[0] == 0 and values[-1] == MAX_OFFSET
    assert values == sorted(values)
    figure = frame(values[3])
    assert isinstance(figure, Figure)
    assert "k = 15" in figure.axes[1].get_title()
    with pytest.raises(ValueError, match="max_offset"):
        similarity_table(max_offset=0)
