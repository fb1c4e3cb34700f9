"""Compare a job's items with the exact items a correct crawl exports.

    python -m plt.verify jobs/product-2026-11-23/items.jsonl ground-truth.jsonl

Reports products missing, extra and repeated, and every field that differs
(``date`` is the crawl's own and is only checked for form). Exit status 0
when the two agree exactly.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import ujson


@dataclass
class Comparison:
    items: int = 0
    expected: int = 0
    missing: list[int] = field(default_factory=list)
    extra: list[int] = field(default_factory=list)
    repeated: dict[int, int] = field(default_factory=dict)
    field_errors: list[str] = field(default_factory=list)

    @property
    def exact(self) -> bool:
        return not (self.missing or self.extra or self.repeated or self.field_errors)

    def summary(self) -> str:
        head = (
            f"{self.items} items, {self.expected} expected: {len(self.missing)} missing, "
            f"{len(self.extra)} extra, {len(self.repeated)} repeated, "
            f"{len(self.field_errors)} field differences"
        )
        lines = [head]
        lines += [f"  missing product {pid}" for pid in self.missing[:20]]
        lines += [f"  extra product {pid}" for pid in self.extra[:20]]
        lines += [
            f"  product {pid} exported {n} times" for pid, n in list(self.repeated.items())[:20]
        ]
        lines += [f"  {error}" for error in self.field_errors[:20]]
        return "\n".join(lines)


def read_items(path: Path) -> list[dict[str, Any]]:
    with path.open("rb") as f:
        return [ujson.loads(line) for line in f if line.strip()]


def _valid_date(value: Any) -> bool:
    try:
        return isinstance(value, str) and datetime.fromisoformat(value).tzinfo is not None
    except ValueError:
        return False


def compare(items: list[dict[str, Any]], expected: list[dict[str, Any]]) -> Comparison:
    result = Comparison(items=len(items), expected=len(expected))
    counts = Counter(item["product_id"] for item in items)
    result.repeated = {pid: n for pid, n in sorted(counts.items()) if n > 1}
    got = {item["product_id"]: item for item in items}
    want = {item["product_id"]: item for item in expected}
    result.missing = sorted(want.keys() - got.keys())
    result.extra = sorted(got.keys() - want.keys())
    for pid in sorted(want.keys() & got.keys()):
        item, truth = got[pid], want[pid]
        if not _valid_date(item.get("date")):
            result.field_errors.append(
                f"product {pid}: date {item.get('date')!r} is not ISO 8601 UTC"
            )
        for name, value in truth.items():
            if item.get(name, "<absent>") != value:
                result.field_errors.append(
                    f"product {pid}: {name} is {item.get(name, '<absent>')!r}, expected {value!r}"
                )
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m plt.verify", description=__doc__.split("\n")[0]
    )
    parser.add_argument("items", type=Path, help="the job's items.jsonl")
    parser.add_argument("expected", type=Path, help="ground truth JSON lines")
    args = parser.parse_args(argv)
    for path in (args.items, args.expected):
        if not path.is_file():
            parser.error(f"{path} is not a file")
    result = compare(read_items(args.items), read_items(args.expected))
    print(result.summary())
    return 0 if result.exact else 1


if __name__ == "__main__":
    sys.exit(main())
