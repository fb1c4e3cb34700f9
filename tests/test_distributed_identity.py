"""The crawl's identity in Redis: one retailer per crawl; a lost crawl never looks finished."""

from __future__ import annotations

import json

import pytest

from plt.distributed.identity import RECORD_FILE, normalise_url
from plt.job.jobdir import JobStateError
from tests.test_distributed_state import make_state

pytest_plugins = ("tests.redis_server",)

SHOP = "http://127.0.0.1:8800"


@pytest.mark.parametrize(
    ("url", "normal"),
    [
        ("HTTP://Shop.Example:80/", "http://shop.example"),
        ("https://shop.example:443/catalogue/", "https://shop.example/catalogue"),
        ("https://shop.example:8443", "https://shop.example:8443"),
        ("http://127.0.0.1:8800/#top", "http://127.0.0.1:8800"),
        ("http://[::1]:8800/", "http://[::1]:8800"),
        ("http://LOCALHOST:8800", "http://localhost:8800"),
    ],
)
def test_urls_are_normalised_but_other_spellings_of_a_host_stay_apart(url, normal):
    assert normalise_url(url) == normal


def opened(redis_server, jobdir, worker="w", **settings):
    state = make_state(redis_server, jobdir, worker, **{"SHOP_URL": SHOP, **settings})
    failures: list[JobStateError] = []
    state.open()
    state.on_error = failures.append
    return state, failures


def test_the_first_worker_records_the_crawl_and_the_others_join_it(redis_server, tmp_path):
    first, _ = opened(redis_server, tmp_path, "a")
    assert first.guard.created and not first.resumed
    # Another spelling of the same URL joins the same crawl.
    second, _ = opened(redis_server, tmp_path, "b", SHOP_URL="HTTP://127.0.0.1:8800/")
    assert not second.guard.created and second.resumed
    assert second.guard.joined == first.guard.joined
    assert first.guard.joined.shop_url == first.guard.joined.stock_api_url == SHOP
    record = json.loads((tmp_path / RECORD_FILE).read_text())
    assert record["generation"] == first.guard.joined.generation
    assert record["job"] == first.job
    first.close()
    second.close()


@pytest.mark.parametrize(
    ("setting", "value"),
    [("SHOP_URL", "http://localhost:8800"), ("STOCK_API_URL", "http://127.0.0.1:8801")],
)
def test_a_worker_of_another_retailer_is_refused(redis_server, tmp_path, setting, value):
    first, _ = opened(redis_server, tmp_path, "a")
    other = make_state(redis_server, tmp_path, "b", **{"SHOP_URL": SHOP, setting: value})
    with pytest.raises(JobStateError) as refused:
        other.open()
    message = str(refused.value)
    assert f"was seeded with SHOP_URL={SHOP} and STOCK_API_URL={SHOP}" in message
    assert f"this worker has {setting}={value}" in message
    assert "\n" not in message
    assert other.db is None  # closed: its lock is released
    first.close()


def test_keys_gone_between_two_runs_the_next_run_refuses(redis_server, tmp_path):
    state, _ = opened(redis_server, tmp_path)
    state.add_request("fp", 0, "{}", None, seed=True)
    state.close()
    state.store.reset()  # Redis restarted without persistence, evicted, flushed...
    again = make_state(redis_server, tmp_path, SHOP_URL=SHOP)
    with pytest.raises(JobStateError, match=r"The state of crawl \S+ in Redis was lost"):
        again.open()
    assert again.store.status().queued == 0  # and nothing was written
    assert not redis_server.client().exists(*again.keys.all())
    # Starting over is the way out.
    reset = make_state(redis_server, tmp_path, SHOP_URL=SHOP, PLT_JOB_RESET=True)
    reset.open()
    assert reset.guard.created
    reset.close()


def test_a_crawl_started_again_under_the_same_name_is_not_the_one_joined(redis_server, tmp_path):
    state, _ = opened(redis_server, tmp_path)
    state.close()
    # Another machine's worker resets the crawl: a new generation.
    elsewhere = make_state(
        redis_server,
        tmp_path / "other",
        "x",
        SHOP_URL=SHOP,
        PLT_REDIS_JOB=state.job,
        PLT_JOB_RESET=True,
    )
    elsewhere.open()
    elsewhere.close()
    again = make_state(redis_server, tmp_path, SHOP_URL=SHOP)
    with pytest.raises(JobStateError, match=r"was lost: .* it was started again at "):
        again.open()


def test_keys_left_without_an_identity_are_not_joined(redis_server, tmp_path):
    state = make_state(redis_server, tmp_path, SHOP_URL=SHOP)
    # What a worker that went on after its crawl vanished leaves behind.
    redis_server.client().sadd(state.keys.seen, "fp-of-page-2")
    with pytest.raises(JobStateError, match="has keys but no record of its start"):
        state.open()


def test_a_vanished_queue_is_not_an_empty_one(redis_server, tmp_path):
    state, failures = opened(redis_server, tmp_path, PLT_REDIS_LEASE_BATCH=1)
    state.add_request("a", 0, "{}", None, seed=True)
    state.add_request("b", 0, "{}", None)
    assert state.lease_next() is not None
    assert state.check_crawl() and not failures
    state.store.reset()
    assert state.lease_next() is None
    (error,) = failures
    assert "The state of crawl" in str(error) and "was lost" in str(error)
    assert "PLT_JOB_RESET=1" in str(error)
    assert state.lost is error and state.write_error is error  # the exporter stops too
    status = state.status()
    assert status.lost and not status.done and not status.finished
    assert failures == [error]  # one error, however often it is seen
    state.close()


def test_the_end_of_crawl_check_sees_a_lost_crawl(redis_server, tmp_path):
    state, failures = opened(redis_server, tmp_path)
    state.add_request("a", 0, "{}", None, seed=True)
    redis_server.client().flushdb()
    status = state.status()
    assert status.lost and not status.done
    assert len(failures) == 1
    state.close()


def test_a_finished_crawl_expires_and_a_later_run_says_it_is_finished(redis_server, tmp_path):
    state, _ = opened(redis_server, tmp_path, PLT_REDIS_FINISHED_TTL=3600)
    state.add_request("a", 0, "{}", None, seed=True)
    lease, _ = state.lease_next()
    state.held[lease] = 7
    state.mark_exported(7, 10)
    client = redis_server.client()
    assert client.ttl(state.keys.meta) == -1  # not finished yet: kept
    state.set_meta("finished", True)  # as the scheduler decides at the end
    status = state.status()
    assert status.finished
    existing = [key for key in state.keys.all() if client.exists(key)]
    assert state.keys.meta in existing and state.keys.exported in existing
    assert all(0 < client.ttl(key) <= 3600 for key in existing)
    client.expire(state.keys.meta, 100)
    state.status()  # seen finished again: the expiry is not pushed back
    assert client.ttl(state.keys.meta) <= 100
    assert json.loads((tmp_path / RECORD_FILE).read_text())["finished_exported"] == 1
    state.close()

    client.delete(*state.keys.all())  # expired
    later = make_state(redis_server, tmp_path, SHOP_URL=SHOP)
    later.open()
    assert later.get_meta("finished") is True
    assert later.exported_count() == 1
    assert later.status().finished and later.status().done
    assert not client.exists(*state.keys.all())  # nothing written back
    later.close()


def test_without_a_ttl_a_finished_crawl_is_kept(redis_server, tmp_path):
    state, _ = opened(redis_server, tmp_path, PLT_REDIS_FINISHED_TTL=0)
    state.add_request("a", 0, "{}", None, seed=True)
    lease, _ = state.lease_next()
    state.settle(lease)
    state.set_meta("finished", True)  # as the scheduler decides at the end
    assert state.status().finished
    assert redis_server.client().ttl(state.keys.meta) == -1
    state.close()
