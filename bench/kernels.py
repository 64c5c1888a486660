"""Multi-head attention and masked softmax: the course's against PyTorch's and d2l's.

Every implementation gets the same weights and is checked to give the same output
(``torch.testing.assert_close``) before anything is timed. The course's layer is timed
both ways it can run: returning its weights, and ``need_weights=False`` (PyTorch's fused
kernel, no (B, H, T, T) weights made).

Shapes: B batch, T tokens, D model width, H heads, Dh = D / H.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from d2l import torch as d2l
from section import Goal, Section
from timing import Timing, paired_ratio, side_by_side
from torch import Tensor, nn

from attention_course import MultiHeadAttention, masked_softmax
from attention_course.cost import measure_allocations
from attention_course.masking import valid_lens_mask
from attention_course.multihead import merge_heads, split_heads

COURSE_W = "course, weights"
COURSE_F = "course, need_weights=False"
TORCH_W = "nn, weights"
TORCH_NW = "nn, no weights"
D2L = "d2l"
SDPA = "projections + SDPA"
MHA_NAMES = (COURSE_W, COURSE_F, TORCH_W, TORCH_NW, D2L, SDPA)


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


#: the shapes every goal is checked at; the last one is the "3x faster than d2l" goal's
CASES = (Case(8, 64), Case(8, 256), Case(8, 256, masked=True), Case(2, 1024), Case(2, 2048))
LONG = Case(2, 2048)


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


def sdpa_baseline(ours: MultiHeadAttention, x: Tensor, keep: Tensor | None) -> Tensor:
    """The yardstick for the fused path: the same projections around the bare SDPA call."""
    H = ours.num_heads
    q, k, v = (split_heads(W(x), H) for W in (ours.W_q, ours.W_k, ours.W_v))  # (B, H, T, Dh)
    heads = F.scaled_dot_product_attention(q, k, v, attn_mask=keep)  # (B, H, T, Dh)
    return ours.W_o(merge_heads(heads))  # (B, H, T, Dh) -> (B, T, D)


def mha_functions(case: Case, backward: bool) -> dict[str, Callable[[], object]]:
    """The implementations as zero-argument calls; forward only or forward+backward."""
    torch.manual_seed(0)
    ours, theirs, d2l_mha = _models(case)
    B, T = case.batch, case.tokens
    x = torch.randn(B, T, case.width)
    valid = torch.randint(T // 2, T + 1, (B,)) if case.masked else None
    keep = None if valid is None else (torch.arange(T) < valid[:, None])[:, None, None, :]
    padding = None if keep is None else ~keep[:, 0, 0, :]  # (B, T), True = ignore
    calls: dict[str, Callable[[], Tensor]] = {
        COURSE_W: lambda: ours(x, x, x, valid)[0],
        COURSE_F: lambda: ours(x, x, x, valid, need_weights=False)[0],
        TORCH_W: lambda: theirs(
            x, x, x, key_padding_mask=padding, need_weights=True, average_attn_weights=False
        )[0],
        TORCH_NW: lambda: theirs(x, x, x, key_padding_mask=padding, need_weights=False)[0],
        D2L: lambda: d2l_mha(x, x, x, valid),
        SDPA: lambda: sdpa_baseline(ours, x, keep),
    }
    with torch.no_grad():
        reference = calls[COURSE_W]()
        for name, call in calls.items():
            torch.testing.assert_close(call(), reference, rtol=1e-4, atol=1e-5, msg=name)
    for module in (ours, theirs, d2l_mha):
        module.train(backward)  # dropout is 0 everywhere: train mode only enables autograd

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


def ms(seconds: float) -> str:
    return f"{1000 * seconds:.2f}"


def mha_section(quick: bool) -> Section:
    """Every implementation at every shape, forward and forward+backward, and the goals."""
    rounds = 3 if quick else 9
    section = Section("Multi-head attention (median ms per call, interleaved rounds)")
    section.markdown += [
        f"{rounds} rounds each ({min(rounds, 3)} at T >= 1024); a ratio is the median of the"
        " per-round ratios. Same weights everywhere, outputs checked equal. Forward runs under"
        " `no_grad`; forward+backward is `out.sum().backward()`; dropout 0 everywhere."
        " nn.MultiheadAttention has `bias=False` and returns per-head weights"
        " (`average_attn_weights=False`). *projections + SDPA* is the course's projections"
        " around a bare `F.scaled_dot_product_attention` call: the floor for the fused path.",
        "",
        "| shape | pass | "
        + " | ".join(MHA_NAMES)
        + " | weights / nn | fused / SDPA | d2l / fused |",
        "|---|---|" + "---:|" * (len(MHA_NAMES) + 3),
    ]
    vs_nn, vs_sdpa, vs_d2l_long = [], [], None
    for case in CASES:
        for backward in (False, True):
            mode = "fwd+bwd" if backward else "fwd"
            t: dict[str, Timing] = side_by_side(
                mha_functions(case, backward),
                rounds=min(rounds, 3) if case.tokens >= 1024 else rounds,
            )
            r_nn = paired_ratio(t[COURSE_W], t[TORCH_W])
            r_sdpa = paired_ratio(t[COURSE_F], t[SDPA])
            r_d2l = paired_ratio(t[D2L], t[COURSE_F])
            where = f"{case.label} {mode}"
            vs_nn.append((r_nn, where))
            vs_sdpa.append((r_sdpa, where))
            if case == LONG and not backward:
                vs_d2l_long = r_d2l
            cells = " | ".join(ms(t[n].median) for n in MHA_NAMES)
            section.markdown.append(
                f"| {case.label} | {mode} | {cells} | {r_nn:.2f} | {r_sdpa:.2f} | {r_d2l:.2f} |"
            )
            section.add_timings("mha", case.label, mode, t, MHA_NAMES)
            print(f"mha {where}: " + ", ".join(f"{n} {ms(t[n].median)} ms" for n in MHA_NAMES))
    worst_nn, worst_sdpa = max(vs_nn), max(vs_sdpa)
    section.goals += [
        Goal(
            "MultiHeadAttention with weights within 1.15x of nn.MultiheadAttention(need_weights="
            "True, average_attn_weights=False) at every shape",
            f"worst {worst_nn[0]:.2f}x ({worst_nn[1]})",
            worst_nn[0] <= 1.15,
        ),
        Goal(
            "need_weights=False within 1.10x of the same projections around"
            " F.scaled_dot_product_attention at every shape",
            f"worst {worst_sdpa[0]:.2f}x ({worst_sdpa[1]})",
            worst_sdpa[0] <= 1.10,
        ),
        Goal(
            f"need_weights=False at least 3x faster than d2l at {LONG.label}, forward",
            f"{vs_d2l_long:.2f}x",
            vs_d2l_long is not None and vs_d2l_long >= 3.0,
        ),
    ]
    section.markdown.append("")
    return section


def memory_section(quick: bool) -> Section:
    """Forward peak memory of the fused path against one (B, H, T, T) float32 score tensor."""
    del quick  # allocation counts are exact: one run is enough
    section = Section("Forward peak memory (operator outputs, `cost.measure_allocations`)")
    section.markdown += [
        "Bytes of every tensor the forward call allocates, at their peak (inputs not counted,"
        " the output counted); scratch space inside a fused kernel is not an operator output"
        " and is not seen. Under `no_grad`, eval mode.",
        "",
        "| shape | weights path (MiB) | need_weights=False (MiB) | one (B, H, T, T) float32 (MiB) |"
        " fused / one score tensor |",
        "|---|---:|---:|---:|---:|",
    ]
    ratio_long = None
    for case in (Case(2, 1024), LONG):
        torch.manual_seed(0)
        layer = MultiHeadAttention(case.width, case.heads).eval()
        x = torch.randn(case.batch, case.tokens, case.width)
        with torch.no_grad():
            weights = measure_allocations(lambda: layer(x, x, x)).peak_bytes  # noqa: B023
            fused = measure_allocations(
                lambda: layer(x, x, x, need_weights=False)  # noqa: B023
            ).peak_bytes
        scores = case.batch * case.heads * case.tokens**2 * 4
        ratio = fused / scores
        if case == LONG:
            ratio_long = ratio
        mib = 2**20
        section.markdown.append(
            f"| {case.label} | {weights / mib:.1f} | {fused / mib:.1f} | {scores / mib:.1f} |"
            f" {ratio:.3f} |"
        )
        for name, value in (("weights", weights), ("need_weights=False", fused)):
            section.rows.append(
                {
                    "section": "memory",
                    "case": case.label,
                    "mode": "fwd peak MiB",
                    "implementation": name,
                    "median_ms": f"{value / mib:.2f}",
                }
            )
    section.goals.append(
        Goal(
            f"need_weights=False forward peak memory under 0.1x of one (B, H, T, T) float32"
            f" score tensor at {LONG.label}",
            f"{ratio_long:.3f}x",
            ratio_long is not None and ratio_long < 0.1,
        )
    )
    section.markdown.append("")
    return section


SOFTMAX_COURSE = "course masked_softmax"
SOFTMAX_D2L = "d2l.masked_softmax"
SOFTMAX_PLAIN = "bool mask + softmax"
SOFTMAX_NAMES = (SOFTMAX_COURSE, SOFTMAX_D2L, SOFTMAX_PLAIN)
SOFTMAX_SHAPES = ((64, 128, 128), (8, 8, 512, 512))


def softmax_functions(shape: tuple[int, ...], per_query: bool) -> dict[str, Callable[[], object]]:
    """``masked_softmax`` three ways on scores of ``shape`` (B, ..., Q, K).

    ``per_query``: 2-D valid lengths (B, Q), else 1-D (B,). d2l's takes (B', Q, K) scores
    with lengths per row of B', so extra axes are folded into the batch and its lengths
    repeated; it writes -1e6 into its argument through a view, so it gets its own copy of
    the scores (made once: refilling the same places does not change its cost).
    """
    torch.manual_seed(0)
    B, Q, K = shape[0], shape[-2], shape[-1]
    X = torch.randn(*shape)
    valid = torch.randint(1, K + 1, (B, Q) if per_query else (B,))
    folds = X.numel() // (B * Q * K)  # the axes between batch and queries, e.g. heads
    X_d2l = X.reshape(B * folds, Q, K).clone()
    valid_d2l = valid.repeat_interleave(folds, dim=0)  # one length per row of B * folds
    keep = valid_lens_mask(tuple(X.shape), valid)  # (B, 1, ..., Q or 1, K)
    calls: dict[str, Callable[[], Tensor]] = {
        SOFTMAX_COURSE: lambda: masked_softmax(X, valid),
        SOFTMAX_D2L: lambda: d2l.masked_softmax(X_d2l, valid_d2l).reshape(X.shape),
        SOFTMAX_PLAIN: lambda: F.softmax(X.masked_fill(~keep, float("-inf")), dim=-1),
    }
    reference = calls[SOFTMAX_COURSE]()
    for name, call in calls.items():
        torch.testing.assert_close(call(), reference, msg=name)  # no row is fully masked
    return calls


def softmax_section(quick: bool) -> Section:
    """The course's masked softmax against d2l's, with 1-D and 2-D valid lengths."""
    rounds = 5 if quick else 15
    section = Section("Masked softmax (median ms per call)")
    section.markdown += [
        f"{rounds} interleaved rounds each, under `no_grad`. Random valid lengths, one per"
        " sequence (1-D) or one per query (2-D).",
        "",
        "| scores | valid_lens | course | d2l | bool mask + softmax | course / d2l |",
        "|---|---|---:|---:|---:|---:|",
    ]
    ratios = []
    for shape in SOFTMAX_SHAPES:
        for per_query in (False, True):
            lens = "2-D (B, Q)" if per_query else "1-D (B,)"
            with torch.no_grad():
                t = side_by_side(softmax_functions(shape, per_query), rounds=rounds)
            ratio = paired_ratio(t[SOFTMAX_COURSE], t[SOFTMAX_D2L])
            ratios.append((ratio, f"{shape} {lens}"))
            cells = " | ".join(ms(t[n].median) for n in SOFTMAX_NAMES)
            section.markdown.append(f"| {shape} | {lens} | {cells} | {ratio:.2f} |")
            section.add_timings("masked_softmax", f"{shape} {lens}", "fwd", t, SOFTMAX_NAMES)
            print(f"masked_softmax {shape} {lens}: course/d2l {ratio:.2f}")
    worst = max(ratios)
    section.goals.append(
        Goal(
            "masked_softmax no slower than d2l's, 1-D and 2-D valid lengths, at every shape",
            f"worst course/d2l {worst[0]:.2f}x ({worst[1]})",
            worst[0] <= 1.0,
        )
    )
    section.markdown.append("")
    return section
