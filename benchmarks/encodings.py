"""Benchmark: content encodings, and stopping a transfer at the product block.

    python benchmarks/encodings.py --products 2000 --json encodings.json

A demo retailer per scheme (HTTP, and HTTPS with a certificate it makes at
start) with ``--latency-ms`` per response and ``--bandwidth-mbit`` per
connection serves every crawl. PLT crawls it once for each content encoding
(the crawl asks for that one only, ``Accept-Encoding: <enc>``) with the
transfer stopped at ``</main>`` (``PLT_HEAD_STOP_TRANSFER=True``) and without,
all at the same fixed concurrency, the runs interleaved. Each crawl is its own
process under ``/usr/bin/time -v``. The report gives, per case, the medians of
wire KiB per product (every response: listing, product page, stock),
wall seconds, CPU seconds and peak RSS, and checks the items.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import shutil
import statistics
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import (
    ROOT,
    add_common_arguments,
    clean_up,
    count_lines,
    fmt,
    last_run_stats,
    log,
    plt_argv,
    plt_env,
    prepare_workdir,
    read_jsonl,
    render_table,
    run_measured,
    verify,
)
from plt.shop.catalog import ShopConfig
from plt.shop.process import ShopProcess

ENCODINGS = ("gzip", "br", "zstd")
SCHEMES = ("http", "https")
KIB = 1024


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="benchmarks/encodings.py",
        description="PLT per content encoding, with and without stopping transfers.",
    )
    add_common_arguments(parser, 2000)
    parser.add_argument("--concurrency", type=int, default=16, help="default %(default)s")
    parser.add_argument("--latency-ms", type=float, default=100.0, help="default %(default)s")
    parser.add_argument(
        "--bandwidth-mbit", type=float, default=20.0, help="per connection (default %(default)s)"
    )
    parser.add_argument("--repeat", type=int, default=1, help="rounds (default %(default)s)")
    parser.add_argument("--encodings", default=",".join(ENCODINGS), help="default %(default)s")
    parser.add_argument("--schemes", default=",".join(SCHEMES), help="default %(default)s")
    parser.add_argument("--profile", default="1gb", help="default %(default)s")
    return parser


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = build_parser()
    args = parser.parse_args(argv)
    args.encodings = [e for e in args.encodings.split(",") if e]
    args.schemes = [s for s in args.schemes.split(",") if s]
    if not set(args.encodings) <= set(ENCODINGS) or not set(args.schemes) <= set(SCHEMES):
        parser.error(f"encodings among {ENCODINGS}, schemes among {SCHEMES}")
    if min(args.products, args.concurrency, args.repeat) < 1:
        parser.error("--products, --concurrency and --repeat must be at least 1")
    return args


def crawl_settings(args: argparse.Namespace, encoding: str, stop: bool) -> list[str]:
    headers = {"Accept": "text/html,application/json;q=0.9,*/*;q=0.8", "Accept-Encoding": encoding}
    return [
        f"PROFILE={args.profile}",
        f"CONCURRENT_REQUESTS={args.concurrency}",
        f"CONCURRENT_REQUESTS_PER_DOMAIN={args.concurrency}",
        f"DEFAULT_REQUEST_HEADERS={json.dumps(headers)}",
        f"PLT_HEAD_STOP_TRANSFER={stop}",
    ]


def run_one(
    case: tuple[str, str, bool],
    index: int,
    shop_url: str,
    args: argparse.Namespace,
    workdir: Path,
    truth: list[dict[str, Any]],
) -> dict[str, Any]:
    scheme, encoding, stop = case
    name = f"{scheme}-{encoding}-{'stop' if stop else 'whole'}"
    rundir = workdir / f"{name}-{index}"
    shutil.rmtree(rundir, ignore_errors=True)
    argv = plt_argv(shop_url, rundir, crawl_settings(args, encoding, stop))
    measured = run_measured(
        argv,
        cwd=ROOT,
        env=plt_env(),
        rundir=rundir,
        label=name,
        items_path=rundir / "items.jsonl",
        progress_interval=args.progress_interval,
    )
    stats = last_run_stats(rundir)
    items = count_lines(rundir / "items.jsonl")
    t = measured.time
    run = {
        "case": name,
        "round": index,
        "items": items,
        "returncode": measured.returncode,
        "wire_kib_per_product": stats.get("downloader/response_bytes", 0) / KIB / max(items, 1),
        "not_transferred_kib_per_product": stats.get("plt/bytes/not_transferred", 0)
        / KIB
        / max(items, 1),
        "wall_s": t.wall_s,
        "cpu_s": t.cpu_s,
        "max_rss_mib": t.max_rss_mib,
        "verify": verify(rundir / "items.jsonl", truth),
        "stats": stats,
    }
    log(
        f"{name}: exit {measured.returncode}, {items:,} items, "
        f"{run['wire_kib_per_product']:.1f} KiB/product, wall {t.wall_s:.1f} s, "
        f"CPU {t.cpu_s:.1f} s, peak RSS {t.max_rss_mib:.1f} MiB, exact {run['verify']['exact']}"
    )
    return run


FIGURES = (
    ("wire_kib_per_product", "wire KiB/product", 1),
    ("not_transferred_kib_per_product", "not sent KiB/product", 1),
    ("wall_s", "wall s", 1),
    ("cpu_s", "CPU s", 1),
    ("max_rss_mib", "peak RSS MiB", 1),
)


def report(runs: list[dict[str, Any]], args: argparse.Namespace) -> str:
    cases = list(dict.fromkeys(r["case"] for r in runs))
    rows = []
    for case in cases:
        mine = [r for r in runs if r["case"] == case]
        row: list[Any] = [case]
        for key, _, digits in FIGURES:
            row.append(fmt(statistics.median(r[key] for r in mine), digits))
        row.append("yes" if all(r["verify"]["exact"] for r in mine) else "NO")
        rows.append(row)
    header = ["case", *(label for _, label, _ in FIGURES), "exact"]
    title = (
        f"{args.products:,} products, CONCURRENT_REQUESTS={args.concurrency}, "
        f"{args.latency_ms:g} ms latency, {args.bandwidth_mbit:g} Mbit/s per connection; "
        f"medians of {args.repeat} round(s)"
    )
    return title + "\n\n" + render_table(header, rows)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    workdir, own = prepare_workdir(args.workdir, "plt-bench-encodings-")
    made: list[Path] = []
    runs: list[dict[str, Any]] = []
    base = ShopConfig(
        products=args.products,
        latency_ms=args.latency_ms,
        bandwidth_kbit=args.bandwidth_mbit * 1000,
    ).without_faults()
    try:
        with contextlib.ExitStack() as stack:
            shops, truths = {}, {}
            for scheme in args.schemes:
                config = dataclasses.replace(base, tls=scheme == "https")
                shops[scheme] = shop = stack.enter_context(ShopProcess(config))
                log(f"demo retailer ({scheme}) at {shop.url}")
                truth_path = workdir / f"ground-truth-{scheme}.jsonl"
                shop.write_ground_truth(truth_path)
                made.append(truth_path)
                truths[scheme] = read_jsonl(truth_path)
            for index in range(1, args.repeat + 1):
                for scheme in args.schemes:
                    for encoding in args.encodings:
                        for stop in (True, False):
                            case = (scheme, encoding, stop)
                            url, truth = shops[scheme].url, truths[scheme]
                            run = run_one(case, index, url, args, workdir, truth)
                            made.append(workdir / f"{run['case']}-{index}")
                            runs.append(run)
        print(report(runs, args))
        if args.json:
            args.json.write_text(json.dumps(runs, indent=1, default=str) + "\n")
            log(f"all runs written to {args.json}")
    finally:
        clean_up(workdir, made, keep=args.keep, own_workdir=own)
    return 0 if runs and all(r["verify"]["exact"] for r in runs) else 1


if __name__ == "__main__":
    raise SystemExit(main())
