r"""A tiny decoder-only Transformer, greedy generation with a KV cache, and what a step costs.

Each block is pre-norm: :math:`X \leftarrow X + \mathrm{MHA}(\mathrm{LN}(X))` with a causal
mask, then :math:`X \leftarrow X + \mathrm{FFN}(\mathrm{LN}(X))`. Attention is the package's
:class:`MultiHeadAttention` (``num_kv_heads`` < ``num_heads`` gives grouped-query
attention, 1 gives multi-query attention); a :class:`KVCache` per layer lets generation
feed one token per step instead of the whole prefix.

Shapes: B batch, T tokens, V vocabulary, D model width, H query heads, Hkv key/value heads,
Dh = D / H head dim, L layers, F feed-forward width.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ._validation import require_int, require_ndim, require_positive_int, require_tensor
from .kv_cache import KVCache
from .multihead import MultiHeadAttention


@dataclass(frozen=True)
class DecoderConfig:
    """The sizes of a :class:`TinyDecoder`.

    Args:
        vocab_size: V.  max_len: the most positions (learned position embeddings).
        num_hiddens: D.  num_heads: H.  num_kv_heads: Hkv (default H; must divide H).
        num_layers: L.  ffn_hiddens: F, the feed-forward width.

    Taught in chapters/10_causal_decoding_and_kv_cache.ipynb.
    """

    vocab_size: int
    max_len: int
    num_hiddens: int = 32
    num_heads: int = 4
    num_kv_heads: int | None = None
    num_layers: int = 2
    ffn_hiddens: int = 64

    def __post_init__(self) -> None:
        for name in ("vocab_size", "max_len", "num_hiddens", "num_heads", "num_layers"):
            require_positive_int(name, getattr(self, name))
        require_positive_int("ffn_hiddens", self.ffn_hiddens)
        if self.num_hiddens % self.num_heads:
            raise ValueError(
                f"num_hiddens: expected a multiple of num_heads ({self.num_heads}), "
                f"got {self.num_hiddens}"
            )
        kv = require_positive_int("num_kv_heads", self.kv_heads)
        if self.num_heads % kv:
            raise ValueError(
                f"num_kv_heads: expected a divisor of num_heads ({self.num_heads}), got {kv}"
            )

    @property
    def kv_heads(self) -> int:
        """Hkv: the key/value heads (``num_heads`` when ``num_kv_heads`` is None)."""
        return self.num_heads if self.num_kv_heads is None else self.num_kv_heads

    @property
    def head_dim(self) -> int:
        """Dh = D / H."""
        return self.num_hiddens // self.num_heads


class DecoderBlock(nn.Module):
    """Pre-norm causal self-attention then a feed-forward network, each with a residual.

    Taught in chapters/10_causal_decoding_and_kv_cache.ipynb.
    """

    def __init__(self, config: DecoderConfig) -> None:
        super().__init__()
        D = config.num_hiddens
        self.norm1 = nn.LayerNorm(D)
        self.attention = MultiHeadAttention(D, config.num_heads, num_kv_heads=config.kv_heads)
        self.norm2 = nn.LayerNorm(D)
        self.ffn = nn.Sequential(
            nn.Linear(D, config.ffn_hiddens), nn.GELU(), nn.Linear(config.ffn_hiddens, D)
        )

    def forward(
        self, X: Tensor, kv_cache: KVCache | None = None, need_weights: bool = False
    ) -> tuple[Tensor, Tensor | None]:
        """(B, T, D) -> (B, T, D) and the weights (B, H, T, K) or None; K = cached + T."""
        Y = self.norm1(X)
        out, weights = self.attention(
            Y, Y, Y, is_causal=True, kv_cache=kv_cache, need_weights=need_weights
        )
        X = X + out  # (B, T, D)
        return X + self.ffn(self.norm2(X)), weights


class TinyDecoder(nn.Module):
    """Token and learned position embeddings, L decoder blocks, a final norm, the logits.

    With ``kv_caches`` (one :class:`KVCache` per layer, see :meth:`new_caches`) the
    tokens passed are the *next* ones: their positions start at the cache's length, and
    each layer attends over everything cached plus them.

    Taught in chapters/10_causal_decoding_and_kv_cache.ipynb.
    """

    def __init__(self, config: DecoderConfig) -> None:
        super().__init__()
        self.config = config
        self.token_embedding = nn.Embedding(config.vocab_size, config.num_hiddens)
        self.position_embedding = nn.Embedding(config.max_len, config.num_hiddens)
        self.blocks = nn.ModuleList(DecoderBlock(config) for _ in range(config.num_layers))
        self.norm = nn.LayerNorm(config.num_hiddens)
        self.head = nn.Linear(config.num_hiddens, config.vocab_size)

    def new_caches(self) -> list[KVCache]:
        """One empty cache per layer."""
        return [KVCache() for _ in self.blocks]

    def forward(
        self,
        tokens: Tensor,
        kv_caches: list[KVCache] | None = None,
        need_weights: bool = False,
    ) -> tuple[Tensor, list[Tensor | None]]:
        """Logits for every position passed, and each layer's attention weights.

        Args:
            tokens: (B, T) integer token ids.
            kv_caches: None (attend within ``tokens`` only) or one cache per layer.
            need_weights: return each layer's (B, H, T, K) weights (else None).

        Returns:
            ``(logits (B, T, V), [weights per layer])``.
        """
        require_tensor("tokens", tokens)
        require_ndim("tokens", tokens, (2,), "(B, T)")
        if kv_caches is not None and len(kv_caches) != len(self.blocks):
            raise ValueError(
                f"kv_caches: expected one cache per layer ({len(self.blocks)}), "
                f"got {len(kv_caches)}"
            )
        start = 0 if kv_caches is None else len(kv_caches[0])  # positions already cached
        T = tokens.shape[1]
        if start + T > self.config.max_len:
            raise ValueError(
                f"tokens: positions {start}..{start + T - 1} exceed max_len {self.config.max_len}"
            )
        positions = torch.arange(start, start + T, device=tokens.device)  # (T,)
        X = self.token_embedding(tokens) + self.position_embedding(positions)  # (B, T, D)
        all_weights = []
        for i, block in enumerate(self.blocks):
            cache = None if kv_caches is None else kv_caches[i]
            X, weights = block(X, cache, need_weights)
            all_weights.append(weights)
        return self.head(self.norm(X)), all_weights  # (B, T, V)


@torch.no_grad()
def generate(model: TinyDecoder, prompt: Tensor, num_new: int, *, use_cache: bool = True) -> Tensor:
    """Greedy decoding: append the most likely next token ``num_new`` times.

    With the cache, the prompt is fed once (prefill) and then one token per step;
    without, the whole sequence so far is fed at every step. Both give the same tokens.

    Shapes:
        prompt (B, P) -> (B, P + num_new)

    Taught in chapters/10_causal_decoding_and_kv_cache.ipynb.
    """
    require_tensor("prompt", prompt)
    require_ndim("prompt", prompt, (2,), "(B, P)")
    num_new = require_int("num_new", num_new, low=0)
    tokens = prompt
    caches = model.new_caches() if use_cache else None
    feed = prompt  # what the next forward pass sees
    for _ in range(num_new):
        logits, _ = model(feed, caches)  # (B, T_fed, V)
        next_token = logits[:, -1].argmax(-1, keepdim=True)  # (B, 1)
        tokens = torch.cat([tokens, next_token], dim=1)
        feed = next_token if use_cache else tokens
    return tokens


def kv_cache_bytes(
    config: DecoderConfig, num_tokens: int, *, batch_size: int = 1, bytes_per_value: int = 4
) -> int:
    """Bytes of all layers' cached keys and values: 2 x L x Hkv x Dh x T x B x bytes.

    Taught in chapters/10_causal_decoding_and_kv_cache.ipynb.
    """
    T = require_int("num_tokens", num_tokens, low=0)
    B = require_positive_int("batch_size", batch_size)
    size = require_positive_int("bytes_per_value", bytes_per_value)
    return 2 * config.num_layers * config.kv_heads * config.head_dim * T * B * size


def step_macs(config: DecoderConfig, position: int, *, cached: bool) -> int:
    """Multiply-adds to produce the next token when ``position`` tokens are known.

    Without a cache the model runs on all T = ``position`` tokens (T queries, T keys,
    every score computed, as :class:`MultiHeadAttention` does); with a cache it runs on
    the newest token only (1 query) against T keys. Per layer, for n new tokens and
    T keys: projections n D (2 D + 2 Hkv Dh), scores and weighted sum 2 n T D,
    feed-forward 2 n D F; plus the output layer n D V. Embeddings, norms, softmax and
    biases are not counted (O(n D) or O(n T H)).

    Taught in chapters/10_causal_decoding_and_kv_cache.ipynb.
    """
    T = require_positive_int("position", position)
    n = 1 if cached else T
    D, F_, V = config.num_hiddens, config.ffn_hiddens, config.vocab_size
    kv_width = config.kv_heads * config.head_dim
    per_layer = n * D * (2 * D + 2 * kv_width) + 2 * n * T * D + 2 * n * D * F_
    return config.num_layers * per_layer + n * D * V


# The synthetic task of the chapter: read P digits, a separator, then write them reversed.
SEPARATOR = 10
VOCAB_SIZE = 11


def reversal_task(num: int, length: int, generator: torch.Generator) -> Tensor:
    """``num`` sequences ``x_1 .. x_P, SEP, x_P .. x_1`` of random digits 0-9 (SEP = 10).

    Shapes:
        -> (num, 2 P + 1) int64

    Taught in chapters/10_causal_decoding_and_kv_cache.ipynb.
    """
    num = require_positive_int("num", num)
    P = require_positive_int("length", length)
    digits = torch.randint(0, 10, (num, P), generator=generator)  # (num, P)
    separator = torch.full((num, 1), SEPARATOR)
    return torch.cat([digits, separator, digits.flip(1)], dim=1)  # (num, 2P + 1)


def answer_logits(model: TinyDecoder, sequences: Tensor, length: int) -> tuple[Tensor, Tensor]:
    """Teacher-forced logits for the answer tokens and the answer tokens themselves.

    The input is every token but the last; position t predicts token t + 1, so the
    answer (tokens P + 1 .. 2P) is predicted at positions P .. 2P - 1.

    Shapes:
        sequences (B, 2P + 1) -> logits (B, P, V), targets (B, P)

    Taught in chapters/10_causal_decoding_and_kv_cache.ipynb.
    """
    logits, _ = model(sequences[:, :-1])  # (B, 2P, V)
    return logits[:, length:], sequences[:, length + 1 :]


def train_decoder(
    model: TinyDecoder,
    length: int,
    *,
    steps: int,
    lr: float = 1e-2,
    batch_size: int = 32,
    seed: int = 0,
    callback: Callable[[int], None] | None = None,
) -> list[float]:
    """Train on fresh reversal batches with AdamW; the loss is on the answer tokens only.

    Args:
        model: the decoder to train (left in eval mode).
        length: P, the digits per prompt.
        steps, lr, batch_size: the optimisation; each step draws a new batch.
        seed: seeds the batches (the model's initialisation is the caller's).
        callback: called as ``callback(step)`` after steps 1, 2, ..., e.g. to evaluate.

    Returns:
        The training loss after each step.

    Taught in chapters/10_causal_decoding_and_kv_cache.ipynb.
    """
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr)
    model.train()
    losses = []
    for step in range(1, require_int("steps", steps, low=0) + 1):
        batch = reversal_task(batch_size, length, generator)  # (B, 2P + 1)
        logits, targets = answer_logits(model, batch, length)  # (B, P, V), (B, P)
        loss = F.cross_entropy(logits.flatten(0, 1), targets.flatten())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
        if callback is not None:
            callback(step)
            model.train()
    model.eval()
    return losses
