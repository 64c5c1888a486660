"""The one attention core (issue 9): masks, causality, the fused path, GQA and the KV cache.

Oracles: F.scaled_dot_product_attention (with its own bool masks), nn.MultiheadAttention
with copied weights, full recomputation for the cache, and the same layer with repeated
key-value weights for grouped-query attention.
"""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from attention_course import (
    AdditiveAttention,
    BilinearAttention,
    CrossAttention,
    DotProductAttention,
    KVCache,
    MultiHeadAttention,
    causal_mask,
    masked_softmax,
)

B, Q, K, D, H = 2, 4, 6, 16, 4


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def randn(*shape, seed=0, dtype=torch.float64):
    return torch.randn(*shape, generator=gen(seed), dtype=dtype)


# --- causal_mask -------------------------------------------------------------------------


def test_causal_mask_square_is_lower_triangle():
    assert torch.equal(causal_mask(4, 4), torch.ones(4, 4).tril().bool())


def test_causal_mask_is_bottom_right_aligned():
    # 2 queries at positions 3 and 4 of 5 keys: query 0 sees 0..3, query 1 sees 0..4
    expected = torch.tensor([[1, 1, 1, 1, 0], [1, 1, 1, 1, 1]]).bool()
    assert torch.equal(causal_mask(2, 5), expected)
    assert causal_mask(1, 7).all(), "one new token after a cache sees every key"


def test_causal_mask_errors():
    with pytest.raises(ValueError, match="num_queries"):
        causal_mask(5, 3)
    with pytest.raises(ValueError, match="num_keys"):
        causal_mask(2, 3.5)
    assert causal_mask(np.int64(2), torch.tensor(3)).shape == (2, 3)


# --- every module: one convention ----------------------------------------------------


def modules():
    return [
        DotProductAttention(),
        AdditiveAttention(D, D, 8),
        BilinearAttention(D, D),
    ]


@pytest.mark.parametrize("module", modules(), ids=lambda m: type(m).__name__)
def test_mask_valid_lens_and_causal_combine_with_and(module):
    module = module.double().eval()
    q, k, v = randn(B, K, D, seed=1), randn(B, K, D, seed=2), randn(B, K, D, seed=3)
    valid_lens = torch.tensor([4, 6])
    mask = torch.rand(B, K, K, generator=gen(4)) > 0.3
    _, w = module(q, k, v, valid_lens, mask=mask, is_causal=True)
    keep = (torch.arange(K) < valid_lens[:, None, None]) & mask & causal_mask(K, K)
    assert torch.all(w[~keep] == 0), "masked entries must have weight exactly 0"
    rows = keep.any(-1)
    torch.testing.assert_close(w.sum(-1)[rows], torch.ones_like(w.sum(-1)[rows]))
    assert torch.all(w.sum(-1)[~rows] == 0), "rows with nothing to attend to are all zero"
    # the same weights as the scores masked by hand
    scores = module.score(q, k)
    torch.testing.assert_close(w, masked_softmax(scores, mask=keep))


def test_dot_product_masks_equal_sdpa():
    q, k, v = randn(B, Q, D, seed=1), randn(B, K, D, seed=2), randn(B, K, D, seed=3)
    mask = torch.rand(B, Q, K, generator=gen(5)) > 0.3
    mask[..., 0] = True  # SDPA gives NaN for empty rows; keep one key per row here
    out, _ = DotProductAttention()(q, k, v, mask=mask)
    torch.testing.assert_close(out, F.scaled_dot_product_attention(q, k, v, attn_mask=mask))
    q = randn(B, K, D, seed=6)  # Q == K: bottom-right and top-left causal agree
    out, _ = DotProductAttention()(q, k, v, is_causal=True)
    expected = F.scaled_dot_product_attention(q, k, v, is_causal=True)
    torch.testing.assert_close(out, expected)


def test_is_causal_with_fewer_queries_uses_the_last_positions():
    q, k, v = randn(B, K, D, seed=1), randn(B, K, D, seed=2), randn(B, K, D, seed=3)
    full, _ = DotProductAttention()(q, k, v, is_causal=True)
    last, _ = DotProductAttention()(q[:, -2:], k, v, is_causal=True)
    torch.testing.assert_close(last, full[:, -2:])


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("masked", [False, True])
def test_need_weights_false_equals_weights_path(causal, masked):
    layer = MultiHeadAttention(D, H).eval()
    q, kv = randn(B, Q, D, seed=1, dtype=torch.float32), randn(B, K, D, seed=2, dtype=torch.float32)
    valid_lens = torch.tensor([3, 6]) if masked else None
    out_w, w = layer(q, kv, kv, valid_lens, is_causal=causal)
    out_f, none = layer(q, kv, kv, valid_lens, is_causal=causal, need_weights=False)
    assert none is None and w is not None
    torch.testing.assert_close(out_f, out_w, atol=1e-5, rtol=1e-5)


def test_need_weights_false_fully_masked_row_is_finite_and_equals_weights_path():
    layer = MultiHeadAttention(D, H).eval()
    q, kv = randn(B, Q, D, seed=1, dtype=torch.float32), randn(B, K, D, seed=2, dtype=torch.float32)
    valid_lens = torch.tensor([0, 2])
    out_f, _ = layer(q, kv, kv, valid_lens, need_weights=False)
    out_w, w = layer(q, kv, kv, valid_lens)
    assert torch.isfinite(out_f).all()
    assert torch.all(w[0] == 0)
    torch.testing.assert_close(out_f, out_w, atol=1e-5, rtol=1e-5)


def test_multihead_matches_nn_multiheadattention_causal_and_mask():
    mine = MultiHeadAttention(D, H).eval()
    ref = nn.MultiheadAttention(D, H, bias=False, batch_first=True).eval()
    with torch.no_grad():
        ref.in_proj_weight.copy_(torch.cat([mine.W_q.weight, mine.W_k.weight, mine.W_v.weight]))
        ref.out_proj.weight.copy_(mine.W_o.weight)
    x = randn(B, K, D, seed=3, dtype=torch.float32)
    expected, expected_w = ref(x, x, x, attn_mask=~causal_mask(K, K), average_attn_weights=False)
    out, w = mine(x, x, x, is_causal=True)
    torch.testing.assert_close(out, expected)
    torch.testing.assert_close(w, expected_w)
    # a (B, Q, K) mask is shared by all heads; a (B, H, Q, K) mask is per head
    mask = torch.rand(B, K, K, generator=gen(7)) > 0.4
    mask[..., 0] = True
    _, w3 = mine(x, x, x, mask=mask)
    _, w4 = mine(x, x, x, mask=mask[:, None].expand(B, H, K, K))
    torch.testing.assert_close(w3, w4)
    assert torch.all(w3[~mask[:, None].expand(B, H, K, K)] == 0)


# --- grouped-query attention -------------------------------------------------------------


@pytest.mark.parametrize("kv_heads", [1, 2, 4])
def test_grouped_query_equals_full_heads_with_shared_weights(kv_heads):
    gqa = MultiHeadAttention(D, H, num_kv_heads=kv_heads).double().eval()
    full = MultiHeadAttention(D, H).double().eval()
    Dh, group = D // H, H // kv_heads
    assert gqa.W_k.out_features == kv_heads * Dh == gqa.W_v.out_features
    with torch.no_grad():
        full.W_q.weight.copy_(gqa.W_q.weight)
        full.W_o.weight.copy_(gqa.W_o.weight)
        for name in ("W_k", "W_v"):  # head h of the full layer = kv head h // group
            w = getattr(gqa, name).weight.reshape(kv_heads, Dh, D)
            getattr(full, name).weight.copy_(w.repeat_interleave(group, dim=0).reshape(D, D))
    q, kv = randn(B, Q, D, seed=1), randn(B, K, D, seed=2)
    out, w = gqa(q, kv, kv, torch.tensor([2, 5]))
    expected, expected_w = full(q, kv, kv, torch.tensor([2, 5]))
    torch.testing.assert_close(out, expected)
    torch.testing.assert_close(w, expected_w)
    if kv_heads == 1:  # multi-query: every head scores against the same keys
        _, w1 = gqa(q, kv, kv)
        assert w1.shape == (B, H, Q, K)


def test_num_kv_heads_must_divide_num_heads():
    with pytest.raises(ValueError, match="num_kv_heads"):
        MultiHeadAttention(D, H, num_kv_heads=3)
    with pytest.raises(ValueError, match="num_kv_heads"):
        MultiHeadAttention(D, H, num_kv_heads=0)


# --- the KV cache ------------------------------------------------------------------------


@pytest.mark.parametrize("kv_heads", [None, 2, 1])
@pytest.mark.parametrize("need_weights", [True, False])
def test_prefill_then_one_token_steps_equal_one_full_causal_call(kv_heads, need_weights):
    layer = MultiHeadAttention(D, H, num_kv_heads=kv_heads).double().eval()
    T, prompt = 7, 3
    x = randn(B, T, D, seed=11)
    expected, _ = layer(x, x, x, is_causal=True)
    cache = KVCache()
    outs = [layer(x[:, :prompt], x[:, :prompt], x[:, :prompt], is_causal=True,
                  kv_cache=cache, need_weights=need_weights)[0]]  # fmt: skip
    assert len(cache) == prompt
    for t in range(prompt, T):
        step = x[:, t : t + 1]
        out, w = layer(step, step, step, is_causal=True, kv_cache=cache, need_weights=need_weights)
        outs.append(out)
        assert len(cache) == t + 1
        if need_weights:
            assert w.shape == (B, H, 1, t + 1)
    torch.testing.assert_close(torch.cat(outs, dim=1), expected)
    Hkv = H if kv_heads is None else kv_heads
    assert cache.nbytes == 2 * B * Hkv * (D // H) * T * 8  # float64
    assert cache.keys.shape == (B, Hkv, T, D // H)


def test_kv_cache_rejects_another_layers_shapes():
    cache = KVCache()
    assert len(cache) == 0 and cache.nbytes == 0 and cache.keys is None
    cache.append(torch.zeros(1, 2, 3, 4), torch.zeros(1, 2, 3, 4))
    with pytest.raises(ValueError, match="keys"):
        cache.append(torch.zeros(1, 4, 1, 2), torch.zeros(1, 4, 1, 2))
    with pytest.raises(ValueError, match="values"):
        cache.append(torch.zeros(1, 2, 1, 4), torch.zeros(1, 2, 2, 4))
    cache.clear()
    assert len(cache) == 0


# --- dropout, cross-attention, validation ------------------------------------------------


def test_multihead_dropout_acts_in_training_only():
    layer = MultiHeadAttention(D, H, dropout=0.5)
    q = randn(B, Q, D, seed=1, dtype=torch.float32)
    torch.manual_seed(0)
    train_out, train_w = layer(q, q, q)
    layer.eval()
    eval_out, eval_w = layer(q, q, q)
    torch.testing.assert_close(train_w, eval_w)  # weights are taken before dropout
    assert not torch.allclose(train_out, eval_out), "dropout must change the output in training"
    torch.testing.assert_close(layer(q, q, q)[0], eval_out)


def test_cross_attention_is_multihead_plus_residual_layernorm():
    layer = CrossAttention(6, 5, 2, 3).double()
    q, kv = randn(B, Q, 6, seed=1), randn(B, K, 5, seed=2)
    out, w = layer(q, kv)
    attended, w_mha = MultiHeadAttention.forward(layer, q, kv, kv)
    torch.testing.assert_close(out, layer.norm(q + attended))
    torch.testing.assert_close(w, w_mha)
    out_masked, w_masked = layer(q, kv, kv, torch.tensor([2, 5]))
    assert torch.all(w_masked[0, ..., 2:] == 0)
    assert layer.W_o.bias is not None and layer.W_q.bias is None


def test_unbatched_input_names_queries_and_numpy_sizes_accepted():
    layer = MultiHeadAttention(np.int64(D), torch.tensor(H))
    with pytest.raises(ValueError, match="queries"):
        layer(torch.randn(Q, D), torch.randn(B, K, D), torch.randn(B, K, D))
    with pytest.raises(ValueError, match="keys.shape\\[0\\]"):
        layer(torch.randn(B, Q, D), torch.randn(1, K, D), torch.randn(1, K, D))
    with pytest.raises(ValueError, match="query_size"):
        MultiHeadAttention(D, H, query_size=0)
    with pytest.raises(ValueError, match="dropout"):
        MultiHeadAttention(D, H, dropout=1.5)


def test_different_batch_sizes_give_a_clear_error():
    with pytest.raises(ValueError, match="keys: expected the batch axes of queries"):
        DotProductAttention()(torch.randn(2, 3, 4), torch.randn(3, 5, 4), torch.randn(3, 5, 4))


def test_inputs_never_modified():
    layer = MultiHeadAttention(D, H).eval()
    q, kv = torch.randn(B, Q, D), torch.randn(B, K, D)
    mask = torch.rand(B, Q, K) > 0.5
    copies = [t.clone() for t in (q, kv, mask)]
    layer(q, kv, kv, mask=mask, is_causal=False)
    layer(q, kv, kv, mask=mask, need_weights=False)
    for t, c in zip((q, kv, mask), copies, strict=True):
        assert torch.equal(t, c)


def test_need_weights_false_fully_masked_row_has_finite_gradients():
    layer = MultiHeadAttention(D, H)
    q = randn(B, Q, D, seed=1, dtype=torch.float32).requires_grad_()
    kv = randn(B, K, D, seed=2, dtype=torch.float32).requires_grad_()
    out, _ = layer(q, kv, kv, torch.tensor([0, 2]), need_weights=False)
    out.sum().backward()
    for t in (q, kv, layer.W_q.weight, layer.W_k.weight):
        assert torch.isfinite(t.grad).all(), "a query with nothing to attend to must not give NaN"
