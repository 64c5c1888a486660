"""The tiny decoder: PyTorch's TransformerEncoderLayer as the oracle for a block, the cache
against full recomputation, FlopCounterMode against the counted multiply-adds."""

import pytest
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from attention_course.decoder import (
    SEPARATOR,
    VOCAB_SIZE,
    DecoderBlock,
    DecoderConfig,
    TinyDecoder,
    answer_logits,
    generate,
    kv_cache_bytes,
    reversal_task,
    step_macs,
    train_decoder,
)
from attention_course.masking import causal_mask


def model_for(kv_heads=None, layers=2, seed=0, max_len=40):
    torch.manual_seed(seed)
    config = DecoderConfig(VOCAB_SIZE, max_len, num_kv_heads=kv_heads, num_layers=layers)
    return TinyDecoder(config).eval()


def test_a_block_equals_pytorchs_pre_norm_encoder_layer_with_a_causal_mask():
    torch.manual_seed(0)
    config = DecoderConfig(VOCAB_SIZE, 16, num_hiddens=32, num_heads=4, ffn_hiddens=64)
    block = DecoderBlock(config).eval()
    theirs = nn.TransformerEncoderLayer(
        32, 4, 64, dropout=0.0, activation="gelu", batch_first=True, norm_first=True
    ).eval()
    attention = block.attention
    with torch.no_grad():
        theirs.self_attn.in_proj_weight.copy_(
            torch.cat([attention.W_q.weight, attention.W_k.weight, attention.W_v.weight])
        )
        theirs.self_attn.in_proj_bias.zero_()  # the course's projections have no bias
        theirs.self_attn.out_proj.weight.copy_(attention.W_o.weight)
        theirs.self_attn.out_proj.bias.zero_()
        for ours, name in ((block.norm1, "norm1"), (block.norm2, "norm2")):
            getattr(theirs, name).load_state_dict(ours.state_dict())
        theirs.linear1.load_state_dict(block.ffn[0].state_dict())
        theirs.linear2.load_state_dict(block.ffn[2].state_dict())
    X = torch.randn(3, 9, 32)
    future = ~causal_mask(9, 9)  # True = masked, PyTorch's convention
    expected = theirs(X, src_mask=future)
    for need_weights in (False, True):
        out, weights = block(X, need_weights=need_weights)
        torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-5)
        assert (weights is None) != need_weights


def test_changing_a_token_never_moves_earlier_logits():
    model = model_for()
    tokens = reversal_task(2, 6, torch.Generator().manual_seed(1))  # (2, 13)
    changed = tokens.clone()
    changed[:, 7] = (changed[:, 7] + 1) % 10
    with torch.no_grad():
        before, _ = model(tokens)
        after, _ = model(changed)
    torch.testing.assert_close(after[:, :7], before[:, :7])
    assert not torch.allclose(after[:, 7:], before[:, 7:])


@pytest.mark.parametrize("kv_heads", [4, 2, 1])
def test_prefill_and_one_token_steps_equal_full_recomputation(kv_heads):
    model = model_for(kv_heads)
    tokens = torch.randint(0, VOCAB_SIZE, (3, 20), generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        full, full_weights = model(tokens, need_weights=True)  # (3, 20, V)
        caches = model.new_caches()
        pieces = [model(tokens[:, :8], caches)[0]]  # prefill 8
        pieces.append(model(tokens[:, 8:11], caches)[0])  # a chunk of 3 (Q < K)
        for t in range(11, 20):
            logits, weights = model(tokens[:, t : t + 1], caches, need_weights=True)
            pieces.append(logits)
    torch.testing.assert_close(torch.cat(pieces, dim=1), full, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(weights[1][:, :, -1], full_weights[1][:, :, -1])
    assert [len(c) for c in caches] == [20, 20]
    assert caches[0].keys.shape == (3, kv_heads, 20, 8)


def test_generate_with_and_without_the_cache_write_the_same_tokens():
    model = model_for(kv_heads=2)
    prompt = torch.randint(0, 10, (4, 5), generator=torch.Generator().manual_seed(3))
    cached = generate(model, prompt, 9)
    assert cached.shape == (4, 14)
    assert torch.equal(cached[:, :5], prompt)
    assert torch.equal(cached, generate(model, prompt, 9, use_cache=False))
    with torch.no_grad():  # greedy: each token is the argmax given everything before it
        logits, _ = model(cached[:, :-1])
    assert torch.equal(logits[:, 4:].argmax(-1), cached[:, 5:])
    assert torch.equal(generate(model, prompt, 0), prompt)


@pytest.mark.parametrize("kv_heads", [4, 2, 1])
def test_cache_bytes_equal_kv_cache_nbytes(kv_heads):
    model = model_for(kv_heads)
    caches = model.new_caches()
    with torch.no_grad():
        model(torch.zeros(3, 11, dtype=torch.long), caches)
    config = model.config
    assert sum(c.nbytes for c in caches) == kv_cache_bytes(config, 11, batch_size=3)
    # 2 x L x Hkv x Dh x T x B x 4 bytes, by hand
    assert kv_cache_bytes(config, 11, batch_size=3) == 2 * 2 * kv_heads * 8 * 11 * 3 * 4
    assert kv_cache_bytes(config, 5, bytes_per_value=2) == 2 * 2 * kv_heads * 8 * 5 * 2


@pytest.mark.parametrize("kv_heads", [4, 1])
@pytest.mark.parametrize("position", [1, 7, 30])
def test_step_macs_equal_pytorchs_flop_counter(kv_heads, position):
    # need_weights=True: explicit matmuls, which the counter sees (it skips CPU SDPA)
    model = model_for(kv_heads)
    tokens = torch.zeros(1, position + 1, dtype=torch.long)
    config = model.config
    with torch.no_grad():
        counter = FlopCounterMode(display=False)
        with counter:
            model(tokens[:, :position], need_weights=True)  # no cache: all T tokens
        assert counter.get_total_flops() == 2 * step_macs(config, position, cached=False)
        caches = model.new_caches()
        model(tokens[:, : position - 1], caches)
        counter = FlopCounterMode(display=False)
        with counter:
            model(tokens[:, position - 1 : position], caches, need_weights=True)  # newest only
        assert counter.get_total_flops() == 2 * step_macs(config, position, cached=True)
    ratio = step_macs(config, position, cached=False) / step_macs(config, position, cached=True)
    assert ratio == position


def test_the_task_the_loss_positions_and_training():
    data = reversal_task(5, 4, torch.Generator().manual_seed(0))
    assert data.shape == (5, 9) and data.dtype == torch.long
    assert torch.equal(data[:, 5:], data[:, :4].flip(1))
    assert (data[:, 4] == SEPARATOR).all() and data[:, :4].max() < 10
    model = model_for(max_len=9)
    logits, targets = answer_logits(model, data, 4)
    assert logits.shape == (5, 4, VOCAB_SIZE)
    assert torch.equal(targets, data[:, 5:])
    with torch.no_grad():  # position 4 (the separator) predicts the first answer token
        full, _ = model(data[:, :-1])
    torch.testing.assert_close(logits[:, 0], full[:, 4])
    calls = []
    losses = train_decoder(model, 4, steps=30, lr=1e-2, callback=calls.append)
    assert len(losses) == 30 and calls == list(range(1, 31))
    assert sum(losses[-5:]) < sum(losses[:5])
    assert not model.training


def test_bad_inputs_name_the_argument():
    with pytest.raises(ValueError, match="num_kv_heads"):
        DecoderConfig(VOCAB_SIZE, 10, num_kv_heads=3)
    with pytest.raises(ValueError, match="num_hiddens"):
        DecoderConfig(VOCAB_SIZE, 10, num_hiddens=30)
    model = model_for(max_len=10)
    with pytest.raises(ValueError, match="tokens"):
        model(torch.zeros(5, dtype=torch.long))
    with pytest.raises(ValueError, match="max_len"):
        model(torch.zeros(1, 11, dtype=torch.long))
    caches = model.new_caches()
    with torch.no_grad():
        model(torch.zeros(1, 8, dtype=torch.long), caches)
    with pytest.raises(ValueError, match="max_len"):
        model(torch.zeros(1, 3, dtype=torch.long), caches)
    with pytest.raises(ValueError, match="kv_caches"):
        model(torch.zeros(1, 1, dtype=torch.long), caches[:1])
    with pytest.raises(ValueError, match="prompt"):
        generate(model, torch.zeros(3, dtype=torch.long), 2)
    with pytest.raises(ValueError, match="num_new"):
        generate(model, torch.zeros(1, 3, dtype=torch.long), -1)
    with pytest.raises(ValueError, match="position"):
        step_macs(model.config, 0, cached=True)
