"""The KV cache's per-token speed-up: one generated token with and without the cache.

At position T (T tokens already known) a decoder without a cache runs on all T tokens
to get the next one; with a cache it runs on the newest token only, against T cached
keys and values. Both are timed on the same model (``TinyDecoder``, random weights:
the cost does not depend on what was learnt), in interleaved rounds: in each round,
for each T, the cache is prefilled with T - 1 tokens (not timed), then ``STEPS`` cached
steps are timed, then the uncached forward over T tokens. The reported ratio is the
median of the per-round ratios (``timing.paired_ratio``).

Shapes: B = 1, T tokens known, D model width, H heads, L layers.
"""

from __future__ import annotations

import time

import torch
from section import Goal, Section
from timing import Timing, paired_ratio

from attention_course.decoder import DecoderConfig, TinyDecoder, kv_cache_bytes, step_macs

CONFIG = DecoderConfig(
    vocab_size=64, max_len=2048 + 8, num_hiddens=128, num_heads=8, num_layers=2, ffn_hiddens=512
)
POSITIONS = (256, 512, 1024, 2048)
QUICK_POSITIONS = (256, 1024)
STEPS = 4  # cached steps timed per round (their mean is one round's figure)
GOAL_SPEEDUP = 10.0  # at the longest position


@torch.no_grad()
def _cached_seconds(model: TinyDecoder, tokens: torch.Tensor, position: int) -> float:
    """Seconds per token of ``STEPS`` cached steps after a prefill of ``position - 1``."""
    caches = model.new_caches()
    model(tokens[:, : position - 1], caches)  # prefill, not timed
    start = time.perf_counter()
    for i in range(STEPS):
        model(tokens[:, position - 1 + i : position + i], caches)  # (1, 1): the newest token
    return (time.perf_counter() - start) / STEPS


@torch.no_grad()
def _uncached_seconds(model: TinyDecoder, tokens: torch.Tensor, position: int) -> float:
    """Seconds of one forward pass over all ``position`` tokens (what one step costs)."""
    start = time.perf_counter()
    model(tokens[:, :position])
    return time.perf_counter() - start


def measure(positions: tuple[int, ...], rounds: int) -> dict[int, tuple[Timing, Timing]]:
    """(cached, uncached) per-token timings at each position, in interleaved rounds."""
    torch.manual_seed(0)
    model = TinyDecoder(CONFIG).eval()
    tokens = torch.randint(0, CONFIG.vocab_size, (1, max(positions) + STEPS))  # (1, T)
    with torch.no_grad():  # same next-token logits both ways, before anything is timed
        T = positions[0]
        caches = model.new_caches()
        model(tokens[:, : T - 1], caches)
        step, _ = model(tokens[:, T - 1 : T], caches)
        full, _ = model(tokens[:, :T])
        torch.testing.assert_close(step[:, -1], full[:, -1], rtol=1e-4, atol=1e-4)
    for T in positions:  # warm-up
        _cached_seconds(model, tokens, T)
        _uncached_seconds(model, tokens, T)
    cached: dict[int, list[float]] = {T: [] for T in positions}
    uncached: dict[int, list[float]] = {T: [] for T in positions}
    for _ in range(rounds):
        for T in positions:
            cached[T].append(_cached_seconds(model, tokens, T))
            uncached[T].append(_uncached_seconds(model, tokens, T))
    return {
        T: (Timing("cached", tuple(cached[T])), Timing("uncached", tuple(uncached[T])))
        for T in positions
    }


def section(quick: bool) -> Section:
    """The report's KV-cache section: per-token time with and without the cache."""
    positions = QUICK_POSITIONS if quick else POSITIONS
    results = measure(positions, rounds=3 if quick else 7)
    c = CONFIG
    out = Section("KV cache: time per generated token")
    out.markdown += [
        f"`TinyDecoder` with D={c.num_hiddens}, H={c.num_heads}, L={c.num_layers}, "
        f"F={c.ffn_hiddens}, batch 1, float32, no grad. Without the cache each new token "
        "reruns the model on all T known tokens; with it, on the newest token only. "
        "Multiply-adds are counted analytically (`decoder.step_macs`); the speed-up is "
        "the median of per-round ratios.",
        "",
        "| position T | with cache (ms) | without (ms) | speed-up | counted ratio | cache (KiB) |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    ratios = {}
    for T, (cached, uncached) in results.items():
        ratios[T] = paired_ratio(uncached, cached)
        macs = step_macs(c, T, cached=False) / step_macs(c, T, cached=True)
        kib = kv_cache_bytes(c, T) / 1024
        out.markdown.append(
            f"| {T} | {1000 * cached.median:.2f} | {1000 * uncached.median:.2f} | "
            f"{ratios[T]:.1f}x | {macs:.0f}x | {kib:.0f} |"
        )
        for mode, timing in (("with cache", cached), ("without cache", uncached)):
            out.rows.append(
                {
                    "section": "kv_cache",
                    "case": f"T={T}",
                    "mode": "per token",
                    "implementation": mode,
                    "median_ms": f"{1000 * timing.median:.4f}",
                    "spread": f"{timing.spread:.2f}",
                }
            )
    last, first = positions[-1], positions[0]
    out.markdown += [
        "",
        "The counted work of a cached step is exactly T times smaller; its time is mostly "
        "fixed per-call overhead at these sizes, so the measured speed-up stays below T.",
    ]
    out.goals += [
        Goal(
            f"KV cache at least {GOAL_SPEEDUP:.0f}x faster per token at T={last}",
            f"{ratios[last]:.1f}x",
            ratios[last] >= GOAL_SPEEDUP,
        ),
        Goal(
            f"KV cache speed-up grows with the position (T={first} to T={last})",
            f"{ratios[first]:.1f}x to {ratios[last]:.1f}x",
            ratios[last] > ratios[first],
        ),
    ]
    return out


if __name__ == "__main__":
    import sys

    report = section(quick="--quick" in sys.argv)
    print("\n".join(report.markdown))
    for goal in report.goals:
        print(f"{'PASS' if goal.passed else 'FAIL'}  {goal.text}: {goal.figure}")
