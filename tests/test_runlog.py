from __future__ import annotations

import json

from scrapy.utils.test import get_crawler

from plt.extensions.runlog import RUNS_FILE, RunLog


def make(tmp_path) -> RunLog:
    crawler = get_crawler(settings_dict={"JOBDIR": str(tmp_path)})
    crawler.stats.open_spider()
    return RunLog.from_crawler(crawler)


def test_each_run_appends_its_stats(tmp_path):
    runlog = make(tmp_path)
    runlog.crawler.stats.set_value("item_scraped_count", 3)
    runlog.spider_closed(None, "finished")
    runlog.spider_closed(None, "shutdown")
    lines = [json.loads(x) for x in (tmp_path / RUNS_FILE).read_text().splitlines()]
    assert [x["finish_reason"] for x in lines] == ["finished", "shutdown"]
    assert lines[0]["item_scraped_count"] == 3


def test_an_unwritable_file_is_one_warning_not_a_traceback(tmp_path, caplog):
    runlog = make(tmp_path)
    (tmp_path / RUNS_FILE).mkdir()  # cannot be opened for appending
    runlog.spider_closed(None, "finished")
    (record,) = [r for r in caplog.records if r.name == "plt.extensions.runlog"]
    assert record.levelname == "WARNING" and "Run not recorded" in record.getMessage()
    assert runlog.crawler.stats.get_value("plt/runlog/unwritten") == 1
