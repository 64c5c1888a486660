r"""Order for a layer that has none: sinusoidal, and rotary position encodings.

Self-attention treats its input as a set: permute the tokens and the outputs permute
the same way. Positions have to be put in. Two ways, both built on the frequencies

.. math:: \omega_i = 10000^{-2i/d}, \qquad i = 0, \dots, d/2 - 1,

* **add** a table :math:`P` to the token embeddings (Vaswani et al., 2017),
  :math:`p_{t,2i} = \sin(t\omega_i)`, :math:`p_{t,2i+1} = \cos(t\omega_i)`; moving
  :math:`k` steps is a fixed rotation of every (sin, cos) pair,
  :math:`P_{t+k} = M_k P_t`;
* **rotate** each (even, odd) pair of a query or key at position :math:`t` by the angle
  :math:`t\omega_i` (RoPE, Su et al., 2021), so that
  :math:`\langle R_m q, R_n k\rangle = \langle q, R_{n-m} k\rangle` depends on the
  offset only.

Shapes: B batch, T tokens (positions), D features (``num_hiddens``), Dh head dim.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ._validation import (
    require_floating,
    require_int,
    require_ndim,
    require_positive,
    require_positive_int,
    require_probability,
    require_same_size,
    require_tensor,
)

__all__ = [
    "PositionalEncoding",
    "apply_rotary",
    "position_frequencies",
    "shift_matrix",
    "sinusoidal_encoding",
]


def _require_even(name: str, value: object) -> int:
    number = require_int(name, value, low=2)
    if number % 2:
        raise ValueError(
            f"{name}: expected an even number (features come in (sin, cos) pairs), got {number}"
        )
    return number


def position_frequencies(
    num_hiddens: int, base: float = 10000.0, dtype: torch.dtype = torch.float64
) -> Tensor:
    r"""The angular frequencies :math:`\omega_i = \mathrm{base}^{-2i/d}` of the (sin, cos) pairs.

    Pair 0 turns by 1 radian per step (period :math:`2\pi`); the last pair turns slowest,
    with a period of almost :math:`2\pi \cdot \mathrm{base}` steps.

    Args:
        num_hiddens: d, an even number of features.
        base: the wavelength scale (10000 in the Transformer and in RoPE).
        dtype: the floating-point dtype of the result.

    Returns:
        ``(d/2,)``: one frequency per feature pair, decreasing.

    Shapes:
        -> (num_hiddens // 2,)

    Taught in chapters/08_order_and_position.ipynb.
    """
    num_hiddens = _require_even("num_hiddens", num_hiddens)
    base = require_positive("base", base)
    exponents = torch.arange(0, num_hiddens, 2, dtype=dtype) / num_hiddens  # 2i/d: (d/2,)
    # omega_i = 1 / base^(2i/d)
    return 1.0 / torch.pow(base, exponents)  # (d/2,)


def sinusoidal_encoding(
    num_steps: int, num_hiddens: int, *, dtype: torch.dtype = torch.float32
) -> Tensor:
    r"""The Transformer's position table :math:`P`, equal to d2l's ``PositionalEncoding`` table.

    .. math::
        p_{t,2i} = \sin\!\big(t / 10000^{2i/d}\big), \qquad
        p_{t,2i+1} = \cos\!\big(t / 10000^{2i/d}\big)

    In float32 (the default) it is computed with the same operations as d2l, so it equals
    ``d2l.PositionalEncoding(num_hiddens, 0).P[0, :num_steps]`` exactly; pass
    ``dtype=torch.float64`` for a table accurate to about 1e-15.

    Args:
        num_steps: T, how many positions (rows), at least 1.
        num_hiddens: d, an even number of features (columns).
        dtype: the floating-point dtype the table is computed in.

    Returns:
        The table, row t the encoding of position t.

    Raises:
        ValueError: ``num_hiddens`` is odd or < 2, or ``num_steps`` < 1.

    Shapes:
        -> (num_steps, num_hiddens)

    Taught in chapters/08_order_and_position.ipynb.
    """
    num_steps = require_positive_int("num_steps", num_steps)
    num_hiddens = _require_even("num_hiddens", num_hiddens)
    if not dtype.is_floating_point:
        raise TypeError(f"dtype: expected a floating-point dtype, got {dtype}")
    positions = torch.arange(num_steps, dtype=dtype).reshape(-1, 1)  # t: (T, 1)
    # 10000^(2i/d): (d/2,), computed as d2l does, so float32 tables agree bit for bit
    wavelengths = torch.pow(10000, torch.arange(0, num_hiddens, 2, dtype=dtype) / num_hiddens)
    angles = positions / wavelengths  # t * omega_i: (T, 1) / (d/2,) -> (T, d/2)
    table = torch.empty(num_steps, num_hiddens, dtype=dtype)  # (T, d)
    table[:, 0::2] = torch.sin(angles)  # p_{t, 2i}
    table[:, 1::2] = torch.cos(angles)  # p_{t, 2i+1}
    return table


def shift_matrix(offset: int, num_hiddens: int, *, dtype: torch.dtype = torch.float64) -> Tensor:
    r"""The fixed linear map :math:`M_k` with :math:`P_{t+k} = M_k P_t` for every position t.

    Block-diagonal, one 2x2 rotation per (sin, cos) pair, independent of t:

    .. math::
        \begin{bmatrix} p_{t+k,2i} \\ p_{t+k,2i+1} \end{bmatrix}
        = \begin{bmatrix} \cos k\omega_i & \sin k\omega_i \\ -\sin k\omega_i & \cos k\omega_i
        \end{bmatrix}
        \begin{bmatrix} p_{t,2i} \\ p_{t,2i+1} \end{bmatrix}

    For the table's rows (row vectors), ``P[t + k] = P[t] @ M.T``.

    Args:
        offset: k, any int (negative shifts backwards).
        num_hiddens: d, even.
        dtype: the floating-point dtype of the matrix.

    Shapes:
        -> (num_hiddens, num_hiddens)

    Taught in chapters/08_order_and_position.ipynb.
    """
    offset = require_int("offset", offset)
    angles = offset * position_frequencies(num_hiddens, dtype=torch.float64)  # k w_i: (d/2,)
    cos, sin = torch.cos(angles), torch.sin(angles)  # (d/2,)
    blocks = torch.stack((torch.stack((cos, sin), -1), torch.stack((-sin, cos), -1)), -2)
    return torch.block_diag(*blocks).to(dtype)  # d/2 blocks of (2, 2) -> (d, d)


def apply_rotary(x: Tensor, positions: Tensor | None = None, base: float = 10000.0) -> Tensor:
    r"""Rotary position embedding (RoPE): rotate each feature pair by its position's angle.

    Pair i of the vector at position t, :math:`(x_{2i}, x_{2i+1})`, is rotated by the
    angle :math:`t\,\theta_i` with :math:`\theta_i = \mathrm{base}^{-2i/D_h}`:

    .. math::
        x'_{2i} = x_{2i}\cos t\theta_i - x_{2i+1}\sin t\theta_i, \qquad
        x'_{2i+1} = x_{2i}\sin t\theta_i + x_{2i+1}\cos t\theta_i

    Applied to queries and keys, :math:`\langle R_m q, R_n k\rangle = \langle q, R_{n-m}k\rangle`:
    the score depends on the offset n - m, not on m and n. Rotations keep norms, and
    position 0 leaves a vector unchanged. The angles are computed in float64 and the
    result has ``x``'s dtype; ``x`` is not modified.

    Args:
        x: queries or keys, (..., T, Dh) with Dh even (pairs are adjacent features).
        positions: the position of each of the T vectors, default ``arange(T)``; any
            real tensor that broadcasts to ``x.shape[:-1]`` (for example (T,), or
            (B, 1, T) for per-sequence positions of (B, H, T, Dh) heads).
        base: the wavelength scale, > 0 (10000 in Su et al.).

    Returns:
        The rotated tensor, same shape and dtype as ``x``.

    Raises:
        ValueError: Dh is odd, or ``positions`` does not broadcast to ``x.shape[:-1]``.

    Shapes:
        x (..., T, Dh), positions (T,) or broadcastable to (..., T) -> (..., T, Dh)

    Taught in chapters/08_order_and_position.ipynb.
    """
    require_tensor("x", x)
    require_floating("x", x)
    require_ndim("x", x, tuple(range(2, 9)), "(..., T, Dh)")
    T, Dh = x.shape[-2], x.shape[-1]
    if Dh % 2:
        raise ValueError(
            f"x: expected an even last dimension Dh (features are rotated in pairs), "
            f"got shape {tuple(x.shape)} with Dh = {Dh}"
        )
    base = require_positive("base", base)
    if positions is None:
        positions = torch.arange(T, device=x.device)  # t: (T,)
    else:
        require_tensor("positions", positions)
        if positions.dtype == torch.bool or positions.is_complex():
            raise TypeError(f"positions: expected real numbers, got dtype {positions.dtype}")
        try:
            shape = torch.broadcast_shapes(positions.shape, x.shape[:-1])
        except RuntimeError:
            shape = None
        if shape != x.shape[:-1]:
            raise ValueError(
                f"positions: expected a shape that broadcasts to x.shape[:-1] = "
                f"{tuple(x.shape[:-1])}, got {tuple(positions.shape)}"
            )
    theta = position_frequencies(Dh, base).to(x.device)  # theta_i: (Dh/2,)
    angles = positions.to(x.device, torch.float64)[..., None] * theta  # t theta_i: (..., T, Dh/2)
    cos, sin = torch.cos(angles).to(x.dtype), torch.sin(angles).to(x.dtype)  # (..., T, Dh/2)
    pairs = x.unflatten(-1, (Dh // 2, 2))  # (..., T, Dh) -> (..., T, Dh/2, 2)
    even, odd = pairs[..., 0], pairs[..., 1]  # x_2i, x_2i+1: (..., T, Dh/2) each
    # x'_2i = x_2i cos - x_2i+1 sin;  x'_2i+1 = x_2i sin + x_2i+1 cos
    rotated = torch.stack((even * cos - odd * sin, even * sin + odd * cos), dim=-1)
    return rotated.flatten(-2)  # (..., T, Dh/2, 2) -> (..., T, Dh)


class PositionalEncoding(nn.Module):
    r"""Add the sinusoidal table to a batch of embeddings, then dropout (d2l-compatible).

    ``forward(X)`` returns ``dropout(X + P[:T])`` with ``P`` from
    :func:`sinusoidal_encoding`, as ``d2l.PositionalEncoding`` does. The table is a
    buffer ``P`` of shape (1, max_len, num_hiddens) (not saved in the ``state_dict``;
    it moves with ``.to(device)``).

    Args:
        num_hiddens: D, even.
        dropout: dropout probability after the addition, in [0, 1).
        max_len: the longest sequence the table covers.

    Shapes:
        X (B, T, D) -> (B, T, D), T <= max_len

    Taught in chapters/08_order_and_position.ipynb.
    """

    P: Tensor

    def __init__(self, num_hiddens: int, dropout: float = 0.0, max_len: int = 1000) -> None:
        super().__init__()
        self.num_hiddens = _require_even("num_hiddens", num_hiddens)
        self.max_len = require_positive_int("max_len", max_len)
        self.dropout = nn.Dropout(require_probability("dropout", dropout))
        table = sinusoidal_encoding(self.max_len, self.num_hiddens)  # (max_len, D)
        self.register_buffer("P", table.unsqueeze(0), persistent=False)  # (1, max_len, D)

    def forward(self, X: Tensor) -> Tensor:
        """Return ``dropout(X + P[:, :T])`` for ``X`` of shape (B, T, D)."""
        require_tensor("X", X)
        require_floating("X", X)
        require_ndim("X", X, (3,), "(B, T, num_hiddens)")
        require_same_size("X.shape[-1]", X.shape[-1], "num_hiddens", self.num_hiddens)
        T = X.shape[1]
        if T > self.max_len:
            raise ValueError(
                f"max_len: this layer's table covers at most max_len = {self.max_len} "
                f"positions, got X with T = {T}; build it with max_len >= {T}"
            )
        # x_t + p_t: (B, T, D) + (1, T, D) -> (B, T, D)
        return self.dropout(X + self.P[:, :T, :].to(X.dtype))
