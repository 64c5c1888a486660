"""LiveFigure: the fast PNG, blitting that shows the current state, and coalesced redraws."""

import io
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import attention_course.views.live as live_module
from attention_course.views.live import LiveFigure, encode_png

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
import sliders  # noqa: E402  (the views at their chapters' sizes)


def test_encode_png_round_trips_through_pillow():
    rng = np.random.default_rng(0)
    rgba = rng.integers(0, 256, size=(7, 11, 4), dtype=np.uint8)
    png = encode_png(rgba)
    with Image.open(io.BytesIO(png)) as image:
        assert image.size == (11, 7) and image.mode == "RGB"
        np.testing.assert_array_equal(np.asarray(image), rgba[..., :3])
    with pytest.raises(ValueError, match="rgba"):
        encode_png(rgba[..., 0])


@pytest.mark.parametrize("name", list(sliders.VIEWS))
def test_the_blitted_picture_shows_the_current_state(name):
    """After moves, the picture sent (the kept background + the animated artists) equals
    the figure drawn anew: nothing that a move changes was left out of the animated ones."""
    view = sliders.VIEWS[name]()
    moves = sliders._moves(view)
    for _ in range(7):
        control, value = next(moves)
        view.controls[control].value = value
        blitted = view.live.render().copy()
        view.live.invalidate()
        np.testing.assert_array_equal(blitted, view.live.render(), err_msg=f"after {control}")


def test_the_layout_is_frozen_after_the_first_picture():
    view = sliders.kernel_width()
    assert view.figure.get_layout_engine() is None or (
        type(view.figure.get_layout_engine()).__name__ == "PlaceHolderLayoutEngine"
    )
    box = view.figure.axes[0].get_position().bounds
    view.controls["sigma"].value = 0.05
    assert view.figure.axes[0].get_position().bounds == box


def test_browser_moves_are_coalesced_and_the_last_one_wins(monkeypatch):
    """Moves that arrive while a picture is drawn fold into one more picture, drawn with
    the values of the last move (moves from the browser run on a worker thread)."""
    monkeypatch.setattr(live_module, "_from_browser", lambda: True)
    live = LiveFigure(figsize=(2.0, 1.0), dpi=20)
    ax = live.figure.add_subplot()
    (line,) = ax.plot([0, 1], [0, 0])
    live.animate(line)
    drawn_values = []
    gate = threading.Event()

    def update(v):
        gate.wait(5)  # the first picture is slow: later moves arrive meanwhile
        line.set_ydata([0, v])
        drawn_values.append(v)

    for v in range(1, 11):
        live.redraw(lambda v=v: update(v))
    gate.set()
    deadline = time.monotonic() + 10
    while live._worker_busy and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not live._worker_busy
    assert drawn_values[-1] == 10, "the last picture shows the last move"
    assert len(drawn_values) <= 3 and live.coalesced >= 7, drawn_values
    assert live.drawn == len(drawn_values)


def test_moves_from_python_draw_at_once():
    live = LiveFigure(figsize=(2.0, 1.0), dpi=20)
    ax = live.figure.add_subplot()
    (line,) = ax.plot([0, 1], [0, 0])
    live.animate(line)
    live.redraw(lambda: line.set_ydata([0, 1]))
    assert live.drawn == 1 and live.image.value == live.png
    assert set(live.timings) == {"update", "draw", "encode"}
    first = live.png
    live.redraw(lambda: line.set_ydata([1, 0]))
    assert live.png != first


def test_a_figure_with_nothing_animated_is_drawn_whole_each_time():
    live = LiveFigure(figsize=(2.0, 1.0), dpi=20)
    ax = live.figure.add_subplot()
    (line,) = ax.plot([0, 1], [0, 0])
    ax.set_ylim(0, 1)
    live.redraw()
    first = live.png
    line.set_ydata([1, 1])  # changed outside any update function, nothing animated
    live.redraw()
    assert live.png != first, "the new state is drawn"
