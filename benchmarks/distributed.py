"""A distributed crawl of the demo retailer with faults: what it costs in Redis, and
whether it ends exact when a worker's machine or Redis goes away.

    python benchmarks/distributed.py --products 2000 --json dist.json
    python benchmarks/distributed.py --scenarios kill-wipe --workers 4 --faults none

Each scenario gets a fresh demo retailer (every fault on, or none) and a fresh
redis-server on loopback ports, and runs W workers (``scrapy crawl product -s
PLT_DISTRIBUTED=True``) on one crawl, again and again while a worker exits 3
(the job is not finished: run again), at most 8 rounds:

* ``clean``: the workers share one JOBDIR; nothing goes wrong.
* ``kill-wipe``: each worker has its own JOBDIR, as on its own machine. Once
  the crawl has exported ``--at`` products (SCARD of its exported set, polled),
  the running worker with the most item lines in its JOBDIR gets SIGKILL and
  its JOBDIR is deleted. It is not run again.
* ``redis-restart``: one JOBDIR; Redis keeps an append-only file fsynced on
  every write. At ``--at`` exports, Redis is shut down (SHUTDOWN) and started
  again on the same port ``--outage-seconds`` later; the workers wait for it.

Per scenario: every worker's exit status in every round, the items file
against the retailer's ground truth, the wall time, the Redis commands
(INFO commandstats, and MONITOR to tell the commands workers sent from those
their scripts ran) and Redis memory (INFO memory, MEMORY USAGE of the crawl's
keys), both per exported product. Progress goes to stderr, the report to stdout.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    # Run as a script (python benchmarks/distributed.py): make the project importable.
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import (
    add_common_arguments,
    clean_up,
    ground_truth,
    log,
    prepare_workdir,
)
from benchmarks.distcrawl import FAULTS, Crawl
from benchmarks.distreport import check_items, redis_figures, render

SCENARIOS = tuple(FAULTS)  # clean, kill-wipe, redis-restart


def scenario_list(text: str) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = sorted(set(names) - set(SCENARIOS))
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"choose from {', '.join(SCENARIOS)}, got {text!r}")
    return [n for n in SCENARIOS if n in names]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_common_arguments(parser, default_products=20103)
    add = parser.add_argument
    add("--workers", type=int, default=3, help="workers per scenario (default %(default)s)")
    add("--scenarios", type=scenario_list, default=list(SCENARIOS), help="comma-separated")
    add("--faults", choices=("every", "none"), default="every", help="EVERY_FAULT or none")
    add("--at", type=int, metavar="N", help="exports at which a fault strikes (default N/3)")
    add("--outage-seconds", type=float, default=5.0, help="Redis down for (default 5)")
    add("--concurrency", type=int, default=16, help="per worker (default %(default)s)")
    add("--profile", default="1gb", help="each worker's PROFILE (default %(default)s)")
    add("--lease-seconds", type=float, help="PLT_LEASE_SECONDS (default: the worker's, 30)")
    add("--timeout", type=float, default=3600.0, help="seconds per round (default 3600)")
    add("--no-monitor", action="store_true", help="no MONITOR: no round trips figure")
    return parser


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.products < 1:
        parser.error("--products must be at least 1")
    if args.workers < 1 or args.concurrency < 1:
        parser.error("--workers and --concurrency must be at least 1")
    if "kill-wipe" in args.scenarios and args.workers < 2:
        parser.error("kill-wipe needs at least 2 workers: one is killed, the others finish")
    if args.outage_seconds < 0:
        parser.error("--outage-seconds must not be negative")
    if args.at is None:
        args.at = max(1, args.products // 3)
    elif args.at < 1:
        parser.error("--at must be at least 1")
    return args


def shop_config(args: argparse.Namespace) -> Any:
    from plt.shop.catalog import ShopConfig
    from plt.shop.options import EVERY_FAULT

    config = ShopConfig(products=args.products)
    if args.faults == "none":
        return config.without_faults()
    return dataclasses.replace(config, **EVERY_FAULT)


def run_scenario(name: str, args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    from plt.shop.process import ShopProcess

    root = workdir / name
    root.mkdir(parents=True, exist_ok=True)
    with ShopProcess(shop_config(args), log_path=root / "shop.log") as shop:
        truth = ground_truth(shop, root, [])
        crawl = Crawl(name, args, root, shop.url or "")
        try:
            result = crawl.run()
            result["items"] = check_items(crawl, result["exported"], truth)
        finally:
            crawl.redis.stop()
    result["expected_items"] = len(truth)
    result["figures"] = redis_figures(result)
    return result


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if shutil.which("redis-server") is None:
        raise SystemExit("redis-server is not installed (Debian: apt-get install redis-server)")
    workdir, own_workdir = prepare_workdir(args.workdir, "plt-distributed-")
    made = [workdir / name for name in args.scenarios]
    results = []
    try:
        for name in args.scenarios:
            log(
                f"scenario {name}: {args.workers} workers, {args.products:,} products, "
                f"faults {args.faults}"
            )
            results.append(run_scenario(name, args, workdir))
        summary = {
            "products": args.products,
            "faults": args.faults,
            "workers": args.workers,
            "at": args.at,
            "outage_seconds": args.outage_seconds,
            "concurrency": args.concurrency,
            "profile": args.profile,
            "scenarios": results,
        }
        print(render(summary))
        if args.json:
            args.json.write_text(json.dumps(summary, indent=1, default=str) + "\n")
            log(f"all figures written to {args.json}")
    finally:
        clean_up(workdir, made, keep=args.keep, own_workdir=own_workdir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
