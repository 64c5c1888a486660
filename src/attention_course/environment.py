"""Check the running environment against the ranges the course supports (00_setup.ipynb).

The ranges come from the installed package's own metadata (pyproject.toml's
``dependencies``), so the check works wherever the package is installed: a clone set up
with ``make setup``, ``pip install`` of the repository, Binder or Colab; no
``requirements.txt`` is needed beside the notebook. Versions are printed as
``version X.Y.Z`` so that one nbval sanitize rule hides the numbers while OK/FAIL still
counts.
"""

from __future__ import annotations

import platform
import sys
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, metadata, requires, version

from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet

#: The distribution this package is installed as.
DISTRIBUTION = "attention-course"
#: d2l is installed with ``pip install --no-deps`` (its own exact pins are stale), so it is
#: not among the package's dependencies. Must equal pyproject.toml's
#: ``[tool.attention-course] install-without-deps`` (tests/test_environment.py checks).
D2L_REQUIREMENT = "d2l==1.0.3"
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
#: Not checked on Google Colab, whose own front end replaces JupyterLab.
NOT_ON_COLAB: tuple[str, ...] = ("jupyterlab",)


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
        return f"{status}  {self.name:<12} {found:<18} (supported {self.expected})"


def describe(spec: SpecifierSet) -> str:
    """``>=2.6, <3`` rather than SpecifierSet's alphabetical ``<3,>=2.6``."""
    order = {">=": 0, ">": 0, "==": 1, "~=": 1}
    parts = sorted(spec, key=lambda s: (order.get(s.operator, 2), str(s)))
    return ", ".join(str(s) for s in parts) or "any version"


def supported_ranges(distribution: str = DISTRIBUTION) -> dict[str, SpecifierSet]:
    """Package name -> supported versions, from the installed package's metadata."""
    ranges: dict[str, SpecifierSet] = {}
    for text in [*(requires(distribution) or []), D2L_REQUIREMENT]:
        req = Requirement(text)
        if req.marker is None or req.marker.evaluate({"extra": ""}):
            ranges[req.name.lower()] = req.specifier
    return ranges


def on_colab() -> bool:
    """True inside a Google Colab runtime."""
    return "google.colab" in sys.modules


def check_environment() -> list[Check]:
    """Compare Python and the key packages with the ranges the course supports.

    Returns:
        One :class:`Check` per item; print them, or test ``all(c.ok for c in checks)``.

    Raises:
        PackageNotFoundError: the course package is importable but not installed
            (run ``make setup`` or ``pip install`` the repository).

    Taught in chapters/00_setup.ipynb.
    """
    ranges = supported_ranges()
    python_spec = SpecifierSet(metadata(DISTRIBUTION)["Requires-Python"] or "")
    checks = [
        Check(
            "Python",
            platform.python_version(),
            describe(python_spec),
            python_spec.contains(platform.python_version(), prereleases=True),
        )
    ]
    for name in CHECKED:
        if on_colab() and name in NOT_ON_COLAB:
            continue
        try:
            installed: str | None = version(name)
        except PackageNotFoundError:
            installed = None
        spec = ranges[name]
        ok = installed is not None and spec.contains(installed, prereleases=True)
        checks.append(Check(name, installed, describe(spec), ok))
    return checks
