"""Benchmark: the CPU cost of a change, PLT at two git revisions on one demo retailer.

    python benchmarks/revisions.py --before 5c3887d --after main --products 2000 --repeat 3

Each revision is checked out with ``git worktree add --detach`` into a temporary
folder (removed at exit, Ctrl-C included). One demo retailer from this tree's
plt.shop (``--products N``, other options default) serves every crawl. The
revisions take turns (before, after, before, after, ...), each crawl ``scrapy
crawl product`` in its own process under ``/usr/bin/time -v``, with cwd and
PYTHONPATH at that revision's worktree, this Python, a fresh JOBDIR and the
same settings. The report gives the median of each figure per revision and the
ratio after/before, then every crawl with its exit status and whether its items
equal the retailer's ground truth.
"""

from __future__ import annotations

import argparse
import json
import shutil
import signal
import statistics
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    # Run as a script (python benchmarks/revisions.py): make the project importable.
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import (
    add_common_arguments,
    clean_up,
    count_lines,
    fmt,
    ground_truth,
    last_run_stats,
    log,
    plt_argv,
    prepare_workdir,
    render_table,
    run_measured,
    verify,
)
from benchmarks.worktree import Revision, RevisionError, crawl_env, worktrees

NAMES = ("before", "after")
DEFAULT_PRODUCTS = 2000
DEFAULT_PROFILE = "1gb"
DEFAULT_CONCURRENCY = 16
DEFAULT_TIMEOUT_S = 3600.0
# (key in a run's figures, row label, digits)
FIGURES = (
    ("items", "items", 0),
    ("wall_s", "wall s", 1),
    ("cpu_s", "CPU s (user+sys)", 1),
    ("max_rss_mib", "peak RSS MiB", 1),
    ("items_per_cpu_s", "items / CPU s", 1),
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="benchmarks/revisions.py",
        description="Crawl one demo retailer with PLT at two git revisions, alternating; "
        "compare CPU, memory and items.",
    )
    parser.add_argument("--before", required=True, metavar="REV", help="the revision to compare")
    parser.add_argument("--after", required=True, metavar="REV", help="the changed revision")
    add_common_arguments(parser, DEFAULT_PRODUCTS)
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        metavar="K",
        help="crawls of each revision, alternating; the report gives medians (default 1)",
    )
    parser.add_argument(
        "--profile",
        default=DEFAULT_PROFILE,
        help="memory profile of both, -s PROFILE=... (default %(default)s)",
    )
    parser.add_argument(
        "--concurrency",
        type=int,
        default=DEFAULT_CONCURRENCY,
        help="CONCURRENT_REQUESTS (and _PER_DOMAIN) of both (default %(default)s)",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_TIMEOUT_S,
        metavar="S",
        help="stop a crawl after S seconds (default %(default)g)",
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
    if args.timeout <= 0:
        parser.error("--timeout must be positive")
    return args


def schedule(repeat: int) -> list[tuple[str, int]]:
    """(revision, round) in run order: before, after, before, after, ..."""
    return [(name, i) for i in range(1, repeat + 1) for name in NAMES]


def crawl_settings(args: argparse.Namespace) -> list[str]:
    """The settings both revisions crawl with (plt_argv adds SHOP_URL, JOBDIR, progress)."""
    return [
        f"PROFILE={args.profile}",
        f"CONCURRENT_REQUESTS={args.concurrency}",
        f"CONCURRENT_REQUESTS_PER_DOMAIN={args.concurrency}",
    ]


# -- crawls ----------------------------------------------------------------------


def run_one(
    rev: Revision,
    index: int,
    shop_url: str,
    args: argparse.Namespace,
    workdir: Path,
    truth: list[dict[str, Any]],
    label: str,
) -> dict[str, Any]:
    jobdir = workdir / f"{rev.name}-{index}"
    if jobdir.exists():
        shutil.rmtree(jobdir)  # a job directory left by an earlier run would resume
    items_path = jobdir / "items.jsonl"
    log(f"{label}: starting")
    measured = run_measured(
        plt_argv(shop_url, jobdir, crawl_settings(args)),
        cwd=rev.path,
        env=crawl_env(rev.path),
        rundir=jobdir,
        label=label,
        items_path=items_path,
        progress_interval=args.progress_interval,
        timeout=args.timeout,
    )
    t = measured.time
    stats = last_run_stats(jobdir)
    items = count_lines(items_path)
    checked = verify(items_path, truth)
    run = {
        "revision": rev.name,
        "sha": rev.sha,
        "round": index,
        "cwd": str(rev.path),
        "returncode": measured.returncode,
        "finish_reason": stats.get("finish_reason"),
        "profile": stats.get("plt/profile"),
        "items": items,
        "exact": checked["exact"],
        "wall_s": t.wall_s,
        "cpu_s": t.cpu_s,
        "user_s": t.user_s,
        "sys_s": t.sys_s,
        "max_rss_mib": t.max_rss_mib,
        "items_per_cpu_s": items / t.cpu_s if t.cpu_s > 0 else None,
        "verify": checked,
        "measured": measured.as_dict(),
        "stats": stats,
    }
    log(
        f"{label}: exit {measured.returncode}, {run['finish_reason']}, {items:,} items "
        f"({'exact' if checked['exact'] else 'NOT exact'}), wall {t.wall_s:.1f} s, "
        f"CPU {t.cpu_s:.1f} s, peak RSS {t.max_rss_mib:.1f} MiB"
    )
    return run


def medians(runs: list[dict[str, Any]]) -> dict[str, float | None]:
    out: dict[str, float | None] = {}
    for key, _, _ in FIGURES:
        values = [r[key] for r in runs if r.get(key) is not None]
        out[key] = statistics.median(values) if values else None
    return out


def ratios(summary: dict[str, dict[str, float | None]]) -> dict[str, float | None]:
    """after / before for each figure."""
    out: dict[str, float | None] = {}
    for key, _, _ in FIGURES:
        before, after = summary["before"][key], summary["after"][key]
        out[key] = after / before if before and after is not None else None
    return out


def failures(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Crawls that exited non-zero or whose items are not the ground truth."""
    return [r for r in runs if r["returncode"] != 0 or not r["exact"]]


# -- report ----------------------------------------------------------------------


def figures_table(result: dict[str, Any]) -> str:
    revs, summary, both = result["revisions"], result["medians"], result["ratios"]
    header = ["", *(f"{n} {revs[n]['sha'][:7]}" for n in NAMES), "after/before"]
    rows = []
    for key, label, digits in FIGURES:
        r = "-" if both[key] is None else f"{both[key]:.3f}"
        rows.append([label, *(fmt(summary[n][key], digits) for n in NAMES), r])
    return render_table(header, rows)


def runs_table(runs: list[dict[str, Any]]) -> str:
    header = ["crawl", "exit", "finish", "items", "exact", "wall s", "CPU s", "peak RSS MiB"]
    header.append("items/CPU s")
    rows = [
        [
            f"{r['revision']} #{r['round']}",
            r["returncode"],
            r["finish_reason"] or "-",
            fmt(r["items"], 0),
            "yes" if r["exact"] else "NO",
            fmt(r["wall_s"]),
            fmt(r["cpu_s"]),
            fmt(r["max_rss_mib"]),
            fmt(r["items_per_cpu_s"]),
        ]
        for r in runs
    ]
    return render_table(header, rows)


def report(result: dict[str, Any]) -> str:
    cfg, revs = result["config"], result["revisions"]
    parts = [f"{n}: {revs[n]['given']} = {revs[n]['sha'][:12]} {revs[n]['subject']}" for n in NAMES]
    parts += [
        f"Demo retailer: {cfg['products']:,} products at {cfg['shop_url']}; both with "
        f"PROFILE={cfg['profile']}, CONCURRENT_REQUESTS {cfg['concurrency']}; "
        f"{cfg['repeat']} crawl(s) each, alternating (medians)",
        "",
        figures_table(result),
        "",
        "Each crawl, in order:",
        runs_table(result["runs"]),
        "",
    ]
    speedup = result["ratios"]["items_per_cpu_s"]
    if speedup is not None:
        parts.append(f"items per CPU-second, after/before: {speedup:.3f}")
    if off := [r for r in result["runs"] if r["profile"] != cfg["profile"]]:
        names = ", ".join(f"{r['revision']} #{r['round']}" for r in off)
        parts.append(f"PROFILE={cfg['profile']} NOT applied (plt/profile stat) in: {names}")
    bad = failures(result["runs"])
    if bad:
        names = ", ".join(f"{r['revision']} #{r['round']}" for r in bad)
        parts.append(f"NOT all crawls exact with exit 0: {names}; their figures are in the medians")
    else:
        parts.append(f"every crawl exited 0 with exactly the {result['expected_items']:,} items")
    parts.append(
        "Wall seconds depend on whatever else the machine runs; compare CPU seconds and "
        "items per CPU-second (from /usr/bin/time -v)."
    )
    return "\n".join(parts)


def measure(args: argparse.Namespace) -> dict[str, Any]:
    """Check out both revisions, start the retailer, run every crawl; the full result."""
    from plt.shop.catalog import ShopConfig
    from plt.shop.process import ShopProcess

    workdir, own_workdir = prepare_workdir(args.workdir, "plt-revisions-")
    made: list[Path] = []
    runs: list[dict[str, Any]] = []
    try:
        with (
            worktrees({"before": args.before, "after": args.after}) as revs,
            ShopProcess(ShopConfig(products=args.products)) as shop,
        ):
            truth = ground_truth(shop, workdir, made)
            order = schedule(args.repeat)
            for n, (name, index) in enumerate(order, 1):
                label = f"[{n}/{len(order)}] {revs[name].label} #{index}"
                made.append(workdir / f"{name}-{index}")
                runs.append(run_one(revs[name], index, shop.url, args, workdir, truth, label))
            shop_url = shop.url
            try:
                shop_stats = shop.stats()
            except OSError as exc:  # the retailer died: the crawls' exit statuses say so
                log(f"demo retailer stats unavailable: {exc}")
                shop_stats = None
    finally:
        clean_up(workdir, made, keep=args.keep, own_workdir=own_workdir)
    summary = {name: medians([r for r in runs if r["revision"] == name]) for name in NAMES}
    return {
        "config": {
            "products": args.products,
            "profile": args.profile,
            "concurrency": args.concurrency,
            "repeat": args.repeat,
            "settings": crawl_settings(args),
            "shop_url": shop_url,
            "python": sys.executable,
            "python_version": sys.version.split()[0],
        },
        "revisions": {
            n: {"given": r.given, "sha": r.sha, "subject": r.subject} for n, r in revs.items()
        },
        "expected_items": len(truth),
        "shop_stats": shop_stats,
        "runs": runs,
        "medians": summary,
        "ratios": ratios(summary),
        "all_exact": not failures(runs),
    }


def main(argv: Sequence[str] | None = None) -> int:
    """0: every crawl exact with exit 0; 1: one was not; 2: a revision or the retailer failed."""
    args = parse_args(argv)
    from plt.shop.process import ShopProcessError

    # SIGTERM as Ctrl-C: the worktrees, the retailer and the job directories go either way.
    previous = signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        result = measure(args)
    except (RevisionError, ShopProcessError) as exc:
        print(f"benchmarks/revisions.py: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("benchmarks/revisions.py: interrupted, nothing measured", file=sys.stderr)
        return 130
    finally:
        signal.signal(signal.SIGTERM, previous)
    print(report(result))
    if args.json:
        args.json.write_text(json.dumps(result, indent=1, default=str) + "\n")
        log(f"all crawls written to {args.json}")
    return 1 if failures(result["runs"]) else 0


if __name__ == "__main__":
    sys.exit(main())
