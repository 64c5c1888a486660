r"""Masks for padded sequences and causal decoding, and the masked softmax attention is built on.

One convention everywhere: a mask is a bool tensor, **True = attend**. Three ways to
say what a query may see combine with logical AND:

* ``valid_lens`` (d2l's): shape (B,) or (B, Q); key k is kept when ``k < valid_len``;
* ``mask``: any bool tensor broadcastable to the scores (B, ..., Q, K);
* ``is_causal``: query i (at position K - Q + i) sees keys 0..K - Q + i.

Shapes: B batch, Q queries, K key-value pairs (the softmax runs over K).
"""

from __future__ import annotations

import torch
from torch import Tensor

from ._validation import (
    require_floating,
    require_int,
    require_ndim,
    require_tensor,
    require_whole_numbers,
)

_LOW_PRECISION = (torch.float16, torch.bfloat16)


def sequence_mask(X: Tensor, valid_len: Tensor, value: float = 0.0) -> Tensor:
    """Replace the entries of ``X`` past each sequence's valid length along axis 1.

    d2l's ``sequence_mask``, except that it returns a new tensor and never writes
    into ``X``.

    Args:
        X: a batch of sequences, shape (B, T, ...).
        valid_len: how many leading steps of each sequence are real, shape (B,).
        value: what the padded steps become.

    Returns:
        A new tensor shaped like ``X`` with ``X[b, t] = value`` for ``t >= valid_len[b]``.

    Shapes:
        X (B, T, ...), valid_len (B,) -> (B, T, ...)

    Taught in chapters/04_masked_softmax.ipynb.
    """
    require_tensor("X", X)
    require_tensor("valid_len", valid_len)
    require_ndim("X", X, tuple(range(2, 9)), "(B, T, ...)")
    if tuple(valid_len.shape) != (X.shape[0],):
        raise ValueError(
            f"valid_len: expected one length per sequence, shape ({X.shape[0]},), "
            f"got shape {tuple(valid_len.shape)}"
        )
    keep = length_mask(valid_len, X.shape[1], name="valid_len")  # (B, T)
    keep = keep.reshape(keep.shape + (1,) * (X.ndim - 2))  # (B, T, 1, ...)
    return X.masked_fill(~keep, value)


def length_mask(valid_lens: Tensor, num_keys: int, *, name: str = "valid_lens") -> Tensor:
    """Boolean mask from valid lengths: ``mask[..., k] = k < valid_lens[...]``.

    Args:
        valid_lens: lengths, any shape; whole numbers in [0, num_keys].
        num_keys: the length of the masked axis.
        name: the argument name used in error messages.

    Returns:
        A bool tensor of shape ``valid_lens.shape + (num_keys,)``, True = attend.

    Shapes:
        valid_lens (B,) -> (B, K);  valid_lens (B, Q) -> (B, Q, K)

    Taught in chapters/04_masked_softmax.ipynb.
    """
    require_tensor(name, valid_lens)
    require_whole_numbers(name, valid_lens)
    if valid_lens.numel() and (valid_lens.min() < 0 or valid_lens.max() > num_keys):
        raise ValueError(
            f"{name}: expected lengths in [0, {num_keys}] (the number of keys), "
            f"got {valid_lens.tolist()}"
        )
    positions = torch.arange(num_keys, device=valid_lens.device)  # (K,)
    return positions < valid_lens.unsqueeze(-1)  # (..., K)


def causal_mask(
    num_queries: int, num_keys: int, device: torch.device | str | None = None
) -> Tensor:
    r"""The causal keep-mask, aligned bottom-right: the queries are the *last* Q positions.

    .. math:: m_{ik} = [\,k \le K - Q + i\,]

    Query i sits at position K - Q + i and sees keys 0 .. K - Q + i, as in FlashAttention.
    For Q == K this is the usual lower triangle; for one new query after K - 1 cached
    keys (decoding with a KV cache) it keeps every key.

    Returns:
        A bool tensor (Q, K), True = attend.

    Taught in chapters/04_masked_softmax.ipynb and chapters/10_causal_decoding_and_kv_cache.ipynb.
    """
    Q = require_int("num_queries", num_queries, low=0)
    K = require_int("num_keys", num_keys, low=0)
    if Q > K:
        raise ValueError(
            f"num_queries: expected at most num_keys ({K}) queries for a causal mask "
            f"(is_causal=True: the queries are the last of the keys' positions), got {Q}"
        )
    rows = torch.arange(Q, device=device).unsqueeze(-1)  # (Q, 1)
    cols = torch.arange(K, device=device)  # (K,)
    return cols <= rows + (K - Q)  # (Q, K)


def valid_lens_mask(shape: tuple[int, ...], valid_lens: Tensor) -> Tensor:
    """The keep-mask for scores of ``shape`` (B, ..., Q, K) from d2l-style valid lengths.

    Shapes:
        valid_lens (B,)   -> (B, 1, ..., 1, K): one length per sequence, all queries
        valid_lens (B, Q) -> (B, 1, ..., Q, K): one length per query

    Taught in chapters/04_masked_softmax.ipynb.
    """
    require_tensor("valid_lens", valid_lens)
    if len(shape) < 2:
        raise ValueError(
            f"valid_lens: needs scores with a batch axis, shape (B, ..., K), "
            f"got scores of shape {tuple(shape)}"
        )
    B, K = shape[0], shape[-1]
    Q = shape[-2] if len(shape) >= 3 else None
    if tuple(valid_lens.shape) == (B,):
        keep = length_mask(valid_lens, K)  # (B, K)
        return keep.reshape((B,) + (1,) * (len(shape) - 2) + (K,))  # (B, 1, ..., 1, K)
    if Q is not None and tuple(valid_lens.shape) == (B, Q):
        keep = length_mask(valid_lens, K)  # (B, Q, K)
        return keep.reshape((B,) + (1,) * (len(shape) - 3) + (Q, K))  # (B, 1, ..., Q, K)
    expected = f"({B},) or ({B}, {Q})" if Q is not None else f"({B},)"
    raise ValueError(
        f"valid_lens: expected shape {expected} for scores of shape {tuple(shape)}, "
        f"got shape {tuple(valid_lens.shape)}"
    )


def check_mask(mask: Tensor, shape: tuple[int, ...], target: str = "the scores") -> None:
    """Raise unless ``mask`` is a bool tensor that broadcasts to ``shape`` without growing it."""
    require_tensor("mask", mask)
    if mask.dtype != torch.bool:
        raise TypeError(f"mask: expected a bool tensor (True = attend), got dtype {mask.dtype}")
    try:
        fits = tuple(torch.broadcast_shapes(mask.shape, shape)) == tuple(shape)
    except RuntimeError:
        fits = False
    if not fits:  # a larger mask would silently make the output larger than the scores
        raise ValueError(
            f"mask: expected a shape broadcastable to {target} {tuple(shape)}, "
            f"got {tuple(mask.shape)}"
        )


def combine_masks(
    shape: tuple[int, ...],
    valid_lens: Tensor | None = None,
    mask: Tensor | None = None,
    is_causal: bool = False,
    device: torch.device | None = None,
) -> Tensor | None:
    """One keep-mask for scores of ``shape`` (B, ..., Q, K): valid_lens AND mask AND causal.

    Returns ``None`` when nothing is masked, else a bool tensor broadcastable to ``shape``.
    ``mask`` is assumed already checked with :func:`check_mask`.

    Taught in chapters/04_masked_softmax.ipynb.
    """
    keep = None if valid_lens is None else valid_lens_mask(shape, valid_lens)
    if mask is not None:
        keep = mask if keep is None else keep & mask
    if is_causal:
        causal = causal_mask(shape[-2], shape[-1], device=device)  # (Q, K)
        keep = causal if keep is None else keep & causal
    return keep


def masked_softmax(
    X: Tensor, valid_lens: Tensor | None = None, *, mask: Tensor | None = None
) -> Tensor:
    r"""Softmax over the last axis that gives masked positions exactly zero weight.

    .. math:: \alpha_{k} = \frac{m_k \exp(x_k - M)}{\sum_j m_j \exp(x_j - M)},
        \quad m_k \in \{0, 1\}, \quad M = \max_{j: m_j = 1} x_j

    A row with nothing to attend to (valid length 0, or an all-False mask row) comes
    out all zeros: never NaN (as a bare ``-inf`` fill gives) and never uniform (as d2l's
    ``-1e6`` fill gives). ``X`` is never modified. float16 and bfloat16 inputs are
    computed in float32 and returned in their own dtype.

    Args:
        X: attention scores, shape (B, ..., Q, K).
        valid_lens: optional whole-number lengths, shape (B,) (one per sequence) or
            (B, Q) (one per query), as in d2l.
        mask: optional boolean tensor broadcastable to ``X``; True = attend.
            Combined with ``valid_lens`` by logical and when both are given.

    Returns:
        Attention weights shaped like ``X``; each row sums to 1, or to 0 if fully masked.

    Shapes:
        X (B, Q, K), valid_lens (B,) or (B, Q) -> (B, Q, K)

    Taught in chapters/04_masked_softmax.ipynb.
    """
    require_tensor("X", X)
    require_floating("X", X)
    if X.ndim == 0:
        raise ValueError("X: expected at least one axis to take the softmax over, got a scalar")
    if mask is not None:
        check_mask(mask, tuple(X.shape), "X")
    keep = combine_masks(tuple(X.shape), valid_lens, mask)
    compute_dtype = torch.float32 if X.dtype in _LOW_PRECISION else X.dtype
    scores = X.to(compute_dtype)
    if keep is None:
        return torch.softmax(scores, dim=-1).to(X.dtype)
    # A masked score becomes -inf, so its weight exp(-inf - max) is exactly 0. `where`
    # makes a new tensor: X itself is never written.
    scores = torch.where(keep, scores, float("-inf"))  # (B, ..., Q, K)
    if torch.is_grad_enabled() and X.requires_grad:
        weights = torch.softmax(scores, dim=-1)  # a row with nothing kept: 0/0 = NaN
        # Zero what is masked: a fully masked row becomes all zeros instead of NaN, and a
        # +inf kept score (NaN in its row) cannot leak into the masked entries.
        return torch.where(keep, weights, 0.0).to(X.dtype)
    # Without autograd the same two steps reuse `scores`' memory (softmax and the zero
    # fill in place): one large allocation instead of three. `make bench` needs it for
    # "masked_softmax no slower than d2l's" (d2l writes into its input; the
    # out-of-place path above measured 1.3-2x slower than d2l's).
    torch.softmax(scores, dim=-1, out=scores)
    return scores.masked_fill_(~keep, 0.0).to(X.dtype)
