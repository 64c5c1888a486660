"""attention_course: the helper package of "Attention, hands-on".

Each concept is defined once here and taught in a notebook in ``chapters/``; each
public docstring ends with the notebook that teaches it.

Shape legend used throughout:
    B batch, Q queries, K key-value pairs, T tokens, D features,
    H heads, Hkv key-value heads, Dh head dim (D = H * Dh), N training points
    (Nadaraya-Watson).

Masks everywhere: bool, True = attend; ``valid_lens``, ``mask`` and ``is_causal``
combine with AND (see ``masking``).
"""

from . import checks
from .cross_attention import CrossAttention
from .flash import flash_attention
from .kernel_regression import KERNELS, NWKernelRegression, nadaraya_watson
from .kv_cache import KVCache
from .masking import causal_mask, masked_softmax, sequence_mask
from .multihead import MultiHeadAttention, merge_heads, split_heads
from .plotting import OKABE_ITO, show_heatmaps
from .position import PositionalEncoding, apply_rotary, sinusoidal_encoding
from .regularization import attention_entropy, entropy_penalty
from .scoring import AdditiveAttention, BilinearAttention, DotProductAttention

__all__ = [
    "KERNELS",
    "OKABE_ITO",
    "AdditiveAttention",
    "BilinearAttention",
    "CrossAttention",
    "DotProductAttention",
    "KVCache",
    "MultiHeadAttention",
    "NWKernelRegression",
    "PositionalEncoding",
    "apply_rotary",
    "attention_entropy",
    "causal_mask",
    "checks",
    "entropy_penalty",
    "flash_attention",
    "masked_softmax",
    "merge_heads",
    "nadaraya_watson",
    "sequence_mask",
    "show_heatmaps",
    "sinusoidal_encoding",
    "split_heads",
]
__version__ = "0.1.0"
