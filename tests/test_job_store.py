"""The job store interface: the same behaviour from each backend.

Every test runs against the SQLite store (in a JOBDIR) and the Redis store
(a real redis-server), through plt.job.store's interface only.
"""

from __future__ import annotations

import itertools

import pytest
from scrapy.utils.test import get_crawler

from plt.distributed.state import STORE_PATH
from plt.errors import ConfigError
from plt.job.sqlite import SQLiteJobStore
from plt.job.store import JobStore, job_store

pytest_plugins = ("tests.redis_server",)

_jobs = itertools.count()


@pytest.fixture(params=["sqlite", "redis"])
def store(request, tmp_path) -> JobStore:
    settings = {"JOBDIR": str(tmp_path / "job")}
    if request.param == "redis":
        server = request.getfixturevalue("redis_server")
        settings.update({
            "PLT_JOB_STORE": STORE_PATH, "REDIS_URL": server.url,
            "PLT_REDIS_JOB": f"job-store-{next(_jobs)}", "PLT_WORKER_NAME": "w",
        })  # fmt: skip
    store = job_store(get_crawler(settings_dict=settings))
    store.open()
    yield store
    store.close()


def lease(store: JobStore, item_id: int | None = None) -> tuple[object, str]:
    row = store.lease_next()
    assert row is not None
    store.hold(row[0], item_id)
    return row


def test_a_request_is_queued_once_leased_then_settled(store):
    assert store.add_request("fp", 0, "A", None, seed=True)
    assert not store.add_request("fp", 0, "A again", None)
    assert store.add_request(None, 0, "unfiltered", None)
    assert store.queued_count() == 2
    first, data = lease(store)
    assert data == "A" and store.leased_count() == 1
    store.settle(first)
    lease(store)
    assert store.lease_next() is None and store.queued_count() == 0


def test_higher_priority_first(store):
    store.add_request("low", 0, "low", None)
    store.add_request("high", 10, "high", None)
    assert lease(store)[1] == "high"


def test_a_retry_takes_over_its_original_and_its_attempts(store):
    store.add_request("a", 0, "A", 5)
    original, _ = lease(store, 5)
    assert store.record_attempt(original, "HTTP 503") == 1
    assert store.add_request("a-retry", 0, "A retry", 5, replaces=original)
    retry, data = lease(store, 5)
    assert data == "A retry"
    assert store.record_attempt(retry, "HTTP 503") == 2


def test_a_given_up_request_counts_and_can_be_retried(store):
    store.show_items([5])
    store.add_request("a", 0, "A", 5)
    held, _ = lease(store, 5)
    store.record_attempt(held, "HTTP 403")
    store.fail_request(held, 5)
    account = store.account()
    assert (account.given_up, account.requests_given_up, account.missing) == (1, 1, 0)
    assert store.retry_failed() == 1
    again, data = lease(store, 5)
    assert data == "A"
    assert store.record_attempt(again, "HTTP 403") == 1  # attempts start over
    assert store.account().given_up == 0


def test_exporting_an_item_settles_its_leases_and_drops_its_partial_item(store):
    store.show_items([7, 8])
    store.add_request("p", 0, "product 7", 7)
    lease(store, 7)
    store.put_pending(7, {"name": "x"})
    assert store.get_pending(7) == {"name": "x"} and store.pending_count() == 1
    store.mark_exported(7, 100)
    assert store.is_exported(7) and store.exported_count() == 1
    assert store.get_pending(7) is None and store.leased_count() == 0
    store.item_withdrawn(8)
    account = store.account()
    assert (account.shown, account.exported, account.withdrawn, account.missing) == (2, 1, 1, 0)


def test_the_listing_shows_items_once(store):
    store.show_items([1, 2])
    store.show_items([2, 3])
    assert store.item_shown(3) and not store.item_shown(4)
    assert store.account().shown == 3


def test_meta_round_trips_json(store):
    store.set_meta("announced_items", 20_103)
    assert store.get_meta("announced_items") == 20_103
    assert store.get_meta("absent", "default") == "default"


def test_an_undecodable_request_is_given_up(store):
    store.add_request("bad", 0, "{garbage", None)
    held, _ = lease(store)
    store.give_up(held)
    assert store.given_up_count() == 1 and store.lease_next() is None


def test_a_seen_fingerprint_is_not_queued_again(store):
    assert store.add_seen("fp")
    assert not store.add_seen("fp")
    assert not store.add_request("fp", 0, "A", None)


def test_the_default_store_is_sqlite(tmp_path):
    assert isinstance(job_store(get_crawler(settings_dict={})), SQLiteJobStore)


@pytest.mark.parametrize("path", ["os.system", "plt.no.such.Store", "not a path"])
def test_a_store_setting_that_names_no_store_is_a_config_error(path):
    with pytest.raises(ConfigError, match="PLT_JOB_STORE"):
        job_store(get_crawler(settings_dict={"PLT_JOB_STORE": path}))


def test_the_job_layer_imports_no_backend_and_no_spider():
    import ast
    from pathlib import Path

    import plt.job

    for path in Path(plt.job.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            else:
                continue
            for name in names:
                assert not name.startswith(
                    ("plt.distributed", "redis", "plt.spiders", "plt.shop")
                ), f"{path.name} imports {name}"
