r"""Cross-attention with a residual LayerNorm, ported from a Keras example to PyTorch.

Queries come from one sequence and keys/values from another (cross-attention). Each of
H heads attends with scaled dot products in its own Dh-wide subspace; the heads are
concatenated, projected back to the query width, added to the queries and normalised:

.. math::
    \mathrm{head}_i = \mathrm{softmax}\!\Big(\frac{(X W_q^{(i)})(Z W_k^{(i)})^\top}{\sqrt{D_h}}\Big)
    Z W_v^{(i)}, \qquad
    Y = \mathrm{LayerNorm}\big(X + [\mathrm{head}_1; \dots; \mathrm{head}_H] W_o + b_o\big)

The layer returns its attention weights; a training loop that wants an entropy penalty
adds ``entropy_penalty(weights, alpha)`` to its loss explicitly (PyTorch has no
``add_loss``/``model.losses``).

Shapes: B batch, Q queries, K key-value pairs, H heads, Dh head dim.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from ._validation import require_floating, require_ndim, require_same_size, require_tensor
from .multihead import merge_heads, split_heads


class CrossAttention(nn.Module):
    r"""Multi-head cross-attention + residual + LayerNorm; returns ``(output, weights)``.

    The parameters match the Keras example's: ``W_q``, ``W_k``, ``W_v`` without bias
    (its ``(D_in, H, Dh)`` kernels), ``W_o`` with bias mapping the H * Dh concatenated
    head features back to ``query_size`` (its output kernel and bias), and ``norm``.
    Unlike the example's ``einsum("abcd,cdd->abd")``, which reads only the diagonal of
    its output kernel, ``W_o`` is a full projection.

    Args:
        query_size: D, the width of the queries and of the output (the residual needs both
            equal).
        kv_size: the width of the key-value inputs.
        num_heads: H.
        head_dim: Dh, the width of each head (the scores are divided by sqrt(Dh)).

    Shapes:
        queries (B, Q, D), key_values (B, K, kv_size) ->
        output (B, Q, D), weights (B, H, Q, K)

    Taught in chapters/06_entropy_regularization.ipynb.
    """

    def __init__(self, query_size: int, kv_size: int, num_heads: int, head_dim: int) -> None:
        super().__init__()
        for name, value in (
            ("query_size", query_size),
            ("kv_size", kv_size),
            ("num_heads", num_heads),
            ("head_dim", head_dim),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name}: expected a positive int, got {value!r}")
        self.num_heads = num_heads
        self.head_dim = head_dim
        width = num_heads * head_dim
        self.W_q = nn.Linear(query_size, width, bias=False)
        self.W_k = nn.Linear(kv_size, width, bias=False)
        self.W_v = nn.Linear(kv_size, width, bias=False)
        self.W_o = nn.Linear(width, query_size)
        self.norm = nn.LayerNorm(query_size)

    def forward(self, queries: Tensor, key_values: Tensor) -> tuple[Tensor, Tensor]:
        """Attend from ``queries`` to ``key_values``.

        Args:
            queries: (B, Q, query_size).
            key_values: (B, K, kv_size); used as both keys and values.

        Returns:
            ``(output (B, Q, query_size), weights (B, H, Q, K))``; each row of
            ``weights`` sums to 1.
        """
        for name, x, layer in (
            ("queries", queries, self.W_q),
            ("key_values", key_values, self.W_k),
        ):
            require_tensor(name, x)
            require_floating(name, x)
            require_ndim(name, x, (3,), f"(B, {'Q' if name == 'queries' else 'K'}, features)")
            require_same_size(
                f"{name}.shape[-1]",
                x.shape[-1],
                f"the layer's {'query_size' if name == 'queries' else 'kv_size'}",
                layer.in_features,
            )
        require_same_size(
            "key_values.shape[0]",
            key_values.shape[0],
            "queries.shape[0] (the batch)",
            queries.shape[0],
        )
        H, Dh = self.num_heads, self.head_dim
        q = split_heads(self.W_q(queries), H)  # (B, Q, H*Dh) -> (B, H, Q, Dh)
        k = split_heads(self.W_k(key_values), H)  # (B, K, H*Dh) -> (B, H, K, Dh)
        v = split_heads(self.W_v(key_values), H)  # (B, K, H*Dh) -> (B, H, K, Dh)
        # a(q, k) = q . k / sqrt(Dh): (B, H, Q, Dh) @ (B, H, Dh, K) -> (B, H, Q, K)
        scores = q @ k.transpose(-2, -1) / math.sqrt(Dh)  # (B, H, Q, K)
        weights = torch.softmax(scores, dim=-1)  # (B, H, Q, K)
        heads = weights @ v  # (B, H, Q, K) @ (B, H, K, Dh) -> (B, H, Q, Dh)
        # Y = LayerNorm(X + concat(heads) W_o + b_o)
        output = self.norm(queries + self.W_o(merge_heads(heads)))  # (B, Q, H*Dh) -> (B, Q, D)
        return output, weights
