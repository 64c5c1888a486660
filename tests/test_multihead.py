import pytest
import torch
from torch import nn

from attention_course import MultiHeadAttention, merge_heads, split_heads

B, Q, K, D, H = 2, 4, 6, 100, 5  # the d2l chapter's example


def torch_mha_with_copied_weights(mine: MultiHeadAttention) -> nn.MultiheadAttention:
    ref = nn.MultiheadAttention(D, H, bias=False, batch_first=True).eval()
    with torch.no_grad():
        ref.in_proj_weight.copy_(torch.cat([mine.W_q.weight, mine.W_k.weight, mine.W_v.weight]))
        ref.out_proj.weight.copy_(mine.W_o.weight)
    return ref


@pytest.fixture
def inputs():
    return torch.randn(B, Q, D), torch.randn(B, K, D), torch.tensor([3, 2])


def test_d2l_example_shape(inputs):
    q, kv, valid_lens = inputs
    out, weights = MultiHeadAttention(D, H).eval()(q, kv, kv, valid_lens)
    assert out.shape == (2, 4, 100)
    assert weights.shape == (2, 5, 4, 6)


@pytest.mark.parametrize("masked", [False, True])
def test_matches_torch_multihead_attention(inputs, masked):
    q, kv, valid_lens = inputs
    mine = MultiHeadAttention(D, H).eval()
    ref = torch_mha_with_copied_weights(mine)
    padding = ~(torch.arange(K)[None, :] < valid_lens[:, None]) if masked else None
    expected, expected_w = ref(q, kv, kv, key_padding_mask=padding, average_attn_weights=False)
    out, weights = mine(q, kv, kv, valid_lens if masked else None)
    torch.testing.assert_close(out, expected)
    torch.testing.assert_close(weights, expected_w)


@pytest.mark.parametrize(
    "valid_lens", [torch.tensor([3, 2]), torch.tensor([[1, 2, 3, 4], [6, 5, 4, 3]])]
)
def test_matches_d2l_multihead_attention(d2l, inputs, valid_lens):
    q, kv, _ = inputs
    mine = MultiHeadAttention(D, H).eval()
    ref = d2l.MultiHeadAttention(D, H, 0.0).eval()
    ref(q, kv, kv, valid_lens)  # materialise d2l's lazy layers
    with torch.no_grad():
        for name in ("W_q", "W_k", "W_v", "W_o"):
            getattr(ref, name).weight.copy_(getattr(mine, name).weight)
    out, weights = mine(q, kv, kv, valid_lens)
    torch.testing.assert_close(out, ref(q, kv, kv, valid_lens))
    torch.testing.assert_close(weights, ref.attention.attention_weights.reshape(B, H, Q, K))


def test_head_mask_switches_heads_off(inputs):
    q, kv, valid_lens = inputs
    mha = MultiHeadAttention(D, H).eval()
    full, weights = mha(q, kv, kv, valid_lens)
    ones, _ = mha(q, kv, kv, valid_lens, head_mask=torch.ones(H))
    torch.testing.assert_close(ones, full)
    # with every head but head 2 off, the output is W_o applied to head 2's slice alone
    only2 = torch.zeros(H)
    only2[2] = 1
    out, weights2 = mha(q, kv, kv, valid_lens, head_mask=only2)
    v = split_heads(mha.W_v(kv), H)  # (B, H, K, Dh)
    head2 = weights[:, 2] @ v[:, 2]  # (B, Q, Dh)
    Dh = D // H
    torch.testing.assert_close(out, head2 @ mha.W_o.weight[:, 2 * Dh : 3 * Dh].T)
    torch.testing.assert_close(weights2, weights)
    off, _ = mha(q, kv, kv, valid_lens, head_mask=torch.zeros(H))
    torch.testing.assert_close(off, torch.zeros_like(off))


def test_scaled_by_head_width_not_model_width():
    mha = MultiHeadAttention(8, 2).eval()
    q, kv = torch.randn(1, 3, 8), torch.randn(1, 4, 8)
    _, weights = mha(q, kv, kv)
    qh, kh = split_heads(mha.W_q(q), 2), split_heads(mha.W_k(kv), 2)
    torch.testing.assert_close(
        weights, torch.softmax(qh @ kh.transpose(-2, -1) / 2.0, -1)
    )  # sqrt(Dh=4)


def test_split_merge_are_exact_inverses_and_keep_tokens_apart():
    X = torch.arange(2 * 3 * 8.0).reshape(2, 3, 8)
    S = split_heads(X, 4)
    assert S.shape == (2, 4, 3, 2)
    assert torch.equal(S[0, 1, 2], X[0, 2, 2:4])  # head 1 of token 2 = features 2..3
    assert torch.equal(merge_heads(S), X)
    Y = torch.randn(2, 4, 3, 2)
    assert torch.equal(split_heads(merge_heads(Y), 4), Y)


def test_cross_attention_sizes():
    mha = MultiHeadAttention(12, 3, query_size=5, key_size=7, value_size=9)
    out, weights = mha(torch.randn(2, 4, 5), torch.randn(2, 6, 7), torch.randn(2, 6, 9))
    assert out.shape == (2, 4, 12) and weights.shape == (2, 3, 4, 6)


def test_errors_name_the_argument(inputs):
    q, kv, _ = inputs
    with pytest.raises(
        ValueError, match=r"num_hiddens: expected a multiple of num_heads \(3\), got 100"
    ):
        MultiHeadAttention(100, 3)
    with pytest.raises(ValueError, match="num_heads: expected a positive int, got 0"):
        MultiHeadAttention(100, 0)
    with pytest.raises(ValueError, match=r"head_mask: expected shape \(5,\).*got \(4,\)"):
        MultiHeadAttention(D, H)(q, kv, kv, head_mask=torch.ones(4))
    with pytest.raises(
        ValueError, match=r"queries.shape\[-1\] \(99\) must equal this layer.s query_size \(100\)"
    ):
        MultiHeadAttention(D, H)(torch.randn(B, Q, 99), kv, kv)
    with pytest.raises(
        ValueError,
        match=r"valid_lens: expected lengths in \[0, 6\] \(the number of keys\), got \[-1, 2\]",
    ):
        MultiHeadAttention(D, H)(q, kv, kv, torch.tensor([-1, 2]))
    with pytest.raises(
        ValueError, match=r"num_heads: expected a divisor of the feature size 8, got 3"
    ):
        split_heads(torch.randn(2, 3, 8), 3)
    with pytest.raises(ValueError, match=r"X: expected shape \(B, H, T, Dh\)"):
        merge_heads(torch.randn(2, 3, 8))


def test_inputs_not_modified(inputs):
    q, kv, valid_lens = inputs
    before = (q.clone(), kv.clone(), valid_lens.clone())
    MultiHeadAttention(D, H)(q, kv, kv, valid_lens, head_mask=torch.ones(H))
    for x, c in zip((q, kv, valid_lens), before, strict=True):
        assert torch.equal(x, c)
