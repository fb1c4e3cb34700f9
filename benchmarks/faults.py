"""One job against the demo retailer with every fault on, run until it ends.

    python benchmarks/faults.py [--products 20103] [--max-runs 8] [--json FILE]

Starts a demo retailer with the ``EVERY_FAULT`` preset (plt/shop/options.py:
walls that lift, a permanent 403, 429 with Retry-After, redirects and loops,
another product's page, a price that does not parse, cut and mislabelled
bodies, the stock API down for a while, transient 503s) and runs the same
``scrapy crawl product`` command again while it exits 3 (something left to
do), as a daily job would be run. Then it compares items.jsonl with the
retailer's ground truth, and failed.jsonl with the products a correct crawl
must give up (the retailer's expected failures).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.common import add_common_arguments, log, prepare_workdir  # noqa: E402
from plt.shop.catalog import ShopConfig  # noqa: E402
from plt.shop.options import EVERY_FAULT  # noqa: E402
from plt.shop.process import ShopProcess  # noqa: E402
from plt.verify import compare, read_items  # noqa: E402

INCOMPLETE = 3  # plt.commands.crawl.JOB_INCOMPLETE_EXIT


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_common_arguments(parser, default_products=20103)
    parser.add_argument("--max-runs", type=int, default=8, help="runs at most (default 8)")
    return parser.parse_args(argv)


def crawl(jobdir: Path, shop_url: str, log_path: Path) -> tuple[int, float]:
    argv = [sys.executable, "-m", "scrapy", "crawl", "product"]
    for setting in (f"JOBDIR={jobdir}", f"SHOP_URL={shop_url}", "LOG_LEVEL=INFO"):
        argv += ["-s", setting]
    started = time.monotonic()
    with log_path.open("wb") as out:
        proc = subprocess.run(argv, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, check=False)
    return proc.returncode, time.monotonic() - started


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    workdir, made = prepare_workdir(args.workdir, "plt-faults-")
    config = dataclasses.replace(ShopConfig(products=args.products), **EVERY_FAULT)
    runs: list[dict[str, Any]] = []
    try:
        with ShopProcess(config) as shop:
            assert shop.url is not None
            truth = read_items(shop.write_ground_truth(workdir / "truth.jsonl"))
            expected_path = workdir / "expected-failures.jsonl"
            shop.write_expected_failures(expected_path)
            jobdir = workdir / "job"
            for run in range(1, args.max_runs + 1):
                status, wall = crawl(jobdir, shop.url, workdir / f"run-{run}.log")
                runs.append({"run": run, "exit": status, "wall_s": round(wall, 1)})
                log(f"run {run}: exit {status} in {wall:.0f} s")
                if status != INCOMPLETE:
                    break
        result = compare(read_items(jobdir / "items.jsonl"), truth)
        failed = {f.get("url") for f in read_jsonl(jobdir / "failed.jsonl")}
        expected = {e["url"] for e in read_jsonl(expected_path)}
        report = {
            "products": args.products,
            "runs": runs,
            "items": result.summary(),
            "exact": result.exact,
            "given_up": len(failed),
            "expected_given_up": len(expected),
            "given_up_not_expected": sorted(failed - expected),
            "expected_not_given_up": sorted(expected - failed),
        }
    finally:
        if made and not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    print(f"exit statuses: {[r['exit'] for r in runs]}")
    print(f"items: {report['items']}")
    print(f"given up: {report['given_up']}, expected: {report['expected_given_up']}")
    for key in ("given_up_not_expected", "expected_not_given_up"):
        if report[key]:
            print(f"{key.replace('_', ' ')}: {report[key][:10]}")
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    ok = (
        report["exact"]
        and not report["given_up_not_expected"]
        and not report["expected_not_given_up"]
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
