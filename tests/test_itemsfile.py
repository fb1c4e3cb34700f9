from __future__ import annotations

import pytest

from plt.job.itemsfile import ItemsFileError, reconcile

LINE1 = b'{"product_id": 1, "name": "a"}\n'
LINE2 = b'{"product_id": 2, "name": "b"}\n'


def test_missing_file_is_empty(tmp_path):
    assert reconcile(tmp_path / "items.jsonl", 0) == (0, [])


def test_lines_after_the_recorded_offset_are_returned(tmp_path):
    path = tmp_path / "items.jsonl"
    path.write_bytes(LINE1 + LINE2)
    assert reconcile(path, 0) == (0, [1, 2])
    assert reconcile(path, len(LINE1)) == (0, [2])
    assert reconcile(path, len(LINE1 + LINE2)) == (0, [])


def test_the_item_id_is_the_field_the_job_names(tmp_path):
    path = tmp_path / "items.jsonl"
    path.write_bytes(b'{"sku": 5, "product_id": 1}\n{"sku": 6}\n')
    assert reconcile(path, 0, "sku") == (0, [5, 6])
    with pytest.raises(ItemsFileError, match="without an integer 'product_id'"):
        reconcile(path, 0)


def test_torn_last_line_is_cut(tmp_path):
    path = tmp_path / "items.jsonl"
    path.write_bytes(LINE1 + LINE2[:10])
    assert reconcile(path, len(LINE1)) == (10, [])
    assert path.read_bytes() == LINE1


@pytest.mark.parametrize(
    ("content", "offset", "words"),
    [
        (LINE1, 100, "fewer than"),
        (LINE1 + b"garbage\n", 0, "without an integer 'product_id'"),
        (LINE1 + b'{"name": "no id"}\n', 0, "without an integer 'product_id'"),
        (LINE1 + LINE2, 5, "no line ends at byte 5"),
    ],
)
def test_damage_is_reported(tmp_path, content, offset, words):
    path = tmp_path / "items.jsonl"
    path.write_bytes(content)
    with pytest.raises(ItemsFileError, match=words):
        reconcile(path, offset)


def test_missing_file_with_recorded_exports(tmp_path):
    with pytest.raises(ItemsFileError, match="missing"):
        reconcile(tmp_path / "items.jsonl", 10)
