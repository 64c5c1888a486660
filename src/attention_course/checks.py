"""Self-checks for the exercises: ``check_*(your_function)``.

Each check runs the student's code and the package's reference on seeded cases,
including edge cases, prints one line on success, and otherwise raises
``AssertionError`` naming the case and, where the wrong answer matches a known
mistake, the mistake. Attention functions may return either ``output`` or
``(output, weights)``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .kernel_regression import nadaraya_watson
from .masking import length_mask, masked_softmax
from .multihead import MultiHeadAttention, merge_heads, split_heads
from .regularization import attention_entropy

Mistake = tuple[str, Callable[[], Tensor]]


def _split_result(result: Any) -> tuple[Any, Any]:
    if isinstance(result, tuple | list) and len(result) == 2:
        return result[0], result[1]
    return result, None


def _close(a: Tensor, b: Tensor, atol: float = 1e-5) -> bool:
    return a.shape == b.shape and torch.allclose(a.double(), b.double(), atol=atol, rtol=1e-4)


def _compare(
    check: str,
    case: str,
    got: Any,
    expected: Tensor,
    mistakes: list[Mistake],
    what: str = "output",
    atol: float = 1e-5,
) -> None:
    """Raise an AssertionError explaining how ``got`` differs from ``expected``."""
    where = f"{check}, case '{case}'"
    if not isinstance(got, Tensor):
        raise AssertionError(
            f"{where}: expected the {what} as a torch.Tensor, got {type(got).__name__}"
        )
    if torch.isnan(got).any():
        hint = ""
        if torch.isnan(got).all(dim=-1).any():
            hint = (
                " A whole row is NaN: a fully masked row filled with -inf gives "
                "exp(-inf)/sum = 0/0. Zero such rows instead."
            )
        raise AssertionError(f"{where}: the {what} contains NaN.{hint}")
    for message, make in mistakes:
        try:
            candidate = make()
        except Exception:  # noqa: BLE001 - a mistake model that does not apply
            continue
        if not _close(expected, candidate, atol) and _close(got, candidate, atol):
            raise AssertionError(f"{where}: likely mistake: {message}")
    if got.shape != expected.shape:
        raise AssertionError(
            f"{where}: expected {what} of shape {tuple(expected.shape)}, got {tuple(got.shape)}"
        )
    if not _close(got, expected, atol):
        err = (got.double() - expected.double()).abs().max().item()
        raise AssertionError(
            f"{where}: the {what} differs from the reference (largest difference {err:.3g})"
        )


def _passed(check: str, cases: int) -> None:
    print(f"{check}: all {cases} cases passed.")


def _reference_mask(X: Tensor, valid_lens: Tensor | None) -> Tensor:
    if valid_lens is None:
        return torch.ones_like(X, dtype=torch.bool)
    if valid_lens.ndim == 1:
        return length_mask(valid_lens, X.shape[-1])[:, None, :].expand_as(X)
    return length_mask(valid_lens, X.shape[-1])


def _softmax_fill(X: Tensor, keep: Tensor, fill: float, dim: int = -1) -> Tensor:
    return torch.softmax(X.masked_fill(~keep, fill), dim=dim)


# ---------------------------------------------------------------- masked softmax
def check_masked_softmax(fn: Callable[..., Tensor]) -> None:
    """Check ``fn(X, valid_lens)`` against :func:`masked_softmax`.

    Cases: no mask, 1-D and 2-D valid lengths, a row with valid length 0 (must be
    all zeros), large scores, and that ``X`` is not modified.

    Taught in chapters/04_masked_softmax.ipynb.
    """
    name = "check_masked_softmax"
    g = torch.Generator().manual_seed(0)
    X = torch.randn(2, 3, 5, generator=g)
    cases = [
        ("no valid_lens", X, None),
        ("1-D valid_lens [2, 4]", X, torch.tensor([2, 4])),
        ("2-D valid_lens", X, torch.tensor([[1, 3, 5], [2, 2, 4]])),
        ("large scores (x100)", X * 100, torch.tensor([3, 5])),
        ("a valid length of 0", X, torch.tensor([0, 3])),
    ]
    for case, scores, valid_lens in cases:
        original = scores.clone()
        arg = scores.clone()
        got = fn(arg, None if valid_lens is None else valid_lens.clone())
        if not torch.equal(arg, original):
            raise AssertionError(
                f"{name}, case '{case}': your function modified its input X "
                "(e.g. X[~mask] = -1e6 on a view); work on a copy or use "
                "X.masked_fill(...), which returns a new tensor."
            )
        expected = masked_softmax(scores, valid_lens)
        keep = _reference_mask(scores, valid_lens)
        mistakes: list[Mistake] = [
            (
                "softmax over the wrong axis (dim=1, the queries); use dim=-1, the keys.",
                lambda s=scores, k=keep: _softmax_fill(s, k, -1e6, dim=1),
            ),
            (
                "the mask is ignored: padded keys still get weight.",
                lambda s=scores: torch.softmax(s, dim=-1),
            ),
            (
                "off by one: position k should be kept when k < valid_len, not k <= valid_len.",
                lambda s=scores, v=valid_lens: _softmax_fill(
                    s,
                    _reference_mask(s, v + 1 if v is not None and v.max() < s.shape[-1] else v),
                    -1e6,
                ),
            ),
            (
                "a row with valid length 0 came out uniform (the -1e6 fill): with nothing to "
                "attend to, every weight should be 0.",
                lambda s=scores, k=keep: _softmax_fill(s, k, -1e6),
            ),
        ]
        _compare(name, case, got, expected, mistakes)
    _passed(name, len(cases))


# ---------------------------------------------------------------- dot-product attention
def _dot_attention(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    valid_lens: Tensor | None,
    scale: float,
    dim: int = -1,
    use_mask: bool = True,
) -> Tensor:
    scores = q @ k.transpose(-2, -1) / scale
    keep = _reference_mask(scores, valid_lens if use_mask else None)
    return _softmax_fill(scores, keep, -1e6, dim=dim) @ v


def check_dot_product_attention(fn: Callable[..., Any]) -> None:
    """Check ``fn(queries, keys, values, valid_lens=None)`` against scaled dot-product attention.

    The query size (4) differs from the value size (6), so scaling by the wrong
    width shows up.

    Taught in chapters/03_scoring_functions.ipynb.
    """
    name = "check_dot_product_attention"
    g = torch.Generator().manual_seed(1)
    q, k, v = (
        torch.randn(2, 3, 4, generator=g),
        torch.randn(2, 5, 4, generator=g),
        torch.randn(2, 5, 6, generator=g),
    )
    cases = [
        ("no valid_lens", None),
        ("1-D valid_lens [2, 5]", torch.tensor([2, 5])),
        ("2-D valid_lens", torch.tensor([[1, 2, 3], [5, 4, 2]])),
    ]
    d = q.shape[-1]
    for case, valid_lens in cases:
        got, got_weights = _split_result(fn(q.clone(), k.clone(), v.clone(), valid_lens))
        scores = q @ k.transpose(-2, -1) / math.sqrt(d)  # (B, Q, K)
        weights = masked_softmax(scores, valid_lens)
        expected = weights @ v

        def variant(
            scale: float, dim: int = -1, use_mask: bool = True, vl: Tensor | None = valid_lens
        ) -> Callable[[], Tensor]:
            return lambda: _dot_attention(q, k, v, vl, scale, dim, use_mask)

        mistakes: list[Mistake] = [
            ("no scaling: divide the scores q.k by sqrt(d).", variant(1.0)),
            ("scaled by d instead of sqrt(d).", variant(float(d))),
            (
                "scaled by sqrt of the value size; use the query/key size d = queries.shape[-1].",
                variant(math.sqrt(v.shape[-1])),
            ),
            (
                "softmax over the wrong axis (the queries); use dim=-1, the keys.",
                variant(math.sqrt(d), dim=1),
            ),
            (
                "valid_lens is ignored: padded keys still get weight.",
                variant(math.sqrt(d), use_mask=False),
            ),
        ]
        _compare(name, case, got, expected, mistakes)
        if got_weights is not None:
            _compare(name, case, got_weights, weights, [], what="attention weights")
    _passed(name, len(cases))


# ---------------------------------------------------------------- heads
def check_split_merge_heads(
    split_fn: Callable[[Tensor, int], Tensor], merge_fn: Callable[[Tensor], Tensor]
) -> None:
    """Check ``split_fn(X, num_heads)`` (B, T, H*Dh) -> (B, H, T, Dh) and ``merge_fn`` back.

    Taught in chapters/05_multihead_attention.ipynb.
    """
    name = "check_split_merge_heads"
    g = torch.Generator().manual_seed(2)
    cases = [
        ("B=2, T=3, H=2, Dh=4", torch.randn(2, 3, 8, generator=g), 2),
        ("B=1, T=4, H=3, Dh=2", torch.randn(1, 4, 6, generator=g), 3),
    ]
    for case, X, H in cases:
        B, T, D = X.shape
        expected = split_heads(X, H)
        got = split_fn(X.clone(), H)
        if isinstance(got, Tensor) and tuple(got.shape) == (B * H, T, D // H):
            raise AssertionError(
                f"{name}, case '{case}': got shape {tuple(got.shape)} = (B*H, T, Dh), as "
                f"d2l's transpose_qkv; split_heads keeps the heads on their own axis: "
                f"(B, H, T, Dh) = {tuple(expected.shape)}."
            )
        _compare(
            name,
            case + " (split)",
            got,
            expected,
            [
                (
                    "reshape to (B, H, T, Dh) without a transpose mixes tokens into heads: "
                    "reshape to (B, T, H, Dh), then transpose(1, 2).",
                    lambda X=X, H=H, B=B, T=T, D=D: X.reshape(B, H, T, D // H),
                ),
                (
                    "features are dealt to heads round-robin: head i should own the contiguous "
                    "slice [i*Dh, (i+1)*Dh) of the features.",
                    lambda X=X, H=H, B=B, T=T, D=D: X.reshape(B, T, D // H, H).permute(0, 3, 1, 2),
                ),
            ],
        )
        got_merged = merge_fn(expected.clone())
        _compare(
            name,
            case + " (merge)",
            got_merged,
            X,
            [
                (
                    "reshape of (B, H, T, Dh) straight to (B, T, H*Dh) without transposing back "
                    "first: transpose(1, 2), then reshape.",
                    lambda e=expected, B=B, T=T, D=D: e.reshape(B, T, D),
                ),
            ],
        )
    _passed(name, 2 * len(cases))


def _mha_reference(
    ref: MultiHeadAttention,
    q: Tensor,
    k: Tensor,
    v: Tensor,
    valid_lens: Tensor | None,
    bug: str | None = None,
) -> Tensor:
    """The reference forward pass, or the same with one classic bug."""
    H = ref.num_heads
    D = H * ref.head_dim

    def split(x: Tensor) -> Tensor:
        if bug == "reshape":
            return x.reshape(x.shape[0], H, x.shape[1], -1)
        return split_heads(x, H)

    qh, kh, vh = split(ref.W_q(q)), split(ref.W_k(k)), split(ref.W_v(v))
    scale = math.sqrt(D if bug == "model-width" else ref.head_dim)
    scores = qh @ kh.transpose(-2, -1) / scale  # (B, H, Q, K)
    if valid_lens is None:
        weights = torch.softmax(scores, -1)
    else:
        B, Hh, Qn, K = scores.shape
        per_row = (
            valid_lens.repeat(H, *[1] * (valid_lens.ndim - 1))
            if bug == "repeat"
            else valid_lens.repeat_interleave(H, dim=0)
        )  # (B*H,) or (B*H, Q)
        flat = scores.reshape(B * Hh, Qn, K)
        keep = _reference_mask(flat, per_row)
        weights = _softmax_fill(flat, keep, -1e6).reshape(B, Hh, Qn, K)
    return ref.W_o(merge_heads(weights @ vh))


def check_multihead_attention(cls: Callable[..., nn.Module]) -> None:
    """Check a multi-head attention class built as ``cls(num_hiddens, num_heads, dropout)``.

    The class must keep its projections in ``nn.Linear`` attributes ``W_q``, ``W_k``,
    ``W_v``, ``W_o`` (as in d2l); the check copies the reference weights into them and
    compares ``forward(queries, keys, values, valid_lens)``.

    Taught in chapters/05_multihead_attention.ipynb.
    """
    name = "check_multihead_attention"
    torch.manual_seed(3)
    num_hiddens, H = 8, 2
    ref = MultiHeadAttention(num_hiddens, H, 0.0).eval()
    student = cls(num_hiddens, H, 0.0).eval()
    g = torch.Generator().manual_seed(3)
    q, kv = torch.randn(2, 3, num_hiddens, generator=g), torch.randn(2, 5, num_hiddens, generator=g)
    layers = ("W_q", "W_k", "W_v", "W_o")
    missing = [a for a in layers if not isinstance(getattr(student, a, None), nn.Linear)]
    if missing:
        raise AssertionError(
            f"{name}: expected nn.Linear attributes {', '.join(layers)}, "
            f"missing {', '.join(missing)}"
        )
    if any(isinstance(p, nn.parameter.UninitializedParameter) for p in student.parameters()):
        with torch.no_grad():  # materialise lazy layers (d2l uses nn.LazyLinear)
            student(q, kv, kv, None)
    with torch.no_grad():
        for attr in layers:
            mine, theirs = getattr(student, attr), getattr(ref, attr)
            if mine.weight.shape != theirs.weight.shape:
                raise AssertionError(
                    f"{name}: {attr}.weight has shape "
                    f"{tuple(mine.weight.shape)}, expected "
                    f"{tuple(theirs.weight.shape)}"
                )
            mine.weight.copy_(theirs.weight)
            if mine.bias is not None:
                mine.bias.zero_()
    cases = [
        ("no valid_lens", None),
        ("1-D valid_lens [2, 5]", torch.tensor([2, 5])),
        ("2-D valid_lens", torch.tensor([[1, 2, 3], [5, 4, 2]])),
    ]
    with torch.no_grad():
        for case, valid_lens in cases:
            got, _ = _split_result(student(q.clone(), kv.clone(), kv.clone(), valid_lens))
            expected, _ = ref(q, kv, kv, valid_lens)

            def bug(kind: str, vl: Tensor | None = valid_lens) -> Callable[[], Tensor]:
                return lambda: _mha_reference(ref, q, kv, kv, vl, kind)

            _compare(
                name,
                case,
                got,
                expected,
                [
                    (
                        "valid lengths repeated with repeat() (whole batch, then again) instead of "
                        "repeat_interleave() (each sequence once per head).",
                        bug("repeat"),
                    ),
                    (
                        "scores scaled by sqrt(num_hiddens), the model width; scale by "
                        "sqrt(num_hiddens / num_heads), the head width.",
                        bug("model-width"),
                    ),
                    (
                        "heads mixed by a reshape without a transpose: reshape to (B, T, H, Dh), "
                        "then transpose(1, 2).",
                        bug("reshape"),
                    ),
                ],
            )
    _passed(name, len(cases))


# ---------------------------------------------------------------- entropy
def check_attention_entropy(fn: Callable[..., Tensor]) -> None:
    """Check ``fn(weights, dim=-1)`` against :func:`attention_entropy` (natural log).

    Cases: uniform rows (ln K), one-hot rows (exactly 0, no NaN), random rows,
    another ``dim``, and a finite gradient where weights are 0.

    Taught in chapters/06_entropy_regularization.ipynb.
    """
    name = "check_attention_entropy"
    g = torch.Generator().manual_seed(4)
    random_rows = torch.softmax(torch.randn(2, 3, 5, generator=g), dim=-1)
    cases = [
        ("uniform rows, K=4 (expect ln 4)", torch.full((2, 4), 0.25), -1),
        ("one-hot rows (expect 0)", F.one_hot(torch.tensor([0, 2, 3]), 4).float(), -1),
        ("random rows", random_rows, -1),
        ("rows along dim=1", random_rows.transpose(1, 2).contiguous(), 1),
    ]
    for case, w, dim in cases:
        got = fn(w.clone(), dim=dim)
        expected = attention_entropy(w, dim=dim)
        _compare(
            name,
            case,
            got,
            expected,
            [
                (
                    "log base 2: use the natural log (torch.log), entropies in nats.",
                    lambda w=w, d=dim: attention_entropy(w, d) / math.log(2),
                ),
                (
                    "log base 10: use the natural log (torch.log).",
                    lambda w=w, d=dim: attention_entropy(w, d) / math.log(10),
                ),
                (
                    "the minus sign is missing: H = -sum p ln p is never negative.",
                    lambda w=w, d=dim: -attention_entropy(w, d),
                ),
                (
                    "mean over the row instead of sum.",
                    lambda w=w, d=dim: attention_entropy(w, d) / w.shape[d],
                ),
                (
                    "summed over the wrong axis.",
                    lambda w=w, d=dim: attention_entropy(w, 0 if d in (-1, w.ndim - 1) else -1),
                ),
            ],
        )
    w = F.one_hot(torch.tensor([1, 0]), 3).float().requires_grad_(True)
    fn(w, dim=-1).sum().backward()
    if w.grad is None or not torch.isfinite(w.grad).all():
        raise AssertionError(
            f"{name}, case 'gradient at zero weights': the gradient is not "
            f"finite ({w.grad}); p * log(p) at p = 0 gives 0 * -inf. Use "
            "torch.where(p > 0, p, 1) inside the log."
        )
    _passed(name, len(cases) + 1)


# ---------------------------------------------------------------- Nadaraya-Watson
def check_nadaraya_watson(fn: Callable[..., Any]) -> None:
    """Check ``fn(queries, keys, values, bandwidth=...)`` (Gaussian kernel) against
    :func:`nadaraya_watson`.

    Taught in chapters/02_nadaraya_watson.ipynb.
    """
    name = "check_nadaraya_watson"
    g = torch.Generator().manual_seed(5)
    keys = torch.sort(torch.rand(20, generator=g) * 5).values
    values = torch.sin(keys) + 0.1 * torch.randn(20, generator=g)
    queries = torch.linspace(0, 5, 7)
    cases = [("bandwidth 1.0", 1.0), ("bandwidth 0.3", 0.3), ("bandwidth 2.5", 2.5)]

    def gauss(scores: Tensor, dim: int = -1) -> Tensor:
        return (torch.softmax(scores, dim=dim) * values).sum(-1)

    for case, sigma in cases:
        got, got_weights = _split_result(
            fn(queries.clone(), keys.clone(), values.clone(), bandwidth=sigma)
        )
        expected, weights = nadaraya_watson(queries, keys, values, sigma)
        d = queries[:, None] - keys[None, :]  # (Q, N)
        _compare(
            name,
            case,
            got,
            expected,
            [
                (
                    "softmax over the queries (dim=0); normalise each query's row over the keys.",
                    lambda d=d, s=sigma: gauss(-(d**2) / (2 * s**2), dim=0),
                ),
                (
                    "the 1/2 is missing: the Gaussian kernel is exp(-(x - x_i)^2 / (2 sigma^2)).",
                    lambda d=d, s=sigma: gauss(-(d**2) / s**2),
                ),
                (
                    "divided by sigma, not sigma squared.",
                    lambda d=d, s=sigma: gauss(-(d**2) / (2 * s)),
                ),
                (
                    "the sign is flipped: far points should get small weights, use -(x - x_i)^2.",
                    lambda d=d, s=sigma: gauss(d**2 / (2 * s**2)),
                ),
                (
                    "the kernel values are not normalised to sum to 1 over the keys.",
                    lambda d=d, s=sigma: (torch.exp(-(d**2) / (2 * s**2)) * values).sum(-1),
                ),
            ],
        )
        if got_weights is not None:
            _compare(name, case, got_weights, weights, [], what="attention weights")
    _passed(name, len(cases))
