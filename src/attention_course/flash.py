r"""Memory-efficient exact attention: the online softmax over key blocks (FlashAttention's tiling).

Naive attention materialises the (Q, K) score matrix. The online softmax (Milakov and
Gimelshein, 2018) needs only a running maximum :math:`m` and a running sum :math:`\ell`
per query, so the keys can be visited one block at a time and the output accumulated
as it goes (Dao et al., 2022). At most a (Q, block_size) piece of the scores exists
at once: memory linear in the sequence length for a fixed block, the same arithmetic.

Shapes: Q queries, K keys, D query/key dim, Dv value dim, "..." any leading axes
(batch, heads) shared by the three inputs (broadcast like a matmul).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from ._validation import (
    require_floating,
    require_ndim,
    require_positive,
    require_positive_int,
    require_same_size,
    require_tensor,
)


def _check(queries: Tensor, keys: Tensor, values: Tensor, is_causal: bool) -> None:
    """Validate the three inputs at the boundary, naming the argument that is wrong."""
    for name, x, hint in (
        ("queries", queries, "(..., Q, D)"),
        ("keys", keys, "(..., K, D)"),
        ("values", values, "(..., K, Dv)"),
    ):
        require_tensor(name, x)
        require_ndim(name, x, tuple(range(2, 9)), hint)
        require_floating(name, x)
    require_same_size("keys.shape[-1] (D)", keys.shape[-1], "queries.shape[-1]", queries.shape[-1])
    require_same_size("values.shape[-2] (K)", values.shape[-2], "keys.shape[-2]", keys.shape[-2])
    if keys.shape[-2] == 0:
        raise ValueError(f"keys: expected at least one key, got shape {tuple(keys.shape)}")
    if not isinstance(is_causal, bool):
        raise TypeError(f"is_causal: expected a bool, got {type(is_causal).__name__}")
    if is_causal and queries.shape[-2] > keys.shape[-2]:
        raise ValueError(
            f"queries: expected at most K = {keys.shape[-2]} queries with is_causal=True "
            f"(the queries are the last positions), got {queries.shape[-2]}"
        )
    if len({queries.device, keys.device, values.device}) != 1:
        raise ValueError(
            f"values: expected queries, keys and values on one device, got "
            f"{queries.device}, {keys.device}, {values.device}"
        )


def flash_attention(
    queries: Tensor,
    keys: Tensor,
    values: Tensor,
    *,
    block_size: int = 64,
    is_causal: bool = False,
    scale: float | None = None,
) -> Tensor:
    r"""Exact softmax attention computed one block of keys at a time (online softmax).

    Equal to ``F.scaled_dot_product_attention(queries, keys, values, is_causal=...,
    scale=...)`` for any ``block_size``, including ones that do not divide K, and stable
    for large logits: every exponent is taken after subtracting the running maximum.
    For each block of keys :math:`j`, with scores :math:`S_j = q K_j^\top \cdot s`:

    .. math::
        m' = \max(m, \max S_j), \quad
        \ell' = e^{m - m'} \ell + \textstyle\sum e^{S_j - m'}, \quad
        O' = e^{m - m'} O + e^{S_j - m'} V_j,

    and the result is :math:`O / \ell`. Only the output is returned, not the attention
    weights: they are never materialised (that is the point), and returning them would
    cost the (Q, K) memory this function avoids. The largest tensor it allocates is a
    (..., Q, block_size) block of scores (or the (..., Q, Dv) output).

    Args:
        queries: (..., Q, D), floating point.
        keys: (..., K, D), K >= 1.
        values: (..., K, Dv).
        block_size: keys per block, a positive int (NumPy ints accepted); larger blocks
            mean fewer, bigger steps.
        is_causal: mask the future, bottom-right aligned like the package's
            ``is_causal``: query i is position K - Q + i and sees keys 0..K - Q + i
            (SDPA's ``is_causal`` when Q == K). Needs Q <= K.
        scale: the factor on the scores; default :math:`1/\sqrt{D}`.

    Returns:
        The attention output, in the dtype of ``queries`` (float16/bfloat16 inputs are
        computed in float32 and cast back).

    Shapes:
        queries (..., Q, D), keys (..., K, D), values (..., K, Dv) -> (..., Q, Dv)

    Taught in chapters/11_memory_efficient_attention.ipynb.
    """
    _check(queries, keys, values, is_causal)
    block = require_positive_int("block_size", block_size)
    D = queries.shape[-1]
    s = 1.0 / math.sqrt(D) if scale is None else require_positive("scale", scale)
    Q, K = queries.shape[-2], keys.shape[-2]
    out_dtype = queries.dtype
    work = torch.promote_types(torch.promote_types(out_dtype, keys.dtype), values.dtype)
    work = torch.promote_types(work, torch.float32)  # half inputs: accumulate in float32
    q = queries.to(work) * s  # (..., Q, D): scale once, not once per block
    lead = torch.broadcast_shapes(queries.shape[:-2], keys.shape[:-2], values.shape[:-2])
    device = queries.device
    # running statistics per query: m = max of the scores seen, l (`total`) = sum of exp(s - m)
    m = torch.full((*lead, Q, 1), -math.inf, dtype=work, device=device)  # (..., Q, 1)
    total = torch.zeros((*lead, Q, 1), dtype=work, device=device)  # (..., Q, 1)
    acc = torch.zeros((*lead, Q, values.shape[-1]), dtype=work, device=device)  # (..., Q, Dv)
    positions = torch.arange(K - Q, K, device=device).unsqueeze(-1)  # (Q, 1): query i at K-Q+i
    for start in range(0, K, block):
        stop = min(start + block, K)
        k_j = keys[..., start:stop, :].to(work)  # (..., Bk, D), Bk = stop - start
        v_j = values[..., start:stop, :].to(work)  # (..., Bk, Dv)
        # S_j = q K_j^T s: (..., Q, D) @ (..., D, Bk) -> (..., Q, Bk)
        scores = q @ k_j.transpose(-2, -1)
        if is_causal and stop - 1 > K - Q:  # some query in this block would see its future
            keep = torch.arange(start, stop, device=device) <= positions  # (Q, Bk)
            scores = scores.masked_fill(~keep, -math.inf)
        # m' = max(m, max_k S_jk): (..., Q, 1). Finite from the first block on, since every
        # query sees key 0 (even when causal, as Q <= K), so no (-inf) - (-inf) = nan below
        m_new = torch.maximum(m, scores.amax(dim=-1, keepdim=True))
        # P_j = exp(S_j - m'): (..., Q, Bk), every entry in [0, 1] (masked ones exactly 0)
        p = torch.exp(scores - m_new)
        # the rescaling factor e^{m - m'} <= 1 for what was accumulated under the old max
        # (0 in the first block, where m = -inf)
        rescale = torch.exp(m - m_new)  # (..., Q, 1)
        # l' = e^{m - m'} l + sum_k P_jk
        total = rescale * total + p.sum(dim=-1, keepdim=True)
        # O' = e^{m - m'} O + P_j V_j: (..., Q, Bk) @ (..., Bk, Dv) -> (..., Q, Dv)
        acc = rescale * acc + p @ v_j
        m = m_new
    # O / l: l >= 1 for every query that saw at least one key (its max contributes e^0)
    return (acc / total).to(out_dtype)  # (..., Q, Dv)
