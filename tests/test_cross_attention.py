"""CrossAttention against the Keras example's einsums, PyTorch's SDPA and the package MHA."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from attention_course import MultiHeadAttention, attention_entropy, entropy_penalty
from attention_course.cross_attention import CrossAttention

B, Q, K, D, KV, H, DH = 2, 4, 6, 16, 10, 3, 5


@pytest.fixture
def layer_and_inputs():
    torch.manual_seed(0)
    layer = CrossAttention(D, KV, H, DH)
    with torch.no_grad():  # non-trivial LayerNorm parameters, so they are tested too
        layer.norm.weight.uniform_(0.5, 1.5)
        layer.norm.bias.normal_()
    g = torch.Generator().manual_seed(1)
    return layer, torch.randn(B, Q, D, generator=g), torch.randn(B, K, KV, generator=g)


def keras_oracle(layer, queries, key_values):
    """The Keras example's call(), in float64 NumPy, with its (D_in, H, Dh) kernels.

    The output uses the intended einsum "abcd,cde->abe" (the example's "cdd" reads a
    diagonal); LayerNorm is written out with epsilon 1e-5, PyTorch's default.
    """

    def kernel(linear):  # nn.Linear weight (H*Dh, D_in) -> Keras kernel (D_in, H, Dh)
        return linear.weight.detach().double().numpy().T.reshape(-1, H, DH)

    X, Z = queries.double().numpy(), key_values.double().numpy()
    query = np.einsum("abc,cde->abde", X, kernel(layer.W_q)) / math.sqrt(DH)  # (B, Q, H, Dh)
    key = np.einsum("abc,cde->abde", Z, kernel(layer.W_k))  # (B, K, H, Dh)
    value = np.einsum("abc,cde->abde", Z, kernel(layer.W_v))  # (B, K, H, Dh)
    scores = np.einsum("abcd,aecd->acbe", query, key)  # (B, H, Q, K)
    scores = np.exp(scores - scores.max(-1, keepdims=True))
    weights = scores / scores.sum(-1, keepdims=True)
    attended = np.einsum("abcd,aceb->aecd", value, weights)  # (B, Q, H, Dh)
    odk = layer.W_o.weight.detach().double().numpy().T.reshape(H, DH, D)
    out = np.einsum("abcd,cde->abe", attended, odk) + layer.W_o.bias.detach().double().numpy()
    y = out + X
    mean, var = y.mean(-1, keepdims=True), y.var(-1, keepdims=True)
    gamma = layer.norm.weight.detach().double().numpy()
    beta = layer.norm.bias.detach().double().numpy()
    return (y - mean) / np.sqrt(var + 1e-5) * gamma + beta, weights


def test_matches_the_keras_einsums(layer_and_inputs):
    layer, queries, key_values = layer_and_inputs
    output, weights = layer(queries, key_values)
    expected_out, expected_w = keras_oracle(layer, queries, key_values)
    assert output.shape == (B, Q, D) and weights.shape == (B, H, Q, K)
    np.testing.assert_allclose(weights.detach().numpy(), expected_w, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(output.detach().numpy(), expected_out, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(weights.sum(-1), torch.ones(B, H, Q))


def test_matches_sdpa_and_the_package_multihead_attention(layer_and_inputs):
    layer, queries, key_values = layer_and_inputs
    output, weights = layer(queries, key_values)
    mha = MultiHeadAttention(H * DH, H, query_size=D, key_size=KV, value_size=KV)
    with torch.no_grad():
        for name in ("W_q", "W_k", "W_v"):
            getattr(mha, name).weight.copy_(getattr(layer, name).weight)
        mha.W_o.weight.copy_(torch.eye(H * DH))  # so mha returns the concatenated heads
    heads, mha_weights = mha(queries, key_values, key_values)  # (B, Q, H*Dh), (B, H, Q, K)
    torch.testing.assert_close(weights, mha_weights)
    torch.testing.assert_close(output, layer.norm(queries + layer.W_o(heads)))

    q = layer.W_q(queries).reshape(B, Q, H, DH).transpose(1, 2)  # (B, H, Q, Dh)
    k = layer.W_k(key_values).reshape(B, K, H, DH).transpose(1, 2)  # (B, H, K, Dh)
    v = layer.W_v(key_values).reshape(B, K, H, DH).transpose(1, 2)  # (B, H, K, Dh)
    sdpa = F.scaled_dot_product_attention(q, k, v)  # (B, H, Q, Dh)
    torch.testing.assert_close(heads, sdpa.transpose(1, 2).reshape(B, Q, H * DH))


@pytest.mark.parametrize("alpha", [0.2, math.log(5)])
def test_a_step_on_the_penalty_moves_the_entropy_towards_alpha(alpha):
    torch.manual_seed(0)
    layer = CrossAttention(8, 8, 2, 4)
    g = torch.Generator().manual_seed(2)
    queries, key_values = torch.randn(1, 3, 8, generator=g), torch.randn(1, 5, 8, generator=g)
    optimizer = torch.optim.SGD(layer.parameters(), lr=0.05)
    _, weights = layer(queries, key_values)
    before = attention_entropy(weights).mean().item()
    loss = entropy_penalty(weights, alpha)
    optimizer.zero_grad()
    loss.backward()
    assert layer.W_q.weight.grad.abs().sum() > 0 and layer.W_k.weight.grad.abs().sum() > 0
    assert layer.W_o.weight.grad is None, "the penalty sees only the attention weights"
    optimizer.step()
    _, weights = layer(queries, key_values)
    after = attention_entropy(weights).mean().item()
    assert entropy_penalty(weights, alpha).item() < loss.item()
    assert abs(after - alpha) < abs(before - alpha), (before, after)


def test_bad_inputs_name_the_argument(layer_and_inputs):
    layer, queries, key_values = layer_and_inputs
    with pytest.raises(ValueError, match="queries.shape"):
        layer(queries[..., :-1], key_values)
    with pytest.raises(ValueError, match="keys.shape"):
        layer(queries, key_values[..., :-1])
    with pytest.raises(ValueError, match="keys.shape\\[0\\]"):
        layer(queries, key_values[:1])
    with pytest.raises(ValueError, match="queries"):
        layer(queries[0], key_values)
    with pytest.raises(TypeError, match="keys"):
        layer(queries, key_values.long())
    with pytest.raises(ValueError, match="head_dim"):
        CrossAttention(4, 4, 2, 0)
    with pytest.raises(ValueError, match="num_heads"):
        CrossAttention(4, 4, True, 2)
