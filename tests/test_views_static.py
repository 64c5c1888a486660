"""Static twins: frames equal the view's own drawing at each value, and the HTML is offline."""

import base64
import io
import re

import ipywidgets as widgets
import numpy as np
import pytest
from matplotlib.figure import Figure
from matplotlib.image import imread

from attention_course.views import LiveFigure, View
from attention_course.views.static import (
    LABEL_HEIGHT,
    MIN_FRAMES,
    TEXT_FLOOR_PX,
    build_twin,
    capture_frame,
    capture_frames,
    label_view,
    make_legible,
    offline,
    scrubber,
    smallest_text_px,
    static_twin,
    twin_html,
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
    before = view.live.png
    capture_frames(view, "slope", [0, 1], dpi=DPI)
    assert view.controls["slope"].value == 3
    assert view.state == {"slope": 3}
    assert view.live.png == before


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


class LineTwin:
    """A view module's stand-in: ``static_twin_frames`` over slopes 0 ... n - 1."""

    __name__ = "line_twin"

    def __init__(self, n=MIN_FRAMES, readout=None, same=False):
        self.n, self.readout, self.same = n, readout, same

    def static_twin_frames(self):
        def draw(slope):
            figure = Figure(figsize=(2.0, 1.5), dpi=50)
            ax = figure.add_subplot()
            ax.plot([0, 1], [0, 0 if self.same else slope])
            ax.set(ylim=(0, self.n), title="line")
            ax.title.set_fontsize(14)
            ax.tick_params(labelsize=9)
            return figure

        parts = ("slope", [float(i) for i in range(self.n)], draw)
        return parts if self.readout is None else (*parts, self.readout)


def test_build_twin_draws_one_distinct_frame_per_value():
    twin = build_twin(LineTwin())
    assert twin.label == "slope" and twin.values == tuple(float(i) for i in range(MIN_FRAMES))
    assert twin.readouts[3] == "slope = 3"
    assert twin.size == (100, 75)
    assert len(set(twin.frames)) == MIN_FRAMES, "every frame differs"
    frames = [imread(io.BytesIO(png)) for png in twin.frames]
    assert frames[0].shape[:2] == (75, 100)
    # the 9-pt tick labels (6.25 px at 50 dpi) are raised to the live view's smallest text
    assert twin.min_text_px == pytest.approx(TEXT_FLOOR_PX, abs=0.01)
    custom = build_twin(LineTwin(readout=lambda v: f"steep {v:g}"))
    assert custom.readouts[2] == "steep 2"


def test_build_twin_refuses_too_few_or_repeated_frames():
    with pytest.raises(ValueError, match="at least 12"):
        build_twin(LineTwin(n=5))
    with pytest.raises(ValueError, match="same"):
        build_twin(LineTwin(same=True))


def test_twin_html_is_a_labelled_range_over_the_frames():
    twin = build_twin(LineTwin())
    urls = [f"../twins/line-{k:02d}.png" for k in range(MIN_FRAMES)]
    page = twin_html(twin, urls, "twin-x-1")
    assert '<label for="twin-x-1-range">slope</label>' in page
    assert 'type="range" id="twin-x-1-range" min="0" max="11" step="1" value="5"' in page
    assert "<output" in page and "slope = 5</output>" in page
    assert 'src="../twins/line-05.png" width="100" height="75"' in page
    assert f'data-min-text-px="{twin.min_text_px}"' in page
    assert "http" not in page and "<link" not in page, "the page must request nothing"
    assert "Loop" not in page and "anim-" not in page, "no movie buttons"
    with pytest.raises(ValueError, match="urls"):
        twin_html(twin, urls[:-1], "twin-x-1")
    with pytest.raises(ValueError, match="element_id"):
        twin_html(twin, urls, "1 bad")


def test_smallest_text_px_reads_the_fonts():
    figure = Figure(figsize=(2, 2), dpi=100)
    figure.text(0.1, 0.1, "big", fontsize=20)
    figure.text(0.5, 0.5, "small", fontsize=7.2)
    figure.text(0.5, 0.9, "", fontsize=1)  # empty: not shown
    assert smallest_text_px(figure) == pytest.approx(10.0)


def test_make_legible_raises_small_text_to_the_floor_at_page_width():
    figure = Figure(figsize=(10.0, 3.0), dpi=100)  # 1000 px, shown at 680 px on a page
    ax = figure.add_subplot()
    ax.plot([0, 1], [0, 1])
    ax.set_title("small", fontsize=6)
    ax.tick_params(labelsize=6)
    big = figure.text(0.5, 0.5, "big", fontsize=20)
    assert make_legible(figure, width_px=680, floor_px=10.0) >= 2
    floor_pt = 10.0 * 72 / (100 * 0.68)
    figure.canvas.draw()
    assert ax.title.get_fontsize() == pytest.approx(floor_pt)
    assert ax.xaxis.get_ticklabels()[0].get_fontsize() == pytest.approx(floor_pt)
    assert big.get_fontsize() == 20, "large text is left alone"
    assert smallest_text_px(figure) * 0.68 == pytest.approx(10.0)
