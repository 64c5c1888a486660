"""Every checker accepts correct code written several ways, and names each typical bug.

BUGS lists student-style wrong solutions with the words the failure message must
contain (``None``: caught with a precise generic message, not named); CORRECT lists
right solutions in other styles (einsum, SDPA, loops, torch.where, d2l). ``test_rates``
measures the share of bugs named, caught, and correct solutions rejected; run this file
with ``python tests/test_checks.py`` to print them.
"""

from __future__ import annotations

import math
import re

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from attention_course import (
    DotProductAttention,
    MultiHeadAttention,
    NWKernelRegression,
    attention_entropy,
    masked_softmax,
    merge_heads,
    nadaraya_watson,
    split_heads,
)
from attention_course.checks import (
    _mha_pieces,
    check_attention_entropy,
    check_dot_product_attention,
    check_masked_softmax,
    check_multihead_attention,
    check_nadaraya_watson,
    check_softmax,
    check_split_merge_heads,
)


def keep_of(X, valid_lens):
    """Student-style keep mask (B, Q, K) from (B,) or (B, Q) lengths; True = attend."""
    if valid_lens is None:
        return torch.ones_like(X, dtype=torch.bool)
    lens = valid_lens[:, None] if valid_lens.ndim == 1 else valid_lens  # (B, 1) or (B, Q)
    return torch.arange(X.shape[-1]) < lens[..., None]  # (B, 1|Q, K)


# ================================================================ softmax (chapter 01)
def sm_exp(x, temperature=1.0, dim=-1):
    if temperature <= 0:
        raise ValueError("temperature")
    z = x / temperature
    e = torch.exp(z - z.amax(dim=dim, keepdim=True))
    return e / e.sum(dim=dim, keepdim=True)


def sm_logsumexp(x, temperature=1.0, dim=-1):
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    z = x / temperature
    return torch.exp(z - torch.logsumexp(z, dim=dim, keepdim=True))


def sm_max_values(x, temperature=1.0, dim=-1):
    if temperature <= 0:
        raise ValueError
    z = x / temperature
    z = z - z.max(dim=dim, keepdim=True).values
    return z.exp() / z.exp().sum(dim, keepdim=True)


def sm_bug(kind):
    def fn(x, temperature=1.0, dim=-1):
        if temperature <= 0 and kind != "no-raise":
            raise ValueError("temperature")
        z = x * temperature if kind == "times-T" else x if kind == "no-T" else x / temperature
        if kind == "no-max":
            e = torch.exp(z)
        elif kind == "global-max":
            e = torch.exp(z - z.max())
        else:
            e = torch.exp(z - z.amax(dim=-1 if kind == "last-axis" else dim, keepdim=True))
        if kind == "sum-all":
            return e / e.sum()
        if kind == "last-axis":
            return e / e.sum(-1, keepdim=True)
        if kind == "torch-softmax":
            return torch.softmax(z, dim=dim)
        if kind == "method-softmax":
            return z.softmax(dim)
        if kind == "log":
            return z - torch.logsumexp(z, dim=dim, keepdim=True)
        return e / e.sum(dim, keepdim=True)

    return fn


def sm_zero_division(x, temperature=1.0, dim=-1):
    z = x / (1 / temperature) ** -1 if temperature else x / 0  # no check: 0 gives inf, not an error
    e = torch.exp(z - z.amax(dim=dim, keepdim=True))
    return e / e.sum(dim, keepdim=True)


def sm_only_negative(x, temperature=1.0, dim=-1):
    if temperature < 0:  # forgets temperature == 0
        raise ValueError("temperature")
    return sm_exp(x, temperature if temperature else 1e-9, dim)


def sm_no_dim(x, temperature=1.0):
    return sm_exp(x, temperature)


# ================================================================ masked softmax (chapter 04)
def ms_loop(X, valid_lens=None):
    """Correct, written with explicit loops."""
    out = torch.zeros_like(X)
    for b in range(X.shape[0]):
        for q in range(X.shape[1]):
            n = (
                X.shape[-1]
                if valid_lens is None
                else int(valid_lens[b] if valid_lens.ndim == 1 else valid_lens[b, q])
            )
            if n:
                out[b, q, :n] = torch.softmax(X[b, q, :n], -1)
    return out


def ms_keep(X, valid_lens=None, fill=-1e6, dim=-1, zero_empty=True):
    keep = keep_of(X, valid_lens)
    out = torch.softmax(X.masked_fill(~keep, fill), dim)
    return out * keep if zero_empty else out


def ms_where_nan_to_num(X, valid_lens=None):
    keep = keep_of(X, valid_lens)
    return torch.softmax(torch.where(keep, X, -torch.inf), -1).nan_to_num(0.0)


def ms_kept_max(X, valid_lens=None):
    """The chapter's formula: m exp(x - c) / sum m exp(x - c), c the kept maximum."""
    keep = keep_of(X, valid_lens).expand_as(X)
    c = X.masked_fill(~keep, -torch.inf).amax(-1, keepdim=True)
    c = torch.where(torch.isfinite(c), c, 0.0)
    e = torch.exp((X - c).masked_fill(~keep, -torch.inf))
    return e / e.sum(-1, keepdim=True).clamp_min(1e-30)


def ms_kept_max_no_guard(X, valid_lens=None):
    """The chapter's formula, but 0/0 = NaN for a row with nothing kept."""
    keep = keep_of(X, valid_lens).expand_as(X)
    c = X.masked_fill(~keep, -torch.inf).amax(-1, keepdim=True)
    c = torch.where(torch.isfinite(c), c, 0.0)
    e = torch.exp((X - c).masked_fill(~keep, -torch.inf))
    return e / e.sum(-1, keepdim=True)


def ms_float64(X, valid_lens=None):
    keep = keep_of(X, valid_lens)
    out = torch.softmax(X.double().masked_fill(~keep, -1e300), -1) * keep
    return out.to(X.dtype)


def ms_d2l_fixed(X, valid_lens=None):
    """d2l's masked_softmax on a copy, with empty rows zeroed."""
    if valid_lens is None:
        return F.softmax(X, dim=-1)
    shape = X.shape
    lens = (
        valid_lens.repeat_interleave(shape[1]) if valid_lens.ndim == 1 else valid_lens.reshape(-1)
    )
    flat = X.reshape(-1, shape[-1]).clone()
    mask = torch.arange(shape[-1])[None, :] < lens[:, None]
    flat[~mask] = -1e6
    return (F.softmax(flat, dim=-1) * mask).reshape(shape)


def ms_exp_bug(shift, zero_empty=True):
    def fn(X, valid_lens=None):
        keep = keep_of(X, valid_lens)
        c = 0.0 if shift == "none" else X.amax(-1, keepdim=True)
        if shift == "kept":
            c = X.masked_fill(~keep, -torch.inf).amax(-1, keepdim=True)
            c = torch.where(torch.isfinite(c), c, 0.0)
        e = torch.exp(X - c) * keep
        total = e.sum(-1, keepdim=True)
        return e / (total.clamp_min(1e-30) if zero_empty else total)

    return fn


def ms_repeat(X, valid_lens=None):
    """d2l's flattening with repeat instead of repeat_interleave."""
    if valid_lens is None:
        return F.softmax(X, -1)
    shape = X.shape
    lens = valid_lens.repeat(shape[1]) if valid_lens.ndim == 1 else valid_lens.reshape(-1)
    flat = X.reshape(-1, shape[-1])
    mask = torch.arange(shape[-1])[None, :] < lens[:, None]
    return (F.softmax(flat.masked_fill(~mask, -1e6), -1) * mask).reshape(shape)


def ms_in_place(X, valid_lens=None):
    keep = keep_of(X, valid_lens).expand_as(X)
    X[~keep] = -1e6
    return torch.softmax(X, -1) * keep


def ms_off_by_one(X, valid_lens=None):
    if valid_lens is None:
        return torch.softmax(X, -1)
    lens = valid_lens[:, None] if valid_lens.ndim == 1 else valid_lens
    keep = torch.arange(X.shape[-1]) <= lens[..., None]
    return torch.softmax(X.masked_fill(~keep, -1e6), -1) * keep


def ms_inverted(X, valid_lens=None):
    if valid_lens is None:
        return torch.softmax(X, -1)
    lens = valid_lens[:, None] if valid_lens.ndim == 1 else valid_lens
    drop = torch.arange(X.shape[-1]) < lens[..., None]  # the keep mask used as "masked"
    return torch.softmax(X.masked_fill(drop, -1e6), -1) * ~drop


def ms_forgets_none(X, valid_lens=None):
    lens = valid_lens[:, None] if valid_lens.ndim == 1 else valid_lens  # fails on None
    keep = torch.arange(X.shape[-1]) < lens[..., None]
    return torch.softmax(X.masked_fill(~keep, -1e6), -1) * keep


def ms_mask_queries(X, valid_lens=None):
    if valid_lens is None:
        return torch.softmax(X, -1)
    keep = torch.arange(X.shape[1])[None, :, None] < valid_lens.reshape(X.shape[0], -1)[:, :1, None]
    return torch.softmax(X, -1) * keep  # masks queries, not keys


def ms_softmax_then_fill(X, valid_lens=None):
    return torch.softmax(X, -1).masked_fill(~keep_of(X, valid_lens), 0.0)


def ms_mul_mask(X, valid_lens=None):
    keep = keep_of(X, valid_lens)
    return torch.softmax(X * keep, -1)  # multiplying scores by the mask = filling with 0


def ms_fill_small(X, valid_lens=None):
    keep = keep_of(X, valid_lens)
    return torch.softmax(X.masked_fill(~keep, -10.0), -1)  # -10 is not large enough


# ================================================================ dot-product attention (03)
def dpa(q, k, v, valid_lens=None, scale=None):
    d = q.shape[-1]
    scores = torch.einsum("bqd,bkd->bqk", q, k) / (math.sqrt(d) if scale is None else scale)
    w = masked_softmax(scores, valid_lens)
    return w @ v, w


def dpa_sdpa(q, k, v, valid_lens=None):
    keep = keep_of(q @ k.transpose(1, 2), valid_lens).expand(q.shape[0], q.shape[1], k.shape[1])
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=keep)
    w = masked_softmax(q @ k.transpose(1, 2) / math.sqrt(q.shape[-1]), mask=keep)
    return out, w


def dpa_loop(q, k, v, valid_lens=None):
    B, Q, d = q.shape
    out, weights = torch.zeros(B, Q, v.shape[-1]), torch.zeros(B, Q, k.shape[1])
    for b in range(B):
        for i in range(Q):
            n = k.shape[1]
            if valid_lens is not None:
                n = int(valid_lens[b] if valid_lens.ndim == 1 else valid_lens[b, i])
            s = torch.tensor([float(q[b, i] @ k[b, j]) / math.sqrt(d) for j in range(n)])
            weights[b, i, :n] = torch.softmax(s, -1)
            out[b, i] = weights[b, i] @ v[b]
    return out, weights


def dpa_where(q, k, v, valid_lens=None):
    scores = q @ k.mT / q.shape[-1] ** 0.5
    keep = keep_of(scores, valid_lens)
    w = torch.softmax(torch.where(keep, scores, torch.finfo(scores.dtype).min), dim=-1)
    return torch.bmm(w, v), w


def dpa_bug(kind):
    def fn(queries, keys, values, valid_lens=None):
        d = queries.shape[-1]
        scale = {
            "no-scale": 1.0,
            "by-d": d,
            "by-dv": math.sqrt(values.shape[-1]),
            "by-num-keys": math.sqrt(keys.shape[1]),
            "times": 1 / math.sqrt(d),
        }.get(kind, math.sqrt(d))
        scores = queries @ keys.transpose(1, 2)
        if kind != "after":
            scores = scores / scale
        keep = keep_of(scores, valid_lens)
        if kind == "inverted":
            keep = ~keep if valid_lens is not None else keep
        if kind == "dim1":
            w = torch.softmax(scores.masked_fill(~keep, -1e6), dim=1)
        elif kind == "ignored":
            w = torch.softmax(scores, -1)
        elif kind == "no-softmax":
            w = scores.masked_fill(~keep, 0)
        elif kind == "fill0":
            w = torch.softmax(scores.masked_fill(~keep, 0), -1)
        elif kind == "no-renorm":
            w = torch.softmax(scores, -1) * keep
        elif kind == "repeat":
            w = ms_repeat(scores, valid_lens)
        else:
            w = masked_softmax(scores, mask=keep.expand_as(scores))
        if kind == "after":
            w = w / math.sqrt(d)
        if kind == "only-output":
            return w @ values
        if kind == "weights-T":
            return w @ values, w.transpose(1, 2)
        if kind == "scores-as-weights":
            return w @ values, scores
        return w @ values, w

    return fn


def dpa_in_place(queries, keys, values, valid_lens=None):
    queries /= math.sqrt(queries.shape[-1])
    w = masked_softmax(queries @ keys.transpose(1, 2), valid_lens)
    return w @ values, w


def dpa_swapped(queries, keys, values, valid_lens=None):
    w = masked_softmax(keys @ queries.transpose(1, 2) / 2, valid_lens)  # (B, K, Q)
    return w @ values, w


# ================================================================ heads (chapter 05)
def split_view(X, h):
    B, T, D = X.shape
    return X.view(B, T, h, D // h).permute(0, 2, 1, 3)


def split_stack(X, h):
    return torch.stack(X.chunk(h, dim=-1), dim=1)  # H x (B, T, Dh) -> (B, H, T, Dh)


def split_unflatten(X, h):
    return X.unflatten(-1, (h, -1)).movedim(2, 1)


def merge_cat(X):
    return torch.cat(list(X.unbind(1)), dim=-1)  # concatenate the heads


def merge_flatten(X):
    return X.movedim(1, 2).flatten(2)


def merge_view(X):
    B, H, T, Dh = X.shape
    return X.transpose(1, 2).view(B, T, H * Dh)  # fails on a contiguous (B, H, T, Dh)


def merge_no_reshape(X):
    return X.transpose(1, 2)  # (B, T, H, Dh), never flattened


# ================================================================ multi-head attention (05)
class ParallelMHA(nn.Module):
    """Correct, chapter 05's layout: (B*H, T, Dh) with hooks each bug overrides."""

    def __init__(self, num_hiddens, num_heads, dropout=0.0):
        super().__init__()
        self.num_heads = num_heads
        self.W_q, self.W_k, self.W_v, self.W_o = (
            nn.Linear(num_hiddens, num_hiddens, bias=False) for _ in range(4)
        )

    def fold(self, X):
        B, T, D = X.shape
        return (
            X.reshape(B, T, self.num_heads, -1)
            .permute(0, 2, 1, 3)
            .reshape(B * self.num_heads, T, -1)
        )

    def unfold(self, X):
        BH, T, Dh = X.shape
        X = X.reshape(-1, self.num_heads, T, Dh).permute(0, 2, 1, 3)
        return X.reshape(X.shape[0], T, -1)

    def repeat_lens(self, valid_lens):
        return valid_lens.repeat_interleave(self.num_heads, dim=0)

    def scale(self, Dh, K):
        return math.sqrt(Dh)

    def weights(self, scores, valid_lens):
        return masked_softmax(scores, valid_lens)

    def mix(self, X):
        return self.W_o(X)

    def forward(self, queries, keys, values, valid_lens=None):
        q, k, v = (
            self.fold(self.W_q(queries)),
            self.fold(self.W_k(keys)),
            self.fold(self.W_v(values)),
        )
        if valid_lens is not None:
            valid_lens = self.repeat_lens(valid_lens)
        scores = q @ k.transpose(1, 2) / self.scale(q.shape[-1], k.shape[1])
        w = self.weights(scores, valid_lens)  # (B*H, Q, K)
        out = self.mix(self.unfold(w @ v))
        return out, w.reshape(-1, self.num_heads, *w.shape[1:])


class RepeatBug(ParallelMHA):
    def repeat_lens(self, valid_lens):
        return valid_lens.repeat(self.num_heads, *[1] * (valid_lens.ndim - 1))


class WidthBug(ParallelMHA):
    def scale(self, Dh, K):
        return math.sqrt(self.num_heads * Dh)


class ReshapeBug(ParallelMHA):
    def fold(self, X):
        B, T, D = X.shape
        return X.reshape(B * self.num_heads, T, D // self.num_heads)


class NoWoBug(ParallelMHA):
    def mix(self, X):
        return X


class DhBug(ParallelMHA):
    def scale(self, Dh, K):
        return Dh


class NoScaleBug(ParallelMHA):
    def scale(self, Dh, K):
        return 1.0


class KeysScaleBug(ParallelMHA):
    def scale(self, Dh, K):
        return math.sqrt(K)


class AfterSoftmaxBug(ParallelMHA):
    def scale(self, Dh, K):
        self._dh = Dh
        return 1.0

    def weights(self, scores, valid_lens):
        return masked_softmax(scores, valid_lens) / math.sqrt(self._dh)


class MergeNoTransposeBug(ParallelMHA):
    def unfold(self, X):
        BH, T, Dh = X.shape
        return X.reshape(-1, T, self.num_heads * Dh)


class MergeOrderBug(ParallelMHA):
    def unfold(self, X):
        BH, T, Dh = X.shape
        X = X.reshape(-1, self.num_heads, T, Dh).permute(0, 2, 3, 1)  # (B, T, Dh, H)
        return X.reshape(X.shape[0], T, -1)


class RoundRobinBug(ParallelMHA):
    def fold(self, X):
        B, T, D = X.shape
        return (
            X.reshape(B, T, -1, self.num_heads)
            .permute(0, 3, 1, 2)
            .reshape(B * self.num_heads, T, -1)
        )


class MaskIgnoredBug(ParallelMHA):
    def weights(self, scores, valid_lens):
        return torch.softmax(scores, -1)


class InvertedMaskBug(ParallelMHA):
    def weights(self, scores, valid_lens):
        return ms_inverted(scores, valid_lens)


class QueryAxisBug(ParallelMHA):
    def weights(self, scores, valid_lens):
        return ms_keep(scores, valid_lens, dim=1)


class OnlyOutputBug(ParallelMHA):
    def forward(self, queries, keys, values, valid_lens=None):
        return super().forward(queries, keys, values, valid_lens)[0]


class NoDropoutArg(ParallelMHA):
    def __init__(self, num_hiddens, num_heads):
        super().__init__(num_hiddens, num_heads)


class NoValidLensArg(ParallelMHA):
    def forward(self, queries, keys, values):
        return super().forward(queries, keys, values)


class HeadsAxisMHA(nn.Module):
    """Correct: heads on their own axis, einsum, a broadcast mask (the exercise's way)."""

    def __init__(self, num_hiddens, num_heads, dropout=0.0):
        super().__init__()
        self.h = num_heads
        self.W_q, self.W_k, self.W_v, self.W_o = (
            nn.Linear(num_hiddens, num_hiddens, bias=False) for _ in range(4)
        )
        self.dropout = nn.Dropout(dropout)

    def forward(self, queries, keys, values, valid_lens=None):
        q, k, v = (
            split_view(W(x), self.h)
            for W, x in ((self.W_q, queries), (self.W_k, keys), (self.W_v, values))
        )
        scores = torch.einsum("bhqd,bhkd->bhqk", q, k) / math.sqrt(q.shape[-1])
        keep = None
        if valid_lens is not None:
            lens = (
                valid_lens[:, None, None, None]
                if valid_lens.ndim == 1
                else valid_lens[:, None, :, None]
            )
            keep = torch.arange(k.shape[2]) < lens  # (B, 1, 1|Q, K)
        w = masked_softmax(scores, mask=keep)
        return self.W_o(merge_cat(self.dropout(w) @ v)), w


class SDPAMHA(HeadsAxisMHA):
    """Correct: the fused kernel for the output, the weights computed beside it."""

    def forward(self, queries, keys, values, valid_lens=None):
        _, w = super().forward(queries, keys, values, valid_lens)
        q, k, v = (
            split_view(W(x), self.h)
            for W, x in ((self.W_q, queries), (self.W_k, keys), (self.W_v, values))
        )
        out = F.scaled_dot_product_attention(
            q, k, v, attn_mask=w > 0 if valid_lens is not None else None
        )
        return self.W_o(merge_flatten(out)), w


class LoopHeadsMHA(HeadsAxisMHA):
    """Correct: one head at a time with DotProductAttention on slices of the projections."""

    def forward(self, queries, keys, values, valid_lens=None):
        Dh = self.W_q.out_features // self.h
        q, k, v = self.W_q(queries), self.W_k(keys), self.W_v(values)
        outs, weights = [], []
        for i in range(self.h):
            part = slice(i * Dh, (i + 1) * Dh)
            o, w = DotProductAttention()(q[..., part], k[..., part], v[..., part], valid_lens)
            outs.append(o)
            weights.append(w)
        return self.W_o(torch.cat(outs, -1)), torch.stack(weights, 1)


# ================================================================ entropy (chapter 06)
def entropy_where(w, dim=-1):
    return -(w * torch.log(torch.where(w > 0, w, 1.0))).sum(dim)


def entropy_entr_masked(w, dim=-1):
    return -(w * torch.log(w.masked_fill(w == 0, 1.0))).sum(dim=dim)


def entropy_xlogy_safe(w, dim=-1):
    safe = torch.where(w > 0, w, torch.ones_like(w))
    return -torch.xlogy(w, safe).sum(dim)


def entropy_clamped(w, dim=-1):
    return -(w * torch.log(w.clamp_min(1e-30))).sum(dim)  # exact for every weight >= 1e-30


def entropy_bug(kind):
    def fn(weights, dim=-1):
        safe = torch.where(weights > 0, weights, 1.0)
        if kind == "log2":
            return -(weights * torch.log2(safe)).sum(dim)
        if kind == "log10":
            return -(weights * torch.log10(safe)).sum(dim)
        if kind == "no-minus":
            return (weights * torch.log(safe)).sum(dim)
        if kind == "mean":
            return -(weights * torch.log(safe)).mean(dim)
        if kind == "last-axis":
            return -(weights * torch.log(safe)).sum(-1)
        if kind == "keepdim":
            return -(weights * torch.log(safe)).sum(dim, keepdim=True)
        if kind == "sum-all":
            return -(weights * torch.log(safe)).sum()
        if kind == "nan":
            return -(weights * torch.log(weights)).sum(dim)
        if kind.startswith("eps"):
            return -(weights * torch.log(weights + float(kind[3:]))).sum(dim)
        if kind.startswith("clamp"):
            return -(weights * torch.log(weights.clamp(min=float(kind[5:])))).sum(dim)
        if kind == "nan-grad":  # right values, NaN gradient: the log sees the zeros
            return -torch.where(weights > 0, weights * torch.log(weights), 0.0).sum(dim)
        if kind == "nan-to-num":
            return -(weights * torch.log(weights)).nan_to_num(0.0).sum(dim)
        raise ValueError(kind)

    return fn


def entropy_no_dim(weights):
    return attention_entropy(weights)


def entropy_in_place(weights, dim=-1):
    weights.clamp_(min=1e-12)
    return -(weights * weights.log()).sum(dim)


# ================================================================ Nadaraya-Watson (chapter 02)
def nw_explicit(queries, keys, values, bandwidth=1.0):
    s = -((queries[:, None] - keys[None, :]) ** 2) / (2 * bandwidth**2)
    k = torch.exp(s - s.amax(-1, keepdim=True))
    w = k / k.sum(-1, keepdim=True)
    return w @ values, w


def nw_logsumexp(queries, keys, values, bandwidth=1.0):
    s = -(torch.cdist(queries[:, None], keys[:, None]) ** 2) / 2 / bandwidth**2
    w = torch.exp(s - torch.logsumexp(s, -1, keepdim=True))
    return (w * values).sum(-1), w


def nw_d2l_style(queries, keys, values, bandwidth=1.0):
    n = keys.shape[0]
    rep = queries.repeat_interleave(n).reshape(-1, n)  # (Q, N)
    w = F.softmax(-(((rep - keys) / bandwidth) ** 2) / 2, dim=1)
    return torch.bmm(w.unsqueeze(1), values.expand(len(queries), n).unsqueeze(-1)).reshape(-1), w


def nw_module(queries, keys, values, bandwidth=1.0):
    return NWKernelRegression(w_init=1 / bandwidth)(queries, keys, values)


def nw_unsqueeze(queries, keys, values, bandwidth=1.0):
    w = torch.softmax(-((queries.unsqueeze(1) - keys) ** 2) / (2 * bandwidth**2), dim=1)
    return w @ values, w


def dpa_bmm_d2l_fill(queries, keys, values, valid_lens=None):
    """d2l's recipe (bmm, -1e6 fill) on a copy: right when no row is fully masked."""
    scores = torch.bmm(queries, keys.transpose(1, 2)) / keys.shape[-1] ** 0.5
    if valid_lens is not None:
        scores = scores.masked_fill(~keep_of(scores, valid_lens), -1e6)
    w = F.softmax(scores, dim=-1)
    return torch.bmm(w, values), w


def ms_where_inf_nan_to_num_twice(X, valid_lens=None):
    keep = keep_of(X, valid_lens)
    scores = torch.where(keep, X, float("-inf"))
    w = torch.exp(scores - scores.amax(-1, keepdim=True).nan_to_num(0.0, neginf=0.0))
    return (w / w.sum(-1, keepdim=True)).nan_to_num(0.0)


def nw_bug(kind):
    def fn(queries, keys, values, bandwidth=1.0):
        d = queries[:, None] - keys[None, :]
        s = bandwidth
        scores = {
            "1/2": -(d**2) / s**2,
            "sigma": -(d**2) / (2 * s),
            "sigma4": -(d**2) / (2 * (s**2) ** 2),
            "times": -((d * s) ** 2) / 2,
            "sign": d**2 / (2 * s**2),
            "abs": -d.abs() / (2 * s**2),
        }.get(kind, -(d**2) / (2 * s**2))
        if kind == "ratio":
            w = torch.exp(scores) / torch.exp(scores).sum(-1, keepdim=True)
        elif kind == "unnormalised":
            w = torch.exp(scores)
        else:
            w = torch.softmax(scores, dim=0 if kind == "dim0" else -1)
        out = (w * values).sum(-1)
        if kind == "only-output":
            return out
        if kind == "weights-T":
            return out, w.T
        return out, w

    return fn


def nw_sigma_name(queries, keys, values, sigma=1.0):
    return nadaraya_watson(queries, keys, values, sigma)


def nw_in_place(queries, keys, values, bandwidth=1.0):
    keys -= 0.0
    values.mul_(1.0)
    queries.unsqueeze_(0)  # changes the caller's tensor
    return nadaraya_watson(queries[0], keys, values, bandwidth)


# ================================================================ the registry
def two(split, merge):
    return lambda: check_split_merge_heads(split, merge)


BUGS = [
    # (check, student code, words the message must contain; None = caught, not named)
    (check_softmax, sm_bug("times-T"), "multiplied by the temperature"),
    (check_softmax, sm_bug("no-T"), "temperature is ignored"),
    (check_softmax, sm_bug("no-max"), "overflows"),
    (check_softmax, sm_bug("global-max"), "maximum of the whole tensor"),
    (check_softmax, sm_bug("last-axis"), "dim is ignored"),
    (check_softmax, sm_bug("sum-all"), "sum of the whole tensor"),
    (check_softmax, sm_bug("log"), "log-softmax"),
    (check_softmax, sm_bug("torch-softmax"), "calls torch's softmax"),
    (check_softmax, sm_bug("method-softmax"), "calls torch's softmax"),
    (check_softmax, sm_bug("no-raise"), "expected ValueError"),
    (check_softmax, sm_zero_division, "expected ValueError"),
    (check_softmax, sm_only_negative, "expected ValueError"),
    (check_softmax, sm_no_dim, r"expected my_softmax\(x, temperature=1.0, dim=-1\)"),
    (check_masked_softmax, lambda X, v=None: ms_keep(X, v, dim=1), "wrong axis"),
    (check_masked_softmax, lambda X, v=None: torch.softmax(X, -1), "mask is ignored"),
    (check_masked_softmax, ms_off_by_one, "off by one"),
    (check_masked_softmax, ms_inverted, "inverted"),
    (check_masked_softmax, ms_repeat, r"repeat\(\) instead of repeat_interleave"),
    (check_masked_softmax, lambda X, v=None: ms_keep(X, v, zero_empty=False), "came out uniform"),
    (
        check_masked_softmax,
        lambda X, v=None: ms_keep(X, v, fill=-math.inf, zero_empty=False),
        "0/0",
    ),
    (check_masked_softmax, lambda X, v=None: ms_keep(X, v, fill=0.0), "filled with 0"),
    (check_masked_softmax, ms_mul_mask, "filled with 0"),
    (check_masked_softmax, ms_softmax_then_fill, "no renormalisation"),
    (check_masked_softmax, ms_exp_bug("none"), "overflows"),
    (check_masked_softmax, ms_exp_bug("none", zero_empty=False), "overflows"),
    (check_masked_softmax, ms_exp_bug("all"), "not the maximum over all keys"),
    (check_masked_softmax, ms_exp_bug("all", zero_empty=False), "maximum over all keys"),
    (check_masked_softmax, ms_exp_bug("kept"), "mask is applied after exp"),
    (check_masked_softmax, ms_exp_bug("kept", zero_empty=False), "mask is applied after exp"),
    (check_masked_softmax, ms_kept_max_no_guard, "0/0"),
    (check_masked_softmax, ms_in_place, "wrote into its input `X`"),
    (check_masked_softmax, ms_forgets_none, "raised AttributeError"),
    (check_masked_softmax, ms_mask_queries, None),
    (check_masked_softmax, ms_fill_small, "padded key gets weight"),
    (check_dot_product_attention, dpa_bug("no-scale"), "no scaling"),
    (check_dot_product_attention, dpa_bug("by-d"), "by d instead of sqrt"),
    (check_dot_product_attention, dpa_bug("by-dv"), "value size"),
    (check_dot_product_attention, dpa_bug("by-num-keys"), "number of keys"),
    (check_dot_product_attention, dpa_bug("times"), "multiplied by sqrt"),
    (check_dot_product_attention, dpa_bug("after"), "scaled after the softmax"),
    (check_dot_product_attention, dpa_bug("dim1"), "wrong axis"),
    (check_dot_product_attention, dpa_bug("ignored"), "valid_lens is ignored"),
    (check_dot_product_attention, dpa_bug("inverted"), "inverted"),
    (check_dot_product_attention, dpa_bug("no-softmax"), "no softmax"),
    (check_dot_product_attention, dpa_bug("fill0"), "filled with 0"),
    (check_dot_product_attention, dpa_bug("no-renorm"), "no renormalisation"),
    (check_dot_product_attention, dpa_bug("repeat"), r"repeat\(\) instead of repeat_interleave"),
    (check_dot_product_attention, dpa_bug("only-output"), r"expected `\(output, weights\)`"),
    (check_dot_product_attention, dpa_bug("weights-T"), "transposed"),
    (check_dot_product_attention, dpa_bug("scores-as-weights"), "before the softmax"),
    (check_dot_product_attention, dpa_in_place, "wrote into its input `queries`"),
    (
        check_dot_product_attention,
        lambda q, k, v, vl=None: dpa(q, k, v, vl)[::-1],
        r"\(weights, output\)",
    ),
    (
        check_nadaraya_watson,
        lambda q, k, v, bandwidth=1.0: nadaraya_watson(q, k, v, bandwidth)[::-1],
        r"\(weights, output\)",
    ),
    (
        check_attention_entropy,
        lambda w, dim=-1: -(w * torch.log(w)).nansum(dim),
        "gradient is not finite",
    ),
    (check_dot_product_attention, dpa_swapped, None),
    (check_dot_product_attention, lambda q, k, v, vl=None: dpa(q, k, v, vl)[0] + 1e-3, None),
    (
        check_split_merge_heads,
        two(lambda X, h: X.reshape(X.shape[0], h, X.shape[1], -1), merge_heads),
        "without a transpose",
    ),
    (
        check_split_merge_heads,
        two(lambda X, h: X.reshape(*X.shape[:2], -1, h).permute(0, 3, 1, 2), merge_heads),
        "round-robin",
    ),
    (
        check_split_merge_heads,
        two(lambda X, h: split_heads(X, h).reshape(-1, X.shape[1], X.shape[2] // h), merge_heads),
        "transpose_qkv",
    ),
    (
        check_split_merge_heads,
        two(lambda X, h: split_view(X, h).transpose(2, 3), merge_heads),
        "wrong order",
    ),
    (
        check_split_merge_heads,
        two(split_heads, lambda X: X.reshape(X.shape[0], X.shape[2], -1)),
        "without transposing back",
    ),
    (check_split_merge_heads, two(split_heads, merge_view), r"use \.reshape"),
    (
        check_split_merge_heads,
        two(split_heads, lambda X: X.permute(0, 2, 3, 1).flatten(2)),
        "merged in the wrong order",
    ),
    (check_split_merge_heads, two(split_heads, merge_no_reshape), None),
    (check_multihead_attention, RepeatBug, r"repeat\(\) \(whole batch"),
    (check_multihead_attention, WidthBug, "model width"),
    (check_multihead_attention, ReshapeBug, "reshape without a transpose"),
    (check_multihead_attention, NoWoBug, "W_o is never applied"),
    (check_multihead_attention, DhBug, r"by Dh instead of sqrt\(Dh\)"),
    (check_multihead_attention, NoScaleBug, "no scaling"),
    (check_multihead_attention, KeysScaleBug, "number of keys"),
    (check_multihead_attention, AfterSoftmaxBug, "scaled after the softmax"),
    (check_multihead_attention, MergeNoTransposeBug, "merged without transposing back"),
    (check_multihead_attention, MergeOrderBug, "merged in the wrong order"),
    (check_multihead_attention, RoundRobinBug, "round-robin"),
    (check_multihead_attention, MaskIgnoredBug, "valid_lens is ignored"),
    (check_multihead_attention, InvertedMaskBug, "inverted"),
    (check_multihead_attention, QueryAxisBug, "wrong axis"),
    (check_multihead_attention, OnlyOutputBug, r"expected `\(output, weights\)`"),
    (
        check_multihead_attention,
        NoDropoutArg,
        r"expected MyMultiHeadAttention\(num_hiddens, num_heads, dropout=0.0\)",
    ),
    (
        check_multihead_attention,
        NoValidLensArg,
        r"expected forward\(queries, keys, values, valid_lens=None\)",
    ),
    (check_attention_entropy, entropy_bug("log2"), "log base 2"),
    (check_attention_entropy, entropy_bug("log10"), "log base 10"),
    (check_attention_entropy, entropy_bug("no-minus"), "minus sign"),
    (check_attention_entropy, entropy_bug("mean"), "mean over the row"),
    (check_attention_entropy, entropy_bug("last-axis"), "wrong axis"),
    (check_attention_entropy, entropy_bug("keepdim"), "keepdim"),
    (check_attention_entropy, entropy_bug("sum-all"), "every axis"),
    (check_attention_entropy, entropy_bug("nan"), r"0 \* log\(0\)"),
    (check_attention_entropy, entropy_bug("eps1e-9"), "epsilon inside the log"),
    (check_attention_entropy, entropy_bug("eps1e-7"), "epsilon inside the log"),
    (check_attention_entropy, entropy_bug("eps1e-12"), "epsilon inside the log"),
    (check_attention_entropy, entropy_bug("clamp1e-6"), "epsilon inside the log"),
    (check_attention_entropy, entropy_bug("clamp1e-10"), "epsilon inside the log"),
    (check_attention_entropy, entropy_bug("nan-grad"), "gradient is not finite"),
    (check_attention_entropy, entropy_bug("nan-to-num"), "gradient is not finite"),
    (check_attention_entropy, entropy_no_dim, r"expected my_attention_entropy\(weights, dim=-1\)"),
    (check_attention_entropy, entropy_in_place, "wrote into its input `weights`"),
    (check_nadaraya_watson, nw_bug("dim0"), "softmax over the queries"),
    (check_nadaraya_watson, nw_bug("1/2"), "the 1/2 is missing"),
    (check_nadaraya_watson, nw_bug("sigma"), "not sigma squared"),
    (check_nadaraya_watson, nw_bug("sigma4"), "squared twice"),
    (check_nadaraya_watson, nw_bug("times"), "multiplies the distance"),
    (check_nadaraya_watson, nw_bug("sign"), "sign is flipped"),
    (check_nadaraya_watson, nw_bug("abs"), "Laplace"),
    (check_nadaraya_watson, nw_bug("ratio"), "underflows to 0/0"),
    (check_nadaraya_watson, nw_bug("unnormalised"), "not normalised"),
    (check_nadaraya_watson, nw_bug("only-output"), r"expected `\(output, weights\)`"),
    (check_nadaraya_watson, nw_bug("weights-T"), "transposed"),
    (
        check_nadaraya_watson,
        nw_sigma_name,
        r"expected my_nadaraya_watson\(queries, keys, values, bandwidth=1.0\)",
    ),
    (check_nadaraya_watson, nw_in_place, "wrote into its input"),
]


def _d2l_classes():
    from d2l import torch as d2l

    return [
        (check_dot_product_attention, d2l.DotProductAttention(0.0)),
        (check_multihead_attention, d2l.MultiHeadAttention),
    ]


CORRECT = [
    (check_softmax, sm_exp),
    (check_softmax, sm_logsumexp),
    (check_softmax, sm_max_values),
    (check_masked_softmax, masked_softmax),
    (check_masked_softmax, ms_loop),
    (check_masked_softmax, ms_keep),
    (check_masked_softmax, ms_where_nan_to_num),
    (check_masked_softmax, ms_kept_max),
    (check_masked_softmax, ms_float64),
    (check_masked_softmax, ms_d2l_fixed),
    (check_dot_product_attention, DotProductAttention()),
    (check_dot_product_attention, dpa),
    (check_dot_product_attention, dpa_sdpa),
    (check_dot_product_attention, dpa_loop),
    (check_dot_product_attention, dpa_where),
    (check_split_merge_heads, (split_heads, merge_heads)),
    (check_split_merge_heads, (split_view, merge_cat)),
    (check_split_merge_heads, (split_stack, merge_flatten)),
    (check_split_merge_heads, (split_unflatten, merge_heads)),
    (check_multihead_attention, MultiHeadAttention),
    (check_multihead_attention, ParallelMHA),
    (check_multihead_attention, HeadsAxisMHA),
    (check_multihead_attention, SDPAMHA),
    (check_multihead_attention, LoopHeadsMHA),
    (check_attention_entropy, attention_entropy),
    (check_attention_entropy, entropy_where),
    (check_attention_entropy, entropy_entr_masked),
    (check_attention_entropy, entropy_xlogy_safe),
    (check_attention_entropy, entropy_clamped),
    (check_nadaraya_watson, nadaraya_watson),
    (check_nadaraya_watson, nw_explicit),
    (check_nadaraya_watson, nw_logsumexp),
    (check_nadaraya_watson, nw_d2l_style),
    (check_nadaraya_watson, nw_module),
    (check_nadaraya_watson, nw_unsqueeze),
    (check_dot_product_attention, dpa_bmm_d2l_fill),
    (check_masked_softmax, ms_where_inf_nan_to_num_twice),
]


def run_check(check, code):
    if check is check_split_merge_heads and callable(code) and not isinstance(code, tuple):
        return code()  # a prepared call with (split, merge)
    if isinstance(code, tuple):
        return check(*code)
    return check(code)


def _bug_id(entry):
    check, code, _ = entry
    return f"{check.__name__[6:]}-{getattr(code, '__qualname__', type(code).__name__)}"


@pytest.mark.parametrize("entry", BUGS, ids=[_bug_id(e) for e in BUGS])
def test_bug_is_caught_and_named(entry, capsys):
    check, code, words = entry
    with pytest.raises(AssertionError) as caught:
        run_check(check, code)
    message = str(caught.value)
    assert message.startswith(check.__name__), message
    if words is not None:
        assert re.search(words, message), message
    assert "passed" not in capsys.readouterr().out or check is check_split_merge_heads


@pytest.mark.parametrize(
    "entry", CORRECT, ids=[f"{c.__name__[6:]}-{i}" for i, (c, _) in enumerate(CORRECT)]
)
def test_correct_code_passes(entry, capsys):
    check, code = entry
    run_check(check, code)
    assert "cases passed." in capsys.readouterr().out


def test_d2l_layers_pass(d2l, capsys):
    for check, code in _d2l_classes():
        check(code)
    assert capsys.readouterr().out.count("cases passed.") == 2


def measure() -> dict[str, float]:
    named = caught = rejected = 0
    for check, code, words in BUGS:
        try:
            run_check(check, code)
        except AssertionError as error:
            caught += 1
            named += "likely mistake" in str(error) or (
                words is not None and re.search(words, str(error)) is not None
            )
    for check, code in CORRECT:
        try:
            run_check(check, code)
        except AssertionError:
            rejected += 1
    return {
        "named": named / len(BUGS),
        "caught": caught / len(BUGS),
        "rejected": rejected / len(CORRECT),
        "bugs": len(BUGS),
        "correct": len(CORRECT),
    }


def test_rates(capsys):
    rates = measure()
    capsys.readouterr()
    assert rates["caught"] == 1.0 and rates["rejected"] == 0.0, rates
    assert rates["named"] >= 0.8, rates


# ================================================================ contracts of every check
def test_success_lines_are_unchanged(capsys):
    """The chapters store these lines under strict nbval."""
    check_masked_softmax(masked_softmax)
    check_dot_product_attention(DotProductAttention())
    check_split_merge_heads(split_heads, merge_heads)
    check_multihead_attention(MultiHeadAttention)
    check_attention_entropy(attention_entropy)
    check_nadaraya_watson(nadaraya_watson)
    assert capsys.readouterr().out.splitlines() == [
        "check_masked_softmax: all 5 cases passed.",
        "check_dot_product_attention: all 3 cases passed.",
        "check_split_merge_heads: all 4 cases passed.",
        "check_multihead_attention: all 3 cases passed.",
        "check_attention_entropy: all 5 cases passed.",
        "check_nadaraya_watson: all 3 cases passed.",
    ]


def test_chapter_05_bug_messages_are_unchanged():
    """Chapter 05 prints these three messages (strict nbval)."""
    expected = {
        RepeatBug: "check_multihead_attention, case '1-D valid_lens [2, 5]': likely mistake: "
        "valid lengths repeated with repeat() (whole batch, then again) instead of "
        "repeat_interleave() (each sequence once per head).",
        WidthBug: "check_multihead_attention, case 'no valid_lens': likely mistake: scores "
        "scaled by sqrt(num_hiddens), the model width; scale by sqrt(num_hiddens / "
        "num_heads), the head width.",
        ReshapeBug: "check_multihead_attention, case 'no valid_lens': likely mistake: heads "
        "mixed by a reshape without a transpose: reshape to (B, T, H, Dh), then "
        "transpose(1, 2).",
    }
    for cls, message in expected.items():
        with pytest.raises(AssertionError) as caught:
            check_multihead_attention(cls)
        assert str(caught.value) == message


def stub(*args, **kwargs):
    raise NotImplementedError("Exercise 1")


@pytest.mark.parametrize(
    "check",
    [
        check_softmax,
        check_masked_softmax,
        check_dot_product_attention,
        check_attention_entropy,
        check_nadaraya_watson,
    ],
)
def test_an_unsolved_stub_says_so_without_revealing_the_reference(check):
    with pytest.raises(AssertionError) as caught:
        check(stub)
    message = str(caught.value)
    assert "still raises NotImplementedError(Exercise 1)" in message and "case '" in message
    assert "replace the stub's body" in message
    assert caught.value.__cause__ is None and caught.value.__suppress_context__
    for reference in ("nadaraya_watson(queries", "masked_softmax(scores", "attention_entropy(w"):
        assert reference not in message


def test_an_exception_names_the_case_and_the_students_line():
    def broken(X, valid_lens=None):
        return X @ X  # (B, Q, K) @ (B, Q, K): a shape error

    with pytest.raises(AssertionError) as caught:
        check_masked_softmax(broken)
    message = str(caught.value)
    assert message.startswith(
        "check_masked_softmax, case 'no valid_lens': your code raised RuntimeError"
    )
    assert "in broken, line" in message and "return X @ X" in message


def test_unsolved_class_stub():
    class Stub(nn.Module):
        def __init__(self, num_hiddens, num_heads, dropout=0.0):
            super().__init__()
            raise NotImplementedError("Exercise 2")

    with pytest.raises(AssertionError, match=r"case 'construction': your code still raises"):
        check_multihead_attention(Stub)
    with pytest.raises(AssertionError, match=r"\(split\)': your code still raises"):
        check_split_merge_heads(stub, stub)


def test_multihead_requires_the_attribute_convention():
    class Fused(nn.Module):
        def __init__(self, n, h, p):
            super().__init__()
            self.in_proj = nn.Linear(n, 3 * n)

    with pytest.raises(AssertionError, match="expected nn.Linear attributes W_q, W_k, W_v, W_o"):
        check_multihead_attention(Fused)


def test_entropy_nan_message_is_not_the_masked_softmax_hint():
    with pytest.raises(AssertionError) as caught:
        check_attention_entropy(entropy_bug("nan"))
    assert "fully masked" not in str(caught.value) and "-inf" in str(caught.value)


def test_d2l_masked_softmax_writes_into_its_input(d2l):
    with pytest.raises(AssertionError, match="wrote into its input `X`"):
        check_masked_softmax(d2l.masked_softmax)


@pytest.mark.parametrize(
    "call",
    [
        lambda: check_softmax(sm_exp),
        lambda: check_masked_softmax(masked_softmax),
        lambda: check_multihead_attention(ParallelMHA),
        lambda: check_attention_entropy(attention_entropy),
        lambda: check_nadaraya_watson(nadaraya_watson),
    ],
)
def test_checks_leave_the_global_random_state_alone(call):
    torch.manual_seed(123)
    before = torch.get_rng_state()
    call()
    assert torch.equal(torch.get_rng_state(), before)


def test_checks_leave_the_global_random_state_alone_on_failure():
    torch.manual_seed(123)
    before = torch.get_rng_state()
    with pytest.raises(AssertionError):
        check_multihead_attention(WidthBug)
    assert torch.equal(torch.get_rng_state(), before)


def test_mha_pieces_without_a_change_are_the_package_layer():
    g = torch.Generator().manual_seed(0)
    ref = MultiHeadAttention(8, 2).eval()
    q, kv = torch.randn(2, 3, 8, generator=g), torch.randn(2, 5, 8, generator=g)
    for lens in (None, torch.tensor([2, 5]), torch.tensor([[1, 2, 3], [5, 4, 0]])):
        with torch.no_grad():
            torch.testing.assert_close(_mha_pieces(ref, q, kv, lens), ref(q, kv, kv, lens)[0])


def test_frames_are_hidden_from_ipython_tracebacks():
    import inspect

    import attention_course.checks as checks

    for name, fn in vars(checks).items():
        if name.startswith("check_"):
            assert "__tracebackhide__ = True" in inspect.getsource(fn), name


if __name__ == "__main__":
    torch.set_num_threads(1)
    print(measure())
