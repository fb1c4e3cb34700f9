"""What a distributed worker checks in Redis before anything is fetched."""

from __future__ import annotations

import logging
from contextlib import contextmanager
from urllib.parse import urlsplit

import pytest
from redis import Redis

from plt.distributed.checks import check_redis_config
from plt.errors import ConfigError
from tests.conftest import run_crawl
from tests.test_crawl import served
from tests.test_distributed_state import make_state

pytest_plugins = ("tests.redis_server",)


@contextmanager
def redis_config(redis_server, name: str, value: str):
    client = redis_server.client()
    before = client.config_get(name)[name]
    client.config_set(name, value)
    try:
        yield client
    finally:
        client.config_set(name, before)


def test_a_redis_that_may_evict_keys_is_refused(redis_server):
    evicting = redis_config(redis_server, "maxmemory-policy", "allkeys-lru")
    refused = pytest.raises(ConfigError, match="maxmemory-policy allkeys-lru: it may evict")
    with evicting as client, refused:
        check_redis_config(client)
    check_redis_config(redis_server.client())  # noeviction, Redis' default


def test_a_redis_without_persistence_is_a_warning(redis_server, caplog):
    caplog.set_level(logging.WARNING)
    check_redis_config(redis_server.client())  # the tests' Redis saves nothing
    (record,) = caplog.records
    assert "keeps nothing on disk (no AOF, no RDB save points)" in record.getMessage()
    caplog.clear()
    with redis_config(redis_server, "save", "3600 1") as client:
        check_redis_config(client)
    assert not caplog.records


def test_a_redis_that_refuses_config_is_a_warning(redis_server, caplog):
    admin = redis_server.client()
    admin.acl_setuser(
        "noconfig", enabled=True, nopass=True, keys="*", commands=["+@all", "-config"]
    )
    try:
        client = Redis.from_url(f"redis://noconfig@127.0.0.1:{redis_server.port}/0")
        check_redis_config(client)
    finally:
        admin.acl_deluser("noconfig")
    (record,) = caplog.records
    assert "refuses CONFIG GET" in record.getMessage()
    assert "cannot be checked" in record.getMessage()


def distributed(redis_server, *extra: str) -> tuple[str, ...]:
    return ("PLT_DISTRIBUTED=True", f"REDIS_URL={redis_server.url}", *extra)


def test_a_worker_is_refused_by_a_redis_that_may_evict_keys(shop, redis_server, tmp_path):
    before = served(shop)
    with redis_config(redis_server, "maxmemory-policy", "allkeys-lru"):
        proc = run_crawl(tmp_path, shop.url, *distributed(redis_server), timeout=60)
    assert proc.returncode == 1, proc.stderr[-3000:]
    (line,) = [line for line in proc.stderr.splitlines() if "maxmemory-policy" in line]
    assert line.startswith("error: Redis at REDIS_URL has maxmemory-policy allkeys-lru")
    assert served(shop) == before


def test_a_worker_of_another_retailer_spelling_is_refused_before_fetching(
    shop, redis_server, tmp_path
):
    seeded = make_state(redis_server, tmp_path, "seeder", SHOP_URL=shop.url)
    seeded.open()
    seeded.close()
    port = urlsplit(shop.url).port
    before = served(shop)
    proc = run_crawl(tmp_path, f"http://localhost:{port}", *distributed(redis_server), timeout=60)
    assert proc.returncode == 1, proc.stderr[-3000:]
    (line,) = [line for line in proc.stderr.splitlines() if "was seeded with" in line]
    assert line.startswith(
        f"error: Crawl {tmp_path.name} in Redis was seeded with SHOP_URL={shop.url}"
    )
    assert f"this worker has SHOP_URL=http://localhost:{port}" in line
    assert served(shop) == before
