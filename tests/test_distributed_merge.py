"""The job's items.jsonl from the crawl's items stream in Redis, checked."""

from __future__ import annotations

import json

from plt.distributed.merge import main, write_items
from tests.test_distributed_state import make_state

pytest_plugins = ("tests.redis_server",)


SHOP = "http://127.0.0.1:8800"


def line(item_id: int, shop: str = SHOP) -> bytes:
    item = {"product_id": item_id, "url": f"{shop}/product/p-{item_id}", "name": f"p{item_id}"}
    return (json.dumps(item) + "\n").encode()


def ids(path):
    return [json.loads(text)["product_id"] for text in path.read_text().splitlines()]


def test_each_item_once_in_order(tmp_path):
    out = tmp_path / "items.jsonl"
    result = write_items([(1, line(1)), (2, line(2)), (1, line(1))], out, {1, 2})
    assert result.written and (result.items, result.duplicates) == (2, 1)
    assert ids(out) == [1, 2]


def test_not_written_when_items_are_missing(tmp_path):
    out = tmp_path / "items.jsonl"
    result = write_items([(1, line(1)), (4, line(4))], out, expected={1, 2, 3})
    assert not result.written and result.missing == [2, 3]
    assert list(tmp_path.iterdir()) == []


def test_not_written_when_items_are_of_another_retailer(tmp_path):
    out = tmp_path / "items.jsonl"
    items = [(1, line(1)), (3, line(3, "http://localhost:8800"))]
    result = write_items(items, out, {1, 3}, SHOP)
    assert not result.written
    assert (result.foreign, result.first_foreign) == (1, "http://localhost:8800/product/p-3")
    # Another scheme, port or a www. prefix is the same retailer (redirects).
    assert write_items([(1, line(1, "https://www.127.0.0.1"))], out, {1}, SHOP).written


def crawl_with_exports(redis_server, jobdir, item_ids, shop=SHOP, **settings):
    state = make_state(redis_server, jobdir, SHOP_URL=SHOP, PLT_JOB_RESET=True, **settings)
    state.open()
    for item_id in item_ids:
        state.mark_exported(item_id, 0, line(item_id, shop))
    state.close()
    return state


def test_items_outlive_the_disk_of_the_worker_that_wrote_them(redis_server, tmp_path, capsys):
    crawl_with_exports(redis_server, tmp_path / "job", [1, 2, 5])
    elsewhere = tmp_path / "elsewhere" / "job"  # another machine: no file of the crawl
    assert main([str(elsewhere), "--redis-url", redis_server.url]) == 0
    assert ids(elsewhere / "items.jsonl") == [1, 2, 5]
    assert "3 items in crawl job's stream; 3 exported" in capsys.readouterr().out


def test_an_export_recorded_twice_streams_its_item_once(redis_server, tmp_path):
    state = crawl_with_exports(redis_server, tmp_path / "job", [1])
    state.open()
    state.mark_exported(1, 0, line(1))  # another worker's late copy
    state.close()
    assert [i for i, _ in state.store.items()] == [1]


def test_command_refuses_what_it_cannot_check(redis_server, tmp_path, capsys):
    jobdir = tmp_path / "job"
    assert main([str(jobdir)]) == 2
    assert capsys.readouterr().err == (
        "error: --redis-url is required: the items are in the crawl's Redis\n"
    )
    assert main([str(jobdir), "--redis-url", redis_server.url, "--job", "never-run"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: no crawl never-run in Redis at {redis_server.url}: nothing ")
    assert err.count("\n") == 1
    assert not (jobdir / "items.jsonl").exists()


def test_command_refuses_items_of_another_retailer(redis_server, tmp_path, capsys):
    jobdir = tmp_path / "job"
    crawl_with_exports(redis_server, jobdir, [1, 2], shop="http://localhost:8800")
    assert main([str(jobdir), "--redis-url", redis_server.url]) == 1
    err = capsys.readouterr().err
    assert f"2 items are not of the crawl's retailer {SHOP}" in err
    assert not (jobdir / "items.jsonl").exists()


def test_command_refuses_a_jobdir_of_another_crawl_of_the_same_name(redis_server, tmp_path, capsys):
    jobdir = tmp_path / "job"
    crawl_with_exports(redis_server, jobdir, [1])
    # The crawl is started over elsewhere: this JOBDIR is of the old one.
    crawl_with_exports(redis_server, tmp_path / "elsewhere", [1], PLT_REDIS_JOB="job")
    assert main([str(jobdir), "--redis-url", redis_server.url]) == 2
    assert "not the one in Redis, started at" in capsys.readouterr().err
