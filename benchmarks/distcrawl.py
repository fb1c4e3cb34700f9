"""One crawl of benchmarks/distributed.py: its workers, its Redis, its fault.

The workers run in rounds (again while one exits 3); the crawl's exported
count is read in Redis (SCARD) to strike the scenario's fault at its set
point. The crawl's internals are used only through JobKeys and the workers'
settings and exit statuses.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from benchmarks.common import ROOT, count_lines, log, plt_argv, plt_env
from benchmarks.redisproc import CommandMonitor, Probe, RedisProcess

MAX_ROUNDS = 8
RUN_AGAIN = 3  # exit status of a worker whose job is not finished
POLL_FAST = 0.02  # seconds between SCARDs while a fault waits for its set point
POLL_SLOW = 0.5
MEMORY_SAMPLE_S = 1.0
KILL_AFTER_S = 60.0  # after a timeout's SIGTERM, SIGKILL
FAULTS = {"clean": None, "kill-wipe": "kill", "redis-restart": "restart"}


class Crawl:
    """One scenario's crawl: its workers, its Redis and what they said."""

    def __init__(self, name: str, args: argparse.Namespace, root: Path, shop_url: str) -> None:
        from plt.distributed.store import JobKeys

        self.name, self.args, self.root, self.shop_url = name, args, root, shop_url
        self.job = f"bench-{name}"
        self.keys = JobKeys.for_job(self.job)
        self.workers = [f"w{i}" for i in range(args.workers)]
        self.alive = list(self.workers)
        own_dirs = name == "kill-wipe"  # as on separate machines
        self.jobdirs = {
            w: root / (w if own_dirs else "shared") / self.job for w in self.workers
        }  # the same name everywhere, as each machine's jobs/<name>
        self.redis = RedisProcess(root / "redis", persistent=name == "redis-restart")
        self.fault = FAULTS[name]
        self.event: dict[str, Any] = {}
        self.rounds: list[dict[str, Any]] = []
        self.segments: list[Counter[str]] = []  # commandstats, one per Redis process
        self.monitor: CommandMonitor | None = None
        self.probes: list[Probe] = []
        self._attaches = 0  # MONITOR connections opened on the running Redis process
        self._timed_out = False
        self.peak_memory = 0
        self.written: dict[str, int] = {}  # items file -> the round that last wrote it
        self._stamps: dict[str, tuple[int, int]] = {}

    @property
    def probe(self) -> Probe:
        return self.probes[-1]

    def run(self) -> dict[str, Any]:
        self.redis.start()
        try:
            return self._run()
        finally:
            for probe in self.probes:
                probe.close()

    def _run(self) -> dict[str, Any]:
        self.probes.append(Probe(self.redis.url))
        memory_before = int(self.probe.info("memory")["used_memory"])
        self.probe.reset_stats()
        self._attach()
        started = time.monotonic()
        for n in range(1, MAX_ROUNDS + 1):
            self.rounds.append(self.run_round(n))
            if RUN_AGAIN not in self.rounds[-1]["exit"].values():
                break
        wall = time.monotonic() - started
        monitor_complete = self._detach()
        self.segments.append(self.probe.commandstats(self._own()))
        exported = self.probe.scard(self.keys.exported)
        memory_after = int(self.probe.info("memory")["used_memory"])
        key_bytes = self.probe.memory_usage(self.keys.all())
        sent, scripted = Counter(), Counter()
        if self.monitor is not None:
            sent, scripted = self.monitor.by_sender({p.address for p in self.probes})
        return {
            "scenario": self.name,
            "job": self.job,
            "workers": self.workers,
            "jobdirs": {w: str(d) for w, d in self.jobdirs.items()},
            "redis_persistent": self.redis.persistent,
            "rounds": self.rounds,
            "wall_s": wall,
            "event": self.event,
            "exported": exported,
            "commandstats": dict(sum(self.segments, Counter())),
            "monitor": {
                "on": self.monitor is not None,
                "complete": monitor_complete,
                "sent": dict(sent),
                "scripted": dict(scripted),
            },
            "memory": {
                "used_before": memory_before,
                "used_after": memory_after,
                "peak_without_clients": self.peak_memory,
                "key_bytes": key_bytes,
            },
        }

    # -- rounds ---------------------------------------------------------------

    def run_round(self, n: int) -> dict[str, Any]:
        logs = self.root / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        procs = {w: self.start_worker(w, logs / f"{w}-round{n}.log") for w in self.alive}
        log(f"[{self.name}] round {n}: {len(procs)} workers started")
        started = time.monotonic()
        self._timed_out = False
        try:
            self._watch(n, procs, started)
        except BaseException:
            stop_workers(procs.values(), kill=True)
            raise
        wall = time.monotonic() - started
        statuses = {w: p.returncode for w, p in procs.items()}
        log(f"[{self.name}] round {n}: exit statuses {statuses}, {wall:.1f} s")
        for path in self.items_files():
            stat = path.stat()
            stamp = (stat.st_mtime_ns, stat.st_size)
            if self._stamps.get(str(path)) != stamp:
                self._stamps[str(path)], self.written[str(path)] = stamp, n
        return {"round": n, "exit": statuses, "wall_s": wall, "timed_out": self._timed_out}

    def _watch(self, n: int, procs: dict[str, subprocess.Popen[bytes]], started: float) -> None:
        """Until every worker has exited: the fault at its set point, memory, progress."""
        next_progress = started + self.args.progress_interval
        next_sample = started
        while any(p.poll() is None for p in procs.values()):
            now = time.monotonic()
            pending = self.fault is not None and not self.event
            exported = self.probe.scard(self.keys.exported)
            if pending and exported >= self.args.at:
                self.strike(procs, exported)
                continue
            if now >= next_sample:
                self.sample_memory()
                next_sample = now + MEMORY_SAMPLE_S
            if now >= next_progress:
                running = sum(p.poll() is None for p in procs.values())
                log(
                    f"[{self.name}] round {n}: {now - started:.0f} s, {exported:,} exported, "
                    f"{running} workers running"
                )
                next_progress = now + self.args.progress_interval
            if now - started > self.args.timeout and not self._timed_out:
                log(f"[{self.name}] round {n}: over {self.args.timeout:.0f} s, stopping it")
                stop_workers(procs.values())
                self._timed_out = True
            elif self._timed_out and now - started > self.args.timeout + KILL_AFTER_S:
                stop_workers(procs.values(), kill=True)
            time.sleep(POLL_FAST if pending else POLL_SLOW)

    def start_worker(self, name: str, log_path: Path) -> subprocess.Popen[bytes]:
        settings = [
            "PLT_DISTRIBUTED=True",
            f"REDIS_URL={self.redis.url}",
            f"PLT_REDIS_JOB={self.job}",
            f"PLT_WORKER_NAME={name}",
            f"PROFILE={self.args.profile}",
            f"CONCURRENT_REQUESTS={self.args.concurrency}",
            f"CONCURRENT_REQUESTS_PER_DOMAIN={self.args.concurrency}",
            "LOG_LEVEL=INFO",
        ]
        if self.args.lease_seconds:
            settings.append(f"PLT_LEASE_SECONDS={self.args.lease_seconds:g}")
        argv = plt_argv(self.shop_url, self.jobdirs[name], settings)
        with log_path.open("wb") as out:
            return subprocess.Popen(
                argv,
                cwd=ROOT,
                env=plt_env(),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    def sample_memory(self) -> None:
        info = self.probe.info("memory")
        used = int(info["used_memory"]) - int(info.get("mem_clients_normal", 0))
        self.peak_memory = max(self.peak_memory, used)

    # -- faults ---------------------------------------------------------------

    def strike(self, procs: dict[str, subprocess.Popen[bytes]], exported: int) -> None:
        if self.fault == "kill":
            self.kill_and_wipe(procs, exported)
        else:
            self.restart_redis(exported)

    def kill_and_wipe(self, procs: dict[str, subprocess.Popen[bytes]], exported: int) -> None:
        # The running worker with the most items in its JOBDIR: its loss costs most. (A
        # worker may be gone already: one whose only request failed for now ends at once.)
        running = [w for w in self.alive if procs[w].poll() is None] or self.alive
        victim = max(reversed(running), key=lambda w: item_lines(self.jobdirs[w]))
        proc = procs[victim]
        killed = proc.poll() is None
        if killed:
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        at_kill = self.probe.scard(self.keys.exported)
        jobdir = self.jobdirs[victim]
        lines = item_lines(jobdir)
        shutil.rmtree(jobdir, ignore_errors=True)
        self.alive.remove(victim)
        self.event = {
            "kind": "kill-wipe",
            "worker": victim,
            "set_point": exported,
            "exported_at_kill": at_kill,
            "items_lines_wiped": lines,
            "killed": killed,  # False: it had exited on its own
            "exit": proc.returncode,
        }
        how = "killed (SIGKILL)" if killed else f"already exited ({proc.returncode})"
        log(
            f"[{self.name}] {victim} {how} at {at_kill:,} exported; "
            f"its JOBDIR, with {lines:,} item lines, deleted"
        )

    def restart_redis(self, exported: int) -> None:
        complete = self._detach()
        at_shutdown = self.probe.scard(self.keys.exported)
        self.segments.append(self.probe.commandstats(self._own()))
        down = time.monotonic()
        self.redis.shutdown()
        log(
            f"[{self.name}] Redis shut down at {at_shutdown:,} exported; "
            f"starting it again in {self.args.outage_seconds:g} s"
        )
        time.sleep(self.args.outage_seconds)  # the outage itself
        self.redis.restart()
        outage = time.monotonic() - down
        self.probes.append(Probe(self.redis.url))
        self._attach()
        back = self.probe.scard(self.keys.exported)
        self.event = {
            "kind": "redis-restart",
            "set_point": exported,
            "exported_at_shutdown": at_shutdown,
            "exported_after_restart": back,
            "outage_s": outage,
            "monitor_complete": complete,  # up to the SHUTDOWN
        }
        log(f"[{self.name}] Redis back after {outage:.1f} s with {back:,} exported")

    # -- Redis figures ----------------------------------------------------------

    def _attach(self) -> None:
        self._attaches = 0
        if self.args.no_monitor:
            return
        self.monitor = self.monitor or CommandMonitor("127.0.0.1", self.redis.port)
        self.monitor.attach()
        self._attaches = 1

    def _detach(self) -> bool:
        return self.monitor.detach(self.probe) if self.monitor is not None else False

    def _own(self) -> Counter[str]:
        """The MONITOR connection's own command, in this Redis process's commandstats."""
        return Counter({"monitor": self._attaches})

    def items_files(self) -> list[Path]:
        """The merged items.jsonl of every JOBDIR still there."""
        dirs = {self.jobdirs[w] for w in self.alive}
        return sorted(d / "items.jsonl" for d in dirs if (d / "items.jsonl").is_file())


def item_lines(jobdir: Path) -> int:
    """Lines of the items files in a JOBDIR (the merged one and the worker's own)."""
    return sum(count_lines(p) for p in jobdir.glob("items*.jsonl"))


def stop_workers(procs: Iterable[subprocess.Popen[bytes]], *, kill: bool = False) -> None:
    for proc in procs:
        if proc.poll() is None:
            proc.kill() if kill else proc.terminate()
