"""Static twins: frames equal the view's own drawing at each value, and the HTML is offline."""

import base64
import io
import re

import ipywidgets as widgets
import numpy as np
import pytest
from matplotlib.image import imread

from attention_course.views import LiveFigure, View
from attention_course.views.static import (
    LABEL_HEIGHT,
    capture_frame,
    capture_frames,
    label_view,
    offline,
    scrubber,
    static_twin,
)

DPI = 20


def build_line_view() -> View:
    """A minimal view: y = slope * x, with an integer slider for the slope."""
    slider = widgets.IntSlider(value=1, min=0, max=4, description="slope")
    live = LiveFigure(figsize=(3.0, 2.0))
    ax = live.figure.add_subplot()
    x = np.linspace(0, 1, 5)
    (line,) = ax.plot(x, x)
    ax.set_ylim(0, 4)
    view = View({"slope": slider}, live)

    def update(_change: object = None) -> None:
        line.set_ydata(slider.value * x)
        view.state = {"slope": slider.value}
        live.redraw()

    slider.observe(update, names="value")
    update()
    return view


def embedded_frames(html: str) -> list[np.ndarray]:
    """Decode the PNG frames of a to_jshtml page (the oracle: matplotlib's own reader)."""
    chunks = re.findall(r'frames\[\d+\] = "data:image/png;base64,([^"]*)"', html)
    return [imread(io.BytesIO(base64.b64decode(c.replace("\\\n", "")))) for c in chunks]


def test_frames_are_the_figure_drawn_at_each_value():
    view = build_line_view()
    frames = capture_frames(view, "slope", [0, 2, 4], dpi=DPI)
    assert [f.shape for f in frames] == [(40, 60, 4)] * 3
    assert not np.array_equal(frames[0], frames[1]) and not np.array_equal(frames[1], frames[2])
    # oracle: set the control by hand and render the same figure (antialiasing may differ by 1)
    view.controls["slope"].value = 2
    expected = capture_frame(view.figure, DPI).astype(int)
    np.testing.assert_allclose(frames[1].astype(int), expected, atol=1)
    assert np.abs(frames[0].astype(int) - expected).max() > 50, "a different slope looks different"


def test_the_live_view_is_left_as_it_was():
    view = build_line_view()
    view.controls["slope"].value = 3
    before = view.live.output.outputs[0]["data"]["image/png"]
    capture_frames(view, "slope", [0, 1], dpi=DPI)
    assert view.controls["slope"].value == 3
    assert view.state == {"slope": 3}
    assert view.live.output.outputs[0]["data"]["image/png"] == before
    assert "redraw" not in vars(view.live), "LiveFigure.redraw must be restored"


def test_scrubber_embeds_each_frame_pixel_for_pixel_under_its_label():
    view = build_line_view()
    frames = capture_frames(view, "slope", [0, 4], dpi=DPI)
    html = scrubber(frames, ["slope = 0", "slope = 4"], dpi=DPI)
    shown = embedded_frames(html)
    assert len(shown) == 2
    for frame, png in zip(frames, shown, strict=True):
        assert png.shape == (40 + LABEL_HEIGHT, 60, 4)
        # the frame sits below the label strip, unresampled (imread gives floats in [0, 1])
        np.testing.assert_allclose(png[LABEL_HEIGHT:], frame / 255.0, atol=1 / 255)
    assert not np.array_equal(shown[0][:LABEL_HEIGHT], shown[1][:LABEL_HEIGHT]), "labels differ"


def test_static_twin_is_an_offline_scrubber():
    view = build_line_view()
    twin = static_twin(view, "slope", [0, 1, 2], dpi=DPI, label="a")
    html = twin.data
    assert 'type="range" class="anim-slider"' in html
    assert len(embedded_frames(html)) == 3
    assert "http" not in html and "<link" not in html, "the page must request nothing"
    assert 'class="fa ' not in html, "icons are text, not an icon font"


def test_offline_refuses_what_it_does_not_know():
    assert offline('<i class="fa fa-play"></i>') == "\u25b6"
    with pytest.raises(ValueError, match="html"):
        offline('<link rel="stylesheet" href="https://example.org/x.css">')


def test_bad_arguments_name_themselves():
    view = build_line_view()
    with pytest.raises(ValueError, match="control"):
        capture_frames(view, "width", [1], dpi=DPI)
    with pytest.raises(ValueError, match="values"):
        capture_frames(view, "slope", [], dpi=DPI)
    with pytest.raises(ValueError, match="dpi"):
        capture_frames(view, "slope", [1], dpi=0)
    with pytest.raises(ValueError, match="labels"):
        scrubber([np.zeros((2, 2, 4), np.uint8)], [], dpi=DPI)


def test_label_view_draws_the_label_a_slider_sets():
    slider = widgets.IntSlider(value=3, min=0, max=10)
    label = widgets.Label()

    def show(_change=None):
        label.value = f"x squared = {slider.value**2}"

    slider.observe(show, names="value")
    show()
    view = label_view(slider, label, "x")
    assert view.figure.texts[0].get_text() == "x squared = 9"
    slider.value = 7  # the oracle: the label's own callback
    assert view.figure.texts[0].get_text() == "x squared = 49" == label.value
    assert view.state == {"x": 7, "text": "x squared = 49"}
    frames = capture_frames(view, "x", [0, 10], dpi=DPI)
    assert not np.array_equal(frames[0], frames[1])
    assert label.value == "x squared = 49", "the live widgets are left as they were"
