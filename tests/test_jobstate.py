from __future__ import annotations

import sqlite3

import pytest

from plt.jobstate import ITEMS_FILE, STATE_FILE, JobState, JobStateError


def opened(jobdir, **kwargs) -> JobState:
    state = JobState(jobdir, **kwargs)
    state.open()
    return state


def test_frontier_dedupes_and_leases_by_priority(tmp_path):
    state = opened(tmp_path)
    assert state.add_request("a", 0, "listing", None)
    assert state.add_request("b", 10, "product", 7)
    assert not state.add_request("a", 0, "listing again", None)
    assert state.add_request(None, 0, "unfiltered 1", None)
    assert state.add_request(None, 0, "unfiltered 2", None)
    assert state.queued == 4
    lease_id, data = state.lease_next()
    assert data == "product"
    assert (state.queued, state.leased) == (3, 1)
    state.settle(lease_id)
    state.settle(lease_id)  # settling twice is harmless
    assert state.leased == 0
    assert [state.lease_next()[1] for _ in range(3)] == ["listing", "unfiltered 1", "unfiltered 2"]
    assert state.lease_next() is None


def test_open_leases_return_to_the_queue_on_reopen(tmp_path):
    state = opened(tmp_path)
    state.add_request("a", 0, "one", None)
    state.add_request("b", 0, "two", None)
    state.lease_next()
    state.close()  # as if killed: the lease was never settled
    state = opened(tmp_path)
    assert state.resumed
    assert state.requeued_on_open == 1
    assert state.queued == 2
    assert state.lease_next()[1] == "one"


def test_export_settles_the_products_lease_and_pending_item(tmp_path):
    state = opened(tmp_path)
    state.add_request("stock", 20, "stock", 7)
    state.lease_next()
    state.put_pending(7, {"product_id": 7, "name": "x"})
    assert state.get_pending(7) == {"product_id": 7, "name": "x"}
    (tmp_path / ITEMS_FILE).write_bytes(b'{"product_id": 7}\n')
    state.mark_exported(7, 18)
    assert state.is_exported(7)
    assert state.get_pending(7) is None
    assert state.leased == 0
    state.close()
    assert opened(tmp_path).requeued_on_open == 0


def test_lines_written_but_not_recorded_are_recorded_on_open(tmp_path):
    state = opened(tmp_path)
    state.add_request("stock", 20, "stock", 7)
    state.lease_next()
    state.put_pending(7, {"product_id": 7})
    state.close()
    # Killed after the line was flushed, before the export was recorded.
    (tmp_path / ITEMS_FILE).write_bytes(b'{"product_id": 7}\n{"product_id": 8, "na')
    state = opened(tmp_path)
    assert state.is_exported(7)
    assert state.requeued_on_open == 0  # its lease was settled, not requeued
    assert state.get_pending(7) is None
    assert state.repaired_bytes == len(b'{"product_id": 8, "na')
    assert (tmp_path / ITEMS_FILE).read_bytes() == b'{"product_id": 7}\n'


def test_meta_and_start_time(tmp_path):
    state = opened(tmp_path)
    started = state.get_meta("started_at")
    assert started.endswith("Z") and "T" in started
    state.set_meta("finished", True)
    state.close()
    state = opened(tmp_path)
    assert state.get_meta("finished") is True
    assert state.get_meta("started_at") == started


def test_reset_starts_over(tmp_path):
    state = opened(tmp_path)
    state.add_request("a", 0, "one", None)
    (tmp_path / ITEMS_FILE).write_bytes(b'{"product_id": 7}\n')
    state.close()
    state = opened(tmp_path, reset=True)
    assert state.queued == 0
    assert not (tmp_path / ITEMS_FILE).exists()


def test_without_jobdir_state_is_in_memory():
    state = opened(None)
    assert state.add_request("a", 0, "one", None)
    assert state.items_path is None


@pytest.mark.parametrize(
    "damage",
    [
        lambda p: p.write_bytes(b"this is not a database at all" * 200),
        lambda p: p.write_bytes(p.read_bytes()[:3000]),
    ],
    ids=["garbage", "truncated"],
)
def test_damaged_state_file(tmp_path, damage):
    state = opened(tmp_path)
    for i in range(200):
        state.add_request(f"fp{i}", 0, "x" * 100, None)
    state.close()
    path = tmp_path / STATE_FILE
    for suffix in ("-wal", "-shm"):
        (tmp_path / (STATE_FILE + suffix)).unlink(missing_ok=True)
    damage(path)
    with pytest.raises(JobStateError, match="PLT_JOB_RESET=1") as info:
        opened(tmp_path)
    assert str(path) in str(info.value)


def test_incompatible_version(tmp_path):
    opened(tmp_path).close()
    db = sqlite3.connect(tmp_path / STATE_FILE)
    db.execute("UPDATE meta SET value='99' WHERE key='schema'")
    db.commit()
    db.close()
    with pytest.raises(JobStateError, match="schema version 99"):
        opened(tmp_path)


def test_job_in_use_by_another_process(tmp_path):
    first = opened(tmp_path)
    with pytest.raises(JobStateError, match="in use by another live process"):
        opened(tmp_path)
    first.close()
    opened(tmp_path).close()


def test_a_retry_replaces_its_lease_in_one_step(tmp_path):
    state = opened(tmp_path)
    state.add_request("stock", 20, "stock", 7)
    lease_id, _ = state.lease_next()
    # The retry is unfiltered (no fingerprint) and takes over the lease.
    assert state.add_request(None, 20, "stock retry", 7, replaces=lease_id)
    assert (state.queued, state.leased) == (1, 0)
    state.close()
    state = opened(tmp_path)
    assert state.requeued_on_open == 0
    assert state.lease_next()[1] == "stock retry"
    assert state.lease_next() is None
