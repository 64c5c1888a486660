"""The cost helpers against oracles: a fake clock, NumPy's polyfit, analytic byte counts."""

import itertools
from functools import partial

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from attention_course.cost import (
    Allocations,
    loglog_slope,
    measure_allocations,
    saved_bytes,
    score_matrix_bytes,
    time_call,
)


def test_time_call_with_a_fake_clock():
    ticks = itertools.count()
    calls = []
    times = time_call(lambda: calls.append(1), repeats=3, warmup=2, clock=lambda: next(ticks))
    assert times == [1, 1, 1]  # each timed call sees two consecutive ticks
    assert len(calls) == 5  # 2 warm-up + 3 timed
    with pytest.raises(ValueError, match="^repeats"):
        time_call(lambda: None, repeats=0)
    with pytest.raises(ValueError, match="^warmup"):
        time_call(lambda: None, warmup=-1)


@pytest.mark.parametrize("power", [1.0, 2.0, 0.5])
def test_loglog_slope_matches_polyfit(power):
    sizes = [16, 32, 64, 128, 256]
    rng = np.random.default_rng(0)
    values = [3.0 * s**power * float(np.exp(rng.normal(0, 0.05))) for s in sizes]
    expected = np.polyfit(np.log(sizes), np.log(values), 1)[0]
    assert loglog_slope(sizes, values) == pytest.approx(expected, rel=1e-12)
    assert loglog_slope(sizes, [7.0 * s**power for s in sizes]) == pytest.approx(power)


def test_loglog_slope_errors():
    with pytest.raises(ValueError, match="^values"):
        loglog_slope([1, 2], [1.0])
    with pytest.raises(ValueError, match="^sizes"):
        loglog_slope([4, 4], [1.0, 2.0])
    with pytest.raises(ValueError, match="^values"):
        loglog_slope([1, 2], [1.0, 0.0])


def test_saved_bytes_counts_each_storage_once():
    x = torch.randn(10, 20, requires_grad=True)
    w = torch.randn(20, 30, requires_grad=True)
    assert saved_bytes(lambda: x @ w) == (10 * 20 + 20 * 30) * 4  # both operands saved
    assert saved_bytes(lambda: torch.exp(x)) == 10 * 20 * 4  # exp saves its output
    with pytest.raises(ValueError, match="^fn"):
        saved_bytes(lambda: x.detach() * 2)


def test_naive_attention_saves_the_score_matrix_and_the_fused_kernel_does_not():
    B, H, T, Dh = 1, 2, 64, 8
    q, k, v = (torch.randn(B, H, T, Dh, requires_grad=True) for _ in range(3))

    def naive():
        return torch.softmax(q @ k.transpose(-2, -1) / Dh**0.5, dim=-1) @ v

    matrix = score_matrix_bytes(B, H, T, T)
    assert matrix == B * H * T * T * 4
    assert saved_bytes(naive) == matrix + 3 * B * H * T * Dh * 4  # weights, q, k, v
    assert saved_bytes(lambda: F.scaled_dot_product_attention(q, k, v)) < matrix


def test_score_matrix_bytes_dtype_and_errors():
    assert score_matrix_bytes(2, 3, 4, 5, torch.float16) == 2 * 3 * 4 * 5 * 2
    with pytest.raises(ValueError, match="^keys"):
        score_matrix_bytes(1, 1, 1, 0)


def test_measure_allocations_against_hand_counts():
    x = torch.randn(10, 20)
    w = torch.randn(20, 30)
    n = 10 * 20 * 4
    assert measure_allocations(lambda: x @ w) == Allocations(10 * 30 * 4, 10 * 30 * 4, 1)
    # exp(x) is alive while exp(x) + 1 is made, then freed: peak two tensors, largest one
    assert measure_allocations(lambda: torch.exp(x) + 1) == Allocations(2 * n, n, 2)
    # (x * 2) is freed once summed: the peak is the product plus the 4-byte sum
    assert measure_allocations(lambda: (x * 2).sum()) == Allocations(n + 4, n, 2)
    # views of the inputs and in-place writes into them allocate nothing
    assert measure_allocations(lambda: x.t()[2:5]) == Allocations(0, 0, 0)
    y = x.clone()
    assert measure_allocations(lambda: y.mul_(2)) == Allocations(0, 0, 0)
    # a view of a new tensor keeps it alive: both chunks of cat still count
    with torch.no_grad():
        got = measure_allocations(lambda: torch.cat([x, x])[:1])
    assert got == Allocations(2 * n, 2 * n, 1)

    # a loop that frees each step's tensor peaks at two steps, however many steps run
    def loop(steps):
        acc = torch.zeros(10, 20)
        for _ in range(steps):
            acc = acc + x
        return acc

    assert measure_allocations(partial(loop, 3)).peak_bytes == 2 * n
    assert measure_allocations(partial(loop, 30)).peak_bytes == 2 * n
    assert measure_allocations(partial(loop, 30)).count == 31


def test_measure_allocations_sees_the_naive_score_matrix():
    B, H, T, Dh = 1, 2, 64, 8
    q, k, v = (torch.randn(B, H, T, Dh) for _ in range(3))
    matrix = score_matrix_bytes(B, H, T, T)

    def naive():
        return torch.softmax(q @ k.transpose(-2, -1) / Dh**0.5, dim=-1) @ v

    with torch.no_grad():
        got = measure_allocations(naive)
        fused = measure_allocations(lambda: F.scaled_dot_product_attention(q, k, v))
    assert got.largest_bytes == matrix
    # two (B, H, T, T) tensors alive at once: scores and scaled scores, then scaled
    # scores and weights; the scores are freed before the (B, H, T, Dh) output is made
    assert got.peak_bytes == 2 * matrix
    assert got.count == 4
    assert fused.largest_bytes < matrix
