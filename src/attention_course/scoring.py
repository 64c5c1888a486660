r"""Attention scoring functions: dot product, additive and bilinear attention.

Every class shares one ``forward`` (:class:`ScoredAttention`) and overrides only
``score``, so the four scoring functions differ in exactly one place:

.. math::
    \mathrm{attention}(q, \{(k_i, v_i)\}) = \sum_i \mathrm{softmax}_i\big(a(q, k_i)\big)\, v_i

Shapes: B batch, Q queries, K key-value pairs, Dq query size, Dk key size,
Dv value size. Leading batch axes may be more than one, e.g. (B, H, ...).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ._validation import (
    require_ndim,
    require_positive_int,
    require_probability,
    require_same_size,
    require_tensor,
)
from .masking import check_mask, combine_masks, masked_softmax


def check_qkv(queries: Tensor, keys: Tensor, values: Tensor) -> None:
    """Raise a clear error unless queries, keys and values fit together.

    Queries (B, ..., Q, Dq), keys (B, ..., K, Dk), values (B, ..., K, Dv): the leading
    (batch) axes of the three must be equal, and keys and values must hold
    the same number of positions.

    Taught in chapters/03_scoring_functions.ipynb.
    """
    for name, x in (("queries", queries), ("keys", keys), ("values", values)):
        require_tensor(name, x)
        require_ndim(name, x, tuple(range(2, 9)), "(B, T, D) or (B, ..., T, D)")
    for name, x in (("keys", keys), ("values", values)):
        if x.shape[:-2] != queries.shape[:-2]:
            raise ValueError(
                f"{name}: expected the batch axes of queries {tuple(queries.shape[:-2])}, "
                f"got {name} of shape {tuple(x.shape)} (queries {tuple(queries.shape)})"
            )
    require_same_size(
        "keys.shape[-2] (number of keys)",
        keys.shape[-2],
        "values.shape[-2] (number of values)",
        values.shape[-2],
    )


def attend(
    scores: Tensor,
    values: Tensor,
    valid_lens: Tensor | None = None,
    *,
    mask: Tensor | None = None,
    dropout: nn.Module | None = None,
) -> tuple[Tensor, Tensor]:
    r"""Turn scores into weights with a masked softmax and pool the values.

    .. math:: \mathrm{output} = \mathrm{softmax}(\mathrm{scores})\, V

    Returns ``(output, weights)``; ``weights`` are taken before dropout, so they are
    the attention distribution itself (dropout only affects ``output`` in training).

    Shapes:
        scores (B, ..., Q, K), values (B, ..., K, Dv) -> output (B, ..., Q, Dv),
        weights (B, ..., Q, K)

    Taught in chapters/03_scoring_functions.ipynb.
    """
    weights = masked_softmax(scores, valid_lens, mask=mask)  # (B, ..., Q, K)
    # Dropout on the weights zeroes some (query, key) links at random during training
    # and rescales the rest by 1 / (1 - p); in eval mode it does nothing.
    dropped = weights if dropout is None else dropout(weights)
    return dropped @ values, weights  # (B, ..., Q, K) @ (B, ..., K, Dv) -> (B, ..., Q, Dv)


class ScoredAttention(nn.Module):
    """Base class: subclasses define ``score(queries, keys)``; ``forward`` is shared.

    Taught in chapters/03_scoring_functions.ipynb.
    """

    def __init__(self, dropout: float = 0.0) -> None:
        super().__init__()
        self.dropout = nn.Dropout(require_probability("dropout", dropout))

    def score(self, queries: Tensor, keys: Tensor) -> Tensor:
        """Attention scores, (B, ..., Q, Dq) x (B, ..., K, Dk) -> (B, ..., Q, K)."""
        raise NotImplementedError

    def forward(
        self,
        queries: Tensor,
        keys: Tensor,
        values: Tensor,
        valid_lens: Tensor | None = None,
        *,
        mask: Tensor | None = None,
        is_causal: bool = False,
        need_weights: bool = True,
    ) -> tuple[Tensor, Tensor | None]:
        """Attend from ``queries`` over ``keys``/``values``.

        Args:
            queries: (B, Q, Dq), or (B, ..., Q, Dq) with more batch axes (e.g. heads).
            keys: (B, K, Dk).
            values: (B, K, Dv).
            valid_lens: optional (B,) or (B, Q) lengths; keys past them get weight 0.
            mask: optional bool tensor broadcastable to the scores (B, ..., Q, K),
                True = attend.
            is_causal: query i (position K - Q + i) sees only keys 0..K - Q + i.
                ``valid_lens``, ``mask`` and ``is_causal`` combine with AND.
            need_weights: when False, return ``(output, None)`` through :meth:`fused`,
                which may skip materialising the (Q, K) weights.

        Returns:
            ``(output, weights)``: output (B, Q, Dv), weights (B, Q, K) or None.
        """
        check_qkv(queries, keys, values)
        shape = (*queries.shape[:-1], keys.shape[-2])  # the scores' shape (B, ..., Q, K)
        if mask is not None:
            check_mask(mask, shape)
        if not need_weights:
            return self.fused(queries, keys, values, valid_lens, mask, is_causal), None
        keep = combine_masks(shape, valid_lens, mask, is_causal, device=queries.device)
        scores = self.score(queries, keys)  # (B, ..., Q, K)
        return attend(scores, values, mask=keep, dropout=self.dropout)

    def fused(
        self,
        queries: Tensor,
        keys: Tensor,
        values: Tensor,
        valid_lens: Tensor | None,
        mask: Tensor | None,
        is_causal: bool,
    ) -> Tensor:
        """The output alone. Here: the weights path, weights dropped; a subclass with a
        fused kernel (:class:`DotProductAttention`) overrides this."""
        return self.forward(queries, keys, values, valid_lens, mask=mask, is_causal=is_causal)[0]


class DotProductAttention(ScoredAttention):
    r"""Scaled dot-product attention: :math:`a(q, k) = q^\top k / \sqrt{d}`.

    Queries and keys must have the same size d. Same forward contract as
    :class:`ScoredAttention`: ``forward(queries, keys, values, valid_lens=None, *,
    mask=None, is_causal=False, need_weights=True)`` returns ``(output (B, Q, Dv),
    weights (B, Q, K))``; with ``need_weights=False`` it returns ``(output, None)``
    from PyTorch's fused ``F.scaled_dot_product_attention``, which never stores the
    (Q, K) weights (chapter 07 measures what that saves).

    Taught in chapters/03_scoring_functions.ipynb.
    """

    @staticmethod
    def check_sizes(queries: Tensor, keys: Tensor) -> None:
        """Raise unless queries and keys have the same size d (both paths need it)."""
        require_same_size(
            "queries.shape[-1] (query size)",
            queries.shape[-1],
            "keys.shape[-1] (key size)",
            keys.shape[-1],
        )

    def score(self, queries: Tensor, keys: Tensor) -> Tensor:
        self.check_sizes(queries, keys)
        d = queries.shape[-1]
        # a(q, k) = q . k / sqrt(d) = (q / sqrt(d)) . k: scaling the queries first touches
        # Q x d numbers instead of Q x K (what nn.MultiheadAttention does too)
        # (B, Q, d) @ (B, d, K) -> (B, Q, K)
        return (queries / math.sqrt(d)) @ keys.transpose(-2, -1)

    def fused(
        self,
        queries: Tensor,
        keys: Tensor,
        values: Tensor,
        valid_lens: Tensor | None,
        mask: Tensor | None,
        is_causal: bool,
    ) -> Tensor:
        """softmax(q k^T / sqrt(d)) v in one fused PyTorch kernel; masked rows stay finite."""
        self.check_sizes(queries, keys)
        Q, K = queries.shape[-2], keys.shape[-2]
        dropout_p = self.dropout.p if self.training else 0.0
        if is_causal and valid_lens is None and mask is None and Q == K:
            # SDPA's own is_causal is the top-left triangle: the same as ours when Q == K
            return F.scaled_dot_product_attention(
                queries, keys, values, dropout_p=dropout_p, is_causal=True
            )
        keep = combine_masks((*queries.shape[:-1], K), valid_lens, mask, is_causal, queries.device)
        if keep is None:
            return F.scaled_dot_product_attention(queries, keys, values, dropout_p=dropout_p)
        # A query with no key to attend to is 0/0: recent PyTorch returns 0 for it, some
        # older releases NaN. Let it see every key, then set its output to 0 ourselves, as
        # the weights path does (its weights row is all 0): the same on every version.
        has_key = keep.any(dim=-1, keepdim=True)  # (B, ..., Q, 1)
        out = F.scaled_dot_product_attention(
            queries, keys, values, attn_mask=keep | ~has_key, dropout_p=dropout_p
        )  # (B, ..., Q, Dv)
        return out.masked_fill(~has_key, 0.0)


class AdditiveAttention(ScoredAttention):
    r"""Additive (Bahdanau) attention: :math:`a(q, k) = w_v^\top \tanh(W_q q + W_k k)`.

    Works when queries and keys have different sizes. Parameters ``W_q``, ``W_k``,
    ``w_v`` are named as in d2l, so weights can be copied across.

    Args:
        query_size: Dq.  key_size: Dk.  num_hiddens: h, the width of the tanh layer.
        dropout: dropout on the attention weights (training only).

    Taught in chapters/03_scoring_functions.ipynb.
    """

    def __init__(self, query_size: int, key_size: int, num_hiddens: int, dropout: float = 0.0):
        super().__init__(dropout)
        query_size = require_positive_int("query_size", query_size)
        key_size = require_positive_int("key_size", key_size)
        num_hiddens = require_positive_int("num_hiddens", num_hiddens)
        self.W_q = nn.Linear(query_size, num_hiddens, bias=False)
        self.W_k = nn.Linear(key_size, num_hiddens, bias=False)
        self.w_v = nn.Linear(num_hiddens, 1, bias=False)

    def score(self, queries: Tensor, keys: Tensor) -> Tensor:
        require_same_size(
            "queries.shape[-1] (query size)", queries.shape[-1], "query_size", self.W_q.in_features
        )
        require_same_size(
            "keys.shape[-1] (key size)", keys.shape[-1], "key_size", self.W_k.in_features
        )
        q, k = self.W_q(queries), self.W_k(keys)  # (B, Q, h), (B, K, h)
        # every query against every key by broadcasting: (B, Q, 1, h) + (B, 1, K, h)
        features = torch.tanh(q.unsqueeze(-2) + k.unsqueeze(-3))  # (B, Q, K, h)
        return self.w_v(features).squeeze(-1)  # (B, Q, K, 1) -> (B, Q, K)


class BilinearAttention(ScoredAttention):
    r"""Bilinear ("general", Luong) attention: :math:`a(q, k) = q^\top W k`.

    ``W`` is an ``nn.Linear(key_size, query_size, bias=False)``, so
    ``W(k)`` is :math:`W k`.

    Taught in chapters/03_scoring_functions.ipynb.
    """

    def __init__(self, query_size: int, key_size: int, dropout: float = 0.0):
        super().__init__(dropout)
        query_size = require_positive_int("query_size", query_size)
        key_size = require_positive_int("key_size", key_size)
        self.W = nn.Linear(key_size, query_size, bias=False)

    def score(self, queries: Tensor, keys: Tensor) -> Tensor:
        require_same_size(
            "queries.shape[-1] (query size)", queries.shape[-1], "query_size", self.W.out_features
        )
        require_same_size(
            "keys.shape[-1] (key size)", keys.shape[-1], "key_size", self.W.in_features
        )
        Wk = self.W(keys)  # (B, K, Dk) -> (B, K, Dq)
        return queries @ Wk.transpose(-2, -1)  # (B, Q, Dq) @ (B, Dq, K) -> (B, Q, K)
