"""Pieces shared by the benchmark scripts: measured crawls, their figures, tables.

Every crawl runs in its own process under ``/usr/bin/time -v``, so its wall
time, CPU time and peak RSS come from the kernel (wait4 rusage), the same for
the baseline and PLT, whatever each process reports about itself.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import psutil

ROOT = Path(__file__).resolve().parent.parent
BASELINE_DIR = ROOT / "benchmarks" / "baseline"
TIME_BIN = "/usr/bin/time"
KIB_PER_MIB = 1024

# Proxy variables would let Scrapy (HttpProxyMiddleware) or requests send the crawl's
# traffic somewhere other than the loopback shop.
_PROXY_VARS = ("http_proxy", "https_proxy", "all_proxy", "ftp_proxy")
# Variables that would make a child pick another project's settings.
_SCRAPY_VARS = ("SCRAPY_SETTINGS_MODULE", "SCRAPY_PROJECT", "SCRAPY_PYTHON_SHELL")


def log(message: str) -> None:
    """A progress line on stderr; stdout carries only the report."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# -- /usr/bin/time -v ----------------------------------------------------------


@dataclass
class TimeResult:
    """What ``/usr/bin/time -v`` reports about one process tree."""

    wall_s: float
    user_s: float
    sys_s: float
    max_rss_kib: int
    exit_status: int | None
    signal: int | None = None

    @property
    def cpu_s(self) -> float:
        return self.user_s + self.sys_s

    @property
    def max_rss_mib(self) -> float:
        return self.max_rss_kib / KIB_PER_MIB


def parse_elapsed(text: str) -> float:
    """``'1:02:03'`` (h:mm:ss) or ``'2:03.45'`` (m:ss.ss) in seconds."""
    seconds = 0.0
    for part in text.strip().split(":"):
        seconds = seconds * 60 + float(part)
    return seconds


def parse_time_v(text: str) -> TimeResult:
    """Parse the report of GNU ``time -v`` (its ``-o`` file or the end of stderr)."""
    fields: dict[str, str] = {}
    signal = None
    for raw in text.splitlines():
        line = raw.strip()
        if match := re.match(r"Command terminated by signal (\d+)", line):
            signal = int(match[1])
            continue
        # Split on the last ": " because keys contain colons ("h:mm:ss or m:ss").
        key, sep, value = line.rpartition(": ")
        if sep:
            fields[key] = value
    try:
        elapsed_key = next(k for k in fields if k.startswith("Elapsed (wall clock) time"))
        return TimeResult(
            wall_s=parse_elapsed(fields[elapsed_key]),
            user_s=float(fields["User time (seconds)"]),
            sys_s=float(fields["System time (seconds)"]),
            max_rss_kib=int(fields["Maximum resident set size (kbytes)"]),
            exit_status=int(fields["Exit status"]) if "Exit status" in fields else None,
            signal=signal,
        )
    except (StopIteration, KeyError, ValueError) as exc:
        raise ValueError(f"not a /usr/bin/time -v report: {exc!r}\n{text[-2000:]}") from None


# -- running a crawl -------------------------------------------------------------


def child_env(**extra: str) -> dict[str, str]:
    """This environment without proxies or Scrapy project variables, plus ``extra``."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k.lower() not in _PROXY_VARS and k not in _SCRAPY_VARS
    }
    env.update(extra)
    return env


def plt_argv(shop_url: str, jobdir: Path, settings: Sequence[str]) -> list[str]:
    """``scrapy crawl product`` of PLT; run it with cwd=ROOT (PLT's scrapy.cfg)."""
    argv = [sys.executable, "-m", "scrapy", "crawl", "product"]
    # No memory chart: drawing it after the crawl would add to the measured wall time.
    common = ("PLT_PROGRESS=log", "PLT_MEMCHART=False")
    for setting in (f"SHOP_URL={shop_url}", f"JOBDIR={jobdir}", *common, *settings):
        argv += ["-s", setting]
    return argv


def plt_env() -> dict[str, str]:
    return child_env(PYTHONPATH=str(ROOT))


def baseline_argv(shop_url: str, items_path: Path, settings: Sequence[str] = ()) -> list[str]:
    """``scrapy runspider`` of the old spider; run it with baseline_env()."""
    argv = [sys.executable, "-m", "scrapy", "runspider", str(BASELINE_DIR / "old_spider.py")]
    argv += ["-a", f"shop_url={shop_url}", "-O", str(items_path)]
    for setting in settings:
        argv += ["-s", setting]
    return argv


def baseline_env() -> dict[str, str]:
    # With SCRAPY_SETTINGS_MODULE set Scrapy never looks for a scrapy.cfg, so PLT's
    # settings stay out even when the working directory is inside the project.
    return child_env(SCRAPY_SETTINGS_MODULE="old_settings", PYTHONPATH=str(BASELINE_DIR))


class LineCounter:
    """Counts the lines of a file that another process appends to, reading only new bytes."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0
        self.lines = 0

    def count(self) -> int:
        try:
            with self.path.open("rb") as f:
                f.seek(self.offset)
                while chunk := f.read(1 << 20):
                    self.lines += chunk.count(b"\n")
                    self.offset += len(chunk)
        except FileNotFoundError:
            pass
        return self.lines


def _tree_rss_mib(pid: int) -> float | None:
    """Current RSS of the biggest process under ``pid`` (the crawler under time)."""
    try:
        procs = psutil.Process(pid).children(recursive=True)
        return max((p.memory_info().rss for p in procs), default=0) / (1 << 20)
    except psutil.Error:
        return None


@dataclass
class Measured:
    """One crawl process: its command, exit code and /usr/bin/time figures."""

    argv: list[str]
    returncode: int
    time: TimeResult
    log_path: str

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["time"]["cpu_s"] = self.time.cpu_s
        data["time"]["max_rss_mib"] = self.time.max_rss_mib
        return data


def run_measured(
    argv: list[str],
    *,
    cwd: Path,
    env: dict[str, str],
    rundir: Path,
    label: str,
    items_path: Path,
    progress_interval: float = 30.0,
    timeout: float | None = None,
) -> Measured:
    """Run ``argv`` under ``/usr/bin/time -v``; log progress to stderr while it runs."""
    rundir.mkdir(parents=True, exist_ok=True)
    time_path = rundir / "time-v.txt"
    log_path = rundir / "crawl.log"
    counter = LineCounter(items_path)
    started = time.monotonic()
    with log_path.open("wb") as out:
        proc = subprocess.Popen(
            [TIME_BIN, "-v", "-o", str(time_path), *argv],
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        try:
            while True:
                try:
                    proc.wait(timeout=progress_interval)
                    break
                except subprocess.TimeoutExpired:
                    elapsed = time.monotonic() - started
                    rss = _tree_rss_mib(proc.pid)
                    rss_text = f", RSS {rss:.0f} MiB" if rss is not None else ""
                    log(f"{label}: {elapsed:.0f} s, {counter.count():,} items so far{rss_text}")
                    if timeout is not None and elapsed > timeout:
                        log(f"{label}: over {timeout:.0f} s, stopping it")
                        _stop_tree(proc)
        except BaseException:
            _stop_tree(proc)
            raise
    result = parse_time_v(time_path.read_text())
    return Measured(argv=argv, returncode=proc.returncode, time=result, log_path=str(log_path))


def _stop_tree(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM the crawler under time (twice = Scrapy's forced stop), then time itself."""
    try:
        children = psutil.Process(proc.pid).children(recursive=True)
    except psutil.Error:
        children = []
    for child in children:
        with contextlib.suppress(psutil.Error):
            child.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        for child in children:
            with contextlib.suppress(psutil.Error):
                child.kill()
        proc.kill()
        proc.wait()


# -- the crawl's own records -----------------------------------------------------


def add_common_arguments(parser: argparse.ArgumentParser, default_products: int = 2000) -> None:
    """The options every benchmark script takes."""
    parser.add_argument(
        "--products",
        type=int,
        default=default_products,
        help="products in the demo retailer (default %(default)s)",
    )
    parser.add_argument(
        "--workdir",
        type=Path,
        help="where job directories go (default: a new temporary directory)",
    )
    parser.add_argument("--keep", action="store_true", help="keep job directories and logs")
    parser.add_argument("--json", type=Path, metavar="FILE", help="write every run to FILE")
    parser.add_argument(
        "--progress-interval",
        type=float,
        default=30.0,
        metavar="S",
        help="seconds between progress lines on stderr (default %(default)s)",
    )


def prepare_workdir(workdir: Path | None, prefix: str) -> tuple[Path, bool]:
    """The benchmark's folder, and whether it made it (a temporary one)."""
    if workdir is None:
        return Path(tempfile.mkdtemp(prefix=prefix)), True
    workdir.mkdir(parents=True, exist_ok=True)
    return workdir, False


def ground_truth(shop: Any, workdir: Path, made: list[Path]) -> list[dict[str, Any]]:
    """Log the demo retailer, and write and read the items it expects."""
    assert shop.url is not None
    log(f"demo retailer with {shop.config.products:,} products at {shop.url}")
    truth_path = workdir / "ground-truth.jsonl"
    shop.write_ground_truth(truth_path)
    made.append(truth_path)
    return read_jsonl(truth_path)


def clean_up(workdir: Path, made: list[Path], *, keep: bool, own_workdir: bool) -> None:
    """Remove what a benchmark made: its own temporary folder, or only its files."""
    if keep:
        log(f"job directories kept in {workdir}")
    elif own_workdir:
        shutil.rmtree(workdir, ignore_errors=True)
    else:
        for path in made:
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)


def count_lines(path: Path) -> int:
    return LineCounter(path).count()


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    with path.open(encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def last_run_stats(jobdir: Path) -> dict[str, Any]:
    """The Scrapy stats of the job's last run (``<JOBDIR>/runs.jsonl``)."""
    runs = read_jsonl(jobdir / "runs.jsonl")
    return runs[-1] if runs else {}


def memory_report(jobdir: Path) -> dict[str, Any]:
    """``<JOBDIR>/memory-report.json`` without its sample series."""
    path = jobdir / "memory-report.json"
    if not path.exists():
        return {}
    report = json.loads(path.read_text())
    report.pop("samples", None)
    return report


_STAT_LINE = re.compile(r"^\s*[{ ]?'([^']+)': (-?\d+(?:\.\d+)?|'[^']*')[,}]?$")


def log_stats(log_path: Path) -> dict[str, Any]:
    """Numbers and strings of the last "Dumping Scrapy stats" block of a crawl log."""
    text = log_path.read_text(errors="replace")
    start = text.rfind("Dumping Scrapy stats:")
    stats: dict[str, Any] = {}
    if start < 0:
        return stats
    for line in text[start:].splitlines()[1:]:
        if match := _STAT_LINE.match(line):
            key, raw = match[1], match[2]
            if raw.startswith("'"):
                stats[key] = raw.strip("'")
            else:
                stats[key] = float(raw) if "." in raw else int(raw)
        if line.rstrip().endswith("}"):
            break
    return stats


SCRAPY_DEFAULT_CONCURRENCY = 16


def overridden_settings(log_path: Path) -> dict[str, Any]:
    """The "Overridden settings" that Scrapy logs when a crawl starts (first crawler)."""
    lines = log_path.read_text(errors="replace").splitlines()
    for i, line in enumerate(lines):
        if line.endswith("Overridden settings:"):
            block = []
            for body in lines[i + 1 :]:
                block.append(body)
                if body.rstrip().endswith("}"):
                    break
            text = "\n".join(block)
            try:
                value = ast.literal_eval(text)
            except (ValueError, SyntaxError):
                # A value that is no literal: fall back to the plain "key: value" lines.
                pairs = re.findall(r"'([A-Z_]+)': '?([^',{}]*)'?[,}]", text)
                return dict(pairs)
            return value if isinstance(value, dict) else {}
    return {}


def effective_concurrency(log_path: Path) -> int:
    """CONCURRENT_REQUESTS the crawl ran with (Scrapy logs it only when not the default)."""
    value = overridden_settings(log_path).get("CONCURRENT_REQUESTS")
    try:
        return int(value) if value is not None else SCRAPY_DEFAULT_CONCURRENCY
    except ValueError:
        return SCRAPY_DEFAULT_CONCURRENCY


def verify(items_path: Path | Sequence[Path], truth: list[dict[str, Any]]) -> dict[str, Any]:
    """Compare a crawl's items (one file, or several read as one) with the ground truth."""
    from plt.verify import compare, read_items

    paths = [items_path] if isinstance(items_path, Path) else list(items_path)
    items = [item for path in paths if path.exists() for item in read_items(path)]
    result = compare(items, truth)
    return {
        "items": result.items,
        "expected": result.expected,
        "missing": len(result.missing),
        "extra": len(result.extra),
        "repeated": len(result.repeated),
        "field_differences": len(result.field_errors),
        "exact": result.exact,
        "missing_ids": result.missing[:50],
        "field_errors": result.field_errors[:10],
    }


# -- tables ----------------------------------------------------------------------


def render_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A plain-text table: first column left-aligned, the others right-aligned."""
    cells = [[str(c) for c in header], *[[str(c) for c in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]

    def line(row: list[str]) -> str:
        first = row[0].ljust(widths[0])
        rest = [cell.rjust(width) for cell, width in zip(row[1:], widths[1:], strict=True)]
        return "  ".join([first, *rest]).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(cells[0]), rule, *(line(row) for row in cells[1:])])


def fmt(value: float | None, digits: int = 1) -> str:
    if value is None:
        return "-"
    if isinstance(value, int) or (digits == 0 and float(value).is_integer()):
        return f"{int(value):,}"
    return f"{value:,.{digits}f}"
