"""Multi-head attention and masked softmax: the course's against PyTorch's and d2l's.

Every implementation gets the same weights and is checked to give the same output
(``torch.testing.assert_close``) before anything is timed.

Shapes: B batch, T tokens, D model width, H heads, Dh = D / H.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from d2l import torch as d2l
from timing import Timing, side_by_side
from torch import Tensor, nn

from attention_course import MultiHeadAttention, masked_softmax
from attention_course.multihead import merge_heads, split_heads

COURSE = "course MultiHeadAttention"
TORCH_W = "nn.MultiheadAttention, weights"
TORCH_NW = "nn.MultiheadAttention, no weights"
D2L = "d2l.MultiHeadAttention"
FUSED = "fused SDPA core"


@dataclass(frozen=True)
class Case:
    """One multi-head attention shape; ``masked`` adds random valid lengths."""

    batch: int
    tokens: int
    width: int = 256
    heads: int = 8
    masked: bool = False

    @property
    def label(self) -> str:
        mask = ", valid_lens" if self.masked else ""
        return f"B={self.batch} T={self.tokens} D={self.width} H={self.heads}{mask}"


def _models(case: Case) -> tuple[MultiHeadAttention, nn.MultiheadAttention, nn.Module]:
    """The course's module, and PyTorch's and d2l's holding copies of its weights."""
    D, H = case.width, case.heads
    ours = MultiHeadAttention(D, H)
    theirs = nn.MultiheadAttention(D, H, bias=False, batch_first=True)
    d2l_mha = d2l.MultiHeadAttention(D, H, 0.0, bias=False)
    d2l_mha(*(torch.zeros(1, 1, D),) * 3, None)  # LazyLinear: materialise the weights
    with torch.no_grad():
        weights = (ours.W_q.weight, ours.W_k.weight, ours.W_v.weight)
        theirs.in_proj_weight.copy_(torch.cat(weights))  # (3D, D)
        theirs.out_proj.weight.copy_(ours.W_o.weight)
        for name in ("W_q", "W_k", "W_v", "W_o"):
            getattr(d2l_mha, name).weight.copy_(getattr(ours, name).weight)
    return ours, theirs, d2l_mha


def _fused(ours: MultiHeadAttention, x: Tensor, keep: Tensor | None) -> Tensor:
    """The course's projections around ``F.scaled_dot_product_attention``: no weights kept."""
    H = ours.num_heads
    q, k, v = (split_heads(W(x), H) for W in (ours.W_q, ours.W_k, ours.W_v))  # (B, H, T, Dh)
    heads = F.scaled_dot_product_attention(q, k, v, attn_mask=keep)  # (B, H, T, Dh)
    return ours.W_o(merge_heads(heads))  # (B, H, T, Dh) -> (B, T, D)


def mha_functions(case: Case, backward: bool) -> dict[str, Callable[[], object]]:
    """The five implementations as zero-argument calls; forward only or forward+backward."""
    torch.manual_seed(0)
    ours, theirs, d2l_mha = _models(case)
    B, T = case.batch, case.tokens
    x = torch.randn(B, T, case.width)
    valid = torch.randint(T // 2, T + 1, (B,)) if case.masked else None
    keep = None if valid is None else (torch.arange(T) < valid[:, None])[:, None, None, :]
    padding = None if keep is None else ~keep[:, 0, 0, :]  # (B, T), True = ignore
    calls: dict[str, Callable[[], Tensor]] = {
        COURSE: lambda: ours(x, x, x, valid)[0],
        TORCH_W: lambda: theirs(
            x, x, x, key_padding_mask=padding, need_weights=True, average_attn_weights=False
        )[0],
        TORCH_NW: lambda: theirs(x, x, x, key_padding_mask=padding, need_weights=False)[0],
        D2L: lambda: d2l_mha(x, x, x, valid),
        FUSED: lambda: _fused(ours, x, keep),
    }
    with torch.no_grad():
        reference = calls[COURSE]()
        for name, call in calls.items():
            torch.testing.assert_close(call(), reference, rtol=1e-4, atol=1e-5, msg=name)
    for module in (ours, theirs, d2l_mha):
        module.train(backward)

    def forward_backward(call: Callable[[], Tensor]) -> Callable[[], None]:
        def run() -> None:
            call().sum().backward()

        return run

    def forward(call: Callable[[], Tensor]) -> Callable[[], None]:
        def run() -> None:
            with torch.no_grad():
                call()

        return run

    wrap = forward_backward if backward else forward
    return {name: wrap(call) for name, call in calls.items()}


def bench_mha(case: Case, backward: bool, rounds: int) -> dict[str, Timing]:
    """Median per-call time of each implementation on one case."""
    return side_by_side(mha_functions(case, backward), rounds=rounds)


SOFTMAX_COURSE = "course masked_softmax"
SOFTMAX_D2L = "d2l.masked_softmax"
SOFTMAX_PLAIN = "bool mask + softmax"


def softmax_functions(shape: tuple[int, int, int]) -> dict[str, Callable[[], object]]:
    """``masked_softmax`` three ways on scores of ``shape`` with one valid length per row.

    d2l's writes -1e6 into its argument through a view, so it gets its own copy of the
    scores (made once: refilling the same places does not change its cost).
    """
    torch.manual_seed(0)
    B, Q, K = shape
    X = torch.randn(B, Q, K)
    X_d2l = X.clone()
    valid = torch.randint(1, K + 1, (B,))
    keep = torch.arange(K) < valid[:, None, None]  # (B, 1, K)
    calls: dict[str, Callable[[], Tensor]] = {
        SOFTMAX_COURSE: lambda: masked_softmax(X, valid),
        SOFTMAX_D2L: lambda: d2l.masked_softmax(X_d2l, valid),
        SOFTMAX_PLAIN: lambda: F.softmax(X.masked_fill(~keep, float("-inf")), dim=-1),
    }
    reference = calls[SOFTMAX_COURSE]()
    for name, call in calls.items():
        torch.testing.assert_close(call(), reference, msg=name)  # no row is fully masked
    return calls


def bench_softmax(shape: tuple[int, int, int], rounds: int) -> dict[str, Timing]:
    """Median per-call time of each masked softmax on scores of ``shape``."""
    return side_by_side(softmax_functions(shape), rounds=rounds)
