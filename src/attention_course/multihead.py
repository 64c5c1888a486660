r"""Multi-head attention: h heads attend in parallel in subspaces of width Dh = D / h.

.. math::
    \mathrm{head}_i = \mathrm{attention}(W_q^{(i)} q, W_k^{(i)} k, W_v^{(i)} v), \qquad
    \mathrm{output} = W_o [\mathrm{head}_1; \dots; \mathrm{head}_h]

Shapes: B batch, T tokens (Q queries or K keys), H heads, Dh head dim, D = H * Dh.
"""

from __future__ import annotations

import math

from torch import Tensor, nn

from ._validation import require_ndim, require_same_size, require_tensor
from .masking import valid_lens_mask
from .scoring import attend, check_qkv


def split_heads(X: Tensor, num_heads: int) -> Tensor:
    """Split the feature axis into heads and move heads next to the batch axis.

    Args:
        X: (B, T, H * Dh).
        num_heads: H; must divide the last axis.

    Returns:
        (B, H, T, Dh), a view where possible. ``merge_heads`` is its exact inverse.

    Shapes:
        (B, T, H*Dh) -> (B, T, H, Dh) -> (B, H, T, Dh)

    Taught in chapters/05_multihead_attention.ipynb.
    """
    require_tensor("X", X)
    require_ndim("X", X, (3,), "(B, T, H * Dh)")
    B, T, D = X.shape
    if isinstance(num_heads, bool) or not isinstance(num_heads, int) or num_heads < 1:
        raise ValueError(f"num_heads: expected a positive int, got {num_heads!r}")
    if D % num_heads:
        raise ValueError(f"num_heads: expected a divisor of the feature size {D}, got {num_heads}")
    X = X.reshape(B, T, num_heads, D // num_heads)  # (B, T, H, Dh)
    return X.transpose(1, 2)  # (B, H, T, Dh): transpose, not reshape, keeps tokens apart


def merge_heads(X: Tensor) -> Tensor:
    """Concatenate the heads back along the feature axis; the inverse of ``split_heads``.

    Shapes:
        (B, H, T, Dh) -> (B, T, H, Dh) -> (B, T, H*Dh)

    Taught in chapters/05_multihead_attention.ipynb.
    """
    require_tensor("X", X)
    require_ndim("X", X, (4,), "(B, H, T, Dh)")
    B, H, T, Dh = X.shape
    return X.transpose(1, 2).reshape(B, T, H * Dh)  # (B, T, H, Dh) -> (B, T, H*Dh)


class MultiHeadAttention(nn.Module):
    r"""Multi-head scaled dot-product attention with the d2l chapter's parameter names.

    ``W_q``, ``W_k``, ``W_v`` project queries, keys and values to ``num_hiddens``
    features (H heads of Dh = num_hiddens / H); ``W_o`` mixes the concatenated heads.
    Scores inside each head are scaled by :math:`1/\sqrt{D_h}`, the *head* width.

    Args:
        num_hiddens: D, the model width; must be divisible by ``num_heads``.
        num_heads: H.
        dropout: dropout on the attention weights (training only).
        bias: whether the four projections have a bias.
        query_size, key_size, value_size: input sizes; default ``num_hiddens``.

    Taught in chapters/05_multihead_attention.ipynb.
    """

    def __init__(
        self,
        num_hiddens: int,
        num_heads: int,
        dropout: float = 0.0,
        bias: bool = False,
        query_size: int | None = None,
        key_size: int | None = None,
        value_size: int | None = None,
    ) -> None:
        super().__init__()
        for name, value in (("num_hiddens", num_hiddens), ("num_heads", num_heads)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name}: expected a positive int, got {value!r}")
        if num_hiddens % num_heads:
            raise ValueError(
                f"num_hiddens: expected a multiple of num_heads ({num_heads}), got {num_hiddens}"
            )
        self.num_heads = num_heads
        self.head_dim = num_hiddens // num_heads
        self.W_q = nn.Linear(query_size or num_hiddens, num_hiddens, bias=bias)
        self.W_k = nn.Linear(key_size or num_hiddens, num_hiddens, bias=bias)
        self.W_v = nn.Linear(value_size or num_hiddens, num_hiddens, bias=bias)
        self.W_o = nn.Linear(num_hiddens, num_hiddens, bias=bias)
        self.dropout = nn.Dropout(dropout)

    def forward(
        self,
        queries: Tensor,
        keys: Tensor,
        values: Tensor,
        valid_lens: Tensor | None = None,
        head_mask: Tensor | None = None,
    ) -> tuple[Tensor, Tensor]:
        """Attend with every head and mix the heads.

        Args:
            queries: (B, Q, query_size).  keys: (B, K, key_size).  values: (B, K, value_size).
            valid_lens: optional (B,) or (B, Q) lengths; keys past them get weight 0
                in every head.
            head_mask: optional (H,) of 0/1 (or any weights): head i's output is
                multiplied by ``head_mask[i]`` before ``W_o``. 0 switches a head off.

        Returns:
            ``(output (B, Q, num_hiddens), weights (B, H, Q, K))``. The weights of a
            switched-off head are still returned: they are what it would attend to.
        """
        check_qkv(queries, keys, values)
        for name, x, size, layer in (
            ("queries", queries, "query_size", self.W_q),
            ("keys", keys, "key_size", self.W_k),
            ("values", values, "value_size", self.W_v),
        ):
            require_same_size(
                f"{name}.shape[-1]", x.shape[-1], f"this layer's {size}", layer.in_features
            )
        H, Dh = self.num_heads, self.head_dim
        q = split_heads(self.W_q(queries), H)  # (B, Q, D) -> (B, H, Q, Dh)
        k = split_heads(self.W_k(keys), H)  # (B, K, D) -> (B, H, K, Dh)
        v = split_heads(self.W_v(values), H)  # (B, K, D) -> (B, H, K, Dh)
        # a(q, k) = q . k / sqrt(Dh): the head width, not the model width
        # (B, H, Q, Dh) @ (B, H, Dh, K) -> (B, H, Q, K), divided in place: the matmul's
        # backward needs q and k, not its output, so no second (B, H, Q, K) tensor is made
        scores = (q @ k.transpose(-2, -1)).div_(math.sqrt(Dh))
        # One mask broadcast over the head axis: no repeat_interleave needed.
        mask = None if valid_lens is None else valid_lens_mask(scores, valid_lens)  # (B, 1, Q|1, K)
        heads, weights = attend(scores, v, mask=mask, dropout=self.dropout)  # (B, H, Q, Dh)
        if head_mask is not None:
            require_tensor("head_mask", head_mask)
            if tuple(head_mask.shape) != (H,):
                raise ValueError(
                    f"head_mask: expected shape ({H},) (one entry per head), "
                    f"got {tuple(head_mask.shape)}"
                )
            heads = heads * head_mask.to(heads.dtype).reshape(1, H, 1, 1)  # (B, H, Q, Dh)
        return self.W_o(merge_heads(heads)), weights  # (B, Q, D), (B, H, Q, K)
