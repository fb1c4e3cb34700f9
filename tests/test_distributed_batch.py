"""Batched steps: writes that wait ride with the next call, in order, atomic each."""

from __future__ import annotations

import itertools
import json

import pytest

from plt.distributed.batch import Recent, Steps
from plt.distributed.connection import redis_client
from plt.distributed.store import JobKeys, LeaseStore

pytest_plugins = ("tests.redis_server",)

_jobs = itertools.count()


@pytest.fixture
def store(redis_server) -> LeaseStore:
    return LeaseStore(redis_client(redis_server.url, 5), JobKeys.for_job(f"batch-{next(_jobs)}"))


def request(item_id: int | None = None) -> str:
    return json.dumps({"url": "u", "cb_kwargs": {} if item_id is None else {"sku": item_id}})


def test_waiting_steps_ride_with_the_next_call(store, redis_server):
    store.push("a", 0, request(5), None, seed=True)
    (leased,) = store.pop_many("w", 60, 8, "sku")
    lease = leased.lease
    store.later("pending", 5, '{"name": "x"}')
    store.later("export", 5, "w", 10, b'{"sku": 5}\n', lease)
    plain = redis_server.client()
    assert not plain.sismember(store.keys.exported, 5)  # nothing sent yet
    assert store.push("b", 0, request(), None, seed=False)  # one call: both steps, then this
    assert plain.sismember(store.keys.exported, 5)
    assert not plain.hexists(store.keys.pending, 5)  # stored, then dropped by the export
    assert [item for item, _ in store.items()] == [5]
    assert store.status().leased == 0


def test_any_other_command_sends_the_waiting_steps_first(store):
    store.later("pending", 7, '{"name": "y"}')
    assert store.server.hget(store.keys.pending, 7) == b'{"name": "y"}'
    assert store.steps.count == 0


def test_requests_are_leased_in_batches_with_their_partial_items(store):
    for n, item in enumerate((1, 2, None)):
        store.push(f"fp{n}", 0, request(item), None, seed=True)
    store.later("pending", 2, '{"name": "two"}')
    store.server.sadd(store.keys.exported, 1)
    rows = store.pop_many("w", 60, 8, "sku")
    assert [(row.data, row.pending, row.exported) for row in rows] == [
        (request(1), None, True),
        (request(2), b'{"name": "two"}', False),
        (request(None), None, None),  # names no item
    ]
    assert store.status().leased == 3 and store.pop_many("w", 60, 8, "sku") == []


def test_show_records_items_and_says_which_are_exported(store):
    store.server.sadd(store.keys.exported, 3)
    assert store.show([2, 3]) == [False, True]
    assert store.server.hgetall(store.keys.shown) == {b"2": b"0", b"3": b"0"}
    assert store.show([]) == []


def test_steps_are_bounded():
    steps = Steps(limit=2)
    steps.add("settle", "a")
    assert not steps.full
    steps.add("settle", "b", "c")
    assert steps.full and steps.take() == ["settle", 1, "a", "settle", 2, "b", "c"]
    assert steps.count == 0


def test_recent_forgets_after_its_time_and_beyond_its_size():
    now = [0.0]
    recent = Recent(size=2, ttl=10, clock=lambda: now[0])
    recent.put("a", True)
    recent.put("b", False, ttl=1)
    now[0] = 2
    assert recent.get("a") is True and recent.get("b") is None
    recent.put("c", 1)
    recent.put("d", 2)
    assert len(recent) == 2 and recent.get("a") is None
    assert recent.pop("d") == 2 and recent.pop("d") is None
