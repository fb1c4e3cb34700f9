"""Tiny dependency-free SVG line chart with an optional second y axis."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import escape

WIDTH, HEIGHT = 900, 420
LEFT, RIGHT, TOP, BOTTOM = 70, 70, 40, 80


@dataclass
class Series:
    """One line: y values aligned with the chart's x values; None breaks the line."""

    label: str
    values: Sequence[float | None]
    color: str = "#1f77b4"
    dashed: bool = False
    right_axis: bool = False
    step: bool = False  # hold each value until the next one (settings, not measurements)


def nice_ticks(lo: float, hi: float, count: int = 5, integer: bool = False) -> list[float]:
    """Round tick positions (1/2/5 x 10^n steps) covering [lo, hi]."""
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return [0.0]
    if hi <= lo:
        hi = lo + 1.0
    raw = (hi - lo) / max(count, 1)
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 5, 10) if m * mag >= raw)
    if integer:
        step = max(step, 1)
    first = math.floor(lo / step) * step
    ticks = []
    value = first
    while value <= hi + step * 1e-9:
        ticks.append(round(value, 10))
        value += step
    if ticks[-1] < hi:
        ticks.append(round(value, 10))
    return ticks


def _fmt(value: float) -> str:
    return f"{value:g}" if abs(value) < 1e6 else f"{value:.3g}"


def _segments(xs: Sequence[float], ys: Sequence[float | None]) -> list[list[tuple[float, float]]]:
    # A None value (unknown reading) splits the line instead of dropping to zero.
    out: list[list[tuple[float, float]]] = [[]]
    for x, y in zip(xs, ys, strict=False):
        if y is None:
            if out[-1]:
                out.append([])
        else:
            out[-1].append((x, y))
    return [seg for seg in out if seg]


def _steps(seg: list[tuple[float, float]]) -> list[tuple[float, float]]:
    out = seg[:1]
    for (x, y), (_, prev_y) in zip(seg[1:], seg, strict=False):
        out += [(x, prev_y), (x, y)]
    return out


def _bounds(series: list[Series]) -> tuple[float, float]:
    vals = [v for s in series for v in s.values if v is not None]
    if not vals:
        return 0.0, 1.0
    return min(0.0, min(vals)), max(vals) * 1.05 or 1.0


def line_chart(
    xs: Sequence[float],
    series: Sequence[Series],
    *,
    title: str = "",
    x_label: str = "",
    y_label: str = "",
    y2_label: str = "",
) -> str:
    """Render series against xs as a standalone SVG document."""
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    left = [s for s in series if not s.right_axis]
    right = [s for s in series if s.right_axis]
    x_lo, x_hi = (min(xs), max(xs)) if xs else (0.0, 1.0)
    x_ticks = nice_ticks(x_lo, x_hi if x_hi > x_lo else x_lo + 1)
    x_lo, x_hi = x_ticks[0], x_ticks[-1]
    y_ticks = nice_ticks(*_bounds(left))
    whole = all(isinstance(v, int) for s in right for v in s.values if v is not None)
    y2_ticks = nice_ticks(*_bounds(right), integer=whole) if right else []

    def sx(x: float) -> float:
        return LEFT + (x - x_lo) / (x_hi - x_lo) * plot_w

    def sy(y: float, ticks: list[float]) -> float:
        lo, hi = ticks[0], ticks[-1]
        return TOP + plot_h - (y - lo) / ((hi - lo) or 1.0) * plot_h

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif" font-size="12">',
        f'<rect width="{WIDTH}" height="{HEIGHT}" fill="white"/>',
        f'<text x="{WIDTH / 2}" y="22" text-anchor="middle" font-size="15">{escape(title)}</text>',
    ]
    bottom = TOP + plot_h
    for t in x_ticks:
        x = sx(t)
        out.append(f'<line x1="{x:.1f}" y1="{TOP}" x2="{x:.1f}" y2="{bottom}" stroke="#eee"/>')
        out.append(f'<text x="{x:.1f}" y="{bottom + 16}" text-anchor="middle">{_fmt(t)}</text>')
    for t in y_ticks:
        y = sy(t, y_ticks)
        out.append(
            f'<line x1="{LEFT}" y1="{y:.1f}" x2="{LEFT + plot_w}" y2="{y:.1f}" stroke="#eee"/>'
        )
        out.append(f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">{_fmt(t)}</text>')
    for t in y2_ticks:
        y = sy(t, y2_ticks)
        out.append(f'<text x="{LEFT + plot_w + 6}" y="{y + 4:.1f}">{_fmt(t)}</text>')
    out.append(
        f'<rect x="{LEFT}" y="{TOP}" width="{plot_w}" height="{plot_h}" fill="none" stroke="#333"/>'
    )
    out.append(
        f'<text x="{LEFT + plot_w / 2}" y="{bottom + 36}" text-anchor="middle">'
        f"{escape(x_label)}</text>"
    )
    mid = TOP + plot_h / 2
    out.append(
        f'<text x="16" y="{mid}" text-anchor="middle" transform="rotate(-90 16 {mid})">'
        f"{escape(y_label)}</text>"
    )
    if right:
        x2 = WIDTH - 14
        out.append(
            f'<text x="{x2}" y="{mid}" text-anchor="middle" transform="rotate(90 {x2} {mid})">'
            f"{escape(y2_label)}</text>"
        )
    for s in series:
        ticks = y2_ticks if s.right_axis else y_ticks
        dash = ' stroke-dasharray="6 4"' if s.dashed else ""
        for seg in _segments(xs, s.values):
            if s.step:
                seg = _steps(seg)
            pts = " ".join(f"{sx(x):.1f},{sy(y, ticks):.1f}" for x, y in seg)
            style = f'fill="none" stroke="{s.color}" stroke-width="1.8"{dash}'
            out.append(f'<polyline points="{pts}" {style}/>')
    # Legend along the bottom edge so it never covers data.
    lx = LEFT
    for s in series:
        dash = ' stroke-dasharray="6 4"' if s.dashed else ""
        ly = HEIGHT - 16
        out.append(
            f'<line x1="{lx}" y1="{ly - 4}" x2="{lx + 24}" y2="{ly - 4}" stroke="{s.color}" '
            f'stroke-width="2"{dash}/>'
        )
        label = escape(s.label + (" (right axis)" if s.right_axis else ""))
        out.append(f'<text x="{lx + 30}" y="{ly}">{label}</text>')
        lx += 40 + 7 * len(label)
    out.append("</svg>")
    return "\n".join(out) + "\n"


def _time_axis(t: Sequence[float]) -> tuple[list[float], str]:
    span = max(t, default=0)
    div, unit = (3600, "h") if span > 3 * 3600 else (60, "min") if span > 180 else (1, "s")
    return [x / div for x in t], f"elapsed time ({unit})"


def memory_chart_svg(
    t: Sequence[float],
    rss_mb: Sequence[float],
    budget_mb: Sequence[float | None],
    concurrency: Sequence[int | None],
) -> str:
    """RSS over time against the budget, with concurrency on the right axis."""
    xs, x_label = _time_axis(t)
    series = [Series("RSS MB", rss_mb, "#1f77b4")]
    if any(budget_mb):
        series.append(Series("budget MB", budget_mb, "#d62728", dashed=True))
    if any(concurrency):
        series.append(Series("concurrency", concurrency, "#2ca02c", right_axis=True, step=True))
    return line_chart(
        xs, series, title="Memory over time", x_label=x_label, y_label="MB", y2_label="concurrency"
    )


def memory_chart_png(
    t: Sequence[float],
    rss_mb: Sequence[float],
    budget_mb: Sequence[float | None],
    concurrency: Sequence[int | None],
    path: str | Path,
) -> bool:
    """Raster copy of the same chart when matplotlib happens to be installed."""
    try:
        from matplotlib.figure import Figure  # no pyplot: no global backend state
    except ImportError:
        return False
    xs, x_label = _time_axis(t)
    fig = Figure(figsize=(9, 4.2))
    ax = fig.add_subplot()
    ax.plot(xs, rss_mb, label="RSS MB")
    ax.plot(xs, [math.nan if b is None else b for b in budget_mb], "r--", label="budget MB")
    ax.set_xlabel(x_label)
    ax.set_ylabel("MB")
    ax2 = ax.twinx()
    ax2.plot(xs, [math.nan if c is None else c for c in concurrency], "g-", label="concurrency")
    ax2.set_ylabel("concurrency")
    fig.legend(loc="lower center", ncols=3)
    fig.savefig(path)
    return True
