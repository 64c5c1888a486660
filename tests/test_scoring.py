import math

import pytest
import torch
import torch.nn.functional as F

from attention_course import AdditiveAttention, BilinearAttention, DotProductAttention


@pytest.fixture
def qkv():
    return torch.randn(2, 3, 4), torch.randn(2, 5, 4), torch.randn(2, 5, 6)


def test_dot_product_matches_pytorch_sdpa(qkv):
    q, k, v = qkv
    valid_lens = torch.tensor([2, 5])
    out, weights = DotProductAttention()(q, k, v, valid_lens)
    keep = (torch.arange(5) < valid_lens[:, None])[:, None, :]  # (B, 1, K)
    torch.testing.assert_close(out, F.scaled_dot_product_attention(q, k, v, attn_mask=keep))
    # weights are softmax(q k^T / sqrt(d)) with masked keys at exactly 0
    scores = q @ k.transpose(1, 2) / math.sqrt(4)
    torch.testing.assert_close(weights, torch.softmax(scores.masked_fill(~keep, -math.inf), -1))


def test_dot_product_matches_d2l(d2l, qkv):
    q, k, v = qkv
    valid_lens = torch.tensor([[1, 2, 3], [5, 4, 2]])
    ref = d2l.DotProductAttention(0.0).eval()
    expected = ref(q, k, v, valid_lens)
    out, weights = DotProductAttention().eval()(q, k, v, valid_lens)
    torch.testing.assert_close(out, expected)
    torch.testing.assert_close(weights, ref.attention_weights)


def test_dot_product_works_with_extra_batch_axes():
    q, k, v = torch.randn(2, 3, 4, 8), torch.randn(2, 3, 5, 8), torch.randn(2, 3, 5, 8)
    out, weights = DotProductAttention()(q, k, v)
    torch.testing.assert_close(out, F.scaled_dot_product_attention(q, k, v))
    assert weights.shape == (2, 3, 4, 5)


def test_dropout_changes_output_in_training_only_and_weights_are_pre_dropout(qkv):
    q, k, v = qkv
    attn = DotProductAttention(dropout=0.5)
    out_train, w_train = attn.train()(q, k, v)
    out_eval, w_eval = attn.eval()(q, k, v)
    assert not torch.allclose(out_train, out_eval)
    torch.testing.assert_close(w_train, w_eval)


def test_additive_matches_d2l_with_copied_weights(d2l):
    q, k, v = torch.randn(2, 1, 20), torch.ones(2, 10, 2), torch.randn(2, 10, 4)
    valid_lens = torch.tensor([2, 6])
    mine = AdditiveAttention(query_size=20, key_size=2, num_hiddens=8).eval()
    ref = d2l.AdditiveAttention(num_hiddens=8, dropout=0.0).eval()
    ref(q, k, v, valid_lens)  # materialise the lazy layers
    with torch.no_grad():
        for name in ("W_q", "W_k", "w_v"):
            getattr(ref, name).weight.copy_(getattr(mine, name).weight)
    out, weights = mine(q, k, v, valid_lens)
    torch.testing.assert_close(out, ref(q, k, v, valid_lens))
    torch.testing.assert_close(weights, ref.attention_weights)


def test_additive_scores_equal_the_formula():
    attn = AdditiveAttention(3, 2, 5)
    q, k = torch.randn(1, 2, 3), torch.randn(1, 4, 2)
    scores = attn.score(q, k)
    # a(q, k) = w_v^T tanh(W_q q + W_k k), one query-key pair at a time
    for i in range(2):
        for j in range(4):
            expected = attn.w_v.weight[0] @ torch.tanh(
                attn.W_q.weight @ q[0, i] + attn.W_k.weight @ k[0, j]
            )
            torch.testing.assert_close(scores[0, i, j], expected)


def test_bilinear_scores_equal_q_W_k():
    attn = BilinearAttention(query_size=3, key_size=2)
    q, k, v = torch.randn(2, 4, 3), torch.randn(2, 5, 2), torch.randn(2, 5, 7)
    W = attn.W.weight  # (Dq, Dk)
    expected_scores = torch.einsum("bqi,ij,bkj->bqk", q, W, k)
    out, weights = attn(q, k, v)
    torch.testing.assert_close(weights, torch.softmax(expected_scores, -1))
    torch.testing.assert_close(out, torch.softmax(expected_scores, -1) @ v)


def test_bilinear_with_identity_is_unscaled_dot_product():
    attn = BilinearAttention(4, 4)
    with torch.no_grad():
        attn.W.weight.copy_(torch.eye(4))
    q, k, v = torch.randn(2, 3, 4), torch.randn(2, 5, 4), torch.randn(2, 5, 6)
    torch.testing.assert_close(attn(q, k, v)[0], F.scaled_dot_product_attention(q, k, v, scale=1.0))


def test_errors_name_the_argument(qkv):
    q, k, v = qkv
    with pytest.raises(
        ValueError, match=r"queries.shape\[-1\] \(query size\) \(4\) must equal keys"
    ):
        DotProductAttention()(q, torch.randn(2, 5, 3), v)
    with pytest.raises(ValueError, match=r"number of keys\) \(5\) must equal values.shape\[-2\]"):
        DotProductAttention()(q, k, torch.randn(2, 4, 6))
    with pytest.raises(ValueError, match=r"queries: expected shape \(B, T, D\)"):
        DotProductAttention()(torch.randn(4), k, v)
    with pytest.raises(TypeError, match="keys: expected a torch.Tensor"):
        DotProductAttention()(q, k.numpy(), v)
    with pytest.raises(ValueError, match=r"key size\) \(4\) must equal key_size \(2\)"):
        AdditiveAttention(4, 2, 8)(q, k, v)
    with pytest.raises(ValueError, match=r"query size\) \(4\) must equal query_size \(3\)"):
        BilinearAttention(3, 4)(q, k, v)
    with pytest.raises(ValueError, match=r"valid_lens: expected lengths in \[0, 5\]"):
        DotProductAttention()(q, k, v, torch.tensor([2, 7]))


def test_inputs_not_modified(qkv):
    q, k, v = qkv
    copies = [x.clone() for x in qkv]
    for attn in (DotProductAttention(), AdditiveAttention(4, 4, 3), BilinearAttention(4, 4)):
        attn(q, k, v, torch.tensor([1, 3]))
    for x, c in zip(qkv, copies, strict=True):
        assert torch.equal(x, c)
