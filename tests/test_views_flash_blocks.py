"""The flash-blocks view: measured runs against direct counts, the slider moved."""

import numpy as np
import pytest
import torch
from matplotlib.figure import Figure

from attention_course.cost import measure_allocations
from attention_course.flash import flash_attention
from attention_course.views.flash_blocks import (
    BLOCK_SIZES,
    BlockRun,
    block_state,
    build_flash_blocks_view,
    measure_block_sizes,
    static_twin_frames,
)
from attention_course.views.static import build_twin

SIZES = (1, 4, 16, 64)


@pytest.fixture(scope="module")
def measured():
    return measure_block_sizes(64, SIZES, heads=2, head_dim=8, repeats=1)


def test_measured_memory_equals_a_direct_count(measured):
    runs, references = measured
    assert [r.block_size for r in runs] == list(SIZES)
    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(1, 2, 64, 8, generator=g) for _ in range(3))
    with torch.no_grad():
        for run in runs:
            direct = measure_allocations(
                lambda b=run.block_size: flash_attention(q, k, v, block_size=b)
            )
            assert run.peak_bytes == direct.peak_bytes
    naive, fused = references
    assert naive.block_size == fused.block_size == 0
    assert naive.peak_bytes >= 2 * 64 * 64 * 4  # the (1, 2, 64, 64) weights at least
    assert fused.peak_bytes < naive.peak_bytes
    assert all(r.seconds > 0 for r in runs + references)


def test_measuring_restores_the_thread_count():
    before = torch.get_num_threads()
    runs, _ = measure_block_sizes(16, (4,), heads=1, head_dim=4, repeats=1, threads=1)
    assert torch.get_num_threads() == before and runs[0].block_size == 4


def test_block_state_picks_the_nearest_on_a_log_scale(measured):
    runs, _ = measured
    assert block_state(runs, 1)["index"] == 0
    assert block_state(runs, 7)["block_size"] == 4  # log 7 is nearer log 4 than log 16
    assert block_state(runs, 9)["block_size"] == 16
    assert block_state(runs, 5000)["block_size"] == 64
    state = block_state(runs, 16)
    assert state["peak_mib"] == runs[2].peak_bytes / 2**20
    assert state["ms"] == 1000 * runs[2].seconds


def test_moving_the_slider_moves_the_markers(measured):
    runs, references = measured
    view = build_flash_blocks_view(runs, references)
    ax_mem, ax_time = view.figure.axes
    assert view.controls["block_size"].value == 64
    np.testing.assert_allclose(ax_mem.lines[0].get_ydata(), [r.peak_bytes / 2**20 for r in runs])
    marker_mem, marker_time = ax_mem.lines[-1], ax_time.lines[-1]
    for i in (0, 2, 1):
        before = (np.copy(marker_mem.get_xdata()), view.state.get("index"))
        drawn, png = view.live.drawn, view.live.png
        view.controls["block_size"].value = SIZES[i]
        assert view.live.drawn == drawn + 1 and view.live.png != png  # one new picture
        assert view.state["index"] == i and view.state["index"] != before[1]
        assert not np.array_equal(marker_mem.get_xdata(), before[0])
        np.testing.assert_allclose(marker_mem.get_xdata(), [SIZES[i]])
        np.testing.assert_allclose(marker_mem.get_ydata(), [runs[i].peak_bytes / 2**20])
        np.testing.assert_allclose(marker_time.get_ydata(), [1000 * runs[i].seconds])
        assert f"block {SIZES[i]}:" in ax_mem.get_title()
    # the reference lines are drawn once, at the naive and fused values
    np.testing.assert_allclose(ax_mem.lines[1].get_ydata(), [references[0].peak_bytes / 2**20] * 2)


def test_static_twin_frames(monkeypatch, measured):
    import attention_course.views.flash_blocks as module

    # synthetic runs at the twin's block sizes (measuring them is the site build's job)
    runs = [BlockRun(f"block {b}", b, 2**20 + 4096 * b, 1e-3 * (2 + 64 / b)) for b in BLOCK_SIZES]
    monkeypatch.setattr(module, "_twin_runs", lambda: (runs, measured[1]))
    label, values, frame, readout = static_twin_frames()
    assert label == "block size" and len(values) >= 12
    assert values == [float(b) for b in BLOCK_SIZES] and values == sorted(values)
    figure = frame(values[2])
    assert isinstance(figure, Figure) and "block 8:" in figure.axes[0].get_title()
    assert readout(1024.0) == "block size = 1024 keys"
    twin = build_twin(module)  # the site's builder: same-size frames, each one different
    assert len(twin.frames) == len(BLOCK_SIZES) and twin.readouts[0] == "block size = 4 keys"


def test_bad_inputs_name_the_argument(measured):
    runs, _ = measured
    with pytest.raises(ValueError, match="^runs"):
        block_state([], 4)
    with pytest.raises(ValueError, match="^block_size"):
        block_state(runs, 0)
    with pytest.raises(TypeError, match="^block_size"):
        block_state(runs, "4")
    with pytest.raises(ValueError, match="^runs"):
        build_flash_blocks_view(runs[::-1])
    with pytest.raises(ValueError, match="peak_bytes"):
        BlockRun("x", 4, 10, 0.0)
