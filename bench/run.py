"""The course's benchmark suite (`make bench`): speed and memory of attention, sliders, notebooks.

    .venv/bin/python bench/run.py                  # everything; writes bench/results.{md,csv}
    .venv/bin/python bench/run.py --quick          # fewer rounds, for trying it out
    .venv/bin/python bench/run.py --only mha,softmax
    .venv/bin/python bench/run.py --skip notebooks,sliders

Each part is a module with ``section(quick) -> Section`` (``bench/section.py``); the
table ``SECTIONS`` below lists them in report order. Prints every goal with its measured
figure and PASS/FAIL. It always exits 0: it is a measurement, not a test (timings on a
shared 2-core machine are noisy; the load average is printed with the results).
"""

from __future__ import annotations

import argparse
import csv
import datetime
import os
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("MPLBACKEND", "Agg")
import flash  # noqa: E402
import kernels  # noqa: E402
import kv_cache  # noqa: E402
import notebooks  # noqa: E402
import sliders  # noqa: E402
import torch  # noqa: E402
from section import CSV_FIELDS, Goal, Section  # noqa: E402

HERE = Path(__file__).resolve().parent

#: name (for --only/--skip) -> the function that measures that part of the report
SECTIONS: dict[str, Callable[[bool], Section]] = {
    "mha": kernels.mha_section,
    "memory": kernels.memory_section,
    "softmax": kernels.softmax_section,
    "flash": flash.section,
    "kv_cache": kv_cache.section,
    "sliders": sliders.section,
    "notebooks": notebooks.section,
}


def machine() -> str:
    """CPU model, cores, threads and load: the context every number here depends on."""
    model = platform.processor() or "unknown CPU"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    omp = os.environ.get("OMP_NUM_THREADS")
    return (
        f"{model}, {os.cpu_count()} cores, torch {torch.__version__} with "
        f"{torch.get_num_threads()} thread(s) (OMP_NUM_THREADS={omp}),"
        f" Python {platform.python_version()}, load average {load}"
    )


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds and slider moves")
    parser.add_argument("--only", default="", help=f"comma-separated: {','.join(SECTIONS)}")
    parser.add_argument("--skip", default="", help="comma-separated sections to leave out")
    parser.add_argument("--out", type=Path, default=HERE / "results", help="path stem of outputs")
    args = parser.parse_args(argv)
    only = set(filter(None, args.only.split(","))) or set(SECTIONS)
    skip = set(filter(None, args.skip.split(",")))
    unknown = (only | skip) - set(SECTIONS)
    if unknown:
        parser.error(f"unknown sections {sorted(unknown)}; expected some of {list(SECTIONS)}")
    started = time.perf_counter()
    md = [
        "# Benchmark results",
        "",
        f"`make bench` (`{' '.join(['.venv/bin/python', 'bench/run.py', *argv])}`), "
        f"{datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC.",
        "",
        f"Machine: {machine()}.",
        "",
    ]
    rows: list[dict[str, object]] = []
    goals: list[Goal] = []
    for name, measure in SECTIONS.items():
        if name not in only or name in skip:
            continue
        print(f"\n== {name} ==", flush=True)
        section = measure(args.quick)
        md += [f"## {section.title}", "", *section.markdown, ""]
        rows += section.rows
        goals += section.goals

    md += ["## Goals", "", "| goal | measured | result |", "|---|---|---|"]
    md += [f"| {g.text} | {g.figure} | {'PASS' if g.passed else '**FAIL**'} |" for g in goals]
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    md += [
        "",
        f"Whole benchmark: {time.perf_counter() - started:.0f} s; load average at the end {load}"
        " (the machine is shared: a load above its core count slows every number here).",
        "",
    ]
    args.out.with_suffix(".md").write_text("\n".join(md))
    with args.out.with_suffix(".csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(CSV_FIELDS), restval="")
        writer.writeheader()
        writer.writerows(rows)

    print("\nGOALS")
    for g in goals:
        print(f"  {'PASS' if g.passed else 'FAIL <<<<<<<<'}  {g.text}: {g.figure}")
    failed = sum(not g.passed for g in goals)
    if failed:
        print(f"\n*** {failed} GOAL(S) FAILED *** (see above; bench exits 0 by design)")
    print(f"\nwrote {args.out.with_suffix('.md')} and {args.out.with_suffix('.csv')}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
