"""Argument checks shared by the public functions: one message format everywhere.

Every error says which argument was wrong, what was expected and what was given.
"""

from __future__ import annotations

import math

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


def require_positive(name: str, value: float) -> float:
    """Return ``float(value)`` if it is finite and > 0, else raise ``ValueError``."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{name}: expected a number, got {type(value).__name__}")
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name}: expected a finite number > 0, got {value}")
    return float(value)


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
