r"""The key-value cache: what a decoder keeps so that each new token costs O(T), not O(T^2).

When a decoder generates token t, the keys and values of tokens 0..t-1 have not
changed (causal attention never lets an earlier token see a later one), so a layer
keeps them and projects only the new token:

.. math:: \mathrm{memory} = 2 \times \mathrm{layers} \times H_{kv} \times D_h \times T
    \times \mathrm{bytes\ per\ number}

Shapes: B batch, Hkv key-value heads, T cached positions, Dh head dim.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ._validation import require_ndim, require_tensor


class KVCache:
    """The projected keys and values one attention layer has seen so far.

    Pass the same cache to every call of one layer (``kv_cache=cache``); the layer
    appends that call's keys and values and attends over everything cached. Use one
    cache per layer and per sequence batch; start a new one (or :meth:`clear`) for a
    new prompt.

    Attributes:
        keys, values: (B, Hkv, T, Dh) tensors, or None while the cache is empty.

    Taught in chapters/10_causal_decoding_and_kv_cache.ipynb.
    """

    def __init__(self) -> None:
        self.keys: Tensor | None = None
        self.values: Tensor | None = None

    def __len__(self) -> int:
        """The number of cached positions T."""
        return 0 if self.keys is None else self.keys.shape[-2]

    @property
    def nbytes(self) -> int:
        """Bytes held by the cached key and value tensors: 2 x B x Hkv x T x Dh x itemsize."""
        return sum(t.numel() * t.element_size() for t in (self.keys, self.values) if t is not None)

    def append(self, keys: Tensor, values: Tensor) -> tuple[Tensor, Tensor]:
        """Add this step's keys and values; return everything cached, new positions last.

        Shapes:
            keys, values (B, Hkv, T_new, Dh) -> (B, Hkv, T + T_new, Dh) each
        """
        for name, x in (("keys", keys), ("values", values)):
            require_tensor(name, x)
            require_ndim(name, x, (4,), "(B, Hkv, T_new, Dh)")
        if keys.shape[:-1] != values.shape[:-1]:
            raise ValueError(
                f"values: expected the (B, Hkv, T_new) of keys {tuple(keys.shape[:-1])}, "
                f"got shape {tuple(values.shape)}"
            )
        if self.keys is None or self.values is None:
            self.keys, self.values = keys, values
        else:
            for name, new, old in (("keys", keys, self.keys), ("values", values, self.values)):
                if new.shape[:2] != old.shape[:2] or new.shape[-1] != old.shape[-1]:
                    raise ValueError(
                        f"{name}: expected (B, Hkv, T_new, Dh) = ({old.shape[0]}, "
                        f"{old.shape[1]}, T_new, {old.shape[-1]}) like the cached ones, got "
                        f"{tuple(new.shape)}: one cache belongs to one layer and one batch"
                    )
            self.keys = torch.cat([self.keys, keys], dim=-2)  # (B, Hkv, T + T_new, Dh)
            self.values = torch.cat([self.values, values], dim=-2)  # (B, Hkv, T + T_new, Dh)
        return self.keys, self.values

    def clear(self) -> None:
        """Forget everything (start a new sequence)."""
        self.keys = self.values = None

    def __repr__(self) -> str:
        shape = None if self.keys is None else tuple(self.keys.shape)
        return f"KVCache(positions={len(self)}, keys shape={shape}, nbytes={self.nbytes})"
