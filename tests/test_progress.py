import io
import logging

import pytest
from scrapy import Spider
from scrapy.exceptions import NotConfigured
from scrapy.utils.test import get_crawler

from plt.extensions import progress
from plt.extensions.progress import Progress, RateWindow, choose_mode, fmt_duration

MB = 1024 * 1024


class Feed:
    def __init__(self) -> None:
        self.t = 500.0
        self.rss: int | None = 98 * MB


def make(**settings):
    settings.setdefault("PLT_PROGRESS", "log")
    crawler = get_crawler(Spider, settings)
    ext = Progress.from_crawler(crawler)
    feed = Feed()
    ext.read_rss = lambda: feed.rss
    ext.clock = lambda: feed.t
    return ext, crawler, feed


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_off_raises_not_configured():
    with pytest.raises(NotConfigured):
        make(PLT_PROGRESS="off")


def test_unknown_mode_is_an_error():
    with pytest.raises(ValueError, match="PLT_PROGRESS"):
        make(PLT_PROGRESS="fancy")


@pytest.mark.parametrize(
    ("setting", "stream", "env", "mode"),
    [
        ("auto", Tty(), {}, "bar"),
        ("auto", Tty(), {"CI": "true"}, "log"),
        ("auto", io.StringIO(), {}, "log"),
        ("bar", io.StringIO(), {"CI": "1"}, "bar"),
        ("log", Tty(), {}, "log"),
    ],
)
def test_choose_mode(setting, stream, env, mode):
    assert choose_mode(setting, stream, env) == mode


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "0s"), (45.4, "45s"), (366.3, "6m06s"), (3599, "59m59s"), (3725, "1h02m"), (-3, "0s")],
)
def test_fmt_duration(seconds, text):
    assert fmt_duration(seconds) == text


def test_rate_window_uses_only_recent_points():
    w = RateWindow(window=60)
    assert w.rate() is None
    for t in range(0, 121):  # 10/s for two minutes ...
        w.add(float(t), 10 * t)
    for t in range(121, 181):  # ... then 2/s for one minute
        w.add(float(t), 1200 + 2 * (t - 120))
    assert w.rate() == pytest.approx(2.0)
    assert len(w.points) <= 62  # bounded by the window, not the crawl length
    w.add(180.0, 1320)  # same instant twice: no division by zero
    assert w.rate() is not None


def test_log_line_rate_and_eta(caplog):
    ext, crawler, feed = make(MEMUSAGE_LIMIT_MB=950, PLT_PROGRESS_INTERVAL=30)
    stats = crawler.stats
    stats.set_value("plt/products/total", 20103)
    stats.set_value("item_scraped_count", 4588)
    ext._last_log = feed.t
    ext.tick()
    feed.t += 10
    stats.set_value("item_scraped_count", 5000)
    stats.set_value("plt/product/withdrawn", 12)  # never produce an item
    with caplog.at_level(logging.INFO, logger=progress.__name__):
        ext.tick()  # 10 s since the last line: too early
        assert not caplog.records
        feed.t += 20
        ext.tick()
    (record,) = caplog.records
    # 424 done in 30 s over the window; 15,091 left / 14.13 per s = 1,068 s
    assert record.getMessage() == (
        "Progress: 5,012/20,103 products (24.9%), 14.1/s, ETA 17m48s, RSS 98/950 MiB"
    )
    assert stats.get_value("plt/progress/rate") == pytest.approx(14.13, abs=0.01)
    assert stats.get_value("plt/progress/eta_s") == 1068


def test_format_line_exact_example():
    state = {
        "done": 5012,
        "total": 20103,
        "rate": 41.2,
        "eta": (20103 - 5012) / 41.2,
        "rss_mb": 98.0,
        "budget_mb": 950,
    }
    assert Progress.format_line(state) == (
        "5,012/20,103 products (24.9%), 41.2/s, ETA 6m06s, RSS 98/950 MiB"
    )


def test_unknown_total_and_rss():
    ext, crawler, feed = make()
    feed.rss = None
    crawler.stats.set_value("item_scraped_count", 10)
    assert ext.format_line(ext.read()) == "10 products, ?/s"


def test_governor_budget_wins_over_memusage_limit():
    ext, crawler, _ = make(MEMUSAGE_LIMIT_MB=2000)
    crawler.stats.set_value("plt/memory/budget_mb", 950)
    assert ext.read()["budget_mb"] == 950


def test_close_in_log_mode_logs_final_line(caplog):
    ext, crawler, _ = make()
    crawler.stats.set_value("plt/products/total", 3)
    crawler.stats.set_value("item_scraped_count", 3)
    with caplog.at_level(logging.INFO, logger=progress.__name__):
        ext.spider_closed(Spider("x"), "finished")
    assert [r.getMessage() for r in caplog.records] == [
        "Progress at close: 3/3 products (100.0%), ?/s, RSS 98 MiB"
    ]


def test_bar_shows_progress_and_keeps_log_records_intact():
    ext, crawler, feed = make(PLT_PROGRESS="bar", MEMUSAGE_LIMIT_MB=950)
    out = ext.bar_file = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setLevel(logging.WARNING)
    logging.root.addHandler(handler)
    try:
        ext.open_bar()
        crawler.stats.set_value("plt/products/total", 200)
        ext.tick()
        feed.t += 2
        crawler.stats.set_value("item_scraped_count", 50)
        ext.tick()
        assert handler.stream is not out  # records now go around the bar
        logging.getLogger("plt.test").info("below the handler's level")
        logging.getLogger("plt.test").warning("a warning line")
        ext.spider_closed(Spider("x"), "finished")
        assert handler.stream is out
    finally:
        logging.root.removeHandler(handler)
    text = out.getvalue()
    assert "50/200" in text
    assert "25.0/s ETA 6s RSS 98/950 MiB" in text
    assert "below the handler's level" not in text
    assert "a warning line\n" in text
    assert "Progress at close" not in text  # the bar itself is the final state


def test_a_resumed_job_counts_the_whole_job_with_its_total_and_eta(caplog):
    ext, crawler, feed = make(PLT_PROGRESS_INTERVAL=30)
    stats = crawler.stats
    ext._last_log = feed.t
    ext.tick()  # before the spider restored the job's figures
    # What the spider restores from the job state on a resume.
    stats.set_value("plt/products/total", 3000)
    stats.set_value("plt/products/done_before", 1100)
    feed.t += 30
    stats.set_value("item_scraped_count", 290)
    stats.set_value("plt/product/withdrawn", 10)
    with caplog.at_level(logging.INFO, logger=progress.__name__):
        ext.tick()
    # 300 this run in 30 s: 10/s, not (1,100 + 300)/30; 1,600 left take 160 s.
    assert caplog.messages == [
        "Progress: 1,400/3,000 products (46.7%), 10.0/s, ETA 2m40s, RSS 98 MiB"
    ]


def test_the_bar_gets_the_restored_total():
    ext, crawler, _ = make(PLT_PROGRESS="bar")
    ext.bar_file = io.StringIO()
    ext.open_bar()
    try:
        crawler.stats.set_value("plt/products/total", 3000)
        crawler.stats.set_value("plt/products/done_before", 1891)
        ext.tick()
        assert (ext.bar.n, ext.bar.total) == (1891, 3000)
    finally:
        ext.close_bar()
