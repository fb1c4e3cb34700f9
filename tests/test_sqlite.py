from __future__ import annotations

import os
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from plt.job.sqlite import ITEMS_FILE, LOCK_FILE, STATE_FILE, JobStateError, SQLiteJobStore


def opened(jobdir, **kwargs) -> SQLiteJobStore:
    state = SQLiteJobStore(jobdir, **kwargs)
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


def fill_up(state: SQLiteJobStore) -> list[Any]:
    """Cap the database at its current size (a full disk); the errors it reports."""
    errors: list[Any] = []
    state.on_error = errors.append
    pages = state.db.execute("PRAGMA page_count").fetchone()[0]
    state.db.execute(f"PRAGMA max_page_count={pages}")
    return errors


def test_a_full_disk_stops_writing_and_keeps_what_was_committed(tmp_path):
    state = opened(tmp_path)
    state.add_request("first", 0, "one", None)
    lease_id, _ = state.lease_next()
    errors = fill_up(state)
    added = [state.add_request(f"fp{i}", 0, "x" * 500, None) for i in range(100)]
    assert not all(added)  # SQLite refused a write: SQLITE_FULL
    assert len(errors) == 1
    assert "database or disk is full" in str(errors[0])
    assert str(tmp_path / STATE_FILE) in str(errors[0])
    assert "run the same command again" in str(errors[0])
    # Nothing more is written, nothing raises at the writers.
    assert not state.add_request("later", 0, "y", None)
    state.settle(lease_id)
    state.put_pending(7, {"product_id": 7})
    state.mark_exported(7, 0)
    state.set_meta("finished", True)
    assert state.lease_next() is None
    assert len(errors) == 1
    stored = sum(added) + 1
    state.close()
    # The job reopens as a kill at that instant would have left it.
    state = opened(tmp_path)
    assert state.write_error is None
    assert state.queued == stored
    assert state.requeued_on_open == 1  # the lease was never settled
    assert state.get_pending(7) is None and not state.get_meta("finished")


def test_a_jobdir_that_is_a_file(tmp_path):
    path = tmp_path / "job"
    path.write_text("not a directory")
    with pytest.raises(JobStateError, match="is a file, not a directory"):
        opened(path)


def test_a_read_only_lock_file(tmp_path, monkeypatch):
    opened(tmp_path).close()
    real_access = os.access
    lock = tmp_path / LOCK_FILE
    monkeypatch.setattr(os, "access", lambda p, mode: Path(p) != lock and real_access(p, mode))
    with pytest.raises(JobStateError, match="is read-only") as info:
        opened(tmp_path)
    assert str(lock) in str(info.value)


@pytest.mark.parametrize(
    ("key", "value", "words"),
    [
        ("items_offset", '"abc"', "items_offset='\"abc\"' that is not a number"),
        ("items_offset", "-5", "not a number"),
        ("items_offset", "true", "not a number"),
        ("requeued_total", "1.5", "not a number"),
        ("finished", '"yes"', "finished='\"yes\"' that is not valid"),
        ("started_at", "{not json", "not valid"),
    ],
)
def test_meta_values_of_the_wrong_type(tmp_path, key, value, words):
    opened(tmp_path).close()
    db = sqlite3.connect(tmp_path / STATE_FILE)
    db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))
    db.commit()
    db.close()
    with pytest.raises(JobStateError, match="PLT_JOB_RESET=1") as info:
        opened(tmp_path)
    assert words in str(info.value) and str(tmp_path / STATE_FILE) in str(info.value)


def test_a_given_up_request_is_never_queued_again(tmp_path):
    state = opened(tmp_path)
    state.add_request("a", 0, "garbage", None)
    state.add_request("b", 0, "fine", None)
    lease_id, _ = state.lease_next()
    state.give_up(lease_id)
    assert (state.queued, state.leased, state.given_up) == (1, 0, 1)
    state.close()
    state = opened(tmp_path)
    assert state.given_up == 1 and state.requeued_on_open == 0
    assert state.lease_next()[1] == "fine"
    assert state.lease_next() is None
