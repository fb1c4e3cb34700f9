"""Kill a crawl with SIGKILL at random moments, resume it, and check the result.

    python benchmarks/kill_resume.py --products 20103 --kills 5

Starts one demo retailer, crawls it with ``scrapy crawl product`` in a child
process, sends SIGKILL at a random moment of each run (as the OOM killer
would), re-runs the same command until the job finishes, then prints the
final items against the retailer's ground truth and the requests fetched
again, counted by the retailer itself, against the leases the job requeued.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from plt.job.sqlite import ITEMS_FILE, STATE_FILE  # noqa: E402
from plt.shop.catalog import ShopConfig  # noqa: E402
from plt.shop.process import ShopProcess  # noqa: E402
from plt.verify import compare, read_items  # noqa: E402


def served(shop: ShopProcess) -> int:
    stats = shop.stats()
    return stats["listing"] + stats["product"] + stats["stock"] + stats["not_found_404"]


def lines(path: Path) -> int:
    if not path.exists():
        return 0
    with path.open("rb") as f:
        return sum(1 for _ in f)


def crawl_argv(jobdir: Path, url: str, concurrency: int) -> list[str]:
    return [
        sys.executable, "-m", "scrapy", "crawl", "product",
        "-s", f"SHOP_URL={url}", "-s", f"JOBDIR={jobdir}",
        "-s", f"CONCURRENT_REQUESTS={concurrency}",
        "-s", f"CONCURRENT_REQUESTS_PER_DOMAIN={concurrency}", "-s", "PLT_PROGRESS=off",
    ]  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--products", type=int, default=20103)
    parser.add_argument("--kills", type=int, default=5)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--seed", default="kill")
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="plt-kill-"))
    workdir.mkdir(parents=True, exist_ok=True)
    jobdir = workdir / "job"
    config = ShopConfig(products=args.products)
    with ShopProcess(config) as shop:
        truth = read_items(shop.write_ground_truth(workdir / "truth.jsonl"))
        before = served(shop)
        # Spread the kills over the expected crawl (~170 products/s here).
        expected_seconds = max(5.0, args.products / 170)
        kills = []
        for n in range(args.kills):
            delay = rng.uniform(2.0, expected_seconds / args.kills + 2.0)
            proc = subprocess.Popen(
                crawl_argv(jobdir, shop.url, args.concurrency),
                cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )  # fmt: skip
            time.sleep(delay)
            if proc.poll() is not None:
                print(f"run {n + 1}: finished before its kill", file=sys.stderr)
                break
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
            kills.append((delay, lines(jobdir / ITEMS_FILE)))
            print(f"kill {n + 1}: after {delay:.1f} s, {kills[-1][1]} lines", file=sys.stderr)
        final = subprocess.run(
            crawl_argv(jobdir, shop.url, args.concurrency),
            cwd=ROOT, capture_output=True, text=True,
        )  # fmt: skip
        refetched = served(shop) - before
    pages = math.ceil(args.products / config.per_page)
    clean = pages + args.products + len(truth)
    db = sqlite3.connect(jobdir / STATE_FILE)
    meta = dict(db.execute("SELECT key, value FROM meta"))
    db.close()
    requeued = json.loads(meta.get("requeued_total", "0"))
    result = compare(read_items(jobdir / ITEMS_FILE), truth)
    print(f"products {args.products}, concurrency {args.concurrency}, kills {len(kills)}")
    for i, (delay, n) in enumerate(kills, 1):
        print(f"  kill {i}: {delay:.1f} s into its run, items.jsonl had {n} lines")
    print(f"final run exit status {final.returncode}, finished: {meta.get('finished') == 'true'}")
    print(result.summary())
    print(
        f"requests answered {refetched}, a clean crawl needs {clean}: "
        f"{refetched - clean} fetched again; leases requeued on resume: {requeued}"
    )
    return 0 if result.exact and final.returncode == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
