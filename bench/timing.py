"""Side-by-side timing on top of ``torch.utils.benchmark``, and the statistics the tables use.

Competing implementations are measured in interleaved rounds (A, B, C, A, B, C, ...),
so a slow spell on a shared machine hits all of them alike; the median over rounds is
reported, and a ratio is the median of the per-round ratios (:func:`paired_ratio`).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.benchmark import Timer


@dataclass(frozen=True)
class Timing:
    """Per-call seconds of one implementation: one number per round."""

    name: str
    rounds: tuple[float, ...]

    @property
    def median(self) -> float:
        """Median seconds per call over the rounds."""
        return statistics.median(self.rounds)

    @property
    def spread(self) -> float:
        """(max - min) / median over the rounds: how noisy this measurement was."""
        return (max(self.rounds) - min(self.rounds)) / self.median


def side_by_side(
    fns: Mapping[str, Callable[[], object]],
    *,
    rounds: int = 5,
    block_seconds: float = 0.03,
    warmup: int = 2,
) -> dict[str, Timing]:
    """Time each of ``fns`` in ``rounds`` interleaved rounds; each round is one timed block.

    Each function is first called ``warmup`` times, then timed once to size its block:
    ``number = max(1, block_seconds / first call)`` calls per round, so fast calls are
    averaged over many repetitions and slow ones are not repeated needlessly.
    ``torch.utils.benchmark.Timer.timeit`` adds its own warm-up calls before each block.
    """
    threads = torch.get_num_threads()
    timers, numbers = {}, {}
    for name, fn in fns.items():
        for _ in range(warmup):
            fn()
        start = time.perf_counter()
        fn()
        first = time.perf_counter() - start
        numbers[name] = max(1, int(block_seconds / max(first, 1e-9)))
        timers[name] = Timer(stmt="fn()", globals={"fn": fn}, num_threads=threads, label=name)
    results: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(rounds):
        for name, timer in timers.items():
            results[name].append(timer.timeit(numbers[name]).mean)
    return {name: Timing(name, tuple(times)) for name, times in results.items()}


def paired_ratio(a: Timing, b: Timing) -> float:
    """Median over rounds of ``a``'s time / ``b``'s time in the same round.

    Round i of ``a`` and ``b`` ran back to back, under the same load, so each round's
    ratio is a fair comparison even when the machine's speed drifts between rounds.
    """
    if len(a.rounds) != len(b.rounds):
        raise ValueError(f"b: expected {len(a.rounds)} rounds like a, got {len(b.rounds)}")
    return statistics.median(x / y for x, y in zip(a.rounds, b.rounds, strict=True))


def percentile(values: list[float], q: float) -> float:
    """The ``q``-th percentile (0-100) of ``values``, linear interpolation (NumPy's default)."""
    return float(np.percentile(np.asarray(values, dtype=float), q))
