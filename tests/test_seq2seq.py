"""The encoder-decoder of chapter 09 against oracles: nn.GRU with packed sequences, d2l's
Seq2SeqAttentionDecoder and Seq2SeqDecoder (transcribed from d2l 11.4 and 10.7, which the
d2l package does not ship), F.scaled_dot_product_attention, and a Python loop."""

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from attention_course.seq2seq import (
    AttentionDecoder,
    Seq2Seq,
    Seq2SeqEncoder,
    check_luong_step,
    flip_padded,
    greedy_decode,
    luong_step,
)

V, E, H = 9, 5, 6


def batch(B=4, T=7, seed=0):
    g = torch.Generator().manual_seed(seed)
    lens = torch.tensor([7, 3, 1, 5][:B])
    keep = torch.arange(T) < lens[:, None]
    src = torch.randint(2, V, (B, T), generator=g).masked_fill(~keep, 0)
    return src, lens, keep


# ---- flip_padded ----------------------------------------------------------------------------


def test_flip_padded_matches_a_python_loop_and_keeps_padding():
    X = torch.randn(3, 5, 2)
    lens = torch.tensor([5, 2, 0])
    expected = X.clone()
    for b, L in enumerate(lens.tolist()):
        expected[b, :L] = X[b, :L].flip(0)
    out = flip_padded(X, lens)
    torch.testing.assert_close(out, expected)
    torch.testing.assert_close(flip_padded(out, lens), X)  # an involution
    assert out.data_ptr() != X.data_ptr()


def test_flip_padded_rejects_one_length_per_wrong_thing():
    with pytest.raises(ValueError, match=r"valid_lens: expected one length per sequence"):
        flip_padded(torch.zeros(2, 3), torch.tensor([1, 2, 3]))
    with pytest.raises(ValueError, match=r"\[0, 3\]"):
        flip_padded(torch.zeros(2, 3), torch.tensor([1, 4]))


# ---- encoder --------------------------------------------------------------------------------


def test_encoder_equals_packed_bidirectional_gru():
    src, lens, keep = batch()
    enc = Seq2SeqEncoder(V, E, H)
    ref = nn.GRU(E, H // 2, batch_first=True, bidirectional=True)
    with torch.no_grad():
        for name, p in enc.forward_rnn.named_parameters():
            getattr(ref, name).copy_(p)
        for name, p in enc.backward_rnn.named_parameters():
            getattr(ref, name + "_reverse").copy_(p)
    outputs, state = enc(src, lens)
    packed = pack_padded_sequence(enc.embedding(src), lens, batch_first=True, enforce_sorted=False)
    ref_out, h_n = ref(packed)
    ref_out, _ = pad_packed_sequence(ref_out, batch_first=True, total_length=src.shape[1])
    torch.testing.assert_close(outputs, ref_out)
    # s_0 = tanh(W_s [forward state at L-1; backward state at 0])
    torch.testing.assert_close(state, torch.tanh(enc.W_s(torch.cat([h_n[0], h_n[1]], dim=-1))))


def test_encoder_ignores_padding_and_zeroes_its_annotations():
    src, lens, keep = batch()
    enc = Seq2SeqEncoder(V, E, H)
    outputs, state = enc(src, lens)
    other_outputs, other_state = enc(src.masked_fill(~keep, 5), lens)
    torch.testing.assert_close(other_outputs, outputs)
    torch.testing.assert_close(other_state, state)
    assert outputs[~keep].abs().max() == 0


def test_encoder_errors():
    with pytest.raises(ValueError, match="even"):
        Seq2SeqEncoder(V, E, 5)
    enc = Seq2SeqEncoder(V, E, H)
    with pytest.raises(ValueError, match="every sequence"):
        enc(torch.ones(2, 3, dtype=torch.long), torch.tensor([3, 0]))
    with pytest.raises(ValueError, match=r"src: expected shape \(B, T\)"):
        enc(torch.ones(2, 3, 1, dtype=torch.long), torch.tensor([3, 1]))


# ---- decoders against d2l -------------------------------------------------------------------


def d2l_attention_decoder(d2l):
    """d2l 11.4's Seq2SeqAttentionDecoder (num_layers=1, no dropout), as printed in the book."""

    class Seq2SeqAttentionDecoder(d2l.AttentionDecoder):
        def __init__(self, vocab_size, embed_size, num_hiddens, num_layers, dropout=0):
            super().__init__()
            self.attention = d2l.AdditiveAttention(num_hiddens, dropout)
            self.embedding = nn.Embedding(vocab_size, embed_size)
            self.rnn = nn.GRU(embed_size + num_hiddens, num_hiddens, num_layers, dropout=dropout)
            self.dense = nn.LazyLinear(vocab_size)
            self.apply(d2l.init_seq2seq)

        def init_state(self, enc_outputs, enc_valid_lens):
            outputs, hidden_state = enc_outputs
            return (outputs.permute(1, 0, 2), hidden_state, enc_valid_lens)

        def forward(self, X, state):
            enc_outputs, hidden_state, enc_valid_lens = state
            X = self.embedding(X).permute(1, 0, 2)
            outputs, self._attention_weights = [], []
            for x in X:
                query = torch.unsqueeze(hidden_state[-1], dim=1)
                context = self.attention(query, enc_outputs, enc_outputs, enc_valid_lens)
                x = torch.cat((context, torch.unsqueeze(x, dim=1)), dim=-1)
                out, hidden_state = self.rnn(x.permute(1, 0, 2), hidden_state)
                outputs.append(out)
                self._attention_weights.append(self.attention.attention_weights)
            outputs = self.dense(torch.cat(outputs, dim=0))
            return outputs.permute(1, 0, 2), [enc_outputs, hidden_state, enc_valid_lens]

        @property
        def attention_weights(self):
            return self._attention_weights

    return Seq2SeqAttentionDecoder(V, E, H, num_layers=1)


def copy_gru(cell, gru, permutation=None):
    with torch.no_grad():
        for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            value = getattr(cell, name)
            if name == "weight_ih" and permutation is not None:
                value = value[:, permutation]
            getattr(gru, name + "_l0").copy_(value)


def test_attention_decoder_equals_d2l_seq2seq_attention_decoder(d2l):
    src, lens, keep = batch()
    enc_outputs, s0 = Seq2SeqEncoder(V, E, H)(src, lens)  # (B, T, H), (B, H)
    dec_in = torch.randint(1, V, (4, 6))
    mine = AttentionDecoder(V, E, H, attention=True)
    ref = d2l_attention_decoder(d2l)
    ref_state = ref.init_state((enc_outputs.permute(1, 0, 2), s0[None]), lens)
    ref(dec_in, ref_state)  # materialise the lazy layers
    with torch.no_grad():
        for name in ("W_q", "W_k", "w_v"):
            getattr(ref.attention, name).weight.copy_(getattr(mine.attention, name).weight)
        ref.embedding.weight.copy_(mine.embedding.weight)
        ref.dense.weight.copy_(mine.dense.weight)
        ref.dense.bias.copy_(mine.dense.bias)
    copy_gru(mine.rnn, ref.rnn)
    logits, state, weights = mine(dec_in, mine.init_state(enc_outputs, s0, lens))
    ref_logits, (_, ref_hidden, _) = ref(dec_in, ref_state)
    torch.testing.assert_close(logits, ref_logits)
    torch.testing.assert_close(state.hidden, ref_hidden[0])
    torch.testing.assert_close(weights, torch.cat(ref.attention_weights, dim=1))  # (B, S, T)
    assert weights[~keep[:, None, :].expand_as(weights)].abs().max() == 0
    torch.testing.assert_close(weights.sum(-1), torch.ones(4, 6))


def test_fixed_context_decoder_equals_d2l_seq2seq_decoder(d2l):
    # d2l 10.7's Seq2SeqDecoder: context = the encoder's last state at every step, GRU input
    # cat(embedding, context) (ours is cat(context, embedding): the columns are permuted).
    src, lens, _ = batch()
    _, s0 = Seq2SeqEncoder(V, E, H)(src, lens)
    dec_in = torch.randint(1, V, (4, 6))
    mine = AttentionDecoder(V, E, H, attention=False)
    rnn, dense = nn.GRU(E + H, H), nn.Linear(H, V)
    copy_gru(mine.rnn, rnn, permutation=torch.cat([torch.arange(H, H + E), torch.arange(H)]))
    with torch.no_grad():
        dense.load_state_dict(mine.dense.state_dict())
    embs = mine.embedding(dec_in.t())  # (S, B, E)
    context = s0[None].repeat(embs.shape[0], 1, 1)  # enc_output[-1], repeated: (S, B, H)
    outputs, hidden = rnn(torch.cat((embs, context), -1), s0[None])
    logits, state, weights = mine(dec_in, mine.init_state(torch.zeros(4, 7, H), s0, lens))
    torch.testing.assert_close(logits, dense(outputs).swapaxes(0, 1))
    torch.testing.assert_close(state.hidden, hidden[0])
    assert weights is None


def test_decoder_padding_of_encoder_outputs_does_not_matter():
    src, lens, keep = batch()
    enc_outputs, s0 = Seq2SeqEncoder(V, E, H)(src, lens)
    noisy = enc_outputs + 100 * (~keep)[..., None] * torch.randn_like(enc_outputs)
    dec = AttentionDecoder(V, E, H)
    dec_in = torch.randint(1, V, (4, 5))
    a, _, wa = dec(dec_in, dec.init_state(enc_outputs, s0, lens))
    b, _, wb = dec(dec_in, dec.init_state(noisy, s0, lens))
    torch.testing.assert_close(a, b)
    torch.testing.assert_close(wa, wb)


def test_decoder_rejects_wrong_annotation_size():
    dec = AttentionDecoder(V, E, H)
    with pytest.raises(ValueError, match="num_hiddens"):
        dec.init_state(torch.zeros(2, 3, H + 2), torch.zeros(2, H), torch.tensor([3, 1]))


# ---- greedy decoding --------------------------------------------------------------------------


@pytest.mark.parametrize("attention", [True, False])
def test_greedy_decode_is_teacher_forcing_on_its_own_output(attention):
    src, lens, _ = batch()
    model = Seq2Seq(Seq2SeqEncoder(V, E, H), AttentionDecoder(V, E, H, attention))
    tokens, weights = greedy_decode(model, src, lens, num_steps=6, bos=1)
    assert tokens.shape == (4, 6)
    dec_in = torch.cat([torch.full((4, 1), 1), tokens[:, :-1]], dim=1)
    with torch.no_grad():
        logits, forced_weights = model(src, lens, dec_in)
    assert torch.equal(logits.argmax(-1), tokens)
    if attention:
        torch.testing.assert_close(weights, forced_weights)
    else:
        assert weights is None and forced_weights is None


def test_a_short_training_run_learns_to_reverse():
    # 150 Adam steps on lengths 1..4: the attention model must reverse most tokens
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(1)
    model = Seq2Seq(Seq2SeqEncoder(V, 8, 16), AttentionDecoder(V, 8, 16))
    optimizer = torch.optim.Adam(model.parameters(), lr=0.02)

    def data(n):
        lens = torch.randint(1, 5, (n,), generator=g)
        keep = torch.arange(4) < lens[:, None]
        src = torch.randint(2, V, (n, 4), generator=g).masked_fill(~keep, 0)
        tgt = flip_padded(src, lens)
        return src, lens, torch.cat([torch.ones(n, 1, dtype=torch.long), tgt[:, :-1]], 1), tgt

    for _ in range(150):
        src, lens, dec_in, tgt = data(32)
        logits, _ = model(src, lens, dec_in)
        keep = torch.arange(4) < lens[:, None]
        loss = (F.cross_entropy(logits.transpose(1, 2), tgt, reduction="none") * keep).sum()
        optimizer.zero_grad()
        (loss / keep.sum()).backward()
        optimizer.step()
    src, lens, _, tgt = data(200)
    tokens, _ = greedy_decode(model, src, lens, 4, bos=1)
    keep = torch.arange(4) < lens[:, None]
    assert ((tokens == tgt) & keep).sum() / keep.sum() > 0.8


# ---- Luong's step and its self-check -----------------------------------------------------------


def luong_case(seed=0):
    g = torch.Generator().manual_seed(seed)
    cell, W_c, W_o = nn.GRUCell(E, H), nn.Linear(2 * H, H), nn.Linear(H, V)
    x_t, s_prev = torch.randn(3, E, generator=g), torch.randn(3, H, generator=g)
    enc_outputs, lens = torch.randn(3, 5, H, generator=g), torch.tensor([5, 2, 1])
    return cell, W_c, W_o, x_t, s_prev, enc_outputs, lens


def test_luong_step_matches_sdpa_with_unit_scale():
    cell, W_c, W_o, x_t, s_prev, enc_outputs, lens = luong_case()
    logits, s_t, weights = luong_step(cell, W_c, W_o, x_t, s_prev, enc_outputs, lens)
    torch.testing.assert_close(s_t, cell(x_t, s_prev))
    keep = (torch.arange(5) < lens[:, None])[:, None, :]  # (B, 1, T)
    context = F.scaled_dot_product_attention(
        s_t[:, None], enc_outputs, enc_outputs, attn_mask=keep, scale=1.0
    )[:, 0]
    torch.testing.assert_close(logits, W_o(torch.tanh(W_c(torch.cat([context, s_t], -1)))))
    scores = (s_t[:, None] * enc_outputs).sum(-1).masked_fill(~keep[:, 0], -math.inf)
    torch.testing.assert_close(weights, torch.softmax(scores, -1))


def test_check_luong_step_passes_the_reference(capsys):
    check_luong_step(luong_step)
    assert "all 3 cases passed" in capsys.readouterr().out


def _bahdanau_order(cell, W_c, W_o, x_t, s_prev, enc_outputs, valid_lens):
    _, _, weights = luong_step(cell, W_c, W_o, x_t, s_prev, enc_outputs, valid_lens)
    scores = (enc_outputs @ s_prev[:, :, None]).squeeze(-1)
    keep = torch.arange(enc_outputs.shape[1]) < valid_lens[:, None]
    weights = torch.softmax(scores.masked_fill(~keep, -math.inf), -1)
    s_t = cell(x_t, s_prev)
    context = (weights[:, None] @ enc_outputs).squeeze(1)
    return W_o(torch.tanh(W_c(torch.cat([context, s_t], -1)))), s_t, weights


def _scaled(cell, W_c, W_o, x_t, s_prev, enc_outputs, valid_lens):
    s_t = cell(x_t, s_prev)
    scores = (enc_outputs @ s_t[:, :, None]).squeeze(-1) / math.sqrt(s_t.shape[-1])
    keep = torch.arange(enc_outputs.shape[1]) < valid_lens[:, None]
    weights = torch.softmax(scores.masked_fill(~keep, -math.inf), -1)
    context = (weights[:, None] @ enc_outputs).squeeze(1)
    return W_o(torch.tanh(W_c(torch.cat([context, s_t], -1)))), s_t, weights


def _unmasked(cell, W_c, W_o, x_t, s_prev, enc_outputs, valid_lens):
    s_t = cell(x_t, s_prev)
    weights = torch.softmax((enc_outputs @ s_t[:, :, None]).squeeze(-1), -1)
    context = (weights[:, None] @ enc_outputs).squeeze(1)
    return W_o(torch.tanh(W_c(torch.cat([context, s_t], -1)))), s_t, weights


def _swapped(cell, W_c, W_o, x_t, s_prev, enc_outputs, valid_lens):
    logits, s_t, weights = luong_step(cell, W_c, W_o, x_t, s_prev, enc_outputs, valid_lens)
    context = (weights[:, None] @ enc_outputs).squeeze(1)
    return W_o(torch.tanh(W_c(torch.cat([s_t, context], -1)))), s_t, weights


def _no_tanh(cell, W_c, W_o, x_t, s_prev, enc_outputs, valid_lens):
    logits, s_t, weights = luong_step(cell, W_c, W_o, x_t, s_prev, enc_outputs, valid_lens)
    context = (weights[:, None] @ enc_outputs).squeeze(1)
    return W_o(W_c(torch.cat([context, s_t], -1))), s_t, weights


@pytest.mark.parametrize(
    ("wrong", "message"),
    [
        (_bahdanau_order, "not s_prev"),
        (_scaled, "not divided by sqrt"),
        (_unmasked, "pass valid_lens"),
        (_swapped, r"\[c_t; s_t\] \(context first\)"),
        (_no_tanh, "tanh is missing"),
        (lambda *args: luong_step(*args)[0], "expected fn to return a tuple"),
    ],
)
def test_check_luong_step_names_the_mistake(wrong, message):
    with pytest.raises(AssertionError, match=message):
        check_luong_step(wrong)
