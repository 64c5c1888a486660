import math

import pytest
import torch

from attention_course import KERNELS, NWKernelRegression, nadaraya_watson


@pytest.fixture
def data():
    g = torch.Generator().manual_seed(0)
    x = torch.sort(torch.rand(30, generator=g) * 5).values
    y = 2 * torch.sin(x) + x**0.8 + 0.5 * torch.randn(30, generator=g)
    return x, y, torch.linspace(0, 5, 11)


def direct_kernel_average(queries, keys, values, sigma, kernel):
    """Oracle: the textbook ratio sum K(u_i) y_i / sum K(u_j), one query at a time."""
    K = {
        "gaussian": lambda u: math.exp(-u * u / 2),
        "boxcar": lambda u: 1.0 if abs(u) <= 1 else 0.0,
        "epanechnikov": lambda u: max(0.0, 1 - u * u),
        "constant": lambda u: 1.0,
    }[kernel]
    out = []
    for x in queries.tolist():
        w = [K((x - xi) / sigma) for xi in keys.tolist()]
        out.append(sum(wi * yi for wi, yi in zip(w, values.tolist(), strict=True)) / sum(w))
    return torch.tensor(out)


@pytest.mark.parametrize("kernel", KERNELS)
def test_matches_direct_kernel_weighted_average(data, kernel):
    x, y, queries = data
    pred, weights = nadaraya_watson(queries, x, y, bandwidth=1.5, kernel=kernel)
    torch.testing.assert_close(pred, direct_kernel_average(queries, x, y, 1.5, kernel))
    torch.testing.assert_close(weights.sum(-1), torch.ones(11))
    assert weights.shape == (11, 30) and (weights >= 0).all()


@pytest.mark.parametrize("kernel", KERNELS)
def test_huge_bandwidth_gives_the_mean(data, kernel):
    x, y, queries = data
    pred, _ = nadaraya_watson(queries, x, y, bandwidth=1e6, kernel=kernel)
    torch.testing.assert_close(pred, y.mean().expand(11))


@pytest.mark.parametrize("kernel", ("gaussian", "boxcar", "epanechnikov"))
def test_tiny_bandwidth_gives_the_nearest_neighbour(data, kernel):
    x, y, queries = data
    pred, weights = nadaraya_watson(queries, x, y, bandwidth=1e-4, kernel=kernel)
    nearest = (queries[:, None] - x[None, :]).abs().argmin(-1)
    torch.testing.assert_close(pred, y[nearest])
    assert torch.isfinite(weights).all()


def test_gaussian_is_a_softmax_over_negative_squared_distances(data):
    x, y, queries = data
    sigma = 0.7
    _, weights = nadaraya_watson(queries, x, y, bandwidth=sigma)
    torch.testing.assert_close(
        weights, torch.softmax(-((queries[:, None] - x) ** 2) / (2 * sigma**2), -1)
    )


def test_per_query_keys_for_leave_one_out(data):
    x, y, _ = data
    n = len(x)
    others = ~torch.eye(n, dtype=torch.bool)
    keys, values = (
        x.expand(n, n)[others].reshape(n, n - 1),
        y.expand(n, n)[others].reshape(n, n - 1),
    )
    pred, weights = nadaraya_watson(x, keys, values, bandwidth=0.5)
    assert weights.shape == (n, n - 1)
    for i in (0, 7, n - 1):
        expected, _ = nadaraya_watson(x[i : i + 1], keys[i], values[i], bandwidth=0.5)
        torch.testing.assert_close(pred[i : i + 1], expected)


def test_learnable_model_equals_gaussian_with_bandwidth_one_over_w(data):
    x, y, queries = data
    model = NWKernelRegression(w_init=2.0)
    pred, weights = model(queries, x, y)
    expected, expected_w = nadaraya_watson(queries, x, y, bandwidth=0.5)
    torch.testing.assert_close(pred, expected)
    torch.testing.assert_close(weights, expected_w)


def test_zero_w_is_plain_averaging_not_a_division_by_zero(data):
    x, y, queries = data
    pred, weights = NWKernelRegression(w_init=0.0)(queries, x, y)
    torch.testing.assert_close(pred, y.mean().expand_as(pred))
    assert torch.isfinite(weights).all()


def test_learnable_width_gets_gradients_and_training_reduces_loss(data):
    x, y, _ = data
    model = NWKernelRegression(w_init=0.5)
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    n = len(x)
    others = ~torch.eye(n, dtype=torch.bool)
    keys, values = (
        x.expand(n, n)[others].reshape(n, n - 1),
        y.expand(n, n)[others].reshape(n, n - 1),
    )
    losses = []
    for _ in range(20):
        opt.zero_grad()
        loss = ((model(x, keys, values)[0] - y) ** 2).mean()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0]


def test_inputs_not_modified(data):
    x, y, queries = data
    before = [t.clone() for t in (x, y, queries)]
    nadaraya_watson(queries, x, y, bandwidth=0.1, kernel="epanechnikov")
    NWKernelRegression()(queries, x, y)
    for t, b in zip((x, y, queries), before, strict=True):
        assert torch.equal(t, b)


def test_errors_name_the_argument(data):
    x, y, queries = data
    with pytest.raises(ValueError, match="bandwidth: expected a finite number > 0, got 0"):
        nadaraya_watson(queries, x, y, bandwidth=0)
    with pytest.raises(ValueError, match="bandwidth: expected a finite number > 0, got -1.0"):
        nadaraya_watson(queries, x, y, bandwidth=-1.0)
    with pytest.raises(
        ValueError,
        match="kernel: expected one of 'gaussian', 'boxcar', 'epanechnikov', "
        "'constant', got 'triangle'",
    ):
        nadaraya_watson(queries, x, y, kernel="triangle")
    with pytest.raises(
        ValueError, match=r"values: expected the same shape as keys \(30,\), got \(29,\)"
    ):
        nadaraya_watson(queries, x, y[:-1])
    with pytest.raises(ValueError, match=r"queries: expected shape \(Q,\)"):
        nadaraya_watson(queries[:, None], x, y)
    with pytest.raises(TypeError, match="bandwidth: expected a number, got str"):
        nadaraya_watson(queries, x, y, bandwidth="1")
