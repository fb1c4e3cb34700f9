"""Merging the workers' items files into the job's items.jsonl."""

from __future__ import annotations

import json

import pytest

from plt.distributed.merge import MergeError, main, merge_items, worker_files


def write(path, ids, torn: bool = False):
    lines = "".join(json.dumps({"product_id": i, "name": f"p{i}"}) + "\n" for i in ids)
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
    result = merge_items(worker_files(tmp_path), out, expected=3)
    assert not result.written and result.products == 2
    assert not out.exists()
    assert list(tmp_path.iterdir()) == [tmp_path / "items-a.jsonl"]  # no temporary file left


def test_a_line_that_is_not_an_item_is_an_error(tmp_path):
    (tmp_path / "items-a.jsonl").write_text('{"product_id": 1}\nnot json\n')
    with pytest.raises(MergeError, match="byte 18"):
        merge_items(worker_files(tmp_path), tmp_path / "items.jsonl")


def test_command_merges_files_from_other_machines(tmp_path, capsys):
    jobdir = tmp_path / "job"
    jobdir.mkdir()
    write(jobdir / "items-here.jsonl", [1, 2])
    elsewhere = write(tmp_path / "items-there.jsonl", [2, 5])
    assert main([str(jobdir), str(elsewhere)]) == 0
    assert ids(jobdir / "items.jsonl") == [1, 2, 5]
    assert "3 products from 2 files (1 repeated lines" in capsys.readouterr().out
    assert main([str(jobdir), str(tmp_path / "missing.jsonl")]) == 2
