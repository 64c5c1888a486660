"""flash_attention against naive attention and the fused kernel: forward peak memory and time.

Three implementations of the same attention, checked equal first:

* ``flash_attention`` (the course's, plain PyTorch over key blocks, ``block_size=64``);
* naive: the course's ``DotProductAttention``, which materialises and returns the
  (B, H, T, T) weights;
* fused: ``F.scaled_dot_product_attention`` (PyTorch's C++ kernel).

Peak memory is counted with ``attention_course.cost.measure_allocations``: a
``TorchDispatchMode`` (an allocation hook below autograd) sees every operator's output
and adds up the storages alive at each moment. It works on CPU, needs no
``tracemalloc`` (which never sees tensors) and gives the same bytes on every run.
Scratch buffers a C++ kernel allocates inside itself are not operator outputs and are
not seen: for the fused kernel that is a few per-thread blocks of scores, so its figure
is its output plus its log-sum-exp. Time: interleaved rounds in one process
(``timing.side_by_side``); a ratio is the median of the per-round ratios.

Shapes: B = 1, H = 4 heads, T tokens (Q = K = T), Dh = 64.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from section import Goal, Section
from timing import paired_ratio, side_by_side

from attention_course.cost import measure_allocations
from attention_course.flash import flash_attention
from attention_course.scoring import DotProductAttention

LENGTHS = (1024, 2048, 4096)
HEADS, HEAD_DIM, BLOCK = 4, 64, 64
FLASH, NAIVE, FUSED = "flash_attention", "naive (weights)", "fused SDPA"
NAMES = (FLASH, NAIVE, FUSED)
MIB = 2**20


def functions(tokens: int) -> dict[str, object]:
    """The three implementations as zero-argument calls on one (1, H, T, Dh) input."""
    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(1, HEADS, tokens, HEAD_DIM, generator=g) for _ in range(3))
    naive = DotProductAttention().eval()
    fns = {
        FLASH: lambda: flash_attention(q, k, v, block_size=BLOCK),
        NAIVE: lambda: naive(q, k, v)[0],
        FUSED: lambda: F.scaled_dot_product_attention(q, k, v),
    }
    with torch.no_grad():
        expected = fns[FUSED]()
        for name in (FLASH, NAIVE):
            torch.testing.assert_close(fns[name](), expected, rtol=1e-4, atol=1e-4, msg=name)
    return fns


def _no_grad(fn):
    def call():
        with torch.no_grad():
            return fn()

    return call


def section(quick: bool) -> Section:
    """Peak memory (exact) and forward time (interleaved) at T = 1024, 2048, 4096."""
    rounds = 2 if quick else 5
    out = Section(title="flash_attention: memory linear in T (forward, peak MiB and median ms)")
    out.markdown += [
        f"B=1, H={HEADS}, Dh={HEAD_DIM}, float32, forward under `no_grad`; flash_attention with"
        f" block_size={BLOCK}. Peak memory is exact (every operator's output counted by"
        " `attention_course.cost.measure_allocations`, a dispatch-mode allocation hook; kernel"
        " scratch buffers not seen). Times: "
        f"{rounds} interleaved rounds; ratios are medians of per-round ratios.",
        "",
        "| T | peak flash | peak naive | peak fused | flash ms | naive ms | fused ms |"
        " naive / flash (time) | flash / fused (time) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    peaks: dict[str, list[int]] = {name: [] for name in NAMES}
    time_ratios = []
    for T in LENGTHS:
        fns = {name: _no_grad(fn) for name, fn in functions(T).items()}
        for name, fn in fns.items():
            peaks[name].append(measure_allocations(fn).peak_bytes)
        t = side_by_side(fns, rounds=rounds, block_seconds=0.0, warmup=1)
        naive_flash = paired_ratio(t[NAIVE], t[FLASH])
        flash_fused = paired_ratio(t[FLASH], t[FUSED])
        time_ratios.append(naive_flash)
        mem = " | ".join(f"{peaks[n][-1] / MIB:.1f}" for n in NAMES)
        ms = " | ".join(f"{1000 * t[n].median:.1f}" for n in NAMES)
        out.markdown.append(f"| {T} | {mem} | {ms} | {naive_flash:.2f} | {flash_fused:.2f} |")
        out.add_timings("flash", f"T={T}", "fwd", t, NAMES)
        for name in NAMES:
            out.rows.append(
                {
                    "section": "flash",
                    "case": f"T={T}",
                    "mode": "fwd peak MiB",  # the median_ms column holds MiB here
                    "implementation": name,
                    "median_ms": f"{peaks[name][-1] / MIB:.2f}",
                    "spread": "0",
                }
            )
        print(f"flash T={T}: " + ", ".join(f"{n} {1000 * t[n].median:.1f} ms" for n in NAMES))
    growth = {n: peaks[n][-1] / peaks[n][0] for n in NAMES}  # T x 4 from first to last
    out.markdown.append("")
    out.goals.append(
        Goal(
            "flash_attention's peak memory linear in T (x4 in T: at most x4.5)",
            f"x{growth[FLASH]:.2f} (naive x{growth[NAIVE]:.1f})",
            growth[FLASH] <= 4.5 and growth[NAIVE] >= 12,
        )
    )
    saving = peaks[NAIVE][-1] / peaks[FLASH][-1]
    out.goals.append(
        Goal(
            f"flash_attention at T={LENGTHS[-1]} needs at least 10x less memory than naive",
            f"{saving:.0f}x less",
            saving >= 10,
        )
    )
    worst = min(time_ratios)
    out.goals.append(
        Goal(
            "flash_attention (plain PyTorch) no slower than naive attention, every T",
            f"naive / flash worst {worst:.2f}x",
            worst >= 1.0,
        )
    )
    return out
