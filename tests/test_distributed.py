"""Distributed mode end to end: workers sharing one crawl of the demo retailer in Redis."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

from plt.distributed.store import JobKeys
from plt.job.crash import ENV as CRASH_ENV
from plt.job.crash import EXIT_STATUS as CRASH_EXIT
from tests.conftest import PROJECT, crawl_argv, crawl_env, runs
from tests.test_crawl import requests_of_one_clean_crawl, served

pytest_plugins = ("tests.redis_server",)

PROFILE = "256mb"
BUDGET_MB = 238  # MEMUSAGE_LIMIT_MB of that profile
# Short, so that the survivor of a kill takes over quickly; long where nothing
# dies, so that a slow machine cannot expire a live worker's leases.
KILL_LEASE_SECONDS = 2
LEASE_SECONDS = 30
TIMEOUT = 120


def worker_argv(jobdir: Path, shop_url: str, redis_url: str, name: str, *extra: str) -> list[str]:
    return crawl_argv(
        jobdir,
        shop_url,
        "PLT_DISTRIBUTED=True",
        f"REDIS_URL={redis_url}",
        f"PLT_WORKER_NAME={name}",
        f"PROFILE={PROFILE}",
        f"PLT_LEASE_SECONDS={LEASE_SECONDS}",
        *extra,  # later -s values win
    )


class Worker:
    def __init__(
        self,
        jobdir: Path,
        shop_url: str,
        redis_url: str,
        name: str,
        *extra: str,
        env: dict[str, str] | None = None,
    ):
        self.name = name
        jobdir.mkdir(parents=True, exist_ok=True)
        self.log = jobdir.parent / f"worker-{jobdir.name}-{name}.log"
        with self.log.open("wb") as log:
            self.proc = subprocess.Popen(
                worker_argv(jobdir, shop_url, redis_url, name, *extra),
                cwd=PROJECT,
                env={**crawl_env(), **(env or {})},
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def wait(self) -> int:
        try:
            return self.proc.wait(timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(f"worker {self.name} hangs:\n{self.output()[-4000:]}") from None

    def output(self) -> str:
        return self.log.read_text(errors="replace")


def lines(path: Path) -> int:
    return len(path.read_bytes().splitlines()) if path.exists() else 0


def meta(redis_server, jobdir: Path) -> dict[str, Any]:
    raw = redis_server.client().hgetall(JobKeys.for_job(jobdir.name).meta)
    return {k.decode(): json.loads(v) for k, v in raw.items()}


def test_two_workers_split_one_crawl_then_a_rerun_does_nothing(shop, redis_server, tmp_path):
    jobdir = tmp_path  # its name, unique per test, names the crawl in Redis
    url = redis_server.url
    served_before = served(shop)
    # One worker waits for a seed, the other seeds the crawl.
    waiter = Worker(jobdir, shop.url, url, "waiter", "PLT_REDIS_SEED=False")
    time.sleep(1.5)
    assert waiter.proc.poll() is None, waiter.output()[-4000:]
    seeder = Worker(jobdir, shop.url, url, "seeder")
    for worker in (waiter, seeder):
        assert worker.wait() == 0, worker.output()[-4000:]

    assert (result := shop.compare(jobdir / "items.jsonl")).exact, result.summary()
    per_worker = {w: lines(jobdir / f"items-{w}.jsonl") for w in ("waiter", "seeder")}
    assert sum(per_worker.values()) == len(shop.ground_truth)  # no product twice
    assert served(shop) - served_before == requests_of_one_clean_crawl(shop)
    stats = {s["plt/redis/worker"]: s for s in runs(jobdir)}
    assert stats["waiter"]["plt/job/start_skipped"] == 1
    for s in stats.values():
        assert s["finish_reason"] == "finished"
        assert s["plt/profile"] == PROFILE
        assert s["memusage/max"] < BUDGET_MB * 1024 * 1024
    assert meta(redis_server, jobdir)["finished"] is True

    # The same keys again: the start request is a duplicate, and the crawl says so.
    again = Worker(jobdir, shop.url, url, "late")
    assert again.wait() == 0
    assert f"is finished: {len(shop.ground_truth)} items exported. Nothing to do" in (
        again.output()
    )
    assert runs(jobdir)[-1].get("scheduler/dequeued", 0) == 0
    assert (result := shop.compare(jobdir / "items.jsonl")).exact, result.summary()


def test_a_worker_killed_with_its_disk_removed_loses_nothing(shop, redis_server, tmp_path):
    jobdir = tmp_path / "job"  # its name, unique per test, names the crawl in Redis
    served_before = served(shop)
    lease = f"PLT_LEASE_SECONDS={KILL_LEASE_SECONDS}"
    # The victim, on its own machine (its JOBDIR is its disk), dies like kill -9
    # right after its 20th export: a set point of the crawl, not a set time.
    victim_disk = tmp_path / "victim-disk" / "job"
    victim = Worker(victim_disk, shop.url, redis_server.url, "victim", lease,
                    env={CRASH_ENV: "after_record:20"})  # fmt: skip
    assert victim.wait() == CRASH_EXIT, victim.output()[-4000:]
    assert lines(victim_disk / "items-victim.jsonl") == 20
    shutil.rmtree(victim_disk.parent)  # the disk is gone, and the victim's items file
    survivor = Worker(jobdir, shop.url, redis_server.url, "survivor", lease)
    assert survivor.wait() == 0, survivor.output()[-4000:]

    assert (result := shop.compare(jobdir / "items.jsonl")).exact, result.summary()
    requeued = meta(redis_server, jobdir)["requeued_total"]
    assert requeued > 0  # the victim's leases expired and were fetched again
    (stats,) = runs(jobdir)  # the killed worker wrote none
    # Expired when the survivor opened the crawl, or later while it ran.
    assert stats.get("plt/job/requeued", 0) + stats.get("plt/redis/requeued", 0) == requeued
    # Only the requests leased by the killed worker are fetched twice.
    refetched = served(shop) - served_before - requests_of_one_clean_crawl(shop)
    assert 0 <= refetched <= requeued


def test_a_crawl_lost_mid_crawl_stops_its_worker_and_never_looks_finished(
    shop, redis_server, tmp_path
):
    jobdir = tmp_path
    argv = worker_argv(jobdir, shop.url, redis_server.url, "w")
    # The crawl's keys vanish right after the worker's 20th export.
    flushed = [argv[0], "-m", "tests.redis_flush", "20", *argv[3:]]
    proc = subprocess.run(
        flushed, cwd=PROJECT, env=crawl_env(), capture_output=True, text=True, timeout=TIMEOUT
    )
    assert proc.returncode == 2, proc.stderr[-4000:]
    lost = f"The state of crawl {jobdir.name} in Redis was lost"
    errors = [line for line in proc.stderr.splitlines() if "] ERROR: " in line]
    assert len(errors) == 1 and lost in errors[0], errors
    assert "PLT_JOB_RESET=1" in errors[0]
    assert not (jobdir / "items.jsonl").exists()  # nothing merged as if finished
    (stats,) = runs(jobdir)
    assert stats["finish_reason"] == "job_state_error"
    assert 20 <= lines(jobdir / "items-w.jsonl") < len(shop.ground_truth)

    # The next run of the worker refuses the lost crawl, before anything is fetched.
    before = served(shop)
    again = subprocess.run(
        argv, cwd=PROJECT, env=crawl_env(), capture_output=True, text=True, timeout=TIMEOUT
    )
    assert again.returncode == 2, again.stderr[-4000:]
    assert lost in again.stderr
    assert served(shop) == before

    # Starting over finishes the crawl.
    reset = Worker(jobdir, shop.url, redis_server.url, "w", "PLT_JOB_RESET=1")
    assert reset.wait() == 0, reset.output()[-4000:]
    assert (result := shop.compare(jobdir / "items.jsonl")).exact, result.summary()
    assert redis_server.client().ttl(JobKeys.for_job(jobdir.name).meta) > 0


OUTAGE_SECONDS = 5


def test_a_redis_outage_mid_crawl_is_ridden_out(shop, persistent_redis, tmp_path):
    jobdir = tmp_path
    argv = worker_argv(jobdir, shop.url, persistent_redis.url, "w")
    # Redis shuts down right after the worker's 20th export, and is away for 5 s.
    outage = [argv[0], "-m", "tests.redis_outage", "20", *argv[3:]]
    proc = subprocess.Popen(
        outage, cwd=PROJECT, env=crawl_env(), stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert persistent_redis.proc is not None
        persistent_redis.proc.wait(timeout=TIMEOUT)
        time.sleep(OUTAGE_SECONDS)  # the outage itself, not a wait for timing
        persistent_redis.restart()
        _, stderr = proc.communicate(timeout=TIMEOUT)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, stderr[-4000:]
    assert "Traceback" not in stderr, stderr[-4000:]
    assert "Redis is unreachable" in stderr and "Redis is back after" in stderr
    assert (result := shop.compare(jobdir / "items.jsonl")).exact, result.summary()
    (stats,) = runs(jobdir)
    assert stats["finish_reason"] == "finished"
