from __future__ import annotations

import errno
import io

import ujson

from plt.job.exporter import UjsonLinesExporter
from plt.job.sqlite import SQLiteJobStore


def test_one_flushed_line_per_item():
    out = io.BytesIO()
    exporter = UjsonLinesExporter(out)
    exporter.start_exporting()
    exporter.export_item({"product_id": 1, "url": "https://x/é/1", "stock_jsons": None})
    exporter.export_item({"product_id": 2, "url": "u", "stock_jsons": [{"sku": "a"}]})
    exporter.finish_exporting()
    lines = out.getvalue().split(b"\n")
    assert lines[-1] == b""
    assert [ujson.loads(line)["product_id"] for line in lines[:-1]] == [1, 2]
    assert b"https://x/\xc3\xa9/1" in lines[0]  # UTF-8, slashes unescaped


def test_fields_to_export_is_honoured():
    out = io.BytesIO()
    exporter = UjsonLinesExporter(out, fields_to_export=["product_id"])
    exporter.export_item({"product_id": 1, "url": "u"})
    assert out.getvalue() == b'{"product_id":1}\n'


def test_job_feed_records_the_export_after_the_line(tmp_path):
    state = SQLiteJobStore(tmp_path)
    state.open()
    state.put_pending(5, {"product_id": 5})
    with (tmp_path / "items.jsonl").open("ab") as f:
        exporter = UjsonLinesExporter(f, job_state=state)
        exporter.export_item({"product_id": 5})
        assert state.is_exported(5)
        assert state.get_meta("items_offset") == f.tell()
    assert state.get_pending(5) is None


class FullDisk(io.BytesIO):
    name = "/jobs/x/items.jsonl"

    def write(self, data: bytes) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")


def test_a_full_disk_stops_the_job_feed_with_one_error(tmp_path):
    state = SQLiteJobStore(tmp_path)
    state.open()
    errors: list = []
    state.on_error = errors.append
    exporter = UjsonLinesExporter(FullDisk(), job_state=state)
    exporter.export_item({"product_id": 5})
    exporter.export_item({"product_id": 6})  # not tried again
    assert len(errors) == 1
    assert "Cannot write /jobs/x/items.jsonl ([Errno 28] No space left on device)" in str(errors[0])
    assert not state.is_exported(5)
    # Nothing else is exported while the crawl stops, even where there is room.
    out = io.BytesIO()
    UjsonLinesExporter(out, job_state=state).export_item({"product_id": 7})
    assert out.getvalue() == b""
