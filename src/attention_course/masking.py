"""Masks for padded sequences and the masked softmax that attention is built on.

Shapes: B batch, Q queries, K key-value pairs (the softmax runs over K).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from ._validation import require_floating, require_ndim, require_tensor, require_whole_numbers

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
    keep = length_mask(valid_len, X.shape[1], batch_size=X.shape[0], name="valid_len")  # (B, T)
    keep = keep.reshape(keep.shape + (1,) * (X.ndim - 2))  # (B, T, 1, ...)
    return X.masked_fill(~keep, value)


def length_mask(
    valid_lens: Tensor, num_keys: int, *, batch_size: int | None = None, name: str = "valid_lens"
) -> Tensor:
    """Boolean mask from valid lengths: ``mask[..., k] = k < valid_lens[...]``.

    Args:
        valid_lens: lengths, any shape; whole numbers in [0, num_keys].
        num_keys: the length of the masked axis.
        batch_size: when given, ``valid_lens.shape[0]`` must equal it.
        name: the argument name used in error messages.

    Returns:
        A bool tensor of shape ``valid_lens.shape + (num_keys,)``, True = attend.

    Shapes:
        valid_lens (B,) -> (B, K);  valid_lens (B, Q) -> (B, Q, K)

    Taught in chapters/04_masked_softmax.ipynb.
    """
    require_tensor(name, valid_lens)
    require_whole_numbers(name, valid_lens)
    if batch_size is not None and (valid_lens.ndim == 0 or valid_lens.shape[0] != batch_size):
        raise ValueError(
            f"{name}: expected one length per batch element, shape ({batch_size},) or "
            f"({batch_size}, Q), got shape {tuple(valid_lens.shape)}"
        )
    if valid_lens.numel() and (valid_lens.min() < 0 or valid_lens.max() > num_keys):
        raise ValueError(
            f"{name}: expected lengths in [0, {num_keys}] (the number of keys), "
            f"got {valid_lens.tolist()}"
        )
    positions = torch.arange(num_keys, device=valid_lens.device)  # (K,)
    return positions < valid_lens.unsqueeze(-1)  # (..., K)


def valid_lens_mask(X: Tensor, valid_lens: Tensor) -> Tensor:
    """The boolean keep-mask for scores ``X`` (B, ..., Q, K) from d2l-style valid lengths.

    Shapes:
        valid_lens (B,)   -> (B, 1, ..., 1, K): one length per sequence, all queries
        valid_lens (B, Q) -> (B, 1, ..., Q, K): one length per query

    Taught in chapters/04_masked_softmax.ipynb.
    """
    require_tensor("valid_lens", valid_lens)
    B, K = X.shape[0], X.shape[-1]
    Q = X.shape[-2] if X.ndim >= 3 else None
    if tuple(valid_lens.shape) == (B,):
        keep = length_mask(valid_lens, K)  # (B, K)
        return keep.reshape((B,) + (1,) * (X.ndim - 2) + (K,))  # (B, 1, ..., 1, K)
    if Q is not None and tuple(valid_lens.shape) == (B, Q):
        keep = length_mask(valid_lens, K)  # (B, Q, K)
        return keep.reshape((B,) + (1,) * (X.ndim - 3) + (Q, K))  # (B, 1, ..., Q, K)
    expected = f"({B},) or ({B}, {Q})" if Q is not None else f"({B},)"
    raise ValueError(
        f"valid_lens: expected shape {expected} for scores of shape {tuple(X.shape)}, "
        f"got shape {tuple(valid_lens.shape)}"
    )


def masked_softmax(
    X: Tensor, valid_lens: Tensor | None = None, *, mask: Tensor | None = None
) -> Tensor:
    r"""Softmax over the last axis that gives masked positions exactly zero weight.

    .. math:: \alpha_{k} = \frac{m_k \exp(x_k)}{\sum_j m_j \exp(x_j)}, \quad m_k \in \{0, 1\}

    A row with nothing to attend to (valid length 0, or an all-False mask row) comes
    out all zeros: never NaN (as a ``-inf`` fill gives) and never uniform (as d2l's
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
    keep: Tensor | None = None
    if valid_lens is not None:
        keep = valid_lens_mask(X, valid_lens)
    if mask is not None:
        require_tensor("mask", mask)
        if mask.dtype != torch.bool:
            raise TypeError(f"mask: expected a bool tensor (True = attend), got dtype {mask.dtype}")
        try:
            fits = torch.broadcast_shapes(mask.shape, X.shape) == X.shape
        except RuntimeError:
            fits = False
        if not fits:  # a larger mask would silently make the output larger than X
            raise ValueError(
                f"mask: expected a shape broadcastable to X {tuple(X.shape)}, "
                f"got {tuple(mask.shape)}"
            )
        keep = mask if keep is None else keep & mask
    compute_dtype = torch.float32 if X.dtype in _LOW_PRECISION else X.dtype
    if keep is None:
        return F.softmax(X, dim=-1, dtype=compute_dtype).to(X.dtype)
    # Fill with the most negative finite number, not -inf: exp(min - max) is exactly 0
    # for a masked entry, and a fully masked row stays finite (uniform) instead of NaN.
    lowest = torch.finfo(compute_dtype).min
    scores = torch.where(keep, X.to(compute_dtype), lowest)  # one new tensor, one pass
    # Autograd keeps the softmax output, so it needs a new tensor; without autograd the
    # softmax runs in place (out=scores): no second large allocation.
    out = None if torch.is_grad_enabled() and X.requires_grad else scores
    weights = torch.softmax(scores, dim=-1, out=out)  # (B, ..., Q, K)
    # A masked entry already has weight exactly 0 unless its row has nothing above
    # `lowest` (fully masked, or kept scores all -inf or NaN): only then is a pass needed.
    if X.numel() and not (bool(keep.any(dim=-1).all()) and bool(X.amin() > lowest)):
        weights = torch.where(keep, weights, 0.0)  # fully masked rows: uniform -> zeros
    return weights.to(X.dtype)
