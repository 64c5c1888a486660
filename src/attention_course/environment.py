"""Check the running environment against the course's pins (used by 00_setup.ipynb).

Versions are printed as ``version X.Y.Z`` so that one nbval sanitize rule can hide
the numbers (numpy's pin differs by Python version) while OK/FAIL still counts.
"""

from __future__ import annotations

import platform
import sys
import tomllib
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from packaging.requirements import Requirement

#: The packages whose versions 00_setup.ipynb reports.
CHECKED: tuple[str, ...] = (
    "torch",
    "torchvision",
    "d2l",
    "numpy",
    "matplotlib",
    "ipywidgets",
    "jupyterlab",
)
SUPPORTED_PYTHON = ((3, 11), (3, 13))


@dataclass(frozen=True)
class Check:
    """One line of the report."""

    name: str
    installed: str | None
    expected: str
    ok: bool

    def __str__(self) -> str:
        status = "OK  " if self.ok else "FAIL"
        found = f"version {self.installed}" if self.installed else "not installed"
        return f"{status}  {self.name:<12} {found:<18} (expected {self.expected})"


def read_pins(root: Path) -> dict[str, Requirement]:
    """The pins that apply here: requirements.txt plus pyproject's install-without-deps."""
    pins: dict[str, Requirement] = {}
    lines = (root / "requirements.txt").read_text().splitlines()
    extra = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["attention-course"]
    for line in [*lines, *extra["install-without-deps"]]:
        line = line.split("#", 1)[0].strip()
        if not line or line.startswith("-"):
            continue
        req = Requirement(line)
        if req.marker is None or req.marker.evaluate():
            pins[req.name.lower()] = req
    return pins


def check_environment(root: str | Path = "..") -> list[Check]:
    """Compare Python and the key packages with the pins found under ``root``.

    Args:
        root: the repository root (holding requirements.txt and pyproject.toml);
            ``..`` from a notebook in ``chapters/``.

    Returns:
        One :class:`Check` per item; print them, or test ``all(c.ok for c in checks)``.

    Taught in chapters/00_setup.ipynb.
    """
    pins = read_pins(Path(root))
    (lo_major, lo_minor), (hi_major, hi_minor) = SUPPORTED_PYTHON
    py = sys.version_info
    checks = [
        Check(
            "Python",
            platform.python_version(),
            f"{lo_major}.{lo_minor} to {hi_major}.{hi_minor}",
            SUPPORTED_PYTHON[0] <= py[:2] <= SUPPORTED_PYTHON[1],
        )
    ]
    for name in CHECKED:
        try:
            installed: str | None = version(name)
        except PackageNotFoundError:
            installed = None
        spec = pins[name].specifier
        ok = installed is not None and spec.contains(installed, prereleases=True)
        checks.append(Check(name, installed, f"version {str(spec).lstrip('=')}", ok))
    return checks
