r"""What attention costs: run time, the memory kept for backward, and growth rates.

Naive attention materialises the (T, T) score matrix of every head, so its time and
memory grow as :math:`T^2`; a fused kernel (``F.scaled_dot_product_attention``) never
stores it. These helpers measure both (time, the memory kept for backward, the peak
memory a call allocates) and fit the exponent on log-log axes.

Shapes: B batch, H heads, Q queries, K keys, T tokens (Q = K = T), Dh head dim.
"""

from __future__ import annotations

import math
import statistics
import time
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves


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


@dataclass(frozen=True)
class Allocations:
    """What one call allocated: the peak of live bytes, the largest tensor, how many tensors.

    Taught in chapters/11_memory_efficient_attention.ipynb.
    """

    peak_bytes: int
    largest_bytes: int
    count: int


class _AllocationTracker(TorchDispatchMode):
    """Sees every operator's output; counts new storages while a tensor still holds them."""

    def __init__(self) -> None:
        super().__init__()
        self.holders: dict[tuple[str, int], int] = {}  # storage -> tensors alive on it
        self.sizes: dict[tuple[str, int], int] = {}
        self.before: set[tuple[str, int]] = set()  # storages that existed before the call
        self.live = self.peak = self.largest = self.count = 0

    def _release(self, key: tuple[str, int]) -> None:
        self.holders[key] -= 1
        if self.holders[key] == 0:
            del self.holders[key]
            self.live -= self.sizes.pop(key)

    @staticmethod
    def _key(t: Tensor) -> tuple[str, int]:
        return (str(t.device), t.untyped_storage().data_ptr())

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # noqa: ANN001, ANN204
        kwargs = kwargs or {}
        for t in tree_leaves((args, kwargs)):
            if isinstance(t, Tensor) and self._key(t) not in self.holders:
                self.before.add(self._key(t))  # an input made before the call, not ours
        out = func(*args, **kwargs)
        for t in tree_leaves(out):
            if not isinstance(t, Tensor):
                continue
            storage = t.untyped_storage()
            key = self._key(t)
            if storage.nbytes() == 0 or key in self.before:  # a view of, or written into, an input
                continue
            if key not in self.holders:  # a storage this call made: an allocation
                self.holders[key] = 0
                self.sizes[key] = storage.nbytes()
                self.live += storage.nbytes()
                self.count += 1
                self.peak = max(self.peak, self.live)
                self.largest = max(self.largest, storage.nbytes())
            self.holders[key] += 1
            weakref.finalize(t, self._release, key)
        return out


def measure_allocations(fn: Callable[[], object]) -> Allocations:
    """The tensor memory ``fn()`` allocates: its peak of live bytes and its largest tensor.

    Works the same on CPU and GPU, and gives the same bytes on every run: it counts
    allocations, it does not time anything. Every operator's output passes through a
    ``TorchDispatchMode`` (an allocation hook below autograd, so ``a @ b`` shows up as
    the ``bmm`` that allocates); a storage not seen before is a new allocation, alive
    until the last tensor on it is freed (a ``weakref.finalize`` per tensor). The peak
    is the largest sum of live new storages at any moment; the inputs and anything
    allocated before the call are not counted, the output is. Scratch buffers that a
    fused kernel allocates inside itself (not as an operator output) are not seen.

    Unlike ``tracemalloc`` (which sees only Python's own allocations, not tensors) or
    the process size (which the allocator and the OS blur), this is exact and works
    without a GPU; on a GPU, ``torch.cuda.max_memory_allocated`` gives the same kind of
    number. Run ``fn`` under ``torch.no_grad()``: tensors that autograd keeps for
    backward are what :func:`saved_bytes` counts.

    Args:
        fn: the call to measure, with no arguments.

    Returns:
        ``Allocations(peak_bytes, largest_bytes, count)``.

    Taught in chapters/11_memory_efficient_attention.ipynb.
    """
    tracker = _AllocationTracker()
    with tracker:
        out = fn()
    del out  # the output counted as live at the peak; freeing it now changes nothing
    return Allocations(tracker.peak, tracker.largest, tracker.count)
