r"""Nadaraya-Watson kernel regression: attention pooling with a fixed or learned kernel.

.. math::
    f(x) = \sum_i \frac{K((x - x_i)/\sigma)}{\sum_j K((x - x_j)/\sigma)}\, y_i
         = \sum_i \mathrm{softmax}_i\big(\log K((x - x_i)/\sigma)\big)\, y_i

Kernels are evaluated in log space, so the Gaussian kernel is literally a softmax of
:math:`-(x - x_i)^2 / (2\sigma^2)` and never underflows to 0/0.

Shapes: Q queries (test inputs), N key-value pairs (training inputs and targets).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ._validation import (
    require_choice,
    require_floating,
    require_ndim,
    require_positive,
    require_tensor,
)

KERNELS: tuple[str, ...] = ("gaussian", "boxcar", "epanechnikov", "constant")


def log_kernel(u: Tensor, kernel: str = "gaussian") -> Tensor:
    r"""Log of an (unnormalised) kernel at scaled distances ``u = (x - x_i) / sigma``.

    - gaussian:     :math:`K(u) = \exp(-u^2/2)`
    - boxcar:       :math:`K(u) = 1` if :math:`|u| \le 1` else 0
    - epanechnikov: :math:`K(u) = 1 - u^2` if :math:`|u| < 1` else 0
    - constant:     :math:`K(u) = 1` (average pooling, whatever the width)

    Zero kernel values come out as ``-inf``.

    Taught in chapters/02_nadaraya_watson.ipynb.
    """
    require_choice("kernel", kernel, KERNELS)
    if kernel == "gaussian":
        return -(u**2) / 2
    if kernel == "constant":
        return torch.zeros_like(u)
    neg_inf = torch.full_like(u, float("-inf"))
    if kernel == "boxcar":
        return torch.where(u.abs() <= 1, torch.zeros_like(u), neg_inf)
    inside = u.abs() < 1  # epanechnikov
    return torch.where(inside, torch.log1p(-(u.where(inside, 0.0) ** 2)), neg_inf)


def kernel_weights(queries: Tensor, keys: Tensor, bandwidth: float | Tensor, kernel: str) -> Tensor:
    """Row-normalised kernel weights; a query with no key inside a compact kernel's
    window puts all its weight on its nearest key (the limit of a shrinking width).

    Shapes:
        queries (Q,), keys (N,) or (Q, N) -> weights (Q, N)

    Taught in chapters/02_nadaraya_watson.ipynb.
    """
    keys = keys.unsqueeze(0) if keys.ndim == 1 else keys  # (1 or Q, N)
    distance = queries.unsqueeze(-1) - keys  # (Q, 1) - (1 or Q, N) -> (Q, N)
    logits = log_kernel(distance / bandwidth, kernel)  # (Q, N)
    empty = torch.isinf(logits).all(dim=-1, keepdim=True)  # (Q, 1): no key in the window
    if bool(empty.any()):
        nearest = -distance.abs()  # the nearest key has the largest logit
        logits = torch.where(
            empty,
            torch.where(nearest == nearest.amax(-1, keepdim=True), 0.0, float("-inf")),
            logits,
        )
    return torch.softmax(logits, dim=-1)  # (Q, N), rows sum to 1


def _check_nw_inputs(queries: Tensor, keys: Tensor, values: Tensor) -> None:
    for name, x in (("queries", queries), ("keys", keys), ("values", values)):
        require_tensor(name, x)
        require_floating(name, x)
    require_ndim("queries", queries, (1,), "(Q,)")
    require_ndim("keys", keys, (1, 2), "(N,) or (Q, N)")
    if values.shape != keys.shape:
        raise ValueError(
            f"values: expected the same shape as keys {tuple(keys.shape)}, "
            f"got {tuple(values.shape)}"
        )
    if keys.ndim == 2 and keys.shape[0] != queries.shape[0]:
        raise ValueError(
            f"keys: expected shape (N,) or ({queries.shape[0]}, N) (one row per query), "
            f"got {tuple(keys.shape)}"
        )


def nadaraya_watson(
    queries: Tensor,
    keys: Tensor,
    values: Tensor,
    bandwidth: float = 1.0,
    kernel: str = "gaussian",
) -> tuple[Tensor, Tensor]:
    r"""Nadaraya-Watson estimate at ``queries``: a kernel-weighted average of ``values``.

    Args:
        queries: inputs to predict at, (Q,).
        keys: training inputs, (N,), or (Q, N) to give each query its own keys
            (leave-one-out training uses this).
        values: training targets, shaped like ``keys``.
        bandwidth: the kernel width sigma > 0. Large gives the mean of the values;
            small gives the nearest neighbour's value.
        kernel: one of ``KERNELS``.

    Returns:
        ``(predictions (Q,), weights (Q, N))``; each weight row sums to 1.

    Shapes:
        queries (Q,), keys (N,) or (Q, N), values like keys -> (Q,), (Q, N)

    Taught in chapters/02_nadaraya_watson.ipynb.
    """
    _check_nw_inputs(queries, keys, values)
    sigma = require_positive("bandwidth", bandwidth)
    require_choice("kernel", kernel, KERNELS)
    weights = kernel_weights(queries, keys, sigma, kernel)  # (Q, N)
    values = values.unsqueeze(0) if values.ndim == 1 else values  # (1 or Q, N)
    return (weights * values).sum(-1), weights  # (Q,), (Q, N)


class NWKernelRegression(nn.Module):
    r"""Parametric attention pooling: a Gaussian kernel with a learnable width.

    .. math:: f(x) = \sum_i \mathrm{softmax}_i\big(-((x - x_i)\, w)^2 / 2\big)\, y_i

    As in d2l, ``w`` multiplies the distance, so it is an inverse bandwidth:
    sigma = 1 / |w| (and w = 0 is an infinitely wide kernel: plain averaging).

    Args:
        w_init: the starting value of ``w`` (d2l draws it uniformly from [0, 1)).

    Taught in chapters/02_nadaraya_watson.ipynb.
    """

    def __init__(self, w_init: float = 1.0) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.tensor([float(w_init)]))

    def forward(self, queries: Tensor, keys: Tensor, values: Tensor) -> tuple[Tensor, Tensor]:
        """Predict at ``queries``; returns ``(predictions (Q,), weights (Q, N))``.

        Shapes are those of :func:`nadaraya_watson`.
        """
        _check_nw_inputs(queries, keys, values)
        keys = keys.unsqueeze(0) if keys.ndim == 1 else keys  # (1 or Q, N)
        values = values.unsqueeze(0) if values.ndim == 1 else values  # (1 or Q, N)
        # alpha(x, x_i) = softmax(-((x - x_i) w)^2 / 2)
        scores = -(((queries.unsqueeze(-1) - keys) * self.w) ** 2) / 2  # (Q, N)
        weights = torch.softmax(scores, dim=-1)  # (Q, N)
        return (weights * values).sum(-1), weights  # (Q,), (Q, N)
