"""PLT under each memory profile, and the memory governor under pressure.

    python benchmarks/profiles.py --products 20103 --json profiles.json

One demo retailer serves every run. Each profile (``-s PROFILE=256mb`` ...) is
crawled at its ceiling, PLT_MAX_CONCURRENT_REQUESTS, given explicitly as
CONCURRENT_REQUESTS and CONCURRENT_REQUESTS_PER_DOMAIN (a profile itself only
caps them), under ``/usr/bin/time -v``; the
report puts each run's peak RSS against the profile's budget
(MEMUSAGE_LIMIT_MB), with the finish reason, the items against the ground
truth, the governor's stats (``plt/memory/*`` in ``<JOBDIR>/runs.jsonl``) and
what the memory report (``<JOBDIR>/memory-report.json``) saw.

Then the governor under pressure: a budget too small for the concurrency
(MEMUSAGE_LIMIT_MB=128 with CONCURRENT_REQUESTS=64 by default), once with the
governor on, where the crawl should finish, and once with it off
(PLT_GOVERNOR_ENABLED=0), where Scrapy's MemoryUsage should stop it with
``memusage_exceeded``.

Why 128 MiB: PLT trims product pages as they arrive, so at 64 concurrent
requests it peaks at about 141 MiB on 20,103 products. 160 MiB is not too
small for that, and with it both runs finish. Below about 116 MiB the
first second's burst (a listing page's 48 products at once, before the
governor's first reading) already crosses the limit, with or without the
governor.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    # Run as a script (python benchmarks/profiles.py): make the project importable.
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import (
    ROOT,
    add_common_arguments,
    clean_up,
    count_lines,
    effective_concurrency,
    fmt,
    ground_truth,
    last_run_stats,
    log,
    memory_report,
    plt_argv,
    plt_env,
    prepare_workdir,
    render_table,
    run_measured,
    verify,
)

DEFAULT_PROFILES = ("256mb", "512mb", "1gb", "2gb")
GOVERNOR_STATS = "plt/memory/"
PRESSURE_PROFILE = "1gb"


@dataclass
class Case:
    """One crawl of the report: a name, its -s settings, its budget and concurrency."""

    name: str
    settings: list[str]
    budget_mb: float | None
    concurrency: int | None
    expect: str = "finished"
    notes: list[str] = field(default_factory=list)


def profile_settings(name: str) -> dict[str, Any]:
    """The settings of profile ``name``, read with PLT's own loader."""
    try:
        from plt.profiles import load_profile
    except ImportError:  # an older checkout without profiles
        return {}
    try:
        return load_profile(name)
    except Exception as exc:  # an unknown profile is reported by the crawl itself
        log(f"profile {name}: cannot load its settings ({exc})")
        return {}


def available_profiles() -> list[str]:
    try:
        from plt.profiles import available_profiles as available
    except ImportError:
        return list(DEFAULT_PROFILES)
    return available()


def profile_case(name: str) -> Case:
    values = profile_settings(name)
    # A profile only caps concurrency; each runs at its ceiling, set explicitly, in
    # all and per host, so that the figures keep their meaning whatever the defaults.
    concurrency = values.get("PLT_MAX_CONCURRENT_REQUESTS", values.get("CONCURRENT_REQUESTS"))
    settings = [f"PROFILE={name}"]
    if concurrency:
        settings += [
            f"CONCURRENT_REQUESTS={concurrency}",
            f"CONCURRENT_REQUESTS_PER_DOMAIN={concurrency}",
        ]
    return Case(
        name=f"profile {name}",
        settings=settings,
        budget_mb=values.get("MEMUSAGE_LIMIT_MB"),
        concurrency=concurrency,
    )


def pressure_cases(limit_mb: int, concurrency: int, check_interval: float | None) -> list[Case]:
    # The profile sets PLT_MEMORY_BUDGET_MB too, and the governor reads it before
    # MEMUSAGE_LIMIT_MB: with the limit alone lowered, the governor would keep the
    # profile's 950 MiB budget. Both are set so that it sees the same budget.
    settings = [
        f"PROFILE={PRESSURE_PROFILE}",
        f"MEMUSAGE_LIMIT_MB={limit_mb}",
        f"PLT_MEMORY_BUDGET_MB={limit_mb}",
        f"MEMUSAGE_WARNING_MB={int(limit_mb * 0.84)}",
        f"CONCURRENT_REQUESTS={concurrency}",
        f"CONCURRENT_REQUESTS_PER_DOMAIN={concurrency}",
    ]
    if check_interval is not None:
        settings.append(f"MEMUSAGE_CHECK_INTERVAL_SECONDS={check_interval:g}")
    return [
        Case("pressure, governor on", settings, limit_mb, concurrency),
        Case(
            "pressure, governor off",
            [*settings, "PLT_GOVERNOR_ENABLED=0"],
            limit_mb,
            concurrency,
            expect="memusage_exceeded",
        ),
    ]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="benchmarks/profiles.py",
        description="Crawl the demo retailer with PLT under each memory profile.",
    )
    add_common_arguments(parser)
    parser.add_argument(
        "--profiles",
        help="comma-separated profiles (default: every profile in settings_profiles/)",
    )
    parser.add_argument(
        "--no-pressure", action="store_true", help="skip the governor-under-pressure runs"
    )
    parser.add_argument(
        "--pressure-only", action="store_true", help="only the governor-under-pressure runs"
    )
    parser.add_argument(
        "--pressure-limit-mb",
        type=int,
        default=128,
        help="MEMUSAGE_LIMIT_MB (and PLT_MEMORY_BUDGET_MB) of the pressure runs "
        "(default %(default)s)",
    )
    parser.add_argument(
        "--pressure-concurrency",
        type=int,
        default=64,
        help="CONCURRENT_REQUESTS of the pressure runs (default %(default)s)",
    )
    parser.add_argument(
        "--memusage-check-interval",
        type=float,
        default=1.0,
        metavar="S",
        help="MEMUSAGE_CHECK_INTERVAL_SECONDS of the pressure runs; 0 keeps Scrapy's "
        "default of 60 s (default %(default)s)",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=3600.0,
        metavar="S",
        help="stop a crawl that runs longer than this (default %(default)s)",
    )
    return parser


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.products < 1:
        parser.error("--products must be at least 1")
    if args.no_pressure and args.pressure_only:
        parser.error("--no-pressure and --pressure-only exclude each other")
    return args


def cases(args: argparse.Namespace) -> list[Case]:
    out: list[Case] = []
    if not args.pressure_only:
        names = args.profiles.split(",") if args.profiles else available_profiles()
        out += [profile_case(name.strip()) for name in names if name.strip()]
    if not args.no_pressure:
        interval = args.memusage_check_interval or None
        out += pressure_cases(args.pressure_limit_mb, args.pressure_concurrency, interval)
    return out


def run_case(
    case: Case,
    n: int,
    shop_url: str,
    args: argparse.Namespace,
    workdir: Path,
    truth: list[dict[str, Any]],
    label: str,
) -> dict[str, Any]:
    rundir = workdir / f"case-{n}"
    if rundir.exists():
        shutil.rmtree(rundir)
    log(f"{label}: starting ({' '.join(case.settings)})")
    measured = run_measured(
        plt_argv(shop_url, rundir, case.settings),
        cwd=ROOT,
        env=plt_env(),
        rundir=rundir,
        label=label,
        items_path=rundir / "items.jsonl",
        progress_interval=args.progress_interval,
        timeout=args.timeout,
    )
    t = measured.time
    stats = last_run_stats(rundir)
    report = memory_report(rundir)
    run = {
        "case": case.name,
        "settings": case.settings,
        "budget_mb": case.budget_mb,
        "concurrency": effective_concurrency(Path(measured.log_path)),
        "profile_concurrency": case.concurrency,
        "expect": case.expect,
        "returncode": measured.returncode,
        "finish_reason": stats.get("finish_reason"),
        "items": count_lines(rundir / "items.jsonl"),
        "wall_s": t.wall_s,
        "cpu_s": t.cpu_s,
        "max_rss_mib": t.max_rss_mib,
        "profile_applied": stats.get("plt/profile"),
        "governor": {k: v for k, v in stats.items() if k.startswith(GOVERNOR_STATS)},
        "memory_report": report,
        "verify": verify(rundir / "items.jsonl", truth),
        "measured": measured.as_dict(),
        "stats": stats,
    }
    log(
        f"{label}: {run['finish_reason']} (exit {measured.returncode}), {run['items']:,} items, "
        f"peak RSS {t.max_rss_mib:.1f} MiB of {fmt(case.budget_mb, 0)}, CPU {t.cpu_s:.1f} s"
    )
    return run


def pct(value: float | None, of: float | None) -> str:
    return "-" if value is None or not of else f"{100 * value / of:.0f}%"


def budget_table(runs: list[dict[str, Any]]) -> str:
    header = [
        "case",
        "concurrency",
        "budget MiB",
        "peak RSS MiB",
        "of budget",
        "finish",
        "items",
        "miss/extra/rep",
        "CPU s",
        "wall s",
    ]
    rows = []
    for r in runs:
        v = r["verify"]
        check = f"{v['missing']}/{v['extra']}/{v['repeated']}"
        if v["field_differences"]:
            check += f" +{v['field_differences']} fields"
        rows.append(
            [
                r["case"],
                fmt(r["concurrency"], 0),
                fmt(r["budget_mb"], 0),
                fmt(r["max_rss_mib"]),
                pct(r["max_rss_mib"], r["budget_mb"]),
                r["finish_reason"] or f"exit {r['returncode']}",
                fmt(r["items"], 0),
                check,
                fmt(r["cpu_s"]),
                fmt(r["wall_s"]),
            ]
        )
    return render_table(header, rows)


def governor_table(runs: list[dict[str, Any]]) -> str:
    keys = sorted({k for r in runs for k in r["governor"]})
    if not keys:
        return "No governor stats (plt/memory/*) in any run: the governor did not run."
    header = ["governor stat", *(short_name(r["case"]) for r in runs)]
    rows = [
        [key.removeprefix(GOVERNOR_STATS), *(fmt(r["governor"].get(key), 1) for r in runs)]
        for key in keys
    ]
    return render_table(header, rows)


def memreport_table(runs: list[dict[str, Any]]) -> str:
    """What memory-report.json saw: sampled and kernel peaks, the engine's backlogs."""
    header = ["memory report", *(short_name(r["case"]) for r in runs)]
    engine_keys = sorted({k for r in runs for k in r["memory_report"].get("engine_max", {})})
    rows = [
        ["peak RSS sampled MiB", *(fmt(r["memory_report"].get("peak_rss_mb")) for r in runs)],
        ["ru_maxrss MiB", *(fmt(r["memory_report"].get("ru_maxrss_mb")) for r in runs)],
        ["concurrency at close", *(fmt(r["memory_report"].get("concurrency"), 0) for r in runs)],
    ]
    for key in engine_keys:
        rows.append(
            [
                f"max {key}",
                *(fmt(r["memory_report"].get("engine_max", {}).get(key), 0) for r in runs),
            ]
        )
    return render_table(header, rows)


def short_name(case: str) -> str:
    return (
        case.replace("profile ", "")
        .replace("pressure, governor on", "gov on")
        .replace("pressure, governor off", "gov off")
    )


def verdicts(runs: list[dict[str, Any]]) -> list[str]:
    lines = []
    for r in runs:
        budget, rss = r["budget_mb"], r["max_rss_mib"]
        parts = [f"{r['case']}:"]
        if budget:
            under = rss <= budget
            parts.append(
                f"peak {rss:.1f} MiB {'under' if under else 'OVER'} its {budget:g} MiB budget"
            )
        reason = r["finish_reason"] or f"no finish reason (exit {r['returncode']})"
        as_expected = "as expected" if reason == r["expect"] else f"expected {r['expect']}"
        parts.append(f"finish_reason {reason} ({as_expected})")
        if r["expect"] == "finished":
            parts.append("items exact" if r["verify"]["exact"] else "items NOT exact")
        if r["case"].startswith("profile") and not r["profile_applied"]:
            parts.append("PROFILE NOT APPLIED (no plt/profile stat)")
        lines.append(" ".join(parts[:1]) + " " + "; ".join(parts[1:]))
    return lines


def report(result: dict[str, Any]) -> str:
    runs = result["runs"]
    return "\n".join(
        [
            f"Demo retailer: {result['products']:,} products ({result['expected_items']:,} "
            f"in the ground truth); peak RSS from /usr/bin/time -v",
            "",
            budget_table(runs),
            "",
            governor_table(runs),
            "",
            memreport_table(runs),
            "",
            *verdicts(runs),
        ]
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    from plt.shop.catalog import ShopConfig
    from plt.shop.process import ShopProcess

    todo = cases(args)
    workdir, own_workdir = prepare_workdir(args.workdir, "plt-profiles-")
    made: list[Path] = []
    runs: list[dict[str, Any]] = []
    try:
        with ShopProcess(ShopConfig(products=args.products)) as shop:
            truth = ground_truth(shop, workdir, made)
            for n, case in enumerate(todo, 1):
                made.append(workdir / f"case-{n}")
                label = f"[{n}/{len(todo)}] {case.name}"
                runs.append(run_case(case, n, shop.url, args, workdir, truth, label))
        result = {"products": args.products, "expected_items": len(truth), "runs": runs}
        print(report(result))
        if args.json:
            args.json.write_text(json.dumps(result, indent=1, default=str) + "\n")
            log(f"all runs written to {args.json}")
    finally:
        clean_up(workdir, made, keep=args.keep, own_workdir=own_workdir)
    return 0 if all(r["finish_reason"] == r["expect"] for r in runs) else 1


if __name__ == "__main__":
    sys.exit(main())
