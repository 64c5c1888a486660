r"""Entropy of attention weights, and a penalty that steers it towards a target.

.. math:: H(\alpha) = -\sum_k \alpha_k \ln \alpha_k, \qquad 0 \le H \le \ln K

:math:`H = 0` for a one-hot row (attend to one key), :math:`\ln K` for a uniform row.

Shapes: (..., K) weights with rows on the last axis unless ``dim`` says otherwise.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from ._validation import require_floating, require_int, require_number, require_tensor


def attention_entropy(weights: Tensor, dim: int = -1) -> Tensor:
    r"""Natural-log entropy of each row of attention weights, with :math:`0 \ln 0 = 0`.

    Exactly 0 for one-hot rows and for all-zero (fully masked) rows; the gradient is
    finite everywhere, zeros included (no epsilon inside the log needed).

    Args:
        weights: non-negative weights whose rows (along ``dim``) sum to 1 (or are all 0).
        dim: the axis that holds one row.

    Returns:
        Entropies in nats, ``weights`` with ``dim`` removed.

    Shapes:
        (B, H, Q, K), dim=-1 -> (B, H, Q)

    Taught in chapters/06_entropy_regularization.ipynb.
    """
    require_tensor("weights", weights)
    require_floating("weights", weights)
    if weights.ndim == 0:
        raise ValueError("weights: expected at least one axis (the row), got a scalar")
    if bool((weights < 0).any()):
        raise ValueError(
            f"weights: expected non-negative attention weights, got a minimum of "
            f"{weights.min().item():.3g}"
        )
    # Where p = 0, take log(1) = 0 instead of log(0) = -inf: p ln p is then 0 there and
    # so is its gradient, where p * log(p) would give 0 * -inf = NaN.
    positive = weights > 0
    safe = torch.where(positive, weights, torch.ones_like(weights))
    return -(weights * torch.log(safe)).sum(dim=dim)


def entropy_penalty(weights: Tensor, alpha: float) -> Tensor:
    r"""Mean squared distance of each row's entropy from a target ``alpha``.

    .. math:: \mathcal{L}_H = \frac{1}{R}\sum_{r=1}^{R} \big(H(\alpha_r) - \alpha\big)^2

    ``alpha`` near 0 pushes rows towards one-hot; near :math:`\ln K`, towards uniform.

    Args:
        weights: attention weights, rows on the last axis, shape (..., K).
        alpha: the target entropy in nats, in [0, ln K].

    Returns:
        A scalar tensor.

    Taught in chapters/06_entropy_regularization.ipynb.
    """
    require_tensor("weights", weights)
    if weights.ndim == 0:
        raise ValueError("weights: expected at least one axis (the row of K keys), got a scalar")
    alpha = require_target_entropy(alpha, weights.shape[-1])
    return ((attention_entropy(weights) - alpha) ** 2).mean()


def require_target_entropy(alpha: object, num_keys: int) -> float:
    r"""Return ``alpha`` as a float if it is a possible row entropy over ``num_keys`` keys.

    .. math:: 0 \le H \le \ln K

    A small tolerance above ln K admits ln K computed in float32 (about 2e-8 above
    ``math.log``). The one definition of alpha's range: the chapter's slider uses it too.

    Taught in chapters/06_entropy_regularization.ipynb.
    """
    value = require_number("alpha", alpha, finite=False)
    upper = max_entropy(num_keys)
    if not 0.0 <= value <= upper + 1e-6:
        raise ValueError(
            f"alpha: expected a target entropy in [0, ln K] = [0, {upper:.4f}] "
            f"for K = {num_keys} keys, got {value}"
        )
    return value


def max_entropy(num_keys: int) -> float:
    r"""The largest row entropy over ``num_keys`` keys, :math:`\ln K` (a uniform row).

    Taught in chapters/06_entropy_regularization.ipynb.
    """
    K = require_int("num_keys", num_keys, low=0)
    return math.log(K) if K > 0 else 0.0
