"""The distributed worker's job state: SQLiteJobStore's interface, kept in Redis."""

from __future__ import annotations

import json

import pytest
from scrapy.utils.test import get_crawler

from plt.distributed.state import STORE_PATH, RedisJobState
from plt.job.sqlite import JobStateError

pytest_plugins = ("tests.redis_server",)


def make_state(redis_server, jobdir, worker="w", **settings) -> RedisJobState:
    crawler = get_crawler(
        settings_dict={
            "PLT_DISTRIBUTED": True,
            "REDIS_URL": redis_server.url,
            "SHOP_URL": "http://127.0.0.1:1",
            "PLT_JOB_STORE": STORE_PATH,
            "JOBDIR": str(jobdir),
            "PLT_WORKER_NAME": worker,
            **settings,
        }
    )
    return RedisJobState.from_crawler(crawler)


def item_line(product_id: int) -> bytes:
    return (json.dumps({"product_id": product_id}) + "\n").encode()


def test_the_spiders_interface(redis_server, tmp_path):
    state = make_state(redis_server, tmp_path)
    state.open()
    assert state.get_meta("started_at").endswith("Z")
    state.set_meta("note", {"a": 1})
    assert state.get_meta("note") == {"a": 1}
    state.put_pending(7, {"name": "x"})
    assert state.get_pending(7) == {"name": "x"}
    assert state.pending_count() == 1
    assert not state.is_exported(7)
    state.add_request(None, 20, "{}", None)
    lease, _ = state.lease_next()
    state.held[lease] = 7
    state.mark_exported(7, 42)
    assert state.is_exported(7) and state.exported_count() == 1
    assert state.get_pending(7) is None
    assert state.held == {}
    status = state.status()
    assert (status.queued, status.leased, status.pending) == (0, 0, 0)
    state.close()


def test_a_second_worker_of_the_same_name_is_refused(redis_server, tmp_path):
    first = make_state(redis_server, tmp_path)
    first.open()
    with pytest.raises(JobStateError, match="already running"):
        make_state(redis_server, tmp_path).open()
    first.close()
    again = make_state(redis_server, tmp_path)
    again.open()
    again.close()


def test_a_restarted_worker_trims_its_items_file_to_the_record(redis_server, tmp_path):
    state = make_state(redis_server, tmp_path)
    state.open()
    path = tmp_path / "items-w.jsonl"
    path.write_bytes(item_line(1))
    state.mark_exported(1, path.stat().st_size, item_line(1))
    state.close()
    # Killed after flushing product 2, before recording it, while writing product 3:
    # the record and the item are in Redis; 2 and 3 are fetched again.
    path.write_bytes(item_line(1) + item_line(2) + item_line(3)[:5])
    state = make_state(redis_server, tmp_path)
    state.open()
    assert state.is_exported(1) and not state.is_exported(2)
    assert path.read_bytes() == item_line(1)
    assert [item_id for item_id, _ in state.store.items()] == [1]
    state.close()


def test_leased_ahead_untried_requests_go_back_to_the_queue(redis_server, tmp_path):
    state = make_state(redis_server, tmp_path, PLT_REDIS_LEASE_BATCH=3)
    state.open()
    for n in range(3):
        state.add_request(f"fp{n}", 0, "{}", None, seed=True)
    state.lease_next()  # three leased in one call, one handed out
    assert (state.queued_count(), state.leased_count()) == (2, 1)
    assert state.fail_held() == 1  # the one tried failed; the two others were not tried
    status = state.status()
    assert (status.queued, status.leased, status.failed) == (2, 0, 1)
    state.close()


def test_leases_go_back_to_the_queue_or_to_failed(redis_server, tmp_path):
    state = make_state(redis_server, tmp_path, PLT_REDIS_LEASE_BATCH=1)
    state.open()
    for n in range(3):
        state.add_request(f"fp{n}", 0, "{}", None, seed=True)
    state.lease_next()
    assert state.fail_held() == 1
    state.lease_next()
    assert state.release_held() == 1
    status = state.status()
    assert (status.queued, status.leased, status.failed) == (2, 0, 1)
    state.close()
    state = make_state(redis_server, tmp_path, "other")
    state.open()  # a new run retries what failed
    assert state.retried_on_open == 1
    assert state.status().queued == 3
    state.close()


def test_reset_starts_the_crawl_over(redis_server, tmp_path):
    state = make_state(redis_server, tmp_path)
    state.open()
    state.add_request("fp", 0, "{}", None, seed=True)
    state.close()
    (tmp_path / "items-w.jsonl").write_bytes(b"")
    (tmp_path / "items.jsonl").write_bytes(b"")
    state = make_state(redis_server, tmp_path, PLT_JOB_RESET=True)
    state.open()
    assert state.status().queued == 0
    assert not (tmp_path / "items-w.jsonl").exists()
    assert not (tmp_path / "items.jsonl").exists()
    state.close()


def test_a_crawl_of_another_schema_is_refused(redis_server, tmp_path):
    state = make_state(redis_server, tmp_path)
    redis_server.client().hset(state.keys.meta, "schema", 99)
    with pytest.raises(JobStateError, match="schema version 99"):
        state.open()
