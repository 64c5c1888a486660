"""Self-checks for the exercises: ``check_*(your_function)``.

Each check runs the student's code on small seeded cases, including edge cases, and
compares it with the package's reference. On success it prints one line. Otherwise it
raises ``AssertionError`` with a message that teaches:

* when the wrong answer equals a known mistake (a *bug variant* built from the package:
  a subclass that overrides one method, or the package's pieces put together with one
  step changed), the message names the mistake and the fix;
* otherwise it says which case failed, by how much and where (the index and both values);
* an exception inside the student's code becomes an ``AssertionError`` naming the case,
  the exception and the student's own line; a function with the wrong parameters gets
  the signature that is expected;
* a function that writes into its inputs, or calls what the exercise rules out, fails.

The checks leave no trace: they never touch the global random state (they use local
generators inside ``torch.random.fork_rng``), never modify the caller's tensors, and
hide their own frames from IPython tracebacks (``__tracebackhide__``).
"""

from __future__ import annotations

import inspect
import math
import traceback
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NoReturn

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.overrides import TorchFunctionMode

from .kernel_regression import nadaraya_watson
from .masking import masked_softmax
from .multihead import MultiHeadAttention, merge_heads, split_heads
from .regularization import attention_entropy
from .scoring import DotProductAttention

#: a known mistake: (what to tell the student, a function computing the buggy answer)
Mistake = tuple[str, Callable[[], Any]]
#: a property test run after the mistakes: returns a message, or None when it finds nothing
Hint = Callable[[Tensor], "str | None"]

_THIS_FILE = Path(__file__).resolve()
_TORCH_DIR = Path(torch.__file__).resolve().parent


# ================================================================ running student code
def _fail(message: str) -> NoReturn:
    """Stop the check: an AssertionError whose message says it all (no chained error)."""
    raise AssertionError(message) from None  # the one line of this file a student sees


def _student_line(error: BaseException) -> str:
    """' (in f, line 3: `code`)' for the innermost frame that is the student's own code."""
    for frame in reversed(traceback.extract_tb(error.__traceback__)):
        path = Path(frame.filename).resolve()
        if path == _THIS_FILE or _TORCH_DIR in path.parents:
            continue
        code = f": `{frame.line.strip()}`" if frame.line else ""
        return f" (in {frame.name}, line {frame.lineno}{code})"
    return ""


def _call(
    check: str, case: str, fn: Callable[..., Any], expected: str, *args: Any, **kwargs: Any
) -> Any:
    """Call the student's ``fn``; turn a wrong signature or an exception into a clear message.

    ``expected`` is the call the exercise asks for, e.g. ``"fn(X, valid_lens=None)"``.
    """
    __tracebackhide__ = True
    try:  # a module is called through forward: bind to its signature
        signature = inspect.signature(fn.forward if isinstance(fn, nn.Module) else fn)
    except (TypeError, ValueError):  # builtins and some C functions have none
        signature = None
    if signature is not None:
        try:
            signature.bind(*args, **kwargs)
        except TypeError as error:
            name = getattr(fn, "__name__", type(fn).__name__)
            _fail(
                f"{check}: expected {expected}; yours is {name}{signature}, "
                f"which cannot be called that way ({error})."
            )
    try:
        return fn(*args, **kwargs)
    except AssertionError:
        raise
    except NotImplementedError as error:
        _fail(
            f"{check}, case '{case}': your code still raises NotImplementedError({error})"
            f"{_student_line(error)}: replace the stub's body with your solution."
        )
    except Exception as error:  # noqa: BLE001 - any failure of the student's code
        hint = ""
        if "view size is not compatible" in str(error):
            hint = (
                " A transpose makes a tensor non-contiguous, and .view() cannot reshape it: "
                "use .reshape(...) (or .contiguous().view(...))."
            )
        _fail(
            f"{check}, case '{case}': your code raised {type(error).__name__}: {error}"
            f"{_student_line(error)}.{hint}"
        )


@contextmanager
def _no_writes(check: str, case: str, **inputs: Tensor | None) -> Iterator[None]:
    """Fail if the block changes any of ``inputs`` (checked after the block)."""
    __tracebackhide__ = True
    before = {name: x.clone() for name, x in inputs.items() if isinstance(x, Tensor)}
    yield
    for name, original in before.items():
        now = inputs[name]
        assert now is not None
        if now.shape != original.shape or not torch.equal(now, original):
            _fail(
                f"{check}, case '{case}': your code wrote into its input `{name}` (for "
                f"example `{name}[~mask] = -1e6`, or an in-place method such as "
                f"`.masked_fill_()` or `.div_()` on it or on a view of it). Work on a new "
                f"tensor: `{name}.masked_fill(...)` and `{name} / c` return new ones."
            )


class _Forbidden(TorchFunctionMode):
    """Records calls of the torch functions an exercise rules out (by name)."""

    def __init__(self, names: Sequence[str]) -> None:
        super().__init__()
        self.names, self.called = set(names), []

    def __torch_function__(self, func, types, args=(), kwargs=None):  # noqa: ANN001
        name = getattr(func, "__name__", "")
        if name in self.names:
            self.called.append(name)
        return func(*args, **(kwargs or {}))


@contextmanager
def _no_global_random() -> Iterator[None]:
    """Leave the caller's global random state exactly as it was."""
    with torch.random.fork_rng(devices=[]):
        yield


# ================================================================ comparing answers
def _close(a: Any, b: Any, atol: float = 1e-5, rtol: float = 1e-4) -> bool:
    if not (isinstance(a, Tensor) and isinstance(b, Tensor)) or a.shape != b.shape:
        return False
    return torch.allclose(a.double(), b.double(), atol=atol, rtol=rtol, equal_nan=True)


def _where(index: Sequence[int], axes: Sequence[str] | None) -> str:
    if axes and len(axes) == len(index):
        return "[" + ", ".join(f"{a} {i}" for a, i in zip(axes, index, strict=True)) + "]"
    return str(list(index))


def _largest_difference(got: Tensor, expected: Tensor, axes: Sequence[str] | None) -> str:
    diff = (got.double() - expected.double()).abs()
    diff = torch.where(torch.isnan(diff), torch.inf, diff)
    flat = int(diff.argmax()) if diff.numel() else 0
    index = [int(i) for i in torch.unravel_index(torch.tensor(flat), got.shape)] if got.ndim else []
    g = got.reshape(-1)[flat].item() if got.numel() else float("nan")
    e = expected.reshape(-1)[flat].item() if expected.numel() else float("nan")
    return (
        f"largest difference {diff.reshape(-1)[flat].item():.3g} at {_where(index, axes)}: "
        f"got {g:.4g}, expected {e:.4g}"
    )


def _compare(
    check: str,
    case: str,
    got: Any,
    expected: Tensor,
    mistakes: Sequence[Mistake] = (),
    what: str = "output",
    atol: float = 1e-5,
    rtol: float = 1e-4,
    hints: Sequence[Hint] = (),
    axes: Sequence[str] | None = None,
    history: dict[int, bool] | None = None,
) -> None:
    """Raise an AssertionError explaining how ``got`` differs from ``expected``.

    Order: the type; a known mistake whose answer equals ``got`` (NaN included) and
    differs from ``expected``; then the hints (properties such as "rows sum to 1");
    the shape; NaN; finally the largest difference and where it is.

    ``history`` (one dict per check, shared by its cases) remembers which mistakes
    agreed with the student's answers in the earlier cases: when two mistakes explain
    the failing case, the one that also explains the passing cases is named.
    """
    __tracebackhide__ = True
    where = f"{check}, case '{case}'"
    if not isinstance(got, Tensor):
        _fail(f"{where}: expected the {what} as a torch.Tensor, got {type(got).__name__}")
    history = {} if history is None else history
    passed = _close(got, expected, atol, rtol)
    matches = []
    for index, (message, make) in enumerate(mistakes):
        try:
            with torch.no_grad():
                candidate = make()
        except Exception:  # noqa: BLE001 - a mistake model that does not apply to this case
            continue
        agrees = _close(got, candidate, atol, rtol)
        if not passed and agrees and not _close(expected, candidate, atol, rtol):
            matches.append((not history.get(index, True), message))
        history[index] = history.get(index, True) and agrees
    if passed:
        return
    for inconsistent, message in matches:  # explains every case so far: the best guess
        if not inconsistent:
            raise AssertionError(f"{where}: likely mistake: {message}")
    for hint in hints:
        message = hint(got)
        if message:
            _fail(f"{where}: {message}")
    for inconsistent, message in matches:  # explains this case only
        if inconsistent:
            _fail(f"{where}: likely mistake: {message}")
    if got.shape != expected.shape:
        permuted = sorted(got.shape) == sorted(expected.shape)
        _fail(
            f"{where}: expected {what} of shape {tuple(expected.shape)}, got "
            f"{tuple(got.shape)}" + (" (the same sizes, in the wrong order)" if permuted else "")
        )
    if torch.isnan(got).any():
        index = [int(i) for i in torch.nonzero(torch.isnan(got))[0]]
        _fail(
            f"{where}: the {what} contains NaN (first at {_where(index, axes)}); "
            f"look for 0/0, inf - inf or 0 * inf."
        )
    _fail(
        f"{where}: the {what} differs from the reference "
        f"({_largest_difference(got, expected, axes)})"
    )


def _passed(check: str, cases: int) -> None:
    print(f"{check}: all {cases} cases passed.")


def _stored_weights(obj: Any) -> Tensor | None:
    """d2l's convention: the weights kept as ``attention_weights`` on the module (or a child)."""
    modules = obj.modules() if isinstance(obj, nn.Module) else [obj]
    for module in modules:
        weights = getattr(module, "attention_weights", None)
        if isinstance(weights, Tensor):
            return weights
    return None


def _output_and_weights(check: str, case: str, result: Any, owner: Any) -> tuple[Any, Any]:
    """Split ``(output, weights)``; a lone tensor is accepted only with d2l's stored weights."""
    __tracebackhide__ = True
    if isinstance(result, tuple | list):
        if len(result) == 2:
            return result[0], result[1]
        _fail(
            f"{check}, case '{case}': expected `(output, weights)`, got a "
            f"{type(result).__name__} of {len(result)} items."
        )
    stored = _stored_weights(owner)
    if isinstance(result, Tensor) and stored is not None:
        return result, stored
    shape = f" of shape {tuple(result.shape)}" if isinstance(result, Tensor) else ""
    _fail(
        f"{check}, case '{case}': expected `(output, weights)`, got only one "
        f"{type(result).__name__}{shape}. Return both, e.g. `return weights @ values, weights`."
    )


def _not_swapped(check: str, case: str, got: Any, got_weights: Any, out: Tensor, w: Tensor) -> None:
    """Fail with a clear message when ``(weights, output)`` came back instead."""
    __tracebackhide__ = True
    shapes = [x.shape if isinstance(x, Tensor) else None for x in (got, got_weights)]
    if out.shape != w.shape and shapes == [w.shape, out.shape]:
        _fail(
            f"{check}, case '{case}': likely mistake: returned (weights, output); the order is "
            "(output, weights)."
        )


# ================================================================ pieces of the references
def _keep(scores: Tensor, valid_lens: Tensor | None) -> Tensor:
    """The package's keep-mask for ``scores`` (True = attend): where its weights are > 0."""
    if valid_lens is None:
        return torch.ones_like(scores, dtype=torch.bool)
    return masked_softmax(torch.zeros_like(scores), valid_lens) > 0


def _softmax_fill(X: Tensor, keep: Tensor, fill: float, dim: int = -1) -> Tensor:
    """Softmax after ``masked_fill(~keep, fill)``: d2l's way (and its bugs with other fills)."""
    return torch.softmax(X.masked_fill(~keep, fill), dim=dim)


def _exp_normalise(X: Tensor, keep: Tensor, shift: Tensor | float, zero_empty: bool) -> Tensor:
    """``m exp(x - shift) / sum m exp(x - shift)``; 0/0 stays NaN unless ``zero_empty``."""
    e = torch.exp(X - shift) * keep
    total = e.sum(-1, keepdim=True)
    return e / total.clamp_min(torch.finfo(X.dtype).tiny) if zero_empty else e / total


def _repeated_lens(valid_lens: Tensor, copies: int) -> Tensor:
    """``valid_lens.repeat(copies)`` where ``repeat_interleave`` was meant: (B*copies,...)."""
    return valid_lens.repeat(copies, *[1] * (valid_lens.ndim - 1))


def _d2l_repeat_bug(X: Tensor, valid_lens: Tensor | None) -> Tensor:
    """d2l's masked softmax with ``repeat`` for 1-D lengths: row b*Q + q gets length (bQ+q) % B."""
    if valid_lens is None or valid_lens.ndim != 1:
        raise ValueError("the mistake needs 1-D valid lengths")
    B, Q = X.shape[0], X.shape[1]
    wrong = _repeated_lens(valid_lens, Q).reshape(B, Q)  # (B*Q,) -> (B, Q)
    return masked_softmax(X, wrong)


# ================================================================ chapter 01: softmax
def check_softmax(fn: Callable[..., Tensor]) -> None:
    """Check ``fn(x, temperature=1.0, dim=-1)``: softmax(x / T) along ``dim`` built from ``exp``.

    Cases: three temperatures along three axes, scores around 1000, rows of very
    different size, a tiny temperature (the one-hot argmax), and a ``ValueError`` for
    ``temperature <= 0``. The function must not call ``torch.softmax``, ``F.softmax``
    or ``Tensor.softmax`` (the exercise asks to build it), nor modify ``x``.

    Taught in chapters/01_queries_keys_values.ipynb.
    """
    __tracebackhide__ = True
    name = "check_softmax"
    history: dict[int, bool] = {}  # which mistakes agreed with the earlier cases
    signature = "my_softmax(x, temperature=1.0, dim=-1)"
    with _no_global_random():
        g = torch.Generator().manual_seed(6)
        x = torch.randn(3, 4, 5, generator=g)
        cases = [
            ("temperature 1, dim=-1", x, 1.0, -1),
            ("temperature 0.3, dim=1", x, 0.3, 1),
            ("temperature 4, dim=0", x, 4.0, 0),
            ("scores around 1000", torch.tensor([1000.0, 1001.0, 1002.0]), 1.0, -1),
            (
                "rows of very different size",
                torch.tensor([[1000.0, 1001.0, 1002.0], [0.0, 1.0, 2.0]]),
                1.0,
                -1,
            ),
            ("temperature 1e-3 (one-hot)", torch.tensor([3.0, 1.0, 0.0]), 1e-3, -1),
        ]
        for case, scores, t, dim in cases:
            arg = scores.clone()
            spy = _Forbidden(("softmax", "log_softmax", "special_softmax", "_softmax"))
            with _no_writes(name, case, x=arg), spy:
                got = _call(name, case, fn, signature, arg, temperature=t, dim=dim)
            if spy.called:
                _fail(
                    f"{name}, case '{case}': your function calls torch's {spy.called[0]}; the "
                    "exercise asks you to build it: e = torch.exp(z - z.amax(dim, keepdim=True)), "
                    "then e / e.sum(dim, keepdim=True)."
                )
            expected = torch.softmax(scores / t, dim=dim)

            def plain(z: Tensor, d: int = dim) -> Tensor:
                e = torch.exp(z)
                return e / e.sum(d, keepdim=True)

            mistakes: list[Mistake] = [
                (
                    "multiplied by the temperature; divide: softmax(x / T). A higher T must "
                    "give flatter weights.",
                    lambda s=scores, t=t, d=dim: torch.softmax(s * t, d),
                ),
                (
                    "the temperature is ignored: use x / temperature.",
                    lambda s=scores, d=dim: torch.softmax(s, d),
                ),
                (
                    "exp overflows (exp(1000) = inf, inf / inf = NaN): subtract the maximum "
                    "along dim first, z - z.amax(dim, keepdim=True); softmax does not change.",
                    lambda s=scores, t=t: plain(s / t),
                ),
                (
                    "subtracted the maximum of the whole tensor: a row far below it underflows "
                    "to 0/0. Subtract each row's own maximum: z.amax(dim, keepdim=True).",
                    lambda s=scores, t=t: plain(s / t - (s / t).max()),
                ),
                (
                    "dim is ignored: the softmax always runs over the last axis. Use dim in "
                    "both the max and the sum.",
                    lambda s=scores, t=t: torch.softmax(s / t, -1),
                ),
                (
                    "divided by the sum of the whole tensor: sum along dim, with keepdim=True.",
                    lambda s=scores, t=t: torch.exp(s / t) / torch.exp(s / t).sum(),
                ),
                (
                    "divided by the sum of the whole tensor: sum along dim, with keepdim=True.",
                    lambda s=scores, t=t, d=dim: (
                        torch.exp(s / t - (s / t).amax(d, keepdim=True))
                        / torch.exp(s / t - (s / t).amax(d, keepdim=True)).sum()
                    ),
                ),
                (
                    "this is log-softmax; return the weights themselves (exp of it).",
                    lambda s=scores, t=t, d=dim: torch.log_softmax(s / t, d),
                ),
            ]
            _compare(name, case, got, expected, mistakes, history=history)
        for bad in (0.0, -1.0):
            case = f"temperature={bad}"
            try:
                fn(x.clone(), temperature=bad, dim=-1)
            except ValueError:
                continue
            except Exception as error:  # noqa: BLE001 - the student's code
                _fail(
                    f"{name}, case '{case}': expected ValueError, got {type(error).__name__}: "
                    f"{error}{_student_line(error)}. Check `if temperature <= 0: raise "
                    f"ValueError(...)` first."
                )
            _fail(
                f"{name}, case '{case}': expected ValueError (a temperature must be > 0), "
                "but nothing was raised."
            )
    _passed(name, len(cases) + 2)


# ================================================================ chapter 04: masked softmax
def _masked_softmax_hints(X: Tensor, keep: Tensor, expected: Tensor) -> list[Hint]:
    """Properties of a masked softmax, tested when no known mistake matched."""
    has_keys = keep.any(-1)  # (B, Q): rows with something to attend to
    kept_max = X.masked_fill(~keep, -torch.inf).amax(-1)  # (B, Q)

    def fully_masked_nan(got: Tensor) -> str | None:
        if got.shape == X.shape and torch.isnan(got[~has_keys]).any():
            return (
                "a row with nothing to attend to (valid length 0) is NaN: filling with -inf "
                "gives exp(-inf) / sum = 0/0. Such a row should be all zeros."
            )
        return None

    def overflow_nan(got: Tensor) -> str | None:
        if got.shape == X.shape and not torch.isfinite(got[has_keys]).all():
            return (
                "NaN or inf where some keys are kept: exp overflowed (exp(100) = inf in float32, "
                "inf/inf = NaN) or every kept exp underflowed (0/0). Subtract the largest *kept* "
                "score of each row before exp."
            )
        return None

    def leaks(got: Tensor) -> str | None:
        if got.shape != X.shape:
            return None
        leak = (got.abs() > 1e-6) & ~keep
        if not leak.any():
            return None
        missing = (got.abs() <= 1e-6) & keep & (expected > 1e-6)
        if missing.any():
            return (
                "likely mistake: the mask is inverted: keys past the valid length get weight "
                "and the real keys get none. Keep key k when k < valid_len."
            )
        index = [int(i) for i in torch.nonzero(leak)[0]]
        return (
            f"a padded key gets weight {got[tuple(index)].item():.3g} at "
            f"{_where(index, ('batch', 'query', 'key'))}: masked keys must get exactly 0 "
            "(fill with a large negative number, not 0, or zero them after the softmax)."
        )

    def sums(got: Tensor) -> str | None:
        if got.shape != X.shape:
            return None
        total = got.sum(-1)
        bad = (total - has_keys.to(total.dtype)).abs() > 1e-4
        vanished = has_keys & (total.abs() < 1e-6) & (X.amax(-1) > kept_max + 80)
        if vanished.any():
            index = [int(i) for i in torch.nonzero(vanished)[0]]
            return (
                f"every weight of the row {_where(index, ('batch', 'query'))} is 0, although it "
                "has kept keys: a padded score far above the kept ones made every kept "
                "exp(x - max) underflow. Subtract the largest *kept* score, not the maximum "
                "over all keys."
            )
        if bad.any():
            index = [int(i) for i in torch.nonzero(bad)[0]]
            should = 1 if has_keys[tuple(index)] else 0
            return (
                f"the row {_where(index, ('batch', 'query'))} sums to "
                f"{total[tuple(index)].item():.4g}, not {should}: after masking, divide by the "
                "sum of the *kept* exponentials (renormalise)."
            )
        return None

    return [fully_masked_nan, overflow_nan, leaks, sums]


def check_masked_softmax(fn: Callable[..., Tensor]) -> None:
    """Check ``fn(X, valid_lens)`` against :func:`masked_softmax`.

    Cases: no mask, 1-D and 2-D valid lengths, large scores (with larger ones on the
    padded keys), a row with valid length 0 (must be all zeros), and in every case that
    neither ``X`` nor ``valid_lens`` is modified.

    Taught in chapters/04_masked_softmax.ipynb.
    """
    __tracebackhide__ = True
    name = "check_masked_softmax"
    history: dict[int, bool] = {}  # which mistakes agreed with the earlier cases
    signature = "my_masked_softmax(X, valid_lens=None)"
    with _no_global_random():
        g = torch.Generator().manual_seed(0)
        X = torch.randn(2, 3, 5, generator=g)
        large = X * 100
        # padded keys far above the kept ones (95 above in row 0, 300 in the others): the
        # maximum to subtract is the kept one, and the mask must act before exp
        gap = torch.tensor([[95.0], [300.0], [300.0]])
        large[0, :, 3:] = large[0, :, :3].amax(-1, keepdim=True) + gap
        cases = [
            ("no valid_lens", X, None),
            ("1-D valid_lens [2, 4]", X, torch.tensor([2, 4])),
            ("2-D valid_lens", X, torch.tensor([[1, 3, 5], [2, 2, 4]])),
            ("large scores (x100)", large, torch.tensor([3, 5])),
            ("a valid length of 0", X, torch.tensor([0, 3])),
        ]
        for case, scores, valid_lens in cases:
            arg = scores.clone()
            lens = None if valid_lens is None else valid_lens.clone()
            with _no_writes(name, case, X=arg, valid_lens=lens):
                got = _call(name, case, fn, signature, arg, lens)
            expected = masked_softmax(scores, valid_lens)
            keep = _keep(scores, valid_lens)
            kept_max = scores.masked_fill(~keep, -torch.inf).amax(-1, keepdim=True)
            kept_max = torch.where(torch.isfinite(kept_max), kept_max, 0.0)

            def longer(s: Tensor = scores, v: Tensor | None = valid_lens) -> Tensor:
                if v is None or v.max() >= s.shape[-1]:
                    raise ValueError("no room for an off-by-one")
                return masked_softmax(s, v + 1)

            mistakes: list[Mistake] = [
                (
                    "softmax over the wrong axis (dim=1, the queries); use dim=-1, the keys.",
                    lambda s=scores, k=keep: _softmax_fill(s, k, -1e6, dim=1),
                ),
                (
                    "the mask is ignored: padded keys still get weight.",
                    lambda s=scores: masked_softmax(s),
                ),
                (
                    "off by one: position k should be kept when k < valid_len, not k <= valid_len.",
                    longer,
                ),
                (
                    "the mask is inverted: keys past the valid length get the weight. Keep "
                    "key k when k < valid_len (True = attend).",
                    lambda s=scores, k=keep: masked_softmax(s, mask=~k),
                ),
                (
                    "1-D valid lengths spread with repeat() instead of repeat_interleave(): "
                    "row b*Q + q of the flattened scores must get valid_lens[b], so each "
                    "length is repeated Q times in a row (repeat_interleave(Q)).",
                    lambda s=scores, v=valid_lens: _d2l_repeat_bug(s, v),
                ),
                (
                    "a row with valid length 0 came out uniform (the -1e6 fill): with nothing to "
                    "attend to, every weight should be 0.",
                    lambda s=scores, k=keep: _softmax_fill(s, k, -1e6),
                ),
                (
                    "a row with valid length 0 is NaN: filling with -inf gives exp(-inf) / sum = "
                    "0/0. Such a row should be all zeros.",
                    lambda s=scores, k=keep: _softmax_fill(s, k, -torch.inf),
                ),
                (
                    "masked scores filled with 0 instead of a large negative number: exp(0) = 1, "
                    "so padded keys still get weight.",
                    lambda s=scores, k=keep: _softmax_fill(s, k, 0.0),
                ),
                (
                    "masked scores filled with 0 instead of a large negative number: exp(0) = 1, "
                    "so padded keys still get weight.",
                    lambda s=scores, k=keep: _softmax_fill(s, k, 0.0) * k,
                ),
                (
                    "no renormalisation after masking: zeroing the padded weights of a full "
                    "softmax leaves rows that sum to less than 1. Divide by the kept sum.",
                    lambda s=scores, k=keep: torch.softmax(s, -1) * k,
                ),
                (
                    "exp overflows without subtracting a maximum (exp(100) = inf in float32, "
                    "inf/inf = NaN): subtract the largest kept score of each row first.",
                    lambda s=scores, k=keep: _exp_normalise(s, k, 0.0, zero_empty=True),
                ),
                (
                    "exp overflows without subtracting a maximum (exp(100) = inf in float32, "
                    "inf/inf = NaN): subtract the largest kept score of each row first.",
                    lambda s=scores, k=keep: _exp_normalise(s, k, 0.0, zero_empty=False),
                ),
                (
                    "the mask is applied after exp: a padded score far above the kept maximum "
                    "gives exp(x - c) = inf, and inf * 0 = NaN. Mask before exp (masked scores "
                    "-> -inf, exp(-inf) = 0) or use torch.where(mask, exp(...), 0).",
                    lambda s=scores, k=keep, c=kept_max: _exp_normalise(s, k, c, zero_empty=True),
                ),
                (
                    "the mask is applied after exp: a padded score far above the kept maximum "
                    "gives exp(x - c) = inf, and inf * 0 = NaN. Mask before exp (masked scores "
                    "-> -inf, exp(-inf) = 0) or use torch.where(mask, exp(...), 0).",
                    lambda s=scores, k=keep, c=kept_max: _exp_normalise(s, k, c, zero_empty=False),
                ),
                (
                    "subtracted the maximum over all keys, padded ones included: when a padded "
                    "score is far above the kept ones, every kept exp underflows to 0. Subtract "
                    "the largest *kept* score.",
                    lambda s=scores, k=keep: _exp_normalise(
                        s, k, s.amax(-1, keepdim=True), zero_empty=True
                    ),
                ),
                (
                    "subtracted the maximum over all keys, padded ones included: when a padded "
                    "score is far above the kept ones, every kept exp underflows to 0/0. "
                    "Subtract the largest *kept* score.",
                    lambda s=scores, k=keep: _exp_normalise(
                        s, k, s.amax(-1, keepdim=True), zero_empty=False
                    ),
                ),
            ]
            _compare(
                name,
                case,
                got,
                expected,
                mistakes,
                what="weights",
                hints=_masked_softmax_hints(scores, keep, expected),
                axes=("batch", "query", "key"),
                history=history,
            )
    _passed(name, len(cases))


# ================================================================ chapter 03: dot product
class _ScaledBy(DotProductAttention):
    """Dot-product attention divided by ``scale`` instead of sqrt(d): one method overridden."""

    def __init__(self, scale: Callable[[Tensor, Tensor], float]) -> None:
        super().__init__()
        self.scale = scale

    def score(self, queries: Tensor, keys: Tensor) -> Tensor:
        d = queries.shape[-1]
        return super().score(queries, keys) * math.sqrt(d) / self.scale(queries, keys)


def _attention_variant(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    valid_lens: Tensor | None,
    *,
    scale: Callable[[Tensor, Tensor], float] | None = None,
    weights_of: Callable[[Tensor, Tensor], Tensor] | None = None,
) -> tuple[Tensor, Tensor]:
    """The package's attention with the scale or the scores -> weights step replaced."""
    scorer = DotProductAttention() if scale is None else _ScaledBy(scale)
    if weights_of is None:
        return scorer(q, k, v, valid_lens)
    weights = weights_of(scorer.score(q, k), _keep(scorer.score(q, k), valid_lens))
    return weights @ v, weights  # (B, Q, K) @ (B, K, Dv) -> (B, Q, Dv)


def check_dot_product_attention(fn: Callable[..., Any]) -> None:
    """Check ``fn(queries, keys, values, valid_lens=None)`` -> ``(output, weights)``.

    The query size (4), the number of keys (5) and the value size (6) differ, so
    scaling by the wrong width shows up. A d2l-style module that returns only the
    output and keeps ``attention_weights`` is accepted.

    Taught in chapters/03_scoring_functions.ipynb.
    """
    __tracebackhide__ = True
    name = "check_dot_product_attention"
    history: dict[int, bool] = {}  # which mistakes agreed with the earlier cases
    signature = "my_dot_product_attention(queries, keys, values, valid_lens=None)"
    with _no_global_random():
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
            args = [q.clone(), k.clone(), v.clone()]
            lens = None if valid_lens is None else valid_lens.clone()
            with _no_writes(
                name, case, queries=args[0], keys=args[1], values=args[2], valid_lens=lens
            ):
                result = _call(name, case, fn, signature, *args, lens)
            got, got_weights = _output_and_weights(name, case, result, fn)
            expected, weights = DotProductAttention()(q, k, v, valid_lens)
            _not_swapped(name, case, got, got_weights, expected, weights)

            def variant(vl: Tensor | None = valid_lens, **how: Any) -> Callable[[], Tensor]:
                return lambda: _attention_variant(q, k, v, vl, **how)[0]

            mistakes: list[Mistake] = [
                ("no scaling: divide the scores q.k by sqrt(d).", variant(scale=lambda q, k: 1.0)),
                (
                    "scaled by d instead of sqrt(d) (or by sqrt(d) twice).",
                    variant(scale=lambda q, k: float(q.shape[-1])),
                ),
                (
                    "scaled by sqrt of the value size; use the query/key size "
                    "d = queries.shape[-1].",
                    variant(scale=lambda q, k: math.sqrt(v.shape[-1])),
                ),
                (
                    "scaled by sqrt of the number of keys (keys.shape[1]); use the query/key "
                    "size d = queries.shape[-1].",
                    variant(scale=lambda q, k: math.sqrt(k.shape[-2])),
                ),
                (
                    "multiplied by sqrt(d) instead of dividing by it.",
                    variant(scale=lambda q, k: 1 / math.sqrt(q.shape[-1])),
                ),
                (
                    "scaled after the softmax: dividing the weights by sqrt(d) makes rows sum to "
                    "1/sqrt(d). Divide the scores, before the softmax.",
                    variant(
                        scale=lambda q, k: 1.0,
                        weights_of=lambda s, keep: masked_softmax(s, mask=keep) / math.sqrt(d),
                    ),
                ),
                (
                    "softmax over the wrong axis (the queries); use dim=-1, the keys.",
                    variant(weights_of=lambda s, keep: _softmax_fill(s, keep, -1e6, dim=1)),
                ),
                (
                    "valid_lens is ignored: padded keys still get weight.",
                    variant(weights_of=lambda s, keep: masked_softmax(s)),
                ),
                (
                    "the mask is inverted: keys past the valid length get the weight. Keep key k "
                    "when k < valid_len.",
                    variant(weights_of=lambda s, keep: masked_softmax(s, mask=~keep)),
                ),
                (
                    "no softmax: the raw scores are used as weights.",
                    variant(weights_of=lambda s, keep: s.masked_fill(~keep, 0.0)),
                ),
                (
                    "masked scores filled with 0 instead of a large negative number: padded keys "
                    "still get weight exp(0).",
                    variant(weights_of=lambda s, keep: _softmax_fill(s, keep, 0.0)),
                ),
                (
                    "no renormalisation after masking: a full softmax with padded weights set to "
                    "0 leaves rows that sum to less than 1.",
                    variant(weights_of=lambda s, keep: torch.softmax(s, -1) * keep),
                ),
                (
                    "1-D valid lengths spread with repeat() instead of repeat_interleave(): each "
                    "sequence's length must be repeated once per query, in a row.",
                    lambda vl=valid_lens: (
                        _d2l_repeat_bug(DotProductAttention().score(q, k), vl) @ v
                    ),
                ),
            ]
            _compare(
                name,
                case,
                got,
                expected,
                mistakes,
                axes=("batch", "query", "feature"),
                history=history,
            )
            _compare(
                name,
                case,
                got_weights,
                weights,
                [
                    (
                        "the returned weights are the scores before the softmax.",
                        lambda: DotProductAttention().score(q, k),
                    ),
                    (
                        "the returned weights are transposed (keys, queries).",
                        lambda w=weights: w.transpose(-2, -1),
                    ),
                ],
                what="attention weights",
                axes=("batch", "query", "key"),
            )
    _passed(name, len(cases))


# ================================================================ chapter 05: heads
def check_split_merge_heads(
    split_fn: Callable[[Tensor, int], Tensor], merge_fn: Callable[[Tensor], Tensor]
) -> None:
    """Check ``split_fn(X, num_heads)`` (B, T, H*Dh) -> (B, H, T, Dh) and ``merge_fn`` back.

    ``merge_fn`` gets the contiguous (B, H, T, Dh) tensor that ``weights @ values``
    produces in a real layer, so a merge written with ``.view`` after a transpose fails
    here as it would there.

    Taught in chapters/05_multihead_attention.ipynb.
    """
    __tracebackhide__ = True
    name = "check_split_merge_heads"
    history: dict[int, bool] = {}  # which mistakes agreed with the earlier cases
    merge_history: dict[int, bool] = {}
    with _no_global_random():
        g = torch.Generator().manual_seed(2)
        cases = [
            ("B=2, T=3, H=2, Dh=4", torch.randn(2, 3, 8, generator=g), 2),
            ("B=1, T=4, H=3, Dh=2", torch.randn(1, 4, 6, generator=g), 3),
        ]
        for case, X, H in cases:
            B, T, D = X.shape
            expected = split_heads(X, H)
            arg = X.clone()
            with _no_writes(name, case + " (split)", X=arg):
                got = _call(
                    name, case + " (split)", split_fn, "my_split_heads(X, num_heads)", arg, H
                )
            if isinstance(got, Tensor) and tuple(got.shape) == (B * H, T, D // H):
                _fail(
                    f"{name}, case '{case} (split)': got shape {tuple(got.shape)} = (B*H, T, Dh), "
                    f"as d2l's transpose_qkv; split_heads keeps the heads on their own axis: "
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
                        "features are dealt to heads round-robin: head i should own the "
                        "contiguous slice [i*Dh, (i+1)*Dh) of the features.",
                        lambda X=X, H=H, B=B, T=T, D=D: X.reshape(B, T, D // H, H).permute(
                            0, 3, 1, 2
                        ),
                    ),
                ],
                axes=("batch", "head", "token", "feature"),
                history=history,
            )
            # what `weights @ values` gives a real layer: a contiguous (B, H, T, Dh) tensor
            heads = expected.contiguous()
            arg = heads.clone()
            with _no_writes(name, case + " (merge)", X=arg):
                got_merged = _call(name, case + " (merge)", merge_fn, "my_merge_heads(X)", arg)
            _compare(
                name,
                case + " (merge)",
                got_merged,
                X,
                [
                    (
                        "reshape of (B, H, T, Dh) straight to (B, T, H*Dh) without transposing "
                        "back first: transpose(1, 2), then reshape.",
                        lambda e=heads, B=B, T=T, D=D: e.reshape(B, T, D),
                    ),
                    (
                        "heads merged in the wrong order: the features must be head 0's Dh "
                        "values, then head 1's, ... ((B, H, T, Dh) -> (B, T, H, Dh) -> "
                        "(B, T, H*Dh)), not interleaved ((B, T, Dh, H)).",
                        lambda e=heads, B=B, T=T, D=D: e.permute(0, 2, 3, 1).reshape(B, T, D),
                    ),
                ],
                axes=("batch", "token", "feature"),
                history=merge_history,
            )
    _passed(name, 2 * len(cases))


# ================================================================ chapter 05: multi-head
class _Variant(MultiHeadAttention):
    """The reference layer's weights with one part changed, chapter 05's way: another
    ``ScoredAttention`` inside (e.g. a wrong scale), or ``W_o`` forgotten (the identity)."""

    def __init__(
        self,
        ref: MultiHeadAttention,
        attention: nn.Module | None = None,
        forget_wo: bool = False,
    ) -> None:
        self.forget_wo = forget_wo
        super().__init__(ref.num_heads * ref.head_dim, ref.num_heads)
        state = ref.state_dict()
        self.load_state_dict(
            {k: v for k, v in state.items() if not (forget_wo and k.startswith("W_o."))},
            strict=False,
        )
        if attention is not None:
            self.attention = attention

    def output_projection(self, num_hiddens: int, bias: bool) -> nn.Linear:
        layer = super().output_projection(num_hiddens, bias)
        if self.forget_wo:
            nn.init.eye_(layer.weight)  # W_o = I: the heads go out unmixed
        return layer


def _mha_pieces(
    ref: MultiHeadAttention,
    q: Tensor,
    kv: Tensor,
    valid_lens: Tensor | None,
    *,
    split: Callable[[Tensor, int], Tensor] = split_heads,
    merge: Callable[[Tensor], Tensor] = merge_heads,
    weights_of: Callable[[Tensor, Tensor], Tensor] | None = None,
) -> Tensor:
    """For the steps the layer has no hook for (splitting, merging, the softmax): the
    layer's pieces (its projections, ``split_heads``, ``DotProductAttention.score``,
    ``masked_softmax``, ``merge_heads``), with one replaced; unchanged, it equals ``ref``
    (tested)."""
    H = ref.num_heads
    qh, kh, vh = split(ref.W_q(q), H), split(ref.W_k(kv), H), split(ref.W_v(kv), H)
    scores = DotProductAttention().score(qh, kh)  # (B, H, Q, K)
    keep = _keep(scores, valid_lens)  # (B, H, Q, K)
    weights = masked_softmax(scores, mask=keep) if weights_of is None else weights_of(scores, keep)
    return ref.W_o(merge(weights @ vh))  # (B, H, Q, Dh) -> (B, Q, D) -> (B, Q, D)


def _repeat_mask(valid_lens: Tensor | None, B: int, H: int, Q: int, K: int) -> Tensor:
    """The (B, H, Q, K) keep-mask that d2l's folded rows b*H + h get from ``repeat``."""
    if valid_lens is None:
        raise ValueError("the mistake needs valid lengths")
    folded = torch.zeros(B * H, Q, K)  # d2l's (B*H, Q, K) layout
    return _keep(folded, _repeated_lens(valid_lens, H)).reshape(B, H, Q, K)


def check_multihead_attention(cls: Callable[..., nn.Module]) -> None:
    """Check a multi-head attention class built as ``cls(num_hiddens, num_heads, dropout)``.

    The class must keep its projections in ``nn.Linear`` attributes ``W_q``, ``W_k``,
    ``W_v``, ``W_o`` (as in d2l); the check copies the reference weights into them and
    compares ``forward(queries, keys, values, valid_lens)`` -> ``(output, weights)``
    (weights (B, H, Q, K); d2l's layer, which keeps them in ``attention_weights``, is
    accepted).

    Taught in chapters/05_multihead_attention.ipynb.
    """
    __tracebackhide__ = True
    name = "check_multihead_attention"
    history: dict[int, bool] = {}  # which mistakes agreed with the earlier cases
    num_hiddens, H = 8, 2
    with _no_global_random(), torch.no_grad():
        g = torch.Generator().manual_seed(3)
        ref = MultiHeadAttention(num_hiddens, H, 0.0).eval()
        for layer in (ref.W_q, ref.W_k, ref.W_v, ref.W_o):
            layer.weight.copy_(
                torch.randn(layer.weight.shape, generator=g) / math.sqrt(num_hiddens)
            )
        student = _call(
            name,
            "construction",
            cls,
            "MyMultiHeadAttention(num_hiddens, num_heads, dropout=0.0)",
            num_hiddens,
            H,
            0.0,
        )
        if not isinstance(student, nn.Module):
            _fail(f"{name}: expected an nn.Module subclass, got a {type(student).__name__}")
        student.eval()
        q = torch.randn(2, 3, num_hiddens, generator=g)
        kv = torch.randn(2, 5, num_hiddens, generator=g)
        layers = ("W_q", "W_k", "W_v", "W_o")
        missing = [a for a in layers if not isinstance(getattr(student, a, None), nn.Linear)]
        if missing:
            _fail(
                f"{name}: expected nn.Linear attributes {', '.join(layers)}, "
                f"missing {', '.join(missing)}"
            )
        forward = "forward(queries, keys, values, valid_lens=None)"
        if any(isinstance(p, nn.parameter.UninitializedParameter) for p in student.parameters()):
            # materialise lazy layers (d2l uses nn.LazyLinear)
            _call(name, "construction", student, forward, q, kv, kv, None)
        for attr in layers:
            mine, theirs = getattr(student, attr), getattr(ref, attr)
            if mine.weight.shape != theirs.weight.shape:
                _fail(
                    f"{name}: {attr}.weight has shape "
                    f"{tuple(mine.weight.shape)}, expected "
                    f"{tuple(theirs.weight.shape)}"
                )
            mine.weight.copy_(theirs.weight)
            if mine.bias is not None:
                mine.bias.zero_()
        B, Qn, K, Dh = q.shape[0], q.shape[1], kv.shape[1], num_hiddens // H
        cases = [
            ("no valid_lens", None),
            ("1-D valid_lens [2, 5]", torch.tensor([2, 5])),
            ("2-D valid_lens", torch.tensor([[1, 2, 3], [5, 4, 2]])),
        ]
        for case, valid_lens in cases:
            args = [q.clone(), kv.clone(), kv.clone()]
            lens = None if valid_lens is None else valid_lens.clone()
            with _no_writes(
                name, case, queries=args[0], keys=args[1], values=args[2], valid_lens=lens
            ):
                result = _call(name, case, student, forward, *args, lens)
            got, got_weights = _output_and_weights(name, case, result, student)
            expected, weights = ref(q, kv, kv, valid_lens)
            _not_swapped(name, case, got, got_weights, expected, weights)

            def pieces(vl: Tensor | None = valid_lens, **how: Any) -> Callable[[], Tensor]:
                return lambda: _mha_pieces(ref, q, kv, vl, **how)

            def scaled(scale: float, vl: Tensor | None = valid_lens) -> Callable[[], Tensor]:
                return lambda: _Variant(ref, _ScaledBy(lambda q, k: scale))(q, kv, kv, vl)[0]

            def masked(vl: Tensor | None = valid_lens, **how: Any) -> Callable[[], Tensor]:
                return lambda: ref(q, kv, kv, **how)[0]

            keep = _keep(torch.zeros(B, 1, Qn, K), valid_lens)  # (B, 1, Q, K)
            mistakes: list[Mistake] = [
                (
                    "valid lengths repeated with repeat() (whole batch, then again) instead of "
                    "repeat_interleave() (each sequence once per head).",
                    lambda vl=valid_lens: ref(q, kv, kv, mask=_repeat_mask(vl, B, H, Qn, K))[0],
                ),
                (
                    "scores scaled by sqrt(num_hiddens), the model width; scale by "
                    "sqrt(num_hiddens / num_heads), the head width.",
                    scaled(math.sqrt(num_hiddens)),
                ),
                (
                    "heads mixed by a reshape without a transpose: reshape to (B, T, H, Dh), "
                    "then transpose(1, 2).",
                    pieces(split=lambda x, h: x.reshape(x.shape[0], h, x.shape[1], -1)),
                ),
                (
                    "W_o is never applied: the output is W_o(merge_heads(heads)), which mixes "
                    "the heads.",
                    lambda vl=valid_lens: _Variant(ref, forget_wo=True)(q, kv, kv, vl)[0],
                ),
                ("scores scaled by Dh instead of sqrt(Dh).", scaled(float(Dh))),
                ("no scaling: divide the scores by sqrt(Dh), the head width.", scaled(1.0)),
                (
                    "scores scaled by sqrt of the number of keys; scale by sqrt(Dh), the head "
                    "width.",
                    scaled(math.sqrt(K)),
                ),
                (
                    "scaled after the softmax: dividing the weights by sqrt(Dh) makes rows sum "
                    "to 1/sqrt(Dh). Divide the scores, before the softmax.",
                    pieces(
                        weights_of=lambda s, keep, Dh=Dh: (
                            masked_softmax(s * math.sqrt(Dh), mask=keep) / math.sqrt(Dh)
                        )
                    ),
                ),
                (
                    "heads merged without transposing back: (B, H, Q, Dh) -> transpose(1, 2) "
                    "-> (B, Q, H, Dh), then reshape to (B, Q, D).",
                    pieces(merge=lambda x: x.reshape(x.shape[0], x.shape[2], -1)),
                ),
                (
                    "heads merged in the wrong order: the features must be head 0's Dh values, "
                    "then head 1's, ... ((B, Q, H, Dh) -> (B, Q, H*Dh)), not interleaved "
                    "((B, Q, Dh, H)).",
                    pieces(
                        merge=lambda x: x.permute(0, 2, 3, 1).reshape(x.shape[0], x.shape[2], -1)
                    ),
                ),
                (
                    "features dealt to heads round-robin: head i should own the contiguous "
                    "slice [i*Dh, (i+1)*Dh): reshape to (B, T, H, Dh), then transpose(1, 2).",
                    pieces(split=lambda x, h: x.reshape(*x.shape[:2], -1, h).permute(0, 3, 1, 2)),
                ),
                ("valid_lens is ignored: padded keys still get weight.", masked()),
                (
                    "the mask is inverted: keys past the valid length get the weight.",
                    masked(mask=~keep),
                ),
                (
                    "softmax over the wrong axis (the queries); use dim=-1, the keys.",
                    pieces(weights_of=lambda s, keep: _softmax_fill(s, keep, -1e6, dim=-2)),
                ),
            ]

            _compare(
                name,
                case,
                got,
                expected,
                mistakes,
                axes=("batch", "query", "feature"),
                history=history,
            )
            if isinstance(got_weights, Tensor) and got_weights.shape == (2 * H, *weights.shape[2:]):
                got_weights = got_weights.reshape(weights.shape)  # d2l's (B*H, Q, K) layout
            _compare(
                name,
                case,
                got_weights,
                weights,
                what="attention weights (B, H, Q, K)",
                axes=("batch", "head", "query", "key"),
            )
    _passed(name, len(cases))


# ================================================================ chapter 06: entropy
def _entropy_eps(w: Tensor, dim: int, eps: float, clamp: bool) -> Tensor:
    """-sum p log(p + eps) (or log(clamp(p, eps))): the epsilon the exercise rules out."""
    inside = w.clamp_min(eps) if clamp else w + eps
    return -(w * torch.log(inside)).sum(dim)


def check_attention_entropy(fn: Callable[..., Tensor]) -> None:
    """Check ``fn(weights, dim=-1)`` against :func:`attention_entropy` (natural log).

    Cases: uniform rows (ln K), one-hot rows (exactly 0, no NaN), random rows in
    float64 with tiny weights (an epsilon inside the log shows up there), another
    ``dim``, and a finite gradient where weights are 0.

    Taught in chapters/06_entropy_regularization.ipynb.
    """
    __tracebackhide__ = True
    name = "check_attention_entropy"
    history: dict[int, bool] = {}  # which mistakes agreed with the earlier cases
    signature = "my_attention_entropy(weights, dim=-1)"
    with _no_global_random():
        g = torch.Generator().manual_seed(4)
        random_rows = torch.softmax(torch.randn(2, 3, 5, generator=g), dim=-1)
        sharpness = torch.tensor([1.0, 12.0, 40.0], dtype=torch.float64)[:, None]  # (3, 1)
        sharp = torch.softmax(torch.randn(2, 3, 5, generator=g).double() * sharpness, dim=-1)
        cases = [
            ("uniform rows, K=4 (expect ln 4)", torch.full((2, 4), 0.25), -1),
            ("one-hot rows (expect 0)", F.one_hot(torch.tensor([0, 2, 3]), 4).float(), -1),
            ("random rows, float64, some nearly one-hot", sharp, -1),
            ("rows along dim=1", random_rows.transpose(1, 2).contiguous(), 1),
        ]
        for case, w, dim in cases:
            arg = w.clone()
            with _no_writes(name, case, weights=arg):
                got = _call(name, case, fn, signature, arg, dim=dim)
            expected = attention_entropy(w, dim=dim)
            eps_mistakes: list[Mistake] = [
                (
                    f"an epsilon inside the log ({'clamp_min' if clamp else 'log(p + eps)'} "
                    f"with eps = {eps:g}) biases every entropy and is not 0 for one-hot rows "
                    "in general; the exercise asks for none: take log(1) = 0 where p = 0, "
                    "torch.where(p > 0, p, 1) inside the log.",
                    lambda w=w, d=dim, e=eps, c=clamp: _entropy_eps(w, d, e, c),
                )
                for eps in (1e-4, 1e-5, 1e-6, 1e-7, 1e-8, 1e-9, 1e-10, 1e-12, 1e-15, 1e-20)
                for clamp in (False, True)
            ]
            mistakes: list[Mistake] = [
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
                    "summed over the wrong axis: the `dim` argument is ignored or misused.",
                    lambda w=w, d=dim: attention_entropy(w, 0 if d in (-1, w.ndim - 1) else -1),
                ),
                (
                    "keepdim=True leaves the row axis in the result: return one entropy per row, "
                    "the shape of weights without `dim`.",
                    lambda w=w, d=dim: attention_entropy(w, d).unsqueeze(d),
                ),
                (
                    "summed over every axis: return one entropy per row.",
                    lambda w=w, d=dim: attention_entropy(w, d).sum(),
                ),
                (
                    "0 * log(0) = 0 * (-inf) = NaN where a weight is 0: take log(1) = 0 there "
                    "instead, torch.where(p > 0, p, 1) inside the log.",
                    lambda w=w, d=dim: -(w * torch.log(w)).sum(d),
                ),
                *eps_mistakes,
            ]

            def zero_nan(got: Tensor, w: Tensor = w) -> str | None:
                if torch.isnan(got).any() and (w == 0).any():
                    return (
                        "NaN where a weight is 0: 0 * log(0) = 0 * (-inf) = NaN. Take log(1) = 0 "
                        "there instead: torch.where(p > 0, p, 1) inside the log."
                    )
                return None

            tight = "float64" in case  # small entropies: compare relative to their size
            _compare(
                name,
                case,
                got,
                expected,
                mistakes,
                hints=[zero_nan],
                atol=1e-12 if tight else 1e-5,
                rtol=1e-7 if tight else 1e-4,
                history=history,
            )
            if case.startswith("one-hot") and not torch.all(got == 0):  # the exercise: exactly 0
                _fail(
                    f"{name}, case '{case}': a one-hot row must give exactly 0, got up to "
                    f"{got.abs().max().item():.3g}: is there an epsilon inside the log? The "
                    "exercise asks for none: torch.where(p > 0, p, 1) inside the log."
                )
        w = F.one_hot(torch.tensor([1, 0]), 3).float().requires_grad_(True)
        case = "gradient at zero weights"
        with torch.enable_grad():
            out = _call(name, case, fn, signature, w, dim=-1)
            try:
                out.sum().backward()
            except Exception as error:  # noqa: BLE001 - the student's graph
                _fail(f"{name}, case '{case}': backward() failed: {type(error).__name__}: {error}")
        if w.grad is None or not torch.isfinite(w.grad).all():
            _fail(
                f"{name}, case '{case}': the gradient is not "
                f"finite ({w.grad}); p * log(p) at p = 0 gives 0 * -inf. Use "
                "torch.where(p > 0, p, 1) inside the log."
            )
    _passed(name, len(cases) + 1)


# ================================================================ chapter 02: Nadaraya-Watson
def check_nadaraya_watson(fn: Callable[..., Any]) -> None:
    """Check ``fn(queries, keys, values, bandwidth=...)`` -> ``(predictions, weights)``
    (Gaussian kernel) against :func:`nadaraya_watson`.

    The queries include one far from every key, where a ratio of exponentials
    underflows to 0/0 with a narrow kernel (the exercise asks for a softmax).

    Taught in chapters/02_nadaraya_watson.ipynb.
    """
    __tracebackhide__ = True
    name = "check_nadaraya_watson"
    history: dict[int, bool] = {}  # which mistakes agreed with the earlier cases
    signature = "my_nadaraya_watson(queries, keys, values, bandwidth=1.0)"
    with _no_global_random():
        g = torch.Generator().manual_seed(5)
        keys = torch.sort(torch.rand(20, generator=g) * 5).values
        values = torch.sin(keys) + 0.1 * torch.randn(20, generator=g)
        # seven queries over the data and one far to the right of every key
        queries = torch.cat([torch.linspace(0, 5, 7), torch.tensor([11.0])])
        cases = [("bandwidth 1.0", 1.0), ("bandwidth 0.3", 0.3), ("bandwidth 2.5", 2.5)]

        def pool(scores: Tensor, dim: int = -1) -> Tensor:
            return (torch.softmax(scores, dim=dim) * values).sum(-1)

        d = queries[:, None] - keys[None, :]  # (Q, N)

        def width(wrong: float) -> Callable[[], Tensor]:
            """A mistake in the width alone is the package's estimate at another width."""
            return lambda: nadaraya_watson(queries, keys, values, wrong)[0]

        for case, sigma in cases:
            args = [queries.clone(), keys.clone(), values.clone()]
            with _no_writes(name, case, queries=args[0], keys=args[1], values=args[2]):
                result = _call(name, case, fn, signature, *args, bandwidth=sigma)
            got, got_weights = _output_and_weights(name, case, result, fn)
            expected, weights = nadaraya_watson(queries, keys, values, sigma)
            _not_swapped(name, case, got, got_weights, expected, weights)
            _compare(
                name,
                case,
                got,
                expected,
                [
                    (
                        "softmax over the queries (dim=0); normalise each query's row over the "
                        "keys.",
                        lambda s=sigma: pool(-(d**2) / (2 * s**2), dim=0),
                    ),
                    (
                        "the 1/2 is missing: the Gaussian kernel is exp(-(x - x_i)^2 / "
                        "(2 sigma^2)).",
                        width(sigma / math.sqrt(2)),
                    ),
                    (
                        "divided by sigma, not sigma squared.",
                        width(math.sqrt(sigma)),
                    ),
                    (
                        "the bandwidth is squared twice (sigma^4 in the denominator): square it "
                        "once, 2 * sigma**2.",
                        width(sigma**2),
                    ),
                    (
                        "the bandwidth multiplies the distance (as the learnable w of "
                        "NWKernelRegression, where sigma = 1/w); the score is "
                        "-((x - x_i) / sigma)^2 / 2.",
                        width(1 / sigma),
                    ),
                    (
                        "the sign is flipped: far points should get small weights, use "
                        "-(x - x_i)^2.",
                        lambda s=sigma: pool(d**2 / (2 * s**2)),
                    ),
                    (
                        "|x - x_i| instead of its square: that is the Laplace kernel; the "
                        "Gaussian uses (x - x_i)^2.",
                        lambda s=sigma: pool(-d.abs() / (2 * s**2)),
                    ),
                    (
                        "exp(scores) / exp(scores).sum() underflows to 0/0 = NaN for a query "
                        "far from every key (the query at 11): use torch.softmax, which "
                        "subtracts the row maximum first.",
                        lambda s=sigma: (
                            torch.exp(-(d**2) / (2 * s**2))
                            / torch.exp(-(d**2) / (2 * s**2)).sum(-1, keepdim=True)
                            * values
                        ).sum(-1),
                    ),
                    (
                        "the kernel values are not normalised to sum to 1 over the keys.",
                        lambda s=sigma: (torch.exp(-(d**2) / (2 * s**2)) * values).sum(-1),
                    ),
                ],
                hints=[
                    lambda got: (
                        "NaN in the predictions: exp of a very negative score underflows to 0, "
                        "and 0/0 = NaN for a query far from every key (the query at 11). Use "
                        "torch.softmax, which subtracts the row maximum first."
                        if torch.isnan(got).any()
                        else None
                    )
                ],
                axes=("query",),
                history=history,
            )
            _compare(
                name,
                case,
                got_weights,
                weights,
                [("the returned weights are transposed (N, Q).", lambda w=weights: w.T)],
                what="attention weights",
                axes=("query", "key"),
            )
    _passed(name, len(cases))
