"""Throughput of the distributed mode with 1, 2 and 4 workers on one crawl.

    python benchmarks/scaling.py [--products 2000] [--latency-ms 50] [--workers 1 2 4]

Starts a demo retailer with a fixed per-response latency (so that, as on a
real site, the network and not the CPU limits a worker), a redis-server on a
free loopback port with persistence off, and for each worker count a fresh
crawl: the workers that do not seed start first and wait; the last one seeds.
The time runs from the seed to the last product's export (read in Redis), so
Python's start-up is not counted. Each worker has the same fixed concurrency.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from redis import Redis

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.redisproc import RedisProcess  # noqa: E402
from plt import settings as project_settings  # noqa: E402
from plt.distributed.store import JobKeys  # noqa: E402
from plt.shop.process import ShopProcess  # noqa: E402


def addons() -> str:
    names = dict(project_settings.ADDONS)
    names.setdefault("plt.profiles.ProfileAddon", 0)
    names.setdefault("plt.distributed.addon.DistributedAddon", 30)
    return json.dumps(names)


def worker(jobdir: Path, name: str, shop: str, redis: str, args: argparse.Namespace, seed: bool):
    settings = {
        "JOBDIR": str(jobdir),
        "SHOP_URL": shop,
        "PLT_DISTRIBUTED": "True",
        "REDIS_URL": redis,
        "PLT_WORKER_NAME": name,
        "PLT_REDIS_SEED": str(seed),
        "ADDONS": addons(),
        "PROFILE": args.profile,
        "CONCURRENT_REQUESTS": str(args.concurrency),
        "CONCURRENT_REQUESTS_PER_DOMAIN": str(args.concurrency),
        "PLT_PROGRESS": "off",
        "LOG_LEVEL": "INFO",
    }
    argv = [sys.executable, "-m", "scrapy", "crawl", "product"]
    for key, value in settings.items():
        argv += ["-s", f"{key}={value}"]
    env = {k: v for k, v in os.environ.items() if k != "SCRAPY_SETTINGS_MODULE"}
    env["PYTHONPATH"] = str(ROOT)
    log = (jobdir.parent / f"{jobdir.name}-{name}.log").open("wb")
    return subprocess.Popen(argv, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)


def run(n: int, shop: str, redis_url: str, workdir: Path, args: argparse.Namespace) -> float:
    jobdir = workdir / f"scaling-{n}w"
    keys = JobKeys.for_job(jobdir.name)
    client = Redis.from_url(redis_url)
    procs = [worker(jobdir, f"w{i}", shop, redis_url, args, seed=False) for i in range(1, n)]
    while client.hlen(keys.workers) < n - 1:  # each worker registers when it opens
        time.sleep(0.05)
    procs.append(worker(jobdir, "w0", shop, redis_url, args, seed=True))
    while not client.hexists(keys.meta, "seeded"):
        time.sleep(0.005)
    t0 = time.monotonic()
    deadline = t0 + args.timeout
    while client.scard(keys.exported) < args.products:
        if time.monotonic() > deadline or all(p.poll() is not None for p in procs):
            raise SystemExit(f"{n} workers: {client.scard(keys.exported)} products exported")
        time.sleep(0.02)
    elapsed = time.monotonic() - t0
    for p in procs:
        p.wait(timeout=60)
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--products", type=int, default=2000)
    parser.add_argument("--page-bytes", type=int, default=300_000)
    parser.add_argument("--latency-ms", type=float, default=50.0)
    parser.add_argument("--concurrency", type=int, default=16, help="per worker")
    parser.add_argument("--profile", default="1gb", help="each worker's memory profile")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--timeout", type=float, default=600.0)
    args = parser.parse_args()
    if shutil.which("redis-server") is None:
        raise SystemExit("redis-server is not installed (Debian: apt-get install redis-server)")
    workdir = Path(tempfile.mkdtemp(prefix="plt-scaling-"))
    shop = ShopProcess(
        products=args.products,
        page_bytes=args.page_bytes,
        latency_ms=args.latency_ms,
        no_faults=True,
    )
    redis = RedisProcess(workdir).start()
    redis_url = redis.url
    print(
        f"{args.products} products, {args.page_bytes:,} B pages, {args.latency_ms:g} ms "
        f"latency, {args.concurrency} concurrent requests per worker, {os.cpu_count()} CPUs"
    )
    print(f"{'workers':>7}  {'seconds':>8}  {'products/s':>10}  {'vs 1 worker':>11}")
    try:
        shop.start()
        base = None
        for n in args.workers:
            elapsed = run(n, shop.url or "", redis_url, workdir, args)
            rate = args.products / elapsed
            base = base or (rate if n == 1 else None)
            ratio = f"{rate / base:.2f}" if base else "-"
            print(f"{n:>7}  {elapsed:>8.2f}  {rate:>10.1f}  {ratio:>11}", flush=True)
    finally:
        shop.stop()
        redis.stop()
    print(f"logs and items in {workdir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
