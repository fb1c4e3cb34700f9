"""``python -m tests.full_disk PAGES scrapy-args...``: scrapy with a disk that fills up.

The job state gets SQLite's ``max_page_count`` set to PAGES more than it
opens with, so that writing past it fails with a genuine SQLITE_FULL
("database or disk is full"), as on a full disk.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from scrapy.cmdline import execute

from plt.job import sqlite as jobstate


def cap_job_state(extra_pages: int) -> None:
    open_db = jobstate.SQLiteJobStore._open_db

    def capped(self: jobstate.SQLiteJobStore, path: Path) -> None:
        open_db(self, path)
        assert self.db is not None
        pages = self.db.execute("PRAGMA page_count").fetchone()[0]
        self.db.execute(f"PRAGMA max_page_count={pages + extra_pages}")

    jobstate.SQLiteJobStore._open_db = capped  # type: ignore[method-assign]


def main(argv: list[str]) -> Any:
    cap_job_state(int(argv[1]))
    return execute(["scrapy", *argv[2:]])


if __name__ == "__main__":
    main(sys.argv)
