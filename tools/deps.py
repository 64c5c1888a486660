"""Read the course's dependency declarations from pyproject.toml (the one source).

    python tools/deps.py no-deps     # requirements installed with `pip install --no-deps`

Used by the Makefile and by postBuild, so neither repeats the d2l pin.
"""

import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def install_without_deps() -> list[str]:
    """The pins from ``[tool.attention-course] install-without-deps``."""
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())
    return list(data["tool"]["attention-course"]["install-without-deps"])


if __name__ == "__main__":
    if sys.argv[1:] != ["no-deps"]:
        sys.exit("usage: python tools/deps.py no-deps")
    print(" ".join(install_without_deps()))
