"""A distributed crawl's items by fate, as the SQLite store counts them."""

from __future__ import annotations

import itertools
import json

import pytest

from plt.distributed import account as account_module
from plt.distributed.account import redis_account
from plt.distributed.store import JobKeys, LeaseStore
from plt.job.sqlrecord import TO_DO, WITHDRAWN

pytest_plugins = ("tests.redis_server",)

_jobs = itertools.count()


@pytest.fixture
def store(redis_server) -> LeaseStore:
    return LeaseStore(redis_server.client(), JobKeys.for_job(f"account-{next(_jobs)}"))


def request(item_id: int | None) -> str:
    return json.dumps({"url": "u", "cb_kwargs": {} if item_id is None else {"sku": item_id}})


def test_every_item_shown_is_counted_by_fate(store):
    server, k = store.server, store.keys
    server.hset(k.shown, mapping={i: TO_DO for i in range(1, 9)})
    server.hset(k.shown, 8, WITHDRAWN)
    server.sadd(k.exported, 1, 2)
    # 3: kept for the next run; 4: a partial item waits; 5: given up;
    # 6: queued; 7: no request left at all; and a listing page queued.
    for item_id, fp in ((3, "a"), (5, "b"), (6, "c"), (None, "d")):
        store.push(fp, 0, request(item_id), None, seed=True)
    kept, _ = store.pop("w", 60)  # first in, first out at one priority
    given_up, _ = store.pop("w", 60)
    store.give_back("w", [kept], failed=True)
    store.give_up(given_up, 5)
    server.hset(k.pending, 4, "{}")
    account = redis_account(server, k, "sku")
    assert account.shown == 8
    assert account.exported == 2
    assert account.withdrawn == 1
    assert account.failed_for_now == 2  # 3 (kept) and 4 (partial item)
    assert (account.given_up, account.not_fetched, account.no_request) == (1, 1, 1)
    assert account.requests_left == 3  # one kept, two queued (6 and the listing page)
    assert account.requests_given_up == 1
    assert account.others_left == 1  # the request with no item id


def test_a_request_given_up_whose_item_was_exported_leaves_nothing_missing(store):
    store.push("a", 0, request(9), None, seed=True)
    lease, _ = store.pop("w", 60)
    store.give_up(lease, 9)
    store.server.sadd(store.keys.exported, 9)
    assert redis_account(store.server, store.keys, "sku").requests_given_up == 0


def test_memory_is_bounded_by_the_batch(store, monkeypatch):
    monkeypatch.setattr(account_module, "_BATCH", 3)
    store.server.hset(store.keys.shown, mapping={i: TO_DO for i in range(10)})
    store.server.sadd(store.keys.exported, *range(0, 10, 2))
    account = redis_account(store.server, store.keys, "sku")
    assert (account.shown, account.exported, account.no_request) == (10, 5, 5)
