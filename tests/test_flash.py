"""flash_attention against F.scaled_dot_product_attention, and its memory counted.

The oracle is PyTorch's own attention; the memory claim is checked with the allocation
counter of `attention_course.cost` (every operator's output seen, sizes exact).
"""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from attention_course.cost import measure_allocations
from attention_course.flash import flash_attention


def qkv(*lead, Q=9, K=13, D=8, Dv=5, dtype=torch.float32, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (
        torch.randn(*lead, Q, D, generator=g, dtype=dtype),
        torch.randn(*lead, K, D, generator=g, dtype=dtype),
        torch.randn(*lead, K, Dv, generator=g, dtype=dtype),
    )


def bottom_right(Q, K):
    """The package's causal convention: query i is position K - Q + i."""
    return torch.ones(Q, K, dtype=torch.bool).tril(diagonal=K - Q)  # (Q, K)


@pytest.mark.parametrize("block_size", [1, 7, 13, 64, 100])
@pytest.mark.parametrize("is_causal", [False, True])
def test_equals_sdpa_for_every_block_size(block_size, is_causal):
    q, k, v = qkv(2, 3)  # (B, H, Q, D) with Q = 9 != K = 13, Dv = 5 != D
    mask = bottom_right(9, 13) if is_causal else None
    expected = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    got = flash_attention(q, k, v, block_size=block_size, is_causal=is_causal)
    assert got.shape == (2, 3, 9, 5)
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-4)


def test_causal_with_q_equal_k_is_sdpa_is_causal():
    q, k, v = qkv(4, Q=20, K=20, D=6, Dv=6)
    expected = F.scaled_dot_product_attention(q, k, v, is_causal=True)
    torch.testing.assert_close(
        flash_attention(q, k, v, block_size=6, is_causal=True), expected, atol=1e-5, rtol=1e-4
    )
    # the causal output differs from the unmasked one: the mask did something
    assert not torch.allclose(flash_attention(q, k, v, block_size=6), expected, atol=1e-3)


def test_one_query_at_the_end_sees_every_key():
    q, k, v = qkv(2, Q=1, K=11)  # decoding: the last position attends to all keys
    torch.testing.assert_close(
        flash_attention(q, k, v, block_size=4, is_causal=True),
        F.scaled_dot_product_attention(q, k, v),
    )


@pytest.mark.parametrize("block_size", [1, 5, 32])
def test_float64_exact_to_rounding(block_size):
    q, k, v = qkv(3, Q=17, K=31, dtype=torch.float64)
    got = flash_attention(q, k, v, block_size=block_size, is_causal=True, scale=0.3)
    expected = F.scaled_dot_product_attention(q, k, v, attn_mask=bottom_right(17, 31), scale=0.3)
    assert got.dtype == torch.float64
    torch.testing.assert_close(got, expected, atol=1e-12, rtol=1e-12)


def test_stable_for_large_logits():
    q, k, v = qkv(2, Q=8, K=40, D=4, dtype=torch.float64)
    scale = 1e4  # logits of order 1e4: exp overflows without the running max
    with torch.no_grad():
        assert torch.isinf(torch.exp(q @ k.transpose(-2, -1) * scale)).any()
    for block in (1, 3, 40):
        got = flash_attention(q, k, v, block_size=block, scale=scale)
        assert torch.isfinite(got).all()
        expected = F.scaled_dot_product_attention(q, k, v, scale=scale)
        torch.testing.assert_close(got, expected, atol=1e-10, rtol=1e-10)


def test_default_scale_is_one_over_sqrt_d_and_half_inputs():
    q, k, v = qkv(2, D=16)
    torch.testing.assert_close(
        flash_attention(q, k, v, block_size=4),
        flash_attention(q, k, v, block_size=4, scale=1 / math.sqrt(16)),
    )
    got = flash_attention(q.bfloat16(), k.bfloat16(), v.bfloat16(), block_size=4)
    assert got.dtype == torch.bfloat16
    expected = F.scaled_dot_product_attention(q, k, v)
    torch.testing.assert_close(got.float(), expected, atol=3e-2, rtol=3e-2)


def test_broadcasts_leading_axes_and_never_mutates():
    q, k, v = qkv(2, 3)
    k1, v1 = k[:1], v[:1]  # (1, 3, K, D): one set of keys shared by the batch
    before = [t.clone() for t in (q, k1, v1)]
    got = flash_attention(q, k1, v1, block_size=4)
    torch.testing.assert_close(
        got, F.scaled_dot_product_attention(q, k1.expand_as(k), v1.expand_as(v))
    )
    for t, b in zip((q, k1, v1), before, strict=True):
        assert torch.equal(t, b)


def test_gradients_match_sdpa():
    q, k, v = (t.double().requires_grad_() for t in qkv(2, Q=6, K=10))
    flash_attention(q, k, v, block_size=3, is_causal=True).square().sum().backward()
    grads = [t.grad.clone() for t in (q, k, v)]
    for t in (q, k, v):
        t.grad = None
    F.scaled_dot_product_attention(q, k, v, attn_mask=bottom_right(6, 10)).square().sum().backward()
    for got, t in zip(grads, (q, k, v), strict=True):
        torch.testing.assert_close(got, t.grad)


def test_never_allocates_a_score_matrix():
    B, H, Q, K, D, block = 1, 2, 512, 512, 8, 16
    q, k, v = qkv(B, H, Q=Q, K=K, D=D, Dv=D)
    matrix = B * H * Q * K * 4  # one float32 (B, H, Q, K) score matrix

    def naive():
        return torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(D), dim=-1) @ v

    with torch.no_grad():
        ours = measure_allocations(lambda: flash_attention(q, k, v, block_size=block))
        theirs = measure_allocations(naive)
        causal = measure_allocations(
            lambda: flash_attention(q, k, v, block_size=block, is_causal=True)
        )
    assert theirs.largest_bytes == matrix  # the oracle: naive attention allocates it
    # the largest tensor is a (B, H, Q, block) block of scores: O(Q * block_size)
    assert ours.largest_bytes == B * H * Q * max(block, D) * 4
    assert causal.largest_bytes == ours.largest_bytes
    assert ours.peak_bytes < matrix / 4
    # double the block, double the scores' block; double the keys, the same memory
    with torch.no_grad():
        wider = measure_allocations(lambda: flash_attention(q, k, v, block_size=2 * block))
        k2, v2 = torch.cat([k, k], dim=-2), torch.cat([v, v], dim=-2)
        longer = measure_allocations(lambda: flash_attention(q, k2, v2, block_size=block))
    assert wider.largest_bytes == 2 * ours.largest_bytes
    assert longer.peak_bytes == ours.peak_bytes


@pytest.mark.parametrize(
    ("kwargs", "error", "name"),
    [
        ({"block_size": 0}, ValueError, "block_size"),
        # the shared int check refuses 2.0 and True (its error type is _validation's choice)
        ({"block_size": 2.0}, (TypeError, ValueError), "block_size"),
        ({"block_size": True}, (TypeError, ValueError), "block_size"),
        ({"scale": -1.0}, ValueError, "scale"),
        ({"is_causal": 1}, TypeError, "is_causal"),
    ],
)
def test_bad_arguments_name_themselves(kwargs, error, name):
    q, k, v = qkv(2)
    with pytest.raises(error, match=f"^{name}"):
        flash_attention(q, k, v, **kwargs)


def test_numpy_block_size_is_accepted():
    q, k, v = qkv(2)
    torch.testing.assert_close(
        flash_attention(q, k, v, block_size=np.int64(4)), flash_attention(q, k, v, block_size=4)
    )


def test_bad_tensors_name_themselves():
    q, k, v = qkv(2)
    with pytest.raises(TypeError, match="^queries"):
        flash_attention(q.numpy(), k, v)
    with pytest.raises(ValueError, match="^keys"):
        flash_attention(q, k[..., :3], v)
    with pytest.raises(ValueError, match="^values"):
        flash_attention(q, k, v[..., :4, :])
    with pytest.raises(TypeError, match="^values"):
        flash_attention(q, k, v.long())
    with pytest.raises(ValueError, match="^keys"):
        flash_attention(q, k[..., :0, :], v[..., :0, :])
    with pytest.raises(ValueError, match="^queries"):
        flash_attention(torch.randn(2, 20, 8), k, v, is_causal=True)  # Q = 20 > K = 13
    with pytest.raises(ValueError, match="^queries"):
        flash_attention(torch.randn(8), k, v)
