r"""A GRU encoder-decoder with Bahdanau (additive) attention, teacher forcing and greedy decoding.

The decoder step follows d2l's ``Seq2SeqAttentionDecoder`` (d2l 11.4, after Bahdanau et
al. 2015): the query is the previous decoder state :math:`s_{t-1}`,

.. math::
    c_t = \sum_j \alpha_{tj} h_j, \quad
    \alpha_{tj} = \mathrm{softmax}_j\big(w_v^\top \tanh(W_q s_{t-1} + W_k h_j)\big), \quad
    s_t = \mathrm{GRU}([c_t; e(y_{t-1})], s_{t-1}), \quad
    \mathrm{logits}_t = W_o s_t .

With ``attention=False`` the same decoder reads a fixed context :math:`c_t = s_0` (the
encoder's summary) at every step, as d2l's ``Seq2SeqDecoder`` does: the bottleneck.

Shapes: B batch, T source length (also K, the keys the decoder attends over), S target
steps, V vocabulary, E embedding size, h hidden size.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import torch
from torch import Tensor, nn

from ._validation import require_ndim, require_same_size, require_tensor
from .masking import length_mask, masked_softmax
from .scoring import AdditiveAttention


def _keep_mask(valid_lens: Tensor, batch_size: int, num_steps: int) -> Tensor:
    """(B, T) bool mask, True at real tokens; ``valid_lens`` must have shape (B,)."""
    require_tensor("valid_lens", valid_lens)
    if tuple(valid_lens.shape) != (batch_size,):
        raise ValueError(
            f"valid_lens: expected one length per sequence, shape ({batch_size},), "
            f"got shape {tuple(valid_lens.shape)}"
        )
    return length_mask(valid_lens, num_steps)  # (B, T)


def flip_padded(X: Tensor, valid_lens: Tensor) -> Tensor:
    """Reverse each sequence within its valid length; the padding stays at the end.

    Args:
        X: a batch of padded sequences, shape (B, T, ...).
        valid_lens: the number of real steps of each sequence, shape (B,).

    Returns:
        A new tensor with ``out[b, t] = X[b, valid_lens[b] - 1 - t]`` for
        ``t < valid_lens[b]`` and ``out[b, t] = X[b, t]`` (padding) after.

    Shapes:
        X (B, T, ...), valid_lens (B,) -> (B, T, ...)

    Taught in chapters/09_encoder_decoder_attention.ipynb.
    """
    require_tensor("X", X)
    require_ndim("X", X, tuple(range(2, 9)), "(B, T, ...)")
    keep = _keep_mask(valid_lens, X.shape[0], X.shape[1])  # (B, T)
    positions = torch.arange(X.shape[1], device=X.device)  # (T,)
    index = torch.where(keep, valid_lens[:, None] - 1 - positions, positions)  # (B, T)
    index = index.reshape(index.shape + (1,) * (X.ndim - 2)).expand_as(X)  # (B, T, ...)
    return torch.gather(X, 1, index)


class Seq2SeqEncoder(nn.Module):
    r"""Bidirectional GRU encoder: one annotation per source token.

    :math:`h_j = [\overrightarrow{h}_j; \overleftarrow{h}_j]`, forward and backward states.

    The backward GRU reads each sequence reversed *within its valid length*
    (:func:`flip_padded`), so padding never enters it; annotations at padded positions
    are set to 0. The summary handed to the decoder is
    :math:`s_0 = \tanh(W_s [\overrightarrow{h}_{L}; \overleftarrow{h}_{1}])`.

    Args:
        vocab_size: V.  embed_size: E.  num_hiddens: h, even (h/2 per direction).

    Shapes:
        src (B, T) token ids, valid_lens (B,) -> outputs (B, T, h), state (B, h)

    Taught in chapters/09_encoder_decoder_attention.ipynb.
    """

    def __init__(self, vocab_size: int, embed_size: int, num_hiddens: int) -> None:
        super().__init__()
        if num_hiddens % 2:
            raise ValueError(
                f"num_hiddens: expected an even number (h/2 per direction), got {num_hiddens}"
            )
        self.embedding = nn.Embedding(vocab_size, embed_size)
        self.forward_rnn = nn.GRU(embed_size, num_hiddens // 2, batch_first=True)
        self.backward_rnn = nn.GRU(embed_size, num_hiddens // 2, batch_first=True)
        self.W_s = nn.Linear(num_hiddens, num_hiddens)

    def forward(self, src: Tensor, valid_lens: Tensor) -> tuple[Tensor, Tensor]:
        """Encode ``src`` (B, T); returns ``(outputs (B, T, h), state (B, h))``."""
        require_tensor("src", src)
        require_ndim("src", src, (2,), "(B, T) token ids")
        keep = _keep_mask(valid_lens, src.shape[0], src.shape[1])  # (B, T)
        if not bool((valid_lens > 0).all()):
            raise ValueError(
                f"valid_lens: expected every sequence to have a token, got {valid_lens.tolist()}"
            )
        X = self.embedding(src)  # (B, T, E)
        forward_out, _ = self.forward_rnn(X)  # (B, T, h/2)
        backward_out, _ = self.backward_rnn(flip_padded(X, valid_lens))  # (B, T, h/2), reversed
        backward_out = flip_padded(backward_out, valid_lens)  # back in source order
        outputs = torch.cat([forward_out, backward_out], dim=-1)  # (B, T, h)
        outputs = outputs.masked_fill(~keep[..., None], 0.0)  # padding: no annotation
        last = forward_out[torch.arange(src.shape[0]), valid_lens - 1]  # (B, h/2), at t = L
        # s_0 = tanh(W_s [h_fwd_L; h_bwd_1])
        state = torch.tanh(self.W_s(torch.cat([last, backward_out[:, 0]], dim=-1)))  # (B, h)
        return outputs, state


class DecoderState(NamedTuple):
    """What the decoder carries from step to step.

    ``enc_outputs`` (B, T, h) the keys and values; ``hidden`` (B, h) the GRU state
    :math:`s_{t-1}`; ``valid_lens`` (B,) the source lengths; ``context`` (B, h) the fixed
    context :math:`s_0` (used only without attention).
    """

    enc_outputs: Tensor
    hidden: Tensor
    valid_lens: Tensor
    context: Tensor


class AttentionDecoder(nn.Module):
    r"""GRU decoder with additive attention over the encoder's annotations (Bahdanau et al. 2015).

    One :meth:`step` is d2l's ``Seq2SeqAttentionDecoder`` step: query :math:`s_{t-1}`,
    context :math:`c_t` from :class:`AdditiveAttention` with the source padding masked by
    ``valid_lens``, GRU input :math:`[c_t; e(y_{t-1})]`, logits :math:`W_o s_t`. With
    ``attention=False`` the context is the fixed :math:`s_0` at every step.

    Args:
        vocab_size: V.  embed_size: E.  num_hiddens: h (also the annotation size).
        attention: additive attention (True) or a fixed context vector (False).

    Shapes:
        dec_in (B, S) -> logits (B, S, V), weights (B, S, T) or None

    Taught in chapters/09_encoder_decoder_attention.ipynb.
    """

    def __init__(
        self, vocab_size: int, embed_size: int, num_hiddens: int, attention: bool = True
    ) -> None:
        super().__init__()
        self.attention = (
            AdditiveAttention(num_hiddens, num_hiddens, num_hiddens) if attention else None
        )
        self.embedding = nn.Embedding(vocab_size, embed_size)
        self.rnn = nn.GRUCell(num_hiddens + embed_size, num_hiddens)
        self.dense = nn.Linear(num_hiddens, vocab_size)

    def init_state(
        self, enc_outputs: Tensor, enc_state: Tensor, valid_lens: Tensor
    ) -> DecoderState:
        """Start from the encoder: :math:`s_0` is the first hidden state and the fixed context."""
        require_same_size(
            "enc_outputs.shape[-1]", enc_outputs.shape[-1], "num_hiddens", self.rnn.hidden_size
        )
        return DecoderState(enc_outputs, enc_state, valid_lens, enc_state)

    def step(
        self, y_prev: Tensor, state: DecoderState
    ) -> tuple[Tensor, DecoderState, Tensor | None]:
        """One decoding step from the previous tokens ``y_prev`` (B,).

        Returns ``(logits (B, V), new state, weights (B, T) or None)``.
        """
        state, weights = self._advance(self.embedding(y_prev), state)
        return self.dense(state.hidden), state, weights  # logits_t = W_o s_t, (B, V)

    def _advance(self, x_t: Tensor, state: DecoderState) -> tuple[DecoderState, Tensor | None]:
        """The recurrence of one step on the embedded input ``x_t`` = e(y_{t-1}), (B, E)."""
        if self.attention is None:
            context, weights = state.context, None  # c_t = s_0, the same at every step
        else:
            query = state.hidden[:, None]  # (B, h) -> (B, 1, h): one query, s_{t-1}
            # c_t = sum_j softmax_j(w_v^T tanh(W_q s_{t-1} + W_k h_j)) h_j, padding masked
            context, w = self.attention(
                query, state.enc_outputs, state.enc_outputs, state.valid_lens
            )
            context, weights = context[:, 0], w[:, 0]  # (B, 1, h) -> (B, h), (B, 1, T) -> (B, T)
        x = torch.cat([context, x_t], dim=-1)  # [c_t; e(y_{t-1})], (B, h + E)
        hidden = self.rnn(x, state.hidden)  # s_t = GRU([c_t; e(y_{t-1})], s_{t-1}), (B, h)
        return state._replace(hidden=hidden), weights

    def forward(
        self, dec_in: Tensor, state: DecoderState
    ) -> tuple[Tensor, DecoderState, Tensor | None]:
        """Run :meth:`step` over ``dec_in`` (B, S): ``<bos>`` + the target (teacher forcing).

        Returns ``(logits (B, S, V), final state, weights (B, S, T) or None)``.
        """
        require_ndim("dec_in", dec_in, (2,), "(B, S) token ids")
        X = self.embedding(dec_in)  # (B, S, E), all steps at once
        hiddens, weights = [], []
        for t in range(dec_in.shape[1]):
            state, w = self._advance(X[:, t], state)
            hiddens.append(state.hidden)
            weights.append(w)
        stacked = None if self.attention is None else torch.stack(weights, dim=1)  # (B, S, T)
        return self.dense(torch.stack(hiddens, dim=1)), state, stacked  # (B, S, h) -> (B, S, V)


class Seq2Seq(nn.Module):
    """Encoder + decoder; ``forward`` is the teacher-forced pass used in training.

    Shapes:
        src (B, T), valid_lens (B,), dec_in (B, S) -> logits (B, S, V), weights (B, S, T) or None

    Taught in chapters/09_encoder_decoder_attention.ipynb.
    """

    def __init__(self, encoder: Seq2SeqEncoder, decoder: AttentionDecoder) -> None:
        super().__init__()
        self.encoder = encoder
        self.decoder = decoder

    def forward(
        self, src: Tensor, valid_lens: Tensor, dec_in: Tensor
    ) -> tuple[Tensor, Tensor | None]:
        """Teacher forcing: the decoder reads the true previous tokens ``dec_in``."""
        state = self.decoder.init_state(*self.encoder(src, valid_lens), valid_lens)
        logits, _, weights = self.decoder(dec_in, state)
        return logits, weights


@torch.no_grad()
def greedy_decode(
    model: Seq2Seq, src: Tensor, valid_lens: Tensor, num_steps: int, bos: int
) -> tuple[Tensor, Tensor | None]:
    r"""Greedy search: feed back :math:`\hat y_t = \arg\max_v \mathrm{logits}_{t,v}` at each step.

    Returns ``(tokens (B, num_steps), weights (B, num_steps, T) or None)``.

    Taught in chapters/09_encoder_decoder_attention.ipynb.
    """
    state = model.decoder.init_state(*model.encoder(src, valid_lens), valid_lens)
    y = torch.full((src.shape[0],), bos, dtype=torch.long, device=src.device)  # (B,)
    tokens, weights = [], []
    for _ in range(num_steps):
        logits, state, w = model.decoder.step(y, state)
        y = logits.argmax(dim=-1)  # (B, V) -> (B,)
        tokens.append(y)
        weights.append(w)
    stacked = None if weights[0] is None else torch.stack(weights, dim=1)  # (B, S, T)
    return torch.stack(tokens, dim=1), stacked


def luong_step(
    cell: nn.GRUCell,
    W_c: nn.Linear,
    W_o: nn.Linear,
    x_t: Tensor,
    s_prev: Tensor,
    enc_outputs: Tensor,
    valid_lens: Tensor,
) -> tuple[Tensor, Tensor, Tensor]:
    r"""One step of a Luong et al. (2015) "dot" attention decoder (without input feeding).

    .. math::
        s_t = \mathrm{GRU}(x_t, s_{t-1}), \quad
        \alpha_{tj} = \mathrm{softmax}_j(s_t^\top h_j), \quad
        c_t = \sum_j \alpha_{tj} h_j, \quad
        \tilde h_t = \tanh(W_c [c_t; s_t]), \quad
        \mathrm{logits}_t = W_o \tilde h_t .

    Unlike Bahdanau's step the query is the *new* state :math:`s_t`, the score is an
    unscaled dot product, and the context enters the output, not the GRU.

    Shapes:
        x_t (B, E), s_prev (B, h), enc_outputs (B, T, h), valid_lens (B,)
        -> logits (B, V), s_t (B, h), weights (B, T)

    Taught in chapters/09_encoder_decoder_attention.ipynb (exercise).
    """
    s_t = cell(x_t, s_prev)  # (B, h)
    scores = (enc_outputs @ s_t[:, :, None]).squeeze(-1)  # (B, T, h) @ (B, h, 1) -> (B, T)
    weights = masked_softmax(scores, valid_lens)  # (B, T), padding exactly 0
    context = (weights[:, None] @ enc_outputs).squeeze(1)  # (B, 1, T) @ (B, T, h) -> (B, h)
    h_tilde = torch.tanh(W_c(torch.cat([context, s_t], dim=-1)))  # (B, h)
    return W_o(h_tilde), s_t, weights


def _fail(case: int, message: str) -> AssertionError:
    return AssertionError(f"check_luong_step, case {case}: {message}")


def check_luong_step(fn: Callable[..., Any]) -> None:
    """Self-check for the exercise: ``fn`` must behave like :func:`luong_step`.

    Runs seeded cases (padding included), prints one line on success, and otherwise
    raises ``AssertionError`` naming the case and, where the answer matches a known
    mistake, the mistake.

    Taught in chapters/09_encoder_decoder_attention.ipynb (exercise).
    """
    sizes = [(3, 5, 4, 6, 7, [5, 2, 3]), (2, 4, 3, 8, 5, [1, 4]), (1, 1, 2, 4, 3, [1])]
    for case, (B, T, E, h, V, lens) in enumerate(sizes, start=1):
        g = torch.Generator().manual_seed(case)
        cell, W_c, W_o = nn.GRUCell(E, h), nn.Linear(2 * h, h), nn.Linear(h, V)
        with torch.no_grad():
            for p in (*cell.parameters(), *W_c.parameters(), *W_o.parameters()):
                p.copy_(torch.randn(p.shape, generator=g))
        x_t, s_prev = torch.randn(B, E, generator=g), torch.randn(B, h, generator=g)
        enc_outputs, valid_lens = torch.randn(B, T, h, generator=g), torch.tensor(lens)
        args = (cell, W_c, W_o, x_t, s_prev, enc_outputs, valid_lens)
        with torch.no_grad():
            logits_ref, s_ref, w_ref = luong_step(*args)
            result = fn(*args)
        if not isinstance(result, tuple | list) or len(result) != 3:
            raise _fail(case, "expected fn to return a tuple (logits, s_t, weights)")
        if not all(isinstance(r, Tensor) for r in result):
            raise _fail(case, "logits, s_t and weights should all be tensors")
        logits, s_t, w = (r.detach() for r in result)
        with torch.no_grad():
            dot = (enc_outputs @ s_ref[:, :, None]).squeeze(-1)  # (B, T)
            old = (enc_outputs @ s_prev[:, :, None]).squeeze(-1)  # (B, T)
            context = (w_ref[:, None] @ enc_outputs).squeeze(1)  # (B, h)
            weight_mistakes = [
                (
                    "the query is the new state s_t = cell(x_t, s_prev), not s_prev "
                    "(querying with s_prev is Bahdanau's order)",
                    masked_softmax(old, valid_lens),
                ),
                (
                    "Luong's 'dot' score is s_t . h_j, not divided by sqrt(h)",
                    masked_softmax(dot / h**0.5, valid_lens),
                ),
                (
                    "padded source positions must get weight 0: pass valid_lens to masked_softmax",
                    torch.softmax(dot, dim=-1),
                ),
            ]
            logit_mistakes = [
                (
                    "W_c takes [c_t; s_t] (context first), not [s_t; c_t]",
                    W_o(torch.tanh(W_c(torch.cat([s_ref, context], dim=-1)))),
                ),
                (
                    "the attentional state is tanh(W_c [c_t; s_t]); the tanh is missing",
                    W_o(W_c(torch.cat([context, s_ref], dim=-1))),
                ),
            ]
        for got, reference, mistakes in (
            (w, w_ref, weight_mistakes),
            (logits, logits_ref, logit_mistakes),
        ):
            for message, candidate in mistakes:
                if _close(got, candidate) and not _close(candidate, reference):
                    raise _fail(case, f"likely mistake: {message}")
        for name, got, reference in (
            ("s_t", s_t, s_ref),
            ("weights", w, w_ref),
            ("logits", logits, logits_ref),
        ):
            if got.shape != reference.shape:
                raise _fail(
                    case,
                    f"{name} should have shape {tuple(reference.shape)}, got {tuple(got.shape)}",
                )
            if not _close(got, reference):
                raise _fail(
                    case,
                    f"{name} differs from the reference (largest difference "
                    f"{(got - reference).abs().max().item():.3g})",
                )
    print(f"check_luong_step: all {len(sizes)} cases passed.")


def _close(a: Tensor, b: Tensor) -> bool:
    return a.shape == b.shape and torch.allclose(a, b, atol=1e-5, rtol=1e-4)
