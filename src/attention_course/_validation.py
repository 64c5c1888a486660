"""Argument checks shared by the public functions: one message format everywhere.

Every error says which argument was wrong, what was expected and what was given. The
number checks accept what a student naturally passes: Python numbers, NumPy scalars and
0-d tensors (``torch.tensor(4)``), and return a plain Python ``int`` or ``float``.
"""

from __future__ import annotations

import math
import numbers

import torch
from torch import Tensor


def require_tensor(name: str, x: object) -> Tensor:
    """Return ``x`` if it is a tensor, else raise ``TypeError`` naming ``name``."""
    if not isinstance(x, Tensor):
        raise TypeError(f"{name}: expected a torch.Tensor, got {type(x).__name__}")
    return x


def require_ndim(name: str, x: Tensor, allowed: tuple[int, ...], shape_hint: str) -> None:
    """Raise ``ValueError`` unless ``x.ndim`` is one of ``allowed``."""
    if x.ndim not in allowed:
        raise ValueError(
            f"{name}: expected shape {shape_hint}, got shape {tuple(x.shape)} ({x.ndim}-D)"
        )


def require_floating(name: str, x: Tensor) -> None:
    """Raise ``TypeError`` unless ``x`` has a floating-point dtype."""
    if not x.is_floating_point():
        raise TypeError(f"{name}: expected a floating-point tensor, got dtype {x.dtype}")


def require_same_size(name_a: str, a: int, name_b: str, b: int) -> None:
    """Raise ``ValueError`` unless two sizes agree, naming both."""
    if a != b:
        raise ValueError(f"{name_a} ({a}) must equal {name_b} ({b})")


def _scalar(value: object) -> object:
    """A 0-d tensor as the Python number it holds; anything else unchanged."""
    if isinstance(value, Tensor) and value.ndim == 0 and value.dtype != torch.bool:
        return value.item()
    return value


def require_int(name: str, value: object, *, low: int | None = None) -> int:
    """Return ``value`` as an ``int`` (Python, NumPy or 0-d tensor integer), at least ``low``.

    ``True``/``False`` and floats such as ``2.0`` are refused with a ``ValueError``: a
    size is a whole number.
    """
    value = _scalar(value)
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        wanted = "a positive int" if low == 1 else "an int"
        raise ValueError(f"{name}: expected {wanted}, got {type(value).__name__} {value!r}")
    if low is not None and value < low:
        wanted = "a positive int" if low == 1 else f"an int >= {low}"
        raise ValueError(f"{name}: expected {wanted}, got {int(value)}")
    return int(value)


def require_positive_int(name: str, value: object) -> int:
    """Return ``value`` as an ``int`` if it is a whole number >= 1, else raise naming it."""
    return require_int(name, value, low=1)


def require_number(name: str, value: object, *, finite: bool = True) -> float:
    """Return ``value`` as a ``float`` (Python, NumPy or 0-d tensor), else raise.

    With ``finite=False`` NaN and infinities pass (the caller checks a range).
    """
    value = _scalar(value)
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name}: expected a number, got {type(value).__name__}")
    if finite and not math.isfinite(value):
        raise ValueError(f"{name}: expected a finite number, got {value}")
    return float(value)


def require_positive(name: str, value: object) -> float:
    """Return ``value`` as a ``float`` if it is finite and > 0, else raise naming it."""
    number = require_number(name, value)
    if number <= 0:
        raise ValueError(f"{name}: expected a finite number > 0, got {number}")
    return number


def require_probability(name: str, value: object) -> float:
    """Return ``value`` as a ``float`` in [0, 1) (a dropout rate), else raise naming it."""
    number = require_number(name, value)
    if not 0.0 <= number < 1.0:
        raise ValueError(f"{name}: expected a probability in [0, 1), got {number}")
    return number


def require_choice(name: str, value: str, choices: tuple[str, ...]) -> str:
    """Raise ``ValueError`` listing ``choices`` unless ``value`` is one of them."""
    if value not in choices:
        known = ", ".join(repr(c) for c in choices)
        raise ValueError(f"{name}: expected one of {known}, got {value!r}")
    return value


def require_whole_numbers(name: str, x: Tensor) -> None:
    """Raise unless ``x`` holds whole numbers (an integer dtype, or floats like 2.0)."""
    if x.dtype == torch.bool or x.is_complex():
        raise TypeError(f"{name}: expected integer lengths, got dtype {x.dtype}")
    if x.is_floating_point() and not bool(torch.all(x == torch.round(x))):
        raise ValueError(f"{name}: expected whole numbers, got {x.tolist()}")
