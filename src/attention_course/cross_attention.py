r"""Cross-attention with a residual LayerNorm, ported from a Keras example to PyTorch.

Queries come from one sequence and keys/values from another (cross-attention). It is the
course's :class:`~attention_course.multihead.MultiHeadAttention` with the Keras layer's
output projection (back to the query width, with a bias), followed by a residual
connection and a LayerNorm:

.. math::
    Y = \mathrm{LayerNorm}\big(X + \mathrm{MultiHead}(X, Z, Z)\big), \qquad
    \mathrm{MultiHead} = [\mathrm{head}_1; \dots; \mathrm{head}_H] W_o + b_o

The layer returns its attention weights; a training loop that wants an entropy penalty
adds ``entropy_penalty(weights, alpha)`` to its loss explicitly (PyTorch has no
``add_loss``/``model.losses``).

Shapes: B batch, Q queries, K key-value pairs, H heads, Dh head dim.
"""

from __future__ import annotations

from torch import Tensor, nn

from ._validation import require_positive_int
from .kv_cache import KVCache
from .multihead import MultiHeadAttention


class CrossAttention(MultiHeadAttention):
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
        queries (B, Q, D), keys (B, K, kv_size), values (B, K, kv_size) (default: keys)
        -> output (B, Q, D), weights (B, H, Q, K)

    Taught in chapters/06_entropy_regularization.ipynb.
    """

    def __init__(self, query_size: int, kv_size: int, num_heads: int, head_dim: int) -> None:
        query_size = require_positive_int("query_size", query_size)
        num_heads = require_positive_int("num_heads", num_heads)
        head_dim = require_positive_int("head_dim", head_dim)
        super().__init__(
            num_heads * head_dim,
            num_heads,
            query_size=query_size,
            key_size=require_positive_int("kv_size", kv_size),
            value_size=kv_size,
        )
        self.norm = nn.LayerNorm(query_size)

    def output_projection(self, num_hiddens: int, bias: bool) -> nn.Linear:
        """``W_o`` with a bias, back to the query width (the residual adds the queries)."""
        return nn.Linear(num_hiddens, self.W_q.in_features)

    def forward(  # type: ignore[override]
        self,
        queries: Tensor,
        keys: Tensor,
        values: Tensor | None = None,
        valid_lens: Tensor | None = None,
        *,
        mask: Tensor | None = None,
        is_causal: bool = False,
        head_mask: Tensor | None = None,
        need_weights: bool = True,
        kv_cache: KVCache | None = None,
    ) -> tuple[Tensor, Tensor | None]:
        """Attend from ``queries`` to ``keys``/``values``, add the queries, normalise.

        ``layer(queries, key_values)`` uses one tensor as both keys and values, as the
        Keras layer does. Every other argument is :meth:`MultiHeadAttention.forward`'s.

        Returns:
            ``(output (B, Q, query_size), weights (B, H, Q, K) or None)``.
        """
        values = keys if values is None else values
        attended, weights = super().forward(
            queries,
            keys,
            values,
            valid_lens,
            mask=mask,
            is_causal=is_causal,
            head_mask=head_mask,
            need_weights=need_weights,
            kv_cache=kv_cache,
        )
        # Y = LayerNorm(X + concat(heads) W_o + b_o)
        return self.norm(queries + attended), weights  # (B, Q, D)
