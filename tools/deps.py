"""Read the course's dependency declarations from pyproject.toml (the one source).

    python tools/deps.py no-deps        # requirements installed with `pip install --no-deps`
    python tools/deps.py floor          # constraints: every runtime dependency at its oldest
                                        # declared version (the floor run of `make compat`)
    python tools/deps.py check-python   # exit 1 with one line of advice if this Python
                                        # is outside requires-python (`make setup` runs it)

Used by the Makefile, postBuild and tools/compat.sh, so none of them repeats a pin.
`check-python` runs under any Python 3 (even one too old for `tomllib`).
"""

from __future__ import annotations

import re
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = ROOT / "pyproject.toml"


def _pyproject() -> dict:
    import tomllib

    return tomllib.loads(PYPROJECT.read_text())


def install_without_deps() -> list[str]:
    """The pins from ``[tool.attention-course] install-without-deps``."""
    return list(_pyproject()["tool"]["attention-course"]["install-without-deps"])


def floor_constraints() -> list[str]:
    """``name==oldest`` for every runtime dependency (each declares a ``>=`` floor).

    Parsed without ``packaging``: it runs in a fresh venv that has only pip.
    """
    lines = []
    for text in _pyproject()["project"]["dependencies"]:
        name = re.match(r"[A-Za-z0-9._-]+", text).group(0)
        lows = re.findall(r">=\s*([0-9][0-9A-Za-z.]*)", text)
        if len(lows) != 1:
            raise ValueError(f"{text!r}: every runtime dependency needs exactly one >= floor")
        lines.append(f"{name}=={lows[0]}")
    return lines


def supported_minors() -> list[tuple[int, int]]:
    """The Python versions requires-python admits, e.g. [(3, 11), (3, 12), (3, 13)].

    Parsed with a regex so that it works on Pythons without ``tomllib``.
    """
    text = re.search(r'^requires-python\s*=\s*"([^"]+)"', PYPROJECT.read_text(), re.M).group(1)
    low = re.search(r">=\s*3\.(\d+)", text)
    high = re.search(r"<\s*3\.(\d+)", text)
    return [(3, m) for m in range(int(low.group(1)), int(high.group(1)))]


def python_advice(version: tuple[int, int], found: list[str]) -> str | None:
    """One line saying what to do when ``version`` is unsupported; None when it is fine."""
    minors = supported_minors()
    if tuple(version) in minors:
        return None
    names = [f"{major}.{minor}" for major, minor in minors]
    wanted = ", ".join(names[:-1]) + " or " + names[-1]
    here = f"Python {version[0]}.{version[1]}"
    if found:
        return (
            f"{here} is not supported: the course needs Python {wanted}. "
            f"Found here: {', '.join(found)}; run: make setup PYTHON={found[0]}"
        )
    return (
        f"{here} is not supported: the course needs Python {wanted}. Install one "
        f"(python.org, your package manager, pyenv or conda), then run: "
        f"make setup PYTHON=python{names[-1]}"
    )


def _interpreters_found() -> list[str]:
    return [
        f"python{major}.{minor}"
        for major, minor in supported_minors()
        if shutil.which(f"python{major}.{minor}")
    ]


if __name__ == "__main__":
    command = sys.argv[1:]
    if command == ["no-deps"]:
        print(" ".join(install_without_deps()))
    elif command == ["floor"]:
        print("\n".join(floor_constraints()))
    elif command == ["check-python"]:
        advice = python_advice(sys.version_info[:2], _interpreters_found())
        if advice:
            sys.exit(f"make setup: {advice}")
    else:
        sys.exit("usage: python tools/deps.py no-deps | floor | check-python")
