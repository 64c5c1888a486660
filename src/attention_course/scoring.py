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
from torch import Tensor, nn

from ._validation import require_ndim, require_same_size, require_tensor
from .masking import masked_softmax


def check_qkv(queries: Tensor, keys: Tensor, values: Tensor) -> None:
    """Raise a clear error unless queries (..., Q, Dq), keys (..., K, Dk), values (..., K, Dv) fit.

    Taught in chapters/03_scoring_functions.ipynb.
    """
    for name, x in (("queries", queries), ("keys", keys), ("values", values)):
        require_tensor(name, x)
        require_ndim(name, x, tuple(range(2, 9)), "(B, T, D) or (B, ..., T, D)")
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
    dropped = weights if dropout is None else dropout(weights)
    return dropped @ values, weights  # (B, ..., Q, K) @ (B, ..., K, Dv) -> (B, ..., Q, Dv)


class ScoredAttention(nn.Module):
    """Base class: subclasses define ``score(queries, keys)``; ``forward`` is shared.

    Taught in chapters/03_scoring_functions.ipynb.
    """

    def __init__(self, dropout: float = 0.0) -> None:
        super().__init__()
        self.dropout = nn.Dropout(dropout)

    def score(self, queries: Tensor, keys: Tensor) -> Tensor:
        """Attention scores, (B, ..., Q, Dq) x (B, ..., K, Dk) -> (B, ..., Q, K)."""
        raise NotImplementedError

    def forward(
        self,
        queries: Tensor,
        keys: Tensor,
        values: Tensor,
        valid_lens: Tensor | None = None,
    ) -> tuple[Tensor, Tensor]:
        """Attend from ``queries`` over ``keys``/``values``.

        Args:
            queries: (B, Q, Dq).
            keys: (B, K, Dk).
            values: (B, K, Dv).
            valid_lens: optional (B,) or (B, Q) lengths; keys past them get weight 0.

        Returns:
            ``(output, weights)``: output (B, Q, Dv), weights (B, Q, K).
        """
        check_qkv(queries, keys, values)
        scores = self.score(queries, keys)  # (B, Q, K)
        return attend(scores, values, valid_lens, dropout=self.dropout)


class DotProductAttention(ScoredAttention):
    r"""Scaled dot-product attention: :math:`a(q, k) = q^\top k / \sqrt{d}`.

    Queries and keys must have the same size d. Same forward contract as
    :class:`ScoredAttention`: ``forward(queries, keys, values, valid_lens=None)``
    returns ``(output (B, Q, Dv), weights (B, Q, K))``.

    Taught in chapters/03_scoring_functions.ipynb.
    """

    def score(self, queries: Tensor, keys: Tensor) -> Tensor:
        d = queries.shape[-1]
        require_same_size(
            "queries.shape[-1] (query size)", d, "keys.shape[-1] (key size)", keys.shape[-1]
        )
        # a(q, k) = q . k / sqrt(d)
        return queries @ keys.transpose(-2, -1) / math.sqrt(d)  # (B, Q, d) @ (B, d, K) -> (B, Q, K)


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
