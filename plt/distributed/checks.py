"""What a distributed worker checks in Redis before anything is fetched.

* A Redis that may evict keys (``maxmemory-policy`` other than ``noeviction``,
  whether ``maxmemory`` is set or not) would lose the crawl's state under
  memory pressure: refused, one line, exit status 1.
* A Redis that keeps nothing on disk (no AOF, no RDB save points) loses the
  crawl when it restarts: one warning line.
* A worker whose SHOP_URL or STOCK_API_URL is not the crawl's: refused, one
  line, exit status 1 (plt.distributed.identity records the crawl's retailer).

Run by the RedisStartCheck extension, which the distributed add-on enables;
it is built with the crawler, before the engine, so its ConfigError is one
line and exit status 1 (plt.commands.crawl). An unreachable Redis is left to
the job state, which reports it when it opens (exit status 2).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from redis import Redis
from redis.exceptions import RedisError, ResponseError
from scrapy.exceptions import NotConfigured

from plt.distributed.identity import Retailer, read_identity, retailer_mismatch
from plt.distributed.names import job_name
from plt.distributed.store import JobKeys
from plt.errors import ConfigError
from plt.job.jobdir import JobStateError

if TYPE_CHECKING:
    from typing import Self

    from redis import Redis
    from scrapy.crawler import Crawler

logger = logging.getLogger(__name__)


def _config(server: Redis, name: str) -> str:
    value = server.config_get(name).get(name, "")
    return value.decode() if isinstance(value, bytes) else str(value)


def check_redis_config(server: Redis) -> None:
    """ConfigError if Redis may evict keys; a warning if it keeps nothing on disk."""
    try:
        policy = _config(server, "maxmemory-policy")
        save = _config(server, "save").strip()
        appendonly = _config(server, "appendonly")
    except ResponseError as exc:  # CONFIG renamed, disabled, or not allowed to this user
        logger.warning(
            "Redis at REDIS_URL refuses CONFIG GET (%s): its eviction policy and persistence "
            "cannot be checked. It must run with maxmemory-policy noeviction, or the "
            "crawl's keys may be evicted and the crawl stops.",
            exc,
        )
        return
    if policy != "noeviction":
        raise ConfigError(
            f"Redis at REDIS_URL has maxmemory-policy {policy}: it may evict the crawl's "
            f"keys and lose its state. Set maxmemory-policy noeviction (in redis.conf, or "
            f"redis-cli CONFIG SET maxmemory-policy noeviction)."
        )
    if not save and appendonly != "yes":
        logger.warning(
            "Redis at REDIS_URL keeps nothing on disk (no AOF, no RDB save points): if it "
            "restarts, the crawl's state is lost and its workers stop. Set appendonly yes."
        )


def check_retailer(server: Redis, job: str, retailer: Retailer) -> None:
    """ConfigError if the crawl was seeded with another SHOP_URL or STOCK_API_URL."""
    seeded = read_identity(server, JobKeys.for_job(job))
    if seeded is not None and (message := retailer_mismatch(job, seeded, retailer)):
        raise ConfigError(message)


class RedisStartCheck:
    """Checks once, while the crawler is built; then it has nothing to do."""

    def __init__(self, crawler: Crawler) -> None:
        settings = crawler.settings
        if not settings.getbool("PLT_DISTRIBUTED"):
            raise NotConfigured
        server = Redis.from_url(settings["REDIS_URL"], socket_connect_timeout=5.0)
        try:
            check_redis_config(server)
            if not settings.getbool("PLT_JOB_RESET"):  # a reset forgets the old retailer
                check_retailer(server, job_name(settings), Retailer.from_settings(settings))
        except (RedisError, JobStateError):
            pass  # unreachable, or no crawl name: the job state says so when it opens
        finally:
            server.close()
        raise NotConfigured

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        return cls(crawler)
