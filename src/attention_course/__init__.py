"""attention_course: the helper package of "Attention, hands-on".

Each concept is defined once here and taught in a notebook in ``chapters/``; each
public docstring ends with the notebook that teaches it.

Shape legend used throughout:
    B batch, Q queries, K key-value pairs, T tokens, D features,
    H heads, Dh head dim (D = H * Dh), N training points (Nadaraya-Watson).
"""

from . import checks
from .kernel_regression import KERNELS, NWKernelRegression, nadaraya_watson
from .masking import masked_softmax, sequence_mask
from .multihead import MultiHeadAttention, merge_heads, split_heads
from .plotting import OKABE_ITO, show_heatmaps
from .regularization import attention_entropy, entropy_penalty
from .scoring import AdditiveAttention, BilinearAttention, DotProductAttention

__all__ = [
    "KERNELS",
    "OKABE_ITO",
    "AdditiveAttention",
    "BilinearAttention",
    "DotProductAttention",
    "MultiHeadAttention",
    "NWKernelRegression",
    "attention_entropy",
    "checks",
    "entropy_penalty",
    "masked_softmax",
    "merge_heads",
    "nadaraya_watson",
    "sequence_mask",
    "show_heatmaps",
    "split_heads",
]
__version__ = "0.1.0"
