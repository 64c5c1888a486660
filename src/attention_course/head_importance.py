r"""Which heads matter? A synthetic task, head importance scores and head pruning.

A model is anything called as ``model(tokens, head_mask=None) -> (logits, weights)``
whose attention layer multiplies head :math:`h`'s output by ``head_mask[h]``
(:class:`~attention_course.MultiHeadAttention` does). Two importance scores:

.. math::
    \text{ablation: } \Delta_h = \mathrm{acc}(\mathbf 1) - \mathrm{acc}(\mathbf 1 - e_h),
    \qquad
    \text{gradient (Michel et al., 2019): } I_h = \mathbb E_x
    \left|\frac{\partial L(x)}{\partial \xi_h}\right|_{\xi = \mathbf 1}

Shapes: N sequences, T tokens, V classes, H heads, Dh head dim.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ._validation import require_ndim, require_tensor
from .multihead import MultiHeadAttention

Model = Callable[..., tuple[Tensor, Tensor]]


def _require_int(name: str, value: object, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(f"{name}: expected an int >= {low}, got {value!r}")
    return value


def _require_heads(name: str, heads: Sequence[int], num_heads: int) -> list[int]:
    heads = list(heads)
    bad = [
        h for h in heads if isinstance(h, bool) or not isinstance(h, int) or not 0 <= h < num_heads
    ]
    if bad or len(set(heads)) != len(heads):
        raise ValueError(f"{name}: expected distinct head indices in [0, {num_heads}), got {heads}")
    return heads


def neighbour_difference_task(
    num_sequences: int,
    seq_len: int = 8,
    vocab_size: int = 5,
    *,
    generator: torch.Generator | None = None,
) -> tuple[Tensor, Tensor]:
    r"""Random token sequences labelled by left neighbour minus right neighbour.

    .. math:: y_t = (x_{t-1} - x_{t+1}) \bmod V \quad (\text{positions wrap around})

    A label needs two positions and the order matters, so one head that averages
    both neighbours is not enough: heads have a reason to specialise.

    Args:
        num_sequences: N.  seq_len: T (at least 3).  vocab_size: V (at least 2).
        generator: optional ``torch.Generator`` for reproducible data.

    Returns:
        ``(tokens, labels)``, both int64 of shape (N, T), values in [0, V).

    Taught in chapters/05_multihead_attention.ipynb.
    """
    _require_int("num_sequences", num_sequences, 1)
    _require_int("seq_len", seq_len, 3)
    _require_int("vocab_size", vocab_size, 2)
    tokens = torch.randint(0, vocab_size, (num_sequences, seq_len), generator=generator)
    left, right = tokens.roll(1, dims=1), tokens.roll(-1, dims=1)  # x_{t-1}, x_{t+1}: (N, T)
    return tokens, (left - right) % vocab_size


def _check_data(tokens: Tensor, labels: Tensor) -> None:
    require_tensor("tokens", tokens)
    require_tensor("labels", labels)
    require_ndim("tokens", tokens, (2,), "(N, T)")
    if labels.shape != tokens.shape:
        raise ValueError(
            f"labels: expected the shape of tokens {tuple(tokens.shape)}, got {tuple(labels.shape)}"
        )


def _ones(model: Model, num_heads: int) -> Tensor:
    """An all-ones head mask in the model's floating dtype (float64 models stay float64)."""
    params = model.parameters() if isinstance(model, nn.Module) else ()
    dtype = next((p.dtype for p in params if p.is_floating_point()), torch.get_default_dtype())
    return torch.ones(num_heads, dtype=dtype)


def _head_mask(num_heads: int, off: Sequence[int], like: Tensor) -> Tensor:
    mask = torch.ones(num_heads, dtype=like.dtype, device=like.device)
    mask[list(off)] = 0.0
    return mask


@torch.no_grad()
def loss_and_accuracy(
    model: Model, tokens: Tensor, labels: Tensor, head_mask: Tensor | None = None
) -> tuple[float, float]:
    """Mean cross-entropy and accuracy over every position, with some heads switched off.

    Shapes:
        tokens (N, T), labels (N, T), head_mask (H,) -> two floats

    Taught in chapters/05_multihead_attention.ipynb.
    """
    _check_data(tokens, labels)
    logits, _ = model(tokens, head_mask=head_mask)  # (N, T, V)
    loss = F.cross_entropy(logits.flatten(0, 1), labels.flatten())
    accuracy = (logits.argmax(-1) == labels).float().mean()
    return float(loss), float(accuracy)


def ablation_importance(
    model: Model, tokens: Tensor, labels: Tensor, num_heads: int
) -> tuple[Tensor, Tensor]:
    """Switch each head off alone; return how much the loss rises and the accuracy drops.

    Returns:
        ``(loss_increase, accuracy_drop)``, each (H,), relative to all heads on.

    Taught in chapters/05_multihead_attention.ipynb.
    """
    _require_int("num_heads", num_heads, 1)
    ones = _ones(model, num_heads)
    base_loss, base_acc = loss_and_accuracy(model, tokens, labels, ones)
    rises, drops = [], []
    for h in range(num_heads):
        loss, acc = loss_and_accuracy(model, tokens, labels, _head_mask(num_heads, [h], ones))
        rises.append(loss - base_loss)
        drops.append(base_acc - acc)
    return torch.tensor(rises), torch.tensor(drops)


def gradient_importance(model: Model, tokens: Tensor, labels: Tensor, num_heads: int) -> Tensor:
    r"""Michel et al. (2019): :math:`I_h = \frac1N \sum_n |\partial L_n / \partial \xi_h|`.

    :math:`\xi` is the head mask, evaluated at all ones, and :math:`L_n` the mean
    cross-entropy over the positions of sequence n. The absolute value is taken per
    sequence, before averaging, so gradients of opposite sign do not cancel.
    Per-sequence gradients come from ``torch.func.vmap`` in one pass.

    Shapes:
        tokens (N, T), labels (N, T) -> (H,)

    Taught in chapters/05_multihead_attention.ipynb.
    """
    _check_data(tokens, labels)
    _require_int("num_heads", num_heads, 1)

    def sequence_loss(xi: Tensor, x: Tensor, y: Tensor) -> Tensor:
        logits, _ = model(x[None], head_mask=xi)  # (1, T, V)
        return F.cross_entropy(logits[0], y)

    xi = _ones(model, num_heads)
    per_sequence = torch.func.vmap(torch.func.grad(sequence_loss), in_dims=(None, 0, 0))(
        xi, tokens, labels
    )  # (N, H)
    return per_sequence.abs().mean(0).detach()


def pruning_curve(model: Model, tokens: Tensor, labels: Tensor, order: Sequence[int]) -> Tensor:
    """Accuracy as heads are switched off one after another in ``order``.

    Returns:
        (len(order) + 1,): entry k is the accuracy with the first k heads of
        ``order`` off (entry 0: all heads on).

    Taught in chapters/05_multihead_attention.ipynb.
    """
    order = _require_heads("order", order, len(order))
    ones = _ones(model, len(order))
    return torch.tensor(
        [
            loss_and_accuracy(model, tokens, labels, _head_mask(len(order), order[:k], ones))[1]
            for k in range(len(order) + 1)
        ]
    )


def pruned_accuracy_table(
    model: Model, tokens: Tensor, labels: Tensor, num_heads: int
) -> dict[tuple[int, ...], float]:
    """Accuracy for every set of switched-off heads, keyed by the sorted tuple of them.

    ``2 ** num_heads`` forward passes: precompute this once, then look up.

    Taught in chapters/05_multihead_attention.ipynb.
    """
    _require_int("num_heads", num_heads, 1)
    ones = _ones(model, num_heads)
    table = {}
    for k in range(num_heads + 1):
        for off in itertools.combinations(range(num_heads), k):
            mask = _head_mask(num_heads, off, ones)
            table[off] = loss_and_accuracy(model, tokens, labels, mask)[1]
    return table


def prune_heads(layer: MultiHeadAttention, keep: Sequence[int]) -> MultiHeadAttention:
    """A smaller layer with only the heads in ``keep``: same output as masking the others.

    Head h owns rows ``h*Dh:(h+1)*Dh`` of ``W_q``, ``W_k``, ``W_v`` and the same
    columns of ``W_o``; the new layer keeps those slices, so it does
    ``len(keep) / H`` of the projection and attention work. ``W_o`` becomes
    rectangular, (len(keep) * Dh) -> num_hiddens.

    Shapes:
        W_q (H*Dh, Dq) -> (H'*Dh, Dq);  W_o (D, H*Dh) -> (D, H'*Dh)

    Taught in chapters/05_multihead_attention.ipynb.
    """
    if not isinstance(layer, MultiHeadAttention):
        raise TypeError(
            f"layer: expected an attention_course.MultiHeadAttention, got {type(layer).__name__}"
        )
    keep = sorted(_require_heads("keep", keep, layer.num_heads))
    if not keep:
        raise ValueError("keep: expected at least one head to keep, got none")
    Dh, bias = layer.head_dim, layer.W_q.bias is not None
    rows = torch.cat([torch.arange(h * Dh, (h + 1) * Dh) for h in keep])  # (H'*Dh,)
    small = MultiHeadAttention(
        len(keep) * Dh,
        len(keep),
        dropout=layer.attention.dropout.p,
        bias=bias,
        query_size=layer.W_q.in_features,
        key_size=layer.W_k.in_features,
        value_size=layer.W_v.in_features,
    )
    small.W_o = nn.Linear(len(keep) * Dh, layer.W_o.out_features, bias=bias)
    small = small.to(layer.W_q.weight)
    with torch.no_grad():
        for name in ("W_q", "W_k", "W_v"):
            big, new = getattr(layer, name), getattr(small, name)
            new.weight.copy_(big.weight[rows])  # (H'*Dh, D_in)
            if bias:
                new.bias.copy_(big.bias[rows])
        small.W_o.weight.copy_(layer.W_o.weight[:, rows])  # (D, H'*Dh)
        if bias:
            small.W_o.bias.copy_(layer.W_o.bias)
    return small.train(layer.training)
