"""The head-pruning view: the frame function directly, then every control moved in Python."""

import itertools

import numpy as np
import pytest
import torch

from attention_course.views.head_pruning import build_head_pruning_view, head_pruning_frame

H, Q, K = 3, 4, 5


@pytest.fixture
def data():
    g = torch.Generator().manual_seed(0)
    weights = torch.softmax(torch.randn(H, Q, K, generator=g), dim=-1)
    # a made-up table: each pruned head costs 0.1 + 0.05 * its index
    table = {
        off: 0.95 - sum(0.1 + 0.05 * h for h in off)
        for k in range(H + 1)
        for off in itertools.combinations(range(H), k)
    }
    return weights, table


def test_frame_looks_up_the_head_and_the_pruned_set(data):
    weights, table = data
    frame = head_pruning_frame(weights, table, 2, [2, 0])
    np.testing.assert_array_equal(frame["weights"], weights[2].numpy())
    assert frame["pruned"] == (0, 2)
    assert frame["accuracy"] == pytest.approx(table[(0, 2)])
    assert frame["full_accuracy"] == pytest.approx(0.95)
    assert "pruned" in frame["title"] and "head 2" in frame["title"]
    assert "kept" in head_pruning_frame(weights, table, 1, [0])["title"]


@pytest.mark.parametrize(
    ("head", "pruned", "name"),
    [
        (3, [], "head"),
        (-1, [], "head"),
        (True, [], "head"),
        (0, [3], "pruned"),
        (0, [1, 1], "pruned"),
    ],
)
def test_frame_errors_name_the_argument(data, head, pruned, name):
    weights, table = data
    with pytest.raises(ValueError, match=f"^{name}"):
        head_pruning_frame(weights, table, head, pruned)


def test_frame_needs_the_entry(data):
    weights, table = data
    with pytest.raises(ValueError, match="^accuracies"):
        head_pruning_frame(weights, {(): 1.0}, 0, [1])
    with pytest.raises(ValueError, match="^mean_weights"):
        head_pruning_frame(weights[0], table, 0, [])


def test_controls_redraw_heatmap_and_bars(data):
    weights, table = data
    view = build_head_pruning_view(weights, table, chance=0.2)
    ax_map, ax_bar = view.figure.axes[:2]
    image = ax_map.images[0]
    bars = ax_bar.patches
    assert set(view.controls) == {"head", "prune_0", "prune_1", "prune_2"}
    np.testing.assert_allclose(image.get_array(), weights[0].numpy())
    assert [b.get_height() for b in bars] == pytest.approx([0.95, 0.95])

    def png():
        return view.live.image.value

    for h in (2, 1):
        before, before_png = np.array(image.get_array()), png()
        view.controls["head"].value = h
        assert png() != before_png, "a new picture was sent to the Image widget"
        after = np.array(image.get_array())
        assert not np.allclose(before, after), "the heatmap changed"
        np.testing.assert_allclose(after, weights[h].numpy())
        assert view.state["weights"] is not None and f"head {h}" in ax_map.get_title()

    pruned = []
    for h in (1, 0, 2):
        view.controls[f"prune_{h}"].value = True
        pruned.append(h)
        expected = table[tuple(sorted(pruned))]
        assert view.state["pruned"] == tuple(sorted(pruned))
        assert view.state["accuracy"] == pytest.approx(expected)
        assert bars[1].get_height() == pytest.approx(expected), "the pruned bar moved"
        assert bars[0].get_height() == pytest.approx(0.95), "the full-model bar stays"
    assert "none" in ax_bar.get_title()
    view.controls["prune_1"].value = False
    assert view.state["accuracy"] == pytest.approx(table[(0, 2)])
    assert "(kept)" in ax_map.get_title()  # head 1 is shown and is back
