"""The lease protocol's atomic steps, against a real redis-server."""

from __future__ import annotations

import itertools

import pytest

from plt.distributed.store import JobKeys, LeaseStore, safe_name

pytest_plugins = ("tests.redis_server",)

_jobs = itertools.count()


@pytest.fixture
def store(redis_server) -> LeaseStore:
    return LeaseStore(redis_server.client(), JobKeys.for_job(f"store-{next(_jobs)}"))


def test_keys_are_prefixed_and_safe():
    keys = JobKeys.for_job("product 2026/11/23")
    assert keys.queue == "plt:product-2026-11-23:requests"
    assert keys.seen == "plt:product-2026-11-23:dupefilter"
    assert all(k.startswith("plt:product-2026-11-23:") for k in keys.all())
    assert safe_name("%(spider)s") == "spider-s"


def test_push_is_unique_by_fingerprint_and_seeds(store):
    assert store.push("fp1", 0, '{"a":1}', None, seed=True)
    assert not store.push("fp1", 0, '{"a":1}', None, seed=True)
    assert store.push(None, 0, '{"a":1}', None, seed=False)  # dont_filter
    status = store.status()
    assert (status.queued, status.seeded, status.finished) == (2, True, False)


def test_pop_by_priority_then_first_in_first_out(store):
    for fp, priority in [("l1", 0), ("p1", 10), ("p2", 10), ("s1", 20), ("l2", 0)]:
        store.push(fp, priority, fp, None, seed=False)
    order = [store.pop("w", 60)[1] for _ in range(5)]
    assert order == ["s1", "p1", "p2", "l1", "l2"]
    assert store.pop("w", 60) is None
    assert store.status().leased == 5


def test_settle_and_replace(store):
    store.push("a", 0, "A", None, seed=True)
    lease, data = store.pop("w", 60)
    assert data == "A"
    # A retry of the leased request takes its place in one step.
    assert store.push(None, -1, "A-retry", lease, seed=False)
    status = store.status()
    assert (status.queued, status.leased) == (1, 0)
    retry, _ = store.pop("w", 60)
    assert store.settle([retry]) == 1
    assert store.settle([retry]) == 0
    assert store.status().done
    assert store.server.hlen(store.keys.data) == 0


def test_expired_leases_come_back_with_their_priority(store):
    store.push("p", 10, "P", None, seed=True)
    store.push("l", 0, "L", None, seed=False)
    store.pop("dead", -1)  # already expired
    assert store.requeue_expired() == 1
    assert store.pop("alive", 60)[1] == "P"
    assert store.server.hget(store.keys.meta, "requeued_total") == b"1"
    assert store.requeue_expired() == 0


def test_settle_removes_a_request_queued_again(store):
    store.push("p", 10, "P", None, seed=True)
    lease, _ = store.pop("slow", -1)
    store.requeue_expired()
    assert store.settle([lease]) == 1  # its first holder finished it after all
    assert store.status().queued == 0


def test_renew_extends_own_leases_and_reports_lost_ones(store):
    store.push("a", 0, "A", None, seed=True)
    store.push("b", 0, "B", None, seed=False)
    mine, _ = store.pop("w1", -1)
    theirs, _ = store.pop("w2", 60)
    assert store.renew("w1", 60, [mine, theirs]) == [theirs]
    assert store.requeue_expired() == 0  # renewed before anyone requeued it
    assert store.server.hexists(store.keys.workers, "w1")


def test_give_back_to_queue_or_failed_and_retry(store):
    for fp in "abc":
        store.push(fp, 0, fp, None, seed=True)
    a, _ = store.pop("w", 60)
    b, _ = store.pop("w", 60)
    c, _ = store.pop("other", 60)
    assert store.give_back("w", [a], failed=False) == 1
    assert store.give_back("w", [b, c], failed=True) == 1  # c is not w's
    status = store.status()
    assert (status.queued, status.leased, status.failed) == (1, 1, 1)
    store.settle([c])
    store.settle([store.pop("w", 60)[0]])
    status = store.status()
    assert status.done and status.failed == 1  # kept for the next run
    assert store.retry_failed() == 1
    assert store.pop("w", 60)[1] == "b"


def test_export_records_product_drops_partial_item_and_settles(store):
    store.push("s", 20, "stock", None, seed=True)
    lease, _ = store.pop("w", 60)
    store.server.hset(store.keys.pending, 17, "{}")
    assert store.export(17, "w", 123, [lease])
    assert not store.export(17, "w", 456, [])
    assert store.server.sismember(store.keys.exported, 17)
    assert store.server.hlen(store.keys.pending) == 0
    assert store.server.hget(store.keys.offsets, "w") == b"456"
    status = store.status()
    assert status.done and status.exported == 1


def test_not_seeded_before_a_seed(store):
    assert not store.status().seeded
    store.push(None, 0, "x", None, seed=False)
    store.settle([store.pop("w", 60)[0]])
    assert not store.status().seeded


def test_given_up_requests_are_kept_aside_and_can_be_retried(store):
    store.push("a", 7, '{"cb_kwargs": {"product_id": 5}}', None, seed=True)
    lease, _ = store.pop("w", 60)
    store.server.hincrby(store.keys.attempts, lease, 3)
    store.give_up(lease, 5)
    status = store.status()
    assert (status.queued, status.leased) == (0, 0)
    assert store.server.hget(store.keys.shown, 5) == b"2"  # GIVEN_UP_ITEM
    assert store.retry_given_up() == 1
    assert store.server.hget(store.keys.shown, 5) == b"0"  # to do again
    assert not store.server.hexists(store.keys.attempts, lease)
    assert store.pop("w", 60) == (lease, '{"cb_kwargs": {"product_id": 5}}')


def test_replace_data_keeps_the_priority_and_needs_a_lease(store):
    store.push("a", 7, "first", None, seed=True)
    lease, _ = store.pop("w", 60)
    store.replace_data(lease, "again")
    assert store.server.hget(store.keys.data, lease) == b"7 again"
    store.settle([lease])
    store.replace_data(lease, "late")
    assert store.server.hget(store.keys.data, lease) is None


def test_reset_deletes_every_key(store):
    store.push("a", 0, "A", None, seed=True)
    store.pop("w", 60)
    assert store.reset() > 0
    assert not any(store.server.exists(k) for k in store.keys.all())


def test_a_retry_or_redirect_takes_over_its_originals_attempts(store):
    store.push("fp", 0, '{"a":1}', None, seed=False)
    lease, _ = store.pop("w", 60)
    store.server.hincrby(store.keys.attempts, lease, 2)  # two runs failed
    assert store.push(None, 0, '{"a":2}', lease, seed=False)  # the retry, dont_filter
    retry, _ = store.pop("w", 60)
    assert retry != lease
    assert int(store.server.hget(store.keys.attempts, retry)) == 2
    assert store.server.hget(store.keys.attempts, lease) is None


def test_finished_only_if_nothing_is_left_at_that_instant(store):
    store.push("a", 0, "A", None, seed=True)
    lease, _ = store.pop("w", 60)
    store.give_back("w", [lease], failed=True)  # failed for now
    assert not store.finish()  # another worker may queue it again at its start
    assert store.retry_failed() == 1
    assert not store.finish()
    store.settle([store.pop("w", 60)[0]])
    assert store.finish() and store.status().finished
