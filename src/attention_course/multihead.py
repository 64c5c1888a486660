r"""Multi-head attention: h heads attend in parallel in subspaces of width Dh = D / h.

.. math::
    \mathrm{head}_i = \mathrm{attention}(W_q^{(i)} q, W_k^{(i)} k, W_v^{(i)} v), \qquad
    \mathrm{output} = W_o [\mathrm{head}_1; \dots; \mathrm{head}_h]

With grouped-query attention several query heads share one key-value head, so keys and
values need only Hkv <= H heads (Hkv = 1 is multi-query attention).

Shapes: B batch, T tokens (Q queries or K keys), H heads, Hkv key-value heads,
Dh head dim, D = H * Dh.
"""

from __future__ import annotations

from torch import Tensor, nn

from ._validation import (
    require_floating,
    require_ndim,
    require_positive_int,
    require_same_size,
    require_tensor,
)
from .kv_cache import KVCache
from .scoring import DotProductAttention, ScoredAttention


def _split(X: Tensor, num_heads: int) -> Tensor:
    B, T, D = X.shape
    X = X.reshape(B, T, num_heads, D // num_heads)  # (B, T, H, Dh)
    return X.transpose(1, 2)  # (B, H, T, Dh): transpose, not reshape, keeps tokens apart


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
    num_heads = require_positive_int("num_heads", num_heads)
    if X.shape[-1] % num_heads:
        raise ValueError(
            f"num_heads: expected a divisor of the feature size {X.shape[-1]}, got {num_heads}"
        )
    return _split(X, num_heads)


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

    ``W_q`` projects queries to ``num_hiddens`` features (H heads of Dh = num_hiddens / H);
    ``W_k`` and ``W_v`` project keys and values to ``num_kv_heads * Dh`` features;
    ``W_o`` mixes the concatenated heads. The attention inside each head is
    ``self.attention``, a :class:`~attention_course.scoring.DotProductAttention`, so the
    scores are scaled by :math:`1/\sqrt{D_h}`, the *head* width. A subclass may replace
    ``self.attention`` by another ``ScoredAttention`` (chapter 05 does).

    Args:
        num_hiddens: D, the model width; must be divisible by ``num_heads``.
        num_heads: H.
        dropout: dropout on the attention weights (training only).
        bias: whether the four projections have a bias.
        query_size, key_size, value_size: input sizes; default ``num_hiddens``.
        num_kv_heads: Hkv, the number of key-value heads; must divide ``num_heads``.
            Default H (every query head has its own); 1 is multi-query attention.

    Taught in chapters/05_multihead_attention.ipynb (grouped-query attention and the KV
    cache in chapters/10_causal_decoding_and_kv_cache.ipynb).
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
        num_kv_heads: int | None = None,
    ) -> None:
        super().__init__()
        num_hiddens = require_positive_int("num_hiddens", num_hiddens)
        num_heads = require_positive_int("num_heads", num_heads)
        if num_hiddens % num_heads:
            raise ValueError(
                f"num_hiddens: expected a multiple of num_heads ({num_heads}), got {num_hiddens}"
            )
        kv_heads = num_heads if num_kv_heads is None else num_kv_heads
        kv_heads = require_positive_int("num_kv_heads", kv_heads)
        if num_heads % kv_heads:
            raise ValueError(
                f"num_kv_heads: expected a divisor of num_heads ({num_heads}), got {kv_heads}"
            )
        sizes = {}
        for name, size in (("query_size", query_size), ("key_size", key_size),
                           ("value_size", value_size)):  # fmt: skip
            sizes[name] = num_hiddens if size is None else require_positive_int(name, size)
        self.num_heads, self.num_kv_heads = num_heads, kv_heads
        self.head_dim = num_hiddens // num_heads
        kv_width = kv_heads * self.head_dim
        self.W_q = nn.Linear(sizes["query_size"], num_hiddens, bias=bias)
        self.W_k = nn.Linear(sizes["key_size"], kv_width, bias=bias)
        self.W_v = nn.Linear(sizes["value_size"], kv_width, bias=bias)
        self.W_o = self.output_projection(num_hiddens, bias)
        self.attention: ScoredAttention = DotProductAttention(dropout)

    def output_projection(self, num_hiddens: int, bias: bool) -> nn.Linear:
        """``W_o``: the concatenated heads (num_hiddens) -> the output (num_hiddens)."""
        return nn.Linear(num_hiddens, num_hiddens, bias=bias)

    def forward(
        self,
        queries: Tensor,
        keys: Tensor,
        values: Tensor,
        valid_lens: Tensor | None = None,
        *,
        mask: Tensor | None = None,
        is_causal: bool = False,
        head_mask: Tensor | None = None,
        need_weights: bool = True,
        kv_cache: KVCache | None = None,
    ) -> tuple[Tensor, Tensor | None]:
        """Attend with every head and mix the heads.

        Args:
            queries: (B, Q, query_size).  keys: (B, K, key_size).  values: (B, K, value_size).
            valid_lens: optional (B,) or (B, Q) lengths; keys past them get weight 0
                in every head (with a cache: lengths over all cached keys).
            mask: optional bool mask, True = attend: (B, Q, K) is shared by all heads,
                (B, H, Q, K) is per head, and anything broadcastable to either works.
            is_causal: query i (position K - Q + i) sees keys 0..K - Q + i only.
            head_mask: optional (H,) of 0/1 (or any weights): head i's output is
                multiplied by ``head_mask[i]`` before ``W_o``. 0 switches a head off.
            need_weights: False returns ``(output, None)`` through PyTorch's fused
                ``F.scaled_dot_product_attention``: the (B, H, Q, K) weights are never made.
            kv_cache: a :class:`KVCache`; this call's keys and values are appended to it
                and the queries attend over everything it holds.

        Returns:
            ``(output (B, Q, num_hiddens), weights (B, H, Q, K) or None)``. The weights of
            a switched-off head are still returned: they are what it would attend to.
        """
        for name, x, size, layer in (
            ("queries", queries, "query_size", self.W_q),
            ("keys", keys, "key_size", self.W_k),
            ("values", values, "value_size", self.W_v),
        ):
            require_tensor(name, x)
            require_floating(name, x)
            require_ndim(name, x, (3,), f"(B, T, {size}) with a batch axis")
            require_same_size(
                f"{name}.shape[-1]", x.shape[-1], f"this layer's {size}", layer.in_features
            )
        for name, x in (("keys", keys), ("values", values)):
            require_same_size(
                f"{name}.shape[0] (batch)", x.shape[0], "queries.shape[0]", queries.shape[0]
            )
        require_same_size(
            "keys.shape[1] (number of keys)", keys.shape[1], "values.shape[1]", values.shape[1]
        )
        H, Hkv = self.num_heads, self.num_kv_heads
        q = _split(self.W_q(queries), H)  # (B, Q, H*Dh) -> (B, H, Q, Dh)
        k = _split(self.W_k(keys), Hkv)  # (B, K, Hkv*Dh) -> (B, Hkv, K, Dh)
        v = _split(self.W_v(values), Hkv)  # (B, K, Hkv*Dh) -> (B, Hkv, K, Dh)
        if kv_cache is not None:
            k, v = kv_cache.append(k, v)  # (B, Hkv, cached + K, Dh)
        if Hkv < H:  # query head h uses key-value head h // (H / Hkv)
            k = k.repeat_interleave(H // Hkv, dim=1)  # (B, Hkv, K, Dh) -> (B, H, K, Dh)
            v = v.repeat_interleave(H // Hkv, dim=1)  # (B, Hkv, K, Dh) -> (B, H, K, Dh)
        if mask is not None and mask.ndim == 3:
            mask = mask.unsqueeze(1)  # (B, Q, K) -> (B, 1, Q, K): one mask for all heads
        # head_i = softmax(q_i k_i^T / sqrt(Dh)) v_i, every head at once
        heads, weights = self.attention(
            q, k, v, valid_lens, mask=mask, is_causal=is_causal, need_weights=need_weights
        )  # (B, H, Q, Dh), (B, H, Q, K) or None
        if head_mask is not None:
            require_tensor("head_mask", head_mask)
            if tuple(head_mask.shape) != (H,):
                raise ValueError(
                    f"head_mask: expected shape ({H},) (one entry per head), "
                    f"got {tuple(head_mask.shape)}"
                )
            heads = heads * head_mask.to(heads.dtype).reshape(1, H, 1, 1)  # (B, H, Q, Dh)
        # output = W_o [head_1; ...; head_H]
        return self.W_o(merge_heads(heads)), weights  # (B, Q, D), (B, H, Q, K)
