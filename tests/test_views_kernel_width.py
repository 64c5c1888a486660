"""The kernel-width view: pure functions against a NumPy oracle, controls moved in Python."""

import numpy as np
import pytest
import torch

from attention_course.views.kernel_width import (
    build_kernel_width_view,
    cell_edges,
    error_curves,
    kernel_width_state,
    mean_squared_error,
)


def truth(x):
    return 2 * torch.sin(x) + x**0.8


@pytest.fixture
def data():
    g = torch.Generator().manual_seed(0)
    x_train = torch.sort(torch.rand(30, generator=g) * 5).values
    y_train = truth(x_train) + 0.5 * torch.randn(30, generator=g)
    x_test = torch.arange(0, 5, 0.25)
    return x_train, y_train, x_test, truth(x_test)


def oracle(x_query, x_train, y_train, sigma, kernel):
    """Nadaraya-Watson written out in float64 NumPy: sum_i K_i y_i / sum_j K_j."""
    u = (x_query.double().numpy()[:, None] - x_train.double().numpy()[None, :]) / sigma
    K = {
        "gaussian": np.exp(-(u**2) / 2),
        "boxcar": (np.abs(u) <= 1).astype(float),
        "epanechnikov": np.clip(1 - u**2, 0, None),
        "constant": np.ones_like(u),
    }[kernel]
    assert (K.sum(1) > 0).all(), "oracle: pick a sigma with a key in every window"
    weights = K / K.sum(1, keepdims=True)
    return weights @ y_train.double().numpy(), weights


@pytest.mark.parametrize("kernel", ["gaussian", "boxcar", "epanechnikov", "constant"])
def test_state_matches_numpy_oracle(data, kernel):
    x_train, y_train, x_test, y_test = data
    state = kernel_width_state(x_train, y_train, x_test, y_test, 0.9, kernel)
    pred, weights = oracle(x_test, x_train, y_train, 0.9, kernel)
    fitted, _ = oracle(x_train, x_train, y_train, 0.9, kernel)
    np.testing.assert_allclose(state["predictions"].numpy(), pred, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(state["weights"].numpy(), weights, rtol=1e-5, atol=1e-6)
    assert state["test_mse"] == pytest.approx(np.mean((pred - y_test.numpy()) ** 2), rel=1e-4)
    assert state["train_mse"] == pytest.approx(np.mean((fitted - y_train.numpy()) ** 2), rel=1e-4)


def test_the_two_limits(data):
    x_train, y_train, x_test, y_test = data
    wide = kernel_width_state(x_train, y_train, x_test, y_test, 1e4, "gaussian")
    torch.testing.assert_close(wide["predictions"], y_train.mean().expand(len(x_test)))
    narrow = kernel_width_state(x_train, y_train, x_test, y_test, 1e-3, "boxcar")
    nearest = (x_test[:, None] - x_train[None, :]).abs().argmin(1)
    torch.testing.assert_close(narrow["predictions"], y_train[nearest])
    assert narrow["train_mse"] == pytest.approx(0.0, abs=1e-10), "in-sample: each point sees itself"


def test_error_curves_are_the_states_at_each_sigma(data):
    sigmas = [0.1, 0.5, 2.0]
    curves = error_curves(*data, sigmas, kernels=("gaussian", "epanechnikov"))
    assert set(curves) == {"gaussian", "epanechnikov"}
    for kernel, c in curves.items():
        for i, s in enumerate(sigmas):
            state = kernel_width_state(*data, s, kernel)
            assert c["test"][i] == pytest.approx(state["test_mse"])
            assert c["train"][i] == pytest.approx(state["train_mse"])
    # the in-sample error only grows with sigma for the Gaussian kernel here
    assert np.all(np.diff(curves["gaussian"]["train"]) > 0)


def test_sigma_slider_redraws_every_panel(data):
    x_train, y_train, x_test, y_test = data
    view = build_kernel_width_view(*data, sigma=1.0)
    ax_fit, ax_w, ax_err = view.figure.axes[:3]
    pred_line, mesh = ax_fit.lines[1], ax_w.collections[0]
    before_pred = pred_line.get_ydata().copy()
    before_w = np.asarray(mesh.get_array()).copy()
    before_mse = view.state["test_mse"]
    before_png = view.live.png

    view.controls["sigma"].value = 0.2
    assert view.live.png != before_png, "picture not redrawn"
    expected_pred, expected_w = oracle(x_test, x_train, y_train, 0.2, "gaussian")
    assert not np.allclose(pred_line.get_ydata(), before_pred)
    assert not np.allclose(np.asarray(mesh.get_array()), before_w)
    assert view.state["test_mse"] != pytest.approx(before_mse)
    np.testing.assert_allclose(pred_line.get_ydata(), expected_pred, atol=1e-5)
    np.testing.assert_allclose(
        np.asarray(mesh.get_array()).reshape(expected_w.shape), expected_w, atol=1e-6
    )
    assert view.state["test_mse"] == pytest.approx(
        np.mean((expected_pred - y_test.numpy()) ** 2), rel=1e-4
    )
    assert mesh.get_clim() == pytest.approx((0.0, expected_w.max()), rel=1e-5)
    marker = ax_err.lines[2]
    np.testing.assert_allclose(marker.get_xdata(), [0.2, 0.2])
    np.testing.assert_allclose(
        marker.get_ydata(), [view.state["train_mse"], view.state["test_mse"]]
    )
    assert "0.2" in ax_fit.get_title()


def test_kernel_menu_switches_curves_and_prediction(data):
    x_train, y_train, x_test, y_test = data
    view = build_kernel_width_view(*data, sigma=0.5)
    ax_fit, _, ax_err = view.figure.axes[:3]
    test_curve = ax_err.lines[1]
    before = test_curve.get_ydata().copy()

    view.controls["kernel"].value = "constant"  # average pooling, whatever sigma
    np.testing.assert_allclose(ax_fit.lines[1].get_ydata(), float(y_train.mean()), rtol=1e-5)
    assert not np.allclose(test_curve.get_ydata(), before)
    np.testing.assert_allclose(test_curve.get_ydata(), view.curves["constant"]["test"])
    assert view.state["kernel"] == "constant"

    view.controls["kernel"].value = "epanechnikov"
    expected, _ = oracle(x_test, x_train, y_train, 0.5, "epanechnikov")
    np.testing.assert_allclose(ax_fit.lines[1].get_ydata(), expected, atol=1e-5)


def test_curves_are_precomputed_once_not_on_a_move(data, monkeypatch):
    import attention_course.views.kernel_width as module

    view = build_kernel_width_view(*data)
    calls = []
    monkeypatch.setattr(module, "error_curves", lambda *a, **k: calls.append(a))
    view.controls["sigma"].value = 3.0
    view.controls["kernel"].value = "boxcar"
    assert calls == [], "a move must not recompute the error curves"


def test_helpers():
    np.testing.assert_allclose(cell_edges(torch.tensor([0.0, 1.0, 3.0])), [-0.5, 0.5, 2.0, 4.0])
    assert mean_squared_error(torch.tensor([1.0, 3.0]), torch.tensor([0.0, 1.0])) == 2.5


def test_bad_inputs_name_the_argument(data):
    x_train, y_train, x_test, y_test = data
    with pytest.raises(ValueError, match="y_train"):
        kernel_width_state(x_train, y_train[:-1], x_test, y_test, 1.0)
    with pytest.raises(ValueError, match="sigma"):
        kernel_width_state(x_train, y_train, x_test, y_test, 0.0)
    with pytest.raises(ValueError, match="kernel"):
        kernel_width_state(x_train, y_train, x_test, y_test, 1.0, "triangle")
    with pytest.raises(TypeError, match="x_test"):
        kernel_width_state(x_train, y_train, x_test.long(), y_test, 1.0)
    with pytest.raises(ValueError, match="log10_range"):
        build_kernel_width_view(*data, log10_range=(1.0, -1.0))
    with pytest.raises(ValueError, match="centres"):
        cell_edges(torch.tensor([2.0, 1.0]))
