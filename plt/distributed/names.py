"""The names of a distributed crawl and of its workers, from the settings."""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import TYPE_CHECKING

from plt.distributed.store import safe_name
from plt.job.jobdir import JobStateError

if TYPE_CHECKING:
    from scrapy.settings import BaseSettings


def job_name(settings: BaseSettings) -> str:
    """PLT_REDIS_JOB, else the JOBDIR's name (``product-<date>`` by default)."""
    name = settings.get("PLT_REDIS_JOB")
    if not name and settings.get("JOBDIR"):
        name = Path(settings["JOBDIR"]).resolve().name
    if not name:
        raise JobStateError("Distributed mode needs PLT_REDIS_JOB or JOBDIR to name the crawl.")
    return safe_name(str(name))


def worker_name(settings: BaseSettings) -> str:
    """PLT_WORKER_NAME, else ``<host>-<pid>``: unique among live workers."""
    return safe_name(settings.get("PLT_WORKER_NAME") or f"{socket.gethostname()}-{os.getpid()}")


def worker_items_file(worker: str) -> str:
    return f"items-{worker}.jsonl"
