"""The one contract every part of `make bench` follows: a section of the report.

Each bench module exposes ``section(quick: bool) -> Section``; ``bench/run.py`` holds a
table of them, runs the ones not skipped, and writes the report, the CSV and the goals.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from timing import Timing


@dataclass(frozen=True)
class Goal:
    """One goal: what is measured, the figure measured, and whether it passes."""

    text: str
    figure: str
    passed: bool


@dataclass
class Section:
    """A part of the report: its Markdown (after the heading), CSV rows and goals.

    ``rows`` are dicts with the keys of ``CSV_FIELDS``; missing keys are written empty.
    """

    title: str
    markdown: list[str] = field(default_factory=list)
    rows: list[dict[str, object]] = field(default_factory=list)
    goals: list[Goal] = field(default_factory=list)

    def add_timings(
        self,
        section: str,
        case: str,
        mode: str,
        timings: Mapping[str, Timing],
        names: Iterable[str],
    ) -> None:
        """One CSV row per implementation in ``names``: its median ms and the rounds' spread."""
        for name in names:
            self.rows.append(
                {
                    "section": section,
                    "case": case,
                    "mode": mode,
                    "implementation": name,
                    "median_ms": f"{1000 * timings[name].median:.2f}",
                    "spread": f"{timings[name].spread:.2f}",
                }
            )


CSV_FIELDS = ("section", "case", "mode", "implementation", "median_ms", "spread")
