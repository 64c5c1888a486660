"""Every checker accepts correct code (written several ways) and names each typical bug."""

import math

import pytest
import torch
from torch import nn

from attention_course import (
    DotProductAttention,
    MultiHeadAttention,
    attention_entropy,
    masked_softmax,
    merge_heads,
    nadaraya_watson,
    split_heads,
)
from attention_course.checks import (
    check_attention_entropy,
    check_dot_product_attention,
    check_masked_softmax,
    check_multihead_attention,
    check_nadaraya_watson,
    check_split_merge_heads,
)


def rejects(check, fn, message):
    with pytest.raises(AssertionError, match=message):
        check(fn)


# ----------------------------------------------------------------- masked softmax
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


def ms_keep(X, valid_lens=None, fill=-1e6, dim=-1, offset=0, zero_empty=True):
    if valid_lens is None:
        return torch.softmax(X, dim)
    v = valid_lens if valid_lens.ndim == 2 else valid_lens[:, None].expand(X.shape[:2])
    keep = torch.arange(X.shape[-1]) < (v[..., None] + offset)
    out = torch.softmax(X.masked_fill(~keep, fill), dim)
    return out * keep if zero_empty else out


def test_masked_softmax_accepts_correct(capsys):
    check_masked_softmax(masked_softmax)
    check_masked_softmax(ms_loop)
    assert capsys.readouterr().out.count("all 5 cases passed") == 2


@pytest.mark.parametrize(
    ("bug", "message"),
    [
        (lambda X, v=None: ms_keep(X, v, dim=1), "wrong axis"),
        (lambda X, v=None: torch.softmax(X, -1), "mask is ignored"),
        (lambda X, v=None: ms_keep(X, v, offset=1), "off by one"),
        (lambda X, v=None: ms_keep(X, v, zero_empty=False), "came out uniform"),
        (lambda X, v=None: ms_keep(X, v, fill=-math.inf, zero_empty=False), "NaN"),
    ],
)
def test_masked_softmax_names_bugs(bug, message):
    rejects(check_masked_softmax, bug, message)


def test_masked_softmax_detects_mutation(d2l):
    rejects(check_masked_softmax, d2l.masked_softmax, "modified its input X")


# ----------------------------------------------------------------- dot-product attention
def dpa(q, k, v, valid_lens=None, scale=None, dim=-1, mask=True):
    d = q.shape[-1]
    scores = torch.einsum("bqd,bkd->bqk", q, k) / (math.sqrt(d) if scale is None else scale)
    if dim != -1:
        return torch.softmax(scores, dim) @ v
    return masked_softmax(scores, valid_lens if mask else None) @ v


def test_dot_product_accepts_correct(d2l, capsys):
    check_dot_product_attention(DotProductAttention())  # returns (output, weights)
    check_dot_product_attention(dpa)  # returns output only, einsum
    check_dot_product_attention(d2l.DotProductAttention(0.0))
    assert capsys.readouterr().out.count("all 3 cases passed") == 3


@pytest.mark.parametrize(
    ("bug", "message"),
    [
        (lambda q, k, v, vl=None: dpa(q, k, v, vl, scale=1.0), "no scaling"),
        (lambda q, k, v, vl=None: dpa(q, k, v, vl, scale=4.0), "by d instead of sqrt"),
        (lambda q, k, v, vl=None: dpa(q, k, v, vl, scale=math.sqrt(v.shape[-1])), "value size"),
        (lambda q, k, v, vl=None: dpa(q, k, v, vl, dim=1), "wrong axis"),
        (lambda q, k, v, vl=None: dpa(q, k, v, vl, mask=False), "valid_lens is ignored"),
        (lambda q, k, v, vl=None: dpa(q, k, v, vl) + 1e-3, "differs from the reference"),
    ],
)
def test_dot_product_names_bugs(bug, message):
    rejects(check_dot_product_attention, bug, message)


def test_dot_product_checks_returned_weights():
    def wrong_weights(q, k, v, vl=None):
        out, w = DotProductAttention()(q, k, v, vl)
        return out, w.transpose(1, 2)

    rejects(check_dot_product_attention, wrong_weights, "attention weights")


# ----------------------------------------------------------------- heads
def split_einops_style(X, h):
    B, T, D = X.shape
    return X.view(B, T, h, D // h).permute(0, 2, 1, 3)


def merge_cat(X):
    return torch.cat(list(X.unbind(1)), dim=-1)  # concatenate the heads


def test_split_merge_accepts_correct(capsys):
    check_split_merge_heads(split_heads, merge_heads)
    check_split_merge_heads(split_einops_style, merge_cat)
    assert capsys.readouterr().out.count("all 4 cases passed") == 2


@pytest.mark.parametrize(
    ("split", "merge", "message"),
    [
        (lambda X, h: X.reshape(X.shape[0], h, X.shape[1], -1), merge_heads, "without a transpose"),
        (
            lambda X, h: X.reshape(X.shape[0], X.shape[1], -1, h).permute(0, 3, 1, 2),
            merge_heads,
            "round-robin",
        ),
        (
            lambda X, h: split_heads(X, h).reshape(-1, X.shape[1], X.shape[2] // h),
            merge_heads,
            "transpose_qkv",
        ),
        (split_heads, lambda X: X.reshape(X.shape[0], X.shape[2], -1), "without transposing back"),
    ],
)
def test_split_merge_names_bugs(split, merge, message):
    with pytest.raises(AssertionError, match=message):
        check_split_merge_heads(split, merge)


# ----------------------------------------------------------------- multi-head attention
class D2LStyleMHA(nn.Module):
    """Correct: d2l's layout, (B*H, T, Dh) with repeat_interleave; forward returns output only."""

    def __init__(self, num_hiddens, num_heads, dropout, bug=None):
        super().__init__()
        self.h, self.bug = num_heads, bug
        self.W_q, self.W_k, self.W_v, self.W_o = (
            nn.Linear(num_hiddens, num_hiddens, bias=False) for _ in range(4)
        )

    def t_qkv(self, X):
        B, T, D = X.shape
        if self.bug == "reshape":
            return X.reshape(B * self.h, T, D // self.h)
        return X.reshape(B, T, self.h, -1).permute(0, 2, 1, 3).reshape(B * self.h, T, -1)

    def forward(self, queries, keys, values, valid_lens):
        q, k, v = (
            self.t_qkv(self.W_q(queries)),
            self.t_qkv(self.W_k(keys)),
            self.t_qkv(self.W_v(values)),
        )
        if valid_lens is not None:
            valid_lens = (
                valid_lens.repeat(self.h, *[1] * (valid_lens.ndim - 1))
                if self.bug == "repeat"
                else valid_lens.repeat_interleave(self.h, dim=0)
            )
        d = q.shape[-1] * (self.h if self.bug == "model-width" else 1)
        out = masked_softmax(q @ k.transpose(1, 2) / math.sqrt(d), valid_lens) @ v
        BH, T, Dh = out.shape
        out = out.reshape(-1, self.h, T, Dh).permute(0, 2, 1, 3).reshape(-1, T, self.h * Dh)
        return self.W_o(out)


def test_multihead_accepts_correct(d2l, capsys):
    check_multihead_attention(MultiHeadAttention)
    check_multihead_attention(D2LStyleMHA)
    check_multihead_attention(d2l.MultiHeadAttention)  # lazy layers, bias-free
    assert capsys.readouterr().out.count("all 3 cases passed") == 3


@pytest.mark.parametrize(
    ("bug", "message"),
    [
        ("repeat", "repeat_interleave"),
        ("model-width", "model width"),
        ("reshape", "reshape without a transpose"),
    ],
)
def test_multihead_names_bugs(bug, message):
    rejects(check_multihead_attention, lambda n, h, p: D2LStyleMHA(n, h, p, bug=bug), message)


def test_multihead_requires_the_attribute_convention():
    class Fused(nn.Module):
        def __init__(self, n, h, p):
            super().__init__()
            self.in_proj = nn.Linear(n, 3 * n)

    rejects(check_multihead_attention, Fused, "expected nn.Linear attributes W_q, W_k, W_v, W_o")


# ----------------------------------------------------------------- entropy
def entropy_where(w, dim=-1):
    return -torch.where(w > 0, w * torch.log(w), torch.zeros_like(w)).sum(dim)


def entropy_clamped(w, dim=-1):
    return -(w * torch.log(w.clamp_min(1e-30))).sum(dim)  # 0 * log(1e-30) = 0


def test_entropy_accepts_correct(capsys):
    check_attention_entropy(attention_entropy)
    check_attention_entropy(entropy_clamped)
    assert capsys.readouterr().out.count("all 5 cases passed") == 2


@pytest.mark.parametrize(
    ("bug", "message"),
    [
        (lambda w, dim=-1: attention_entropy(w, dim) / math.log(2), "log base 2"),
        (lambda w, dim=-1: attention_entropy(w, dim) / math.log(10), "log base 10"),
        (lambda w, dim=-1: -attention_entropy(w, dim), "minus sign"),
        (lambda w, dim=-1: attention_entropy(w, dim) / w.shape[dim], "mean over the row"),
        (lambda w, dim=-1: -(w * torch.log(w)).sum(dim), "NaN"),
        (lambda w, dim=-1: attention_entropy(w, -1), "wrong axis"),
    ],
)
def test_entropy_names_bugs(bug, message):
    rejects(check_attention_entropy, bug, message)


def test_entropy_rejects_nan_gradient():
    # correct values (0 log 0 := 0 in the forward pass) but a NaN gradient at zeros
    rejects(check_attention_entropy, entropy_where, "gradient")


# ----------------------------------------------------------------- Nadaraya-Watson
def nw_explicit(queries, keys, values, bandwidth=1.0):
    k = torch.exp(-((queries[:, None] - keys[None, :]) ** 2) / (2 * bandwidth**2))
    return (k / k.sum(-1, keepdim=True)) @ values


def test_nadaraya_watson_accepts_correct(capsys):
    check_nadaraya_watson(nadaraya_watson)
    check_nadaraya_watson(nw_explicit)
    assert capsys.readouterr().out.count("all 3 cases passed") == 2


def _nw(scores_fn, dim=-1, normalise=True):
    def fn(queries, keys, values, bandwidth=1.0):
        s = scores_fn(queries[:, None] - keys[None, :], bandwidth)
        w = torch.softmax(s, dim) if normalise else torch.exp(s)
        return (w * values).sum(-1)

    return fn


@pytest.mark.parametrize(
    ("bug", "message"),
    [
        (_nw(lambda d, s: -(d**2) / (2 * s**2), dim=0), "softmax over the queries"),
        (_nw(lambda d, s: -(d**2) / s**2), "the 1/2 is missing"),
        (_nw(lambda d, s: -(d**2) / (2 * s)), "not sigma squared"),
        (_nw(lambda d, s: d**2 / (2 * s**2)), "sign is flipped"),
        (_nw(lambda d, s: -(d**2) / (2 * s**2), normalise=False), "not normalised"),
    ],
)
def test_nadaraya_watson_names_bugs(bug, message):
    rejects(check_nadaraya_watson, bug, message)
