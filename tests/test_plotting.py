import matplotlib
import numpy as np
import pytest
import torch

from attention_course import show_heatmaps


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    matplotlib.pyplot.close("all")


def test_grid_contract_and_colour_bar():
    weights = torch.softmax(torch.randn(2, 3, 4, 5), dim=-1)
    before = dict(matplotlib.rcParams)
    fig = show_heatmaps(weights, "Keys", "Queries", titles=["h1", "h2", "h3"])
    assert isinstance(fig, matplotlib.figure.Figure)
    images = [ax for ax in fig.axes if ax.images]
    assert len(images) == 6  # rows x cols heatmaps
    assert len(fig.axes) == 7  # plus one colour bar
    np.testing.assert_allclose(images[4].images[0].get_array(), weights[1, 1].numpy())
    assert images[3].get_xlabel() == "Keys" and images[0].get_ylabel() == "Queries"
    assert [ax.get_title() for ax in images[:3]] == ["h1", "h2", "h3"]
    assert dict(matplotlib.rcParams) == before


def test_accepts_numpy_and_grad_tensors_and_shares_the_colour_scale():
    fig = show_heatmaps(np.eye(4)[None, None], "Keys", "Queries")
    assert fig.axes[0].images[0].get_clim() == (0.0, 1.0)
    w = torch.rand(1, 2, 3, 3, requires_grad=True)
    fig = show_heatmaps(w * 2, "k", "q", cmap="viridis")
    lo, hi = fig.axes[0].images[0].get_clim()
    expected = (w * 2).detach()
    assert lo == pytest.approx(expected.min().item()) and hi == pytest.approx(expected.max().item())
    assert fig.axes[0].images[0].get_cmap().name == "viridis"


def test_errors():
    with pytest.raises(
        ValueError, match=r"matrices: expected a \(rows, cols, Q, K\) grid, got shape \(4, 4\)"
    ):
        show_heatmaps(torch.eye(4), "k", "q")
    with pytest.raises(ValueError, match="titles: expected 2 titles"):
        show_heatmaps(torch.rand(1, 2, 3, 3), "k", "q", titles=["a"])
    with pytest.raises(
        TypeError, match="matrices: expected a torch.Tensor or numpy.ndarray, got list"
    ):
        show_heatmaps([[[[1.0]]]], "k", "q")


def test_each_way_of_showing_a_heatmap_shows_it_exactly_once(tmp_path):
    """Run in a real kernel: as a cell's last value, with plt.show(), and with neither."""
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    setup = (
        "%matplotlib inline\nimport torch, matplotlib.pyplot as plt\n"
        "from attention_course import show_heatmaps\nw = torch.eye(3)[None, None]"
    )
    cells = [
        setup,
        'show_heatmaps(w, "Keys", "Queries")',
        'fig = show_heatmaps(w, "Keys", "Queries")\nplt.show()',
        'fig = show_heatmaps(w, "Keys", "Queries")',
        'fig = show_heatmaps(w, "Keys", "Queries")\nfig.axes[0].set_title("t")\nplt.show()',
    ]
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    nbclient.NotebookClient(nb, timeout=120, kernel_name="python3").execute()
    for cell in nb.cells[1:]:
        images = [o for o in cell.outputs if "image/png" in o.get("data", {})]
        assert len(images) == 1, f"{cell.source!r} showed {len(images)} images"
        assert "<Figure size" in images[0]["data"]["text/plain"]
