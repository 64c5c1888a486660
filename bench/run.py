"""The course's benchmark suite (`make bench`): speed of attention, sliders and notebooks.

    .venv/bin/python bench/run.py            # everything; writes bench/results.{md,csv}
    .venv/bin/python bench/run.py --quick    # fewer rounds and moves, for trying it out
    .venv/bin/python bench/run.py --skip notebooks

Prints every goal with its measured figure and PASS/FAIL. It always exits 0: it is a
measurement, not a test (timings on a shared 2-core machine are noisy).
"""

from __future__ import annotations

import argparse
import csv
import datetime
import os
import platform
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from statistics import geometric_mean

os.environ.setdefault("MPLBACKEND", "Agg")
import torch  # noqa: E402
from kernels import (  # noqa: E402
    COURSE,
    D2L,
    FUSED,
    SOFTMAX_COURSE,
    SOFTMAX_D2L,
    SOFTMAX_PLAIN,
    TORCH_NW,
    TORCH_W,
    Case,
    bench_mha,
    bench_softmax,
)
from notebooks import bench_notebooks  # noqa: E402
from sliders import bench_sliders  # noqa: E402
from timing import paired_ratio, percentile  # noqa: E402

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
CASES = (Case(8, 64), Case(8, 256), Case(8, 256, masked=True), Case(2, 1024))
SOFTMAX_SHAPES = ((64, 128, 256), (8 * 8, 256, 256))
MHA_NAMES = (COURSE, TORCH_W, TORCH_NW, D2L, FUSED)
SOFTMAX_NAMES = (SOFTMAX_COURSE, SOFTMAX_D2L, SOFTMAX_PLAIN)


@dataclass(frozen=True)
class Goal:
    """One goal of the issue: what is measured, the figure, and whether it passes."""

    text: str
    figure: str
    passed: bool


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


def ms(seconds: float) -> str:
    return f"{1000 * seconds:.2f}"


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds and slider moves")
    parser.add_argument(
        "--skip", default="", help="comma-separated sections: mha,softmax,sliders,notebooks"
    )
    parser.add_argument("--out", type=Path, default=HERE / "results", help="path stem of outputs")
    args = parser.parse_args(argv)
    skip = set(filter(None, args.skip.split(",")))
    rounds, moves = (3, 20) if args.quick else (11, 50)
    started = time.perf_counter()
    md: list[str] = [
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

    if "mha" not in skip:
        md += [
            "## Multi-head attention (median ms per call, interleaved rounds)",
            "",
            f"{rounds} rounds each ({min(5, rounds)} at T=1024); a ratio is the median of the"
            " per-round ratios."
            " Same weights in every implementation, outputs checked equal."
            " Forward runs under `no_grad` in eval mode; forward+backward is `out.sum().backward()`"
            " in training mode (dropout 0). nn.MultiheadAttention has `bias=False` like the"
            " course's and returns per-head weights (`average_attn_weights=False`). The fused"
            " core is the course's projections around `F.scaled_dot_product_attention`.",
            "",
            "| shape | pass | course | nn, weights | nn, no weights | d2l | fused SDPA |"
            " course / nn weights | d2l / course | course / fused |",
            "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        vs_torch, vs_d2l = [], []
        for case in CASES:
            for backward in (False, True):
                mode = "fwd+bwd" if backward else "fwd"
                case_rounds = min(5, rounds) if case.tokens >= 1024 else rounds
                t = bench_mha(case, backward, case_rounds)
                med = {name: t[name].median for name in MHA_NAMES}
                r_torch, r_d2l = (
                    paired_ratio(t[COURSE], t[TORCH_W]),
                    paired_ratio(t[D2L], t[COURSE]),
                )
                vs_torch.append((r_torch, f"{case.label} {mode}"))
                vs_d2l.append((r_d2l, f"{case.label} {mode}"))
                cells = " | ".join(ms(med[n]) for n in MHA_NAMES)
                md.append(
                    f"| {case.label} | {mode} | {cells} | {r_torch:.2f} | {r_d2l:.2f} | "
                    f"{paired_ratio(t[COURSE], t[FUSED]):.2f} |"
                )
                for name in MHA_NAMES:
                    rows.append(
                        {
                            "section": "mha",
                            "case": case.label,
                            "mode": mode,
                            "implementation": name,
                            "median_ms": ms(med[name]),
                            "spread": f"{t[name].spread:.2f}",
                        }
                    )
                print(f"mha {case.label} {mode}: " + ", ".join(f"{n} {ms(med[n])} ms" for n in med))
        worst_torch, worst_d2l = max(vs_torch), min(vs_d2l)
        mean_torch = geometric_mean([r for r, _ in vs_torch])
        mean_d2l = geometric_mean([r for r, _ in vs_d2l])
        goals.append(
            Goal(
                "course MultiHeadAttention within 1.25x of nn.MultiheadAttention (weights),"
                " geometric mean over shapes and passes",
                f"{mean_torch:.2f}x (worst {worst_torch[0]:.2f}x, {worst_torch[1]})",
                mean_torch <= 1.25,
            )
        )
        goals.append(
            Goal(
                "course MultiHeadAttention at least 3x faster than d2l's, geometric mean",
                f"{mean_d2l:.2f}x (worst {worst_d2l[0]:.2f}x, {worst_d2l[1]})",
                mean_d2l >= 3.0,
            )
        )
        md.append("")

    if "softmax" not in skip:
        md += [
            "## Masked softmax (median ms per call)",
            "",
            f"{2 * rounds + 1} rounds each. Scores (B, Q, K) with one random valid length per"
            " batch element. d2l's writes into its argument, so it gets its own copy of the"
            " scores (made once).",
            "",
            "| scores | course | d2l | bool mask + softmax | course / d2l | course / bool mask |",
            "|---|---:|---:|---:|---:|---:|",
        ]
        ratios = []
        for shape in SOFTMAX_SHAPES:
            t = bench_softmax(shape, 2 * rounds + 1)  # cheap calls: more rounds, less noise
            med = {name: t[name].median for name in SOFTMAX_NAMES}
            ratio = paired_ratio(t[SOFTMAX_COURSE], t[SOFTMAX_D2L])
            ratios.append((ratio, str(shape)))
            cells = " | ".join(ms(med[n]) for n in SOFTMAX_NAMES)
            plain = paired_ratio(t[SOFTMAX_COURSE], t[SOFTMAX_PLAIN])
            md.append(f"| {shape} | {cells} | {ratio:.2f} | {plain:.2f} |")
            for name in SOFTMAX_NAMES:
                rows.append(
                    {
                        "section": "masked_softmax",
                        "case": str(shape),
                        "mode": "fwd",
                        "implementation": name,
                        "median_ms": ms(med[name]),
                        "spread": f"{t[name].spread:.2f}",
                    }
                )
            print(f"masked_softmax {shape}: " + ", ".join(f"{n} {ms(med[n])} ms" for n in med))
        worst = max(ratios)
        mean = geometric_mean([r for r, _ in ratios])
        goals.append(
            Goal(
                "masked_softmax no slower than d2l's, geometric mean over shapes",
                f"course/d2l {mean:.2f}x (worst {worst[0]:.2f}x, {worst[1]})",
                mean <= 1.0,
            )
        )
        md.append("")

    if "sliders" not in skip:
        md += [
            "## Slider latency (ms from `control.value = x` to the redrawn figure)",
            "",
            f"{moves} moves per view after 5 warm-up moves. *Data*: the figure's data is"
            " recomputed and set on the artists (the goal). *Full*: including the PNG render"
            " in `LiveFigure.redraw` that the browser then shows.",
            "",
            "| view | data median | data p95 | full median | full p95 |",
            "|---|---:|---:|---:|---:|",
        ]
        worst_med, worst_p95 = (0.0, ""), (0.0, "")
        for lat in bench_sliders(moves):
            stats = {
                "data_median_ms": percentile(list(lat.data_ms), 50),
                "data_p95_ms": percentile(list(lat.data_ms), 95),
                "full_median_ms": percentile(list(lat.full_ms), 50),
                "full_p95_ms": percentile(list(lat.full_ms), 95),
            }
            worst_med = max(worst_med, (stats["data_median_ms"], lat.view))
            worst_p95 = max(worst_p95, (stats["data_p95_ms"], lat.view))
            md.append(f"| {lat.view} | " + " | ".join(f"{v:.1f}" for v in stats.values()) + " |")
            for metric, value in stats.items():
                rows.append(
                    {
                        "section": "slider",
                        "case": lat.view,
                        "mode": metric,
                        "implementation": "view",
                        "median_ms": f"{value:.2f}",
                        "spread": "",
                    }
                )
            print(f"slider {lat.view}: " + ", ".join(f"{k} {v:.1f}" for k, v in stats.items()))
        goals.append(
            Goal(
                "every slider: figure data median under 50 ms",
                f"worst {worst_med[0]:.1f} ms ({worst_med[1]})",
                worst_med[0] < 50,
            )
        )
        goals.append(
            Goal(
                "every slider: figure data 95th percentile under 100 ms",
                f"worst {worst_p95[0]:.1f} ms ({worst_p95[1]})",
                worst_p95[0] < 100,
            )
        )
        md.append("")

    if "notebooks" not in skip:
        md += [
            "## Course run time (each notebook in a fresh kernel, nbclient, run in sequence)",
            "",
            "Wall time of `NotebookClient.execute()`: kernel start, every cell, shutdown.",
            "",
            "| notebook | seconds |",
            "|---|---:|",
        ]
        seconds = bench_notebooks(ROOT / "chapters")
        for name, s in seconds.items():
            md.append(f"| {name} | {s:.1f} |")
            rows.append(
                {
                    "section": "notebook",
                    "case": name,
                    "mode": "execute",
                    "implementation": "nbclient",
                    "median_ms": f"{1000 * s:.0f}",
                    "spread": "",
                }
            )
        total = sum(seconds.values())
        slowest = max(seconds, key=seconds.__getitem__)
        md += [f"| **total** | **{total:.1f}** |", ""]
        goals.append(
            Goal(
                "every notebook under 15 s",
                f"slowest {seconds[slowest]:.1f} s ({slowest})",
                seconds[slowest] < 15,
            )
        )
        goals.append(Goal("whole course under 90 s", f"{total:.1f} s", total < 90))

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
        writer = csv.DictWriter(
            f, fieldnames=["section", "case", "mode", "implementation", "median_ms", "spread"]
        )
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
