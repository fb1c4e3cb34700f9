"""The memory report in words: the periodic ``Memory: …`` line and memory-report.txt.

Both are made from the plain dicts plt.extensions.memreport builds (a snapshot,
a report), so they are checked here without a crawler.
"""

from __future__ import annotations

from typing import Any


def fmt_bytes(n: float | None) -> str:
    if n is None:
        return "?"
    if abs(n) < 1024:
        return f"{n:,.0f} B"
    for unit in ("KiB", "MiB", "GiB"):
        n /= 1024
        if abs(n) < 1024 or unit == "GiB":
            break
    return f"{n:,.1f} {unit}"


def status_line(snap: dict[str, Any]) -> str:
    """One snapshot: RSS, concurrency, the backlogs that hold memory, bytes."""
    budget = f"{snap['budget_mb']:,.0f}" if snap["budget_mb"] else "none"
    parts = [
        f"RSS {snap['rss_mb']:,.0f} MiB (peak {snap['peak_rss_mb']:,.0f}, budget {budget})",
        f"concurrency {snap['concurrency']}",
    ]
    eng = snap["engine"]
    if "scraper_queued" in eng:
        parts.append(
            f"scraper {eng['scraper_queued']} queued + {eng['scraper_active']} active "
            f"({fmt_bytes(eng['scraper_bytes'])})"
        )
    if "downloader_active" in eng:
        parts.append(f"downloader {eng['downloader_active']} active")
    if "scheduler" in eng or "scheduler_queues" in eng:
        queues = ", ".join(f"{k} {v:,}" for k, v in eng.get("scheduler_queues", {}).items())
        total = f"{eng['scheduler']:,}" if "scheduler" in eng else "?"
        parts.append(f"scheduler {total}" + (f" ({queues})" if queues else ""))
    if snap["pending_items"] is not None:
        parts.append(f"pending items {snap['pending_items']:,}")
    if snap["bytes"]:
        parts.append("bytes " + ", ".join(f"{k} {fmt_bytes(v)}" for k, v in snap["bytes"].items()))
    return "; ".join(parts)


def render_text(report: dict[str, Any]) -> str:
    """memory-report.txt: the run's report for a reader."""
    pending = report["pending_items"]
    lines = [
        f"Memory report (close reason: {report['reason']}, {report['elapsed_s']:,.0f} s)",
        "",
        f"RSS at close     {report['rss_mb']:,.1f} MiB",
        f"peak RSS sampled {report['peak_rss_mb']:,.1f} MiB",
        f"peak RSS kernel  {report['ru_maxrss_mb'] or '?'} MiB (ru_maxrss)",
        f"budget           {report['budget_mb'] or 'none'} MiB",
        f"concurrency      {report['concurrency']}",
        f"pending items    {'-' if pending is None else pending}",
        "",
        "Bytes:",
        *(f"  {k:<16} {fmt_bytes(v)}" for k, v in report["bytes"].items()),
        "",
        "Engine at close / max seen:",
    ]
    now, peak = report["engine"], report["engine_max"]
    for key in sorted(set(now) | set(peak)):
        lines.append(f"  {key:<20} {now.get(key, '-')!s:>12} / {peak.get(key, '-')}")
    lines += ["", f"  {'live object type':<40} {'count':>6} {'oldest':>8}  body bytes"]
    for r in report["live_objects"]:
        age, size = r["oldest_age_s"], fmt_bytes(r["body_bytes"])
        lines.append(f"  {r['type']:<40} {r['count']:>6} {age:>7.0f}s  {size}")
    samples = report["samples"]
    lines += ["", f"{samples['count']} RSS samples, one per {samples['interval_s']:g} s"]
    return "\n".join(lines) + "\n"
