"""Shared fixtures: test data files, one demo retailer per session, crawl runners."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from plt.shop.catalog import ShopConfig
from plt.shop.process import ShopProcess
from plt.verify import Comparison, compare, read_items

DATA = Path(__file__).parent / "data"
PROJECT = Path(__file__).parent.parent

# A few hundred products with every fault well above its default rate.
FAULTY_SHOP = ShopConfig(
    products=300,
    seed=7,
    page_bytes=200_000,
    transient_error_rate=0.05,
    withdrawn_rate=0.03,
    sold_out_rate=0.1,
    missing_active_rate=0.05,
    bad_stock_rate=0.03,
    no_subproducts_rate=0.03,
)


def data_file(name: str) -> bytes:
    return (DATA / name).read_bytes()


@dataclass
class Shop:
    process: ShopProcess
    ground_truth: list[dict[str, Any]]

    @property
    def url(self) -> str:
        assert self.process.url
        return self.process.url

    def compare(self, items_path: Path) -> Comparison:
        return compare(read_items(items_path), self.ground_truth)


@pytest.fixture(scope="session")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shop]:
    """One demo retailer for the session: a fault that lasts for a URL's first
    requests may have been met by an earlier test (see fresh_shop)."""
    with ShopProcess(FAULTY_SHOP) as process:
        truth_path = process.write_ground_truth(tmp_path_factory.mktemp("truth") / "truth.jsonl")
        yield Shop(process, read_items(truth_path))


@pytest.fixture
def fresh_shop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shop]:
    """A demo retailer of its own, whose faults no other test has met yet."""
    with ShopProcess(FAULTY_SHOP) as process:
        truth_path = process.write_ground_truth(tmp_path_factory.mktemp("truth") / "truth.jsonl")
        yield Shop(process, read_items(truth_path))


def crawl_argv(jobdir: Path, shop_url: str | None, *settings: str) -> list[str]:
    argv = [sys.executable, "-m", "scrapy", "crawl", "product", "-s", f"JOBDIR={jobdir}"]
    if shop_url:
        argv += ["-s", f"SHOP_URL={shop_url}"]
    for setting in ("LOG_LEVEL=INFO", *settings):
        argv += ["-s", setting]
    return argv


def crawl_env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("SCRAPY_SETTINGS_MODULE", None)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(PROJECT), env.get("PYTHONPATH")]))
    return env


def run_crawl(
    jobdir: Path, shop_url: str | None, *settings: str, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """``scrapy crawl product`` in a child process, as a user runs it."""
    return subprocess.run(
        crawl_argv(jobdir, shop_url, *settings),
        cwd=PROJECT,
        env=crawl_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def start_crawl(jobdir: Path, shop_url: str, *settings: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        crawl_argv(jobdir, shop_url, *settings),
        cwd=PROJECT,
        env=crawl_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        text=True,
    )


def runs(jobdir: Path) -> list[dict[str, Any]]:
    """The stats of each run of a job that closed (killed runs leave no line)."""
    path = jobdir / "runs.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines()]
