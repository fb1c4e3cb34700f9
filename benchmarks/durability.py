"""What the items file's durability costs: items exported per CPU-second.

Side by side in one run, the job feed's exporter writing items into a fresh
job state, each line flushed and recorded, (a) as before, without fsync (the
record could get ahead of the file after a power loss), and (b) fsynced before
its record (PLT_JOB_FSYNC, the default). Prints CPU and wall figures per case.

    python benchmarks/durability.py --items 5000 --repeat 3
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from plt.job.exporter import UjsonLinesExporter
from plt.job.sqlite import ITEMS_FILE, SQLiteJobStore


def item(product_id: int) -> dict:
    """An item of the contract's shape and size (about 700 bytes)."""
    return {
        "product_id": product_id,
        "url": f"https://shop.example/product/denim-slim-ankle-{product_id}",
        "date": "2026-11-27T10:00:00Z",
        "name": "Denim Slim Ankle",
        "active_col_num": 100170,
        "all_col_nums": [100170, 100171, 100172],
        "old_price": 1049.99,
        "current_price": 749.99,
        "currency": "GBP",
        "image_urls_full": [f"https://img.example/{product_id}/{k}_full.jpg" for k in range(4)],
        "stock_jsons": [
            {"sku": f"100170-{s}", "size": s, "stockLevel": 12, "price": 749.99}
            for s in ("XS", "S", "M", "L")
        ],
    }


def run(items: int, fsync: bool) -> tuple[float, float]:
    with tempfile.TemporaryDirectory(dir=Path.cwd()) as tmp:
        state = SQLiteJobStore(tmp)
        state.open()
        with (Path(tmp) / ITEMS_FILE).open("ab") as f:
            exporter = UjsonLinesExporter(f, job_state=state, fsync=fsync)
            cpu, wall = time.process_time(), time.perf_counter()
            for product_id in range(1, items + 1):
                exporter.export_item(item(product_id))
            cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        state.close()
    return cpu, wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=5000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    print(f"{args.items} items, median of {args.repeat}, job state in {Path.cwd()}")
    print("| case | CPU s | wall s | items / CPU s | items / wall s |")
    print("|---|---|---|---|---|")
    for name, fsync in (("flush + record (no fsync)", False), ("flush + fsync + record", True)):
        results = [run(args.items, fsync) for _ in range(args.repeat)]
        cpu = statistics.median(r[0] for r in results)
        wall = statistics.median(r[1] for r in results)
        print(
            f"| {name} | {cpu:.2f} | {wall:.2f} | {args.items / cpu:,.0f} | "
            f"{args.items / wall:,.0f} |"
        )


if __name__ == "__main__":
    main()
