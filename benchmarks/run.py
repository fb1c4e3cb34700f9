"""Benchmark: the old spider (baseline) against PLT, on one demo retailer, one machine.

    python benchmarks/run.py --products 2000 --repeat 3 --json bench.json

One demo retailer (plt.shop, ``--products N``, other options default) serves
every run. The two crawlers take turns (baseline, PLT, baseline, PLT, ...),
each in its own process under ``/usr/bin/time -v``. The report gives the median
of each figure and the ratio PLT/baseline, then checks each crawl's items
against the retailer's ground truth.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    # Run as a script (python benchmarks/run.py): make the project importable.
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import (
    ROOT,
    add_common_arguments,
    baseline_argv,
    baseline_env,
    clean_up,
    count_lines,
    fmt,
    ground_truth,
    last_run_stats,
    log,
    log_stats,
    memory_report,
    plt_argv,
    plt_env,
    prepare_workdir,
    render_table,
    run_measured,
    verify,
)

KINDS = ("baseline", "plt")
LABELS = {"baseline": "baseline", "plt": "PLT"}
DEFAULT_PRODUCTS = 2000
DEFAULT_PROFILE = "1gb"
DEFAULT_CONCURRENCY = 16
# Targets for PLT against the baseline.
TARGET_RSS_MIB = 128
TARGET_SPEEDUP = 2.0

# (key in a run's figures, row label, digits)
FIGURES = (
    ("items", "items", 0),
    ("wall_s", "wall s", 1),
    ("cpu_s", "CPU s (user+sys)", 1),
    ("max_rss_mib", "peak RSS MiB", 1),
    ("items_per_cpu_s", "items / CPU s", 1),
)
CHECKS = ("missing", "extra", "repeated", "field_differences")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="benchmarks/run.py",
        description="Crawl one demo retailer with the old spider and with PLT; compare.",
    )
    add_common_arguments(parser, DEFAULT_PRODUCTS)
    parser.add_argument(
        "--profile",
        default=DEFAULT_PROFILE,
        help="PLT memory profile, -s PROFILE=... (default %(default)s)",
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="runs of each crawler, alternating; the report gives medians (default 1)",
    )
    parser.add_argument("--only", choices=KINDS, help="run one crawler only")
    parser.add_argument(
        "--concurrency",
        type=int,
        default=DEFAULT_CONCURRENCY,
        help="CONCURRENT_REQUESTS (and _PER_DOMAIN) of both crawlers (default %(default)s)",
    )
    return parser


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.products < 1:
        parser.error("--products must be at least 1")
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    if args.concurrency < 1:
        parser.error("--concurrency must be at least 1")
    return args


def schedule(repeat: int, only: str | None = None) -> list[tuple[str, int]]:
    """(kind, round) in run order: baseline, PLT, baseline, PLT, ..."""
    kinds = [only] if only else list(KINDS)
    return [(kind, i) for i in range(1, repeat + 1) for kind in kinds]


def run_one(
    kind: str,
    index: int,
    shop_url: str,
    args: argparse.Namespace,
    workdir: Path,
    truth: list[dict[str, Any]],
    label: str,
) -> dict[str, Any]:
    rundir = workdir / f"{kind}-{index}"
    if rundir.exists():
        shutil.rmtree(rundir)  # a job directory left by an earlier run would resume
    concurrency = [
        f"CONCURRENT_REQUESTS={args.concurrency}",
        f"CONCURRENT_REQUESTS_PER_DOMAIN={args.concurrency}",
    ]
    if kind == "plt":
        items_path = rundir / "items.jsonl"
        argv = plt_argv(shop_url, rundir, [f"PROFILE={args.profile}", *concurrency])
        cwd, env = ROOT, plt_env()
    else:
        items_path = rundir / "items.jsonl"
        # The defaults of old_settings.py are 16 and 16; only pass a different figure.
        extra = concurrency if args.concurrency != DEFAULT_CONCURRENCY else []
        argv = baseline_argv(shop_url, items_path, extra)
        rundir.mkdir(parents=True)
        cwd, env = rundir, baseline_env()
    log(f"{label}: starting")
    measured = run_measured(
        argv,
        cwd=cwd,
        env=env,
        rundir=rundir,
        label=label,
        items_path=items_path,
        progress_interval=args.progress_interval,
    )
    t = measured.time
    stats = last_run_stats(rundir) if kind == "plt" else log_stats(Path(measured.log_path))
    items = count_lines(items_path)
    run = {
        "kind": kind,
        "round": index,
        "items": items,
        "wall_s": t.wall_s,
        "cpu_s": t.cpu_s,
        "user_s": t.user_s,
        "sys_s": t.sys_s,
        "max_rss_mib": t.max_rss_mib,
        "items_per_cpu_s": items / t.cpu_s if t.cpu_s > 0 else None,
        "returncode": measured.returncode,
        "finish_reason": stats.get("finish_reason"),
        "verify": verify(items_path, truth),
        "measured": measured.as_dict(),
        "stats": stats,
    }
    if kind == "plt":
        run["memory_report"] = memory_report(rundir)
    v = run["verify"]
    log(
        f"{label}: {run['finish_reason']} (exit {measured.returncode}), {items:,} items, "
        f"wall {t.wall_s:.1f} s, CPU {t.cpu_s:.1f} s, peak RSS {t.max_rss_mib:.1f} MiB; "
        f"{v['missing']} missing, {v['extra']} extra, {v['repeated']} repeated"
    )
    if measured.returncode != 0:
        log(f"{label}: exit status {measured.returncode}, see {measured.log_path}")
    return run


def medians(runs: list[dict[str, Any]]) -> dict[str, float | None]:
    """Median of each figure over ``runs``; verification counts included."""
    out: dict[str, float | None] = {}
    for key, _, _ in FIGURES:
        values = [r[key] for r in runs if r.get(key) is not None]
        out[key] = statistics.median(values) if values else None
    for key in CHECKS:
        values = [r["verify"][key] for r in runs]
        out[key] = statistics.median(values) if values else None
    # Where the baseline's lost products went: its stock requests to the one dummy URL.
    filtered = [r["stats"].get("dupefilter/filtered", 0) for r in runs]
    out["dupefilter_filtered"] = statistics.median(filtered) if filtered else None
    return out


def ratio(plt: float | None, baseline: float | None) -> float | None:
    if plt is None or not baseline:
        return None
    return plt / baseline


def ratios(summary: dict[str, dict[str, float | None]]) -> dict[str, float | None]:
    """PLT / baseline for each figure (needs both crawlers' medians)."""
    if not {"plt", "baseline"} <= summary.keys():
        return {}
    return {key: ratio(summary["plt"][key], summary["baseline"][key]) for key, _, _ in FIGURES}


def figures_table(summary: dict[str, dict[str, float | None]]) -> str:
    kinds = [k for k in KINDS if k in summary]
    both = ratios(summary)
    header = ["", *(LABELS[k] for k in kinds)] + (["PLT/baseline"] if both else [])
    rows = []
    for key, label, digits in FIGURES:
        row = [label, *(fmt(summary[k][key], digits) for k in kinds)]
        if both:
            r = both[key]
            row.append("-" if r is None else f"{r:.2f}x")
        rows.append(row)
    return render_table(header, rows)


def checks_table(summary: dict[str, dict[str, float | None]], expected: int) -> str:
    kinds = [k for k in KINDS if k in summary]
    header = [f"vs ground truth ({expected:,} products)", *(LABELS[k] for k in kinds)]
    labels = {
        "field_differences": "field differences",
        "dupefilter_filtered": "requests dropped as duplicates",
    }
    rows = [
        [labels.get(key, key), *(fmt(summary[k][key], 0) for k in kinds)]
        for key in (*CHECKS, "dupefilter_filtered")
    ]
    return render_table(header, rows)


def runs_table(runs: list[dict[str, Any]]) -> str:
    header = ["run", "finish", "items", "wall s", "CPU s", "peak RSS MiB", "items/CPU s"]
    rows = [
        [
            f"{LABELS[r['kind']]} #{r['round']}",
            r["finish_reason"] or f"exit {r['returncode']}",
            fmt(r["items"], 0),
            fmt(r["wall_s"]),
            fmt(r["cpu_s"]),
            fmt(r["max_rss_mib"]),
            fmt(r["items_per_cpu_s"]),
        ]
        for r in runs
    ]
    return render_table(header, rows)


def targets(summary: dict[str, dict[str, float | None]]) -> list[str]:
    lines = []
    if "plt" in summary and (rss := summary["plt"]["max_rss_mib"]) is not None:
        ok = "met" if rss <= TARGET_RSS_MIB else f"missed by {rss - TARGET_RSS_MIB:.1f} MiB"
        lines.append(f"PLT peak RSS {rss:.1f} MiB, target <= {TARGET_RSS_MIB} MiB: {ok}")
    speedup = ratios(summary).get("items_per_cpu_s")
    if speedup is not None:
        ok = "met" if speedup >= TARGET_SPEEDUP else f"missed ({speedup / TARGET_SPEEDUP:.0%})"
        lines.append(
            f"PLT items per CPU-second {speedup:.2f}x the baseline's, "
            f"target >= {TARGET_SPEEDUP:g}x: {ok}"
        )
    return lines


def report(result: dict[str, Any]) -> str:
    cfg = result["config"]
    summary = result["medians"]
    n = {k: sum(1 for r in result["runs"] if r["kind"] == k) for k in summary}
    runs_text = ", ".join(f"{LABELS[k]} x{n[k]}" for k in KINDS if k in n)
    applied = {r["stats"].get("plt/profile") for r in result["runs"] if r["kind"] == "plt"}
    profile = cfg["profile"]
    if applied and applied != {profile}:
        profile += " (NOT applied: the crawl's plt/profile stat is missing or differs)"
    parts = [
        f"Demo retailer: {cfg['products']:,} products at {cfg['shop_url']}; "
        f"PLT profile {profile}; CONCURRENT_REQUESTS {cfg['concurrency']} for both; "
        f"runs: {runs_text} (medians)",
        "",
        figures_table(summary),
        "",
        checks_table(summary, result["expected_items"]),
        "",
        "Each run, in order:",
        runs_table(result["runs"]),
    ]
    if lines := targets(summary):
        parts += ["", *lines]
    parts += [
        "",
        "Wall seconds depend on whatever else the machine runs; CPU seconds and peak RSS "
        "(from /usr/bin/time -v) are the figures to compare.",
    ]
    return "\n".join(parts)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    from plt.shop.catalog import ShopConfig
    from plt.shop.process import ShopProcess

    workdir, own_workdir = prepare_workdir(args.workdir, "plt-bench-")
    made: list[Path] = []
    runs: list[dict[str, Any]] = []
    try:
        with ShopProcess(ShopConfig(products=args.products)) as shop:
            truth = ground_truth(shop, workdir, made)
            order = schedule(args.repeat, args.only)
            for n, (kind, index) in enumerate(order, 1):
                label = f"[{n}/{len(order)}] {LABELS[kind]} #{index}"
                made.append(workdir / f"{kind}-{index}")
                runs.append(run_one(kind, index, shop.url, args, workdir, truth, label))
            shop_stats = shop.stats()
        summary = {
            kind: medians([r for r in runs if r["kind"] == kind])
            for kind in KINDS
            if any(r["kind"] == kind for r in runs)
        }
        result = {
            "config": {
                "products": args.products,
                "profile": args.profile,
                "repeat": args.repeat,
                "only": args.only,
                "concurrency": args.concurrency,
                "shop_url": shop.url,
                "python": sys.version.split()[0],
            },
            "expected_items": len(truth),
            "shop_stats": shop_stats,
            "runs": runs,
            "medians": summary,
            "ratios": ratios(summary),
        }
        print(report(result))
        if args.json:
            args.json.write_text(json.dumps(result, indent=1, default=str) + "\n")
            log(f"all runs written to {args.json}")
    finally:
        clean_up(workdir, made, keep=args.keep, own_workdir=own_workdir)
    failed = [r for r in runs if r["returncode"] != 0]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
