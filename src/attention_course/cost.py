r"""What attention costs: run time, the memory kept for backward, and growth rates.

Naive attention materialises the (T, T) score matrix of every head, so its time and
memory grow as :math:`T^2`; a fused kernel (``F.scaled_dot_product_attention``) never
stores it. These helpers measure both and fit the exponent on log-log axes.

Shapes: B batch, H heads, Q queries, K keys, T tokens (Q = K = T), Dh head dim.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable, Sequence

import torch
from torch import Tensor


def time_call(
    fn: Callable[[], object],
    *,
    repeats: int = 5,
    warmup: int = 1,
    clock: Callable[[], float] = time.perf_counter,
) -> list[float]:
    """Call ``fn()`` ``warmup`` times untimed, then ``repeats`` times; return each call's seconds.

    Args:
        fn: the work to time, called with no arguments.
        repeats: how many timed calls (at least 1).
        warmup: how many untimed calls first (caches, lazy initialisation, allocator).
        clock: a monotonic clock in seconds; injectable for tests.

    Returns:
        A list of ``repeats`` durations in seconds, in call order. Take the median:
        it ignores the odd call slowed by another process.

    Taught in chapters/07_cost_of_attention.ipynb.
    """
    if isinstance(repeats, bool) or not isinstance(repeats, int) or repeats < 1:
        raise ValueError(f"repeats: expected a positive int, got {repeats!r}")
    if isinstance(warmup, bool) or not isinstance(warmup, int) or warmup < 0:
        raise ValueError(f"warmup: expected an int >= 0, got {warmup!r}")
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = clock()
        fn()
        times.append(clock() - start)
    return times


def median_seconds(fn: Callable[[], object], *, repeats: int = 5, warmup: int = 1) -> float:
    """The median of :func:`time_call`: one robust number for "how long does ``fn`` take".

    Taught in chapters/07_cost_of_attention.ipynb.
    """
    return statistics.median(time_call(fn, repeats=repeats, warmup=warmup))


def loglog_slope(sizes: Sequence[float], values: Sequence[float]) -> float:
    r"""The exponent :math:`p` of the least-squares fit :math:`\log y = p \log x + c`.

    A cost that grows as :math:`x^p` gives a straight line of slope :math:`p` on log-log
    axes: 1 for linear, 2 for quadratic.

    Args:
        sizes: the x values (e.g. sequence lengths), all > 0, at least two distinct.
        values: the measured y values (seconds, bytes), all > 0, one per size.

    Returns:
        The fitted slope :math:`p`.

    Shapes:
        sizes (N,), values (N,) -> a float

    Taught in chapters/07_cost_of_attention.ipynb.
    """
    if len(sizes) != len(values):
        raise ValueError(
            f"values: expected one value per size ({len(sizes)}), got {len(values)} values"
        )
    if len(set(sizes)) < 2:
        raise ValueError(f"sizes: expected at least two distinct sizes, got {list(sizes)}")
    for name, seq in (("sizes", sizes), ("values", values)):
        if any(not v > 0 for v in seq):
            raise ValueError(f"{name}: expected positive numbers (logs are taken), got {list(seq)}")
    xs = [math.log(s) for s in sizes]
    ys = [math.log(v) for v in values]
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    sxy = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True))
    sxx = sum((x - mx) ** 2 for x in xs)
    return sxy / sxx


def saved_bytes(fn: Callable[[], Tensor]) -> int:
    """Bytes of the tensors autograd keeps from the forward pass ``fn()`` for backward.

    Every tensor saved for backward goes through a ``saved_tensors_hooks`` pack hook;
    tensors that share storage (a view of the same buffer) are counted once. This is
    the activation memory a training step holds until ``backward()``; the inputs that
    need gradients are included, since they are saved too.

    Args:
        fn: runs the forward pass on tensors that require grad and returns the output.

    Returns:
        The number of bytes, summed over distinct storages.

    Taught in chapters/07_cost_of_attention.ipynb.
    """
    storages: dict[int, int] = {}

    def pack(t: Tensor) -> Tensor:
        storage = t.untyped_storage()
        storages[storage.data_ptr()] = storage.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = fn()
    if not isinstance(out, Tensor) or out.grad_fn is None:
        raise ValueError("fn: expected it to return a tensor with a grad_fn (inputs need grad)")
    return sum(storages.values())


def score_matrix_bytes(
    batch: int, heads: int, queries: int, keys: int, dtype: torch.dtype = torch.float32
) -> int:
    """Bytes of one (B, H, Q, K) score or weight matrix: what naive attention materialises.

    Shapes:
        B * H * Q * K elements of ``dtype``

    Taught in chapters/07_cost_of_attention.ipynb.
    """
    for name, v in (("batch", batch), ("heads", heads), ("queries", queries), ("keys", keys)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"{name}: expected a positive int, got {v!r}")
    return batch * heads * queries * keys * torch.empty((), dtype=dtype).element_size()
