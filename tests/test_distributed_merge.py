"""Merging the workers' items files into the job's items.jsonl."""

from __future__ import annotations

import json

import pytest

from plt.distributed.merge import MergeError, main, merge_items, worker_files
from tests.test_distributed_state import make_state

pytest_plugins = ("tests.redis_server",)


SHOP = "http://127.0.0.1:8800"


def write(path, ids, torn: bool = False, shop: str = SHOP):
    lines = "".join(
        json.dumps({"product_id": i, "url": f"{shop}/product/p-{i}", "name": f"p{i}"}) + "\n"
        for i in ids
    )
    path.write_text(lines + ('{"product_id": 99, "na' if torn else ""))
    return path


def ids(path):
    return [json.loads(line)["product_id"] for line in path.read_text().splitlines()]


def test_each_product_once_torn_lines_dropped(tmp_path):
    a = write(tmp_path / "items-a.jsonl", [1, 2, 3], torn=True)
    b = write(tmp_path / "items-b.jsonl", [3, 4])
    out = tmp_path / "items.jsonl"
    result = merge_items(worker_files(tmp_path), out)
    assert result.written
    assert (result.products, result.duplicates, result.torn) == (4, 1, 1)
    assert ids(out) == [1, 2, 3, 4]
    assert worker_files(tmp_path) == [a, b]


def test_not_written_when_products_are_missing(tmp_path):
    write(tmp_path / "items-a.jsonl", [1, 2])
    out = tmp_path / "items.jsonl"
    # Three products, as many as exported: but not the ones exported.
    write(tmp_path / "items-b.jsonl", [4])
    result = merge_items(worker_files(tmp_path), out, expected={1, 2, 3})
    assert not result.written and result.products == 3
    assert result.missing == [3]
    assert not out.exists()
    assert sorted(tmp_path.iterdir()) == [tmp_path / "items-a.jsonl", tmp_path / "items-b.jsonl"]


def test_not_written_when_items_are_of_another_retailer(tmp_path):
    write(tmp_path / "items-a.jsonl", [1, 2])
    write(tmp_path / "items-b.jsonl", [3], shop="http://localhost:8800")
    result = merge_items(worker_files(tmp_path), tmp_path / "items.jsonl", {1, 2, 3}, SHOP)
    assert not result.written
    assert (result.foreign, result.first_foreign) == (1, "http://localhost:8800/product/p-3")
    # Another scheme, port or a www. prefix is the same retailer (redirects).
    write(tmp_path / "items-b.jsonl", [3], shop="https://www.127.0.0.1")
    assert merge_items(worker_files(tmp_path), tmp_path / "items.jsonl", {1, 2, 3}, SHOP).written


def test_a_line_that_is_not_an_item_is_an_error(tmp_path):
    (tmp_path / "items-a.jsonl").write_text('{"product_id": 1}\nnot json\n')
    with pytest.raises(MergeError, match="byte 18"):
        merge_items(worker_files(tmp_path), tmp_path / "items.jsonl")


def crawl_with_exports(redis_server, jobdir, ids):
    state = make_state(redis_server, jobdir, SHOP_URL=SHOP, PLT_JOB_RESET=True)
    state.open()
    for product_id in ids:
        state.mark_exported(product_id, 0)
    state.close()
    return state


def test_command_merges_files_from_other_machines(redis_server, tmp_path, capsys):
    jobdir = tmp_path / "job"
    crawl_with_exports(redis_server, jobdir, [1, 2, 5])
    write(jobdir / "items-here.jsonl", [1, 2])
    elsewhere = write(tmp_path / "items-there.jsonl", [2, 5])
    assert main([str(jobdir), str(elsewhere), "--redis-url", redis_server.url]) == 0
    assert ids(jobdir / "items.jsonl") == [1, 2, 5]
    out = capsys.readouterr().out
    assert "3 products from 2 files (1 repeated lines" in out
    assert "3 exported in crawl job" in out
    missing = [str(jobdir), str(tmp_path / "missing.jsonl"), "--redis-url", redis_server.url]
    assert main(missing) == 2


def test_command_refuses_what_it_cannot_check(redis_server, tmp_path, capsys):
    jobdir = tmp_path / "job"
    jobdir.mkdir()
    write(jobdir / "items-here.jsonl", [1, 2])
    assert main([str(jobdir)]) == 2
    assert capsys.readouterr().err == (
        "error: --redis-url is required: the merge is checked against the crawl in Redis\n"
    )
    assert main([str(jobdir), "--redis-url", redis_server.url, "--job", "never-run"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: no crawl never-run in Redis at {redis_server.url}: nothing ")
    assert err.count("\n") == 1
    assert not (jobdir / "items.jsonl").exists()


def test_command_compares_product_ids_not_counts(redis_server, tmp_path, capsys):
    jobdir = tmp_path / "job"
    crawl_with_exports(redis_server, jobdir, [1, 2, 3])
    write(jobdir / "items-here.jsonl", [1, 2, 4])  # three products, one of them not exported
    assert main([str(jobdir), "--redis-url", redis_server.url]) == 1
    err = capsys.readouterr().err
    assert "1 of the 3 products exported in Redis are in none of the files (ids 3)" in err
    assert not (jobdir / "items.jsonl").exists()


def test_command_refuses_items_of_another_retailer(redis_server, tmp_path, capsys):
    jobdir = tmp_path / "job"
    crawl_with_exports(redis_server, jobdir, [1, 2])
    write(jobdir / "items-here.jsonl", [1])
    other = write(tmp_path / "items-other.jsonl", [2], shop="http://localhost:8800")
    assert main([str(jobdir), str(other), "--redis-url", redis_server.url]) == 1
    err = capsys.readouterr().err
    assert f"1 items are not of the crawl's retailer {SHOP}" in err
    assert not (jobdir / "items.jsonl").exists()


def test_command_refuses_a_jobdir_of_another_crawl_of_the_same_name(redis_server, tmp_path, capsys):
    jobdir = tmp_path / "job"
    crawl_with_exports(redis_server, jobdir, [1])
    write(jobdir / "items-here.jsonl", [1])
    # The crawl is started over elsewhere: this JOBDIR's files are of the old one.
    elsewhere = tmp_path / "elsewhere"
    again = make_state(
        redis_server, elsewhere, SHOP_URL=SHOP, PLT_REDIS_JOB="job", PLT_JOB_RESET=True
    )
    again.open()
    again.mark_exported(1, 0)
    again.close()
    assert main([str(jobdir), "--redis-url", redis_server.url]) == 2
    assert "are of crawl job started at" in capsys.readouterr().err
