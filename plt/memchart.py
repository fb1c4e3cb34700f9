"""The memory chart of a job: ``python -m plt.memchart JOBDIR [-o FILE]``.

Draws every run of the job from ``<JOBDIR>/memory-samples.jsonl`` with
matplotlib: RSS and the budget on the left axis (MiB), the concurrency the
governor chose on its own right axis, each run's start marked and labelled.
Runs are laid end to end, so the x-axis is the job's crawl time (the hours
between a stop and its resume are left out).

The crawl never imports this module: it runs it as a child process when it
closes (plt.extensions.memreport), so matplotlib's memory is never the crawl's.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from itertools import pairwise
from pathlib import Path
from typing import Any

import matplotlib
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from plt import memsamples

RSS_COLOR, BUDGET_COLOR, CONCURRENCY_COLOR, RUN_COLOR = "#1f77b4", "#d62728", "#2ca02c", "#555555"


class ChartError(Exception):
    """Nothing to draw, or nowhere to write it; the message says which."""


def time_unit(span_s: float) -> tuple[float, str]:
    """Divisor and name of the unit that reads best for a span of seconds."""
    if span_s > 3 * 3600:
        return 3600.0, "h"
    if span_s > 180:
        return 60.0, "min"
    return 1.0, "s"


def _label(values: Sequence[str | None]) -> str:
    seen = list(dict.fromkeys(v for v in values if v))
    return ", ".join(seen) or "?"


def _nan(values: Sequence[float | None]) -> list[float]:
    # None (not known then) breaks the line instead of dropping it to zero.
    return [float("nan") if v is None else float(v) for v in values]


def concurrency_height(memory_ticks: Sequence[float], memory_top: float) -> float:
    """Where the top concurrency goes, as a fraction of the axis height.

    Halfway between two memory ticks (the pair nearest 70 %), so the highest
    concurrency step never lines up with a memory level it could be read as.
    """
    fractions = sorted(t / memory_top for t in memory_ticks if 0 <= t <= memory_top)
    mids = [(a + b) / 2 for a, b in pairwise(fractions)]
    return min(mids, key=lambda m: abs(m - 0.7), default=0.7)


def figure(runs: list[dict[str, Any]], job: str) -> Figure:
    """The chart of the job's runs, oldest first."""
    if not runs:
        raise ChartError(f"job {job} has no memory samples yet")
    offsets, start = [], 0.0
    for run in runs:
        offsets.append(start)
        start += max(run["t"], default=0.0)
    span = start
    div, unit = time_unit(span)
    profile = _label([run.get("profile") for run in runs])

    fig = Figure(figsize=(10, 4.8), layout="constrained")
    ax = fig.add_subplot()
    ax2 = ax.twinx()
    count = f"{len(runs)} run" + ("s" if len(runs) > 1 else "")
    ax.set_title(f"Memory of job {job} (profile {profile}), {count}")
    top = 1.0
    top_concurrency = 1
    for i, (run, offset) in enumerate(zip(runs, offsets, strict=True)):
        xs = [(offset + t) / div for t in run["t"]]
        first = i == 0
        ax.plot(xs, run["rss_mb"], color=RSS_COLOR, lw=1.4, label="RSS (MiB)" if first else None)
        budget = _nan(run["budget_mb"])
        ax.step(
            xs, budget, where="post", color=BUDGET_COLOR, ls="--", lw=1.2,
            label="budget (MiB)" if first else None,
        )  # fmt: skip
        ax2.step(
            xs, _nan(run["concurrency"]), where="post", color=CONCURRENCY_COLOR, lw=1.2,
            label="concurrency (right axis)" if first else None,
        )  # fmt: skip
        top = max([top, *run["rss_mb"], *(b for b in run["budget_mb"] if b is not None)])
        top_concurrency = max([top_concurrency, *(c for c in run["concurrency"] if c)])
        x0 = offset / div
        if not first:
            ax.axvline(x0, color=RUN_COLOR, ls=":", lw=1.2, gid=f"run-{run['run']}")
        ended = run.get("reason") or "?"
        ax.annotate(
            f"run {run['run']} ({ended})",
            (x0, 1.0),
            xycoords=("data", "axes fraction"),
            xytext=(3, -3),
            textcoords="offset points",
            va="top",
            fontsize=8,
            color=RUN_COLOR,
            gid=f"run-label-{run['run']}",
        )
    ax.set_xlim(0, span / div if span > 0 else 1)
    ax.set_ylim(0, top * 1.12)
    ax.set_xlabel(f"crawl time ({unit}), runs laid end to end")
    ax.set_ylabel("memory (MiB)")
    # Vertical gridlines only: a horizontal one would make a concurrency step
    # that happens to sit on it read as a memory level. The budget line is
    # the memory reference; the right axis has its own ticks and colour.
    ax.grid(True, axis="x", color="#e6e6e6")
    ax.grid(False, axis="y")
    ax2.grid(False)
    ax2.set_ylim(0, top_concurrency / concurrency_height(ax.get_yticks(), top * 1.12))
    ax2.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax2.set_ylabel("concurrency (requests in flight)", color=CONCURRENCY_COLOR)
    ax2.tick_params(axis="y", colors=CONCURRENCY_COLOR)
    ax2.spines["right"].set_color(CONCURRENCY_COLOR)
    handles = ax.get_legend_handles_labels()
    handles2 = ax2.get_legend_handles_labels()
    fig.legend(
        handles[0] + handles2[0], handles[1] + handles2[1], loc="outside lower center", ncols=3
    )
    return fig


def draw(jobdir: str | Path, out: str | Path | None = None) -> Path:
    """Write the job's chart (default ``<JOBDIR>/memory.svg``); returns its path."""
    jobdir = Path(jobdir)
    path = Path(out) if out else jobdir / memsamples.CHART_FILE
    try:
        runs = memsamples.read_runs(jobdir)
    except OSError as exc:
        raise ChartError(f"cannot read the memory samples of {jobdir}: {exc}") from None
    fig = figure(runs, jobdir.resolve().name)
    # Text stays text (searchable, smaller); fixed ids and no date: same data, same file.
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": "plt"}):
        try:
            fig.savefig(path, metadata={"Date": None} if path.suffix == ".svg" else None)
        except OSError as exc:
            raise ChartError(f"cannot write {path}: {exc}") from None
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m plt.memchart", description="Draw the memory chart of a job directory."
    )
    parser.add_argument("jobdir", help="the job directory (holds memory-samples.jsonl)")
    parser.add_argument("-o", "--output", help="file to write; .svg (default) or .png")
    args = parser.parse_args(argv)
    try:
        path = draw(args.jobdir, args.output)
    except ChartError as exc:
        print(f"plt.memchart: {exc}", file=sys.stderr)
        return 1
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
