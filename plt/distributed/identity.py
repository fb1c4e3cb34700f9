"""The crawl's identity in Redis, and the check that it is still the one a worker joined.

The first worker to join a crawl records, in one atomic step, a random
generation id, its start time and its retailer (SHOP_URL and STOCK_API_URL,
normalised) in the crawl's meta hash. Each worker keeps the identity it joined,
in memory and in ``<JOBDIR>/redis-crawl.json``. Redis that restarts without
persistence, evicts or flushes keys, or a reset by another worker, removes or
replaces it: the worker then stops with one line instead of reading the
missing keys as an empty queue, which would look like a finished crawl.
"""

from __future__ import annotations

import logging
import os
import secrets
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

import ujson

from plt.job.jobdir import JobStateError

if TYPE_CHECKING:
    from redis import Redis
    from scrapy.settings import BaseSettings

    from plt.distributed.store import JobKeys

logger = logging.getLogger(__name__)

RECORD_FILE = "redis-crawl.json"
_DEFAULT_PORTS = {"http": 80, "https": 443}
_FIELDS = ("generation", "started_at", "shop_url", "stock_api_url")
START_OVER = "start the crawl over with -s PLT_JOB_RESET=1"

# Creates the identity unless there is one. A crawl with keys but no identity
# is what a worker leaves when it goes on writing after its crawl vanished:
# joining it would skip whatever its seen set holds.
# KEYS: meta, every other key of the crawl   ARGV: generation, started at, shop, stock
JOIN = """
local created = 0
if not redis.call('HGET', KEYS[1], 'generation') then
  if redis.call('EXISTS', unpack(KEYS)) > 0 then return {'damaged'} end
  redis.call('HSET', KEYS[1], 'generation', ARGV[1], 'started_at', ARGV[2],
             'shop_url', ARGV[3], 'stock_api_url', ARGV[4])
  created = 1
end
local v = redis.call('HMGET', KEYS[1], 'generation', 'started_at', 'shop_url', 'stock_api_url')
return {'ok', created, v[1], v[2], v[3], v[4]}
"""


def normalise_url(url: str) -> str:
    """Scheme and host in lower case, no default port, no trailing slash, no fragment.

    Other spellings of one host (``localhost`` and ``127.0.0.1``) stay different.
    """
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"  # IPv6
    port = parts.port
    netloc = host if port is None or _DEFAULT_PORTS.get(scheme) == port else f"{host}:{port}"
    if parts.username is not None:
        userinfo = parts.username + (f":{parts.password}" if parts.password is not None else "")
        netloc = f"{userinfo}@{netloc}"
    return urlunsplit((scheme, netloc, parts.path.rstrip("/"), parts.query, ""))


@dataclass(frozen=True)
class Retailer:
    shop_url: str
    stock_api_url: str

    @classmethod
    def from_settings(cls, settings: BaseSettings) -> Retailer:
        """What the spider crawls: STOCK_API_URL defaults to SHOP_URL."""
        shop = settings.get("SHOP_URL") or ""
        return cls(normalise_url(shop), normalise_url(settings.get("STOCK_API_URL") or shop))


@dataclass(frozen=True)
class CrawlIdentity:
    generation: str
    started_at: str
    shop_url: str
    stock_api_url: str
    # In the worker's record only: set once it saw the crawl finished.
    finished_exported: int | None = None


def _text(value: Any) -> str:
    raw = value.decode() if isinstance(value, bytes) else str(value)
    try:
        decoded = ujson.loads(raw)  # meta values are JSON
    except ValueError:
        return raw
    return decoded if isinstance(decoded, str) else raw


def read_identity(server: Redis, keys: JobKeys) -> CrawlIdentity | None:
    values = server.hmget(keys.meta, list(_FIELDS))
    if values[0] is None:
        return None
    return CrawlIdentity(*(_text(v) if v is not None else "" for v in values))


def retailer_mismatch(job: str, seeded: CrawlIdentity, mine: Retailer) -> str | None:
    """One line when this worker's retailer is not the crawl's, else None."""
    ours = {"SHOP_URL": mine.shop_url, "STOCK_API_URL": mine.stock_api_url}
    theirs = {"SHOP_URL": seeded.shop_url, "STOCK_API_URL": seeded.stock_api_url}
    differ = [name for name in ours if ours[name] != theirs[name]]
    if not differ:
        return None
    this = " and ".join(f"{name}={ours[name]}" for name in differ)
    return (
        f"Crawl {job} in Redis was seeded with SHOP_URL={theirs['SHOP_URL']} "
        f"and STOCK_API_URL={theirs['STOCK_API_URL']}; this worker has {this}. "
        f"Every worker of a crawl must name the same retailer, spelled the same way "
        f"(localhost and 127.0.0.1 are different spellings), or name another crawl "
        f"with PLT_REDIS_JOB."
    )


def lost_message(job: str, joined: CrawlIdentity, found: CrawlIdentity | None) -> str:
    if found is None:
        what = (
            "its keys are gone (Redis restarted without persistence, evicted or flushed "
            "them, or a worker reset the crawl)"
        )
    else:
        what = f"it was started again at {found.started_at} (Redis lost it, or a worker reset it)"
    return (
        f"The state of crawl {job} in Redis was lost: this worker joined the crawl started "
        f"at {joined.started_at}, but {what}. Products may be missing, so the worker stops: "
        f"{START_OVER}, on a Redis with persistence (appendonly yes) and "
        f"maxmemory-policy noeviction."
    )


class CrawlRecord:
    """The identity this JOBDIR's workers joined: ``<JOBDIR>/redis-crawl.json``."""

    def __init__(self, jobdir: Path | None, job: str) -> None:
        self.path = jobdir / RECORD_FILE if jobdir is not None else None
        self.job = job

    def read(self) -> CrawlIdentity | None:
        if self.path is None:
            return None
        try:
            data = ujson.loads(self.path.read_bytes())
            if data.pop("job") != self.job:
                return None  # the JOBDIR was used for another crawl name
            return CrawlIdentity(**data)
        except FileNotFoundError:
            return None
        except (OSError, ValueError, TypeError, KeyError, AttributeError) as exc:
            raise JobStateError(
                f"{self.path} is damaged ({exc}); {START_OVER}, or remove the file "
                f"if this JOBDIR's items are of the crawl {self.job} now in Redis."
            ) from None

    def write(self, identity: CrawlIdentity) -> None:
        if self.path is None:
            return
        data = ujson.dumps({"job": self.job, **asdict(identity)}).encode()
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        try:
            tmp.write_bytes(data)
            os.replace(tmp, self.path)
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            raise JobStateError(f"{self.path} cannot be written ({exc})") from None

    def remove(self) -> None:
        if self.path is not None:
            self.path.unlink(missing_ok=True)


class CrawlGuard:
    """Joins the crawl once, then checks cheaply (one HGET) that it is still there."""

    def __init__(
        self, server: Redis, keys: JobKeys, job: str, retailer: Retailer, jobdir: Path | None
    ) -> None:
        self.server = server
        self.keys = keys
        self.job = job
        self.retailer = retailer
        self.record = CrawlRecord(jobdir, job)
        self._join = server.register_script(JOIN)
        self.joined: CrawlIdentity | None = None
        self.created = False
        # The crawl finished before and its keys expired since: nothing to do.
        self.expired: CrawlIdentity | None = None

    def join(self, now: str) -> None:
        """Join the crawl, creating it if new; JobStateError if it cannot be joined."""
        recorded = self.record.read()
        current = read_identity(self.server, self.keys)
        if recorded is not None and (current is None or current.generation != recorded.generation):
            if current is None and recorded.finished_exported is not None:
                logger.info(
                    "Crawl %s finished (started at %s); its keys in Redis expired since "
                    "(PLT_REDIS_FINISHED_TTL).",
                    self.job,
                    recorded.started_at,
                )
                self.expired = recorded
                return
            raise JobStateError(lost_message(self.job, recorded, current))
        keys = [self.keys.meta, *(k for k in self.keys.all() if k != self.keys.meta)]
        args = [secrets.token_hex(8), now, self.retailer.shop_url, self.retailer.stock_api_url]
        row = self._join(keys=keys, args=[ujson.dumps(a) for a in args])
        if _text(row[0]) == "damaged":
            raise JobStateError(
                f"The state of crawl {self.job} in Redis is incomplete: it has keys but no "
                f"record of its start, as a worker leaves them after the crawl's state was "
                f"lost. Products may be missing: {START_OVER}."
            )
        joined = CrawlIdentity(*(_text(v) if v is not None else "" for v in row[2:]))
        if message := retailer_mismatch(self.job, joined, self.retailer):
            raise JobStateError(message)
        self.created = bool(row[1])
        if recorded is not None:
            joined = replace(joined, finished_exported=recorded.finished_exported)
        self.joined = joined
        if recorded != joined:
            self.record.write(joined)

    def check(self) -> JobStateError | None:
        """An error when the crawl's identity in Redis is not the one joined."""
        joined = self.joined
        if joined is None:
            return None
        raw = self.server.hget(self.keys.meta, "generation")
        if raw is not None and _text(raw) == joined.generation:
            return None
        found = read_identity(self.server, self.keys) if raw is not None else None
        return JobStateError(lost_message(self.job, joined, found))

    def finished(self, exported: int) -> None:
        """Remember in the JOBDIR that the crawl finished, for after its keys expire."""
        if self.joined is not None and self.joined.finished_exported is None:
            self.joined = replace(self.joined, finished_exported=exported)
            try:
                self.record.write(self.joined)
            except JobStateError as exc:  # the crawl is finished all the same
                logger.warning("%s", exc)
