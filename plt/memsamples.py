"""A job's memory samples: ``<JOBDIR>/memory-samples.jsonl``, one line per run.

The crawl appends its run's samples when it closes (plt.extensions.memreport);
the chart (plt.memchart) reads every run back, in order. Nothing here imports
Scrapy or a charting library, so both sides can share it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import os
import subprocess
import sys
from collections import deque
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

SAMPLES_FILE = "memory-samples.jsonl"
CHART_FILE = "memory.svg"
COLUMNS = ("t", "rss_mb", "budget_mb", "concurrency")  # mb columns hold MiB
# A run's line holds at most PLT_MEMREPORT_MAX_SAMPLES samples (~40 bytes each);
# anything far longer is not a line this module wrote.
MAX_LINE_BYTES = 16 * 1024 * 1024
MAX_RUNS = 1000  # the chart keeps the last ones


def append_run(jobdir: str | Path, record: dict[str, Any]) -> int:
    """Append one run's samples; returns its run number (1 for the job's first)."""
    path = Path(jobdir) / SAMPLES_FILE
    previous, torn = 0, False
    if path.exists():
        with path.open("rb") as f:
            for line in f:
                previous += 1
                torn = not line.endswith(b"\n")
    run = previous + 1
    line = json.dumps({"run": run, **record}, separators=(",", ":"), default=str)
    with path.open("a", encoding="utf-8") as f:
        # A run killed mid-write leaves a torn line: end it, so this one stays whole.
        f.write(("\n" if torn else "") + line + "\n")
    return run


def _valid(row: Any) -> bool:
    if not isinstance(row, dict) or not isinstance(row.get("run"), int):
        return False
    columns = [row.get(name) for name in COLUMNS]
    if not all(isinstance(c, list) for c in columns) or len({len(c) for c in columns}) != 1:
        return False
    numbers = [v for c in columns for v in c if v is not None]
    return all(
        isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) for v in numbers
    ) and all(v is not None for v in row["t"] + row["rss_mb"])


def read_runs(jobdir: str | Path) -> list[dict[str, Any]]:
    """Every whole, well-formed run line of the job, oldest first (the last MAX_RUNS)."""
    path = Path(jobdir) / SAMPLES_FILE
    runs: deque[dict[str, Any]] = deque(maxlen=MAX_RUNS)
    skipped = 0
    with path.open("rb") as f:
        while line := f.readline(MAX_LINE_BYTES + 1):
            if len(line) > MAX_LINE_BYTES or not line.endswith(b"\n"):
                skipped += 1
                while line and not line.endswith(b"\n"):  # skip the rest of it
                    line = f.readline(MAX_LINE_BYTES + 1)
                continue
            try:
                row = json.loads(line)
            except ValueError:
                row = None
            if not _valid(row):
                skipped += 1
                continue
            runs.append(row)
    if skipped:
        logger.warning("%s: %d damaged or torn lines skipped", path, skipped)
    return list(runs)


def chart_command(jobdir: str | Path) -> str:
    return f"python -m plt.memchart {jobdir}"


async def draw_in_child(jobdir: str | Path, timeout: float) -> str | None:
    """Draw the job's chart in a child process; None on success, else why not.

    The child, not the caller, imports the charting library, so the caller's
    memory is untouched; with an event loop running it is awaited without
    blocking the loop.
    """
    args = [sys.executable, "-m", "plt.memchart", str(jobdir)]
    # The child finds plt where this process found it (a checkout, an egg).
    root = str(Path(__file__).resolve().parent.parent)
    path = os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "PYTHONPATH": path}
    try:
        code, stderr = await _run(args, env, timeout)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return str(exc) or type(exc).__name__
    if code == 0:
        return None
    return (stderr.strip().splitlines() or [f"exit status {code}"])[-1]


async def _run(args: list[str], env: dict[str, str], timeout: float) -> tuple[int | None, str]:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        proc = subprocess.run(
            args, env=env, capture_output=True, text=True, timeout=timeout, check=False
        )
        return proc.returncode, proc.stderr
    child = await asyncio.create_subprocess_exec(
        *args, env=env, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE
    )
    try:
        _, err = await asyncio.wait_for(child.communicate(), timeout)
    except TimeoutError:
        child.kill()
        await child.wait()
        raise subprocess.TimeoutExpired(args, timeout) from None
    return child.returncode, err.decode(errors="replace")
