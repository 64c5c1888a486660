"""Head importance and pruning against oracles written head by head, without head_mask."""

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from attention_course import MultiHeadAttention
from attention_course.head_importance import (
    ablation_importance,
    gradient_importance,
    loss_and_accuracy,
    neighbour_difference_task,
    prune_heads,
    pruned_accuracy_table,
    pruning_curve,
)

T, V, D, H = 6, 4, 12, 3


class Tagger(nn.Module):
    """The notebook's model: embeddings, one multi-head self-attention layer, an MLP."""

    def __init__(self) -> None:
        super().__init__()
        self.tok = nn.Embedding(V, D)
        self.pos = nn.Parameter(torch.randn(T, D))
        self.attn = MultiHeadAttention(D, H, bias=True)
        self.mlp = nn.Sequential(nn.Linear(D, 16), nn.ReLU(), nn.Linear(16, V))

    def forward(self, tokens, head_mask=None):
        x = self.tok(tokens) + self.pos
        out, weights = self.attn(x, x, x, head_mask=head_mask)
        return self.mlp(out), weights


def attention_oracle(layer, q, k, v, keep):
    """Multi-head attention as a loop over the kept heads, each with its own weight slices."""
    Dh = layer.head_dim
    out = layer.W_o.bias.clone() if layer.W_o.bias is not None else 0.0
    for h in keep:
        rows = slice(h * Dh, (h + 1) * Dh)

        def proj(lin, x, rows=rows):
            b = 0.0 if lin.bias is None else lin.bias[rows]
            return x @ lin.weight[rows].T + b

        qh, kh, vh = proj(layer.W_q, q), proj(layer.W_k, k), proj(layer.W_v, v)
        alpha = torch.softmax(qh @ kh.transpose(-2, -1) / math.sqrt(Dh), dim=-1)
        out = out + (alpha @ vh) @ layer.W_o.weight[:, rows].T
    return out


def oracle_logits(model, tokens, keep):
    x = model.tok(tokens) + model.pos
    return model.mlp(attention_oracle(model.attn, x, x, x, keep))


def oracle_accuracy(model, tokens, labels, keep):
    with torch.no_grad():
        return (oracle_logits(model, tokens, keep).argmax(-1) == labels).float().mean().item()


@pytest.fixture
def setup():
    torch.manual_seed(0)
    model = Tagger()
    g = torch.Generator().manual_seed(1)
    tokens = torch.randint(0, V, (40, T), generator=g)
    labels = torch.randint(0, V, (40, T), generator=g)
    return model, tokens, labels


def test_task_labels_follow_the_rule():
    tokens, labels = neighbour_difference_task(
        5, seq_len=7, vocab_size=6, generator=torch.Generator().manual_seed(0)
    )
    assert tokens.shape == labels.shape == (5, 7)
    for n in range(5):
        for t in range(7):
            expected = (tokens[n, (t - 1) % 7] - tokens[n, (t + 1) % 7]).item() % 6
            assert labels[n, t].item() == expected, (n, t)
    again, _ = neighbour_difference_task(
        5, seq_len=7, vocab_size=6, generator=torch.Generator().manual_seed(0)
    )
    assert torch.equal(tokens, again), "the generator makes the data reproducible"


def test_loss_and_accuracy(setup):
    model, tokens, labels = setup
    with torch.no_grad():
        logits = oracle_logits(model, tokens, range(H))
    loss, acc = loss_and_accuracy(model, tokens, labels)
    assert loss == pytest.approx(
        F.cross_entropy(logits.reshape(-1, V), labels.reshape(-1)).item(), rel=1e-5
    )
    assert acc == pytest.approx((logits.argmax(-1) == labels).float().mean().item())


def test_ablation_removes_one_head_at_a_time(setup):
    model, tokens, labels = setup
    rises, drops = ablation_importance(model, tokens, labels, H)
    full = oracle_accuracy(model, tokens, labels, range(H))
    with torch.no_grad():
        full_loss = F.cross_entropy(
            oracle_logits(model, tokens, range(H)).flatten(0, 1), labels.flatten()
        )
    for h in range(H):
        keep = [i for i in range(H) if i != h]
        assert drops[h].item() == pytest.approx(
            full - oracle_accuracy(model, tokens, labels, keep), abs=1e-6
        )
        with torch.no_grad():
            loss = F.cross_entropy(
                oracle_logits(model, tokens, keep).flatten(0, 1), labels.flatten()
            )
        assert rises[h].item() == pytest.approx((loss - full_loss).item(), rel=1e-4, abs=1e-6)


def test_gradient_importance_is_mean_absolute_per_sequence_gradient(setup):
    model, tokens, labels = setup
    got = gradient_importance(model, tokens, labels, H)
    per_sequence = []
    for n in range(tokens.shape[0]):
        xi = torch.ones(H, requires_grad=True)
        logits, _ = model(tokens[n : n + 1], head_mask=xi)
        (grad,) = torch.autograd.grad(F.cross_entropy(logits[0], labels[n]), xi)
        per_sequence.append(grad)
    per_sequence = torch.stack(per_sequence)  # (N, H)
    torch.testing.assert_close(got, per_sequence.abs().mean(0), rtol=1e-4, atol=1e-7)
    # the order of abs and mean matters here, so the test can tell them apart
    assert not torch.allclose(got, per_sequence.mean(0).abs(), rtol=1e-3)


def test_pruning_curve_and_table(setup):
    model, tokens, labels = setup
    order = [2, 0, 1]
    curve = pruning_curve(model, tokens, labels, order)
    table = pruned_accuracy_table(model, tokens, labels, H)
    assert len(table) == 2**H
    for k in range(H + 1):
        keep = [h for h in range(H) if h not in order[:k]]
        assert curve[k].item() == pytest.approx(oracle_accuracy(model, tokens, labels, keep))
        assert table[tuple(sorted(order[:k]))] == pytest.approx(curve[k].item())
    for off, acc in table.items():
        keep = [h for h in range(H) if h not in off]
        assert acc == pytest.approx(oracle_accuracy(model, tokens, labels, keep)), off


@pytest.mark.parametrize("bias", [False, True])
@pytest.mark.parametrize("keep", [[1], [0, 2], [2, 0], [0, 1, 2]])
def test_pruned_layer_equals_masking_and_the_oracle(bias, keep):
    layer = MultiHeadAttention(12, 3, bias=bias, query_size=5, key_size=7, value_size=4)
    q, k, v = torch.randn(2, 3, 5), torch.randn(2, 6, 7), torch.randn(2, 6, 4)
    small = prune_heads(layer, keep)
    assert small.num_heads == len(keep) and small.W_o.weight.shape == (12, 4 * len(keep))
    mask = torch.zeros(3)
    mask[keep] = 1.0
    with torch.no_grad():
        got, weights = small(q, k, v)
        masked, all_weights = layer(q, k, v, head_mask=mask)
        torch.testing.assert_close(got, masked)
        torch.testing.assert_close(got, attention_oracle(layer, q, k, v, sorted(keep)))
        torch.testing.assert_close(weights, all_weights[:, sorted(keep)])
    # the copy is independent of the original
    with torch.no_grad():
        small.W_q.weight.zero_()
    assert layer.W_q.weight.abs().sum() > 0


@pytest.mark.parametrize(
    ("call", "error", "name"),
    [
        (lambda L: prune_heads(L, []), ValueError, "keep"),
        (lambda L: prune_heads(L, [0, 0]), ValueError, "keep"),
        (lambda L: prune_heads(L, [3]), ValueError, "keep"),
        (lambda L: prune_heads(nn.Linear(2, 2), [0]), TypeError, "layer"),
        (lambda L: neighbour_difference_task(0), ValueError, "num_sequences"),
        (lambda L: neighbour_difference_task(4, seq_len=2), ValueError, "seq_len"),
        (
            lambda L: ablation_importance(L, torch.zeros(2, 3), torch.zeros(2, 3), 0),
            ValueError,
            "num_heads",
        ),
        (
            lambda L: loss_and_accuracy(L, torch.zeros(2, 3), torch.zeros(3, 2)),
            ValueError,
            "labels",
        ),
        (
            lambda L: pruning_curve(L, torch.zeros(2, 3), torch.zeros(2, 3), [0, 2]),
            ValueError,
            "order",
        ),
    ],
)
def test_errors_name_the_argument(call, error, name):
    layer = MultiHeadAttention(12, 3)
    with pytest.raises(error, match=f"^{name}"):
        call(layer)


def test_float64_models_are_scored_in_float64(setup):
    """A float64 model gets float64 head masks, so its scores do not round to float32."""
    model, tokens, labels = setup
    model = model.double()
    got = gradient_importance(model, tokens, labels, H)
    assert got.dtype == torch.float64
    per_sequence = []
    for n in range(tokens.shape[0]):
        xi = torch.ones(H, dtype=torch.float64, requires_grad=True)
        logits, _ = model(tokens[n : n + 1], head_mask=xi)
        (grad,) = torch.autograd.grad(F.cross_entropy(logits[0], labels[n]), xi)
        per_sequence.append(grad)
    torch.testing.assert_close(got, torch.stack(per_sequence).abs().mean(0), rtol=1e-10, atol=1e-14)
    rises, _ = ablation_importance(model, tokens, labels, H)
    assert rises.dtype == torch.float32  # a tensor of Python floats, as for float32 models
    curve = pruning_curve(model, tokens, labels, [0, 1, 2])
    assert curve[-1].item() == pytest.approx(oracle_accuracy(model, tokens, labels, []))
